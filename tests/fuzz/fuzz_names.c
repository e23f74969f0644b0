/*
 * fuzz_names.c: libFuzzer target for core/names.c.
 *
 * Input: first byte picks the delimiter ('/', '.', NIL or the byte
 * itself), the rest is the server's raw folder name.  Decoding and mapping
 * must never crash, and whatever is accepted must be safe: no "", "." or
 * ".." path component, no leading '/', no NUL or control byte, a state
 * file name without '/', and encode(decode(x)) == x.
 * Build: clang -fsanitize=fuzzer,address,undefined -Icore ... ; for a
 * plain replay of files (no libFuzzer) link tests/fuzz/standalone.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *p)
{
	const char *q;

	if (p[0] == '/')
		abort();
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			abort();
	while (*p) {
		q = strchr(p, '/');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			abort();
		if (!q)
			break;
		p = q + 1;
	}
}

static void check_local(const char *local)
{
	struct ms_err e;
	char *p = NULL, *st = NULL;

	if (!*local)
		abort();
	check_path(local);
	for (int l = MS_LAYOUT_VERBATIM; l <= MS_LAYOUT_MAILDIRPP; l++) {
		/* maildir++ may refuse what verbatim takes (one component
		 * of at most 255 bytes), but only with MS_EPROTO */
		int rc = ms_names_local_to_path(local, l, &p, &e);
		if (rc != 0 && (rc != MS_EPROTO || l == MS_LAYOUT_VERBATIM))
			abort();
		if (rc == 0)
			check_path(p);
		free(p);
	}
	if (ms_names_state_file(local, &st, &e) != 0 || strchr(st, '/') ||
	    !strcmp(st, ".") || !strcmp(st, ".."))
		abort();
	free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = {'/', '.', 0};
	struct ms_err e;
	char *raw, *dec = NULL, *enc = NULL, *local = NULL, delim;

	if (size < 1 || size > 8192)
		return 0;
	delim = data[0] < 3 ? delims[data[0]] : (char)data[0];
	if (!(raw = malloc(size)))
		return 0;
	memcpy(raw, data + 1, size - 1);
	raw[size - 1] = '\0';
	if (ms_names_mutf7_decode(raw, &dec, &e) == 0) {
		if (ms_names_mutf7_encode(dec, &enc, &e) != 0 ||
		    strcmp(enc, raw) != 0)
			abort();
		free(enc);
		free(dec);
	}
	if (ms_names_folder_to_local(raw, delim, &local, &e) == 0) {
		check_local(local);
		free(local);
	}
	/* also feed the bytes as an already-local name */
	if (ms_names_local_to_path(raw, MS_LAYOUT_MAILDIRPP, &local, &e) == 0) {
		check_path(local);
		free(local);
	}
	free(raw);
	return 0;
}
