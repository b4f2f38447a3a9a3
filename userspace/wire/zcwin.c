// SPDX-License-Identifier: GPL-2.0
/*
 * The completion window of zero-copy sends (transport_priv.h): which ids
 * completed, in whatever order the kernel reports them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire/transport_priv.h"

static bool zcwin_test(const struct tp_zcwin *w, uint64_t id)
{
	uint64_t bit = id & (w->cap - 1);

	return w->bits[bit / 64] & (1ull << (bit % 64));
}

static void zcwin_assign(struct tp_zcwin *w, uint64_t id, bool on)
{
	uint64_t bit = id & (w->cap - 1);

	if (on)
		w->bits[bit / 64] |= 1ull << (bit % 64);
	else
		w->bits[bit / 64] &= ~(1ull << (bit % 64));
}

int tp_zcwin_reserve(struct tp_zcwin *w, uint64_t n)
{
	uint64_t need = w->next - w->done + n, cap = w->cap ? w->cap : 1024;
	struct tp_zcwin grown;

	if (need <= w->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	grown = *w;
	grown.cap = cap;
	grown.bits = calloc(cap / 64, sizeof(uint64_t));
	if (!grown.bits)
		return tp_err(-ENOMEM, "zero-copy window of %llu sends: out of memory",
			      (unsigned long long)cap);
	for (uint64_t id = w->done; id < w->next; id++)
		if (zcwin_test(w, id))
			zcwin_assign(&grown, id, true);
	free(w->bits);
	*w = grown;
	return 0;
}

uint64_t tp_zcwin_issue(struct tp_zcwin *w)
{
	return w->next++;
}

int64_t tp_zcwin_complete(struct tp_zcwin *w, uint64_t lo, uint64_t hi)
{
	if (lo > hi || lo < w->done || hi >= w->next)
		return tp_err(-EPROTO, "completion [%llu, %llu] outside the pending ids [%llu, %llu)",
			      (unsigned long long)lo, (unsigned long long)hi,
			      (unsigned long long)w->done, (unsigned long long)w->next);
	for (uint64_t id = lo; id <= hi; id++)
		if (zcwin_test(w, id))
			return tp_err(-EPROTO, "id %llu completed twice",
				      (unsigned long long)id);
	for (uint64_t id = lo; id <= hi; id++)
		zcwin_assign(w, id, true);
	while (w->done < w->next && zcwin_test(w, w->done)) {
		zcwin_assign(w, w->done, false);
		w->done++;
	}
	return hi - lo + 1;
}

uint64_t tp_zcwin_widen(const struct tp_zcwin *w, uint32_t id)
{
	return w->done + (uint32_t)(id - (uint32_t)w->done);
}

void tp_zcwin_free(struct tp_zcwin *w)
{
	free(w->bits);
	memset(w, 0, sizeof(*w));
}
