/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmdirty: what differs between the kernels vmdirty.ko builds against
 * (6.1 LTS and 6.12 LTS), each shim with why it exists.  Feature probes
 * only: a macro the headers define, or a VMDIRTY_HAVE_* that Kbuild sets
 * after looking for the declaration in the kernel's headers.
 */
#ifndef _VMDIRTY_COMPAT_H
#define _VMDIRTY_COMPAT_H

#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <net/genetlink.h>

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

#endif /* _VMDIRTY_COMPAT_H */
