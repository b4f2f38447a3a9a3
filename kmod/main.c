// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: module init and exit, nothing else.  /dev/vmdirty, through which
 * sessions are made, comes last and goes first: nothing can open it on a
 * module whose init then fails.  The netlink family before it only ever
 * reports sessions, and has none to report until the device exists.
 *
 * One window stays open, as in any module with two user-visible
 * registrations: a dump begun in the instant between the family's
 * registration and a failing misc_register() holds a module reference that
 * the loader does not wait for when init fails (do_init_module() frees the
 * module regardless).  The other order leaves the device's window instead,
 * which an open file keeps open longer.
 */
#include <linux/module.h>

#include "vmdirty.h"

static int __init vmdirty_mod_init(void)
{
	int ret;

#ifdef DEBUG
	if (!vmdirty_selftest())
		return -ENOTRECOVERABLE;
#endif
	ret = vmdirty_genl_init();
	if (ret < 0)
		goto err_genl;
	ret = vmdirty_device_init();
	if (ret < 0)
		goto err_device;

	pr_info("loaded, ABI %d\n", VMDIRTY_ABI_VERSION);
	return 0;

err_device:
	vmdirty_genl_uninit();
err_genl:
	return ret;
}

static void __exit vmdirty_mod_exit(void)
{
	vmdirty_device_uninit();
	vmdirty_genl_uninit();
	pr_info("unloaded\n");
}

module_init(vmdirty_mod_init);
module_exit(vmdirty_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Batched KVM dirty ring harvesting for live migration");
MODULE_AUTHOR("vmdirty developers");
/*
 * modprobe loads kvm first even where no symbol of ours ties us to it
 * (7.x: the VM file is recognised without file_is_kvm(), compat.h).
 */
MODULE_SOFTDEP("pre: kvm");
