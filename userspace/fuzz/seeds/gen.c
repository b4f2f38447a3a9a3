// SPDX-License-Identifier: GPL-2.0
/*
 * Seed corpora for the harnesses: valid payloads of every type (PAGES in
 * every codec), netlink replies and events as the module builds them, a
 * TLS handshake in memory with fuzz/tls.c's key, key files; written to
 * DIR/<harness>/<name>.  scripts/fuzz.sh adds what real migrations
 * recorded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <linux/vmdirty.h>

#include "auth/psk.h"
#include "auth/tls.h"
#include "wire/codec.h"
#include "wire/proto.h"
#include "vmm/vmm.h"

static const char *dir;

static void put(const char *fuzzer, const char *name, const uint8_t *msg, size_t len, bool hdr)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, fuzzer);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, fuzzer, name);
	f = fopen(path, "w");
	if (!f || fwrite(msg + (hdr ? 0 : WIRE_HDR_SIZE), len - (hdr ? 0 : WIRE_HDR_SIZE), 1, f) != 1)
		exit(1);
	fclose(f);
}

/* A reply or event of the vmdirty family, as vmdirty.ko's netlink.c puts it. */
static void put_nl(const char *name, uint8_t sel, uint8_t cmd, unsigned int vcpus)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct nlattr *nest;
	uint8_t buf[65536];
	size_t len;

	if (!msg || !genlmsg_put(msg, 0, 1, 0x20, 0, NLM_F_MULTI, cmd, VMDIRTY_GENL_VERSION))
		exit(1);
	nla_put_u32(msg, VMDIRTY_A_SESSION_ID, 3);
	nla_put_u32(msg, VMDIRTY_A_SESSION_FLAGS, 1);
	nla_put_u32(msg, VMDIRTY_A_OWNER_PID, 100);
	nla_put_u32(msg, VMDIRTY_A_VM_PID, 100);
	nla_put_u32(msg, VMDIRTY_A_NR_SLOTS, 1);
	nla_put_u32(msg, VMDIRTY_A_NR_VCPUS, vcpus);
	nla_put_u64(msg, VMDIRTY_A_TRACKED_PAGES, 4096);
	nla_put_u64(msg, VMDIRTY_A_HARVESTS, 7);
	nla_put_u64(msg, VMDIRTY_A_ENTRIES, 700);
	if (vcpus) {
		nest = nla_nest_start(msg, VMDIRTY_A_VCPUS);
		for (unsigned int i = 0; i < vcpus; i++) {
			struct nlattr *e = nla_nest_start(msg, VMDIRTY_A_VCPUS_ENTRY);

			nla_put_u32(msg, VMDIRTY_A_VCPU_IDX, i);
			nla_put_u32(msg, VMDIRTY_A_VCPU_ID, i);
			nla_put_u32(msg, VMDIRTY_A_VCPU_RING_SIZE, 4096);
			nla_put_u64(msg, VMDIRTY_A_VCPU_ENTRIES, 100 * i);
			nla_nest_end(msg, e);
		}
		nla_nest_end(msg, nest);
	}
	len = nlmsg_hdr(msg)->nlmsg_len;
	buf[0] = sel;
	memcpy(buf + 1, nlmsg_hdr(msg), len);
	/* A dump ends with NLMSG_DONE. */
	if (!sel) {
		struct nlmsghdr done = { .nlmsg_len = NLMSG_LENGTH(4), .nlmsg_type = NLMSG_DONE };

		memcpy(buf + 1 + len, &done, sizeof(done));
		memset(buf + 1 + len + sizeof(done), 0, 4);
		len += NLMSG_LENGTH(4);
	}
	put("nl", name, buf, len + 1, true);
	nlmsg_free(msg);
}

/* One side of an in-memory handshake: what it sends collects in out. */
struct side {
	uint8_t in[16384], out[16384];
	size_t nin, pos, nout;
};

static ssize_t side_pull(void *ctx, void *buf, size_t len)
{
	struct side *s = ctx;
	size_t k = len < s->nin - s->pos ? len : s->nin - s->pos;

	if (!k) {
		errno = EAGAIN;
		return -1;
	}
	memcpy(buf, s->in + s->pos, k);
	s->pos += k;
	return k;
}

static ssize_t side_push(void *ctx, const void *buf, size_t len)
{
	struct side *s = ctx;

	if (len > sizeof(s->out) - s->nout)
		exit(1);
	memcpy(s->out + s->nout, buf, len);
	s->nout += len;
	return len;
}

/* Seeds for fuzz/tls.c: both sides of a handshake with its key, and key files. */
static void put_tls(void)
{
	static struct side c, sv;
	struct auth_io cio = { side_push, side_pull, &c }, sio = { side_push, side_pull, &sv };
	struct auth_session *cs, *ss;
	struct auth_creds *cr;
	struct auth_key k;
	uint8_t buf[16385];
	char why[128];
	bool ww;

	for (int i = 0; i < AUTH_KEY_BYTES; i++)
		k.key[i] = i + 1;	/* fuzz/tls.c's key */
	auth_key_set_id(&k);
	if (auth_creds_new(&k, &cr, why, sizeof(why)) ||
	    auth_session_new(cr, AUTH_CLIENT, &cio, &cs) ||
	    auth_session_new(cr, AUTH_SERVER, &sio, &ss))
		exit(1);
	/* ClientHello; the server's flight; the client's Finished. */
	auth_handshake(cs, &ww);
	memcpy(sv.in, c.out, c.nout);
	sv.nin = c.nout;
	auth_handshake(ss, &ww);
	memcpy(c.in, sv.out, sv.nout);
	c.nin = sv.nout;
	if (auth_handshake(cs, &ww))
		exit(1);
	buf[0] = 0;
	memcpy(buf + 1, c.out, c.nout);
	put("tls", "client-flights", buf, c.nout + 1, true);
	buf[0] = 1;
	memcpy(buf + 1, sv.out, sv.nout);
	put("tls", "server-flight", buf, sv.nout + 1, true);
	auth_session_free(cs);
	auth_session_free(ss);
	auth_creds_free(cr);
	put("tls", "key", (const uint8_t *)"\002AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n", 46, true);
	put("tls", "key-bad", (const uint8_t *)"\002AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB=", 45, true);
}

int main(int argc, char **argv)
{
	struct wire_hello_ack ack = { WIRE_VERSION_MAX, WIRE_FEAT_ALL, WIRE_CODECS_ALL, 1, 0, 1 };
	struct wire_hello hello = { .ver_min = WIRE_VERSION_MIN, .ver_max = WIRE_VERSION_MAX, .page_size = 4096, .session_id = 1,
				    .nr_channels = 1, .nr_vcpus = 2, .features = WIRE_FEAT_ALL,
				    .codecs = WIRE_CODECS_ALL, .nr_regions = 1,
				    .regions = { { 0, 64 * 4096 } } };
	static uint8_t mem[64 * 4096], buf[WIRE_MAX_MSG];
	struct wire_stream src, dst;
	struct wire_txmsg m;
	struct vcpu_state vs = { 0 };
	struct vm_state ms = { 0 };
	struct wire_complete c = { 1, WIRE_COMPLETE_HASH, 2, 10, 1000, 7, 42 };
	struct wire_ready rd = { WIRE_READY_HASH_CHECKED, 7, 42, 1, 2, 3 };
	struct wire_commit cm = { 1 };
	struct wire_started sd = { 5, 7 };
	struct wire_round_ack ra = { 0, 8 };
	struct wire_query q = { 1, WIRE_QUERY_COMMIT };
	struct wire_outcome_msg o = { 1, WIRE_OUTCOME_RUNNING };
	struct wire_stream qs, qd;
	struct wire_error e;
	uint64_t gfns[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	ssize_t len;

	if (argc != 2)
		return 2;
	dir = argv[1];
	mkdir(dir, 0755);
	for (int i = 0; i < 64 * 4096; i++)
		mem[i] = i % 4096 < 2048 ? (uint8_t)"vmdirty page "[i % 13] : (uint8_t)((i * 2654435761u) >> 13);
	memset(mem, 0, 4096);
	wire_stream_init(&src, WIRE_ROLE_SOURCE, 4096);
	wire_stream_init(&dst, WIRE_ROLE_DEST, 4096);
	len = wire_enc_hello(&src, buf, sizeof(buf), &hello);
	put("hello", "hello", buf, len, false);
	put("hdr", "hello", buf, len, true);
	len = wire_enc_hello_ack(&dst, buf, sizeof(buf), &ack);
	put("hello", "ack", buf, len, false);
	wire_stream_establish(&src, &ack);
	wire_stream_establish(&dst, &ack);
	wire_error_set(&e, WIRE_ERR_LAYOUT, 22, "layout differs");
	len = wire_enc_error(&dst, buf, sizeof(buf), &e);
	put("msg", "error", buf, len, false);
	dst.failed = false;
	len = wire_enc_ready(&dst, buf, sizeof(buf), &rd);
	put("msg", "ready", buf, len, false);
	len = wire_enc_started(&dst, buf, sizeof(buf), &sd);
	put("msg", "started", buf, len, false);
	len = wire_enc_round_ack(&dst, buf, sizeof(buf), &ra);
	put("msg", "round_ack", buf, len, false);
	len = wire_enc_commit(&src, buf, sizeof(buf), &cm);
	put("msg", "commit", buf, len, false);
	wire_stream_init(&qs, WIRE_ROLE_SOURCE, 4096);
	wire_stream_init(&qd, WIRE_ROLE_DEST, 4096);
	len = wire_enc_query(&qs, buf, sizeof(buf), &q);
	put("msg", "query", buf, len, false);
	put("hdr", "query", buf, len, true);
	len = wire_enc_outcome(&qd, buf, sizeof(buf), &o);
	put("msg", "outcome", buf, len, false);
	len = wire_enc_complete(&src, buf, sizeof(buf), &c);
	put("msg", "complete", buf, len, false);
	put("hdr", "complete", buf, len, true);
	vs.xcrs.nr_xcrs = 1;
	vs.nr_msrs = 2;
	vs.xsave_size = 4096;
	vs.xsave = calloc(1, 4096);
	len = wire_enc_vcpu_state(&src, buf, sizeof(buf), &vs);
	put("state", "vcpu", buf, len, false);
	ms.nr_vcpus = 2;
	ms.mem_size = 64 * 4096;
	ms.pic[1].chip_id = 1;
	ms.ioapic.chip_id = 2;
	len = wire_enc_vm_state(&src, buf, sizeof(buf), &ms);
	put("state", "vm", buf, len, false);
	if (wire_txmsg_init(&m))
		return 1;
	for (int codec = 0; codec < WIRE_NR_CODECS; codec++) {
		struct wire_tx_config cfg = { .page_size = 4096, .codec = codec, .level = 1 };
		struct wire_tx *tx;
		char name[32];

		if (wire_tx_create(&cfg, &tx))
			return 1;
		len = wire_tx_pages(tx, &src, &m, mem, 0, gfns, 8);
		snprintf(name, sizeof(name), "pages-%s", wire_codec_name(codec));
		put("pages", name, m.buf, len, false);
		put("hdr", name, m.buf, len, true);
		wire_tx_destroy(tx);
	}
	len = wire_enc_round_end(&src, buf, sizeof(buf), 0);
	put("msg", "round_end", buf, len, false);
	wire_txmsg_release(&m);
	free(vs.xsave);
	put_nl("reply-vcpus", 0, VMDIRTY_CMD_GET_SESSION, 4);
	put_nl("reply", 0, VMDIRTY_CMD_GET_SESSION, 0);
	put_nl("event-new", 1, VMDIRTY_CMD_SESSION_NEW, 0);
	put_nl("event-stale", 1, VMDIRTY_CMD_LAYOUT_STALE, 2);
	put_tls();
	return 0;
}
