# SPDX-License-Identifier: GPL-2.0
# The codec micro-benchmark (wire/bench.h); make bench runs it.
CODEC_BENCH := $(BUILD)/vmdirty-codec-bench

all: $(CODEC_BENCH)

$(CODEC_BENCH): $(O)/wire/bench/codec_bench.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
