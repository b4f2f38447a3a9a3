// SPDX-License-Identifier: GPL-2.0
/*
 * WORKLOAD and VERIFY.  A vCPU works on its own slice of the work area:
 * a version table (one u32 per data page) followed by the data pages.
 * Writing page p bumps its version and regenerates its content from
 * (page, version) (guest_abi.h), so any page can be checked later, by the
 * guest itself or by the host.  Progress goes to the mailbox on every op
 * and to GUEST_PORT_PROGRESS about every GUEST_REPORT_MS of TSC time; the
 * rate limit is a token bucket refilled by TSC time.
 */
#include "guest.h"

struct slice {
	uint64_t first;			/* first work page of the slice */
	uint64_t table_pages, data_pages;
	volatile uint32_t *versions;
	uint64_t data;			/* gpa of data page 0 */
};

static void slice_get(uint32_t idx, struct slice *s)
{
	uint64_t n;

	guest_slice(MB->work_pages, MB->nr_vcpus, idx, &s->first, &n);
	s->table_pages = guest_table_pages(n);
	s->data_pages = n - s->table_pages;
	s->versions = (volatile uint32_t *)(GUEST_WORK_BASE + s->first * GUEST_PAGE_SIZE);
	s->data = GUEST_WORK_BASE + (s->first + s->table_pages) * GUEST_PAGE_SIZE;
}

/* Work page number (the content's identity) of data page p. */
static uint64_t slice_page(const struct slice *s, uint64_t p)
{
	return s->first + s->table_pages + p;
}

static volatile uint64_t *slice_ptr(const struct slice *s, uint64_t p)
{
	return (volatile uint64_t *)(s->data + p * GUEST_PAGE_SIZE);
}

/*
 * Rewrites data page p with its next version.  Program order is all a
 * stopped vCPU's memory can show (x86 stores are not reordered with each
 * other), so compiler barriers are enough for a dump to read this: the
 * in-flight mark, then the content, then the version and the count, then
 * the mark cleared (guest_abi.h, struct guest_vcpu_mailbox).
 */
static void write_page(vmb_t *m, const struct slice *s, uint64_t p)
{
	uint32_t v = s->versions[p] + 1;

	if (!v)
		v = 1;
	m->wl_inflight_version = v;
	m->wl_inflight = p + 1;
	barrier();
	guest_page_fill(slice_ptr(s, p), slice_page(s, p), v);
	/* The content first: a version never names content not yet there. */
	barrier();
	s->versions[p] = v;
	m->wl_writes++;
	barrier();
	m->wl_inflight = 0;
}

/* 1 if data page p is as its version says (or was never written). */
static int check_page(vmb_t *m, const struct slice *s, uint64_t p)
{
	uint32_t v = s->versions[p];
	int q;

	if (!v)
		return 1;
	m->checks++;
	if (v > m->wl_writes) {
		guest_report_error(m, GUEST_ERR_TABLE, slice_page(s, p), v, 0);
		return 0;
	}
	q = guest_page_check(slice_ptr(s, p), slice_page(s, p), v);
	if (q < 0)
		return 1;
	guest_report_error(m, GUEST_ERR_PAGE, slice_page(s, p), v, (uint64_t)q);
	return 0;
}

/* One exit either way: a tick on the debug console, or the VMM's progress port. */
static void report(uint32_t idx, vmb_t *m)
{
	m->reports++;
	if (MB->features & GUEST_F_DEBUGCON)
		guest_dbg_tick(idx);
	else
		outl(GUEST_PORT_PROGRESS, idx);
}

/*
 * The rate limit's token bucket: credit in bytes, refilled from the TSC
 * time elapsed (so a late wakeup loses nothing), at most one report window
 * of burst plus a page.  The elapsed time counted is capped at two windows
 * before the multiplication: after a pause or a migration there is no
 * burst to catch up, and rate * cycles stays far from overflowing.
 */
struct bucket {
	uint64_t rate, hz, credit, cap, last, max_cycles;
};

static void bucket_refill(struct bucket *b, uint64_t now)
{
	uint64_t el = now - b->last;

	if (el > b->max_cycles)
		el = b->max_cycles;
	b->last = now;
	b->credit += el * b->rate / b->hz;
	if (b->credit > b->cap)
		b->credit = b->cap;
}

/* TSC time at which the bucket holds a page again. */
static uint64_t bucket_page_at(const struct bucket *b, uint64_t now)
{
	return now + (GUEST_PAGE_SIZE - b->credit) * b->hz / b->rate + 1;
}

int64_t guest_cmd_workload(uint32_t idx, vmb_t *m)
{
	uint64_t kind = m->args[0], hot = m->args[2];
	uint64_t rng = guest_wl_seed(m->args[3], idx);
	uint64_t period = MB->tsc_khz * GUEST_REPORT_MS;
	uint64_t range, cursor = 0, now, window_end, p;
	struct bucket b = { .rate = m->args[1], .hz = MB->tsc_khz * 1000 };
	struct slice s;

	if (kind > GUEST_WL_MAX)
		return GUEST_EINVAL;
	slice_get(idx, &s);
	if (!s.data_pages)
		return GUEST_ERANGE;
	range = s.data_pages;
	if (kind == GUEST_WL_HOTSET) {
		hot /= MB->nr_vcpus;
		if (!hot)
			return GUEST_EINVAL;
		if (hot < range)
			range = hot;
	}
	/* A fresh table: what the slice held before is not ours to check. */
	m->wl_ready = 0;
	for (p = 0; p < s.data_pages; p++)
		s.versions[p] = 0;
	m->wl_first = s.first;
	m->wl_table_pages = s.table_pages;
	m->wl_data_pages = s.data_pages;
	m->wl_writes = 0;
	m->wl_inflight = 0;
	m->wl_ready = 1;

	/* Without a TSC frequency there is no time: no limit, reports by count. */
	if (!period)
		b.rate = 0;
	b.cap = b.rate / (1000 / GUEST_REPORT_MS) + GUEST_PAGE_SIZE;
	b.credit = GUEST_PAGE_SIZE;
	b.max_cycles = 2 * period;
	now = rdtsc();
	b.last = now;
	window_end = now + period;
	while (!m->stop) {
		if (b.rate)
			bucket_refill(&b, now);
		if (kind == GUEST_WL_IDLE) {
			/* arg1: wakeups a second (0: one a report window). */
			uint64_t at = m->args[1] ? now + b.hz / m->args[1] : window_end;

			if (period)
				guest_sleep_until(at < window_end ? at : window_end);
			m->ops++;
			guest_fpu_step(m);
		} else if (b.rate && b.credit < GUEST_PAGE_SIZE) {
			uint64_t at = bucket_page_at(&b, now);

			guest_sleep_until(at < window_end ? at : window_end);
		} else {
			if (kind == GUEST_WL_SEQ) {
				p = cursor++;
				if (cursor == range)
					cursor = 0;
			} else {
				p = guest_rand_below(&rng, range);
			}
			write_page(m, &s, p);
			if (b.rate)
				b.credit -= GUEST_PAGE_SIZE;
			m->ops++;
			guest_fpu_step(m);
			if (!(m->wl_writes & 7))
				check_page(m, &s, guest_rand_below(&rng, range));
		}
		now = rdtsc();
		if (!period) {
			if (!(m->ops & 1023))
				report(idx, m);
			continue;
		}
		if (now < window_end)
			continue;
		report(idx, m);
		/* After a long stall (pause, migration), reports restart from now. */
		window_end = now - window_end > period ? now + period : window_end + period;
	}
	return 0;
}

int64_t guest_cmd_verify(uint32_t idx, vmb_t *m)
{
	uint64_t p, bad = 0;
	struct slice s;

	if (!m->wl_ready)
		return GUEST_EINVAL;
	slice_get(idx, &s);
	if (s.first != m->wl_first || s.data_pages != m->wl_data_pages)
		return GUEST_EINVAL;
	for (p = 0; p < s.data_pages; p++)
		bad += !check_page(m, &s, p);
	return (int64_t)bad;
}
