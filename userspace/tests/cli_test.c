// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's command line: every usage error is a clear message on stderr
 * and exit status 2, before any VM is created or socket opened.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

static char agent[PATH_MAX + 16];

/* Run the agent with args; its exit status, and stderr+stdout in out. */
static int run(const char *args, char *out, size_t cap)
{
	char cmd[PATH_MAX + 512];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", agent, args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, cap - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

FIXTURE(cli) {
	char out[8192];
};

FIXTURE_SETUP(cli)
{
	char self_path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);

	ASSERT_LT(0, n);
	self_path[n] = 0;
	/* build/userspace/tests/cli_test -> build/vmdirty */
	*strrchr(self_path, '/') = 0;
	*strrchr(self_path, '/') = 0;
	*strrchr(self_path, '/') = 0;
	snprintf(agent, sizeof(agent), "%s/vmdirty", self_path);
	ASSERT_EQ(0, access(agent, X_OK)) TH_LOG("no agent at %s", agent);
}

FIXTURE_TEARDOWN(cli)
{
}

struct usage_case {
	const char *args;
	const char *says;
};

static const struct usage_case cases[] = {
	{ "", "usage: vmdirty" },
	{ "nosuchcommand", "unknown command 'nosuchcommand'" },
	{ "source --after 1", "--to HOST:PORT is required" },
	{ "source --to 127.0.0.1:1", "exactly one of --after SECONDS and --control PATH" },
	{ "source --to 127.0.0.1:1 --after 1 --control /x", "exactly one of --after" },
	{ "source --to a:1 --after 1 --mem 3", "--mem: '3' is not a number in" },
	{ "source --to a:1 --after 1 --mem 33", "not a multiple of 2 MiB" },
	{ "source --to a:1 --after 1 --vcpus 0", "--vcpus: '0'" },
	{ "source --to a:1 --after 1 --workload bogus", "idle, seq, random or hotset" },
	{ "source --to a:1 --after 1 --backend nope", "auto, bitmap, ring or kmod" },
	{ "source --to a:1 --after 1 --ring-entries 1000", "not a power of two" },
	{ "source --to a:1 --after 1 --codec brotli", "raw, lz4[:ACCEL] or zstd[:LEVEL]" },
	{ "source --to a:1 --after 1 --codec zstd:99", "raw, lz4[:ACCEL] or zstd[:LEVEL]" },
	{ "source --to a:1 --after 1 --codec raw:3", "raw, lz4[:ACCEL] or zstd[:LEVEL]" },
	{ "source --to a:1 --after 1 --transport carrier-pigeon", "plain, zerocopy or uring" },
	{ "source --to a:1 --after 1 --channels 17", "--channels: '17'" },
	{ "source --to a:1 --after 1 --nice 20", "--nice: '20'" },
	{ "source --to a:1 --after 1 --nice -1", "--nice: '-1'" },
	{ "source --to a:1 --after 1 --downtime 0", "--downtime: '0'" },
	{ "source --to a:1 --after 1 --shrink-rounds 11", "--shrink-rounds: '11'" },
	{ "source --to a:1 --after 1 --shrink-rounds -1", "--shrink-rounds: '-1'" },
	{ "source --to a:1 --after -1", "--after: '-1'" },
	{ "source --to a:1 --after 1 --no-verify", "unrecognized option '--no-verify'" },
	{ "source --to a:1 --after 1 --stay -1", "--stay: '-1'" },
	{ "source --to a:1 --after 1 --commit-timeout 0", "--commit-timeout: '0'" },
	{ "source --to a:1 --after 1 --resolve-every x", "--resolve-every: 'x'" },
	{ "dest --listen :1 --hold 0", "--hold: '0'" },
	{ "dest --listen :1 --answer-for -5", "--answer-for: '-5'" },
	{ "migrate /tmp/x unresolve", "unknown request 'unresolve'" },
	{ "source --to a:1 --after 1 --zerocopy-always", "--zerocopy-always needs --transport zerocopy" },
	{ "source --to a:1 --after 1 --drain --backend ring", "--drain needs the kmod backend" },
	{ "source --to a:1 --after 1 extra", "unexpected argument 'extra'" },
	{ "source --to a:1 --after 1 --bogus-option", "unrecognized option" },
	{ "dest", "--listen [HOST]:PORT is required" },
	{ "dest --listen :1 --backend nope", "auto, bitmap, ring or kmod" },
	{ "dest --listen :1 --run-for x", "--run-for: 'x' is not a number" },
	{ "dest --listen :1 --vcpus 99", "--vcpus: '99' is not a number in" },
	{ "dest --listen :1 stray", "unexpected argument 'stray'" },
	{ "migrate", "usage: vmdirty migrate" },
	{ "migrate /tmp/x launch", "unknown request 'launch'" },
};

TEST_F(cli, usage_errors_exit_2_and_say_why)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(cases[i].args, self->out, sizeof(self->out));

		EXPECT_EQ(2, rc) TH_LOG("'vmdirty %s' exited %d: %s", cases[i].args, rc, self->out);
		EXPECT_NE(NULL, strstr(self->out, cases[i].says))
			TH_LOG("'vmdirty %s' said: %s", cases[i].args, self->out);
	}
}

TEST_F(cli, help_exits_0)
{
	static const char *const cmds[] = { "--help", "source --help", "dest --help",
					    "migrate --help" };

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		EXPECT_EQ(0, run(cmds[i], self->out, sizeof(self->out))) TH_LOG("%s", cmds[i]);
		EXPECT_NE(NULL, strstr(self->out, "usage: vmdirty")) TH_LOG("%s", cmds[i]);
	}
}

TEST_HARNESS_MAIN
