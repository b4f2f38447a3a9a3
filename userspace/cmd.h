/* SPDX-License-Identifier: GPL-2.0 */
/* vmdirty: the agent's subcommands, one function each. */
#ifndef VMDIRTY_CMD_H
#define VMDIRTY_CMD_H

int cmd_source(int argc, char **argv);
int cmd_dest(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_version(int argc, char **argv);
/* wire/transport_bench.c */
int cmd_netbench(int argc, char **argv);
/* status.c */
int cmd_status(int argc, char **argv);
int cmd_checkmem(int argc, char **argv);

#endif
