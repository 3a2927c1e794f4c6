# netvsc-patch
#   make             build build/netvsc-patch
#   make check       build and run every test (unit, hive mode, images)
#   make demo        install deps, build, patch a sample Windows-like VHD
#   make deps        install build/test dependencies (root, apt-get)

VERSION   := 0.1.0
CC        ?= cc
PKGS      := libguestfs hivex libnbd libntfs-3g jansson libvirt libxml-2.0
THREADS   := -pthread
# CFLAGS and CPPFLAGS are the user's (make CFLAGS='-O1 -g' works); what
# the code needs to build at all is in NP_CPPFLAGS/NP_CFLAGS.
CFLAGS    ?= -O2 -g
NP_CPPFLAGS := -D_GNU_SOURCE -DNETVSC_PATCH_VERSION='"$(VERSION)"' -Iinclude
NP_CFLAGS   := -std=gnu11 -Wall -Wextra -Werror=implicit-function-declaration
ALL_CFLAGS   = $(NP_CPPFLAGS) $(CPPFLAGS) $(NP_CFLAGS) $(CFLAGS)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)

B := build
# Modules that know nothing of the command line: shared by the tool
# and the unit tests.
CORE := status size format strbuf diskpath hive match ndi plan apply defer defer_ini guestdefer hostfile interrupt preflight image direct direct_nbd direct_qemu direct_swap direct_files job batch report logreplay parttable escape logfind layers contain launchwatch winvol logsite utf16 image_files image_replace logreplay_new logreplay_old logreplay_files backends image_module domain caveats trace direct_file uri bitlocker direct_probe image_crypt domain_list uri_header hive_count regf_count
CORE_OBJS := $(CORE:%=$(B)/%.o)

# The image backends: the CORE modules that need libguestfs, libnbd or
# libntfs-3g (or are used only by those).  The program loads them as a
# private module only when an image is given (include/backends.h), so
# hive mode starts without some 60 shared libraries.  Every other CORE
# module is linked into the program.  The unit tests, the sanitizer
# build and the fuzz targets link all of CORE as before.
IMAGE_MODULE := image image_files image_replace direct direct_nbd direct_qemu direct_swap \
                direct_files launchwatch image_module direct_file direct_probe image_crypt \
                domain uri_header
IMAGE_MODULE_SO := netvsc-patch-image.so
IMAGE_OBJS := $(IMAGE_MODULE:%=$(B)/pic/%.o)
HOST_OBJS := $(filter-out $(IMAGE_MODULE:%=$(B)/%.o),$(CORE_OBJS))
HOST_PKGS := hivex jansson
IMAGE_PKGS := libguestfs libnbd libntfs-3g libvirt libxml-2.0

PREFIX ?= /usr/local

.PHONY: all check sanitize-check fuzz demo deps clean install bench

all: $(B)/netvsc-patch $(B)/$(IMAGE_MODULE_SO) $(B)/netvsc-patch.1

# VERSION above is the only copy of the version: the code gets it with
# -D, the installed man page from here (man/netvsc-patch.1 says @VERSION@).
$(B)/netvsc-patch.1: man/netvsc-patch.1 Makefile | $(B)
	sed 's/@VERSION@/$(VERSION)/g' man/netvsc-patch.1 >$@.tmp && mv $@.tmp $@

$(B)/%.o: src/%.c $(wildcard include/*.h) | $(B)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

# The module calls back into the program: the program exports exactly
# the symbols the module's objects use (a generated dynamic list), so
# that nothing of ours can interpose on a library's own symbols.
$(B)/netvsc-patch: $(B)/main.o $(HOST_OBJS) $(B)/image-module.dynlist | $(B)/$(IMAGE_MODULE_SO)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(THREADS) -Wl,--dynamic-list=$(B)/image-module.dynlist \
	  -o $@ $(B)/main.o $(HOST_OBJS) $(shell pkg-config --libs $(HOST_PKGS))

$(B)/image-module.dynlist: $(IMAGE_OBJS) $(B)/main.o $(HOST_OBJS)
	nm -P -u $(IMAGE_OBJS) | awk 'NF == 2 && $$2 == "U" {print $$1}' | sort -u >$@.u
	nm -P -g --defined-only $(B)/main.o $(HOST_OBJS) | awk 'NF >= 2 {print $$1}' | sort -u >$@.d
	{ echo '{'; comm -12 $@.u $@.d | sed 's/.*/  &;/'; echo '};'; } >$@
	rm -f $@.u $@.d

# position-independent copies of the module's objects (the unit tests
# and disk-files link the ordinary ones)
$(B)/pic/%.o: src/%.c $(wildcard include/*.h) | $(B)/pic
	$(CC) $(ALL_CFLAGS) -fPIC $(PKG_CFLAGS) -c -o $@ $<

$(B)/$(IMAGE_MODULE_SO): $(IMAGE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(THREADS) -shared -o $@ $^ \
	  $(shell pkg-config --libs $(IMAGE_PKGS))

$(B) $(B)/tests $(B)/pic:
	mkdir -p $@

# --- tests ---------------------------------------------------------------
$(B)/tests/mkhive: tests/mkhive.c | $(B)/tests
	$(CC) -std=c11 -Wall -Wextra -O2 -o $@ $<

# Test-only: dirty hives and their transaction logs (new and old format).
LOGREPLAY_SRCS := src/logreplay.c src/logreplay_new.c src/logreplay_old.c src/logreplay_files.c
$(B)/tests/mklog: tests/mklog.c $(LOGREPLAY_SRCS) src/status.c include/logreplay.h \
                  include/logreplay-internal.h | $(B)/tests
	$(CC) $(ALL_CFLAGS) -o $@ tests/mklog.c $(LOGREPLAY_SRCS) src/status.c

# Test-only: the backends' read_file/write_file/remove_file driven from
# the command line (tests/t-disk-files.sh); only the objects it needs.
DISK_OBJS := $(addprefix $(B)/,status.o format.o hostfile.o diskpath.o image.o direct.o \
               direct_nbd.o direct_qemu.o direct_swap.o direct_files.o parttable.o escape.o \
               launchwatch.o interrupt.o winvol.o utf16.o strbuf.o \
               image_files.o image_replace.o direct_file.o uri.o layers.o \
               bitlocker.o direct_probe.o image_crypt.o backends.o image_module.o \
               uri_header.o domain.o domain_list.o preflight.o)
$(B)/tests/disk-files: tests/disk-files.c $(DISK_OBJS) include/disk.h | $(B)/tests
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) $(THREADS) -o $@ tests/disk-files.c $(DISK_OBJS) $(PKG_LIBS)

$(B)/tests/unit: tests/unit/*.c tests/unit/*.h $(CORE_OBJS) | $(B)/tests
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) -Itests/unit -o $@ tests/unit/*.c $(CORE_OBJS) \
	  $(PKG_LIBS) $(CHECK_LIBS)

FIXTURES := $(B)/fixtures

$(FIXTURES)/hives.stamp: $(B)/tests/mkhive tests/make-fixture-hives.sh testdata/hives/*.reg
	mkdir -p $(FIXTURES)/hives
	sh tests/make-fixture-hives.sh $(B)/tests/mkhive $(FIXTURES)/hives
	touch $@

$(FIXTURES)/images.stamp: $(FIXTURES)/hives.stamp tests/make-fixture-images.sh
	sh tests/with-accel.sh sh tests/make-fixture-images.sh $(FIXTURES)/hives $(FIXTURES)/images
	touch $@

# The same code built with AddressSanitizer and UndefinedBehaviorSanitizer:
# make check runs the unit tests and the hive-mode tests with it too, and
# any finding fails the run.
SAN := $(B)/san
# libFuzzer targets (tests/fuzz/fuzz_NAME.c)
FUZZ_TARGETS := size options hive logreplay parttable layers regf_count
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99 \
           UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=99

$(SAN)/%.o: src/%.c $(wildcard include/*.h) | $(SAN)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(SAN):
	mkdir -p $@

$(SAN)/netvsc-patch: $(SAN)/main.o $(CORE:%=$(SAN)/%.o)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) $(THREADS) -o $@ $^ $(PKG_LIBS)

$(SAN)/unit: tests/unit/*.c tests/unit/*.h $(CORE:%=$(SAN)/%.o)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) -Itests/unit -o $@ \
	  tests/unit/*.c $(CORE:%=$(SAN)/%.o) $(PKG_LIBS) $(CHECK_LIBS)

# The fuzz targets without libFuzzer (tests/fuzz/standalone.c gives them
# a main), built with the sanitizers: make check builds them, so they
# cannot rot, and t-fuzz-regressions replays testdata/fuzz/ through them.
$(SAN)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/standalone.c $(CORE:%=$(SAN)/%.o)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) $(PKG_CFLAGS) $(THREADS) -o $@ $< tests/fuzz/standalone.c \
	  $(CORE:%=$(SAN)/%.o) $(PKG_LIBS)

sanitize-check: $(SAN)/netvsc-patch $(SAN)/unit $(B)/tests/mklog $(FIXTURES)/hives.stamp \
                $(FUZZ_TARGETS:%=$(SAN)/fuzz_%)
	$(SAN_ENV) CK_FORK=no FIXTURES=$(abspath $(FIXTURES)) $(SAN)/unit
	$(SAN_ENV) FIXTURES=$(abspath $(FIXTURES)) NETVSC_PATCH=$(abspath $(SAN)/netvsc-patch) \
	  FUZZ_BIN=$(abspath $(SAN)) \
	  sh tests/run-tests.sh tests/t-hive.sh tests/t-set.sh tests/t-real-hives.sh tests/t-output.sh \
	    tests/t-fuzz-regressions.sh \
	    tests/t-hostfiles.sh

# Fuzzing (libFuzzer, clang): make fuzz [FUZZ_SECONDS=60].  Seeds are
# the fixture hives; inputs that crashed once live in testdata/fuzz/ and
# are replayed by make check (tests/t-fuzz-regressions.sh) under the
# sanitizers, without clang.
FUZZ := $(B)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC := clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

$(FUZZ)/fuzz_%: tests/fuzz/fuzz_%.c $(CORE:%=src/%.c) $(wildcard include/*.h)
	mkdir -p $(FUZZ)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(NP_CPPFLAGS) -std=gnu11 $(PKG_CFLAGS) -o $@ \
	  $< $(CORE:%=src/%.c) $(PKG_LIBS)

# defer.c embeds the --defer script templates (.incbin, paths relative to
# the top directory): rebuilt when they change.
$(B)/defer.o $(SAN)/defer.o $(FUZZ_TARGETS:%=$(FUZZ)/fuzz_%): src/defer.ps1.in src/defer.cmd.in

fuzz: $(FUZZ_TARGETS:%=$(FUZZ)/fuzz_%) $(FIXTURES)/hives.stamp
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ)/corpus/$$t $(FUZZ)/crashes/$$t testdata/fuzz/$$t; \
	  if [ $$t = hive ]; then cp $(FIXTURES)/hives/*.hive $(FUZZ)/corpus/$$t/; fi; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  $(FUZZ)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=262144 \
	    -artifact_prefix=$(FUZZ)/crashes/$$t/ -print_final_stats=1 -close_fd_mask=3 \
	    $(FUZZ)/corpus/$$t testdata/fuzz/$$t 2>&1 | grep -E 'stat::|ERROR|SUMMARY|Done' ; \
	done
	@n=$$(find $(FUZZ)/crashes -type f | wc -l); echo "fuzz: $$n crashing inputs in $(FUZZ)/crashes"; [ $$n -eq 0 ]

# Figures, not tests: see tests/bench.sh.
bench: deps all $(FIXTURES)/images.stamp
	bash tests/bench.sh

deps:
	sh scripts/install-deps.sh

check: deps all $(B)/tests/unit $(B)/tests/mklog $(B)/tests/disk-files $(FIXTURES)/hives.stamp $(FIXTURES)/images.stamp
	FIXTURES=$(abspath $(FIXTURES)) $(B)/tests/unit
	FIXTURES=$(abspath $(FIXTURES)) NETVSC_PATCH=$(abspath $(B)/netvsc-patch) \
	  sh tests/with-accel.sh sh tests/run-tests.sh
	$(MAKE) sanitize-check

demo: deps all $(B)/tests/mkhive
	sh tests/demo.sh

install: all
	install -D -m 755 $(B)/netvsc-patch $(DESTDIR)$(PREFIX)/bin/netvsc-patch
	install -D -m 644 $(B)/$(IMAGE_MODULE_SO) $(DESTDIR)$(PREFIX)/lib/netvsc-patch/$(IMAGE_MODULE_SO)
	install -D -m 644 $(B)/netvsc-patch.1 $(DESTDIR)$(PREFIX)/share/man/man1/netvsc-patch.1
	install -D -m 644 bash-completion/netvsc-patch \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/netvsc-patch

clean:
	rm -rf $(B)
