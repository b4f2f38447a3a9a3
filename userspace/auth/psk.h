/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The pre-shared key both agents must hold: 32 random bytes, kept in a file
 * as one line of base64 (44 characters), like a WireGuard key.
 *
 * Loading refuses a file that anyone but its owner could read or write, or
 * that belongs to someone else than us or root, as ssh refuses an
 * unprotected private key: a key others can read authenticates them too.
 *
 * The key's id names it without revealing it (a hash of the key), so that
 * a destination can say "the peer holds another key" and logs can tell
 * keys apart.  It travels in the clear as the TLS PSK identity.
 */
#ifndef VMDIRTY_AUTH_PSK_H
#define VMDIRTY_AUTH_PSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define AUTH_KEY_BYTES		32
#define AUTH_KEY_B64_LEN	44	/* base64 of 32 bytes, with one '=' */
/* A key file is one line: the base64, then an optional "\n". */
#define AUTH_KEY_FILE_MAX	(AUTH_KEY_B64_LEN + 1)
#define AUTH_KEY_ID_LEN		24	/* "vmdirty-" and 16 hex digits */

struct auth_key {
	uint8_t key[AUTH_KEY_BYTES];
	char id[AUTH_KEY_ID_LEN + 1];
};

/*
 * Write a new random key to path, created with mode 0600; an existing file
 * is never overwritten (-EEXIST).  why gets a sentence on failure.
 */
int auth_key_generate(const char *path, char *why, size_t whylen);

/* Read and check path (owner, mode, content); 0 and *k, or -errno and why. */
int auth_key_load(const char *path, struct auth_key *k, char *why, size_t whylen);

/*
 * The checks on their own, for tests and the fuzzer: the file's owner and
 * mode as the effective uid euid sees them, and its content.
 */
int auth_key_check_stat(const struct stat *st, uid_t euid, char *why, size_t whylen);
int auth_key_parse(const char *text, size_t len, struct auth_key *k, char *why, size_t whylen);

/* Fill k->id from k->key. */
void auth_key_set_id(struct auth_key *k);

/* A fresh random key (netbench, tests): never written anywhere. */
int auth_key_random(struct auth_key *k);

/* Wipe a key from memory. */
void auth_key_wipe(struct auth_key *k);

#endif
