// SPDX-License-Identifier: GPL-2.0
/*
 * The whole wire layer end to end over real sockets, the way the
 * migration uses it: three channels, each a thread with its own codec
 * (zstd, lz4, raw by reference), handshake, round 0 with all RAM, dirty
 * rounds where a page moves to another channel every round, the final
 * round with vCPU and VM state, COMPLETE with the page digest and the RAM
 * hash, and the handover: READY, COMMIT, STARTED.
 * The destination reads each message as a transport would (fixed header,
 * then the length it declares) and applies from three threads, one of
 * them slow, so rounds arrive out of order across channels.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* The 6.1 harness and its fixture macros define functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

#include "wire/apply.h"
#include "wire/codec.h"
#include "wire/digest.h"
#include "wire/proto.h"
#include "vmm/vmm.h"
#include "wire_util.h"

#define PS		4096
#define NPAGES		2048
#define NCH		3
#define ROUNDS		6	/* 0: all RAM; ROUNDS-1: stop-and-copy */

static int write_iov(int fd, struct iovec *iov, unsigned int n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0)
			return -errno;
		while (n && (size_t)w >= iov->iov_len) {
			w -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
	return 0;
}

static int send_buf(int fd, void *buf, ssize_t len)
{
	struct iovec iov = { buf, len };

	return len < 0 ? (int)len : write_iov(fd, &iov, 1);
}

/* 1: a message, 0: EOF before one, <0: error. */
static int recv_one(int fd, struct wire_stream *s, uint8_t *buf, struct wire_hdr *h)
{
	size_t want = WIRE_HDR_SIZE, got = 0;
	int ret;

	for (int part = 0; part < 2; part++) {
		while (got < want) {
			ssize_t r = read(fd, buf + got, want - got);

			if (r < 0)
				return -errno;
			if (r == 0)
				return got ? -EPIPE : 0;
			got += r;
		}
		if (part == 0) {
			ret = wire_hdr_parse(buf, h);
			if (ret)
				return ret;
			want += h->len;
		}
	}
	ret = wire_recv_check(s, h, buf + WIRE_HDR_SIZE);
	return ret ? ret : 1;
}

struct side {
	pthread_barrier_t start, done;
	uint8_t *mem;
	struct wire_hello hello;
	struct wire_apply *apply;
	/* per round, per channel: the pages to send */
	uint64_t *list[NCH];
	unsigned int nlist[NCH];
	uint32_t round;
	struct wire_digest digest;	/* source: every page as last sent */
};

struct chan {
	struct side *side;
	unsigned int idx;
	int fd;
	struct wire_stream s;
	uint8_t *buf;
	int ret;
	/* destination */
	bool slow;
	struct wire_complete complete;
	bool got_complete;
	struct vcpu_state vcpu[2];
	struct vm_state vm;
	unsigned int nvcpu;
};

static const struct wire_tx_config tx_cfg[NCH] = {
	{ .page_size = PS, .codec = WIRE_CODEC_ZSTD, .level = -1, .adaptive = true },
	{ .page_size = PS, .codec = WIRE_CODEC_LZ4, .level = 1, .adaptive = true },
	{ .page_size = PS, .codec = WIRE_CODEC_RAW, .zerocopy = true },
};

static void *source_chan(void *arg)
{
	struct chan *c = arg;
	struct side *sd = c->side;
	struct wire_hello hello = sd->hello;
	struct wire_hello_ack ack;
	struct wire_error err;
	struct wire_txmsg m;
	struct wire_tx *tx;
	struct wire_hdr h;
	int ret;

	hello.channel_idx = c->idx;
	ret = wire_txmsg_init(&m);
	ret = ret ? ret : wire_tx_create(&tx_cfg[c->idx], &tx);
	if (ret)
		goto out;
	wire_tx_set_digest(tx, &sd->digest);
	ret = send_buf(c->fd, c->buf, wire_enc_hello(&c->s, c->buf, WIRE_MAX_MSG, &hello));
	if (!ret)
		ret = recv_one(c->fd, &c->s, c->buf, &h) == 1 ? 0 : -EPROTO;
	ret = ret ? ret : wire_dec_hello_ack(&h, c->buf + WIRE_HDR_SIZE, &ack);
	ret = ret ? ret : wire_check_ack(&hello, &ack, &err);
	if (ret)
		goto out_tx;
	wire_stream_establish(&c->s, &ack);
	for (uint32_t r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&sd->start);
		/* The last round is stop-and-copy: nothing changes the pages. */
		wire_tx_set_stable(tx, r == ROUNDS - 1);
		for (unsigned int i = 0; i < sd->nlist[c->idx] && !ret; i += 128) {
			unsigned int n = sd->nlist[c->idx] - i < 128 ? sd->nlist[c->idx] - i : 128;
			ssize_t len = wire_tx_pages(tx, &c->s, &m, sd->mem, r, sd->list[c->idx] + i, n);

			ret = len < 0 ? (int)len : write_iov(c->fd, m.iov, m.niov);
		}
		if (!ret)
			ret = send_buf(c->fd, c->buf, wire_enc_round_end(&c->s, c->buf, WIRE_MAX_MSG, r));
		pthread_barrier_wait(&sd->done);
	}
out_tx:
	wire_tx_destroy(tx);
	wire_txmsg_release(&m);
out:
	c->ret = ret;
	return NULL;
}

static void *dest_chan(void *arg)
{
	struct chan *c = arg;
	struct side *sd = c->side;
	struct wire_batch *b = malloc(sizeof(*b));
	struct wire_rx *rx;
	int ret;

	ret = wire_rx_create(PS, &rx);
	while (!ret) {
		struct wire_hello peer;
		struct wire_hello_ack ack;
		struct wire_round_end re;
		struct wire_error err;
		struct wire_hdr h;
		ret = recv_one(c->fd, &c->s, c->buf, &h);
		if (ret <= 0)
			break;
		ret = 0;
		switch (h.type) {
		case WIRE_HELLO:
			ret = wire_dec_hello(&h, c->buf + WIRE_HDR_SIZE, &peer);
			ret = ret ? ret : wire_negotiate(&sd->hello, &peer, &ack, &err);
			ret = ret ? ret : send_buf(c->fd, c->buf,
						   wire_enc_hello_ack(&c->s, c->buf, WIRE_MAX_MSG, &ack));
			if (!ret)
				wire_stream_establish(&c->s, &ack);
			break;
		case WIRE_PAGES:
			if (c->slow)
				usleep(2000);
			ret = wire_rx_pages(rx, &c->s, &h, c->buf + WIRE_HDR_SIZE, b);
			ret = ret ? ret : wire_apply_batch(sd->apply, b);
			break;
		case WIRE_ROUND_END:
			ret = wire_dec_round_end(&c->s, &h, c->buf + WIRE_HDR_SIZE, &re);
			break;
		case WIRE_VCPU_STATE:
			ret = wire_dec_vcpu_state(&h, c->buf + WIRE_HDR_SIZE,
						  &c->vcpu[c->nvcpu < 2 ? c->nvcpu : 1]);
			c->nvcpu++;
			break;
		case WIRE_VM_STATE:
			ret = wire_dec_vm_state(&h, c->buf + WIRE_HDR_SIZE, &c->vm);
			break;
		case WIRE_COMPLETE:
			ret = wire_dec_complete(&h, c->buf + WIRE_HDR_SIZE, &c->complete);
			c->got_complete = true;
			goto out;	/* channel 0 answers after all channels are done */
		default:
			ret = -EPROTO;
		}
	}
out:
	wire_rx_destroy(rx);
	free(b);
	c->ret = ret;
	return NULL;
}

TEST(migrate_over_sockets)
{
	struct side src = { 0 }, dst = { 0 };
	struct chan sc[NCH], dc[NCH];
	pthread_t st[NCH], dt[NCH];
	struct wire_region rg = { 0, NPAGES * PS };
	struct wire_stream *dstreams[NCH];
	struct vcpu_state vcpu;
	struct vm_state vm;
	struct wire_complete comp = { 0 };
	struct wire_ready rd = { 0 };
	struct wire_commit cm;
	struct wire_started sd;
	struct wire_apply_stats ast;
	struct wire_error err;
	struct wire_hdr h;
	uint64_t backed[(NPAGES + 63) / 64];
	uint64_t seed = 2024, hash;
	uint32_t xsave[1024];

	src.mem = aligned_alloc(PS, NPAGES * PS);
	dst.mem = aligned_alloc(PS, NPAGES * PS);
	memset(dst.mem, 0x77, NPAGES * PS);
	for (uint64_t g = 0; g < NPAGES; g++)
		fill_page(src.mem + g * PS, PS, C_MIXED, g * 7 / 3, &seed);
	make_hello(&src.hello);
	src.hello.nr_channels = NCH;
	src.hello.nr_regions = 1;
	src.hello.regions[0] = rg;
	src.hello.session_id = 0x1234;
	ASSERT_EQ(0, wire_digest_init(&src.digest, NPAGES));
	dst.hello = src.hello;
	dst.hello.session_id = 0;	/* learnt from channel 0 in real life */
	ASSERT_EQ(0, wire_apply_create(dst.mem, PS, &rg, 1, &dst.apply));
	/* Garbage, not fresh memory: every page must be written. */
	memset(backed, 0xff, sizeof(backed));
	wire_apply_mark_backed(dst.apply, backed);
	pthread_barrier_init(&src.start, NULL, NCH + 1);
	pthread_barrier_init(&src.done, NULL, NCH + 1);
	for (unsigned int i = 0; i < NCH; i++) {
		int sv[2];

		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		sc[i] = (struct chan){ .side = &src, .idx = i, .fd = sv[0], .buf = malloc(WIRE_MAX_MSG) };
		dc[i] = (struct chan){ .side = &dst, .idx = i, .fd = sv[1], .buf = malloc(WIRE_MAX_MSG),
				       .slow = i == 0 };
		wire_stream_init(&sc[i].s, WIRE_ROLE_SOURCE, PS);
		wire_stream_init(&dc[i].s, WIRE_ROLE_DEST, PS);
		src.list[i] = malloc(NPAGES * sizeof(uint64_t));
		dstreams[i] = &dc[i].s;
		ASSERT_EQ(0, pthread_create(&dt[i], NULL, dest_chan, &dc[i]));
		ASSERT_EQ(0, pthread_create(&st[i], NULL, source_chan, &sc[i]));
	}

	for (uint32_t r = 0; r < ROUNDS; r++) {
		/* The guest ran: it dirtied some pages (round 0: all are new). */
		for (unsigned int i = 0; i < NCH; i++)
			src.nlist[i] = 0;
		for (uint64_t g = 0; g < NPAGES; g++) {
			unsigned int ch = (g + r) % NCH;	/* another channel each round */

			if (r && rnd_next(&seed) % 4)
				continue;
			if (r)
				fill_page(src.mem + g * PS, PS, C_MIXED, g + r, &seed);
			src.list[ch][src.nlist[ch]++] = g;
		}
		pthread_barrier_wait(&src.start);
		pthread_barrier_wait(&src.done);
	}
	for (unsigned int i = 0; i < NCH; i++) {
		pthread_join(st[i], NULL);
		ASSERT_EQ(0, sc[i].ret) TH_LOG("source channel %u", i);
		comp.total_pages += sc[i].s.tx_pages;
		comp.total_bytes += sc[i].s.tx_bytes;
		if (i)
			shutdown(sc[i].fd, SHUT_WR);
	}

	/* Stop-and-copy tail on channel 0: state, then COMPLETE with the hash. */
	memset(&vcpu, 0, sizeof(vcpu));
	vcpu.regs.rip = 0x100000;
	vcpu.xsave_size = sizeof(xsave);
	vcpu.xsave = (struct kvm_xsave *)xsave;
	rnd_fill(xsave, sizeof(xsave), &seed);
	memset(&vm, 0, sizeof(vm));
	vm.pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	vm.tsc_khz = 1000000;
	vm.nr_vcpus = 2;
	vm.mem_size = NPAGES * PS;
	for (uint32_t v = 0; v < 2; v++) {
		vcpu.idx = v;
		vcpu.regs.rax = v;
		ASSERT_EQ(0, send_buf(sc[0].fd, sc[0].buf,
				      wire_enc_vcpu_state(&sc[0].s, sc[0].buf, WIRE_MAX_MSG, &vcpu)));
	}
	ASSERT_EQ(0, send_buf(sc[0].fd, sc[0].buf,
			      wire_enc_vm_state(&sc[0].s, sc[0].buf, WIRE_MAX_MSG, &vm)));
	comp.last_round = ROUNDS - 1;
	comp.flags = WIRE_COMPLETE_HASH;
	comp.nr_vcpus = 2;
	comp.digest = wire_digest_sum(&src.digest);
	ASSERT_EQ(0, wire_ram_hash(src.mem, &rg, 1, 2, &comp.ram_hash));
	ASSERT_EQ(0, send_buf(sc[0].fd, sc[0].buf,
			      wire_enc_complete(&sc[0].s, sc[0].buf, WIRE_MAX_MSG, &comp)));

	/* Destination: every channel done, then check and confirm. */
	for (unsigned int i = 0; i < NCH; i++) {
		pthread_join(dt[i], NULL);
		ASSERT_EQ(0, dc[i].ret) TH_LOG("destination channel %u", i);
		ASSERT_EQ(ROUNDS, dc[i].s.rx_round);
	}
	ASSERT_TRUE(dc[0].got_complete);
	ASSERT_EQ(2, dc[0].nvcpu);
	ASSERT_EQ(1, dc[0].vcpu[1].regs.rax);
	ASSERT_EQ(1, dc[0].vcpu[1].idx);
	ASSERT_EQ(NPAGES * PS, dc[0].vm.mem_size);
	ASSERT_EQ(0, memcmp(dc[0].vcpu[1].xsave, xsave, sizeof(xsave)));
	ASSERT_EQ(1000000, dc[0].vm.tsc_khz);
	ASSERT_EQ(0, wire_verify_complete(&dc[0].complete, dstreams, NCH, dst.apply, 2, &hash, &err))
		TH_LOG("%s", err.text);
	ASSERT_EQ(0, memcmp(src.mem, dst.mem, NPAGES * PS));
	ASSERT_EQ(comp.digest, wire_apply_digest(dst.apply));

	/* The handover: READY, COMMIT, STARTED on channel 0. */
	rd.flags = WIRE_READY_HASH_CHECKED;
	rd.ram_hash = hash;
	rd.digest = wire_apply_digest(dst.apply);
	ASSERT_EQ(0, send_buf(dc[0].fd, dc[0].buf,
			      wire_enc_ready(&dc[0].s, dc[0].buf, WIRE_MAX_MSG, &rd)));
	ASSERT_EQ(1, recv_one(sc[0].fd, &sc[0].s, sc[0].buf, &h));
	ASSERT_EQ(0, wire_dec_ready(&h, sc[0].buf + WIRE_HDR_SIZE, &rd));
	ASSERT_EQ(comp.ram_hash, rd.ram_hash);
	ASSERT_EQ(comp.digest, rd.digest);
	cm.session_id = src.hello.session_id;
	ASSERT_EQ(0, send_buf(sc[0].fd, sc[0].buf,
			      wire_enc_commit(&sc[0].s, sc[0].buf, WIRE_MAX_MSG, &cm)));
	ASSERT_EQ(1, recv_one(dc[0].fd, &dc[0].s, dc[0].buf, &h));
	ASSERT_EQ(0, wire_dec_commit(&h, dc[0].buf + WIRE_HDR_SIZE, &cm));
	ASSERT_EQ(src.hello.session_id, cm.session_id);
	sd.resume_ns = 1000;
	sd.hold_ns = 1500;
	ASSERT_EQ(0, send_buf(dc[0].fd, dc[0].buf,
			      wire_enc_started(&dc[0].s, dc[0].buf, WIRE_MAX_MSG, &sd)));
	ASSERT_EQ(1, recv_one(sc[0].fd, &sc[0].s, sc[0].buf, &h));
	ASSERT_EQ(0, wire_dec_started(&h, sc[0].buf + WIRE_HDR_SIZE, &sd));
	ASSERT_EQ(1000, sd.resume_ns);
	ASSERT_EQ(1500, sd.hold_ns);

	wire_apply_stats(dst.apply, &ast);
	TH_LOG("applied %llu data, %llu zero (%llu already clean), %llu stale",
	       (unsigned long long)ast.data, (unsigned long long)ast.zero,
	       (unsigned long long)ast.zero_clean, (unsigned long long)ast.stale);
	for (unsigned int i = 0; i < NCH; i++) {
		close(sc[i].fd);
		close(dc[i].fd);
		free(sc[i].buf);
		free(dc[i].buf);
		free(src.list[i]);
	}
	free(dc[0].vcpu[0].xsave);
	free(dc[0].vcpu[1].xsave);
	wire_apply_destroy(dst.apply);
	free(src.mem);
	free(dst.mem);
	wire_digest_release(&src.digest);
}

TEST_HARNESS_MAIN
