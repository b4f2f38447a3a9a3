# SPDX-License-Identifier: GPL-2.0
# libFuzzer harnesses, one per parser (make -C userspace fuzz; needs clang
# with -fsanitize=fuzzer, e.g. Debian's clang + libclang-rt-14-dev).  Not
# part of `all`.  Seeds (valid messages) go to build/userspace/fuzz/corpus:
#   build/userspace/fuzz/pages -max_total_time=60 build/userspace/fuzz/corpus/pages
FUZZ_CC ?= clang
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_SRCS := wire/proto.c wire/hello.c wire/ramhash.c wire/state.c wire/codec.c \
		 wire/zero.c wire/apply.c wire/digest.c
FUZZERS := $(patsubst fuzz/%.c,$(O)/fuzz/%,$(wildcard fuzz/*.c))

FUZZ_SEEDS := $(O)/fuzz/corpus/.stamp

fuzz: $(FUZZERS) $(FUZZ_SEEDS)

$(FUZZ_SEEDS): $(O)/fuzz/seeds/gen
	$< $(O)/fuzz/corpus && touch $@

$(O)/fuzz/seeds/gen: $(O)/fuzz/seeds/gen.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/fuzz/%: fuzz/%.c $(FUZZ_LIB_SRCS) $(wildcard wire/*.h) fuzz/fuzz.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I. -I../include/uapi $< $(FUZZ_LIB_SRCS) \
		$(shell pkg-config --libs libzstd liblz4) -lxxhash -lpthread -o $@

.PHONY: fuzz
