// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: module init and exit, nothing else.  The netlink family comes
 * last and goes first, so userspace never sees a half-built module.
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
	ret = vmdirty_device_init();
	if (ret < 0)
		goto err_device;
	ret = vmdirty_genl_init();
	if (ret < 0)
		goto err_genl;

	pr_info("loaded, ABI %d\n", VMDIRTY_ABI_VERSION);
	return 0;

err_genl:
	vmdirty_device_uninit();
err_device:
	return ret;
}

static void __exit vmdirty_mod_exit(void)
{
	vmdirty_genl_uninit();
	vmdirty_device_uninit();
	pr_info("unloaded\n");
}

module_init(vmdirty_mod_init);
module_exit(vmdirty_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Batched KVM dirty ring harvesting for live migration");
MODULE_AUTHOR("vmdirty developers");
