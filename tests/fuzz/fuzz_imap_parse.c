/*
 * fuzz_imap_parse.c: libFuzzer target for the IMAP tokenizer.  The first
 * byte picks the piece size the input is fed in, so split handling is
 * fuzzed too; invariants (literal byte counts, depth, used <= len) abort.
 */
#include <stdint.h>
#include <stdlib.h>

#include "imap_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_imap_parser p;
	struct ms_imap_tok t;
	struct ms_err e;
	size_t piece, pos = 0, used;
	uint64_t lit = 0, got = 0;
	int r = 0, in_lit = 0;

	if (size < 1)
		return 0;
	piece = (size_t)data[0] % 17 + 1;
	data++, size--;
	ms_imap_parse_init(&p);
	p.max_literal = 1 << 20;
	p.max_line = 4096;
	p.max_token = 1024;
	while (pos < size && r >= 0) {
		size_t n = size - pos < piece ? size - pos : piece, off = 0;
		const char *in = (const char *)data + pos;

		while ((r = ms_imap_parse_next(&p, in + off, n - off, &used,
					       &t, &e)) > 0) {
			if (used > n - off || t.depth > p.max_depth)
				abort();
			off += used;
			if (t.type == MS_IMAP_T_LITERAL) {
				lit = t.num, got = 0, in_lit = 1;
			} else if (t.type == MS_IMAP_T_LITDATA) {
				if (!in_lit || t.n == 0)
					abort();
				got += t.n;
			} else if (t.type == MS_IMAP_T_LITEND) {
				if (!in_lit || got != lit)
					abort();
				in_lit = 0;
			} else if (in_lit) {
				abort();
			}
		}
		if (r == 0 && off + used != n)
			abort();
		pos += n;
	}
	ms_imap_parse_free(&p);
	return 0;
}
