// SPDX-License-Identifier: GPL-2.0
/*
 * A selftest helper, not for hosts: it takes the generic netlink family
 * name of vmdirty.ko, so that loading vmdirty.ko fails at that step, and
 * lifetime_test checks that nothing of the half-built module (its
 * /dev/vmdirty) was ever visible meanwhile.
 */
#include <linux/module.h>
#include <net/genetlink.h>
#include <uapi/linux/vmdirty.h>

static struct genl_family vmdirty_squat_family __ro_after_init = {
	.name		= VMDIRTY_GENL_NAME,
	.version	= VMDIRTY_GENL_VERSION,
	.module		= THIS_MODULE,
};

static int __init vmdirty_squat_init(void)
{
	return genl_register_family(&vmdirty_squat_family);
}

static void __exit vmdirty_squat_exit(void)
{
	genl_unregister_family(&vmdirty_squat_family);
}

module_init(vmdirty_squat_init);
module_exit(vmdirty_squat_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmdirty selftests: holds the vmdirty genetlink family name");
