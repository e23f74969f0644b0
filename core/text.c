/*
 * text.c: parsing and quoting helpers shared by the protocol engines, the
 * stores and the state files (see text.h).  One implementation, so every
 * module rejects the same malformed numbers and never logs raw control
 * bytes from a server.
 */
#include "text.h"

#include <stdio.h>
#include <string.h>

int ms_text_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int ms_text_u64(const char *p, size_t n, uint64_t max, int canonical,
		uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (canonical && n > 1 && p[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

void ms_text_excerpt(char *dst, size_t cap, const char *src, size_t n)
{
	size_t o = 0;

	if (!cap)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		if (o + 8 > cap) {
			if (o + 4 <= cap) {
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\')
			dst[o++] = (char)c;
		else
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
	}
	dst[o] = '\0';
}

size_t ms_text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80) /* not a continuation */
			w++;
	return w;
}
