// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty: the migration agent's entry point, a table of subcommands.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} subcommands[] = {
	{ "source", cmd_source, "run a VM and live-migrate it to a destination agent" },
	{ "dest", cmd_dest, "wait for a live migration and run the guest that arrives" },
	{ "migrate", cmd_migrate, "ask a running source (--control) to migrate, report or quit" },
	{ "version", cmd_version, "print the agent's and the module's versions" },
	{ "netbench", cmd_netbench, "transport throughput and CPU cost, loopback or two hosts" },
	{ "status", cmd_status, "the module's sessions and per-vCPU counters (netlink)" },
	{ "checkmem", cmd_checkmem, "check a guest memory dump (QEMU's or the agent's) against its content rule" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vmdirty <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(f, "\n'vmdirty <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	/* A reader that went away (--debugcon FIFO, a control client) is an error, not death. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vmdirty: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
