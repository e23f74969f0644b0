/*
 * fuzz_config.c: libFuzzer target for the configuration parser and
 * validator (core/config.c, config_value.c: inih underneath).
 *
 * Input: the bytes of a mailsync.ini, written to a private temporary file
 * (mode 0600, ours, so the permission checks pass) and loaded with
 * ms_config_load.  Nothing is executed: password_command runs only when a
 * secret is asked for, which this target never does.  Properties: no
 * crash or leak; a failure is MS_ECONFIG with a message naming the file;
 * a success has at least one account (else it must fail), every account
 * has a name, a source host and a store.
 * Build: clang -fsanitize=fuzzer,address,undefined -Icore ...; for a
 * plain replay of files (no libFuzzer) add tests/fuzz/standalone.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_config *c = NULL;
	struct ms_err e;
	int rc;

	if (fd < 0) {
		strcpy(path, "/tmp/mailsync-fuzz-config.XXXXXX");
		if ((fd = mkstemp(path)) < 0)
			abort();
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	ms_err_clear(&e);
	rc = ms_config_load(&c, path, &e);
	if (rc < 0) {
		if (c || rc != MS_ECONFIG ||
		    strncmp(e.msg, path, strlen(path)) != 0)
			abort();
		return 0;
	}
	if (!c || c->naccounts == 0)
		abort();
	for (size_t i = 0; i < c->naccounts; i++) {
		const struct ms_account *a = &c->accounts[i];

		if (!a->name || !a->name[0] || !a->host || !a->host[0] ||
		    !a->store_path)
			abort();
	}
	ms_config_free(c);
	return 0;
}
