/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmdirty: what differs between the kernels vmdirty.ko builds against
 * (6.1 LTS, 6.12 LTS and 7.x), each shim with why it exists.  Feature
 * probes only: a macro the headers define, or a VMDIRTY_HAVE_* that Kbuild
 * sets after looking for the declaration in the kernel's headers (or for
 * the export in its Module.symvers).
 */
#ifndef _VMDIRTY_COMPAT_H
#define _VMDIRTY_COMPAT_H

#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <net/genetlink.h>
#include <uapi/linux/magic.h>

/*
 * 6.8 ("KVM: Allow arch code to track number of memslot address spaces per
 * VM") replaced the constant KVM_ADDRESS_SPACE_NUM by a per-VM count.
 */
#ifdef KVM_ADDRESS_SPACE_NUM
#define VMDIRTY_MAX_AS			KVM_ADDRESS_SPACE_NUM
#define vmdirty_kvm_nr_as(kvm)		KVM_ADDRESS_SPACE_NUM
#else
#define VMDIRTY_MAX_AS			KVM_MAX_NR_ADDRESS_SPACES
#define vmdirty_kvm_nr_as(kvm)		kvm_arch_nr_memslot_as_ids(kvm)
#endif

/*
 * 6.3 ("mm: introduce vma->vm_flags wrapper functions") made vm_flags
 * read-only outside the wrappers; before, it was written directly.
 */
#ifndef VMDIRTY_HAVE_VM_FLAGS_CLEAR
static inline void vm_flags_clear(struct vm_area_struct *vma,
				  unsigned long flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * 6.6 ("genetlink: use attrs from struct genl_info") moved a dump's parsed
 * attributes into a struct genl_info reached with genl_info_dump().
 */
static inline struct nlattr **vmdirty_dump_attrs(struct netlink_callback *cb)
{
#ifdef VMDIRTY_HAVE_GENL_INFO_DUMP
	return genl_info_dump(cb)->attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/*
 * vfs_ioctl() is neither declared nor exported in 7.x (trixie-backports'
 * 7.3 headers and Module.symvers; 6.1 and 6.12 have both).  For one file
 * it is the file's own unlocked_ioctl, with -ENOIOCTLCMD made -ENOTTY.
 */
#ifndef VMDIRTY_HAVE_VFS_IOCTL
static inline long vfs_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	long ret;

	if (!f->f_op->unlocked_ioctl)
		return -ENOTTY;
	ret = f->f_op->unlocked_ioctl(f, cmd, arg);
	return ret == -ENOIOCTLCMD ? -ENOTTY : ret;
}
#endif

/*
 * 6.17 ("KVM: Bail from the dirty ring reset flow if a signal is pending",
 * with the reset's count moved to an argument, int *nr_entries_reset) made
 * KVM_RESET_DIRTY_RINGS return -EINTR part way on a pending signal, and
 * return before re-protecting the pages of the entries it had gathered
 * last.  There a reset must not run on a task signals reach: the session's
 * kthread worker does every reset.  Before, a reset runs to the end.
 */
#ifdef VMDIRTY_HAVE_RESET_NR_ENTRIES
#define VMDIRTY_RESET_STOPS_ON_SIGNAL	true
#else
#define VMDIRTY_RESET_STOPS_ON_SIGNAL	false
#endif

/*
 * 6.7 ("genetlink: add CAP_NET_ADMIN test for multicast bind"), backported
 * to 6.1.x, lets a multicast group ask for CAP_NET_ADMIN; before, the
 * family's mcast_bind() callback checks it.
 */
#ifdef VMDIRTY_HAVE_GENL_MCAST_CAP
#define VMDIRTY_GENL_MCGRP_FLAGS	GENL_MCAST_CAP_NET_ADMIN
#else
#define VMDIRTY_GENL_MCGRP_FLAGS	0
#endif

/*
 * 6.18 ("KVM: Export KVM-internal symbols for sub-modules only") exports
 * file_is_kvm() to kvm-intel and kvm-amd only, so a module that links to it
 * no longer loads.  It is a pointer compare (f_op == &kvm_vm_fops), and
 * kvm_vm_fops is static; without the export a VM file is recognised by
 * what KVM makes of it instead: an anonymous-inode file (only kernel code
 * makes those, userspace cannot name one) called exactly "kvm-vm" (not
 * "kvm-vm-stats", "kvm-vcpu:N" or a device's "kvm-vfio": KVM's other
 * files), whose operations belong to KVM's own modules (where this is
 * needed kvm_vm_fops.owner names one, NULL if KVM is built in; 6.1 leaves
 * it NULL, but exports file_is_kvm(), which is used there).  A
 * module that made such a file to fool us would be kernel code already.
 * Only then is private_data taken for a struct kvm.  Kbuild defines
 * VMDIRTY_HAVE_FILE_IS_KVM when Module.symvers exports file_is_kvm with no
 * namespace; selftests/compat_test.c tries the look-alike files.
 */
static inline bool vmdirty_kvm_owner(const struct module *owner)
{
	static const char * const names[] = { "kvm", "kvm_amd", "kvm_intel" };
	unsigned int i;

	if (!owner)
		return IS_BUILTIN(CONFIG_KVM);
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(owner->name, names[i]))
			return true;
	return false;
}

static inline bool vmdirty_file_is_kvm_vm(struct file *file)
{
	/* A pseudo dentry: never renamed, its name is stable. */
	const struct dentry *d = file->f_path.dentry;

	return file_inode(file)->i_sb->s_magic == ANON_INODE_FS_MAGIC &&
	       !strcmp(d->d_name.name, "kvm-vm") && file->f_op &&
	       vmdirty_kvm_owner(file->f_op->owner);
}

static inline bool vmdirty_file_is_kvm(struct file *file)
{
#ifdef VMDIRTY_HAVE_FILE_IS_KVM
	bool is_kvm = file_is_kvm(file);

#ifdef DEBUG
	/*
	 * DEBUG builds hold the fallback to the real thing where both exist,
	 * except for a VM file whose operations name no module: 6.1 leaves
	 * kvm_vm_fops.owner NULL (virt/kvm/kvm_main.c: only kvm_chardev_ops
	 * gets one), so only file_is_kvm() can tell there.
	 */
	WARN_ONCE(is_kvm != vmdirty_file_is_kvm_vm(file) &&
		  !(is_kvm && !file->f_op->owner && !IS_BUILTIN(CONFIG_KVM)),
		  "vmdirty: VM file test disagrees with file_is_kvm() (%d)\n", is_kvm);
#endif
	return is_kvm;
#else
	return vmdirty_file_is_kvm_vm(file);
#endif
}

#endif /* _VMDIRTY_COMPAT_H */
