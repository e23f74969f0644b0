/*
 * buf.c: bounded growable buffers (git strbuf, curl dynbuf).
 *
 * An empty buffer points at a shared static "" so that init cannot fail;
 * the first growth allocates.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char empty[1];

void ms_buf_init(struct ms_buf *b, size_t max)
{
	b->s = empty;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : SIZE_MAX / 2;
}

void ms_buf_free(struct ms_buf *b)
{
	if (b->cap)
		free(b->s);
	ms_buf_init(b, b->max);
}

void ms_buf_wipe(struct ms_buf *b)
{
	if (b->cap)
		explicit_bzero(b->s, b->cap);
	ms_buf_free(b);
}

void ms_buf_reset(struct ms_buf *b)
{
	b->len = 0;
	if (b->cap)
		b->s[0] = '\0';
}

int ms_buf_grow(struct ms_buf *b, size_t n, struct ms_err *e)
{
	size_t need, ncap;
	char *p;

	if (n > b->max - b->len)
		return ms_err_set(e, MS_EPROTO,
				  "buffer limit of %zu bytes exceeded", b->max);
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	p = b->cap ? realloc(b->s, ncap) : malloc(ncap);
	if (!p)
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	if (!b->cap)
		p[0] = '\0';
	b->s = p;
	b->cap = ncap;
	return 0;
}

int ms_buf_add(struct ms_buf *b, const void *p, size_t n, struct ms_err *e)
{
	int rc;

	if ((rc = ms_buf_grow(b, n, e)) < 0)
		return rc;
	if (n)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

int ms_buf_adds(struct ms_buf *b, const char *s, struct ms_err *e)
{
	return ms_buf_add(b, s, strlen(s), e);
}

int ms_buf_addc(struct ms_buf *b, char c, struct ms_err *e)
{
	return ms_buf_add(b, &c, 1, e);
}

int ms_buf_addf(struct ms_buf *b, struct ms_err *e, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ms_err_set(e, MS_EINTERNAL, "bad format");
	if ((rc = ms_buf_grow(b, (size_t)n, e)) < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void ms_buf_consume(struct ms_buf *b, size_t n)
{
	if (n >= b->len) {
		ms_buf_reset(b);
		return;
	}
	memmove(b->s, b->s + n, b->len - n);
	b->len -= n;
	b->s[b->len] = '\0';
}

char *ms_buf_detach(struct ms_buf *b, size_t *len)
{
	char *p;

	if (len)
		*len = b->len;
	if (!b->cap) {
		p = calloc(1, 1);
	} else {
		p = b->s;
	}
	ms_buf_init(b, b->max);
	return p;
}
