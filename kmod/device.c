// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the /dev/vmdirty misc device, its file operations and the ioctl
 * dispatch: every argument is copied and checked here, before any lock is
 * taken, and copied back after every lock is dropped.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/uaccess.h>

#include "session.h"
#include "vmdirty.h"

#define VMDIRTY_FEATURES	(VMDIRTY_FEAT_SORTED_RESET | VMDIRTY_FEAT_DRAIN | \
				 VMDIRTY_FEAT_FOREIGN_MM)

/*
 * Copy an ioctl argument in.  It starts with __u32 size, which must equal
 * the size in the ioctl number; a longer struct (a later ABI) is accepted if
 * its tail is zero, else -E2BIG; a shorter one is not known yet.
 */
static int vmdirty_arg_in(void *karg, size_t ksize, void __user *uarg,
			  unsigned int usize)
{
	int ret;

	if (usize < ksize)
		return -EINVAL;
	ret = copy_struct_from_user(karg, ksize, uarg, usize);
	if (ret)
		return ret;
	if (*(u32 *)karg != usize)
		return -EINVAL;
	return 0;
}

static bool vmdirty_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

static long vmdirty_get_info(struct vmdirty_session *s, void __user *uarg,
			     unsigned int usize)
{
	struct vmdirty_info info;
	int ret;

	ret = vmdirty_arg_in(&info, sizeof(info), uarg, usize);
	if (ret)
		return ret;
	if (info.flags || info.pad || !vmdirty_zero(info.reserved, sizeof(info.reserved)))
		return -EINVAL;

	info.abi_version = VMDIRTY_ABI_VERSION;
	info.features = VMDIRTY_FEATURES;
	info.region_size = 0;
	info.layout_gen = 0;
	info.session_id = 0;
	info.attached = vmdirty_session_attached(s);
	if (info.attached) {
		info.region_size = s->region_size;
		info.layout_gen = READ_ONCE(s->hdr->layout_gen);
		info.session_id = s->id;
	}
	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long vmdirty_attach(struct vmdirty_session *s, void __user *uarg,
			   unsigned int usize)
{
	struct vmdirty_attach arg;
	int ret;

	ret = vmdirty_arg_in(&arg, sizeof(arg), uarg, usize);
	if (ret)
		return ret;
	if (arg.flags || arg.pad || arg.pad2 ||
	    !vmdirty_zero(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	ret = vmdirty_session_attach(s, &arg);
	if (ret)
		return ret;
	/* Attached even if this fails: the session is whole, GET_INFO tells. */
	if (copy_to_user(uarg, &arg, sizeof(arg)))
		return -EFAULT;
	return 0;
}

static long vmdirty_harvest_ioctl(struct vmdirty_session *s, void __user *uarg,
				  unsigned int usize)
{
	struct vmdirty_harvest arg;
	int ret;

	ret = vmdirty_arg_in(&arg, sizeof(arg), uarg, usize);
	if (ret)
		return ret;
	/* Out fields may hold a previous call's results: not checked. */
	if ((arg.flags & ~VMDIRTY_HARVEST_FLAGS_ALL) ||
	    !vmdirty_zero(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	if (!vmdirty_session_attached(s))
		return -ENOTCONN;
	ret = vmdirty_harvest(s, &arg);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &arg, sizeof(arg)))
		return -EFAULT;
	return 0;
}

static long vmdirty_set_drain_ioctl(struct vmdirty_session *s, void __user *uarg,
				    unsigned int usize)
{
	struct vmdirty_drain arg;
	int ret;

	ret = vmdirty_arg_in(&arg, sizeof(arg), uarg, usize);
	if (ret)
		return ret;
	if ((arg.flags & ~VMDIRTY_DRAIN_FLAGS_ALL) || arg.pad ||
	    !vmdirty_zero(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	if (!vmdirty_session_attached(s))
		return -ENOTCONN;
	return vmdirty_set_drain(s, &arg);
}

static const struct vmdirty_ioctl {
	unsigned int cmd;
	long (*fn)(struct vmdirty_session *s, void __user *uarg,
		   unsigned int usize);
} vmdirty_ioctls[] = {
	{ VMDIRTY_IOC_GET_INFO,	vmdirty_get_info },
	{ VMDIRTY_IOC_ATTACH,	vmdirty_attach },
	{ VMDIRTY_IOC_HARVEST,	vmdirty_harvest_ioctl },
	{ VMDIRTY_IOC_SET_DRAIN, vmdirty_set_drain_ioctl },
};

/* Matched on type, number and direction; the size is the argument's own. */
static long vmdirty_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	const struct vmdirty_ioctl *ioc;

	if (_IOC_TYPE(cmd) != VMDIRTY_IOC_MAGIC || _IOC_NR(cmd) >= ARRAY_SIZE(vmdirty_ioctls))
		return -ENOTTY;
	/* No speculative call through an entry past the table. */
	ioc = &vmdirty_ioctls[array_index_nospec(_IOC_NR(cmd), ARRAY_SIZE(vmdirty_ioctls))];
	if (_IOC_NR(ioc->cmd) != _IOC_NR(cmd) || _IOC_DIR(ioc->cmd) != _IOC_DIR(cmd))
		return -ENOTTY;
	return ioc->fn(file->private_data, (void __user *)arg, _IOC_SIZE(cmd));
}

static int vmdirty_open(struct inode *inode, struct file *file)
{
	struct vmdirty_session *s = vmdirty_session_create();

	if (!s)
		return -ENOMEM;
	file->private_data = s;
	return nonseekable_open(inode, file);
}

static int vmdirty_release(struct inode *inode, struct file *file)
{
	vmdirty_session_destroy(file->private_data);
	return 0;
}

static int vmdirty_mmap(struct file *file, struct vm_area_struct *vma)
{
	return vmdirty_shm_mmap(file->private_data, vma);
}

/* .owner: an open session pins the module, rmmod fails until it closes. */
static const struct file_operations vmdirty_fops = {
	.owner		= THIS_MODULE,
	.open		= vmdirty_open,
	.release	= vmdirty_release,
	.unlocked_ioctl	= vmdirty_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= vmdirty_mmap,
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
