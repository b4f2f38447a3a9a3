// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: fault injection for DEBUG builds (make module DEBUG=1).  With
 * the module parameter fail_attach set to a step of enum vmdirty_fault,
 * every ATTACH fails there with -ENOMEM, as if that allocation had failed,
 * so that selftests/attach_fault_test.c can check that each error path
 * leaves the session reusable: attached again, harvested and released
 * with no dangling pointer (KASAN under make test-debug) and no leak
 * (kmemleak).  0, the default, fails nothing.
 */
#include <linux/moduleparam.h>

#include "vmdirty.h"

static unsigned int vmdirty_fail_attach;
module_param_named(fail_attach, vmdirty_fail_attach, uint, 0600);
MODULE_PARM_DESC(fail_attach,
		 "DEBUG: fail every ATTACH at this step with ENOMEM (1 vCPU array, 2 layout, 3 region map, 4 private sets, 5 worker; 0 none)");

bool vmdirty_fault(enum vmdirty_fault where)
{
	return READ_ONCE(vmdirty_fail_attach) == where;
}
