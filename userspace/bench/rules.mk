# SPDX-License-Identifier: GPL-2.0
#
# Benchmarks: every bench/*_bench.c is a program in $(O)/bench, linked with
# libvmdirty.a.  scripts/bench.sh runs them in the test host (make bench).
# Included by userspace/Makefile.

BENCH_SRCS := $(wildcard bench/*_bench.c)
BENCH_PROGS := $(BENCH_SRCS:bench/%.c=$(O)/bench/%)

all: $(BENCH_PROGS)

$(O)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@
