/*
 * fuzz_pop3.c: libFuzzer target for core/pop3_parse.c.
 *
 * Input: the first byte picks the piece size the rest is fed in.  The
 * streaming multi-line reader must give exactly what a simple line-based
 * reference gives on the whole input (output bytes and bytes consumed),
 * whatever the split; every line also goes through the STAT/UIDL/LIST
 * parsers, and an accepted UIDL must be 1-70 bytes of 0x21-0x7E.
 * Build: clang -fsanitize=fuzzer,address,undefined -Icore ... ; for a
 * plain replay of files (no libFuzzer) link tests/fuzz/standalone.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: RFC 1939 section 3 on whole lines. */
static size_t reference(const char *in, size_t n, char *out, size_t *on,
			int *done)
{
	size_t i = 0, eol, len;

	*on = 0;
	*done = 0;
	while (i < n) {
		for (eol = i; eol < n && in[eol] != '\n'; eol++)
			;
		len = (eol < n ? eol + 1 : n) - i;
		if ((len == 2 && !memcmp(in + i, ".\n", 2)) ||
		    (len == 3 && !memcmp(in + i, ".\r\n", 3))) {
			*done = 1;
			return i + len;
		}
		if (eol == n && (len == 1 || len == 2) && in[i] == '.' &&
		    (len == 1 || in[i + 1] == '\r'))
			return n; /* held back: may become the terminator */
		if (len > 1 && in[i] == '.' && in[i + 1] == '.') {
			i++; /* stuffed; a lone unstuffed dot is kept */
			len--;
		}
		memcpy(out + *on, in + i, len);
		*on += len;
		i += len;
	}
	return n;
}

static void lines(const char *p, size_t n)
{
	char uidl[MS_UIDL_MAX + 1];
	const char *why, *nl;
	uint32_t num, count;
	uint64_t size;
	size_t len, i;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		len = nl ? (size_t)(nl - p) : n;
		ms_pop3_parse_stat(p, len, &count, &size, &why);
		ms_pop3_parse_list(p, len, &num, &size, &why);
		if (ms_pop3_parse_uidl(p, len, &num, uidl, &why) == 0) {
			if (!uidl[0] || strlen(uidl) > MS_UIDL_MAX || !num)
				abort();
			for (i = 0; uidl[i]; i++)
				if (uidl[i] < 0x21 || uidl[i] > 0x7e)
					abort();
		}
		if (!nl)
			break;
		p += len + 1;
		n -= len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_pop3_ml ml;
	const char *in;
	char *out, *ref, *o;
	size_t piece, pos = 0, used, on, olen = 0, rlen, rused;
	int rdone;

	if (size < 1)
		return 0;
	piece = (size_t)data[0] % 19 + 1;
	in = (const char *)data + 1;
	size--;
	out = malloc(size + 8);
	ref = malloc(size + 8);
	o = malloc(piece + 8);
	ms_pop3_ml_init(&ml);
	while (pos < size && !ms_pop3_ml_done(&ml)) {
		size_t k = size - pos < piece ? size - pos : piece;

		used = ms_pop3_ml_feed(&ml, in + pos, k, o, &on);
		if (used > k || on > k + 2 || (used < k &&
					       !ms_pop3_ml_done(&ml)))
			abort();
		memcpy(out + olen, o, on);
		olen += on;
		pos += used;
	}
	rused = reference(in, size, ref, &rlen, &rdone);
	if (rdone != ms_pop3_ml_done(&ml) || rused != pos || rlen != olen ||
	    memcmp(out, ref, olen) != 0)
		abort();
	lines(in, size);
	free(out);
	free(ref);
	free(o);
	return 0;
}
