// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's command-line parser (vmm/guest_cmdline.c), the same code the
 * guest runs at a multiboot boot, and the agent's command line for it
 * (vmhost_cmdline): every key, every way a line is refused, and that what
 * the agent writes the guest reads back as the agent meant it.
 */
#include <string.h>

/* The 6.1 harness defines functions without prototypes (userspace/Makefile has -Wmissing-prototypes). */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "vmhost.h"
#include "vmm/guest_abi.h"
#include "vmm/guest_cmdline.h"

static int parse(const char *s, struct guest_config *c, char *err)
{
	guest_config_init(c);
	return guest_cmdline_parse(s, c, err, GUEST_CMDLINE_ERR_MAX);
}

/* Catches: defaults that differ from the agent's (vmhost_opts_init) but for vcpus. */
TEST(empty_line_gives_the_defaults)
{
	struct guest_config c;
	char err[GUEST_CMDLINE_ERR_MAX];

	ASSERT_EQ(0, parse("", &c, err));
	EXPECT_EQ(GUEST_WL_RANDOM, c.workload);
	EXPECT_EQ(1, c.vcpus);
	EXPECT_EQ(0, c.rate);
	EXPECT_EQ(256, c.hot);
	EXPECT_EQ(1, c.seed);
	EXPECT_EQ(0, c.tsc_khz);
	EXPECT_EQ(1, c.debugcon);
	EXPECT_STREQ("", err);
}

/* Catches: a key parsed into the wrong field, or rate= not in MB/s. */
TEST(every_key)
{
	struct guest_config c;
	char err[GUEST_CMDLINE_ERR_MAX];

	ASSERT_EQ(0, parse("/boot/vmdirty-guest.elf  workload=hotset\trate=66 seed=0x10 "
			   "hot=1000 vcpus=32 tsc_khz=2500000 debugcon=0\n", &c, err)) TH_LOG("%s", err);
	EXPECT_EQ(GUEST_WL_HOTSET, c.workload);
	EXPECT_EQ(66000000, c.rate);
	EXPECT_EQ(16, c.seed);
	EXPECT_EQ(1000, c.hot);
	EXPECT_EQ(32, c.vcpus);
	EXPECT_EQ(2500000, c.tsc_khz);
	EXPECT_EQ(0, c.debugcon);
	ASSERT_EQ(0, parse("workload=idle rate=0.125", &c, err));
	EXPECT_EQ(GUEST_WL_IDLE, c.workload);
	EXPECT_EQ(125000, c.rate);
	ASSERT_EQ(0, parse("rate=1000000.000", &c, err));
	EXPECT_EQ(1000000ULL * 1000000, c.rate);
	ASSERT_EQ(0, parse("workload=seq seed=18446744073709551615", &c, err));
	EXPECT_EQ(GUEST_WL_SEQ, c.workload);
	EXPECT_EQ(~0ULL, c.seed);
}

/* Catches: bad input ignored, or refused without saying what. */
TEST(bad_lines_are_refused_with_a_reason)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{ "workload=random nosuchkey=1", "unknown key 'nosuchkey'" },
		{ "rate=1 rate=2", "rate= given twice" },
		{ "name workload=random stray", "'stray' is not key=value" },
		{ "rate=", "rate='': not a number in 0..1000000" },
		{ "rate=12x", "rate='12x': not a number" },
		{ "rate=1000001", "rate='1000001': not a number in 0..1000000" },
		{ "rate=0x10", "rate='0x10': not a number" },
		{ "rate=1.2345", "rate='1.2345': not a number in 0..1000000, at most 3 decimals" },
		{ "rate=1.", "rate='1.': not a number" },
		{ "rate=.5", "rate='.5': not a number" },
		{ "rate=1.5.", "rate='1.5.': not a number" },
		{ "vcpus=0", "vcpus='0': not a number in 1..32" },
		{ "vcpus=33", "vcpus='33': not a number in 1..32" },
		{ "hot=0", "hot='0': not a number in 1..4294967295" },
		{ "tsc_khz=999", "tsc_khz='999': not a number in 1000..100000000" },
		{ "debugcon=2", "debugcon='2': not a number in 0..1" },
		{ "seed=18446744073709551616", "seed='18446744073709551616': not a number" },
		{ "seed=0x", "seed='0x': not a number" },
		{ "seed=-1", "seed='-1': not a number" },
		{ "workload=bogus", "workload='bogus': idle, seq, random or hotset" },
		{ "workload=", "workload='': idle, seq, random or hotset" },
		{ "=1", "unknown key ''" },
	};
	struct guest_config c;
	char err[GUEST_CMDLINE_ERR_MAX];
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(GUEST_EINVAL, parse(bad[i].line, &c, err)) TH_LOG("%s", bad[i].line);
		EXPECT_NE(NULL, strstr(err, bad[i].why)) TH_LOG("'%s': '%s'", bad[i].line, err);
	}
}

/* Catches: an overlong word overrunning the message, a line too long for the guest's buffer. */
TEST(long_input_is_cut_not_overrun)
{
	char line[GUEST_CMDLINE_MAX + 8], err[GUEST_CMDLINE_ERR_MAX], small[12];
	struct guest_config c;

	memset(line, 'k', 200);
	strcpy(line + 200, "=1");
	EXPECT_EQ(GUEST_EINVAL, parse(line, &c, err));
	EXPECT_LT(strlen(err), sizeof(err));
	EXPECT_NE(NULL, strstr(err, "...'"));
	guest_config_init(&c);
	EXPECT_EQ(GUEST_EINVAL, guest_cmdline_parse("bogus=1", &c, small, sizeof(small)));
	EXPECT_EQ(sizeof(small) - 1, strlen(small));
	memset(line, ' ', sizeof(line));
	line[GUEST_CMDLINE_MAX] = 0;
	EXPECT_EQ(GUEST_EINVAL, parse(line, &c, err));
	EXPECT_NE(NULL, strstr(err, "longer than 1023"));
	line[GUEST_CMDLINE_MAX - 1] = 0;
	EXPECT_EQ(0, parse(line, &c, err));
}

/* Catches: the agent and the guest reading one option differently (units, seed, vcpus). */
TEST(agent_line_reads_back)
{
	struct vmhost_opts o;
	struct guest_config c;
	char line[GUEST_CMDLINE_MAX], err[GUEST_CMDLINE_ERR_MAX];

	vmhost_opts_init(&o);
	o.vcpus = 3;
	o.workload = GUEST_WL_SEQ;
	o.rate = 66125000ULL;	/* --rate 66.125 */
	o.hot_pages = 77;
	o.seed = 1234;
	ASSERT_EQ(0, vmhost_cmdline(&o, 2500000, line, sizeof(line)));
	ASSERT_EQ(0, parse(line, &c, err)) TH_LOG("%s: %s", line, err);
	EXPECT_EQ(3, c.vcpus);
	EXPECT_EQ(GUEST_WL_SEQ, c.workload);
	EXPECT_EQ(o.rate, c.rate);
	EXPECT_EQ(77, c.hot);
	EXPECT_EQ(1234, c.seed);
	EXPECT_EQ(2500000, c.tsc_khz);
	EXPECT_EQ(0, c.debugcon);	/* no --debugcon: no records, no exits for them */
	o.debugcon = "/dev/null";
	ASSERT_EQ(0, vmhost_cmdline(&o, 2500000, line, sizeof(line)));
	ASSERT_EQ(0, parse(line, &c, err)) TH_LOG("%s: %s", line, err);
	EXPECT_EQ(1, c.debugcon);
	/* --append's tsc_khz and debugcon win over the agent's; its other keys collide. */
	o.append = "tsc_khz=1000000";
	ASSERT_EQ(0, vmhost_cmdline(&o, 2500000, line, sizeof(line)));
	ASSERT_EQ(0, parse(line, &c, err)) TH_LOG("%s: %s", line, err);
	EXPECT_EQ(1000000, c.tsc_khz);
	o.append = "seed=5";
	ASSERT_EQ(0, vmhost_cmdline(&o, 2500000, line, sizeof(line)));
	EXPECT_EQ(GUEST_EINVAL, parse(line, &c, err));
	EXPECT_NE(NULL, strstr(err, "seed= given twice"));
	EXPECT_EQ(-E2BIG, vmhost_cmdline(&o, 2500000, line, 20));
}

TEST_HARNESS_MAIN
