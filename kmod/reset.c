// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: having KVM re-protect what a walk collected, through KVM's own
 * entry point (KVM_RESET_DIRTY_RINGS on the VM file).  kvm_vm_ioctl()
 * refuses callers whose mm is not the VM's, so a caller from another
 * process, and the drain work, go through the session's kthread worker,
 * which adopts the VM's mm for the call.
 */
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/sched/mm.h>

#include "session.h"
#include "vmdirty.h"

/* Takes kvm->slots_lock: never called under kvm->srcu. */
static int vmdirty_reset_ioctl(struct vmdirty_session *s)
{
	struct file *f = s->vm_file;

	return f->f_op->unlocked_ioctl(f, KVM_RESET_DIRTY_RINGS, 0);
}

/* On the worker: borrow the VM's mm if its process still has one. */
static int vmdirty_reset_with_mm(struct vmdirty_session *s)
{
	struct mm_struct *mm = s->kvm->mm;
	int ret;

	if (!mmget_not_zero(mm))
		return -ESRCH;
	kthread_use_mm(mm);
	ret = vmdirty_reset_ioctl(s);
	kthread_unuse_mm(mm);
	mmput(mm);
	return ret;
}

static void vmdirty_reset_work(struct kthread_work *work)
{
	struct vmdirty_session *s = container_of(work, struct vmdirty_session,
						 reset_work);

	s->reset_ret = vmdirty_reset_with_mm(s);
}

/**
 * vmdirty_reset_rings - KVM_RESET_DIRTY_RINGS for the session's VM
 * @s: the session, locked
 *
 * From the VM's process: directly.  From the worker (draining): with the
 * VM's mm.  From anywhere else: on the worker, waiting for it; nothing on
 * the worker ever waits for @s->lock, so waiting under it is safe.
 * Return: entries KVM reset, -ESRCH if the VM's process is gone, or KVM's
 * error.
 */
int vmdirty_reset_rings(struct vmdirty_session *s)
{
	int ret;

	lockdep_assert_held(&s->lock);
	if (current->mm == s->kvm->mm) {
		ret = vmdirty_reset_ioctl(s);
	} else if (current == s->worker->task) {
		ret = vmdirty_reset_with_mm(s);
	} else {
		kthread_queue_work(s->worker, &s->reset_work);
		kthread_flush_work(&s->reset_work);
		ret = s->reset_ret;
	}
	if (ret > 0)
		vmdirty_shm_reset(s, ret);
	return ret;
}

/* The session's worker, named after the session. */
int vmdirty_reset_init(struct vmdirty_session *s)
{
	struct kthread_worker *worker;

	worker = kthread_create_worker(0, "vmdirty/%u", s->id);
	if (IS_ERR(worker))
		return PTR_ERR(worker);
	kthread_init_work(&s->reset_work, vmdirty_reset_work);
	s->worker = worker;
	return 0;
}

/* Nothing may be queued any more: draining has stopped. */
void vmdirty_reset_uninit(struct vmdirty_session *s)
{
	kthread_destroy_worker(s->worker);
}
