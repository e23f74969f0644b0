/*
 * fuzz_mbox.c: libFuzzer target for core/mbox_quote.c.
 *
 * Input: the first byte picks the piece size, the rest is a raw message
 * (CRLF).  It is converted to LF and quoted in pieces, framed the way the
 * store frames it (From_ line, final newline when missing, blank line),
 * then split by an independent mboxrd reader: exactly one message must
 * come back, byte-identical.  The envelope sender must be non-empty and
 * only 0x21-0x7E without angle brackets.
 * Build: clang -fsanitize=fuzzer,address,undefined -Icore ... ; for a
 * plain replay of files (no libFuzzer) link tests/fuzz/standalone.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbox_quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t crlf_ref(const char *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++)
		if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
			out[o++] = in[i];
	return o;
}

/* mboxrd reader: count From_ lines, unquote one '>' from ^>+From . */
static int split_one(const char *p, size_t n, char *out, size_t *on)
{
	size_t i = 0, eol, k;
	int msgs = 0;

	*on = 0;
	while (i < n) {
		for (eol = i; eol < n && p[eol] != '\n'; eol++)
			;
		eol = eol < n ? eol + 1 : n;
		if (eol - i >= 5 && !memcmp(p + i, "From ", 5)) {
			msgs++;
		} else {
			for (k = i; k < eol && p[k] == '>'; k++)
				;
			if (k > i && eol - k >= 5 && !memcmp(p + k, "From ", 5))
				i++;
			memcpy(out + *on, p + i, eol - i);
			*on += eol - i;
		}
		i = eol;
	}
	if (*on && out[*on - 1] == '\n')
		(*on)--;
	return msgs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_mbox_crlf c = { 0 };
	struct ms_mbox_quote q;
	char *lf, *ref, *mb, *back, sender[256];
	size_t piece, i, k, ln = 0, rn, mn, bn;
	const char *in;

	if (size < 1)
		return 0;
	piece = (size_t)data[0] % 23 + 1;
	in = (const char *)data + 1;
	size--;
	lf = malloc(size + 8);
	ref = malloc(size + 8);
	mb = malloc(2 * size + 64);
	back = malloc(2 * size + 64);
	for (i = 0; i < size; i += k) {
		k = size - i < piece ? size - i : piece;
		ln += ms_mbox_crlf_feed(&c, in + i, k, lf + ln);
	}
	ln += ms_mbox_crlf_flush(&c, lf + ln);
	rn = crlf_ref(in, size, ref);
	if (rn != ln || memcmp(lf, ref, ln))
		abort();
	if (ln && lf[ln - 1] != '\n')
		lf[ln++] = '\n'; /* the store adds it */
	mn = (size_t)sprintf(mb, "From x Mon Jan  1 00:00:00 2024\n");
	ms_mbox_quote_init(&q);
	for (i = 0; i < ln; i += k) {
		k = ln - i < piece ? ln - i : piece;
		mn += ms_mbox_quote_feed(&q, lf + i, k, mb + mn);
	}
	mn += ms_mbox_quote_flush(&q, mb + mn);
	mb[mn++] = '\n';
	if (split_one(mb, mn, back, &bn) != 1 || bn != ln ||
	    memcmp(back, lf, ln))
		abort();
	ms_mbox_sender(in, size, sender, sizeof sender);
	if (!sender[0])
		abort();
	for (i = 0; sender[i]; i++)
		if (sender[i] < 0x21 || sender[i] > 0x7e || sender[i] == '<' ||
		    sender[i] == '>')
			abort();
	free(lf);
	free(ref);
	free(mb);
	free(back);
	return 0;
}
