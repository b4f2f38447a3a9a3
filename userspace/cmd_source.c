// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty source: run a VM and migrate it to a destination agent, after a
 * delay or when another command asks (vmdirty migrate, control socket).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_trust.h"
#include "cmd.h"
#include "control.h"
#include "migrate/migrate.h"
#include "report.h"
#include "vmhost.h"

enum {
	OPT_TO = 0x2000, OPT_AFTER, OPT_CONTROL, OPT_CHANNELS, OPT_CODEC, OPT_NO_ADAPTIVE,
	OPT_TRANSPORT, OPT_ZEROCOPY, OPT_ZC_ALWAYS, OPT_BANDWIDTH, OPT_DOWNTIME, OPT_MAX_ROUNDS, OPT_MAX_TIME,
	OPT_SHRINK_ROUNDS,
	OPT_NO_AUTOCONV, OPT_VERIFY_RAM, OPT_TIMEOUT, OPT_READY_TIMEOUT, OPT_COMMIT_TIMEOUT,
	OPT_RESOLVE_EVERY, OPT_STAY, OPT_NO_GUEST_CHECK, OPT_JSON, OPT_QUIET, OPT_HELP, OPT_NICE,
};

static const struct option source_options[] = {
	{ "to", required_argument, NULL, OPT_TO },
	{ "after", required_argument, NULL, OPT_AFTER },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "channels", required_argument, NULL, OPT_CHANNELS },
	{ "nice", required_argument, NULL, OPT_NICE },
	{ "codec", required_argument, NULL, OPT_CODEC },
	{ "no-adaptive", no_argument, NULL, OPT_NO_ADAPTIVE },
	{ "transport", required_argument, NULL, OPT_TRANSPORT },
	{ "zerocopy", no_argument, NULL, OPT_ZEROCOPY },
	{ "zerocopy-always", no_argument, NULL, OPT_ZC_ALWAYS },
	{ "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
	{ "downtime", required_argument, NULL, OPT_DOWNTIME },
	{ "max-rounds", required_argument, NULL, OPT_MAX_ROUNDS },
	{ "max-time", required_argument, NULL, OPT_MAX_TIME },
	{ "shrink-rounds", required_argument, NULL, OPT_SHRINK_ROUNDS },
	{ "no-auto-converge", no_argument, NULL, OPT_NO_AUTOCONV },
	{ "verify-ram", no_argument, NULL, OPT_VERIFY_RAM },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT },
	{ "commit-timeout", required_argument, NULL, OPT_COMMIT_TIMEOUT },
	{ "resolve-every", required_argument, NULL, OPT_RESOLVE_EVERY },
	{ "stay", required_argument, NULL, OPT_STAY },
	{ "no-guest-check", no_argument, NULL, OPT_NO_GUEST_CHECK },
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
		"  --control PATH       wait for `vmdirty migrate PATH` (also status, cancel,\n"
		"                       resolve, force-resume, give-up, quit)\n"
		"\nThe VM:\n" VMHOST_USAGE
		"\nThe migration:\n"
		"  --channels N         parallel TCP channels, round robin over the --to addresses (default 1)\n"
		"  --nice N             the channel senders' nice value, 0-19: they compress and send\n"
		"                       beside the running guest, and leave it the CPU first, until\n"
		"                       auto-converge's first step puts them back at 0 (default 0)\n"
		"  --codec C[:LEVEL]    raw, lz4 or zstd, e.g. zstd:-1 (default raw)\n"
		"  --no-adaptive        compress every batch, even where it does not pay (by\n"
		"                       default a batch goes raw when the link, as --bandwidth\n"
		"                       gives it or TCP measures it, outruns the compressor)\n"
		"  --transport T        plain, zerocopy (MSG_ZEROCOPY) or uring (io_uring send_zc) (default plain)\n"
		"  --zerocopy           the same as --transport zerocopy\n"
		"  --zerocopy-always    keep asking for zero copy on a channel whose first\n"
		"                       sends the kernel all copied (by default it stops)\n"
		"  --bandwidth MiB/s    limit pre-copy, like virsh migrate-setspeed; the final\n"
		"                       round, in the pause, goes without it, as QEMU's (default: none)\n"
		"  --downtime MS        expected downtime that ends pre-copy (default %d, as QEMU)\n"
		"  --max-rounds N       cancel after N rounds without converging (default %d)\n"
		"  --max-time SECONDS   cancel after this long without converging (default %d)\n"
		"  --shrink-rounds N    once the rest fits, up to N more rounds while each halves\n"
		"                       the pages left for the pause (default %d; 0: stop at once, as QEMU)\n"
		"  --no-auto-converge   never throttle the vCPUs\n"
		"  --verify-ram         also compare a hash of all guest RAM at the switch (a pass\n"
		"                       over RAM on both sides, inside the downtime; the page\n"
		"                       digest, always on, costs O(pages sent))\n"
		"  --timeout MS         network timeout, and how late a round's acknowledgement may be (default %d)\n"
		"  --ready-timeout MS   COMPLETE sent until READY, before resuming here (default 3 x --timeout)\n"
		"  --commit-timeout MS  COMMIT sent until STARTED, before asking again (default 3 x --timeout)\n"
		"  --resolve-every MS   in doubt, ask the destination this often (default %d)\n"
		"\nTrust:\n" TRUST_USAGE
		"\nAfterwards:\n"
		"  --stay SECONDS       after a failed migration (--after), keep the VM running this\n"
		"                       long (default: until SIGINT, SIGTERM)\n"
		"  --no-guest-check     skip the guest's memory check when the VM stops here\n"
		"\nOutput:\n"
		"  --json               the final report as JSON on stdout (progress goes to stderr)\n"
		"  --quiet              no per-round progress\n"
		"\nSIGINT or SIGTERM cancels a migration before its commit (the VM keeps running\n"
		"here), and otherwise stops the agent.  A committed migration is the destination's\n"
		"to decide: in doubt, the agent keeps the VM paused and asks it again.\n"
		"\nExit status: 0 migrated, 1 not migrated (the VM kept running here), 2 usage,\n"
		"3 in doubt (committed, no answer; the VM was paused here).\n",
		CONVERGE_DOWNTIME_MS, CONVERGE_MAX_ROUNDS, CONVERGE_MAX_SECONDS, CONVERGE_SHRINK_ROUNDS,
		TRANSPORT_DEFAULT_TIMEOUT_MS, MIGRATE_RESOLVE_EVERY_MS);
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
	struct migrate_ctl ctl;
	struct control *control;
	FILE *info;
	bool migrated, in_doubt, json;
	/* A signal asked the agent to stop (outside a migration). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool quit;
};

static void say(void *ctx, const char *line)
{
	struct source_cmd *s = ctx;

	fprintf(s->info, "vmdirty: %s\n", line);
	fflush(s->info);
}

static bool handle(void *ctx, enum control_cmd cmd, FILE *f)
{
	struct source_cmd *s = ctx;
	enum migrate_phase p = migrate_ctl_phase(&s->ctl);
	int ret;

	switch (cmd) {
	case CONTROL_STATUS:
		fprintf(f, "{\"state\":\"%s\",\"phase\":\"%s\",\"ops\":%" PRIu64 ",\"backend\":\"%s\"}\n",
			s->migrated ? "migrated" : s->in_doubt || p == MIGRATE_IN_DOUBT ? "in-doubt" :
			p != MIGRATE_IDLE && p != MIGRATE_DONE ? "migrating" : "running",
			migrate_phase_name(p), vmhost_ops(&s->h), track_backend_name(s->h.backend));
		return true;
	case CONTROL_CANCEL:
		ret = migrate_ctl_cancel(&s->ctl, "cancelled by the operator");
		if (!ret)
			fprintf(f, "ok: cancelling; the VM keeps running here\n");
		else if (ret == -EALREADY)
			fprintf(f, "error: too late: the source committed, the destination decides now (see resolve, force-resume)\n");
		else
			fprintf(f, "error: no migration in progress\n");
		return true;
	case CONTROL_RESOLVE:
		if (migrate_ctl_resolve(&s->ctl))
			fprintf(f, "error: not in doubt (phase %s)\n", migrate_phase_name(p));
		else
			fprintf(f, "ok: asking the destination now\n");
		return true;
	case CONTROL_FORCE_RESUME:
		if (migrate_ctl_force_resume(&s->ctl))
			fprintf(f, "error: not in doubt (phase %s)\n", migrate_phase_name(p));
		else
			fprintf(f, "ok: resuming the VM here on your word that the destination never ran it\n");
		return true;
	case CONTROL_GIVE_UP:
		if (migrate_ctl_give_up(&s->ctl))
			fprintf(f, "error: not in doubt (phase %s)\n", migrate_phase_name(p));
		else
			fprintf(f, "ok: no longer asking; the VM stays paused here\n");
		return true;
	default:
		return false;
	}
}

/*
 * SIGINT and SIGTERM: cancel a migration that has not committed (the VM
 * keeps running here), refuse to act on one that has, and otherwise stop.
 */
static void *signal_main(void *arg)
{
	struct source_cmd *s = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		enum migrate_phase p;

		if (sigwait(&set, &sig))
			continue;
		p = migrate_ctl_phase(&s->ctl);
		if (p == MIGRATE_PRECOPY || p == MIGRATE_SWITCHING) {
			if (!migrate_ctl_cancel(&s->ctl, sig == SIGINT ? "cancelled by SIGINT" :
						"cancelled by SIGTERM")) {
				say(s, "cancelling the migration; the VM keeps running here");
				continue;
			}
			p = migrate_ctl_phase(&s->ctl);
		}
		if (p == MIGRATE_COMMITTED || p == MIGRATE_IN_DOUBT) {
			say(s, "the migration is committed: a signal cannot undo it. The destination decides; in doubt, use `vmdirty migrate SOCKET resolve`, `force-resume` or `give-up` (needs --control)");
			continue;
		}
		pthread_mutex_lock(&s->lock);
		s->quit = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		if (s->control)
			control_wake(s->control);
	}
	return NULL;
}

/* Sleep up to seconds (< 0: forever); false if a signal asked to quit. */
static bool linger(struct source_cmd *s, double seconds)
{
	struct timespec ts;
	bool quit;

	ts = vmm_deadline_ms(seconds >= 0 ? (uint64_t)(seconds * 1000) : 0);
	pthread_mutex_lock(&s->lock);
	while (!s->quit)
		if (seconds < 0 ? pthread_cond_wait(&s->cond, &s->lock) :
				  pthread_cond_timedwait(&s->cond, &s->lock, &ts))
			break;
	quit = s->quit;
	pthread_mutex_unlock(&s->lock);
	return !quit;
}

static int migrate_once(struct source_cmd *s, FILE *out)
{
	int ret;

	ret = migrate_source(s->h.vm, s->h.runner, s->h.trk, &s->m, &s->rep);
	snprintf(s->rep.backend_why, sizeof(s->rep.backend_why), "%s", s->h.why);
	if (s->rep.outcome == MIGRATE_MIGRATED)
		s->migrated = true;
	else if (s->rep.outcome == MIGRATE_UNCERTAIN)
		s->in_doubt = true;
	if (s->json)
		report_json(out, &s->rep);
	else
		report_text(out, &s->rep);
	return ret;
}

/* The VM stops here: its own memory check, as the destination does. */
static void check_guest(struct source_cmd *s)
{
	int64_t bad = vmhost_verify(&s->h);

	if (bad < 0)
		fprintf(s->info, "vmdirty: the guest's memory check could not run: %s\n",
			strerror((int)-bad));
	else
		fprintf(s->info, "vmdirty: the guest's memory check: %" PRId64 " bad pages\n", bad);
}

int cmd_source(int argc, char **argv)
{
	struct source_cmd s = { .json = false };
	struct trust_cli trust;
	struct vmhost_opts vo;
	struct option opts[64];
	const char *control = NULL;
	double after = -1, stay = -1, v;
	bool quiet = false, guest_check = true;
	pthread_t sig_thread;
	sigset_t sigs;
	unsigned int n = 0;
	int c, ret;

	vmhost_opts_init(&vo);
	migrate_source_opts_init(&s.m);
	for (const struct option *o = vmhost_long_options; o->name; o++)
		opts[n++] = *o;
	for (size_t i = 0; i < sizeof(source_options) / sizeof(source_options[0]); i++)
		opts[n++] = source_options[i];
	for (const struct option *o = trust_long_options; o->name; o++)
		opts[n++] = *o;
	opts[n] = (struct option){ 0 };
	trust_cli_init(&trust);

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int r = vmhost_parse_opt(&vo, c, optarg);

		if (!r)
			r = trust_cli_parse(&trust, c, optarg);
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
		case OPT_NICE:
			if (cli_num("nice", optarg, 0, 19, &v))
				return 2;
			s.m.nice = v;
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
		case OPT_SHRINK_ROUNDS:
			if (cli_num("shrink-rounds", optarg, 0, 10, &v))
				return 2;
			s.m.conv.shrink_rounds = v;
			break;
		case OPT_MAX_TIME:
			if (cli_num("max-time", optarg, 0.001, 86400, &v))
				return 2;
			s.m.conv.max_ns = v * 1e9;
			break;
		case OPT_NO_AUTOCONV:
			s.m.conv.auto_converge = false;
			break;
		case OPT_VERIFY_RAM:
			s.m.verify_ram = true;
			break;
		case OPT_TIMEOUT:
			if (cli_num("timeout", optarg, 100, 3600000, &v))
				return 2;
			s.m.net.timeout_ms = v;
			break;
		case OPT_READY_TIMEOUT:
			if (cli_num("ready-timeout", optarg, 100, 3600000, &v))
				return 2;
			s.m.ready_timeout_ms = v;
			break;
		case OPT_COMMIT_TIMEOUT:
			if (cli_num("commit-timeout", optarg, 100, 3600000, &v))
				return 2;
			s.m.commit_timeout_ms = v;
			break;
		case OPT_RESOLVE_EVERY:
			if (cli_num("resolve-every", optarg, 100, 3600000, &v))
				return 2;
			s.m.resolve_every_ms = v;
			break;
		case OPT_STAY:
			if (cli_num("stay", optarg, 0, 1e9, &stay))
				return 2;
			break;
		case OPT_NO_GUEST_CHECK:
			guest_check = false;
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
	if (vmhost_check(&vo) || trust_cli_apply(&trust, &s.m.net, "source"))
		return 2;
	s.info = s.json ? stderr : stdout;
	if (!quiet) {
		s.m.progress = report_progress;
		s.m.progress_ctx = s.info;
	}
	s.m.log = say;
	s.m.log_ctx = &s;
	migrate_ctl_init(&s.ctl);
	s.m.ctl = &s.ctl;
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);

	/* Every thread from here on leaves SIGINT and SIGTERM to signal_main(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (pthread_create(&sig_thread, NULL, signal_main, &s) == 0)
		pthread_detach(sig_thread);

	pthread_setname_np(pthread_self(), "src-main");
	ret = vmhost_start(&vo, &s.h);
	if (ret)
		return 1;
	fprintf(s.info, "vmdirty: VM of %" PRIu64 " MiB, %u vCPUs running; dirty tracking: %s\n",
		vo.mem_mib, vo.vcpus, s.h.why);
	if (!vo.direct)
		fprintf(s.info, "vmdirty: guest %s booted (multiboot): %s\n",
			vo.kernel ? vo.kernel : "vmdirty-guest.elf (built in)", s.h.cmdline);
	fflush(s.info);

	if (control) {
		struct control_ops ops = { .handle = handle, .ctx = &s };

		ret = control_listen(control, &ops, &s.control);
		if (ret) {
			fprintf(stderr, "vmdirty: control socket %s: %s\n", control, strerror(-ret));
			vmhost_free(&s.h);
			return 1;
		}
		ret = 1;
		for (;;) {
			enum control_cmd cmd = control_wait(s.control, 0);
			char *text = NULL;
			size_t len = 0;
			FILE *f;

			if (cmd == CONTROL_NONE) {
				if (!linger(&s, 0))
					break;
				continue;
			}
			if (cmd == CONTROL_QUIT) {
				control_finish(s.control, "ok\n");
				break;
			}
			f = open_memstream(&text, &len);
			if (!f) {
				control_finish(s.control, "error: out of memory\n");
				continue;
			}
			/* The reply is the report, as JSON. */
			s.json = true;
			ret = migrate_once(&s, f);
			fclose(f);
			control_finish(s.control, text ? text : "error\n");
			free(text);
			migrate_report_free(&s.rep);
			if (s.migrated || s.in_doubt)
				break;
		}
		control_close(s.control);
		s.control = NULL;
	} else if (linger(&s, after)) {
		migrate_once(&s, stdout);
		migrate_report_free(&s.rep);
		if (!s.migrated && !s.in_doubt) {
			uint64_t ops = vmhost_ops(&s.h), t0 = vmm_now_ns();

			fprintf(s.info, "vmdirty: the VM runs on here, %s\n",
				stay < 0 ? "until SIGINT or SIGTERM" : "for --stay");
			fflush(s.info);
			linger(&s, stay);
			fprintf(s.info, "vmdirty: the VM keeps running here: %" PRIu64 " guest operations in the last %.1f s\n",
				vmhost_ops(&s.h) - ops, (vmm_now_ns() - t0) / 1e9);
		}
	}
	if (!s.migrated && !s.in_doubt && guest_check)
		check_guest(&s);
	vmhost_free(&s.h);
	migrate_ctl_destroy(&s.ctl);
	trust_cli_release(&trust);
	return s.migrated ? 0 : s.in_doubt ? 3 : 1;
}
