# mailsync: build, test, demo.  See README.md for the two commands.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
MANDIR   = $(PREFIX)/share/man

CC      ?= cc
CFLAGS  ?= -O2 -g
LDFLAGS ?=
B       ?= build
PKGS     = libcurl openssl libarchive inih
WERROR  ?=

WARN    = -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
	  $(if $(WERROR),-Werror)
HARDEN  = -D_FORTIFY_SOURCE=2 -fstack-protector-strong
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN) $(PKG_CFLAGS) \
	     -Icore $(CFLAGS) -MMD -MP
LIBS = $(PKG_LIBS)

CORE_SRC := $(wildcard core/*.c)
CORE_OBJ := $(CORE_SRC:core/%.c=$(B)/core/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

SAN = -fsanitize=address,undefined -fno-sanitize-recover=all \
      -fno-omit-frame-pointer

.PHONY: all setup check check-only unit sanitize fuzz faults bench demo \
	install format clean lint-man

all: $(B)/mailsync

$(B)/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libmailsync.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/mailsync: cmd/mailsync.c $(B)/libmailsync.a
	$(CC) $(ALL_CFLAGS) -o $@ cmd/mailsync.c $(B)/libmailsync.a \
		$(LDFLAGS) $(LIBS)

$(B)/tests/%: tests/unit/%.c tests/unit/t.h $(B)/libmailsync.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(B)/libmailsync.a \
		$(LDFLAGS) $(LIBS)

unit: $(UNIT_BIN)

# Installs missing Debian packages (quiet when nothing is missing).
setup:
	@sh tests/setup.sh

# The README's test command: everything, on a fresh Debian machine.
check: setup
	$(MAKE) check-only

check-only: all unit
	MAILSYNC=$(CURDIR)/$(B)/mailsync UNITDIR=$(CURDIR)/$(B)/tests \
		sh tests/run.sh

# The whole suite under ASan+UBSan in its own build tree.
sanitize: setup
	$(MAKE) B=build-asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" \
		check-only

fuzz: setup
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

faults: setup all
	MAILSYNC=$(CURDIR)/$(B)/mailsync sh tests/run.sh --faults

bench: setup all
	MAILSYNC=$(CURDIR)/$(B)/mailsync sh tests/bench/run.sh

demo: setup all
	MAILSYNC=$(CURDIR)/$(B)/mailsync sh tests/demo.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(B)/mailsync $(DESTDIR)$(BINDIR)/mailsync
	install -m 0644 man/mailsync.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/mailsync.ini.5 $(DESTDIR)$(MANDIR)/man5/

lint-man:
	mandoc -Tlint -Wwarning man/mailsync.1 man/mailsync.ini.5

format:
	clang-format -i core/*.c core/*.h cmd/*.c tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build build-asan build-fuzz

-include $(CORE_OBJ:.o=.d)
