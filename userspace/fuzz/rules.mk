# SPDX-License-Identifier: GPL-2.0
# libFuzzer harnesses, one per parser a peer (or the module) can reach:
# hdr, hello, msg, pages, state (the wire), tls (the handshake and the
# record cursor, and the key file), nl (netlink replies and events).
# `make -C userspace fuzz` builds them with clang + libFuzzer (Debian's
# clang and libclang-rt-14-dev, from scripts/deps.sh), and seed corpora from
# gen.c; scripts/fuzz.sh adds the inputs real migrations recorded
# (VMDIRTY_RECORD, wire/record.h) and runs each for a bounded time.  Not
# part of `all`.  By hand:
#   build/userspace/fuzz/pages -max_total_time=60 build/userspace/fuzz/corpus/pages
FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	       $(FUZZ_SAN)
FUZZ_CPPFLAGS := -I. -I../include/uapi $(shell pkg-config --cflags libnl-genl-3.0 gnutls)
FUZZ_LIB_SRCS := wire/proto.c wire/hello.c wire/ramhash.c wire/state.c wire/codec.c \
		 wire/zero.c wire/apply.c wire/digest.c wire/record.c \
		 auth/psk.c auth/tls.c nl.c
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(O)/fuzz/lib/%.o)
FUZZ_LIB := $(O)/fuzz/libfuzzed.a
FUZZ_LDLIBS := $(shell pkg-config --libs libzstd liblz4 libnl-genl-3.0 gnutls) -lxxhash -lpthread
FUZZERS := $(patsubst fuzz/%.c,$(O)/fuzz/%,$(wildcard fuzz/*.c))

FUZZ_SEEDS := $(O)/fuzz/corpus/.stamp

fuzz: $(FUZZERS) $(FUZZ_SEEDS)

$(FUZZ_SEEDS): $(O)/fuzz/seeds/gen
	$< $(O)/fuzz/corpus && touch $@

$(O)/fuzz/seeds/gen: $(O)/fuzz/seeds/gen.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The code under test, instrumented once for every harness.
$(O)/fuzz/lib/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_CPPFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/fuzz/%: fuzz/%.c $(FUZZ_LIB) fuzz/fuzz.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_CPPFLAGS) $< $(FUZZ_LIB) \
		$(FUZZ_LDLIBS) -o $@

.PHONY: fuzz
