// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the /dev/vmdirty misc device and its ioctl dispatch.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "vmdirty.h"

static long vmdirty_get_info(void __user *uarg, unsigned int usize)
{
	struct vmdirty_info info;
	int ret;

	if (usize < sizeof(info))
		return -EINVAL;
	ret = copy_struct_from_user(&info, sizeof(info), uarg, usize);
	if (ret)
		return ret;
	if (info.size != usize || info.flags || memchr_inv(info.reserved, 0, sizeof(info.reserved)))
		return -EINVAL;

	info.abi_version = VMDIRTY_ABI_VERSION;
	info.features = 0;
	info.region_size = 0;
	info.layout_gen = 0;
	info.attached = 0;
	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long vmdirty_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) != VMDIRTY_IOC_MAGIC)
		return -ENOTTY;

	switch (_IOC_NR(cmd)) {
	case _IOC_NR(VMDIRTY_IOC_GET_INFO):
		if (_IOC_DIR(cmd) != _IOC_DIR(VMDIRTY_IOC_GET_INFO))
			return -ENOTTY;
		return vmdirty_get_info(uarg, _IOC_SIZE(cmd));
	}
	return -ENOTTY;
}

static const struct file_operations vmdirty_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= vmdirty_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice vmdirty_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= VMDIRTY_DEVICE_NAME,
	.fops	= &vmdirty_fops,
	.mode	= 0600,
};

int vmdirty_device_init(void)
{
	return misc_register(&vmdirty_misc);
}

void vmdirty_device_uninit(void)
{
	misc_deregister(&vmdirty_misc);
}
