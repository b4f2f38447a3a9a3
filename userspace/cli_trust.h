/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The command line of trust, shared by `vmdirty source` and `vmdirty dest`:
 * the key (or the explicit --insecure), where TLS records are encrypted,
 * and the destination's own limits.  Each command merges these getopt
 * entries with its own, as it does vmhost's.
 */
#ifndef VMDIRTY_CLI_TRUST_H
#define VMDIRTY_CLI_TRUST_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "wire/transport.h"

struct migrate_dest_opts;

#define TRUST_OPT_BASE	0x5000
/* The key file when --key is not given. */
#define TRUST_KEY_ENV	"VMDIRTY_KEY"

extern const struct option trust_long_options[];	/* both commands */
extern const struct option trust_dest_options[];	/* dest only */

#define TRUST_USAGE \
	"  --key FILE           the pre-shared key both agents hold (`vmdirty genkey FILE`;\n" \
	"                       default: the file $" TRUST_KEY_ENV " names); every channel is\n" \
	"                       then TLS 1.3, authenticated and encrypted\n" \
	"  --insecure           no key: no authentication, no encryption (warns)\n" \
	"  --tls MODE           where TLS records are encrypted: auto (the kernel's TLS\n" \
	"                       where it has it, else userspace), kernel or user (default auto)\n"

#define TRUST_DEST_USAGE \
	"  --max-mem MiB        refuse a guest larger than this (default: the memory this\n" \
	"                       host has available when the source asks)\n" \
	"  --max-vcpus N        refuse a guest with more vCPUs (default: this host's CPUs)\n" \
	"  --max-handshakes N   TLS handshakes in progress at once, per address; more\n" \
	"                       connections are closed at once (default %d)\n" \
	"  --handshake-timeout MS  close a connection that has not authenticated by then\n" \
	"                       (default %d)\n"

struct trust_cli {
	const char *key_path;
	bool insecure;
	enum transport_tls tls;
	struct auth_creds *creds;
};

void trust_cli_init(struct trust_cli *t);
/* 1 if opt was ours, 0 if not, -1 on a bad value (message printed). */
int trust_cli_parse(struct trust_cli *t, int opt, const char *arg);
/*
 * Settle it into net: load and check the key, or warn on stderr that
 * --insecure means nothing is authenticated or encrypted.  -1 (message
 * printed) when there is neither a key nor --insecure, or the key is bad.
 */
int trust_cli_apply(struct trust_cli *t, struct transport_opts *net, const char *cmd);
void trust_cli_release(struct trust_cli *t);

int trust_dest_parse(struct migrate_dest_opts *o, int opt, const char *arg);

#endif
