// SPDX-License-Identifier: GPL-2.0
/*
 * Channel senders: one thread per channel, each with its own codec stream,
 * encoding batches of the current round's pages and sending them, raw
 * pages straight from guest memory when zero copy is on.
 *
 * Why sending guest pages that the guest may still write is safe (zero copy
 * or not, and for the compressor reading them too): every page of a round
 * was re-protected by the harvest that listed it before we read it.  If the
 * guest writes it after that, KVM logs it again, so it is in the next
 * harvest and goes out again in a later round with a higher round number,
 * and the destination keeps the newest round's content.  Whatever bytes the
 * kernel or the compressor saw in between only ever get overwritten.  The
 * final round runs with every vCPU paused, so its pages cannot change until
 * the commit (after it the source never resumes; before it, resuming
 * means the destination discards), and the page digest (and --verify-ram's
 * RAM hash) must match, so what the destination resumes from is exactly
 * the source's memory at the pause.  The source waits for the kernel to
 * let go of every lent page only after the destination resumed
 * (switch_src.c, release_pages()), outside the downtime.  Raw pages sent
 * by reference are outside the message checksum (WIRE_FEAT_RAW_UNCHECKED);
 * the RAM hash covers them end to end.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "migrate/source_int.h"

/*
 * Tell the codec what the link delivers, when its choice needs it (no
 * --bandwidth, a codec to choose): TCP's rate sample of the batches sent so
 * far.  A kernel without one (before 4.9) leaves the codec to its rule
 * without a link figure.  A sample TCP has not renewed since the last batch
 * (nothing acknowledged in between) is not counted twice: the small
 * app-limited bursts of late rounds would otherwise weigh several times.
 */
static void link_sample(struct sender *s)
{
	struct transport_link lk;

	if (!wire_tx_wants_link(s->tx) || transport_link(s->ch, &lk))
		return;
	if (lk.delivered && lk.delivered == s->link_delivered)
		return;
	s->link_delivered = lk.delivered;
	wire_tx_link_sample(s->tx, lk.delivery_bps, lk.app_limited);
}

static int send_batch(struct sender *s, uint32_t round, const uint64_t *gfns, unsigned int n)
{
	struct source *src = s->src;
	struct wire_txmsg *m = &s->msg[s->next];
	transport_ticket_t *t = &s->ticket[s->next];
	struct wire_tx_stats before, after;
	ssize_t len;
	int ret;

	uint64_t t0, t1;

	/* Zero copy: the kernel may still hold this buffer (and pages it named). */
	t0 = vmm_now_ns();
	if (*t != TRANSPORT_TICKET_DONE) {
		ret = transport_wait(s->ch, *t);
		if (ret)
			return ret;
		*t = TRANSPORT_TICKET_DONE;
	}
	t1 = vmm_now_ns();
	s->time.link_ns += t1 - t0;
	wire_tx_stats(s->tx, &before);
	len = wire_tx_pages(s->tx, &s->st, m, src->vm->mem, round, gfns, n);
	if (len < 0)
		return (int)len;
	wire_tx_stats(s->tx, &after);
	t0 = vmm_now_ns();
	s->time.comp_ns += after.comp_ns - before.comp_ns;
	s->time.read_ns += t0 - t1 - (after.comp_ns - before.comp_ns);
	s->time.scan_ns += after.scan_ns - before.scan_ns;
	ret = ratelimit_take(&src->rl, len, &src->abort);
	t1 = vmm_now_ns();
	s->time.link_ns += t1 - t0;
	s->time.cap_ns += t1 - t0;
	if (ret)
		return ret;
	/*
	 * Zero copy (when the channel's backend does it) for compressed buffers
	 * too: the ring of messages only reuses one after its ticket completed.
	 */
	ret = transport_send(s->ch, m->iov, m->niov, 0, t);
	if (ret)
		return ret;
	link_sample(s);
	s->next = (s->next + 1) % SENDER_INFLIGHT;
	s->pages += n;
	s->zero_pages += after.zero_pages - before.zero_pages;
	s->wire_bytes += len;
	return 0;
}

static int send_pages(struct sender *s, uint32_t round);

/*
 * This thread's time on a CPU and runnable but waiting for one
 * (/proc/thread-self/schedstat: sum_exec_runtime, run_delay); zeros where
 * the kernel does not say.  What the guest took of the waits, the pause
 * gives back (converge.c).
 */
static void sched_times(uint64_t *run, uint64_t *wait)
{
	unsigned long long r = 0, w = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "re");

	if (f) {
		if (fscanf(f, "%llu %llu", &r, &w) != 2)
			r = w = 0;
		fclose(f);
	}
	*run = r;
	*wait = w;
}

static int send_round(struct sender *s, uint32_t round)
{
	struct source *src = s->src;

	struct transport_stats t0, t1;
	uint64_t run0, run1, wait0, wait1;
	int ret = 0;

	s->pages = s->zero_pages = s->wire_bytes = 0;
	memset(&s->time, 0, sizeof(s->time));
	transport_get_stats(s->ch, &t0);
	sched_times(&run0, &wait0);
	ret = send_pages(s, round);
	sched_times(&run1, &wait1);
	transport_get_stats(s->ch, &t1);
	if (wait1 > wait0)
		s->time.cpu_wait_ns = wait1 - wait0;
	if (run1 > run0)
		s->time.cpu_ns = run1 - run0;
	/* sendmsg() copying, and blocked on a full socket buffer (the link). */
	s->time.send_ns += (t1.send_ns - t0.send_ns) - (t1.full_ns - t0.full_ns);
	s->time.link_ns += t1.full_ns - t0.full_ns;
	if (ret)
		return ret;
	if (src->abort)
		return -ECANCELED;
	/* Before ROUND_END: the destination's ROUND_ACK can only come after every channel's. */
	pthread_mutex_lock(&src->lock);
	if (vmm_now_ns() > src->round_sent_at[round & 1])
		src->round_sent_at[round & 1] = vmm_now_ns();
	pthread_mutex_unlock(&src->lock);
	/* Every channel ends every round, even one that carried nothing. */
	return msg_send(s->ch, s->ctl, wire_enc_round_end(&s->st, s->ctl, sizeof(s->ctl), round));
}

static int send_pages(struct sender *s, uint32_t round)
{
	struct source *src = s->src;
	uint64_t batch = wire_tx_max_pages(s->tx);
	int ret;

	while (!src->abort) {
		uint64_t i = atomic_fetch_add(&src->cursor, batch);

		if (i >= src->nr_gfns)
			break;
		ret = send_batch(s, round, src->gfns + i,
				 src->nr_gfns - i < batch ? src->nr_gfns - i : batch);
		if (ret)
			return ret;
		if (source_cancelled(src))
			return -ECANCELED;
	}
	return 0;
}

/*
 * With --nice, run this sender at nice @nice (where the process may:
 * RLIMIT_NICE, CAP_SYS_NICE; said if not); without, as the process runs.
 * Either way note what it runs at, for the report.
 */
static int sender_nice(struct sender *s, unsigned int nice)
{
	if (s->src->o->nice && setpriority(PRIO_PROCESS, gettid(), nice))
		source_log(s->src, "channel %u: nice %u: %s", s->idx, nice, strerror(errno));
	s->nice = getpriority(PRIO_PROCESS, gettid());
	return s->nice;
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct source *src = s->src;
	char name[16];

	/* Named threads: perf and top tell who does what. */
	snprintf(name, sizeof(name), "src-send%u", s->idx);
	pthread_setname_np(pthread_self(), name);
	/* --nice: the guest's vCPU threads first (Linux's nice is per thread). */
	s->asked = src->o->nice;
	src->rep->nice[s->idx] = sender_nice(s, s->asked);

	for (;;) {
		unsigned int nice;
		uint32_t round;
		int ret;

		pthread_mutex_lock(&src->lock);
		while (!src->quit && src->job_gen == s->gen)
			pthread_cond_wait(&src->cond_work, &src->lock);
		if (src->quit) {
			pthread_mutex_unlock(&src->lock);
			break;
		}
		s->gen = src->job_gen;
		round = src->job_round;
		nice = src->job_nice;
		pthread_mutex_unlock(&src->lock);
		if (nice != s->asked) {
			s->asked = nice;
			sender_nice(s, nice);
		}

		ret = send_round(s, round);
		if (ret && ret != -ECANCELED)
			source_fail(src, "channel %u (%s), round %u: %s", s->idx,
				    transport_peer(s->ch), round,
				    ret == -EPIPE || ret == -ECONNRESET || ret == -ETIMEDOUT ?
				    transport_error() : strerror(-ret));
		else if (ret)
			/*
			 * Stopped between two messages: the channels stay whole, so
			 * that the main thread can still tell the destination.
			 */
			source_abort(src, src->ctl->why[0] ? src->ctl->why : "cancelled");

		pthread_mutex_lock(&src->lock);
		src->busy--;
		pthread_cond_broadcast(&src->cond_done);
		pthread_mutex_unlock(&src->lock);
	}
	return NULL;
}

int senders_start(struct source *src)
{
	src->job_nice = src->o->nice;
	for (unsigned int i = 0; i < src->n; i++) {
		struct sender *s = &src->snd[i];
		int ret = pthread_create(&s->thread, NULL, sender_main, s);

		if (ret) {
			source_fail(src, "cannot start sender thread: %s", strerror(ret));
			return -ret;
		}
		s->started = true;
	}
	return 0;
}

int senders_run_round(struct source *src, uint32_t round, const uint64_t *gfns, uint64_t n)
{
	pthread_mutex_lock(&src->lock);
	src->gfns = gfns;
	src->nr_gfns = n;
	atomic_store(&src->cursor, 0);
	src->job_round = round;
	src->round_sent_at[round & 1] = 0;
	src->job_gen++;
	src->busy = src->n;
	pthread_cond_broadcast(&src->cond_work);
	while (src->busy)
		pthread_cond_wait(&src->cond_done, &src->lock);
	pthread_mutex_unlock(&src->lock);
	return src->abort ? -ECANCELED : 0;
}

void senders_stop(struct source *src)
{
	pthread_mutex_lock(&src->lock);
	src->quit = true;
	pthread_cond_broadcast(&src->cond_work);
	pthread_mutex_unlock(&src->lock);
	for (unsigned int i = 0; i < src->n; i++) {
		if (src->snd[i].started)
			pthread_join(src->snd[i].thread, NULL);
		src->snd[i].started = false;
	}
}
