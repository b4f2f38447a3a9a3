#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Compressed rounds over zero-copy sockets, on parallel channels, end to
# end: every codec with zero copy off and on, over 1 and 4 channels, each
# migration judged by the page digest (both sides), the guest going on on the
# destination and its own memory check; compressed rounds must put fewer
# bytes on the wire than the pages they carry (--no-adaptive: every batch
# is compressed, whatever it costs).  Then the default choice per batch:
# on loopback, where the link outruns a slow compressor, batches go raw;
# over a veth pair limited to 40 Mbit/s they are compressed; both times
# the channel measured the link itself.  Loopback copies every
# zero-copy send, so these keep asking for it (--zerocopy-always) to hold
# buffers in the kernel all along; one more migration checks that by
# default every channel stops asking.  Then two channels over two paths,
# one delayed by netem: pages of round k arrive after round k+1's, and the
# destination must keep the newest.
set -u
. "$(dirname "$0")/lib/migrate.sh"

# The random writer's pages mix zero, text-like and random content.
wl="--vcpus 2 --workload random --rate 4 --backend ring"
vm="--mem 16 $wl"

echo "TAP version 13"
echo "1..16"

port=4700
for codec in raw lz4 zstd:-1; do
	for transport in plain zerocopy; do
		for ch in 1 4; do
			port=$((port + 1))
			name="$codec-$transport-$ch"
			name=${name//:/}
			start_dest "$name" "" --listen 127.0.0.1:$port
			always=
			[ "$transport" = zerocopy ] && always=--zerocopy-always
			# shellcheck disable=SC2086
			run_source "$name" "" --to 127.0.0.1:$port --after 0.5 $vm \
				--codec $codec --no-adaptive --transport $transport $always \
				--channels $ch
			wait_dest
			s=$tmp/$name.src
			migrated "$name" || continue
			pages=$(json "$s" '["pages"]')
			zero=$(json "$s" '["zero_pages"]')
			wire=$(json "$s" '["wire_bytes"]')
			data=$(( (pages - zero) * 4096 ))
			zc=$(json "$s" '["net"]["zc_sends"]')
			comp=$(json "$s" '["codec_stats"]["lz4_batches"] + d["codec_stats"]["zstd_batches"]')
			if [ "$codec" != raw ] && { [ "$wire" -ge "$data" ] || [ "$comp" -eq 0 ]; }; then
				notok "$name: $wire bytes on the wire for $data bytes of data pages ($comp compressed batches)"
			elif [ "$transport" = zerocopy ] && [ "$zc" -eq 0 ]; then
				notok "$name: no zero-copy send"
			elif [ "$(json "$s" '["net"]["zc_stopped"]')" != 0 ]; then
				notok "$name: stopped asking for zero copy despite --zerocopy-always"
			elif [ "$(json "$s" '["channels"]')" != "$ch" ]; then
				notok "$name: $(json "$s" '["channels"]') channels"
			else
				ok "$name: digest equal, $((wire / 1024)) KiB on the wire for $((data / 1024)) KiB of data pages, $zc zero-copy sends"
			fi
		done
	done
done

have_netem() {
	modprobe sch_netem 2>/dev/null || [ -d /sys/module/sch_netem ]
}

# A field of NAME's codec counters.
cs() {
	json "$tmp/$1.src" "[\"codec_stats\"][\"$2\"]"
}

# The codec choice against a measured link: fast (loopback, zstd at level 3
# under TCG runs at a few MiB/s) and slow (netem rate, lz4).  64 and 32 MiB:
# enough batches with data to choose for.
name=adaptive-fast-link
start_dest $name "" --listen 127.0.0.1:4791
# shellcheck disable=SC2086
run_source $name "" --to 127.0.0.1:4791 --after 0.5 --mem 64 $wl --codec zstd:3 --channels 2
wait_dest
if migrated $name; then
	link=$(cs $name link_mibps)
	comp=$(cs $name comp_mibps)
	skipped=$(cs $name skipped)
	raw=$((skipped + $(cs $name link_probes)))
	zstd=$(cs $name zstd_batches)
	if [ "$(cs $name link_measured)" != true ] || [ "$skipped" -eq 0 ] ||
	   ! python3 -c "import sys; sys.exit(not $comp < $link)" || [ "$raw" -le "$zstd" ]; then
		notok "$name: link $link MiB/s, compressor $comp MiB/s: $raw batches raw, $zstd zstd"
		dump $name
	else
		ok "$name: link $link MiB/s measured, compressor $comp MiB/s: $raw batches raw, $zstd zstd"
	fi
fi

name=adaptive-slow-link
if ! have_netem; then
	skip "$name" "no sch_netem"
elif ! mig_netns sl 23; then
	notok "$name: cannot make network namespaces"
else
	ip netns exec "$src_ns" tc qdisc add dev vm23s root netem rate 40mbit
	start_dest $name "$dst_ns" --listen "$dst_ip:4802"
	# shellcheck disable=SC2086
	run_source $name "$src_ns" --to "$dst_ip:4802" --after 0.5 --mem 32 $wl --codec lz4
	wait_dest
	if migrated $name; then
		link=$(cs $name link_mibps)
		comp=$(cs $name comp_mibps)
		raw=$(cs $name skipped)
		lz4=$(cs $name lz4_batches)
		# 40 Mbit/s is 4.8 MiB/s; lz4 does 8 to 150 under TCG.
		if [ "$(cs $name link_measured)" != true ] ||
		   ! python3 -c "import sys; sys.exit(not 1 < $link < 10)" || [ "$lz4" -le "$raw" ]; then
			notok "$name: link $link MiB/s, compressor $comp MiB/s: $raw batches raw, $lz4 lz4"
			dump $name
		else
			ok "$name: link $link MiB/s measured, compressor $comp MiB/s: $lz4 batches lz4, $raw raw"
		fi
	fi
fi

# By default a channel whose first sends the kernel all copied (loopback
# does) stops asking for zero copy and sends by copy: after 8 of them
# (TRANSPORT_ZC_GIVE_UP) each.  128 MiB: enough 2 MiB messages for that.
name=zerocopy-stops-on-loopback
start_dest $name "" --listen 127.0.0.1:4790
# shellcheck disable=SC2086
run_source $name "" --to 127.0.0.1:4790 --after 0.5 --mem 128 $wl --codec raw \
	--transport zerocopy --channels 2
wait_dest
s=$tmp/$name.src
if migrated $name; then
	zc=$(json "$s" '["net"]["zc_sends"]')
	copied=$(json "$s" '["net"]["zc_copied"]')
	stopped=$(json "$s" '["net"]["zc_stopped"]')
	bycopy=$(json "$s" '["net"]["copied_sends"]')
	if [ "$stopped" != 2 ] || [ "$copied" != "$zc" ] || [ "$zc" -lt 16 ] ||
	   [ "$bycopy" -le "$zc" ]; then
		notok "$name: $stopped of 2 channels stopped; $zc zero-copy sends ($copied copied), $bycopy by copy"
		dump $name
	else
		ok "$name: both channels stopped after $zc zero-copy sends, all copied; $bycopy sends by copy"
	fi
fi

# Out of order across channels: two paths, the second 300 ms slower.  The
# hot set spans four batches, so that every round puts some of it on each
# channel and a page of round k on the slow path is sent again in round k+1
# on the fast one.
name=out-of-order
if ! have_netem; then
	skip "$name" "no sch_netem"
elif ! mig_netns oo 21; then
	notok "$name: cannot make network namespaces"
else
	ip link add oo22s netns "$src_ns" type veth peer name oo22d netns "$dst_ns"
	ip -n "$src_ns" addr add 10.88.22.1/24 dev oo22s
	ip -n "$dst_ns" addr add 10.88.22.2/24 dev oo22d
	ip -n "$src_ns" link set oo22s up
	ip -n "$dst_ns" link set oo22d up
	ip netns exec "$src_ns" tc qdisc add dev oo22s root netem delay 300ms
	start_dest $name "$dst_ns" --listen "$dst_ip:4800" --listen 10.88.22.2:4801
	run_source $name "$src_ns" --to "$dst_ip:4800" --to 10.88.22.2:4801 --channels 2 \
		--after 0.5 --mem 16 --vcpus 2 --workload hotset --hot-pages 2048 --rate 16 \
		--backend ring --codec lz4 --downtime 50
	wait_dest
	stale=$(json "$tmp/$name.dst" '["apply"]["stale"]')
	if ! why=$(judge_migrated $name); then
		notok "$name: $why"
		dump $name
	elif [ "${stale:-0}" -eq 0 ]; then
		notok "$name: migrated, but no page of an older round arrived after a newer one"
		dump $name
	else
		ok "$name: $stale pages of older rounds arrived late and were not applied; digest equal"
	fi
fi

mig_done
