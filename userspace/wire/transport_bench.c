// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty netbench: throughput and CPU cost of the transport backends.
 *
 * Each message is what a migration sends: a small header plus scattered
 * 4 KiB pages of a 64 MiB "guest memory" region (every other page, one iovec
 * entry each).  A sender keeps NB_WINDOW messages in flight, waiting for a
 * message's ticket before reusing its header slot (a buffer pool), and
 * flushes at the end.  The receiver reads the header, then the payload into
 * one scratch buffer, optionally checking every byte.
 *
 * By default everything runs in this process over loopback, for each backend
 * and channel count.  There the kernel copies zero-copy sends anyway (a
 * deferred copy), so the numbers show the overhead of zero copy, not its
 * savings; those need two hosts: run --listen on one and --connect on the
 * other.  CPU time is per thread (RUSAGE_THREAD) and per process: on
 * loopback the sender's thread also runs the receiving TCP stack in softirq.
 *
 * --crypto adds the same runs with TLS 1.3 (auth/tls.h): records encrypted
 * by the kernel (kTLS, where it has TLS) or by GnuTLS in userspace, each
 * beside the unencrypted run of the same backend and channel count in the
 * same invocation (the "x none" columns: throughput and CPU per GiB).
 * Loopback in one process pays for both ends' encryption.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "auth/psk.h"
#include "auth/tls.h"
#include "cmd.h"
#include "wire/transport.h"

#define NB_MAGIC	0x6e62656eu	/* "nben" */
#define NB_END		1u
#define NB_PAGE		4096u
#define NB_REGION_PAGES	16384u		/* 64 MiB */
#define NB_MAX_PAGES	1024u		/* 4 MiB a message */
#define NB_WINDOW	64u
#define NB_MAX_CHANNELS	64
#define NB_MAX_ADDRS	8

/* Encryption of a run: none, TLS records by the kernel, by GnuTLS. */
enum nb_crypto { NB_NONE, NB_KERNEL, NB_USER, NB_NR_CRYPTO };
static const char *const nb_crypto_names[NB_NR_CRYPTO] = { "none", "ktls", "gnutls" };

struct nb_hdr {
	uint32_t magic;
	uint32_t flags;
	uint32_t chan;
	uint32_t npages;
	uint64_t seq;
	uint64_t first;		/* first page; the others follow every 2nd */
};

struct nb_cfg {
	enum transport_backend backend;
	enum nb_crypto crypto;
	struct auth_creds *creds;
	uint32_t flags;		/* transport_opts.flags */
	int channels;
	uint64_t bytes;		/* payload of a run, all channels */
	uint32_t msg_pages;
	uint32_t timeout_ms;
	bool verify;
	const char *addrs[NB_MAX_ADDRS];
	int naddrs;
};

struct nb_chan {
	const struct nb_cfg *cfg;
	struct transport_chan *ch;
	uint32_t id;
	uint64_t messages;
	uint64_t payload;
	double cpu_s;
	int ret;
	char err[256];
	pthread_t th;
	pthread_barrier_t *go;
};

struct nb_result {
	double seconds, sender_cpu, receiver_cpu, process_cpu;
	uint64_t payload;
	struct transport_stats st;
};

static uint64_t *nb_region;

static uint64_t nb_word(uint64_t page, uint64_t i)
{
	uint64_t z = (page << 9 | i) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	return z ^ (z >> 31);
}

static int nb_region_init(void)
{
	if (nb_region)
		return 0;
	nb_region = mmap(NULL, (size_t)NB_REGION_PAGES * NB_PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (nb_region == MAP_FAILED) {
		nb_region = NULL;
		return -errno;
	}
	for (uint64_t p = 0; p < NB_REGION_PAGES; p++)
		for (uint64_t i = 0; i < NB_PAGE / 8; i++)
			nb_region[p * (NB_PAGE / 8) + i] = nb_word(p, i);
	return 0;
}

static uint64_t nb_page(uint64_t first, uint32_t k)
{
	return (first + 2 * (uint64_t)k) % NB_REGION_PAGES;
}

static double thread_cpu(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void *nb_fail(struct nb_chan *c, int ret, const char *what)
{
	c->ret = ret;
	snprintf(c->err, sizeof(c->err), "channel %u: %s: %s", c->id, what,
		 ret == -EBADMSG ? "bad content" : transport_error());
	return NULL;
}

static void *nb_sender(void *arg)
{
	struct nb_chan *c = arg;
	uint32_t np = c->cfg->msg_pages;
	struct nb_hdr hdr[NB_WINDOW], end = { NB_MAGIC, NB_END, c->id, 0, c->messages, 0 };
	transport_ticket_t win[NB_WINDOW] = { 0 };
	struct iovec iov[NB_MAX_PAGES + 1];
	uint64_t got = 0;
	double cpu0;
	int ret;

	if (c->go)
		pthread_barrier_wait(c->go);
	cpu0 = thread_cpu(RUSAGE_THREAD);
	for (uint64_t seq = 0; seq < c->messages; seq++) {
		uint32_t w = seq % NB_WINDOW;
		uint64_t first = (c->id * 7919ull + seq * np * 2) % NB_REGION_PAGES;

		ret = transport_wait(c->ch, win[w]);
		if (ret)
			return nb_fail(c, ret, "wait");
		hdr[w] = (struct nb_hdr){ NB_MAGIC, 0, c->id, np, seq, first };
		iov[0] = (struct iovec){ &hdr[w], sizeof(hdr[w]) };
		for (uint32_t k = 0; k < np; k++)
			iov[k + 1] = (struct iovec){
				(char *)nb_region + nb_page(first, k) * NB_PAGE, NB_PAGE };
		ret = transport_send(c->ch, iov, np + 1, 0, &win[w]);
		if (ret)
			return nb_fail(c, ret, "send");
		c->payload += (uint64_t)np * NB_PAGE;
	}
	ret = transport_flush(c->ch);
	if (ret)
		return nb_fail(c, ret, "flush");
	/* The receiver answers the end with what it got: all of it? */
	ret = transport_send(c->ch, &(struct iovec){ &end, sizeof(end) }, 1,
			     TRANSPORT_SEND_COPY, NULL);
	if (!ret)
		ret = transport_recv(c->ch, &got, sizeof(got));
	if (ret)
		return nb_fail(c, ret, "end");
	if (got != c->payload)
		return nb_fail(c, -EPROTO, "receiver's count differs");
	c->cpu_s = thread_cpu(RUSAGE_THREAD) - cpu0;
	return NULL;
}

static bool nb_check(const char *buf, const struct nb_hdr *h)
{
	for (uint32_t k = 0; k < h->npages; k++) {
		const char *want = (const char *)nb_region + nb_page(h->first, k) * NB_PAGE;

		if (memcmp(buf + (size_t)k * NB_PAGE, want, NB_PAGE))
			return false;
	}
	return true;
}

static void *nb_receiver(void *arg)
{
	struct nb_chan *c = arg;
	char *buf = malloc((size_t)NB_MAX_PAGES * NB_PAGE);
	uint32_t chan = UINT32_MAX;
	double cpu0 = thread_cpu(RUSAGE_THREAD);
	int ret;

	if (!buf)
		return nb_fail(c, -ENOMEM, "scratch buffer");
	for (uint64_t seq = 0; ; seq++) {
		struct nb_hdr h;

		ret = transport_recv(c->ch, &h, sizeof(h));
		if (ret) {
			nb_fail(c, ret, "recv header");
			break;
		}
		if (chan == UINT32_MAX)
			chan = h.chan;
		if (h.magic != NB_MAGIC || h.chan != chan || h.seq != seq ||
		    (h.flags & ~NB_END) || h.npages > NB_MAX_PAGES ||
		    (!(h.flags & NB_END) && (!h.npages || h.first >= NB_REGION_PAGES))) {
			nb_fail(c, -EPROTO, "bad header");
			break;
		}
		if (h.flags & NB_END) {
			ret = transport_send(c->ch, &(struct iovec){ &c->payload, 8 }, 1,
					     TRANSPORT_SEND_COPY, NULL);
			if (ret)
				nb_fail(c, ret, "answer");
			break;
		}
		ret = transport_recv(c->ch, buf, (size_t)h.npages * NB_PAGE);
		if (ret) {
			nb_fail(c, ret, "recv payload");
			break;
		}
		if (c->cfg->verify && !nb_check(buf, &h)) {
			nb_fail(c, -EBADMSG, "check");
			break;
		}
		c->payload += (uint64_t)h.npages * NB_PAGE;
	}
	c->cpu_s = thread_cpu(RUSAGE_THREAD) - cpu0;
	free(buf);
	return NULL;
}

static struct transport_opts nb_opts(const struct nb_cfg *cfg)
{
	struct transport_opts o;

	transport_opts_init(&o);
	o.backend = cfg->backend;
	o.flags = cfg->flags;
	o.timeout_ms = cfg->timeout_ms;
	o.connect_attempts = 100;	/* the other side may start late */
	o.retry_delay_ms = 100;
	if (cfg->crypto != NB_NONE) {
		o.auth = cfg->creds;
		o.tls = cfg->crypto == NB_KERNEL ? TRANSPORT_TLS_KERNEL : TRANSPORT_TLS_USER;
	}
	return o;
}

/* Accept n channels in a thread of its own: TLS clients wait for the handshake. */
struct nb_acceptor {
	struct transport_listener *l;
	struct nb_chan *rcv;
	int n, got, ret;
	uint32_t timeout_ms;
};

static void *nb_accept_main(void *arg)
{
	struct nb_acceptor *a = arg;

	for (; a->got < a->n && !a->ret; a->got++)
		a->ret = transport_accept(a->l, a->timeout_ms, &a->rcv[a->got].ch);
	return NULL;
}

/* Run threads fn over chans; wall time from the common start. */
static int nb_run_threads(struct nb_chan *cs, int n, void *(*fn)(void *), double *seconds)
{
	pthread_barrier_t go;
	double t0 = 0;
	int ret = 0, started = 0;

	pthread_barrier_init(&go, NULL, n + 1);
	for (int i = 0; i < n; i++) {
		cs[i].go = &go;
		if (pthread_create(&cs[i].th, NULL, fn, &cs[i]))
			break;
		started++;
	}
	if (started == n) {
		pthread_barrier_wait(&go);
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = ts.tv_sec + ts.tv_nsec / 1e9;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(cs[i].th, NULL);
		if (cs[i].ret && !ret) {
			ret = cs[i].ret;
			fprintf(stderr, "netbench: %s\n", cs[i].err);
		}
	}
	pthread_barrier_destroy(&go);
	if (started != n) {
		fprintf(stderr, "netbench: cannot start threads\n");
		return -EAGAIN;
	}
	if (seconds) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		*seconds = ts.tv_sec + ts.tv_nsec / 1e9 - t0;
	}
	return ret;
}

/* "zerocopy", or "zerocopy-always" when it keeps asking for zero copy. */
static const char *nb_name(const struct nb_cfg *cfg)
{
	static char buf[48];

	snprintf(buf, sizeof(buf), "%s%s%s%s", transport_backend_name(cfg->backend),
		 cfg->flags & TRANSPORT_OPT_ZC_ALWAYS ? "-always" : "",
		 cfg->crypto ? "+" : "", cfg->crypto ? nb_crypto_names[cfg->crypto] : "");
	return buf;
}

/* A backend name, with "-always" for TRANSPORT_OPT_ZC_ALWAYS. */
static int nb_parse_backend(const char *name, struct nb_cfg *cfg)
{
	char buf[32];
	size_t len = strlen(name), sfx = strlen("-always");

	cfg->flags = 0;
	if (len > sfx && len < sizeof(buf) && !strcmp(name + len - sfx, "-always")) {
		memcpy(buf, name, len - sfx);
		buf[len - sfx] = '\0';
		cfg->flags = TRANSPORT_OPT_ZC_ALWAYS;
		name = buf;
	}
	if (transport_backend_parse(name, &cfg->backend)) {
		fprintf(stderr, "netbench: %s\n", transport_error());
		return -EINVAL;
	}
	if (cfg->flags && cfg->backend == TRANSPORT_PLAIN) {
		fprintf(stderr, "netbench: plain-always: plain sends never use zero copy\n");
		return -EINVAL;
	}
	return 0;
}

static double nb_mibps(const struct nb_result *r)
{
	return r->payload / (double)(1 << 20) / r->seconds;
}

/* base: the unencrypted run of the same backend and channels, if any. */
static void nb_print(FILE *f, const struct nb_cfg *cfg, const struct nb_result *r,
		     const struct nb_result *base, const char *mode, bool head)
{
	double gib = r->payload / (double)(1ull << 30);
	char vs[32] = "";

	if (head)
		fprintf(f, "%-22s %3s %9s %10s %10s %10s %9s %9s %8s %8s  %s\n", "backend", "ch",
			"MiB/s", "snd s/GiB", "rcv s/GiB", "all s/GiB", "zc-sends", "copied",
			"enobufs", "notifs", "x none: MiB/s cpu");
	if (base && base->payload && cfg->crypto)
		snprintf(vs, sizeof(vs), "%5.2f %5.2f", nb_mibps(r) / nb_mibps(base),
			 (r->process_cpu / gib) /
			 (base->process_cpu / (base->payload / (double)(1ull << 30))));
	fprintf(f, "%-22s %3d %9.1f %10.3f %10.3f %10.3f %9llu %9llu %8llu %8llu  %s\n",
		strcmp(mode, "listen") ? nb_name(cfg) : "(recv)",
		cfg->channels, nb_mibps(r), r->sender_cpu / gib,
		r->receiver_cpu / gib, r->process_cpu / gib,
		(unsigned long long)r->st.zc_sends, (unsigned long long)r->st.zc_copied,
		(unsigned long long)r->st.zc_enobufs, (unsigned long long)r->st.notifications, vs);
}

static void nb_json(FILE *f, const struct nb_cfg *cfg, const struct nb_result *r,
		    const char *mode, bool first)
{
	double gib = r->payload / (double)(1ull << 30);

	fprintf(f, "%s\n  {\"mode\": \"%s\", \"crypto\": \"%s\", \"backend\": \"%s\", \"channels\": %d, "
		"\"msg_bytes\": %u, \"payload_bytes\": %llu, \"seconds\": %.6f, "
		"\"mib_per_s\": %.1f, \"sender_cpu_s_per_gib\": %.4f, "
		"\"receiver_cpu_s_per_gib\": %.4f, \"process_cpu_s_per_gib\": %.4f, "
		"\"stats\": ", first ? "" : ",", mode, nb_crypto_names[cfg->crypto], nb_name(cfg),
		cfg->channels, cfg->msg_pages * NB_PAGE, (unsigned long long)r->payload,
		r->seconds, r->payload / (double)(1 << 20) / r->seconds,
		r->sender_cpu / gib, r->receiver_cpu / gib, r->process_cpu / gib);
	transport_stats_json(f, &r->st);
	fprintf(f, "}");
}

static void nb_collect(struct nb_chan *cs, int n, struct nb_result *r, bool senders)
{
	for (int i = 0; i < n; i++) {
		struct transport_stats st;

		transport_get_stats(cs[i].ch, &st);
		transport_stats_add(&r->st, &st);
		*(senders ? &r->sender_cpu : &r->receiver_cpu) += cs[i].cpu_s;
		if (senders)
			r->payload += cs[i].payload;
	}
}

/* One in-process run over loopback. */
static int nb_loopback(const struct nb_cfg *cfg, struct nb_result *r)
{
	struct nb_chan snd[NB_MAX_CHANNELS] = { 0 }, rcv[NB_MAX_CHANNELS] = { 0 };
	struct transport_opts o = nb_opts(cfg), lo = nb_opts(cfg);
	uint64_t per = cfg->bytes / cfg->channels / ((uint64_t)cfg->msg_pages * NB_PAGE);
	struct transport_listener *l;
	char addr[64];
	double cpu0;
	struct nb_acceptor acc = { .rcv = rcv, .n = cfg->channels, .timeout_ms = cfg->timeout_ms };
	pthread_t at;
	int ret, n = 0;

	memset(r, 0, sizeof(*r));
	lo.backend = TRANSPORT_PLAIN;
	ret = transport_listen("127.0.0.1:0", &lo, &l);
	if (ret)
		goto out;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", transport_listener_port(l));
	for (int i = 0; i < cfg->channels; i++)
		rcv[i] = (struct nb_chan){ .cfg = cfg, .id = i };
	acc.l = l;
	if (pthread_create(&at, NULL, nb_accept_main, &acc)) {
		transport_listener_close(l);
		ret = -EAGAIN;
		goto out;
	}
	for (int i = 0; i < cfg->channels && !ret; i++) {
		snd[i] = (struct nb_chan){ .cfg = cfg, .id = i, .messages = per ? per : 1 };
		ret = transport_connect(addr, &o, &snd[i].ch);
	}
	if (ret)
		transport_listener_cancel(l);
	pthread_join(at, NULL);
	transport_listener_close(l);
	/* Channels not made are NULL: closing them is nothing. */
	n = cfg->channels;
	if (!ret)
		ret = acc.ret;
	if (ret)
		goto out_close;

	/* Receivers first, without a barrier: they just wait for data. */
	for (int i = 0; i < n; i++)
		if (pthread_create(&rcv[i].th, NULL, nb_receiver, &rcv[i])) {
			for (int j = 0; j < n; j++)
				transport_cancel(rcv[j].ch);
			for (int j = 0; j < i; j++)
				pthread_join(rcv[j].th, NULL);
			ret = -EAGAIN;
			goto out_close;
		}
	cpu0 = thread_cpu(RUSAGE_SELF);
	ret = nb_run_threads(snd, n, nb_sender, &r->seconds);
	if (ret)
		for (int i = 0; i < n; i++)
			transport_cancel(rcv[i].ch);
	for (int i = 0; i < n; i++) {
		pthread_join(rcv[i].th, NULL);
		if (!ret && rcv[i].ret) {
			ret = rcv[i].ret;
			fprintf(stderr, "netbench: %s\n", rcv[i].err);
		}
	}
	r->process_cpu = thread_cpu(RUSAGE_SELF) - cpu0;
	nb_collect(snd, n, r, true);
	nb_collect(rcv, n, r, false);
	/* The receivers' counters would count every byte twice. */
	r->st.bytes_received = 0;
	r->st.recv_calls = 0;
out_close:
	for (int i = 0; i < n; i++) {
		transport_close(snd[i].ch);
		transport_close(rcv[i].ch);
	}
out:
	if (ret && transport_error()[0])
		fprintf(stderr, "netbench: %s\n", transport_error());
	return ret;
}

/* The sending host of a two-host run: channel i goes to address i % n. */
static int nb_connect(const struct nb_cfg *cfg, struct nb_result *r)
{
	struct nb_chan cs[NB_MAX_CHANNELS] = { 0 };
	struct transport_opts o = nb_opts(cfg);
	uint64_t per = cfg->bytes / cfg->channels / ((uint64_t)cfg->msg_pages * NB_PAGE);
	double cpu0;
	int ret = 0, n;

	memset(r, 0, sizeof(*r));
	for (n = 0; n < cfg->channels && !ret; n++) {
		cs[n] = (struct nb_chan){ .cfg = cfg, .id = n, .messages = per ? per : 1 };
		ret = transport_connect(cfg->addrs[n % cfg->naddrs], &o, &cs[n].ch);
		if (ret)
			fprintf(stderr, "netbench: %s\n", transport_error());
	}
	if (!ret) {
		cpu0 = thread_cpu(RUSAGE_SELF);
		ret = nb_run_threads(cs, n, nb_sender, &r->seconds);
		r->process_cpu = thread_cpu(RUSAGE_SELF) - cpu0;
		nb_collect(cs, n, r, true);
	}
	for (int i = 0; i < n; i++)
		transport_close(cs[i].ch);
	return ret;
}

/* The receiving host: accept the channels on any of the addresses. */
static int nb_listen(const struct nb_cfg *cfg, struct nb_result *r)
{
	struct transport_listener *ls[NB_MAX_ADDRS];
	struct nb_chan cs[NB_MAX_CHANNELS] = { 0 };
	struct transport_opts o = nb_opts(cfg);
	int ret = 0, nl, n = 0;
	double cpu0 = 0;

	memset(r, 0, sizeof(*r));
	for (nl = 0; nl < cfg->naddrs && !ret; nl++) {
		ret = transport_listen(cfg->addrs[nl], &o, &ls[nl]);
		if (ret) {
			fprintf(stderr, "netbench: %s\n", transport_error());
			break;
		}
	}
	if (!ret)
		printf("netbench: listening for %d channels\n", cfg->channels);
	fflush(stdout);
	for (; !ret && n < cfg->channels; n++) {
		cs[n] = (struct nb_chan){ .cfg = cfg, .id = n };
		ret = transport_accept_any(ls, nl, 60000, &cs[n].ch, NULL);
		if (ret) {
			fprintf(stderr, "netbench: %s\n", transport_error());
			break;
		}
		if (!n)
			cpu0 = thread_cpu(RUSAGE_SELF);
		if (pthread_create(&cs[n].th, NULL, nb_receiver, &cs[n])) {
			transport_close(cs[n].ch);
			ret = -EAGAIN;
			break;
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_join(cs[i].th, NULL);
		if (!ret && cs[i].ret) {
			ret = cs[i].ret;
			fprintf(stderr, "netbench: %s\n", cs[i].err);
		}
	}
	r->process_cpu = thread_cpu(RUSAGE_SELF) - cpu0;
	nb_collect(cs, n, r, false);
	for (int i = 0; i < n; i++)
		r->payload += cs[i].payload;
	r->seconds = (r->st.last_ns - r->st.first_ns) / 1e9;
	for (int i = 0; i < n; i++)
		transport_close(cs[i].ch);
	for (int i = 0; i < nl; i++)
		transport_listener_close(ls[i]);
	return ret;
}

static int nb_split(char *list, const char **out, int max)
{
	int n = 0;

	for (char *save, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return -E2BIG;
		out[n++] = tok;
	}
	return n;
}

static void nb_usage(FILE *f)
{
	fprintf(f,
		"usage: vmdirty netbench [options]\n"
		"  Loopback, in this process, every backend with 1 and 4 channels; or\n"
		"  between two hosts: --listen on the destination, --connect on the source.\n\n"
		"  --backend LIST     plain, zerocopy, uring; NAME-always keeps asking for zero\n"
		"                     copy when the kernel copies (default: plain,zerocopy,\n"
		"                     zerocopy-always,uring; --connect: one)\n"
		"  --channels LIST    channel counts (default 1,4; two hosts: one count)\n"
		"  --mib N            payload of a run in MiB (default 2048)\n"
		"  --msg-kib N        payload of a message, 4 to 4096 KiB (default 256)\n"
		"  --timeout-ms N     transport timeout (default 10000)\n"
		"  --verify           check every received byte\n"
		"  --crypto LIST      none, ktls, gnutls: also with TLS 1.3, records by the\n"
		"                     kernel or by GnuTLS, each beside the unencrypted run\n"
		"                     (default none; two hosts: one, and --key)\n"
		"  --key FILE         two hosts: the key both hold (loopback: a random one)\n"
		"  --json FILE        write the results as JSON\n"
		"  --listen ADDR,...  receive: accept --channels channels on these addresses\n"
		"  --connect ADDR,... send: channel i to address i modulo their number\n");
}

int cmd_netbench(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "channels", required_argument, NULL, 'c' },
		{ "mib", required_argument, NULL, 'm' },
		{ "msg-kib", required_argument, NULL, 'k' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "verify", no_argument, NULL, 'v' },
		{ "crypto", required_argument, NULL, 'x' },
		{ "key", required_argument, NULL, 'K' },
		{ "json", required_argument, NULL, 'j' },
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct nb_cfg cfg = { .bytes = 2048ull << 20, .msg_pages = 64,
			      .timeout_ms = TRANSPORT_DEFAULT_TIMEOUT_MS };
	char *backends = NULL, *channels = NULL, *addrs = NULL, *cryptos = NULL, *end;
	const char *json = NULL, *mode = "loopback", *blist[8], *clist[8], *xlist[NB_NR_CRYPTO];
	const char *key_path = NULL;
	static struct nb_result base[8][8];
	int nb = 4, nc = 2, nx = 1, opt, ret = 0, runs = 0;
	struct auth_key key;
	char why[256];
	unsigned long v;
	FILE *jf = NULL;

	blist[0] = "plain", blist[1] = "zerocopy", blist[2] = "zerocopy-always";
	blist[3] = "uring";
	clist[0] = "1", clist[1] = "4";
	xlist[0] = "none";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			backends = optarg;
			break;
		case 'c':
			channels = optarg;
			break;
		case 'm':
		case 'k':
		case 't':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !v || v > (opt == 'k' ? NB_MAX_PAGES * 4 : 1u << 30) ||
			    (opt == 'k' && v % 4)) {
				fprintf(stderr, "netbench: bad number '%s'\n", optarg);
				return 2;
			}
			if (opt == 'm')
				cfg.bytes = (uint64_t)v << 20;
			else if (opt == 'k')
				cfg.msg_pages = v / 4;
			else
				cfg.timeout_ms = v;
			break;
		case 'v':
			cfg.verify = true;
			break;
		case 'x':
			cryptos = optarg;
			break;
		case 'K':
			key_path = optarg;
			break;
		case 'j':
			json = optarg;
			break;
		case 'l':
		case 'C':
			if (addrs) {
				fprintf(stderr, "netbench: --listen or --connect, once\n");
				return 2;
			}
			addrs = optarg;
			mode = opt == 'l' ? "listen" : "connect";
			break;
		case 'h':
			nb_usage(stdout);
			return 0;
		default:
			nb_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		nb_usage(stderr);
		return 2;
	}
	if ((cryptos && (nx = nb_split(cryptos, xlist, NB_NR_CRYPTO)) <= 0) ||
	    (backends && (nb = nb_split(backends, blist, 8)) <= 0) ||
	    (channels && (nc = nb_split(channels, clist, 8)) <= 0) ||
	    (addrs && (cfg.naddrs = nb_split(addrs, cfg.addrs, NB_MAX_ADDRS)) <= 0)) {
		fprintf(stderr, "netbench: bad list (at most 8 entries)\n");
		return 2;
	}
	if (addrs && (nc != 1 || (!strcmp(mode, "connect") && nb != 1 && backends))) {
		fprintf(stderr, "netbench: two-host runs take one channel count and one backend\n");
		return 2;
	}
	if (addrs && !backends)
		nb = 1;
	if (addrs && nx != 1) {
		fprintf(stderr, "netbench: two-host runs take one --crypto\n");
		return 2;
	}
	/* A key: the one both hosts hold, or a fresh one for loopback. */
	if (key_path ? auth_key_load(key_path, &key, why, sizeof(why)) :
		       (addrs && strcmp(xlist[0], "none")) ?
		       (snprintf(why, sizeof(why), "two-host runs with --crypto need --key"), -1) :
		       auth_key_random(&key)) {
		fprintf(stderr, "netbench: %s\n", why);
		return 2;
	}
	if (auth_creds_new(&key, &cfg.creds, why, sizeof(why))) {
		fprintf(stderr, "netbench: %s\n", why);
		return 1;
	}
	auth_key_wipe(&key);
	ret = nb_region_init();
	if (ret) {
		fprintf(stderr, "netbench: region: %s\n", strerror(-ret));
		return 1;
	}
	if (json) {
		jf = fopen(json, "w");
		if (!jf) {
			fprintf(stderr, "netbench: %s: %s\n", json, strerror(errno));
			return 1;
		}
		fprintf(jf, "{\"benchmark\": \"netbench\", \"runs\": [");
	}
	if (!strcmp(mode, "loopback"))
		printf("netbench: loopback, %llu MiB a run, %u KiB messages of scattered pages%s.\n"
		       "Loopback copies zero-copy sends after all: zerocopy stops asking after %d\n"
		       "copied sends; zerocopy-always shows what a deferred copy costs.\n",
		       (unsigned long long)(cfg.bytes >> 20), cfg.msg_pages * 4,
		       cfg.verify ? ", checked" : "", TRANSPORT_ZC_GIVE_UP);
	for (int x = 0; x < nx && !ret; x++)
	for (int b = 0; b < nb && !ret; b++) {
		cfg.crypto = NB_NR_CRYPTO;
		for (int i = 0; i < NB_NR_CRYPTO; i++)
			if (!strcmp(xlist[x], nb_crypto_names[i]))
				cfg.crypto = i;
		if (cfg.crypto == NB_NR_CRYPTO) {
			fprintf(stderr, "netbench: --crypto '%s': none, ktls or gnutls\n", xlist[x]);
			ret = -EINVAL;
			break;
		}
		ret = nb_parse_backend(blist[b], &cfg);
		if (ret)
			break;
		for (int c = 0; c < nc && !ret; c++) {
			struct nb_result r;

			v = strtoul(clist[c], &end, 10);
			if (*end || !v || v > NB_MAX_CHANNELS) {
				fprintf(stderr, "netbench: channels '%s': 1 to %d\n", clist[c],
					NB_MAX_CHANNELS);
				ret = -EINVAL;
				break;
			}
			cfg.channels = v;
			if (!strcmp(mode, "listen"))
				ret = nb_listen(&cfg, &r);
			else if (!strcmp(mode, "connect"))
				ret = nb_connect(&cfg, &r);
			else
				ret = nb_loopback(&cfg, &r);
			if (ret == -ENOENT && cfg.crypto == NB_KERNEL) {
				/* This kernel has no TLS: say so, go on with the rest. */
				printf("%-22s %3d  (no kTLS in this kernel: %s)\n", nb_name(&cfg),
				       cfg.channels, transport_error());
				ret = 0;
				continue;
			}
			if (ret)
				break;
			if (cfg.crypto == NB_NONE && b < 8 && c < 8)
				base[b][c] = r;
			nb_print(stdout, &cfg, &r, b < 8 && c < 8 ? &base[b][c] : NULL, mode, !runs);
			if (jf)
				nb_json(jf, &cfg, &r, mode, !runs);
			runs++;
		}
	}
	if (jf) {
		fprintf(jf, "\n]}\n");
		fclose(jf);
	}
	auth_creds_free(cfg.creds);
	return ret ? 1 : 0;
}
