// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's command-line parser (guest_cmdline.h).  No library calls: it
 * runs in the payload before anything else is set up.
 */
#include "vmm/guest_abi.h"
#include "vmm/guest_cmdline.h"

enum { KEY_WORKLOAD, KEY_RATE, KEY_SEED, KEY_HOT, KEY_VCPUS, KEY_TSC_KHZ, KEY_DEBUGCON, NR_KEYS };

static const struct {
	const char *name;
	uint64_t min, max;
} keys[NR_KEYS] = {
	[KEY_WORKLOAD] = { "workload", 0, 0 },
	[KEY_RATE] = { "rate", 0, 1000000 },		/* MB/s, as vmdirty --rate */
	[KEY_SEED] = { "seed", 0, ~0ULL },
	[KEY_HOT] = { "hot", 1, 0xffffffffULL },
	[KEY_VCPUS] = { "vcpus", 1, GUEST_MAX_VCPUS },
	[KEY_TSC_KHZ] = { "tsc_khz", 1000, 100000000 },	/* 1 MHz .. 100 GHz */
	[KEY_DEBUGCON] = { "debugcon", 0, 1 },
};

static const char *const workloads[] = {
	[GUEST_WL_IDLE] = "idle",
	[GUEST_WL_SEQ] = "seq",
	[GUEST_WL_RANDOM] = "random",
	[GUEST_WL_HOTSET] = "hotset",
};

const char *guest_workload_name(uint32_t workload)
{
	return workload <= GUEST_WL_MAX ? workloads[workload] : 0;
}

void guest_config_init(struct guest_config *c)
{
	c->workload = GUEST_WL_RANDOM;
	c->vcpus = 1;
	c->rate = 0;
	c->hot = 256;
	c->seed = 1;
	c->tsc_khz = 0;
	c->debugcon = 1;
}

unsigned int guest_put_u64(char *dst, uint64_t v)
{
	char tmp[20];
	unsigned int n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

/* An error message under construction, always NUL-terminated. */
struct msg {
	char *p;
	unsigned int len, cap;
};

static void msg_mem(struct msg *m, const char *s, unsigned int n)
{
	while (n-- && *s && m->len + 1 < m->cap)
		m->p[m->len++] = *s++;
	if (m->cap)
		m->p[m->len] = 0;
}

static void msg_str(struct msg *m, const char *s)
{
	msg_mem(m, s, ~0U);
}

/* A word of the command line, shortened so that the message stays short. */
static void msg_word(struct msg *m, const char *s, unsigned int n)
{
	msg_str(m, "'");
	msg_mem(m, s, n < 32 ? n : 32);
	msg_str(m, n > 32 ? "...'" : "'");
}

static void msg_u64(struct msg *m, uint64_t v)
{
	char b[21];

	b[guest_put_u64(b, v)] = 0;
	msg_str(m, b);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int same(const char *a, unsigned int n, const char *b)
{
	while (n && *b && *a == *b) {
		a++;
		b++;
		n--;
	}
	return !n && !*b;
}

/* Decimal, or hexadecimal after 0x; the whole of s[0..n), no overflow. */
static int parse_u64(const char *s, unsigned int n, uint64_t *out)
{
	uint64_t v = 0, base = 10, d;
	unsigned int i = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n)
		return -1;
	for (; i < n; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			d = (uint64_t)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (uint64_t)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (uint64_t)(c - 'A' + 10);
		else
			return -1;
		if (v > (~0ULL - d) / base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* Decimal digits only, at least one: s[0..n) as a number. */
static int parse_digits(const char *s, unsigned int n, uint64_t *out)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	return n ? parse_u64(s, n, out) : -1;
}

/* MB/s with up to three decimals ("12", "0.5", "1.125"), in thousandths. */
static int parse_milli(const char *s, unsigned int n, uint64_t *out)
{
	unsigned int dot = 0, frac;
	uint64_t ip, fp = 0;

	while (dot < n && s[dot] != '.')
		dot++;
	if (parse_digits(s, dot, &ip) || ip > ~0ULL / 1000)
		return -1;
	if (dot < n) {
		frac = n - dot - 1;
		if (frac > 3 || parse_digits(s + dot + 1, frac, &fp))
			return -1;
		while (frac++ < 3)
			fp *= 10;
	}
	*out = ip * 1000 + fp;
	return 0;
}

static int set_key(struct guest_config *c, unsigned int k, const char *val, unsigned int n,
		   struct msg *m)
{
	uint64_t v = 0;
	unsigned int i;
	int bad;

	if (k == KEY_WORKLOAD) {
		for (i = 0; i <= GUEST_WL_MAX; i++)
			if (same(val, n, workloads[i])) {
				c->workload = i;
				return 0;
			}
		msg_str(m, "workload=");
		msg_word(m, val, n);
		msg_str(m, ": idle, seq, random or hotset");
		return -1;
	}
	if (k == KEY_RATE)
		bad = parse_milli(val, n, &v) || v > keys[k].max * 1000;
	else
		bad = parse_u64(val, n, &v) || v < keys[k].min || v > keys[k].max;
	if (bad) {
		msg_str(m, keys[k].name);
		msg_str(m, "=");
		msg_word(m, val, n);
		msg_str(m, ": not a number in ");
		msg_u64(m, keys[k].min);
		msg_str(m, "..");
		msg_u64(m, keys[k].max);
		if (k == KEY_RATE)
			msg_str(m, ", at most 3 decimals");
		return -1;
	}
	switch (k) {
	case KEY_RATE:
		c->rate = v * 1000;	/* thousandths of MB/s: bytes/s */
		break;
	case KEY_SEED:
		c->seed = v;
		break;
	case KEY_HOT:
		c->hot = v;
		break;
	case KEY_VCPUS:
		c->vcpus = (uint32_t)v;
		break;
	case KEY_TSC_KHZ:
		c->tsc_khz = v;
		break;
	case KEY_DEBUGCON:
		c->debugcon = (uint32_t)v;
		break;
	}
	return 0;
}

int guest_cmdline_parse(const char *s, struct guest_config *c, char *err, unsigned int errlen)
{
	struct msg m = { .p = err, .cap = errlen };
	unsigned int seen = 0, words = 0, len = 0;

	msg_str(&m, "");
	while (s[len])
		if (++len >= GUEST_CMDLINE_MAX) {
			msg_str(&m, "command line longer than ");
			msg_u64(&m, GUEST_CMDLINE_MAX - 1);
			msg_str(&m, " bytes");
			return GUEST_EINVAL;
		}
	for (;;) {
		const char *w, *eq = 0;
		unsigned int n = 0, k;

		while (is_space(*s))
			s++;
		if (!*s)
			return 0;
		w = s;
		for (; *s && !is_space(*s); s++, n++)
			if (*s == '=' && !eq)
				eq = s;
		if (!eq) {
			if (!words++)
				continue;	/* the image's name */
			msg_word(&m, w, n);
			msg_str(&m, " is not key=value");
			return GUEST_EINVAL;
		}
		words++;
		for (k = 0; k < NR_KEYS; k++)
			if (same(w, (unsigned int)(eq - w), keys[k].name))
				break;
		if (k == NR_KEYS) {
			msg_str(&m, "unknown key ");
			msg_word(&m, w, (unsigned int)(eq - w));
			msg_str(&m, " (workload, rate, seed, hot, vcpus, tsc_khz, debugcon)");
			return GUEST_EINVAL;
		}
		if (seen & (1U << k)) {
			msg_str(&m, keys[k].name);
			msg_str(&m, "= given twice");
			return GUEST_EINVAL;
		}
		seen |= 1U << k;
		if (set_key(c, k, eq + 1, n - (unsigned int)(eq + 1 - w), &m))
			return GUEST_EINVAL;
	}
}
