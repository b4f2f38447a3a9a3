// SPDX-License-Identifier: GPL-2.0
/*
 * vmdirty checkmem: check a memory dump of a stopped guest against the
 * guest's content rule (check/check.h), whichever VMM ran it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check.h"
#include "cmd.h"
#include "report.h"

enum { OPT_JSON = 0x4000, OPT_HELP };

static const struct option checkmem_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmdirty checkmem [--json] DUMP\n"
		"\nCheck the memory of a stopped vmdirty guest against its content rule: every\n"
		"vCPU's version table and every page it wrote (Documentation/guest.rst).\n"
		"DUMP: raw from gpa 0 (QEMU's pmemsave, vmdirty dest --dump-mem) or an ELF\n"
		"core (QEMU's dump-guest-memory).\n"
		"\n"
		"  --json               the result as one JSON object on stdout\n"
		"\nExit status: 0 clean, 1 bad pages or an inconsistent guest, 2 usage or no dump.\n");
}

static void print_text(const char *path, const struct dump *d, const struct memcheck *r,
		       int ret)
{
	printf("checkmem: %s: %s, %u segment%s\n", path, dump_format_name(d->format), d->nr,
	       d->nr == 1 ? "" : "s");
	if (r->nr_vcpus)
		printf("checkmem: guest: %s boot, %u vCPU%s, %" PRIu64 " MiB, TSC %" PRIu64 " kHz\n",
		       r->boot == GUEST_BOOT_MULTIBOOT ? "multiboot" : "direct", r->nr_vcpus,
		       r->nr_vcpus == 1 ? "" : "s", r->mem_size >> 20, r->tsc_khz);
	for (uint32_t i = 0; i < r->nr_vcpus && ret >= 0; i++) {
		const struct memcheck_vcpu *v = &r->vcpu[i];

		printf("checkmem: vCPU %u: %" PRIu64 " data pages, %" PRIu64 " written, %" PRIu64
		       " writes, %" PRIu64 " ops, %" PRIu64 " bad, %" PRIu64 " in flight\n", i,
		       v->data_pages, v->written, v->writes, v->ops, v->bad, v->inflight);
	}
	if (r->problems)
		printf("checkmem: %u problem%s, the first: %s\n", r->problems,
		       r->problems == 1 ? "" : "s", r->first);
	printf("checkmem: %" PRIu64 " pages checked, %" PRIu64 " bad, %" PRIu64 " ops: %s\n",
	       r->checked, r->bad, r->ops, ret ? "FAILED" : "clean");
}

static void print_json(const char *path, const struct dump *d, const struct memcheck *r,
		       int ret)
{
	printf("{\"dump\":");
	report_json_str(stdout, path);
	printf(",\"format\":\"%s\",\"segments\":%u,\"ok\":%s,\"vcpus\":%u,\"boot\":\"%s\","
	       "\"mem_bytes\":%" PRIu64 ",\"tsc_khz\":%" PRIu64 ",\"checked\":%" PRIu64
	       ",\"bad\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"ops\":%" PRIu64
	       ",\"writes\":%" PRIu64 ",\"problems\":%u,\"first_problem\":",
	       d->format == DUMP_ELF ? "elf" : "raw", d->nr, ret ? "false" : "true", r->nr_vcpus,
	       r->boot == GUEST_BOOT_MULTIBOOT ? "multiboot" : "direct", r->mem_size, r->tsc_khz,
	       r->checked, r->bad, r->inflight, r->ops, r->writes, r->problems);
	report_json_str(stdout, r->first);
	printf(",\"per_vcpu\":[");
	for (uint32_t i = 0; i < r->nr_vcpus && ret >= 0; i++) {
		const struct memcheck_vcpu *v = &r->vcpu[i];

		printf("%s{\"data_pages\":%" PRIu64 ",\"written\":%" PRIu64 ",\"writes\":%" PRIu64
		       ",\"ops\":%" PRIu64 ",\"reports\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"bad\":%" PRIu64 ",\"inflight\":%" PRIu64 "}", i ? "," : "",
		       v->data_pages, v->written, v->writes, v->ops, v->reports, v->errors, v->bad,
		       v->inflight);
	}
	printf("]}\n");
}

int cmd_checkmem(int argc, char **argv)
{
	char err[CHECK_ERR_MAX];
	struct memcheck *r;
	struct dump d;
	bool json = false;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", checkmem_options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
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
	if (optind != argc - 1) {
		fprintf(stderr, "vmdirty checkmem: give one dump file (see --help)\n");
		return 2;
	}
	ret = dump_open(argv[optind], &d, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "vmdirty checkmem: %s: %s\n", argv[optind], err);
		return 2;
	}
	r = malloc(sizeof(*r));
	if (!r) {
		dump_close(&d);
		fprintf(stderr, "vmdirty checkmem: out of memory\n");
		return 2;
	}
	ret = memcheck_run(&d, r);
	if (json)
		print_json(argv[optind], &d, r, ret);
	else
		print_text(argv[optind], &d, r, ret);
	dump_close(&d);
	free(r);
	return ret < 0 ? 2 : ret ? 1 : 0;
}
