// SPDX-License-Identifier: GPL-2.0
/*
 * The kmod tracker: vmdirty.ko (include/uapi/linux/vmdirty.h).  Start turns
 * dirty logging on, then attaches a session to the VM and maps its shared
 * region; a harvest is one VMDIRTY_IOC_HARVEST, after which the log points
 * straight into the region's snapshot set (no copy).  A vCPU that takes
 * KVM_EXIT_DIRTY_RING_FULL harvests with VMDIRTY_HARVEST_NO_SWAP: its
 * entries wait in the live set for the next harvest.  A layout the module
 * reports stale is re-attached, and that harvest reports every page, since
 * the old session dropped what it could not place.  So is a session that
 * failed because someone else collected the rings (EPIPE,
 * VMDIRTY_STATUS_RING_CONFLICT): its bits may lack pages.  If the new
 * session fails the same way as soon as it can tell (its first harvest
 * adopts the rings as they are, its second is the first that can notice),
 * the other collector is still at work, and the harvest fails with EPIPE
 * and says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vmdirty.h>

#include "track/backend.h"

struct kmod_tracker {
	int fd;				/* session, -1 when detached */
	uint8_t *region;
	size_t region_size;
	const struct vmdirty_shm_header *hdr;
	uint32_t layout_gen;
	uint32_t features;
	unsigned int shm_slot[VM_MAX_SLOTS];	/* VM slot index -> region slot */
	uint32_t fetch[VM_MAX_VCPUS];	/* ring cursors, once the session is gone */
	bool lost;			/* a session failed: the next harvest re-attaches */
	bool after_conflict;		/* this session replaced a failed one */
	unsigned int harvests;		/* of this session, successful */
};

static const struct vmdirty_shm_slot *shm_slot(const struct kmod_tracker *k, unsigned int j)
{
	return (const void *)(k->region + k->hdr->slots_offset + (uint64_t)j * k->hdr->slot_size);
}

static const struct vmdirty_shm_vcpu *shm_vcpu(const struct kmod_tracker *k, unsigned int j)
{
	return (const void *)(k->region + k->hdr->vcpus_offset + (uint64_t)j * k->hdr->vcpu_size);
}

static int kmod_vm_config(struct vm_config *cfg)
{
	if (!cfg->ring_entries)
		cfg->ring_entries = TRACK_RING_KMOD_DEFAULT;
	if (cfg->ring_entries & (cfg->ring_entries - 1))
		return -EINVAL;
	cfg->manual_protect = false;
	cfg->log_dirty = false;
	return 0;
}

static int kmod_create(struct tracker *t)
{
	struct kmod_tracker *k;

	if (!t->vm->ring_entries || t->vm->nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->fd = -1;
	t->priv = k;
	return 0;
}

static void kmod_destroy(struct tracker *t)
{
	free(t->priv);
	t->priv = NULL;
}

/* [off, off + len) lies in a region of size bytes and is 8-byte aligned. */
static bool in_region(uint64_t size, uint64_t off, uint64_t len)
{
	return !(off % 8) && off <= size && len <= size - off;
}

#define REGION_BAD(...) do { snprintf(why, len, __VA_ARGS__); return -EPROTO; } while (0)

int track_kmod_check_region(const void *region, uint64_t size, const struct vmdirty_attach *at,
			    unsigned int nr_vcpus, char *why, size_t len)
{
	const struct vmdirty_shm_header *h = region;

	if (size < sizeof(*h) || size != at->region_size)
		REGION_BAD("kmod: region of %llu bytes, ATTACH said %llu", (unsigned long long)size,
			   (unsigned long long)at->region_size);
	if (h->magic != VMDIRTY_SHM_MAGIC || h->abi_version != VMDIRTY_ABI_VERSION)
		REGION_BAD("kmod: region magic 0x%x ABI %u, expected 0x%x ABI %d",
			   h->magic, h->abi_version, VMDIRTY_SHM_MAGIC, VMDIRTY_ABI_VERSION);
	if (h->header_size < sizeof(*h) || h->slot_size < sizeof(struct vmdirty_shm_slot) ||
	    h->vcpu_size < sizeof(struct vmdirty_shm_vcpu) || h->slot_size % 8 || h->vcpu_size % 8)
		REGION_BAD("kmod: region sizes header %u slot %u vcpu %u too small or unaligned",
			   h->header_size, h->slot_size, h->vcpu_size);
	if (h->region_size != at->region_size || h->nr_slots != at->nr_slots ||
	    h->layout_gen != at->layout_gen)
		REGION_BAD("kmod: region (size %llu, %u slots, gen %u) disagrees with ATTACH (%llu, %u, %u)",
			   (unsigned long long)h->region_size, h->nr_slots, h->layout_gen,
			   (unsigned long long)at->region_size, at->nr_slots, at->layout_gen);
	if (h->snapshot > 1)
		REGION_BAD("kmod: region snapshot index %u", h->snapshot);
	if (h->slots_offset < h->header_size ||
	    !in_region(size, h->slots_offset, (uint64_t)h->nr_slots * h->slot_size) ||
	    h->vcpus_offset < h->header_size ||
	    !in_region(size, h->vcpus_offset, (uint64_t)h->max_vcpus * h->vcpu_size))
		REGION_BAD("kmod: region tables out of bounds");
	if (h->max_vcpus < nr_vcpus)
		REGION_BAD("kmod: region has %u vCPU entries, the VM %u", h->max_vcpus, nr_vcpus);
	for (unsigned int j = 0; j < h->nr_slots; j++) {
		const struct vmdirty_shm_slot *s = (const void *)((const uint8_t *)region +
			h->slots_offset + (uint64_t)j * h->slot_size);
		uint64_t w, sw;

		/* A slot that does not log dirty pages has no bits, offsets 0. */
		if (!(s->flags & VMDIRTY_SLOT_LOG_DIRTY)) {
			for (unsigned int set = 0; set < 2; set++)
				if (s->bitmap_offset[set] || s->summary_offset[set])
					REGION_BAD("kmod: slot %u logs no dirty pages but has bitmaps",
						   s->id);
			continue;
		}
		/* Bits must fit in the region: bounds npages before any arithmetic. */
		if (s->npages > size * 8)
			REGION_BAD("kmod: slot %u has %llu pages", s->id, (unsigned long long)s->npages);
		w = track_words(s->npages);
		sw = track_summary_words(s->npages);
		for (unsigned int set = 0; set < 2; set++) {
			if (!in_region(size, s->bitmap_offset[set], w * 8) ||
			    !in_region(size, s->summary_offset[set], sw * 8))
				REGION_BAD("kmod: slot %u's bitmaps out of bounds", s->id);
		}
	}
	return 0;
}

/* Check what the region says about itself against ATTACH's answer. */
static int check_region(struct tracker *t, const struct vmdirty_attach *at)
{
	struct kmod_tracker *k = t->priv;
	char why[sizeof(t->error)];
	int ret;

	ret = track_kmod_check_region(k->region, k->region_size, at, t->vm->nr_vcpus, why,
				      sizeof(why));
	if (ret < 0)
		track_error(t, 0, "%s", why);
	return ret;
}

/* Find each VM slot in the region's table; all must be there, logged. */
static int map_slots(struct tracker *t)
{
	struct kmod_tracker *k = t->priv;

	for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
		const struct vm_slot *vs = &t->vm->slots[i];
		unsigned int j;

		for (j = 0; j < k->hdr->nr_slots; j++) {
			const struct vmdirty_shm_slot *s = shm_slot(k, j);

			if (s->as_id == 0 && s->id == vs->id)
				break;
		}
		if (j == k->hdr->nr_slots)
			return track_error(t, -ESTALE, "kmod: slot %u is not in the session's layout", vs->id);
		if (shm_slot(k, j)->base_gfn != vs->gpa >> TRACK_PAGE_SHIFT ||
		    shm_slot(k, j)->npages != vs->size >> TRACK_PAGE_SHIFT)
			return track_error(t, -ESTALE, "kmod: slot %u recorded at gfn 0x%llx+%llu, the VM has 0x%llx+%llu",
					   vs->id, (unsigned long long)shm_slot(k, j)->base_gfn,
					   (unsigned long long)shm_slot(k, j)->npages,
					   (unsigned long long)(vs->gpa >> TRACK_PAGE_SHIFT),
					   (unsigned long long)(vs->size >> TRACK_PAGE_SHIFT));
		if (!(shm_slot(k, j)->flags & VMDIRTY_SLOT_LOG_DIRTY))
			return track_error(t, -ESTALE, "kmod: slot %u recorded without dirty logging", vs->id);
		k->shm_slot[i] = j;
	}
	return 0;
}

static void detach(struct tracker *t)
{
	struct kmod_tracker *k = t->priv;

	if (k->region)
		munmap(k->region, k->region_size);
	if (k->fd >= 0)
		close(k->fd);
	k->region = NULL;
	k->hdr = NULL;
	k->fd = -1;
}

static int set_drain(struct tracker *t, bool on)
{
	struct kmod_tracker *k = t->priv;
	struct vmdirty_drain d = {
		.size = sizeof(d),
		.flags = on ? VMDIRTY_DRAIN_ENABLE : 0,
		.min_interval_us = on ? t->opts.drain_min_us : 0,
		.max_interval_us = on ? t->opts.drain_max_us : 0,
		.high_pct = on ? t->opts.drain_high_pct : 0,
	};

	if (on && !(k->features & VMDIRTY_FEAT_DRAIN))
		return track_error(t, -EOPNOTSUPP, "kmod: the module does not drain in the background");
	if (ioctl(k->fd, VMDIRTY_IOC_SET_DRAIN, &d) < 0)
		return track_error(t, -errno, "kmod: SET_DRAIN");
	return 0;
}

static int attach(struct tracker *t)
{
	struct kmod_tracker *k = t->priv;
	struct vmdirty_info info = { .size = sizeof(info) };
	struct vmdirty_attach at = { .size = sizeof(at), .vm_fd = t->vm->fd };
	void *p;
	int ret;

	k->fd = open("/dev/" VMDIRTY_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (k->fd < 0)
		return track_error(t, -errno, "kmod: /dev/%s%s", VMDIRTY_DEVICE_NAME,
				   errno == ENOENT ? " (vmdirty.ko not loaded)" : "");
	if (ioctl(k->fd, VMDIRTY_IOC_GET_INFO, &info) < 0) {
		ret = track_error(t, -errno, "kmod: GET_INFO");
		goto err;
	}
	if (info.abi_version != VMDIRTY_ABI_VERSION) {
		ret = track_error(t, -EPROTONOSUPPORT, "kmod: the module speaks ABI %u, we speak %d",
				  info.abi_version, VMDIRTY_ABI_VERSION);
		goto err;
	}
	k->features = info.features;
	if (ioctl(k->fd, VMDIRTY_IOC_ATTACH, &at) < 0) {
		ret = track_error(t, -errno, "kmod: ATTACH%s",
				  errno == ENOTTY ? " (this module cannot attach)" :
				  errno == EBUSY ? " (another session has this VM)" :
				  errno == ENXIO ? " (the VM has no dirty ring)" : "");
		goto err;
	}
	if (at.region_size < sizeof(*k->hdr) || at.region_size > SIZE_MAX) {
		ret = track_error(t, -EPROTO, "kmod: ATTACH gave a region of %llu bytes",
				  (unsigned long long)at.region_size);
		goto err;
	}
	p = mmap(NULL, at.region_size, PROT_READ, MAP_SHARED, k->fd, 0);
	if (p == MAP_FAILED) {
		ret = track_error(t, -errno, "kmod: mmap of %llu bytes",
				  (unsigned long long)at.region_size);
		goto err;
	}
	k->region = p;
	k->region_size = at.region_size;
	k->hdr = p;
	ret = check_region(t, &at);
	if (ret < 0)
		goto err;
	ret = map_slots(t);
	if (ret < 0)
		goto err;
	k->layout_gen = at.layout_gen;
	if (t->opts.kmod_drain) {
		ret = set_drain(t, true);
		if (ret < 0)
			goto err;
	}
	return 0;
err:
	detach(t);
	return ret;
}

static int kmod_start(struct tracker *t)
{
	int ret;

	/* Logging first: the layout ATTACH records is the logged one. */
	ret = vm_set_dirty_logging(t->vm, true);
	if (ret < 0)
		return track_error(t, ret, "kmod: enabling dirty logging");
	ret = attach(t);
	if (ret < 0)
		vm_set_dirty_logging(t->vm, false);
	return ret;
}

/*
 * The snapshot index and seq, read by the header's seqcount rules; our own
 * harvest returned already, so this only fails if someone else swapped.
 */
static int read_snapshot(const struct kmod_tracker *k, uint32_t *snap, uint64_t *seq)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t s = __atomic_load_n(&k->hdr->seq, __ATOMIC_ACQUIRE);

		if (s & 1)
			continue;	/* a swap is in progress */
		*snap = __atomic_load_n(&k->hdr->snapshot, __ATOMIC_RELAXED);
		/* Pairs with the kernel's smp_wmb() before it makes seq even. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&k->hdr->seq, __ATOMIC_RELAXED) == s) {
			*seq = s;
			return 0;
		}
	}
	return -EAGAIN;
}

static bool layout_stale(const struct kmod_tracker *k, const struct vmdirty_harvest *h)
{
	return (h->status & VMDIRTY_STATUS_LAYOUT_STALE) || h->layout_gen != k->layout_gen ||
	       (__atomic_load_n(&k->hdr->flags, __ATOMIC_RELAXED) & VMDIRTY_STATUS_LAYOUT_STALE);
}

/*
 * A new session (new layout, or the old one failed); this harvest then
 * reports everything.
 */
static int reattach(struct tracker *t, struct dirty_log *log, const char *reason)
{
	struct kmod_tracker *k = t->priv;
	char why[sizeof(t->error)];
	int ret;

	detach(t);
	ret = attach(t);
	if (ret < 0) {
		memcpy(why, t->error, sizeof(why));
		return track_error(t, ret, "kmod: %s and re-attaching failed (%s)", reason, why);
	}
	t->stats.reattaches++;
	k->lost = false;
	k->harvests = 0;
	log->everything = true;
	return 0;
}

/* The session failed: someone else collects the rings (see the top). */
static int session_failed(struct tracker *t, struct dirty_log *log)
{
	struct kmod_tracker *k = t->priv;

	t->stats.conflicts++;
	if (k->after_conflict && k->harvests <= 1) {
		detach(t);
		k->lost = true;
		return track_error(t, -EPIPE, "kmod: someone else keeps collecting this VM's dirty rings (a second reaper?): vmdirty.ko's sessions failed twice in a row");
	}
	k->after_conflict = true;
	return reattach(t, log, "someone else collected the VM's dirty rings");
}

static int kmod_harvest(struct tracker *t, struct dirty_log *log)
{
	struct kmod_tracker *k = t->priv;
	struct vmdirty_harvest h = {
		.size = sizeof(h),
		.flags = t->opts.kmod_unsorted ? VMDIRTY_HARVEST_UNSORTED : 0,
	};
	uint64_t t0, seq;
	uint32_t snap;
	int ret;

	if (k->fd < 0 && k->lost) {
		/* A ring-full handler found the session failed (and counted it). */
		k->after_conflict = true;
		return reattach(t, log, "someone else collected the VM's dirty rings");
	}
	if (k->fd < 0)
		return track_error(t, -ENOTCONN, "kmod: no session");
	t0 = track_now_ns();
	if (ioctl(k->fd, VMDIRTY_IOC_HARVEST, &h) < 0) {
		if (errno == EPIPE)
			return session_failed(t, log);
		return track_error(t, -errno, "kmod: HARVEST");
	}
	k->harvests++;
	log->collect_ns = track_now_ns() - t0;
	log->kernel_ns = h.duration_ns;
	log->entries = h.entries;
	log->resets = h.reset;
	log->dropped = h.dropped;
	if (layout_stale(k, &h))
		return reattach(t, log, "the layout went stale");
	if (h.snapshot > 1 || (h.seq & 1))
		return track_error(t, -EPROTO, "kmod: HARVEST returned snapshot %u seq %llu",
				   h.snapshot, (unsigned long long)h.seq);
	ret = read_snapshot(k, &snap, &seq);
	if (ret < 0 || snap != h.snapshot || seq != h.seq)
		return track_error(t, -EBUSY, "kmod: the region swapped under us (another harvester?)");

	track_log_parts(t, log);
	for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
		const struct vmdirty_shm_slot *s = shm_slot(k, k->shm_slot[i]);

		log->part[i].bits = (const uint64_t *)(k->region + s->bitmap_offset[snap]);
		log->part[i].summary = (const uint64_t *)(k->region + s->summary_offset[snap]);
	}
	log->count = h.pages;
	return 0;
}

static int kmod_ring_full(struct tracker *t, struct vcpu *v)
{
	struct kmod_tracker *k = t->priv;
	struct vmdirty_harvest h = {
		.size = sizeof(h),
		.flags = VMDIRTY_HARVEST_NO_SWAP |
			 (t->opts.kmod_unsorted ? VMDIRTY_HARVEST_UNSORTED : 0),
	};
	int ret;

	/*
	 * With background draining on, this exit means the worker fell behind
	 * the guest: harvesting here frees the vCPU now instead of letting it
	 * spin on KVM_RUN until the worker's next pass.  The lock keeps the
	 * session from being replaced (re-attach, stop) under us.
	 */
	pthread_mutex_lock(&t->lock);
	if (k->fd < 0) {
		/*
		 * No session (stopped, or failed: the next harvest reports
		 * everything): nobody tracks, just let the vCPU go on.
		 */
		ret = track_ring_discard(t->vm, k->fetch);
	} else if (ioctl(k->fd, VMDIRTY_IOC_HARVEST, &h) < 0) {
		ret = -errno;
		if (ret == -EPIPE) {
			/* Failed: its bits are incomplete anyway. */
			t->stats.conflicts++;
			detach(t);
			k->lost = true;
			ret = track_ring_discard(t->vm, k->fetch);
		}
	} else {
		ret = (int)h.entries;
		t->stats.dropped += h.dropped;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

static int kmod_vcpu_stats(struct tracker *t, struct track_vcpu_stat *st, unsigned int n)
{
	struct kmod_tracker *k = t->priv;
	unsigned int i;

	if (k->fd < 0)
		return -ENOTCONN;
	/* The module updates these as it walks: single-copy atomic reads. */
	for (i = 0; i < n && i < t->vm->nr_vcpus; i++) {
		const struct vmdirty_shm_vcpu *v = shm_vcpu(k, i);

		st[i] = (struct track_vcpu_stat){
			.entries = __atomic_load_n(&v->entries, __ATOMIC_RELAXED),
			.last_entries = __atomic_load_n(&v->last_entries, __ATOMIC_RELAXED),
			.last_ns = __atomic_load_n(&v->last_ns, __ATOMIC_RELAXED),
			.ring_size = __atomic_load_n(&v->ring_size, __ATOMIC_RELAXED),
			.ring_used = __atomic_load_n(&v->ring_used, __ATOMIC_RELAXED),
		};
		if (!st[i].ring_size)
			st[i].ring_size = t->vm->vcpus[i]->ring_entries;
	}
	return (int)i;
}

static void kmod_stop(struct tracker *t)
{
	struct kmod_tracker *k = t->priv;
	struct vmdirty_harvest h = { .size = sizeof(h), .flags = VMDIRTY_HARVEST_NO_SWAP };

	if (k->fd >= 0) {
		if (t->opts.kmod_drain)
			set_drain(t, false);
		/* Reset what the rings hold while the module still owns them. */
		ioctl(k->fd, VMDIRTY_IOC_HARVEST, &h);
		detach(t);
	}
	vm_set_dirty_logging(t->vm, false);
	/* Pushed between that harvest and logging off: ours to reset now. */
	track_ring_discard(t->vm, k->fetch);
}

const struct tracker_ops track_kmod_ops = {
	.name		= "kmod",
	.vm_config	= kmod_vm_config,
	.create		= kmod_create,
	.start		= kmod_start,
	.harvest	= kmod_harvest,
	.ring_full	= kmod_ring_full,
	.vcpu_stats	= kmod_vcpu_stats,
	.stop		= kmod_stop,
	.destroy	= kmod_destroy,
};
