// SPDX-License-Identifier: GPL-2.0
/*
 * TLS 1.3 PSK sessions on GnuTLS, and the hand-over of their record keys to
 * the kernel (tls.h).  GnuTLS does the handshake and, where the kernel has
 * no TLS, the records; everything here is glue: credentials, the stream
 * read record by record, failures said in words, the kTLS key layout.
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>

#include "auth/tls.h"
#include "wire/record.h"

#ifndef SOL_TLS
#define SOL_TLS		282
#endif

/*
 * TLS 1.3 only, ECDHE-PSK only (no psk_ke without forward secrecy), AEAD
 * ciphers the kernel's TLS takes, AES-128-GCM first (the cheapest with
 * AES-NI, and kTLS's most used path).
 */
#define AUTH_PRIORITY	"NONE:+VERS-TLS1.3:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:" \
			"+AEAD:+ECDHE-PSK:+GROUP-X25519:+GROUP-SECP256R1:+SIGN-ALL:+COMP-NULL"

/* VMDIRTY_RECORD: the first bytes of a handshake kept as a fuzzer's seed. */
#define AUTH_REC_KEEP	16384

struct auth_creds {
	struct auth_key key;
	gnutls_psk_client_credentials_t cli;
	gnutls_psk_server_credentials_t srv;
	gnutls_priority_t prio;
};

struct auth_session {
	const struct auth_creds *c;
	gnutls_session_t g;
	enum auth_role role;
	struct auth_io io;
	struct auth_rec_cursor rx;
	int io_errno;
	bool eof;
	bool done;
	uint8_t *rec;			/* VMDIRTY_RECORD: the handshake as read */
	size_t nrec;
	char peer_id[AUTH_KEY_ID_LEN + 8];	/* the identity the client presented */
	char err[256];
	char desc[128];
};

/* The record cursor. */

size_t auth_rec_limit(const struct auth_rec_cursor *c, size_t want)
{
	size_t lim = c->hdr_got < AUTH_REC_HDR ? AUTH_REC_HDR - c->hdr_got : c->body_left;

	return want < lim ? want : lim;
}

/* A record header as RFC 8446 5.1 allows it on the wire. */
static bool rec_hdr_ok(const uint8_t *h, uint32_t *len)
{
	*len = (uint32_t)h[3] << 8 | h[4];
	/* change_cipher_spec, alert, handshake, application_data */
	if (h[0] < 20 || h[0] > 23)
		return false;
	/* legacy_record_version: 0x0301 in a first ClientHello, else 0x0303 */
	if (h[1] != 3 || h[2] < 1 || h[2] > 4)
		return false;
	return *len && *len <= AUTH_REC_MAX_BODY;
}

bool auth_rec_advance(struct auth_rec_cursor *c, const uint8_t *p, size_t n)
{
	while (n && !c->bad) {
		if (c->hdr_got < AUTH_REC_HDR) {
			size_t k = AUTH_REC_HDR - c->hdr_got;
			uint32_t len;

			if (k > n)
				k = n;
			memcpy(c->hdr + c->hdr_got, p, k);
			c->hdr_got += k;
			c->bytes += k;
			p += k;
			n -= k;
			if (c->hdr_got < AUTH_REC_HDR)
				break;
			if (!rec_hdr_ok(c->hdr, &len)) {
				c->bad = !c->records && !memcmp(c->hdr, "VMDW", 4) ?
					 AUTH_NOT_TLS_CLEAR : AUTH_NOT_TLS_OTHER;
				break;
			}
			c->records++;
			c->body_left = len;
		} else {
			size_t k = n < c->body_left ? n : c->body_left;

			c->body_left -= k;
			c->bytes += k;
			p += k;
			n -= k;
		}
		if (c->hdr_got == AUTH_REC_HDR && !c->body_left)
			c->hdr_got = 0;
	}
	return !c->bad;
}

void auth_rec_describe(const struct auth_rec_cursor *c, char *buf, size_t len)
{
	const uint8_t *h = c->hdr;

	if (c->bad == AUTH_NOT_TLS_CLEAR)
		snprintf(buf, len, "the peer speaks the migration protocol in the clear: it has no key (runs with --insecure)");
	else if (c->bad)
		snprintf(buf, len, "not TLS: record %llu starts %02x %02x %02x %02x %02x",
			 (unsigned long long)c->records, h[0], h[1], h[2], h[3], h[4]);
	else
		snprintf(buf, len, "TLS");
}

/* Credentials. */

static int psk_server_key(gnutls_session_t g, const gnutls_datum_t *user, gnutls_datum_t *key)
{
	struct auth_session *s = gnutls_session_get_ptr(g);
	const char *id = s->c->key.id;
	size_t i;

	/* Keep what the peer presented, printable, for the log. */
	for (i = 0; i < user->size && i < sizeof(s->peer_id) - 1; i++)
		s->peer_id[i] = user->data[i] >= 0x20 && user->data[i] < 0x7f ? user->data[i] : '?';
	s->peer_id[i] = '\0';
	if (user->size != strlen(id) || memcmp(user->data, id, user->size))
		return -1;
	key->data = gnutls_malloc(AUTH_KEY_BYTES);
	if (!key->data)
		return -1;
	memcpy(key->data, s->c->key.key, AUTH_KEY_BYTES);
	key->size = AUTH_KEY_BYTES;
	return 0;
}

int auth_creds_new(const struct auth_key *k, struct auth_creds **out, char *why, size_t whylen)
{
	struct auth_creds *c = calloc(1, sizeof(*c));
	gnutls_datum_t key = { (unsigned char *)k->key, AUTH_KEY_BYTES };
	const char *where = NULL;
	int ret;

	if (!c)
		return -ENOMEM;
	c->key = *k;
	ret = gnutls_psk_allocate_client_credentials(&c->cli);
	if (ret >= 0)
		ret = gnutls_psk_set_client_credentials(c->cli, k->id, &key, GNUTLS_PSK_KEY_RAW);
	if (ret >= 0)
		ret = gnutls_psk_allocate_server_credentials(&c->srv);
	if (ret >= 0)
		gnutls_psk_set_server_credentials_function2(c->srv, psk_server_key);
	if (ret >= 0)
		ret = gnutls_priority_init(&c->prio, AUTH_PRIORITY, &where);
	if (ret < 0) {
		if (why)
			snprintf(why, whylen, "TLS credentials: %s%s%s", gnutls_strerror(ret),
				 where ? " at " : "", where ? where : "");
		auth_creds_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}

void auth_creds_free(struct auth_creds *c)
{
	if (!c)
		return;
	if (c->cli)
		gnutls_psk_free_client_credentials(c->cli);
	if (c->srv)
		gnutls_psk_free_server_credentials(c->srv);
	if (c->prio)
		gnutls_priority_deinit(c->prio);
	auth_key_wipe(&c->key);
	free(c);
}

const char *auth_creds_key_id(const struct auth_creds *c)
{
	return c->key.id;
}

/* The stream. */

static ssize_t pull_record(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct auth_session *s = p;
	ssize_t n;

	if (s->rx.bad) {
		errno = EPROTO;
	} else {
		n = s->io.pull(s->io.ctx, buf, auth_rec_limit(&s->rx, len));
		if (n == 0)
			s->eof = true;
		if (n > 0 && s->rec && !s->done && s->nrec + n <= AUTH_REC_KEEP) {
			memcpy(s->rec + s->nrec, buf, n);
			s->nrec += n;
		}
		if (n >= 0 && auth_rec_advance(&s->rx, buf, n))
			return n;
		if (n >= 0)
			errno = EPROTO;
	}
	/*
	 * GnuTLS reads errno itself (its default errno function): after the
	 * handshake a sending and a receiving thread share the session, and
	 * errno is each thread's own.  Only the handshake's failure is kept.
	 */
	if (!s->done && errno != EAGAIN && errno != EINTR)
		s->io_errno = errno;
	return -1;
}

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct auth_session *s = p;
	ssize_t n = s->io.push(s->io.ctx, buf, len);

	if (n < 0 && !s->done && errno != EAGAIN && errno != EINTR)
		s->io_errno = errno;
	return n;
}

int auth_session_new(const struct auth_creds *c, enum auth_role role, const struct auth_io *io,
		     struct auth_session **out)
{
	struct auth_session *s = calloc(1, sizeof(*s));
	unsigned int flags = (role == AUTH_SERVER ? GNUTLS_SERVER : GNUTLS_CLIENT) |
			     GNUTLS_NO_TICKETS | GNUTLS_NONBLOCK;
	int ret;

	if (!s)
		return -ENOMEM;
	s->c = c;
	s->role = role;
	s->io = *io;
	ret = gnutls_init(&s->g, flags);
	if (ret < 0) {
		free(s);
		return -ENOMEM;
	}
	ret = gnutls_priority_set(s->g, c->prio);
	if (ret >= 0)
		ret = gnutls_credentials_set(s->g, GNUTLS_CRD_PSK,
					     role == AUTH_SERVER ? (void *)c->srv : (void *)c->cli);
	if (ret < 0) {
		auth_session_free(s);
		return -EINVAL;
	}
	if (record_on())
		s->rec = malloc(AUTH_REC_KEEP);
	gnutls_session_set_ptr(s->g, s);
	gnutls_transport_set_ptr(s->g, s);
	gnutls_transport_set_pull_function(s->g, pull_record);
	gnutls_transport_set_push_function(s->g, push);
	*out = s;
	return 0;
}

/* The handshake as this side read it: a seed for the fuzzer. */
static void keep_handshake(struct auth_session *s)
{
	if (s->rec && s->nrec)
		record_input(s->role == AUTH_SERVER ? RECORD_TLS_SERVER : RECORD_TLS_CLIENT,
			     s->rec, s->nrec);
	free(s->rec);
	s->rec = NULL;
}

void auth_session_free(struct auth_session *s)
{
	if (!s)
		return;
	keep_handshake(s);
	gnutls_deinit(s->g);
	free(s);
}

void auth_session_set_io(struct auth_session *s, const struct auth_io *io)
{
	s->io = *io;
}

const char *auth_session_error(const struct auth_session *s)
{
	return s->err;
}

int auth_session_io_errno(const struct auth_session *s)
{
	return s->io_errno;
}

const char *auth_session_desc(const struct auth_session *s)
{
	return s->desc;
}

const char *auth_session_peer_id(const struct auth_session *s)
{
	return s->role == AUTH_SERVER ? s->peer_id : s->c->key.id;
}

static int fail(struct auth_session *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct auth_session *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return err;
}

/* Why a handshake failed, in words; the errno the caller gets. */
static int handshake_failed(struct auth_session *s, int r)
{
	char text[160];
	const char *alert;

	if (s->rx.bad) {
		auth_rec_describe(&s->rx, text, sizeof(text));
		return fail(s, -EPROTO, "%s", text);
	}
	if (s->io_errno && s->io_errno != EPROTO)
		return fail(s, -s->io_errno, "%s", strerror(s->io_errno));
	if (s->eof || r == GNUTLS_E_PREMATURE_TERMINATION)
		return fail(s, -ECONNRESET, "the peer closed the connection in the handshake%s",
			    s->role == AUTH_CLIENT && !s->rx.records ?
			    " (a destination that requires a key, or one without a key, closes it)" : "");
	if (s->role == AUTH_SERVER && s->peer_id[0] && strcmp(s->peer_id, s->c->key.id))
		return fail(s, -EACCES, "the peer holds another key (its key id %s, ours %s)",
			    s->peer_id, s->c->key.id);
	if (s->role == AUTH_SERVER && !s->peer_id[0] &&
	    (r == GNUTLS_E_INSUFFICIENT_CREDENTIALS || r == GNUTLS_E_NO_CIPHER_SUITES ||
	     r == GNUTLS_E_UNKNOWN_CIPHER_SUITE || r == GNUTLS_E_NO_COMMON_KEY_SHARE))
		return fail(s, -EACCES, "the peer offered no pre-shared key (%s)", gnutls_strerror(r));
	if (r == GNUTLS_E_DECRYPTION_FAILED)
		return fail(s, -EACCES, "a handshake record failed to decrypt: the peer does not hold our key, or replays a recorded handshake");
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		alert = gnutls_alert_get_name(gnutls_alert_get(s->g));
		return fail(s, -EACCES, "the peer refused the handshake (alert: %s)%s",
			    alert ? alert : "unknown",
			    s->role == AUTH_CLIENT ? ": it does not know our key" : "");
	}
	return fail(s, -EPROTO, "TLS handshake: %s", gnutls_strerror(r));
}

int auth_handshake(struct auth_session *s, bool *want_write)
{
	gnutls_cipher_algorithm_t cipher;
	const char *group;
	int r;

	if (s->done)
		return 0;
	if (s->err[0])
		return -EPROTO;
	do
		r = gnutls_handshake(s->g);
	while (r < 0 && r != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(r));
	if (r == GNUTLS_E_AGAIN) {
		if (want_write)
			*want_write = gnutls_record_get_direction(s->g) == 1;
		return -EAGAIN;
	}
	if (r < 0) {
		r = handshake_failed(s, r);
		/* Tell the peer, where the stream still takes it. */
		if (r != -EPROTO || !s->rx.bad)
			gnutls_alert_send_appropriate(s->g, r);
		return r;
	}
	/* What the priorities allow, checked again: the keys go to the kernel. */
	cipher = gnutls_cipher_get(s->g);
	if (gnutls_protocol_get_version(s->g) != GNUTLS_TLS1_3 ||
	    gnutls_kx_get(s->g) != GNUTLS_KX_ECDHE_PSK ||
	    (cipher != GNUTLS_CIPHER_AES_128_GCM && cipher != GNUTLS_CIPHER_AES_256_GCM &&
	     cipher != GNUTLS_CIPHER_CHACHA20_POLY1305))
		return fail(s, -EPROTO, "negotiated something else than TLS 1.3 ECDHE-PSK with an AEAD");
	group = gnutls_group_get_name(gnutls_group_get(s->g));
	snprintf(s->desc, sizeof(s->desc), "TLS 1.3, key %s with ECDHE (%s), %s", s->c->key.id,
		 group ? group : "?", gnutls_cipher_get_name(cipher));
	s->done = true;
	keep_handshake(s);
	return 0;
}

/* The kernel's TLS. */

/* One direction's keys in the kernel's layout (TLS 1.3: salt, then iv). */
static int ktls_set(struct auth_session *s, int fd, bool rx)
{
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} ci;
	gnutls_datum_t iv, key;
	unsigned char seq[8];
	socklen_t len;
	int ret;

	ret = gnutls_record_get_state(s->g, rx, NULL, &iv, &key, seq);
	if (ret < 0)
		return -EINVAL;
	memset(&ci, 0, sizeof(ci));
	switch (gnutls_cipher_get(s->g)) {
	case GNUTLS_CIPHER_AES_128_GCM:
		if (key.size != sizeof(ci.g128.key) ||
		    iv.size != sizeof(ci.g128.salt) + sizeof(ci.g128.iv))
			return -EINVAL;
		ci.g128.info.version = TLS_1_3_VERSION;
		ci.g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci.g128.salt, iv.data, sizeof(ci.g128.salt));
		memcpy(ci.g128.iv, iv.data + sizeof(ci.g128.salt), sizeof(ci.g128.iv));
		memcpy(ci.g128.key, key.data, key.size);
		memcpy(ci.g128.rec_seq, seq, sizeof(ci.g128.rec_seq));
		len = sizeof(ci.g128);
		break;
	case GNUTLS_CIPHER_AES_256_GCM:
		if (key.size != sizeof(ci.g256.key) ||
		    iv.size != sizeof(ci.g256.salt) + sizeof(ci.g256.iv))
			return -EINVAL;
		ci.g256.info.version = TLS_1_3_VERSION;
		ci.g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci.g256.salt, iv.data, sizeof(ci.g256.salt));
		memcpy(ci.g256.iv, iv.data + sizeof(ci.g256.salt), sizeof(ci.g256.iv));
		memcpy(ci.g256.key, key.data, key.size);
		memcpy(ci.g256.rec_seq, seq, sizeof(ci.g256.rec_seq));
		len = sizeof(ci.g256);
		break;
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		if (key.size != sizeof(ci.cc.key) || iv.size != sizeof(ci.cc.iv))
			return -EINVAL;
		ci.cc.info.version = TLS_1_3_VERSION;
		ci.cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci.cc.iv, iv.data, sizeof(ci.cc.iv));
		memcpy(ci.cc.key, key.data, key.size);
		memcpy(ci.cc.rec_seq, seq, sizeof(ci.cc.rec_seq));
		len = sizeof(ci.cc);
		break;
	default:
		return -EINVAL;
	}
	ret = setsockopt(fd, SOL_TLS, rx ? TLS_RX : TLS_TX, &ci, len) ? -errno : 0;
	explicit_bzero(&ci, sizeof(ci));
	return ret;
}

int auth_session_ktls(struct auth_session *s, int fd, char *why, size_t whylen)
{
	int one = 1, ret;

	if (!s->done) {
		snprintf(why, whylen, "kTLS before the handshake ended");
		return -EINVAL;
	}
	if (gnutls_record_check_pending(s->g) || s->rx.hdr_got) {
		/* Bytes the kernel would never see: cannot happen, record by record. */
		snprintf(why, whylen, "kTLS: the session holds received bytes");
		return -EPROTO;
	}
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		ret = -errno;
		snprintf(why, whylen, "kTLS: TCP_ULP tls: %s%s", strerror(errno),
			 errno == ENOENT ? " (no tls module in this kernel)" : "");
		return ret;
	}
	ret = ktls_set(s, fd, false);
	if (!ret)
		ret = ktls_set(s, fd, true);
	if (ret) {
		snprintf(why, whylen, "kTLS: setting the record keys: %s", strerror(-ret));
		/* Whatever happened to the socket, -ENOENT would be a lie. */
		return ret == -ENOENT ? -EIO : ret;
	}
	/*
	 * Our peer never pads records (neither GnuTLS nor the kernel does):
	 * Linux 6.0+ may then decrypt straight into the reader's buffer.
	 */
	setsockopt(fd, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &one, sizeof(one));
	return 0;
}

/* Records in userspace. */

ssize_t auth_send(struct auth_session *s, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = gnutls_record_send(s->g, buf, len);
	while (n == GNUTLS_E_INTERRUPTED);
	if (n >= 0)
		return n;
	if (n == GNUTLS_E_AGAIN)
		return -EAGAIN;
	if (n == GNUTLS_E_PUSH_ERROR)
		return -EPIPE;
	return -EPROTO;
}

ssize_t auth_recv(struct auth_session *s, void *buf, size_t len)
{
	ssize_t n;

	do
		n = gnutls_record_recv(s->g, buf, len);
	while (n == GNUTLS_E_INTERRUPTED);
	if (n >= 0)
		return n;
	switch (n) {
	case GNUTLS_E_AGAIN:
		return -EAGAIN;
	case GNUTLS_E_PREMATURE_TERMINATION:
		/* Our peers close without close_notify: a close is a close. */
		return 0;
	case GNUTLS_E_PULL_ERROR:
		return -EPIPE;
	case GNUTLS_E_DECRYPTION_FAILED:
		return -EBADMSG;
	default:
		return -EPROTO;
	}
}

size_t auth_pending(struct auth_session *s)
{
	return gnutls_record_check_pending(s->g);
}
