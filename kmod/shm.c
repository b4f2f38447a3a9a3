// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the shared region a session maps read-only, its two bit sets,
 * the private ones, and the seqcount-protected swap.  The layout and the
 * reader's side of every barrier are documented in
 * include/uapi/linux/vmdirty.h.
 *
 * Everything a session allocates is charged to the memory cgroup of the
 * task that attaches (__GFP_ACCOUNT; the region is built from accounted
 * pages and mapped with vmap(), since vmalloc_user() charges no one), and
 * bounded by max_session_mb.
 */
#include <linux/bitops.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>

#include "session.h"
#include "vmdirty.h"

/* Each slot starts on a summary word of its own: 64 words of 64 bits. */
#define VMDIRTY_SLOT_ALIGN	(64 * 64)

/* Loops over summary words cond_resched() every this many. */
#define VMDIRTY_RESCHED_WORDS	1024

static unsigned int vmdirty_max_session_mb = 1024;

static int vmdirty_param_set_mb(const char *val, const struct kernel_param *kp)
{
	unsigned int mb;
	int ret;

	ret = kstrtouint(val, 0, &mb);
	if (ret)
		return ret;
	if (!mb || mb > INT_MAX >> 20)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, mb);
	return 0;
}

static const struct kernel_param_ops vmdirty_param_mb_ops = {
	.set = vmdirty_param_set_mb,
	.get = param_get_uint,
};

module_param_cb(max_session_mb, &vmdirty_param_mb_ops, &vmdirty_max_session_mb, 0644);
MODULE_PARM_DESC(max_session_mb,
		 "Most memory one session may use, MiB (its region and private bit sets; ATTACH fails with EFBIG beyond); default 1024");

static void vmdirty_shm_add(u64 *counter, u64 n)
{
	WRITE_ONCE(*counter, *counter + n);
}

static void vmdirty_bits_init(struct vmdirty_bits *b, u64 *bitmap, u64 nr_bits)
{
	b->bitmap = bitmap;
	b->summary = bitmap + nr_bits / 64;
	b->lo = U64_MAX;
	b->hi = 0;
}

/* Bytes of one set: the bitmap, then its summary. */
static size_t vmdirty_bits_bytes(u64 nr_bits)
{
	return (nr_bits / 64 + nr_bits / (64 * 64)) * sizeof(u64);
}

static void vmdirty_bits_summarize(struct vmdirty_bits *b, u64 word)
{
	u64 sw = word / 64, sbit = BIT_ULL(word % 64);
	u64 sum = b->summary[sw];

	if (sum & sbit)
		return;
	/*
	 * The word is non-zero before its summary bit announces it: pairs
	 * with the acquire load of the summary word by a reader of the live
	 * set (see "Reading the live set" in the UAPI header).
	 */
	smp_wmb();
	WRITE_ONCE(b->summary[sw], sum | sbit);
	if (sw < b->lo)
		b->lo = sw;
	if (sw >= b->hi)
		b->hi = sw + 1;
}

/**
 * vmdirty_bits_or - set @bits in word @word of @b
 * @b: the set
 * @word: bitmap word index
 * @bits: bits to set
 *
 * Each word is stored whole, and its summary bit only after the word, as
 * the region's readers expect.  Return: how many of @bits were clear.
 */
u64 vmdirty_bits_or(struct vmdirty_bits *b, u64 word, u64 bits)
{
	u64 old = b->bitmap[word], new = bits & ~old;

	if (!new)
		return 0;
	WRITE_ONCE(b->bitmap[word], old | bits);
	vmdirty_bits_summarize(b, word);
	return hweight64(new);
}

bool vmdirty_bits_set(struct vmdirty_bits *b, u64 bit)
{
	return vmdirty_bits_or(b, bit / 64, BIT_ULL(bit % 64));
}

/* Clear every word the summary names: cost follows what was set. */
void vmdirty_bits_clear(struct vmdirty_bits *b)
{
	u64 sw, sum;

	for (sw = b->lo; sw < b->hi; sw++) {
		sum = b->summary[sw];
		while (sum) {
			WRITE_ONCE(b->bitmap[sw * 64 + __ffs64(sum)], 0);
			sum &= sum - 1;
		}
		WRITE_ONCE(b->summary[sw], 0);
		if (!((sw + 1) % VMDIRTY_RESCHED_WORDS))
			cond_resched();
	}
	b->lo = U64_MAX;
	b->hi = 0;
}

/**
 * vmdirty_shm_publish - move the pending bits to the live set
 * @s: the session, locked; KVM re-protected every page pending
 *
 * Return: bits that were clear in the live set.
 */
u64 vmdirty_shm_publish(struct vmdirty_session *s)
{
	struct vmdirty_bits *p = &s->pending, *live = &s->sets[s->live];
	u64 sw, sum, w, n = 0;

	lockdep_assert_held(&s->lock);
	for (sw = p->lo; sw < p->hi; sw++) {
		for (sum = p->summary[sw]; sum; sum &= sum - 1) {
			w = sw * 64 + __ffs64(sum);
			n += vmdirty_bits_or(live, w, p->bitmap[w]);
			p->bitmap[w] = 0;
		}
		p->summary[sw] = 0;
		if (!((sw + 1) % VMDIRTY_RESCHED_WORDS))
			cond_resched();
	}
	p->lo = U64_MAX;
	p->hi = 0;
	vmdirty_shm_add(&s->hdr->live_pages, n);
	return n;
}

static void vmdirty_shm_fill_slots(struct vmdirty_session *s, size_t slots_off,
				   const size_t set_off[2])
{
	struct vmdirty_shm_slot *shm = s->region + slots_off;
	u32 i, k;

	for (i = 0; i < s->nr_slots; i++) {
		const struct vmdirty_slot *slot = &s->slots[i];

		shm[i].as_id = slot->key >> 16;
		shm[i].id = (u16)slot->key;
		shm[i].flags = slot->flags;
		shm[i].base_gfn = slot->base_gfn;
		shm[i].npages = slot->npages;
		shm[i].userspace_addr = slot->userspace_addr;
		/* No bits, no offsets: it did not log dirty pages. */
		for (k = 0; k < 2 && slot->nr_bits; k++) {
			shm[i].bitmap_offset[k] = set_off[k] + slot->first_bit / 8;
			shm[i].summary_offset[k] = set_off[k] +
				s->nr_bits / 8 + slot->first_bit / (64 * 8);
		}
	}
}

/* The region's pages: accounted, zeroed, mapped contiguously for us. */
static int vmdirty_shm_alloc_region(struct vmdirty_session *s)
{
	unsigned long i;

	s->nr_pages = s->region_size >> PAGE_SHIFT;
	s->pages = kvcalloc(s->nr_pages, sizeof(*s->pages), GFP_KERNEL_ACCOUNT);
	if (!s->pages)
		return -ENOMEM;
	for (i = 0; i < s->nr_pages; i++) {
		s->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!s->pages[i])
			return -ENOMEM;
		if (!((i + 1) % VMDIRTY_RESCHED_WORDS))
			cond_resched();
	}
	if (!vmdirty_fault(VMDIRTY_FAULT_REGION))
		s->region = vmap(s->pages, s->nr_pages, VM_MAP, PAGE_KERNEL);
	return s->region ? 0 : -ENOMEM;
}

/* Bits of each set: logging slots only, each on summary words of its own. */
static void vmdirty_shm_place_slots(struct vmdirty_session *s)
{
	u32 i;

	s->nr_bits = 0;
	s->tracked_pages = 0;
	for (i = 0; i < s->nr_slots; i++) {
		struct vmdirty_slot *slot = &s->slots[i];

		slot->first_bit = s->nr_bits;
		slot->nr_bits = 0;
		if (!(slot->flags & VMDIRTY_SLOT_LOG_DIRTY))
			continue;
		slot->nr_bits = slot->npages;
		s->nr_bits += round_up(slot->npages, VMDIRTY_SLOT_ALIGN);
		s->tracked_pages += slot->npages;
	}
}

/**
 * vmdirty_shm_alloc - lay out and allocate the region of an attaching session
 * @s: the session, with @slots and @max_vcpus recorded
 *
 * Also allocates the private scratch and pending sets of the same geometry.
 * Whatever it allocated, vmdirty_shm_free() frees, on error too.
 * Return: 0, -EFBIG (over max_session_mb) or -ENOMEM.
 */
int vmdirty_shm_alloc(struct vmdirty_session *s)
{
	size_t slots_off, vcpus_off, sets_off, set_bytes, set_off[2], priv_words;
	struct vmdirty_shm_header *hdr;
	u64 need;
	int ret;

	vmdirty_shm_place_slots(s);
	slots_off = ALIGN(sizeof(*hdr), 64);
	vcpus_off = ALIGN(slots_off + s->nr_slots * sizeof(struct vmdirty_shm_slot), 64);
	sets_off = PAGE_ALIGN(vcpus_off + s->max_vcpus * sizeof(struct vmdirty_shm_vcpu));
	set_bytes = PAGE_ALIGN(vmdirty_bits_bytes(s->nr_bits));
	/* One spare word: an empty layout still gets a valid pointer. */
	priv_words = vmdirty_bits_bytes(s->nr_bits) / sizeof(u64) + 1;

	/* The region, its page array, two private sets: bounded first. */
	need = sets_off + 2 * (u64)set_bytes;
	need += (need >> PAGE_SHIFT) * sizeof(struct page *) + 2 * priv_words * sizeof(u64);
	if (need > (u64)READ_ONCE(vmdirty_max_session_mb) << 20)
		return -EFBIG;
	set_off[0] = sets_off;
	set_off[1] = sets_off + set_bytes;
	s->region_size = sets_off + 2 * set_bytes;

	ret = vmdirty_shm_alloc_region(s);
	if (ret)
		return ret;
	s->scratch.bitmap = kvcalloc(priv_words, sizeof(u64), GFP_KERNEL_ACCOUNT);
	if (!vmdirty_fault(VMDIRTY_FAULT_PRIVATE))
		s->pending.bitmap = kvcalloc(priv_words, sizeof(u64), GFP_KERNEL_ACCOUNT);
	if (!s->scratch.bitmap || !s->pending.bitmap)
		return -ENOMEM;

	vmdirty_bits_init(&s->sets[0], s->region + set_off[0], s->nr_bits);
	vmdirty_bits_init(&s->sets[1], s->region + set_off[1], s->nr_bits);
	vmdirty_bits_init(&s->scratch, s->scratch.bitmap, s->nr_bits);
	vmdirty_bits_init(&s->pending, s->pending.bitmap, s->nr_bits);
	s->live = 0;
	s->shm_vcpus = s->region + vcpus_off;
	vmdirty_shm_fill_slots(s, slots_off, set_off);

	hdr = s->region;
	s->hdr = hdr;
	hdr->magic = VMDIRTY_SHM_MAGIC;
	hdr->abi_version = VMDIRTY_ABI_VERSION;
	hdr->header_size = sizeof(*hdr);
	hdr->region_size = s->region_size;
	hdr->slots_offset = slots_off;
	hdr->nr_slots = s->nr_slots;
	hdr->slot_size = sizeof(struct vmdirty_shm_slot);
	hdr->vcpus_offset = vcpus_off;
	hdr->max_vcpus = s->max_vcpus;
	hdr->vcpu_size = sizeof(struct vmdirty_shm_vcpu);
	hdr->snapshot = 1;
	hdr->layout_gen = 1;
	return 0;
}

/* Frees what vmdirty_shm_alloc() allocated, even in part; leaves NULLs. */
void vmdirty_shm_free(struct vmdirty_session *s)
{
	unsigned long i;

	kvfree(s->pending.bitmap);
	kvfree(s->scratch.bitmap);
	if (s->region)
		vunmap(s->region);
	for (i = 0; s->pages && i < s->nr_pages && s->pages[i]; i++)
		__free_page(s->pages[i]);
	kvfree(s->pages);
	memset(&s->pending, 0, sizeof(s->pending));
	memset(&s->scratch, 0, sizeof(s->scratch));
	memset(s->sets, 0, sizeof(s->sets));
	s->region = NULL;
	s->hdr = NULL;
	s->shm_vcpus = NULL;
	s->pages = NULL;
	s->nr_pages = 0;
	s->region_size = 0;
}

/**
 * vmdirty_shm_mmap - map the region read-only
 * @s: the session
 * @vma: the new mapping
 *
 * The mapping keeps the session file, hence the region, alive: the region
 * is only freed by the file's release.  Not under the session lock: the
 * region never moves once published, and mmap_lock is held here.
 * Return: 0, -ENOTCONN before ATTACH, -EPERM for a writable or executable
 * mapping, -EINVAL for a private one or one past the region.
 */
int vmdirty_shm_mmap(struct vmdirty_session *s, struct vm_area_struct *vma)
{
	unsigned long pages;

	if (!vmdirty_session_attached(s))
		return -ENOTCONN;
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EPERM;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	pages = s->region_size >> PAGE_SHIFT;
	if (vma->vm_pgoff >= pages || vma_pages(vma) > pages - vma->vm_pgoff)
		return -EINVAL;
	/* Nor later, with mprotect(). */
	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	return vm_map_pages(vma, s->pages, s->nr_pages);
}

/* A vCPU's first walk: its table entry becomes valid. */
void vmdirty_shm_vcpu_seen(struct vmdirty_session *s, u32 idx, u32 vcpu_id,
			   u32 ring_size)
{
	struct vmdirty_shm_vcpu *v = &s->shm_vcpus[idx];

	lockdep_assert_held(&s->lock);
	WRITE_ONCE(v->vcpu_id, vcpu_id);
	WRITE_ONCE(v->ring_size, ring_size);
	/* Pairs with a reader's acquire of @present. */
	smp_store_release(&v->present, 1);
}

/* The header's all-time counters, after a walk. */
void vmdirty_shm_account(struct vmdirty_session *s,
			 const struct vmdirty_collect *c)
{
	struct vmdirty_shm_header *hdr = s->hdr;

	lockdep_assert_held(&s->lock);
	vmdirty_shm_add(&hdr->entries, c->entries);
	vmdirty_shm_add(&hdr->dropped, c->dropped);
}

/* KVM reset @n entries. */
void vmdirty_shm_reset(struct vmdirty_session *s, u64 n)
{
	lockdep_assert_held(&s->lock);
	vmdirty_shm_add(&s->hdr->resets, n);
}

/* A background drain or a NO_SWAP harvest completed. */
void vmdirty_shm_drained(struct vmdirty_session *s)
{
	lockdep_assert_held(&s->lock);
	vmdirty_shm_add(&s->hdr->drains, 1);
}

/**
 * vmdirty_shm_swap - publish the live set as the snapshot
 * @s: the session
 *
 * The old snapshot is cleared and becomes live.  Readers of the snapshot
 * retry around the odd seq.
 */
void vmdirty_shm_swap(struct vmdirty_session *s)
{
	struct vmdirty_shm_header *hdr = s->hdr;
	u32 old = s->live ^ 1, i;
	u64 seq = hdr->seq, now;

	lockdep_assert_held(&s->lock);
	WRITE_ONCE(hdr->seq, seq + 1);
	/*
	 * seq is odd before the old snapshot changes: pairs with the reader's
	 * acquire fence before it loads seq again.
	 */
	smp_wmb();
	vmdirty_bits_clear(&s->sets[old]);
	WRITE_ONCE(hdr->snapshot, s->live);
	WRITE_ONCE(hdr->snapshot_pages, hdr->live_pages);
	WRITE_ONCE(hdr->live_pages, 0);

	now = ktime_get_ns();
	for (i = 0; i < s->nr_vcpus; i++) {
		struct vmdirty_vcpu *v = &s->vcpus[i];

		if (!v->seen)
			continue;
		WRITE_ONCE(s->shm_vcpus[i].last_entries, v->since_swap);
		WRITE_ONCE(s->shm_vcpus[i].last_ns, now);
		v->since_swap = 0;
	}
	/*
	 * The new snapshot is complete before seq is even again: pairs with
	 * the reader's acquire load of seq.
	 */
	smp_wmb();
	WRITE_ONCE(hdr->seq, seq + 2);
	vmdirty_shm_add(&hdr->harvests, 1);
	s->live = old;
}
