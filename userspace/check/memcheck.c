// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's content rule, checked in a dump of a stopped guest: the
 * mailbox (magic, layout, each vCPU's slice where guest_slice() puts it),
 * then for every vCPU each data page with a version against the content
 * that version names (guest_page_check, as GUEST_CMD_VERIFY does), no
 * version beyond the writes made, and the versions adding up to the write
 * count, since every write bumps one page's version by one.
 *
 * A vCPU stopped in the middle of write_page() (the dump of a paused
 * guest) leaves at most one page half rewritten; the mailbox names it
 * (wl_inflight), and it must read as the new version's content up to some
 * qword and the old version's after it.  Never-written pages hold whatever
 * the loader left there and are not checked.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check/check.h"

static void problem(struct memcheck *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct memcheck *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->problems++) {
		va_start(ap, fmt);
		vsnprintf(r->first, sizeof(r->first), fmt, ap);
		va_end(ap);
	}
}

/* The version's content, whole (zero class: zeros). */
static void page_content(uint64_t out[GUEST_PAGE_QWORDS], uint64_t page, uint32_t version)
{
	guest_page_fill(out, page, version);
}

/*
 * A page caught mid-rewrite from old to new: new's content up to some
 * qword, old's from there (old 0: never written, anything goes there).
 */
static bool torn_ok(const uint64_t *src, uint64_t page, uint32_t old, uint32_t new)
{
	uint64_t want[GUEST_PAGE_QWORDS];
	unsigned int q = 0;

	page_content(want, page, new);
	while (q < GUEST_PAGE_QWORDS && src[q] == want[q])
		q++;
	if (!old)
		return true;
	page_content(want, page, old);
	for (; q < GUEST_PAGE_QWORDS; q++)
		if (src[q] != want[q])
			return false;
	return true;
}

static int check_vcpu(const struct dump *d, const struct guest_mailbox *mb, uint32_t i,
		      struct memcheck *r)
{
	const struct guest_vcpu_mailbox *m = &mb->vcpu[i];
	struct memcheck_vcpu *v = &r->vcpu[i];
	uint64_t first, n, table, data, p, sum = 0, in_p = 0;
	uint32_t in_v = 0;
	const uint32_t *versions;
	bool in_stored = false;

	v->ops = m->ops;
	v->reports = m->reports;
	v->writes = m->wl_writes;
	v->errors = m->errors;
	r->ops += m->ops;
	r->writes += m->wl_writes;
	if (m->errors)
		problem(r, "vCPU %u: the guest itself found %llu errors (last GUEST_ERR %llu, %#llx %#llx %#llx)",
			i, (unsigned long long)m->errors, (unsigned long long)m->err_code,
			(unsigned long long)m->err_info[0], (unsigned long long)m->err_info[1],
			(unsigned long long)m->err_info[2]);
	if (m->wl_ready != 1) {
		problem(r, "vCPU %u: no workload slice (wl_ready %llu)", i,
			(unsigned long long)m->wl_ready);
		return 0;
	}
	guest_slice(mb->work_pages, mb->nr_vcpus, i, &first, &n);
	table = guest_table_pages(n);
	data = n - table;
	if (m->wl_first != first || m->wl_table_pages != table || m->wl_data_pages != data) {
		problem(r, "vCPU %u: slice %llu+%llu/%llu in the mailbox, %llu+%llu/%llu by the layout",
			i, (unsigned long long)m->wl_first, (unsigned long long)m->wl_table_pages,
			(unsigned long long)m->wl_data_pages, (unsigned long long)first,
			(unsigned long long)table, (unsigned long long)data);
		return 0;
	}
	v->data_pages = data;
	versions = dump_ptr(d, GUEST_WORK_BASE + first * GUEST_PAGE_SIZE, data * sizeof(uint32_t));
	if (!versions) {
		problem(r, "vCPU %u: the dump lacks its version table", i);
		return 0;
	}
	if (m->wl_inflight) {
		in_p = m->wl_inflight - 1;
		in_v = (uint32_t)m->wl_inflight_version;
		if (in_p >= data || !in_v || in_v != m->wl_inflight_version) {
			problem(r, "vCPU %u: page in flight %llu version %llu: no such page or version",
				i, (unsigned long long)m->wl_inflight,
				(unsigned long long)m->wl_inflight_version);
			return 0;
		}
	}
	for (p = 0; p < data; p++) {
		uint64_t page = first + table + p, gpa = GUEST_WORK_BASE + page * GUEST_PAGE_SIZE;
		uint32_t ver = versions[p];
		const uint64_t *src;
		bool inflight = m->wl_inflight && p == in_p;
		int q;

		sum += ver;
		if (!ver && !inflight)
			continue;
		src = dump_ptr(d, gpa, GUEST_PAGE_SIZE);
		if (!src) {
			problem(r, "vCPU %u: the dump lacks page %llu (gpa %#llx)", i,
				(unsigned long long)page, (unsigned long long)gpa);
			v->bad++;
			continue;
		}
		v->written += !!ver;
		r->checked++;
		if (inflight && ver + 1 == in_v) {
			v->inflight++;
			if (torn_ok(src, page, ver, in_v))
				continue;
			problem(r, "vCPU %u: page %llu (gpa %#llx) in flight from version %u to %u is neither",
				i, (unsigned long long)page, (unsigned long long)gpa, ver, in_v);
			v->bad++;
			continue;
		}
		if (inflight && ver != in_v) {
			problem(r, "vCPU %u: page %llu in flight to version %u has version %u",
				i, (unsigned long long)page, in_v, ver);
			v->bad++;
			continue;
		}
		in_stored |= inflight;
		/* The one page whose version is stored before the count is bumped may be one ahead. */
		if (ver > m->wl_writes + inflight) {
			problem(r, "vCPU %u: page %llu (gpa %#llx) has version %u after %llu writes",
				i, (unsigned long long)page, (unsigned long long)gpa, ver,
				(unsigned long long)m->wl_writes);
			v->bad++;
			continue;
		}
		q = guest_page_check(src, page, ver);
		if (q >= 0) {
			problem(r, "vCPU %u: page %llu (gpa %#llx) version %u differs at qword %d: %#llx",
				i, (unsigned long long)page, (unsigned long long)gpa, ver, q,
				(unsigned long long)src[q]);
			v->bad++;
		}
	}
	if (sum != m->wl_writes && !(in_stored && sum == m->wl_writes + 1)) {
		problem(r, "vCPU %u: its versions add up to %llu, but it made %llu writes", i,
			(unsigned long long)sum, (unsigned long long)m->wl_writes);
		v->bad++;
	}
	r->bad += v->bad;
	r->inflight += v->inflight;
	return 0;
}

int memcheck_run(const struct dump *d, struct memcheck *r)
{
	const struct guest_mailbox *p = dump_ptr(d, GUEST_MAILBOX_GPA, sizeof(*p));
	struct guest_mailbox mb;
	uint32_t i;

	memset(r, 0, sizeof(*r));
	if (!p) {
		problem(r, "the dump does not hold the mailbox (gpa %#llx)",
			(unsigned long long)GUEST_MAILBOX_GPA);
		return -EINVAL;
	}
	memcpy(&mb, p, sizeof(mb));
	if (mb.magic != GUEST_MAILBOX_MAGIC) {
		problem(r, "mailbox magic %#llx at gpa %#llx: not a vmdirty guest, or not booted",
			(unsigned long long)mb.magic, (unsigned long long)GUEST_MAILBOX_GPA);
		return 1;
	}
	if (mb.abi_version != GUEST_ABI_VERSION) {
		problem(r, "guest ABI %u, this checker reads %d", mb.abi_version, GUEST_ABI_VERSION);
		return 1;
	}
	r->nr_vcpus = mb.nr_vcpus;
	r->boot = mb.boot;
	r->mem_size = mb.mem_size;
	r->tsc_khz = mb.tsc_khz;
	if (!mb.nr_vcpus || mb.nr_vcpus > GUEST_MAX_VCPUS || mb.mem_size % GUEST_LARGE_PAGE_SIZE ||
	    mb.mem_size <= GUEST_WORK_BASE || mb.mem_size > GUEST_MAX_MEM ||
	    mb.work_pages != (mb.mem_size - GUEST_WORK_BASE) / GUEST_PAGE_SIZE) {
		problem(r, "mailbox: %u vCPUs, %llu bytes of RAM, %llu work pages: not a layout",
			mb.nr_vcpus, (unsigned long long)mb.mem_size,
			(unsigned long long)mb.work_pages);
		return 1;
	}
	for (i = 0; i < mb.nr_vcpus; i++)
		check_vcpu(d, &mb, i, r);
	return r->problems ? 1 : 0;
}
