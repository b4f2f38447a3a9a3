/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmdirty: prototypes shared between the module's files.
 */
#ifndef _VMDIRTY_H
#define _VMDIRTY_H

#include <uapi/linux/vmdirty.h>

#undef pr_fmt
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

int vmdirty_device_init(void);
void vmdirty_device_uninit(void);

#endif /* _VMDIRTY_H */
