// SPDX-License-Identifier: GPL-2.0
/*
 * The bitmap tracker: KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG over the
 * dirty set (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, with
 * KVM_DIRTY_LOG_INITIALLY_SET when KVM offers it).  CLEAR takes 64-page
 * aligned ranges and walks their bitmap in order under the MMU lock, so
 * it coalesces each word's pages into one write-protection call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "track/backend.h"

/*
 * One CLEAR covers a run of words; a run ends at a gap of this many zero
 * words (KVM walks a zero word for about a nanosecond, an ioctl costs a
 * microsecond or more) or at this many words (bounds the MMU lock hold, like
 * QEMU's 1 GiB clear size).
 */
#define CLEAR_GAP_WORDS		512
#define CLEAR_MAX_WORDS		4096

struct bitmap_tracker {
	uint64_t *bits[VM_MAX_SLOTS];		/* GET_DIRTY_LOG's copy */
	uint64_t *summary[VM_MAX_SLOTS];
	bool init_set;				/* KVM_DIRTY_LOG_INITIALLY_SET on */
};

static int bitmap_vm_config(struct vm_config *cfg)
{
	cfg->ring_entries = 0;
	cfg->manual_protect = true;
	cfg->log_dirty = false;
	return 0;
}

static int bitmap_create(struct tracker *t)
{
	struct bitmap_tracker *b;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	t->priv = b;
	for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
		uint64_t np = t->vm->slots[i].size >> TRACK_PAGE_SHIFT;

		b->bits[i] = calloc(track_words(np), 8);
		b->summary[i] = calloc(track_summary_words(np), 8);
		if (!b->bits[i] || !b->summary[i])
			return -ENOMEM;	/* destroy frees what was allocated */
	}
	return 0;
}

static void bitmap_destroy(struct tracker *t)
{
	struct bitmap_tracker *b = t->priv;

	if (!b)
		return;
	for (unsigned int i = 0; i < VM_MAX_SLOTS; i++) {
		free(b->bits[i]);
		free(b->summary[i]);
	}
	free(b);
	t->priv = NULL;
}

static int bitmap_start(struct tracker *t)
{
	struct bitmap_tracker *b = t->priv;
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
	int caps;

	if (t->vm->ring_entries)
		return track_error(t, -EINVAL, "bitmap: the VM has a dirty ring (KVM makes them exclusive)");
	if (t->vm->manual_protect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) {
		/* vm_create() did it (track_vm_config asked for it). */
		b->init_set = t->vm->manual_protect & KVM_DIRTY_LOG_INITIALLY_SET;
	} else {
		caps = vm_check_cap(t->vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
		if (caps <= 0 || !(caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
			return track_error(t, -EOPNOTSUPP, "bitmap: KVM has no KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2");
		/* Before logging is enabled: INITIALLY_SET acts on the enable. */
		cap.args[0] = (uint64_t)caps & (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
						KVM_DIRTY_LOG_INITIALLY_SET);
		if (ioctl(t->vm->fd, KVM_ENABLE_CAP, &cap) < 0)
			return track_error(t, -errno, "bitmap: enabling manual protect");
		b->init_set = cap.args[0] & KVM_DIRTY_LOG_INITIALLY_SET;
	}
	return vm_set_dirty_logging(t->vm, true);
}

static void bitmap_stop(struct tracker *t)
{
	vm_set_dirty_logging(t->vm, false);
}

/* KVM_CLEAR_DIRTY_LOG of words [w0, w1) of slot i. */
static int clear_words(struct tracker *t, unsigned int i, uint64_t w0, uint64_t w1)
{
	struct bitmap_tracker *b = t->priv;
	uint64_t np = t->vm->slots[i].size >> TRACK_PAGE_SHIFT;
	uint64_t end = w1 * 64 < np ? w1 * 64 : np;
	struct kvm_clear_dirty_log cl = {
		.slot = t->vm->slots[i].id,
		.first_page = w0 * 64,
		.num_pages = (uint32_t)(end - w0 * 64),
		.dirty_bitmap = &b->bits[i][w0],
	};

	return ioctl(t->vm->fd, KVM_CLEAR_DIRTY_LOG, &cl) < 0 ? -errno : 0;
}

static int bitmap_harvest(struct tracker *t, struct dirty_log *log)
{
	struct bitmap_tracker *b = t->priv;
	int ret;

	track_log_parts(t, log);
	for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
		uint64_t np = t->vm->slots[i].size >> TRACK_PAGE_SHIFT;
		uint64_t nw = track_words(np), n = 0, run = 0, last = 0;
		struct kvm_dirty_log dl = {
			.slot = t->vm->slots[i].id,
			.dirty_bitmap = b->bits[i],
		};
		uint64_t t0, t1;
		bool in_run = false;

		t0 = track_now_ns();
		if (ioctl(t->vm->fd, KVM_GET_DIRTY_LOG, &dl) < 0)
			return -errno;
		memset(b->summary[i], 0, track_summary_words(np) * 8);
		for (uint64_t w = 0; w < nw; w++) {
			if (!b->bits[i][w])
				continue;
			b->summary[i][w / 64] |= 1ull << (w % 64);
			n += (uint64_t)__builtin_popcountll(b->bits[i][w]);
		}
		t1 = track_now_ns();
		log->collect_ns += t1 - t0;

		/* Re-protect: CLEAR over runs of non-zero words. */
		for (uint64_t sw = 0; sw < track_summary_words(np); sw++) {
			for (uint64_t s = b->summary[i][sw]; s; s &= s - 1) {
				uint64_t w = sw * 64 + (uint64_t)__builtin_ctzll(s);

				if (in_run && (w - last > CLEAR_GAP_WORDS || w - run >= CLEAR_MAX_WORDS)) {
					ret = clear_words(t, i, run, last + 1);
					if (ret < 0)
						return ret;
					in_run = false;
				}
				if (!in_run) {
					run = w;
					in_run = true;
				}
				last = w;
			}
		}
		if (in_run) {
			ret = clear_words(t, i, run, last + 1);
			if (ret < 0)
				return ret;
		}
		log->reset_ns += track_now_ns() - t1;

		log->part[i].bits = b->bits[i];
		log->part[i].summary = b->summary[i];
		log->count += n;
	}
	log->entries = log->count;
	log->resets = log->count;
	return 0;
}

const struct tracker_ops track_bitmap_ops = {
	.name		= "bitmap",
	.vm_config	= bitmap_vm_config,
	.create		= bitmap_create,
	.start		= bitmap_start,
	.harvest	= bitmap_harvest,
	.stop		= bitmap_stop,
	.destroy	= bitmap_destroy,
};
