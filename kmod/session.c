// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: a session's life.  It starts with open("/dev/vmdirty"), binds to
 * one VM at ATTACH (holding the VM's file, so the VM outlives its fd and its
 * process), and ends when the last reference to its file goes away: the
 * fd, a dup, one passed over SCM_RIGHTS, or a mapping of the region.
 *
 * Who may attach: a task holding the VM's fd, of the VM's own process (its
 * mm, the one KVM accepts VM ioctls from, and the one the session's resets
 * run with), or with CAP_SYS_ADMIN.  Whoever holds the session's fd after
 * that may harvest: the attacher handed it over.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/kvm_host.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "session.h"
#include "vmdirty.h"

/* The sessions netlink can see, by id; attached ones are marked so. */
DEFINE_MUTEX(vmdirty_sessions_lock);
DEFINE_XARRAY_ALLOC1(vmdirty_sessions);
/*
 * Bumped when a session comes or goes: a dump spanning it is flagged.
 * Never 0, which genl_dump_check_consistent() takes for "not set yet".
 */
u32 vmdirty_sessions_gen = 1;
static u32 vmdirty_sessions_next;

void vmdirty_sessions_changed(void)
{
	lockdep_assert_held(&vmdirty_sessions_lock);
	if (!++vmdirty_sessions_gen)
		vmdirty_sessions_gen = 1;
}

struct vmdirty_session *vmdirty_session_create(void)
{
	struct vmdirty_session *s;

	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		return NULL;
	mutex_init(&s->lock);
	vmdirty_drain_init(s);
	return s;
}

/* ATTACH completed: every field it sets may be read. */
bool vmdirty_session_attached(struct vmdirty_session *s)
{
	/* Pairs with the smp_store_release() at the end of ATTACH. */
	return smp_load_acquire(&s->attached);
}

/*
 * Take an id, unless another session already collects this VM's rings: two
 * collectors would each see half of the entries.
 */
static int vmdirty_session_register(struct vmdirty_session *s)
{
	struct vmdirty_session *other;
	unsigned long id;
	int ret;

	mutex_lock(&vmdirty_sessions_lock);
	xa_for_each(&vmdirty_sessions, id, other) {
		if (other->kvm == s->kvm) {
			ret = -EBUSY;
			goto out_unlock;
		}
	}
	ret = xa_alloc_cyclic(&vmdirty_sessions, &s->id, s, xa_limit_32b,
			      &vmdirty_sessions_next, GFP_KERNEL_ACCOUNT);
	if (ret >= 0) {
		vmdirty_sessions_changed();
		ret = 0;
	}
out_unlock:
	mutex_unlock(&vmdirty_sessions_lock);
	return ret;
}

static void vmdirty_session_unregister(struct vmdirty_session *s)
{
	mutex_lock(&vmdirty_sessions_lock);
	xa_erase(&vmdirty_sessions, s->id);
	vmdirty_sessions_changed();
	mutex_unlock(&vmdirty_sessions_lock);
}

/*
 * Open the VM's file: a KVM VM with its dirty ring, not yet dying, that
 * the caller may attach to.
 */
static struct file *vmdirty_session_vm_get(int fd)
{
	struct file *file = fget(fd);
	struct kvm *kvm;
	int ret;

	if (!file)
		return ERR_PTR(-EBADF);
	ret = -EINVAL;
	if (!vmdirty_file_is_kvm(file))
		goto err_put;
	kvm = file->private_data;
	ret = -EPERM;
	if (current->mm != kvm->mm && !capable(CAP_SYS_ADMIN))
		goto err_put;
	ret = -ENXIO;
	if (!kvm->dirty_ring_size)
		goto err_put;
	ret = -ESRCH;
	if (READ_ONCE(kvm->vm_dead))
		goto err_put;
	return file;

err_put:
	fput(file);
	return ERR_PTR(ret);
}

/*
 * Undo what ATTACH built, in reverse, whatever part of it exists; every
 * pointer is left NULL, so that a later ATTACH on the same file starts
 * from scratch.  The worker is gone first: nothing runs on it any more.
 */
static void vmdirty_session_unbuild(struct vmdirty_session *s)
{
	if (s->worker)
		vmdirty_reset_uninit(s);
	s->worker = NULL;
	vmdirty_shm_free(s);
	kvfree(s->slots);
	s->slots = NULL;
	s->nr_slots = 0;
	s->last_slot = 0;
	kvfree(s->vcpus);
	s->vcpus = NULL;
	s->nr_vcpus = 0;
	memset(s->memslots_gen, 0, sizeof(s->memslots_gen));
	memset(s->unrecorded, 0, sizeof(s->unrecorded));
	memset(s->private_slots, 0, sizeof(s->private_slots));
	s->stale = false;
	s->unreset = false;
	s->conflict = false;
	if (s->cred)
		put_cred(s->cred);
	s->cred = NULL;
}

/**
 * vmdirty_session_attach - VMDIRTY_IOC_ATTACH
 * @s: the session
 * @arg: the validated argument; its out fields are filled
 *
 * Return: 0, or -EBADF, -EINVAL, -EPERM, -ENXIO, -ESRCH (see
 * vmdirty_session_vm_get), -EBUSY (this file is attached, or the VM already
 * has a session), -EFBIG (over max_session_mb), -ENOMEM, -EINTR.  On error
 * nothing changed.
 */
int vmdirty_session_attach(struct vmdirty_session *s, struct vmdirty_attach *arg)
{
	struct file *file;
	int ret;

	file = vmdirty_session_vm_get(arg->vm_fd);
	if (IS_ERR(file))
		return PTR_ERR(file);
	if (mutex_lock_killable(&s->lock)) {
		ret = -EINTR;
		goto err_lock;
	}
	ret = -EBUSY;
	if (s->attached)
		goto err_attached;

	s->vm_file = file;
	s->kvm = file->private_data;
	s->owner_pid = task_tgid_nr(current);
	s->max_vcpus = s->kvm->max_vcpus;
	ret = vmdirty_session_register(s);
	if (ret)
		goto err_register;
	s->cred = get_current_cred();
	ret = -ENOMEM;
	if (!vmdirty_fault(VMDIRTY_FAULT_VCPUS))
		s->vcpus = kvcalloc(s->max_vcpus, sizeof(*s->vcpus), GFP_KERNEL_ACCOUNT);
	if (!s->vcpus)
		goto err_build;
	ret = vmdirty_slots_record(s);
	if (!ret && vmdirty_fault(VMDIRTY_FAULT_SLOTS))
		ret = -ENOMEM;
	if (ret)
		goto err_build;
	ret = vmdirty_shm_alloc(s);
	if (ret)
		goto err_build;
	ret = vmdirty_reset_init(s);
	if (!ret && vmdirty_fault(VMDIRTY_FAULT_WORKER))
		ret = -ENOMEM;
	if (ret)
		goto err_build;

	arg->region_size = s->region_size;
	arg->layout_gen = s->hdr->layout_gen;
	arg->nr_slots = s->nr_slots;
	arg->session_id = s->id;
	/* Pairs with vmdirty_session_attached(). */
	smp_store_release(&s->attached, true);
	mutex_unlock(&s->lock);
	vmdirty_genl_notify(s, VMDIRTY_CMD_SESSION_NEW);
	return 0;

err_build:
	vmdirty_session_unbuild(s);
	vmdirty_session_unregister(s);
	s->id = 0;
err_register:
	s->kvm = NULL;
	s->vm_file = NULL;
	s->owner_pid = 0;
	s->max_vcpus = 0;
err_attached:
	mutex_unlock(&s->lock);
err_lock:
	fput(file);
	return ret;
}

/**
 * vmdirty_session_destroy - the session file's release
 * @s: the session
 *
 * No ioctl runs and no mapping exists any more (each holds the file).
 */
void vmdirty_session_destroy(struct vmdirty_session *s)
{
	if (s->attached) {
		vmdirty_session_unregister(s);
		vmdirty_genl_notify(s, VMDIRTY_CMD_SESSION_DEL);
		mutex_lock(&s->lock);
		vmdirty_drain_stop(s);
		mutex_unlock(&s->lock);
		vmdirty_session_unbuild(s);
		/* The last reference to the VM may go here. */
		fput(s->vm_file);
	}
	mutex_destroy(&s->lock);
	kfree(s);
}
