// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty genkey FILE: a new pre-shared key for a pair of agents.
 */
#include <stdio.h>
#include <string.h>

#include "auth/psk.h"
#include "cmd.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmdirty genkey FILE\n"
		"\nWrite a new random key (32 bytes, base64) to FILE, created readable by its\n"
		"owner only (0600); an existing FILE is never overwritten.  Copy it to the\n"
		"other host over a channel you trust (scp), keeping it 0600, and give both\n"
		"agents --key FILE.  Its id (a hash of the key, safe to show) is printed.\n");
}

int cmd_genkey(int argc, char **argv)
{
	struct auth_key k;
	char why[256];

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		usage(stderr);
		return 2;
	}
	if (auth_key_generate(argv[1], why, sizeof(why)) ||
	    auth_key_load(argv[1], &k, why, sizeof(why))) {
		fprintf(stderr, "vmdirty genkey: %s\n", why);
		return 1;
	}
	printf("%s: key %s\n", argv[1], k.id);
	auth_key_wipe(&k);
	return 0;
}
