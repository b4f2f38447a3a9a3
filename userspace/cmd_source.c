// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty source: run a VM and migrate it to a destination agent, after a
 * delay or when another command asks (vmdirty migrate, control socket).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "control.h"
#include "migrate/migrate.h"
#include "report.h"
#include "vmhost.h"

enum {
	OPT_TO = 0x2000, OPT_AFTER, OPT_CONTROL, OPT_CHANNELS, OPT_CODEC, OPT_NO_ADAPTIVE,
	OPT_TRANSPORT, OPT_ZEROCOPY, OPT_ZC_ALWAYS, OPT_BANDWIDTH, OPT_DOWNTIME, OPT_MAX_ROUNDS, OPT_MAX_TIME,
	OPT_NO_AUTOCONV, OPT_NO_VERIFY, OPT_TIMEOUT, OPT_STAY, OPT_JSON, OPT_QUIET, OPT_HELP,
};

static const struct option source_options[] = {
	{ "to", required_argument, NULL, OPT_TO },
	{ "after", required_argument, NULL, OPT_AFTER },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "channels", required_argument, NULL, OPT_CHANNELS },
	{ "codec", required_argument, NULL, OPT_CODEC },
	{ "no-adaptive", no_argument, NULL, OPT_NO_ADAPTIVE },
	{ "transport", required_argument, NULL, OPT_TRANSPORT },
	{ "zerocopy", no_argument, NULL, OPT_ZEROCOPY },
	{ "zerocopy-always", no_argument, NULL, OPT_ZC_ALWAYS },
	{ "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
	{ "downtime", required_argument, NULL, OPT_DOWNTIME },
	{ "max-rounds", required_argument, NULL, OPT_MAX_ROUNDS },
	{ "max-time", required_argument, NULL, OPT_MAX_TIME },
	{ "no-auto-converge", no_argument, NULL, OPT_NO_AUTOCONV },
	{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "stay", required_argument, NULL, OPT_STAY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmdirty source --to HOST:PORT [--to HOST:PORT...] (--after SECONDS | --control PATH) [options]\n"
		"\nRun a VM with a built-in workload and live-migrate it to `vmdirty dest`.\n"
		"\nWhen:\n"
		"  --after SECONDS      migrate after this long (fractions allowed)\n"
		"  --control PATH       wait for `vmdirty migrate PATH` (also status, cancel, quit)\n"
		"\nThe VM:\n" VMHOST_USAGE
		"\nThe migration:\n"
		"  --channels N         parallel TCP channels, round robin over the --to addresses (default 1)\n"
		"  --codec C[:LEVEL]    raw, lz4 or zstd, e.g. zstd:-1 (default raw)\n"
		"  --no-adaptive        compress every batch, even where it does not pay (by\n"
		"                       default a batch goes raw when the link, as --bandwidth\n"
		"                       gives it or TCP measures it, outruns the compressor)\n"
		"  --transport T        plain, zerocopy (MSG_ZEROCOPY) or uring (io_uring send_zc) (default plain)\n"
		"  --zerocopy           the same as --transport zerocopy\n"
		"  --zerocopy-always    keep asking for zero copy on a channel whose first\n"
		"                       sends the kernel all copied (by default it stops)\n"
		"  --bandwidth MiB/s    limit, like virsh migrate-setspeed (default: none)\n"
		"  --downtime MS        expected downtime that ends pre-copy (default %d, as QEMU)\n"
		"  --max-rounds N       cancel after N rounds without converging (default %d)\n"
		"  --max-time SECONDS   cancel after this long without converging (default %d)\n"
		"  --no-auto-converge   never throttle the vCPUs\n"
		"  --no-verify          skip the RAM hash check at the switch (needs --transport plain)\n"
		"  --timeout MS         network timeout (default %d)\n"
		"  --stay SECONDS       after a failed migration (--after), keep the VM running this long (default 1)\n"
		"\nOutput:\n"
		"  --json               the final report as JSON on stdout (progress goes to stderr)\n"
		"  --quiet              no per-round progress\n"
		"\nExit status: 0 migrated, 1 not migrated (the VM kept running here), 2 usage.\n",
		CONVERGE_DOWNTIME_MS, CONVERGE_MAX_ROUNDS, CONVERGE_MAX_SECONDS,
		TRANSPORT_DEFAULT_TIMEOUT_MS);
}

static int parse_codec(const char *arg, struct migrate_source_opts *m)
{
	char name[16];
	const char *colon = strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	double level = 0;

	if (n >= sizeof(name))
		goto bad;
	memcpy(name, arg, n);
	name[n] = 0;
	if (!strcmp(name, "raw"))
		m->codec = WIRE_CODEC_RAW;
	else if (!strcmp(name, "lz4"))
		m->codec = WIRE_CODEC_LZ4;
	else if (!strcmp(name, "zstd"))
		m->codec = WIRE_CODEC_ZSTD;
	else
		goto bad;
	if (colon) {
		if (m->codec == WIRE_CODEC_RAW ||
		    cli_num("codec level", colon + 1, m->codec == WIRE_CODEC_ZSTD ? -100 : 1,
			      m->codec == WIRE_CODEC_ZSTD ? 22 : 65537, &level))
			goto bad;
		m->level = (int)level;
	}
	return 0;
bad:
	fprintf(stderr, "vmdirty: --codec: '%s': raw, lz4[:ACCEL] or zstd[:LEVEL]\n", arg);
	return -1;
}

struct source_cmd {
	struct vmhost h;
	struct migrate_source_opts m;
	struct migrate_report rep;
	volatile int cancel;
	volatile int migrating;
	bool migrated;
	bool json;
};

static void status_cb(void *ctx, FILE *f)
{
	struct source_cmd *s = ctx;

	fprintf(f, "{\"state\":\"%s\",\"ops\":%" PRIu64 ",\"backend\":\"%s\"}\n",
		s->migrated ? "migrated" : s->migrating ? "migrating" : "running",
		vmhost_ops(&s->h), track_backend_name(s->h.backend));
}

static void cancel_cb(void *ctx)
{
	struct source_cmd *s = ctx;

	s->cancel = 1;
}

/* The guest's progress over ms: proof that it runs here. */
static uint64_t ops_during(struct source_cmd *s, unsigned int ms)
{
	uint64_t before = vmhost_ops(&s->h);

	usleep(ms * 1000);
	return vmhost_ops(&s->h) - before;
}

static int migrate_once(struct source_cmd *s, FILE *out)
{
	int ret;

	s->cancel = 0;
	s->migrating = 1;
	ret = migrate_source(s->h.vm, s->h.runner, s->h.trk, &s->m, &s->rep);
	s->migrating = 0;
	snprintf(s->rep.backend_why, sizeof(s->rep.backend_why), "%s", s->h.why);
	if (!ret)
		s->migrated = true;
	if (s->json)
		report_json(out, &s->rep);
	else
		report_text(out, &s->rep);
	return ret;
}

int cmd_source(int argc, char **argv)
{
	struct source_cmd s = { .json = false };
	struct vmhost_opts vo;
	struct option opts[64];
	struct control *ctl = NULL;
	const char *control = NULL;
	double after = -1, stay = 1, v;
	bool quiet = false, no_verify = false;
	unsigned int n = 0;
	int c, ret;

	vmhost_opts_init(&vo);
	migrate_source_opts_init(&s.m);
	for (const struct option *o = vmhost_long_options; o->name; o++)
		opts[n++] = *o;
	for (size_t i = 0; i < sizeof(source_options) / sizeof(source_options[0]); i++)
		opts[n++] = source_options[i];
	opts[n] = (struct option){ 0 };

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int r = vmhost_parse_opt(&vo, c, optarg);

		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_TO:
			if (s.m.nr_to == MIGRATE_MAX_DESTS) {
				fprintf(stderr, "vmdirty: at most %d --to addresses\n", MIGRATE_MAX_DESTS);
				return 2;
			}
			s.m.to[s.m.nr_to++] = optarg;
			break;
		case OPT_AFTER:
			if (cli_num("after", optarg, 0, 86400, &after))
				return 2;
			break;
		case OPT_CONTROL:
			control = optarg;
			break;
		case OPT_CHANNELS:
			if (cli_num("channels", optarg, 1, MIGRATE_MAX_CHANNELS, &v))
				return 2;
			s.m.channels = v;
			break;
		case OPT_CODEC:
			if (parse_codec(optarg, &s.m))
				return 2;
			break;
		case OPT_NO_ADAPTIVE:
			s.m.adaptive = false;
			break;
		case OPT_TRANSPORT:
			if (transport_backend_parse(optarg, &s.m.net.backend)) {
				fprintf(stderr, "vmdirty: --transport: '%s': plain, zerocopy or uring\n",
					optarg);
				return 2;
			}
			break;
		case OPT_ZEROCOPY:
			s.m.net.backend = TRANSPORT_ZEROCOPY;
			break;
		case OPT_ZC_ALWAYS:
			s.m.net.flags |= TRANSPORT_OPT_ZC_ALWAYS;
			break;
		case OPT_BANDWIDTH:
			if (cli_num("bandwidth", optarg, 0, 1e6, &v))
				return 2;
			s.m.bandwidth = v * 1024 * 1024;
			break;
		case OPT_DOWNTIME:
			if (cli_num("downtime", optarg, 1, 3600000, &v))
				return 2;
			s.m.conv.downtime_ns = v * 1e6;
			break;
		case OPT_MAX_ROUNDS:
			if (cli_num("max-rounds", optarg, 1, 100000, &v))
				return 2;
			s.m.conv.max_rounds = v;
			break;
		case OPT_MAX_TIME:
			if (cli_num("max-time", optarg, 0.001, 86400, &v))
				return 2;
			s.m.conv.max_ns = v * 1e9;
			break;
		case OPT_NO_AUTOCONV:
			s.m.conv.auto_converge = false;
			break;
		case OPT_NO_VERIFY:
			no_verify = true;
			break;
		case OPT_TIMEOUT:
			if (cli_num("timeout", optarg, 100, 3600000, &v))
				return 2;
			s.m.net.timeout_ms = v;
			break;
		case OPT_STAY:
			if (cli_num("stay", optarg, 0, 86400, &stay))
				return 2;
			break;
		case OPT_JSON:
			s.json = true;
			break;
		case OPT_QUIET:
			quiet = true;
			break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vmdirty source: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!s.m.nr_to) {
		fprintf(stderr, "vmdirty source: --to HOST:PORT is required (see --help)\n");
		return 2;
	}
	if ((after < 0) == !control) {
		fprintf(stderr, "vmdirty source: give exactly one of --after SECONDS and --control PATH\n");
		return 2;
	}
	if ((s.m.net.flags & TRANSPORT_OPT_ZC_ALWAYS) && s.m.net.backend == TRANSPORT_PLAIN) {
		fprintf(stderr, "vmdirty source: --zerocopy-always needs --transport zerocopy or uring\n");
		return 2;
	}
	if (no_verify && s.m.net.backend != TRANSPORT_PLAIN) {
		fprintf(stderr, "vmdirty source: --no-verify needs --transport plain: pages sent by reference are checked by the RAM hash\n");
		return 2;
	}
	s.m.verify = !no_verify;
	if (vmhost_check(&vo))
		return 2;
	if (!quiet) {
		s.m.progress = report_progress;
		s.m.progress_ctx = s.json ? stderr : stdout;
	}
	s.m.cancel = &s.cancel;

	ret = vmhost_start(&vo, &s.h);
	if (ret)
		return 1;
	fprintf(s.json ? stderr : stdout, "vmdirty: VM of %" PRIu64 " MiB, %u vCPUs running; dirty tracking: %s\n",
		vo.mem_mib, vo.vcpus, s.h.why);

	if (control) {
		struct control_ops ops = { .status = status_cb, .cancel = cancel_cb, .ctx = &s };

		ret = control_listen(control, &ops, &ctl);
		if (ret) {
			fprintf(stderr, "vmdirty: control socket %s: %s\n", control, strerror(-ret));
			vmhost_free(&s.h);
			return 1;
		}
		ret = 1;
		for (;;) {
			enum control_cmd cmd = control_wait(ctl, 0);
			char *text = NULL;
			size_t len = 0;
			FILE *f;

			if (cmd == CONTROL_QUIT) {
				control_finish(ctl, "ok\n");
				break;
			}
			f = open_memstream(&text, &len);
			if (!f) {
				control_finish(ctl, "error: out of memory\n");
				continue;
			}
			/* The reply is the report, as JSON. */
			s.json = true;
			ret = migrate_once(&s, f);
			fclose(f);
			control_finish(ctl, text ? text : "error\n");
			free(text);
			migrate_report_free(&s.rep);
			if (!ret)
				break;
		}
		control_close(ctl);
	} else {
		usleep((useconds_t)(after * 1e6));
		ret = migrate_once(&s, stdout);
		if (ret) {
			uint64_t ops = ops_during(&s, stay * 1000);

			fprintf(s.json ? stderr : stdout,
				"vmdirty: the VM keeps running here: %" PRIu64 " guest operations in the last %.1f s\n",
				ops, stay);
		}
		migrate_report_free(&s.rep);
	}
	vmhost_free(&s.h);
	return ret ? 1 : 0;
}
