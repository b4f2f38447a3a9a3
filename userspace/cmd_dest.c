// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty dest: wait for one incoming migration, resume the guest, let it
 * run, and check that it goes on where it stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
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
	OPT_LISTEN = 0x3000, OPT_BACKEND, OPT_MEM, OPT_VCPUS, OPT_RUN_FOR, OPT_TIMEOUT,
	OPT_WAIT, OPT_NO_VERIFY_GUEST, OPT_JSON, OPT_HOLD, OPT_ANSWER_FOR, OPT_CONTROL,
	OPT_DEBUGCON, OPT_DUMP_MEM, OPT_RAM, OPT_HELP,
};

/* After a discard nobody was told of: how long the answer waits for its question. */
#define DEST_ANSWER_FOR_S	600

static const struct option dest_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "run-for", required_argument, NULL, OPT_RUN_FOR },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "no-guest-check", no_argument, NULL, OPT_NO_VERIFY_GUEST },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "hold", required_argument, NULL, OPT_HOLD },
	{ "answer-for", required_argument, NULL, OPT_ANSWER_FOR },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "debugcon", required_argument, NULL, OPT_DEBUGCON },
	{ "dump-mem", required_argument, NULL, OPT_DUMP_MEM },
	{ "ram", required_argument, NULL, OPT_RAM },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmdirty dest --listen [HOST]:PORT [--listen ...] [options]\n"
		"\nWait for one live migration from `vmdirty source`, resume the guest, let it\n"
		"run, then stop it and run its own full memory check.\n"
		"\n"
		"  --listen ADDR        address to accept channels on; several for dedicated networks\n"
		"  --backend NAME       dirty tracking to prepare the VM for: auto, bitmap, ring, kmod\n"
		"  --mem MiB, --vcpus N the guest's size: a source whose VM differs is refused;\n"
		"                       given both, the VM is made before a source connects\n"
		"                       (default: take the source's, and make it on its HELLO)\n"
		"  --run-for SECONDS    let the guest run this long after the switch (default 3)\n"
		"  --wait SECONDS       give up if no source connects in this time (default: forever)\n"
		"  --timeout MS         network timeout (default %d)\n"
		"  --no-guest-check     skip the guest's full memory check at the end\n"
		"  --hold SECONDS       READY: keep the loaded copy this long for the source's\n"
		"                       COMMIT (or its QUERY) before discarding it (default %d)\n"
		"  --answer-for SECONDS after discarding a READY copy nobody told us about, keep\n"
		"                       answering the source's QUERY this long (default %d; 0: forever)\n"
		"  --control PATH       status, and for a held copy whose source is gone for\n"
		"                       good: start or discard (`vmdirty migrate PATH start`)\n"
		"  --debugcon PATH      the guest's debug console (progress ticks) to a file or FIFO\n"
		"  --dump-mem PATH      guest RAM, raw from gpa 0, once the guest has stopped at the\n"
		"                       end (for vmdirty checkmem)\n"
		"  --ram KIND           the new VM's RAM: anon (huge pages) or memfd (default anon)\n"
		"  --json               the final report as JSON on stdout\n"
		"\nTrust:\n" TRUST_USAGE TRUST_DEST_USAGE
		"\nThe guest runs here only on the source's COMMIT (or the operator's start).\n"
		"\nExit status: 0 the guest runs here and passed its checks, 1 otherwise, 2 usage.\n",
		TRANSPORT_DEFAULT_TIMEOUT_MS, MIGRATE_DEFAULT_HOLD_MS / 1000, DEST_ANSWER_FOR_S,
		TRANSPORT_DEFAULT_MAX_HANDSHAKES, TRANSPORT_DEFAULT_HANDSHAKE_MS);
}

static void say(void *ctx, const char *line)
{
	FILE *f = ctx;

	fprintf(f, "vmdirty: %s\n", line);
	fflush(f);
}

static bool handle(void *ctx, enum control_cmd cmd, FILE *f)
{
	struct migrate_dest_ctl *c = ctx;

	switch (cmd) {
	case CONTROL_STATUS:
		pthread_mutex_lock(&c->lock);
		fprintf(f, "{\"state\":\"%s\"}\n", c->state);
		pthread_mutex_unlock(&c->lock);
		return true;
	case CONTROL_START:
		if (migrate_dest_ctl_start(c))
			fprintf(f, "error: no loaded copy waiting for a commit\n");
		else
			fprintf(f, "ok: starting the held copy here\n");
		return true;
	case CONTROL_DISCARD:
		if (migrate_dest_ctl_discard(c))
			fprintf(f, "error: no loaded copy waiting for a commit\n");
		else
			fprintf(f, "ok: discarding the held copy\n");
		return true;
	default:
		return false;
	}
}

/* --dump-mem: the guest has stopped (its check ran, or the runner is gone). */
static void dump_mem(struct vmhost *h, const char *path, struct migrate_report *rep, FILE *info)
{
	int fd, ret;

	if (h->runner) {
		ret = vm_runner_stop(h->runner);
		vm_runner_free(h->runner);
		h->runner = NULL;
		if (ret)
			fprintf(info, "vmdirty: the guest did not stop: %s\n", strerror(-ret));
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ret = fd < 0 ? -errno : vm_dump_memory(h->vm, fd);
	if (fd >= 0 && close(fd) && !ret)
		ret = -errno;
	if (ret) {
		rep->ok = false;
		snprintf(rep->error, sizeof(rep->error), "--dump-mem %s: %s", path, strerror(-ret));
		return;
	}
	fprintf(info, "vmdirty: guest RAM (%" PRIu64 " MiB, raw) in %s\n", h->vm->mem_size >> 20,
		path);
}

static void listening(void *ctx, const char *addr, int port)
{
	FILE *f = ctx;

	fprintf(f, "vmdirty: waiting for a migration on %s (port %d)\n", addr, port);
	fflush(f);
}

int cmd_dest(int argc, char **argv)
{
	struct migrate_dest_opts o;
	struct migrate_report rep;
	struct migrate_dest_ctl dctl;
	struct migrate_answerer *ans = NULL;
	struct control *ctl = NULL;
	const char *control = NULL;
	struct vmhost h;
	struct vm *vm;
	struct vm_runner *r;
	double run_for = 3, answer_for = DEST_ANSWER_FOR_S, v;
	bool json = false, guest_check = true;
	const char *debugcon = NULL, *dump = NULL;
	FILE *info;
	uint64_t ops_resume, ops_end;
	int64_t bad = 0;
	struct trust_cli trust;
	struct option opts[48];
	unsigned int n = 0;
	int c, ret;

	migrate_dest_opts_init(&o);
	for (const struct option *p = dest_options; p->name; p++)
		opts[n++] = *p;
	for (const struct option *p = trust_long_options; p->name; p++)
		opts[n++] = *p;
	for (const struct option *p = trust_dest_options; p->name; p++)
		opts[n++] = *p;
	opts[n] = (struct option){ 0 };
	trust_cli_init(&trust);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int ours = trust_cli_parse(&trust, c, optarg);

		if (!ours)
			ours = trust_dest_parse(&o, c, optarg);
		if (ours < 0)
			return 2;
		if (ours > 0)
			continue;
		switch (c) {
		case OPT_LISTEN:
			if (o.nr_listen == MIGRATE_MAX_DESTS) {
				fprintf(stderr, "vmdirty: at most %d --listen addresses\n",
					MIGRATE_MAX_DESTS);
				return 2;
			}
			o.listen[o.nr_listen++] = optarg;
			break;
		case OPT_BACKEND:
			if (track_backend_parse(optarg, &o.backend)) {
				fprintf(stderr, "vmdirty: --backend: '%s': auto, bitmap, ring or kmod\n",
					optarg);
				return 2;
			}
			break;
		case OPT_MEM:
			if (cli_num("mem", optarg, VM_MIN_MEM >> 20, VM_MAX_MEM >> 20, &v))
				return 2;
			o.mem_size = (uint64_t)v << 20;
			break;
		case OPT_VCPUS:
			if (cli_num("vcpus", optarg, 1, VM_MAX_VCPUS, &v))
				return 2;
			o.nr_vcpus = v;
			break;
		case OPT_RUN_FOR:
			if (cli_num("run-for", optarg, 0, 86400, &run_for))
				return 2;
			break;
		case OPT_TIMEOUT:
			if (cli_num("timeout", optarg, 100, 3600000, &v))
				return 2;
			o.net.timeout_ms = v;
			break;
		case OPT_WAIT:
			if (cli_num("wait", optarg, 0.001, 86400, &v))
				return 2;
			o.accept_timeout_ms = v * 1000;
			break;
		case OPT_NO_VERIFY_GUEST:
			guest_check = false;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_HOLD:
			if (cli_num("hold", optarg, 0.1, 86400, &v))
				return 2;
			o.hold_ms = v * 1000;
			break;
		case OPT_ANSWER_FOR:
			if (cli_num("answer-for", optarg, 0, 86400 * 365, &answer_for))
				return 2;
			break;
		case OPT_CONTROL:
			control = optarg;
			break;
		case OPT_DEBUGCON:
			debugcon = optarg;
			break;
		case OPT_DUMP_MEM:
			dump = optarg;
			break;
		case OPT_RAM:
			if (cli_ram(optarg, &o.ram_memfd))
				return 2;
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
		fprintf(stderr, "vmdirty dest: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!o.nr_listen) {
		fprintf(stderr, "vmdirty dest: --listen [HOST]:PORT is required (see --help)\n");
		return 2;
	}
	if (trust_cli_apply(&trust, &o.net, "dest"))
		return 2;
	info = json ? stderr : stdout;
	o.net.log = say;
	o.net.log_ctx = info;
	o.listening = listening;
	o.listening_ctx = info;
	o.log = say;
	o.log_ctx = info;
	if (debugcon) {
		o.debugcon_fd = vmhost_open_debugcon(debugcon);
		if (o.debugcon_fd < 0) {
			fprintf(stderr, "vmdirty: --debugcon %s: %s\n", debugcon,
				strerror(-o.debugcon_fd));
			return 1;
		}
	}
	migrate_dest_ctl_init(&dctl);
	o.ctl = &dctl;
	if (control) {
		struct control_ops ops = { .handle = handle, .ctx = &dctl, .no_queue = true };

		ret = control_listen(control, &ops, &ctl);
		if (ret) {
			fprintf(stderr, "vmdirty: control socket %s: %s\n", control, strerror(-ret));
			return 1;
		}
	}

	pthread_setname_np(pthread_self(), "dst-main");
	ret = migrate_dest(&o, &vm, &r, &ans, &rep);
	if (ret) {
		if (json)
			report_json(stdout, &rep);
		else
			report_text(stdout, &rep);
		/* The source may have committed and be asking: it gets its answer. */
		if (ans && rep.answer_pending) {
			fprintf(info, "vmdirty: keeping the answer (discarded) for the source's QUERY%s\n",
				answer_for ? "" : " until it asks");
			fflush(info);
			if (migrate_answerer_wait(ans, (uint64_t)(answer_for * 1000)))
				fprintf(info, "vmdirty: the source asked, and knows\n");
		}
		migrate_answerer_close(ans);
		control_close(ctl);
		migrate_dest_ctl_destroy(&dctl);
		if (o.debugcon_fd >= 0)
			close(o.debugcon_fd);
		trust_cli_release(&trust);
		return 1;
	}
	vmhost_adopt(&h, vm, r, o.backend);
	ops_resume = vmhost_ops(&h);
	fprintf(info, "vmdirty: the guest runs here (%" PRIu64 " operations at the switch); letting it run %.1f s\n",
		ops_resume, run_for);
	fflush(info);
	usleep((useconds_t)(run_for * 1e6));
	ops_end = vmhost_ops(&h);
	{
		struct vm_runner_stats st;

		vm_runner_stats(h.runner, &st);
		rep.guest_errors = st.guest_errors;
		rep.guest_ops_start = ops_resume;
		rep.guest_ops_end = ops_end;
	}
	if (guest_check) {
		bad = vmhost_verify(&h);
		if (bad < 0)
			fprintf(info, "vmdirty: the guest's memory check could not run: %s\n",
				strerror((int)-bad));
		else
			fprintf(info, "vmdirty: the guest's memory check: %" PRId64 " bad pages\n", bad);
		rep.guest_bad_pages = bad;
	}
	if (dump)
		dump_mem(&h, dump, &rep, info);
	if (ops_end <= ops_resume) {
		rep.ok = false;
		snprintf(rep.error, sizeof(rep.error),
			 "the guest made no progress after the switch (%" PRIu64 " operations)", ops_end);
	} else if (rep.guest_errors || bad) {
		rep.ok = false;
		snprintf(rep.error, sizeof(rep.error),
			 "the guest found %" PRIu64 " self-check errors and %" PRId64 " bad pages",
			 rep.guest_errors, bad);
	}
	fprintf(info, "vmdirty: guest progress after the switch: %" PRIu64 " -> %" PRIu64 " operations\n",
		ops_resume, ops_end);
	if (json)
		report_json(stdout, &rep);
	else
		report_text(stdout, &rep);
	vmhost_free(&h);
	migrate_answerer_close(ans);
	control_close(ctl);
	migrate_dest_ctl_destroy(&dctl);
	if (o.debugcon_fd >= 0)
		close(o.debugcon_fd);
	trust_cli_release(&trust);
	return rep.ok ? 0 : 1;
}
