/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Seeds for the fuzzers, from real migrations: with VMDIRTY_RECORD=DIR in
 * the environment, an agent writes the first few inputs of each kind it
 * accepted from a peer (every message type, the bytes of each TLS
 * handshake, netlink replies) to DIR/<kind>-<pid>-<n>.  Nothing happens
 * without the variable; scripts/fuzz.sh turns the files into corpora.
 */
#ifndef VMDIRTY_WIRE_RECORD_H
#define VMDIRTY_WIRE_RECORD_H

#include <stdbool.h>
#include <stddef.h>

/* Kinds: a message type (1..WIRE_TYPE_MAX), or one of these. */
enum record_kind {
	RECORD_TLS_SERVER = 64,		/* what a server read in a handshake */
	RECORD_TLS_CLIENT,		/* what a client read */
	RECORD_NL_REPLY,		/* a netlink reply of the vmdirty family */
	RECORD_NL_EVENT,		/* one of its multicast events */
	RECORD_NR_KINDS,
};

/* Is recording on?  Cheap after the first call. */
bool record_on(void);
/* Keep buf as one input of kind (a message type or RECORD_*), if wanted. */
void record_input(unsigned int kind, const void *buf, size_t len);

#endif
