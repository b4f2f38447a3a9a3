// SPDX-License-Identifier: GPL-2.0
/*
 * The command line of trust (cli_trust.h).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/psk.h"
#include "auth/tls.h"
#include "cli.h"
#include "cli_trust.h"
#include "migrate/migrate.h"

enum {
	OPT_KEY = TRUST_OPT_BASE, OPT_INSECURE, OPT_TLS,
	OPT_MAX_MEM, OPT_MAX_VCPUS, OPT_MAX_HANDSHAKES, OPT_HANDSHAKE_TIMEOUT,
};

const struct option trust_long_options[] = {
	{ "key", required_argument, NULL, OPT_KEY },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ NULL, 0, NULL, 0 },
};

const struct option trust_dest_options[] = {
	{ "max-mem", required_argument, NULL, OPT_MAX_MEM },
	{ "max-vcpus", required_argument, NULL, OPT_MAX_VCPUS },
	{ "max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES },
	{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT },
	{ NULL, 0, NULL, 0 },
};

void trust_cli_init(struct trust_cli *t)
{
	memset(t, 0, sizeof(*t));
	t->tls = TRANSPORT_TLS_AUTO;
}

int trust_cli_parse(struct trust_cli *t, int opt, const char *arg)
{
	switch (opt) {
	case OPT_KEY:
		t->key_path = arg;
		return 1;
	case OPT_INSECURE:
		t->insecure = true;
		return 1;
	case OPT_TLS:
		if (transport_tls_parse(arg, &t->tls)) {
			fprintf(stderr, "vmdirty: --tls: '%s': auto, kernel or user\n", arg);
			return -1;
		}
		return 1;
	}
	return 0;
}

int trust_cli_apply(struct trust_cli *t, struct transport_opts *net, const char *cmd)
{
	const char *path = t->key_path;
	struct auth_key k;
	char why[320];

	if (t->insecure && path) {
		fprintf(stderr, "vmdirty %s: --key and --insecure exclude each other\n", cmd);
		return -1;
	}
	if (t->insecure) {
		if (t->tls != TRANSPORT_TLS_AUTO) {
			fprintf(stderr, "vmdirty %s: --tls needs a key, not --insecure\n", cmd);
			return -1;
		}
		fprintf(stderr,
			"vmdirty: WARNING: --insecure: this migration is neither authenticated nor encrypted.\n"
			"vmdirty: WARNING: anyone who can reach a destination's port can send it a VM, and anyone\n"
			"vmdirty: WARNING: on the path can read and change the guest's memory. See `vmdirty genkey`.\n");
		net->auth = NULL;
		return 0;
	}
	if (!path)
		path = getenv(TRUST_KEY_ENV);
	if (!path || !*path) {
		fprintf(stderr,
			"vmdirty %s: no key: give --key FILE (make one with `vmdirty genkey FILE` and copy it\n"
			"to the other host), or --insecure to migrate without authentication or encryption\n",
			cmd);
		return -1;
	}
	if (auth_key_load(path, &k, why, sizeof(why))) {
		fprintf(stderr, "vmdirty %s: %s\n", cmd, why);
		return -1;
	}
	if (auth_creds_new(&k, &t->creds, why, sizeof(why))) {
		auth_key_wipe(&k);
		fprintf(stderr, "vmdirty %s: %s\n", cmd, why);
		return -1;
	}
	auth_key_wipe(&k);
	net->auth = t->creds;
	net->tls = t->tls;
	return 0;
}

void trust_cli_release(struct trust_cli *t)
{
	auth_creds_free(t->creds);
	t->creds = NULL;
}

int trust_dest_parse(struct migrate_dest_opts *o, int opt, const char *arg)
{
	uint64_t v;

	switch (opt) {
	case OPT_MAX_MEM:
		if (cli_u64("max-mem", arg, 1, VM_MAX_MEM >> 20, &v))
			return -1;
		o->max_mem = v << 20;
		return 1;
	case OPT_MAX_VCPUS:
		if (cli_u64("max-vcpus", arg, 1, VM_MAX_VCPUS, &v))
			return -1;
		o->max_vcpus = v;
		return 1;
	case OPT_MAX_HANDSHAKES:
		if (cli_u64("max-handshakes", arg, 1, 1024, &v))
			return -1;
		o->net.max_handshakes = v;
		return 1;
	case OPT_HANDSHAKE_TIMEOUT:
		if (cli_u64("handshake-timeout", arg, 100, 600000, &v))
			return -1;
		o->net.handshake_ms = v;
		return 1;
	}
	return 0;
}
