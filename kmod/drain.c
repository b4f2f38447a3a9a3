// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: background draining.  A delayed work on the session's worker
 * collects every ring into the live set and has KVM reset it, often enough
 * that no vCPU reaches its ring's soft limit (KVM_EXIT_DIRTY_RING_FULL).
 * The interval adapts to the fill it finds: halved above high_pct of the
 * soft limit, doubled below a quarter of that, within [min, max].
 */
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/sched/mm.h>

#include "session.h"
#include "vmdirty.h"

#define VMDIRTY_DRAIN_DEFAULT_MIN_US	1000
#define VMDIRTY_DRAIN_DEFAULT_MAX_US	100000
#define VMDIRTY_DRAIN_DEFAULT_HIGH_PCT	25
#define VMDIRTY_DRAIN_HIGH_PCT_MAX	90

static void vmdirty_drain_queue(struct vmdirty_session *s, u32 us)
{
	kthread_mod_delayed_work(s->worker, &s->drain_work, usecs_to_jiffies(us));
}

static u32 vmdirty_drain_adapt(const struct vmdirty_drain_state *d, u32 fill)
{
	u32 us = d->interval_us;

	if (fill > d->high_pct)
		us = max(us / 2, d->min_us);
	else if (fill < d->high_pct / 4)
		us = min_t(u64, (u64)us * 2, d->max_us);
	return us;
}

static void vmdirty_drain_work(struct kthread_work *work)
{
	struct vmdirty_session *s = container_of(work, struct vmdirty_session,
						 drain_work.work);
	struct vmdirty_collect c = {};
	long ret;

	/*
	 * A harvest from another process holds the lock while it waits for
	 * this worker to reset for it: never block on the lock here.  That
	 * harvest collects everything anyway; try again one interval later.
	 */
	if (!mutex_trylock(&s->lock)) {
		vmdirty_drain_queue(s, READ_ONCE(s->drain.interval_us));
		return;
	}
	if (!s->drain.enabled)
		goto out_unlock;

	ret = vmdirty_harvest_locked(s, true, false, &c);
	if (ret == -ESRCH || ret == -EPIPE) {
		/* The VM's process is gone, or the session failed: stop. */
		s->drain.enabled = false;
		WRITE_ONCE(s->drain.interval_us, 0);
		goto out_unlock;
	}
	if (ret >= 0)
		vmdirty_shm_drained(s);
	WRITE_ONCE(s->drain.interval_us, vmdirty_drain_adapt(&s->drain, c.max_fill_pct));
	vmdirty_drain_queue(s, s->drain.interval_us);
out_unlock:
	mutex_unlock(&s->lock);
}

void vmdirty_drain_init(struct vmdirty_session *s)
{
	kthread_init_delayed_work(&s->drain_work, vmdirty_drain_work);
}

/*
 * The work only ever trylocks s->lock, so this may wait for it under the
 * lock; a work that requeues itself meanwhile is refused by the cancel.
 */
void vmdirty_drain_stop(struct vmdirty_session *s)
{
	s->drain.enabled = false;
	WRITE_ONCE(s->drain.interval_us, 0);
	kthread_cancel_delayed_work_sync(&s->drain_work);
}

/* Fill in the defaults and check the ranges the UAPI header gives. */
static int vmdirty_drain_params(const struct vmdirty_drain *arg,
				struct vmdirty_drain_state *d)
{
	d->min_us = arg->min_interval_us;
	d->max_us = arg->max_interval_us;
	d->high_pct = arg->high_pct ?: VMDIRTY_DRAIN_DEFAULT_HIGH_PCT;
	if (!d->max_us)
		d->max_us = max_t(u32, VMDIRTY_DRAIN_DEFAULT_MAX_US, d->min_us);
	if (!d->min_us)
		d->min_us = min_t(u32, VMDIRTY_DRAIN_DEFAULT_MIN_US, d->max_us);
	if (d->min_us < VMDIRTY_DRAIN_MIN_US || d->max_us > VMDIRTY_DRAIN_MAX_US ||
	    d->min_us > d->max_us || d->high_pct > VMDIRTY_DRAIN_HIGH_PCT_MAX)
		return -EINVAL;
	return 0;
}

/**
 * vmdirty_set_drain - VMDIRTY_IOC_SET_DRAIN
 * @s: an attached session
 * @arg: the argument, flags, pad and reserved already checked
 *
 * Return: 0, -EINVAL (intervals or percentage out of range, or parameters
 * given to stop), -ESRCH (the VM's process is gone), -EPIPE (the session
 * failed), -EINTR.
 */
int vmdirty_set_drain(struct vmdirty_session *s, struct vmdirty_drain *arg)
{
	bool enable = arg->flags & VMDIRTY_DRAIN_ENABLE;
	struct mm_struct *mm = s->kvm->mm;
	struct vmdirty_drain_state d;
	int ret = 0;

	if (enable) {
		ret = vmdirty_drain_params(arg, &d);
		if (ret)
			return ret;
		/* Held until after the lock: its last put must not be under it. */
		if (!mmget_not_zero(mm))
			return -ESRCH;
	} else if (arg->min_interval_us || arg->max_interval_us || arg->high_pct) {
		return -EINVAL;
	}

	if (mutex_lock_killable(&s->lock)) {
		ret = -EINTR;
		goto out_mm;
	}
	if (!enable) {
		vmdirty_drain_stop(s);
		goto out_unlock;
	}
	if (s->conflict) {
		ret = -EPIPE;
		goto out_unlock;
	}

	s->drain.min_us = d.min_us;
	s->drain.max_us = d.max_us;
	s->drain.high_pct = d.high_pct;
	s->drain.enabled = true;
	/* Retuning keeps the current interval, within the new bounds. */
	WRITE_ONCE(s->drain.interval_us,
		   clamp(s->drain.interval_us ?: d.min_us, d.min_us, d.max_us));
	vmdirty_drain_queue(s, 0);
out_unlock:
	mutex_unlock(&s->lock);
out_mm:
	if (enable)
		mmput(mm);
	return ret;
}
