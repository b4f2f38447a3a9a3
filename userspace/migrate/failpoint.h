/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fault injection at named steps of the handover, for the tests that break
 * a migration at one exact message (selftests/switchover_test.sh).
 *
 * VMDIRTY_FAILPOINT="NAME[:ACTION],..." in the environment; ACTION is
 * "stop" (the default: the agent stops itself with SIGSTOP, so that the
 * test can kill it, take the link down or delay it, then continue it),
 * "exit" (dies on the spot, like SIGKILL), "sleep=MS" (the thread that
 * got there waits; the rest of the agent, its control socket included,
 * goes on) or "fail" (the step returns -EIO: only where a step can fail
 * and its caller looks: src-probe; dst-round-ack sends ERROR instead of
 * the ack and reads on).  Unset, a failpoint costs one
 * load.  The names are in Documentation/migration.rst.
 *
 * Returns 0, or -EIO for "fail".
 */
#ifndef VMDIRTY_FAILPOINT_H
#define VMDIRTY_FAILPOINT_H

int migrate_failpoint(const char *name);

#endif
