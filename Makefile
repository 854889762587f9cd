# verbd — build, test, install.  Plain GNU make: one file, no generated
# build system, so `make` works on a base Debian image with gcc and make.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
# Where make install puts each kind of file.  The configuration (read by
# verbd.service) and the logrotate snippet go to /etc whatever the prefix,
# where the system looks for them; an install without root sets
# SYSCONFDIR too.
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/verbd
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
VERSION := 0.1.0

CFLAGS  ?= -O2 -g
override CFLAGS += -std=c17 -Wall -Wextra -Werror -D_GNU_SOURCE -DVERBD_VERSION='"$(VERSION)"' \
           -Iinclude -Ilib -MMD -MP
LDFLAGS ?=
LDLIBS  ?=
# WebDAV: XML bodies with libxml2, dead properties and locks in SQLite (or,
# shared by several nodes, PostgreSQL through libpq).
XML_CFLAGS := $(shell pkg-config --cflags libxml-2.0 2>/dev/null || echo -I/usr/include/libxml2)
# libpq: the WebDAV store several nodes share, in PostgreSQL.
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
override CFLAGS += $(XML_CFLAGS) $(PQ_CFLAGS)
# What libverbd.a needs at link time: in every link here and in verbd.pc.
# OpenSSL 3: TLS for the server and verbd probe's https.
# libcrypt (libxcrypt): password hashes for auth_basic.
# PCRE2 (8-bit): the regular expressions of rewrite; zlib and libbrotlienc:
# gzip and brotli on the fly (lib/mod/compress/); libnghttp2: HTTP/2 framing,
# HPACK and flow control.
LIB_DEPS := -lxml2 -lsqlite3 -lpq -lssl -lcrypto -lcrypt -lpcre2-8 -lbrotlienc -lz -lnghttp2
override LDLIBS += $(LIB_DEPS)

BUILD   ?= build
LIB_SRC := $(wildcard lib/*/*.c lib/mod/*/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
BIN_SRC := $(wildcard src/*.c)
BIN_OBJ := $(BIN_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLES    := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

LIBVERBD := $(BUILD)/libverbd.a
VERBD    := $(BUILD)/verbd

.PHONY: all run test test-asan test-tls-audit test-proxy-stream test-apps fuzz valgrind examples bench bench-smoke install deb clean

all: $(VERBD)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBVERBD): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(VERBD): $(BIN_OBJ) $(LIBVERBD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BIN_OBJ) $(LIBVERBD) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIBVERBD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIBVERBD) $(LDLIBS)

# Programs embedding libverbd; they see include/ only (no -Ilib).
examples: $(EXAMPLES)

$(BUILD)/examples/%: examples/%.c $(LIBVERBD)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Ilib,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(LIBVERBD) $(LDLIBS)

# Serve the welcome page in examples/www/ (or DIR=...) on 127.0.0.1:8080
# (or PORT=...).  DIR may contain spaces: make run DIR="/srv/my site".
DIR ?= examples/www
PORT ?= 8080
run:
	@scripts/deps.sh run
	@$(MAKE) --no-print-directory $(VERBD)
	$(VERBD) "$(DIR)" --listen 127.0.0.1:$(PORT)

# Seconds each fuzz harness runs inside `make test` (0: none).
FUZZ_SECONDS_IN_TEST ?= 30

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(VERBD) $(UNIT_BIN) $(EXAMPLES) $(FCGIRESP)
	@python3 tests/run.py --build $(BUILD) --fuzz-seconds $(FUZZ_SECONDS_IN_TEST)

# testssl.sh's full run against verbd over TLS, with an ECDSA P-256 and an
# RSA certificate; fails on any vulnerability or weak protocol or cipher
# (scripts/tls-audit.sh says what is allowed and why).  `make test` runs
# the short version.
test-tls-audit:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(VERBD)
	@scripts/tls-audit.sh --verbd $(VERBD)

# A 2 GiB upload and download through the proxy, with verbd's memory
# reported (make test runs the same with 256 MiB).
test-proxy-stream:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(VERBD)
	@cd tests/integration && VERBD_BIN=$(abspath $(VERBD)) VERBD_STREAM_BYTES=2147483648 \
	    python3 -m unittest -v test_proxy_stream

# DokuWiki, Debian's package, behind verbd and PHP-FPM with the config of
# docs/fastcgi.md: a page made through its edit form, its private
# directories refused (tests/integration/test_apps.py, which make test
# runs too).
test-apps:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(VERBD)
	@cd tests/integration && VERBD_BIN=$(abspath $(VERBD)) python3 -m unittest -v test_apps

# Every fuzz harness for FUZZ_SECONDS each; fails on any crash, leak or
# timeout (scripts/fuzz.sh).
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/deps.sh asan
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# Integration tests with the daemon under valgrind memcheck.
valgrind: $(VERBD) $(EXAMPLES)
	@scripts/valgrind.sh

# The same suite with AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan:
	@scripts/deps.sh asan
	@$(MAKE) --no-print-directory BUILD=build-asan CC=clang FUZZ_SECONDS_IN_TEST=0 \
	    CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" test

# Benchmark against nginx (and h2o, lighttpd when installed), side by side,
# as a reverse proxy against nginx and HAProxy, and in front of a FastCGI
# application against nginx, h2o and lighttpd:
# see docs/performance.md.  BENCH_ARGS passes options to bench/run.
# bench/ceiling.c is the benchmark's constant-answer reference, not a server;
# bench/proxy_ceiling.c the proxy scenarios' byte-pump reference, not a proxy.
# bench/stream_server.c embeds libverbd (include/ only) for the `stream`
# scenario: a C handler streaming 1 MiB to slow readers.
# bench/tls_handshake.c is the client of the tls-handshake scenario: a new
# connection and a full TLS handshake per request.
# bench/fcgi_ceiling.c the FastCGI scenarios' reference, not a gateway.
# bench/fcgi_responder.c is the FastCGI scenarios' application, a
# constant-answer FastCGI responder (tests/integration/test_fcgi_responder.py).
BENCH_ARGS ?=
CEILING  := $(BUILD)/bench-ceiling
PCEILING := $(BUILD)/bench-proxy-ceiling
STREAM   := $(BUILD)/bench-stream
TLSHAND  := $(BUILD)/bench-tls-handshake
FCGIRESP := $(BUILD)/bench-fcgi-responder
FCEILING := $(BUILD)/bench-fcgi-ceiling
bench: $(VERBD) $(CEILING) $(PCEILING) $(STREAM) $(TLSHAND) $(FCGIRESP) $(FCEILING)
	bench/run --verbd $(VERBD) --ceiling $(CEILING) --proxy-ceiling $(PCEILING) --stream-server $(STREAM) \
	    --tls-client $(TLSHAND) --fcgi-responder $(FCGIRESP) --fcgi-ceiling $(FCEILING) --docs docs/performance.md $(BENCH_ARGS)

# Every scenario for one second, 500 idle connections, 200 slow readers:
# checks that the benchmark works, not how fast verbd is.  Results go to
# build/bench-smoke/.
bench-smoke: $(VERBD) $(CEILING) $(PCEILING) $(STREAM) $(TLSHAND) $(FCGIRESP) $(FCEILING)
	bench/run --smoke --verbd $(VERBD) --ceiling $(CEILING) --proxy-ceiling $(PCEILING) --stream-server $(STREAM) \
	    --tls-client $(TLSHAND) --fcgi-responder $(FCGIRESP) --fcgi-ceiling $(FCEILING) $(BENCH_ARGS)

$(CEILING): bench/ceiling.c bench/event_loop.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $<

$(PCEILING): bench/proxy_ceiling.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $<

$(FCEILING): bench/fcgi_ceiling.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $<

$(FCGIRESP): bench/fcgi_responder.c bench/event_loop.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $<

$(TLSHAND): bench/tls_handshake.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $< -lssl -lcrypto

$(STREAM): bench/stream_server.c include/verbd.h $(LIBVERBD)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Ilib -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(LIBVERBD) $(LDLIBS)

# Only the static library is installed, so its own dependencies belong in
# Libs: `cc prog.c $(pkg-config --cflags --libs verbd)` links as it is.
# Rewritten whenever its text changes (another PREFIX), never stale.
$(BUILD)/verbd.pc: FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	    'Name: verbd' 'Description: HTTP/1.1 and HTTP/2 server library that knows its methods' \
	    'Version: $(VERSION)' 'Cflags: -I$${includedir}' \
	    'Libs: -L$${libdir} -lverbd $(LIB_DEPS)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

.PHONY: FORCE
FORCE:

# The unit names the installed paths; rewritten whenever they change.
$(BUILD)/verbd.service: dist/verbd.service.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    -e 's|@DOCDIR@|$(DOCDIR)|g' dist/verbd.service.in > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# Exactly these files (tests/integration/test_install.py lists them too).
install: $(VERBD) $(LIBVERBD) $(BUILD)/verbd.pc $(BUILD)/verbd.service
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 755 $(VERBD) $(DESTDIR)$(BINDIR)/verbd
	install -m 644 $(LIBVERBD) $(DESTDIR)$(PREFIX)/lib/libverbd.a
	install -m 644 $(BUILD)/verbd.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/verbd.pc
	install -m 644 include/verbd.h $(DESTDIR)$(PREFIX)/include/verbd.h
	install -m 644 man/verbd.8 $(DESTDIR)$(MANDIR)/man8/verbd.8
	install -m 644 man/verbd.conf.5 $(DESTDIR)$(MANDIR)/man5/verbd.conf.5
	install -m 644 verbd.conf.example $(DESTDIR)$(DOCDIR)/verbd.conf.example
	install -m 644 $(BUILD)/verbd.service $(DESTDIR)$(UNITDIR)/verbd.service
	install -m 644 dist/verbd.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/verbd

# A Debian package of the same files (prefix /usr) with dpkg-deb, into
# $(BUILD)/: scripts/deb.sh.
deb:
	@scripts/deb.sh --build $(BUILD) --version $(VERSION)

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(BIN_OBJ:.o=.d) $(EXAMPLES:=.d)
