// SPDX-License-Identifier: GPL-2.0
/*
 * Key files: generate, read, check (psk.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "auth/psk.h"

/* Domain separation: the id is a hash of the key, never the key's own use. */
#define AUTH_KEY_ID_LABEL	"vmdirty key id v1"

static int say(int err, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(int err, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

void auth_key_wipe(struct auth_key *k)
{
	explicit_bzero(k, sizeof(*k));
}

void auth_key_set_id(struct auth_key *k)
{
	uint8_t in[sizeof(AUTH_KEY_ID_LABEL) + AUTH_KEY_BYTES], h[32];

	memcpy(in, AUTH_KEY_ID_LABEL, sizeof(AUTH_KEY_ID_LABEL));
	memcpy(in + sizeof(AUTH_KEY_ID_LABEL), k->key, AUTH_KEY_BYTES);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, in, sizeof(in), h);
	snprintf(k->id, sizeof(k->id), "vmdirty-");
	for (int i = 0; i < 8; i++)
		snprintf(k->id + 8 + 2 * i, 3, "%02x", h[i]);
	explicit_bzero(in, sizeof(in));
}

int auth_key_random(struct auth_key *k)
{
	memset(k, 0, sizeof(*k));
	if (getrandom(k->key, AUTH_KEY_BYTES, 0) != AUTH_KEY_BYTES)
		return -errno ? -errno : -EIO;
	auth_key_set_id(k);
	return 0;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int auth_key_parse(const char *text, size_t len, struct auth_key *k, char *why, size_t whylen)
{
	gnutls_datum_t in, out = { NULL, 0 };
	bool zero = true;
	int ret;

	memset(k, 0, sizeof(*k));
	if (len == AUTH_KEY_B64_LEN + 1 && text[AUTH_KEY_B64_LEN] == '\n')
		len--;
	if (len != AUTH_KEY_B64_LEN)
		return say(-EINVAL, why, whylen,
			   "not a key: want one line of %d base64 characters (vmdirty genkey)",
			   AUTH_KEY_B64_LEN);
	/* 32 bytes: 42 characters, a 43rd holding 4 bits and 2 zero bits, then "=". */
	for (size_t i = 0; i < AUTH_KEY_B64_LEN - 1; i++)
		if (!b64_char(text[i]))
			return say(-EINVAL, why, whylen, "not a key: character %zu is not base64", i);
	if (text[AUTH_KEY_B64_LEN - 1] != '=')
		return say(-EINVAL, why, whylen, "not a key: it must end with '='");
	in.data = (unsigned char *)text;
	in.size = len;
	ret = gnutls_base64_decode2(&in, &out);
	if (ret < 0 || out.size != AUTH_KEY_BYTES) {
		if (out.data) {
			explicit_bzero(out.data, out.size);
			gnutls_free(out.data);
		}
		return say(-EINVAL, why, whylen, "not a key: it does not decode to %d bytes",
			   AUTH_KEY_BYTES);
	}
	memcpy(k->key, out.data, AUTH_KEY_BYTES);
	explicit_bzero(out.data, out.size);
	gnutls_free(out.data);
	/* Canonical form only: the unused low bits of the last character are 0. */
	if (!strchr("AEIMQUYcgkosw048", text[AUTH_KEY_B64_LEN - 2])) {
		auth_key_wipe(k);
		return say(-EINVAL, why, whylen, "not a key: not canonical base64");
	}
	for (int i = 0; i < AUTH_KEY_BYTES; i++)
		zero &= !k->key[i];
	if (zero)
		return say(-EINVAL, why, whylen, "not a key: all zero");
	auth_key_set_id(k);
	return 0;
}

int auth_key_check_stat(const struct stat *st, uid_t euid, char *why, size_t whylen)
{
	if (!S_ISREG(st->st_mode))
		return say(-EINVAL, why, whylen, "not a regular file");
	if (st->st_uid != euid && st->st_uid != 0)
		return say(-EPERM, why, whylen,
			   "owned by uid %u, not by us (uid %u) or root: someone else controls the key",
			   (unsigned int)st->st_uid, (unsigned int)euid);
	if (st->st_mode & 077)
		return say(-EPERM, why, whylen,
			   "permissions %04o are too open: a key must be readable by its owner only (chmod 600)",
			   (unsigned int)(st->st_mode & 07777));
	return 0;
}

int auth_key_load(const char *path, struct auth_key *k, char *why, size_t whylen)
{
	char text[AUTH_KEY_FILE_MAX + 2], msg[192];
	struct stat st;
	ssize_t n;
	int fd, ret;

	memset(k, 0, sizeof(*k));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return say(-errno, why, whylen, "key file %s: %s", path, strerror(errno));
	/* Check the file we opened, not whatever the name points to later. */
	if (fstat(fd, &st) < 0) {
		ret = say(-errno, why, whylen, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	ret = auth_key_check_stat(&st, geteuid(), msg, sizeof(msg));
	if (ret) {
		say(ret, why, whylen, "key file %s: %s", path, msg);
		goto out;
	}
	n = read(fd, text, sizeof(text));
	if (n < 0) {
		ret = say(-errno, why, whylen, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	ret = auth_key_parse(text, n, k, msg, sizeof(msg));
	if (ret)
		say(ret, why, whylen, "key file %s: %s", path, msg);
out:
	explicit_bzero(text, sizeof(text));
	close(fd);
	return ret;
}

int auth_key_generate(const char *path, char *why, size_t whylen)
{
	gnutls_datum_t in, out = { NULL, 0 };
	struct auth_key k;
	int fd, ret;

	ret = auth_key_random(&k);
	if (ret)
		return say(ret, why, whylen, "no random bytes: %s", strerror(-ret));
	in.data = k.key;
	in.size = AUTH_KEY_BYTES;
	if (gnutls_base64_encode2(&in, &out) < 0 || out.size != AUTH_KEY_B64_LEN) {
		ret = say(-ENOMEM, why, whylen, "cannot encode the key");
		goto out;
	}
	/* 0600 from the start: never a moment where others may read it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		ret = say(-errno, why, whylen, "%s: %s%s", path, strerror(errno),
			  errno == EEXIST ? " (a key is never overwritten)" : "");
		goto out;
	}
	if (write(fd, out.data, out.size) != (ssize_t)out.size || write(fd, "\n", 1) != 1 ||
	    fsync(fd) < 0) {
		ret = say(-EIO, why, whylen, "%s: cannot write the key", path);
		close(fd);
		unlink(path);
		goto out;
	}
	ret = close(fd) ? say(-errno, why, whylen, "%s: %s", path, strerror(errno)) : 0;
out:
	if (out.data) {
		explicit_bzero(out.data, out.size);
		gnutls_free(out.data);
	}
	auth_key_wipe(&k);
	return ret;
}
