// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: having KVM re-protect what a walk collected, through the VM
 * file's own ioctl path (security_file_ioctl(), then vfs_ioctl()), so that
 * LSM policy on the VM file applies to the module's resets as to the VMM's.
 * kvm_vm_ioctl() refuses callers whose mm is not the VM's, so a caller from
 * another process, and the drain work, go through the session's kthread
 * worker, which adopts the VM's mm and its caller's credentials for the
 * call: the drain work acts for the task that attached, a harvest for its
 * caller.
 */
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/sched/mm.h>
#include <linux/security.h>

#include "compat.h"
#include "session.h"
#include "vmdirty.h"

/* Takes kvm->slots_lock: never called under kvm->srcu or slots_lock. */
static int vmdirty_reset_ioctl(struct vmdirty_session *s)
{
	struct file *f = s->vm_file;
	int ret;

	ret = security_file_ioctl(f, KVM_RESET_DIRTY_RINGS, 0);
	if (ret)
		return ret;
	return vfs_ioctl(f, KVM_RESET_DIRTY_RINGS, 0);
}

/* On the worker: borrow the VM's mm if its process still has one. */
static int vmdirty_reset_with_mm(struct vmdirty_session *s, const struct cred *cred)
{
	struct mm_struct *mm = s->kvm->mm;
	const struct cred *old;
	int ret;

	if (!mmget_not_zero(mm))
		return -ESRCH;
	old = override_creds(cred);
	kthread_use_mm(mm);
	ret = vmdirty_reset_ioctl(s);
	kthread_unuse_mm(mm);
	revert_creds(old);
	/*
	 * The VM's process may have exited meanwhile: the last reference must
	 * not tear the mm down here, where a harvest waits under s->lock.
	 */
	mmput_async(mm);
	return ret;
}

static void vmdirty_reset_work(struct kthread_work *work)
{
	struct vmdirty_session *s = container_of(work, struct vmdirty_session,
						 reset_work);

	s->reset_ret = vmdirty_reset_with_mm(s, s->reset_cred);
}

/**
 * vmdirty_reset_rings - KVM_RESET_DIRTY_RINGS for the session's VM
 * @s: the session, locked
 * @on_worker: from a thread of the VM's process too, do it on the worker
 *	(a retry: no signal stops a kthread's reset)
 *
 * From the VM's process: directly, unless KVM's reset stops on a signal
 * (compat.h).  From the worker (draining): with the VM's mm and the
 * credentials of the task that attached.  Otherwise: on the worker, with
 * the caller's credentials, waiting for it; nothing on the worker ever
 * waits for @s->lock, so waiting under it is safe.
 * Return: entries KVM reset, -ESRCH if the VM's process is gone, an LSM's
 * refusal, or KVM's error.
 */
int vmdirty_reset_rings(struct vmdirty_session *s, bool on_worker)
{
	int ret;

	lockdep_assert_held(&s->lock);
	if (current == s->worker->task) {
		ret = vmdirty_reset_with_mm(s, s->cred);
	} else if (current->mm == s->kvm->mm && !on_worker &&
		   !VMDIRTY_RESET_STOPS_ON_SIGNAL) {
		ret = vmdirty_reset_ioctl(s);
	} else {
		/* The caller waits: its credentials live as long as the work. */
		s->reset_cred = current_cred();
		kthread_queue_work(s->worker, &s->reset_work);
		kthread_flush_work(&s->reset_work);
		s->reset_cred = NULL;
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
