// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty version: the agent's version and what the module reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vmdirty.h>

#include "cmd.h"

#define VMDIRTY_AGENT_VERSION "0.1"

int cmd_version(int argc, char **argv)
{
	struct vmdirty_info info = { .size = sizeof(info) };
	int fd;

	printf("vmdirty agent %s, ABI %d\n", VMDIRTY_AGENT_VERSION, VMDIRTY_ABI_VERSION);
	fd = open("/dev/" VMDIRTY_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("vmdirty.ko: not loaded (/dev/%s: %s)\n", VMDIRTY_DEVICE_NAME, strerror(errno));
		return 0;
	}
	if (ioctl(fd, VMDIRTY_IOC_GET_INFO, &info) < 0)
		printf("vmdirty.ko: GET_INFO failed: %s\n", strerror(errno));
	else
		printf("vmdirty.ko: ABI %u, features 0x%x\n", info.abi_version, info.features);
	close(fd);
	return 0;
}
