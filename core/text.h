/*
 * text.h: small pure helpers for bytes that come from outside (servers,
 * file names, state files): strict decimal and hex parsing, and printable
 * excerpts for log lines and error messages.
 */
#ifndef MS_TEXT_H
#define MS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit (either case), -1 if c is not one. */
int ms_text_hexval(char c);
/* Parse exactly n decimal digits (1..20, no sign) into *out, at most max.
 * canonical: also refuse leading zeros.  0, or -1 on anything else. */
int ms_text_u64(const char *p, size_t n, uint64_t max, int canonical,
		uint64_t *out);
/* Printable excerpt of n bytes into dst (cap > 0): printable ASCII as is,
 * everything else and '\\' as \xNN, cut with "..." when it does not fit.
 * Always NUL-terminated. */
void ms_text_excerpt(char *dst, size_t cap, const char *src, size_t n);
/* Columns a UTF-8 string takes on a terminal, counted as code points (not
 * bytes: "Entwürfe" is 8), for lining up -v output. */
size_t ms_text_width(const char *s);

#endif
