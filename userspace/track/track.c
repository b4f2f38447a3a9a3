// SPDX-License-Identifier: GPL-2.0
/*
 * The tracker interface: dispatch to a backend, the automatic pick, and
 * what every backend shares (the first harvest's "everything", timing,
 * ring-full accounting, ring cursors after another collector).
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/vmdirty.h>

#include "track/backend.h"

static const struct tracker_ops *const backends[TRACK_NR] = {
	[TRACK_BITMAP]	= &track_bitmap_ops,
	[TRACK_RING]	= &track_ring_ops,
	[TRACK_KMOD]	= &track_kmod_ops,
	[TRACK_RING_SORTED] = &track_ring_sorted_ops,
};

static const char *const backend_names[TRACK_NR] = {
	[TRACK_AUTO]	= "auto",
	[TRACK_BITMAP]	= "bitmap",
	[TRACK_RING]	= "ring",
	[TRACK_KMOD]	= "kmod",
	[TRACK_RING_SORTED] = "ring-sorted",
};

const char *track_backend_name(enum track_backend b)
{
	return (unsigned int)b < TRACK_NR ? backend_names[b] : "?";
}

int track_backend_parse(const char *name, enum track_backend *b)
{
	for (int i = 0; i < TRACK_NR; i++) {
		if (!strcmp(name, backend_names[i])) {
			*b = i;
			return 0;
		}
	}
	return -EINVAL;
}

uint64_t track_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t track_words(uint64_t npages)
{
	return (npages + 63) / 64;
}

uint64_t track_summary_words(uint64_t npages)
{
	return (track_words(npages) + 63) / 64;
}

bool track_kmod_usable(char *why, size_t len, uint32_t *features)
{
	struct vmdirty_info info = { .size = sizeof(info) };
	struct vmdirty_attach at = { .size = sizeof(at), .vm_fd = -1 };
	int fd;

	fd = open("/dev/" VMDIRTY_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "vmdirty.ko not available (/dev/%s: %s)", VMDIRTY_DEVICE_NAME,
			 strerror(errno));
		return false;
	}
	if (ioctl(fd, VMDIRTY_IOC_GET_INFO, &info) < 0) {
		snprintf(why, len, "vmdirty.ko: GET_INFO failed (%s)", strerror(errno));
	} else if (info.abi_version != VMDIRTY_ABI_VERSION) {
		snprintf(why, len, "vmdirty.ko speaks ABI %u, we speak %d", info.abi_version,
			 VMDIRTY_ABI_VERSION);
	} else if (ioctl(fd, VMDIRTY_IOC_ATTACH, &at) == 0 || errno == ENOTTY) {
		/* An invalid fd must be refused; ENOTTY: no ATTACH at all. */
		snprintf(why, len, "vmdirty.ko ABI %u cannot attach (ATTACH: %s)",
			 info.abi_version, errno == ENOTTY ? "unknown ioctl" : "accepted fd -1");
	} else {
		snprintf(why, len, "vmdirty.ko ABI %u answers on /dev/%s (features 0x%x)",
			 info.abi_version, VMDIRTY_DEVICE_NAME, info.features);
		if (features)
			*features = info.features;
		close(fd);
		return true;
	}
	close(fd);
	return false;
}

/* Entries of KVM's ACQ_REL dirty ring (bytes / entry size), 0 if none. */
static int probe_ring(char *why, size_t len)
{
	int ret = vm_check_cap(NULL, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);

	if (ret < 0) {
		snprintf(why, len, "no /dev/kvm (%s)", strerror(-ret));
		return 0;
	}
	if (ret == 0) {
		snprintf(why, len, "KVM has no KVM_CAP_DIRTY_LOG_RING_ACQ_REL");
		return 0;
	}
	return ret / (int)sizeof(struct kvm_dirty_gfn);
}

enum track_backend track_pick_auto(char *why, size_t len)
{
	char kmod_why[160], ring_why[96], dummy[1];
	uint32_t features = 0;
	int ring;

	if (!why) {
		why = dummy;
		len = sizeof(dummy);
	}
	if (track_kmod_usable(kmod_why, sizeof(kmod_why), &features)) {
		snprintf(why, len, "kmod: %s", kmod_why);
		return TRACK_KMOD;
	}
	ring = probe_ring(ring_why, sizeof(ring_why));
	if (ring > 0) {
		snprintf(why, len, "ring: KVM offers the ACQ_REL dirty ring (up to %d entries); %s",
			 ring, kmod_why);
		return TRACK_RING;
	}
	snprintf(why, len, "bitmap: %s; %s", ring_why, kmod_why);
	return TRACK_BITMAP;
}

int track_vm_config(enum track_backend b, struct vm_config *cfg)
{
	if ((unsigned int)b >= TRACK_NR || !backends[b])
		return -EINVAL;
	return backends[b]->vm_config(cfg);
}

int track_slot_index(const struct vm *vm, uint32_t slot)
{
	for (unsigned int i = 0; i < vm->nr_slots; i++)
		if (vm->slots[i].id == slot)
			return (int)i;
	return -1;
}

void track_log_parts(struct tracker *t, struct dirty_log *log)
{
	log->nr_parts = t->vm->nr_slots;
	for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
		log->part[i] = (struct dirty_log_part){
			.first_page = t->vm->slots[i].gpa >> TRACK_PAGE_SHIFT,
			.npages = t->vm->slots[i].size >> TRACK_PAGE_SHIFT,
		};
	}
}

int track_error(struct tracker *t, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->error, sizeof(t->error), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(t->error) && err < 0)
		snprintf(t->error + n, sizeof(t->error) - (size_t)n, ": %s", strerror(-err));
	return err;
}

const char *tracker_error(const struct tracker *t)
{
	return t->error;
}

void track_account_ring_full(struct tracker *t, uint64_t ns, uint64_t n)
{
	__atomic_fetch_add(&t->pending.ring_full, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&t->pending.ring_full_ns, ns, __ATOMIC_RELAXED);
	__atomic_fetch_add(&t->pending.ring_full_entries, n, __ATOMIC_RELAXED);
}

static void free_ones(struct tracker *t)
{
	for (unsigned int i = 0; i < VM_MAX_SLOTS; i++) {
		free(t->ones[i]);
		free(t->ones_summary[i]);
		t->ones[i] = t->ones_summary[i] = NULL;
	}
}

/* All-ones bitmaps of exactly each slot's length, for the first harvest. */
static int alloc_ones(struct tracker *t)
{
	for (unsigned int i = 0; i < t->vm->nr_slots; i++) {
		uint64_t np = t->vm->slots[i].size >> TRACK_PAGE_SHIFT;
		uint64_t w = track_words(np), sw = track_summary_words(np);

		t->ones[i] = malloc(w * 8);
		t->ones_summary[i] = malloc(sw * 8);
		if (!t->ones[i] || !t->ones_summary[i]) {
			free_ones(t);
			return -ENOMEM;
		}
		memset(t->ones[i], 0xff, w * 8);
		if (np % 64)
			t->ones[i][w - 1] = (1ull << (np % 64)) - 1;
		memset(t->ones_summary[i], 0xff, sw * 8);
		if (w % 64)
			t->ones_summary[i][sw - 1] = (1ull << (w % 64)) - 1;
	}
	return 0;
}

int tracker_create_opts(enum track_backend b, struct vm *vm, const struct track_opts *o,
			struct tracker **out)
{
	struct tracker *t;
	int ret;

	/* Auto here follows the VM's config: the ring decides ring or kmod. */
	if (b == TRACK_AUTO && vm) {
		char why[160];

		b = !vm->ring_entries ? TRACK_BITMAP :
		    track_kmod_usable(why, sizeof(why), NULL) ? TRACK_KMOD : TRACK_RING;
	}
	if ((unsigned int)b >= TRACK_NR || !backends[b] || !vm)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ops = backends[b];
	t->backend = b;
	t->vm = vm;
	if (o)
		t->opts = *o;
	pthread_mutex_init(&t->lock, NULL);
	ret = alloc_ones(t);
	if (ret < 0)
		goto err_ones;
	ret = t->ops->create(t);
	if (ret < 0)
		goto err_create;
	*out = t;
	return 0;

err_create:
	t->ops->destroy(t);
	free_ones(t);
err_ones:
	pthread_mutex_destroy(&t->lock);
	free(t);
	return ret;
}

int tracker_create(enum track_backend b, struct vm *vm, struct tracker **out)
{
	return tracker_create_opts(b, vm, NULL, out);
}

enum track_backend tracker_backend(const struct tracker *t)
{
	return t->backend;
}

const char *tracker_name(const struct tracker *t)
{
	return t->ops->name;
}

int tracker_start(struct tracker *t)
{
	int ret = -EALREADY;

	pthread_mutex_lock(&t->lock);
	if (!t->started) {
		ret = t->ops->start(t);
		if (!ret) {
			t->started = true;
			t->first = true;
			memset(&t->pending, 0, sizeof(t->pending));
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* Replace the parts with every page of every slot. */
static void log_everything(struct tracker *t, struct dirty_log *log)
{
	track_log_parts(t, log);
	log->count = 0;
	for (unsigned int i = 0; i < log->nr_parts; i++) {
		log->part[i].bits = t->ones[i];
		log->part[i].summary = t->ones_summary[i];
		log->count += log->part[i].npages;
	}
	log->everything = true;
}

int tracker_harvest(struct tracker *t, struct dirty_log *log)
{
	uint64_t t0;
	int ret;

	memset(log, 0, sizeof(*log));
	pthread_mutex_lock(&t->lock);
	if (!t->started) {
		ret = -ENOTCONN;
		goto out;
	}
	t0 = track_now_ns();
	ret = t->ops->harvest(t, log);
	if (ret < 0)
		goto out;
	/* A backend may ask for everything too (kmod after re-attaching). */
	if (t->first || log->everything) {
		log_everything(t, log);
		t->first = false;
	}
	log->total_ns = track_now_ns() - t0;
	log->ring_full = __atomic_exchange_n(&t->pending.ring_full, 0, __ATOMIC_RELAXED);
	log->ring_full_ns = __atomic_exchange_n(&t->pending.ring_full_ns, 0, __ATOMIC_RELAXED);
	log->ring_full_entries = __atomic_exchange_n(&t->pending.ring_full_entries, 0,
						     __ATOMIC_RELAXED);
	t->stats.harvests++;
	t->stats.pages += log->count;
	t->stats.entries += log->entries;
	t->stats.resets += log->resets;
	t->stats.dropped += log->dropped;
	t->stats.ring_full += log->ring_full;
	t->stats.ring_full_ns += log->ring_full_ns;
	t->stats.ring_full_entries += log->ring_full_entries;
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int tracker_ring_full(struct tracker *t, struct vcpu *v)
{
	uint64_t t0 = track_now_ns();
	int ret;

	if (!t->ops->ring_full)
		return -EOPNOTSUPP;
	ret = t->ops->ring_full(t, v);
	if (ret < 0)
		return ret;
	track_account_ring_full(t, track_now_ns() - t0, (uint64_t)ret);
	return 0;
}

int tracker_ring_full_cb(struct vcpu *v, void *tracker)
{
	return tracker_ring_full(tracker, v);
}

int tracker_runner_ring_full(void *tracker, struct vcpu *v)
{
	return tracker_ring_full(tracker, v);
}

int tracker_vcpu_stats(struct tracker *t, struct track_vcpu_stat *st, unsigned int n)
{
	int ret;

	if (!t->ops->vcpu_stats)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&t->lock);
	ret = t->ops->vcpu_stats(t, st, n);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void tracker_stats(struct tracker *t, struct track_stats *st)
{
	pthread_mutex_lock(&t->lock);
	*st = t->stats;
	/* Ring-full exits since the last harvest are not in stats yet. */
	st->ring_full += __atomic_load_n(&t->pending.ring_full, __ATOMIC_RELAXED);
	st->ring_full_ns += __atomic_load_n(&t->pending.ring_full_ns, __ATOMIC_RELAXED);
	st->ring_full_entries += __atomic_load_n(&t->pending.ring_full_entries, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->lock);
}

void tracker_stop(struct tracker *t)
{
	pthread_mutex_lock(&t->lock);
	if (t->started) {
		t->ops->stop(t);
		t->started = false;
		t->first = false;
	}
	pthread_mutex_unlock(&t->lock);
}

void tracker_destroy(struct tracker *t)
{
	if (!t)
		return;
	tracker_stop(t);
	t->ops->destroy(t);
	free_ones(t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/*
 * The index of the oldest DIRTY entry of v's ring, i.e. where KVM's own
 * reset index is, or -1 if the ring holds no DIRTY entry.  Needed when
 * someone else (the module) collected this ring: KVM pushes and resets a
 * contiguous run, and everything outside it is invalid (flags 0).
 */
static int ring_run_start(const struct vcpu *v)
{
	uint32_t n = v->ring_entries;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t f = __atomic_load_n(&v->ring[i].flags, __ATOMIC_ACQUIRE);
		uint32_t prev = __atomic_load_n(&v->ring[(i + n - 1) % n].flags, __ATOMIC_ACQUIRE);

		if ((f & KVM_DIRTY_GFN_F_DIRTY) && !(prev & KVM_DIRTY_GFN_F_DIRTY))
			return (int)i;
	}
	return -1;
}

bool track_ring_resync(struct vcpu *v, uint32_t *fetch)
{
	int start = ring_run_start(v);

	if (start < 0)
		return false;
	/* vcpu_ring_reap() masks its cursor with the ring size. */
	if ((uint32_t)start != *fetch % v->ring_entries)
		*fetch = (uint32_t)start;
	return true;
}

static void discard_entry(void *ctx, uint32_t slot, uint64_t offset)
{
}

int track_ring_discard(struct vm *vm, uint32_t *fetch)
{
	int ret, n = 0;

	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];

		if (!v->ring)
			continue;
		/* Another collector's leftovers: start at the run's head. */
		track_ring_resync(v, &fetch[i]);
		ret = vcpu_ring_reap(v, &fetch[i], true, discard_entry, NULL);
		if (ret < 0)
			return ret;
		n += ret;
	}
	if (!n)
		return 0;
	ret = vm_reset_dirty_rings(vm);
	return ret < 0 ? ret : n;
}
