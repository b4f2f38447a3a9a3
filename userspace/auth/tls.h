/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TLS 1.3 with a pre-shared key (psk.h), on GnuTLS: what makes a channel
 * authenticated and private.
 *
 * Both sides prove they hold the same key before either reads a byte of the
 * migration protocol: the handshake is TLS 1.3's psk_dhe_ke (RFC 8446
 * 4.2.9), an ECDHE exchange (X25519 or P-256) bound to the key, so that
 *  - only a peer with the key completes it (a wrong key fails the binder or
 *    the Finished check; the key's id, sent in the clear, says which);
 *  - a recorded handshake replayed later fails: the server's fresh random
 *    and key share make every session's keys new, and 0-RTT (the one replay
 *    window TLS 1.3 has) is never enabled;
 *  - keys recorded traffic cannot be decrypted later with the PSK alone
 *    (forward secrecy from the ephemeral exchange).
 * No session tickets, no resumption, no key updates: one handshake per
 * connection, and afterwards only application data records, so that the
 * record keys can be handed to the kernel (kTLS) once the handshake is done.
 *
 * A session reads its byte stream one record at a time (auth_rec_*), never
 * past the end of the record it needs: when the handshake is over, GnuTLS
 * holds no bytes the kernel should have decrypted, and a peer that is not
 * speaking TLS is caught on its first five bytes.
 */
#ifndef VMDIRTY_AUTH_TLS_H
#define VMDIRTY_AUTH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/psk.h"

/* TLS record framing: type, legacy version, length (RFC 8446 5.1). */
#define AUTH_REC_HDR		5u
#define AUTH_REC_MAX_BODY	(16384 + 256)

/* Where a TLS byte stream stands, record by record. */
struct auth_rec_cursor {
	uint8_t hdr[AUTH_REC_HDR];
	uint8_t hdr_got;		/* bytes of the current header seen */
	uint32_t body_left;		/* bytes of the current body still to come */
	uint64_t records;		/* headers completed */
	uint64_t bytes;			/* bytes passed */
	int bad;			/* AUTH_NOT_TLS_*: the stream is not TLS */
};

enum {
	AUTH_NOT_TLS_CLEAR = 1,		/* the migration protocol in the clear */
	AUTH_NOT_TLS_OTHER,		/* something else */
};

/* How many of want bytes may be read without reading into the next record. */
size_t auth_rec_limit(const struct auth_rec_cursor *c, size_t want);
/* n bytes were read: move on, checking every header; false once bad. */
bool auth_rec_advance(struct auth_rec_cursor *c, const uint8_t *p, size_t n);
/* What a bad stream looked like, in words. */
void auth_rec_describe(const struct auth_rec_cursor *c, char *buf, size_t len);

/* One key's credentials, both roles; shared by every session, read-only. */
struct auth_creds;
int auth_creds_new(const struct auth_key *k, struct auth_creds **out, char *why, size_t whylen);
void auth_creds_free(struct auth_creds *c);
const char *auth_creds_key_id(const struct auth_creds *c);

enum auth_role { AUTH_CLIENT, AUTH_SERVER };

/*
 * The byte stream under a session.  Each returns the bytes moved, or -1 with
 * errno set (EAGAIN: nothing now, ask again once the socket is ready); a
 * pull returning 0 is the peer's close.
 */
struct auth_io {
	ssize_t (*push)(void *ctx, const void *buf, size_t len);
	ssize_t (*pull)(void *ctx, void *buf, size_t len);
	void *ctx;
};

struct auth_session;
int auth_session_new(const struct auth_creds *c, enum auth_role role, const struct auth_io *io,
		     struct auth_session **out);
void auth_session_free(struct auth_session *s);
void auth_session_set_io(struct auth_session *s, const struct auth_io *io);

/*
 * Run the handshake as far as the stream allows: 0 done; -EAGAIN: call
 * again once the stream can move in the direction *want_write says; any
 * other -errno: failed for good (auth_session_error() says why, in words;
 * -EACCES: the peer does not hold our key, -EPROTO: it does not speak TLS).
 * A failed server session has sent an alert where it could.
 */
int auth_handshake(struct auth_session *s, bool *want_write);
const char *auth_session_error(const struct auth_session *s);
/* The errno of the stream's last failure (push or pull), 0 if none. */
int auth_session_io_errno(const struct auth_session *s);
/* After the handshake: "TLS1.3 ECDHE-PSK AES-128-GCM" and the peer's key id. */
const char *auth_session_desc(const struct auth_session *s);
const char *auth_session_peer_id(const struct auth_session *s);

/*
 * Hand the record keys to the kernel (TCP_ULP "tls", TLS_TX and TLS_RX) on
 * fd, the socket under the session.  -ENOENT: this kernel has no TLS ULP
 * and the socket is untouched (go on in userspace); any other failure
 * leaves the socket unusable.  Afterwards the session must not be used for
 * I/O: read and write plaintext on fd.
 */
int auth_session_ktls(struct auth_session *s, int fd, char *why, size_t whylen);

/*
 * Records in userspace (no kTLS): the same as recv()/send() on the
 * plaintext, bytes moved or -errno (-EPIPE when the stream failed: see
 * auth_session_io_errno(); -EBADMSG: a record failed its authentication).
 * auth_recv() returns 0 when the peer closed.
 */
ssize_t auth_send(struct auth_session *s, const void *buf, size_t len);
ssize_t auth_recv(struct auth_session *s, void *buf, size_t len);
/* Plaintext already decrypted and waiting in the session. */
size_t auth_pending(struct auth_session *s);

#endif
