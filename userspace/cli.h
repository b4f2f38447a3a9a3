/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Command-line values, checked the same way by every subcommand: a clear
 * message naming the option on stderr, and -1, for anything out of range.
 */
#ifndef VMDIRTY_CLI_H
#define VMDIRTY_CLI_H

#include <stdbool.h>
#include <stdint.h>

int cli_num(const char *name, const char *arg, double min, double max, double *v);
int cli_u64(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *v);
/* --ram anon|memfd: *memfd set accordingly. */
int cli_ram(const char *arg, bool *memfd);

#endif
