// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty migrate: talk to a running source agent's control socket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "control.h"

static void migrate_usage(FILE *f)
{
	fprintf(f,
		"usage: vmdirty migrate PATH [migrate|status|cancel|quit]\n"
		"\nAsk the source agent listening on control socket PATH (vmdirty source\n"
		"--control PATH) to migrate now (the default; prints its report as JSON),\n"
		"report its state, cancel a migration in progress, or quit.\n");
}

int cmd_migrate(int argc, char **argv)
{
	const char *req = "migrate";
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (argc < 2 || argc > 3 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		migrate_usage(argc < 2 || argc > 3 ? stderr : stdout);
		return argc < 2 || argc > 3 ? 2 : 0;
	}
	if (argc == 3)
		req = argv[2];
	if (control_parse(req) == CONTROL_NONE) {
		fprintf(stderr, "vmdirty migrate: unknown request '%s'\n", req);
		migrate_usage(stderr);
		return 2;
	}
	f = open_memstream(&text, &len);
	if (!f)
		return 1;
	ret = control_request(argv[1], req, f);
	fclose(f);
	if (ret) {
		fprintf(stderr, "vmdirty migrate: %s: %s\n", argv[1], strerror(-ret));
		free(text);
		return 1;
	}
	fputs(text, stdout);
	/* A migration report says whether it worked; errors start with "error". */
	ret = !strncmp(text, "error", 5) || strstr(text, "\"ok\":false");
	free(text);
	return ret;
}
