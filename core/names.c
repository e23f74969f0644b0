/*
 * names.c: folder names, from the server's bytes to safe local paths.
 *
 * Pure code, fuzzed (tests/fuzz/fuzz_names.c).  The server's name is
 * decoded from modified UTF-7 strictly: every non-canonical form is
 * rejected, so each local name has exactly one server spelling and
 * encode(decode(x)) == x.  Levels are then checked and escaped with '%'
 * (which is itself escaped), so the mapping is injective and no level can
 * be "", ".", "..", hidden, or carry a control character.  Case is kept:
 * names differing only in case are different folders on Linux, except
 * that any spelling of INBOX (case-insensitive in IMAP) becomes "INBOX".
 *
 * Escapes, stable and documented in mailsync.ini(5): '%' -> %25, '/'
 * inside a level -> %2F, a leading '.' -> %2E (levels over 255 bytes and
 * names over 1024 bytes are refused); verbatim layout: a level
 * named cur/new/tmp -> %63ur/%6Eew/%74mp; maildir++: '.' -> %2E and a
 * top folder "mailsync-removed" -> .%6Dailsync-removed (the quarantine).
 */
#include "names.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

#define LEVEL_MAX 255
/* a whole folder name, escaped: keeps ROOT/NAME/cur/FILE under PATH_MAX */
#define NAME_TOTAL_MAX 1024

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* A one-line, printable rendition of a hostile name for messages. */
static const char *show(const char *s, char *buf, size_t n)
{
	size_t j = 0;

	for (; *s && j + 8 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			j += (size_t)snprintf(buf + j, n - j, "\\x%02x", c);
		else
			buf[j++] = (char)c;
	}
	if (*s && j + 4 <= n) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = '\0';
	return buf;
}

static int reject(struct ms_err *e, const char *name, const char *why)
{
	char b[200];

	return ms_err_set(e, MS_EPROTO, "folder \"%s\": %s",
			  show(name, b, sizeof b), why);
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * One base64 run starting at s (after '&'), up to and including its '-'.
 * Appends UTF-8 to o at *j; returns the bytes consumed or NULL-ish -1 with
 * *why set.
 */
static long decode_run(const char *s, char *o, size_t *j, const char **why)
{
	uint32_t bits = 0, hi = 0, u;
	unsigned nbits = 0;
	long i = 0;
	int v;

	for (; (v = b64val((unsigned char)s[i])) >= 0; i++) {
		bits = bits << 6 | (uint32_t)v;
		if ((nbits += 6) < 16)
			continue;
		nbits -= 16;
		u = bits >> nbits & 0xffff;
		bits &= (1u << nbits) - 1;
		if (hi && (u < 0xdc00 || u > 0xdfff))
			return *why = "unpaired UTF-16 surrogate", -1;
		if (hi) {
			*j += put_utf8(o + *j, 0x10000 + ((hi - 0xd800) << 10) +
						   (u - 0xdc00));
			hi = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			hi = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			return *why = "unpaired UTF-16 surrogate", -1;
		} else if (u == 0) {
			return *why = "encoded NUL character", -1;
		} else if (u >= 0x20 && u <= 0x7e) {
			return *why = "printable ASCII inside base64 "
				      "(non-canonical modified UTF-7)",
			       -1;
		} else {
			*j += put_utf8(o + *j, u);
		}
	}
	if (s[i] != '-')
		return *why = s[i] ? "invalid character in modified base64"
				   : "modified base64 not terminated by '-'",
		       -1;
	if (hi)
		return *why = "unpaired UTF-16 surrogate", -1;
	if (nbits >= 6 || bits != 0)
		return *why = "non-zero or excess base64 padding bits", -1;
	return i + 1;
}

int ms_names_mutf7_decode(const char *in, char **out, struct ms_err *e)
{
	size_t n = strlen(in), i = 0, j = 0, run_end = (size_t)-1;
	const char *why = NULL;
	char *o;
	long used;

	*out = NULL;
	if (!(o = malloc(2 * n + 1)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	while (in[i]) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c > 0x7e) {
			why = "8-bit or control byte in a modified UTF-7 name";
			break;
		}
		if (c != '&') {
			o[j++] = (char)c;
			i++;
		} else if (in[i + 1] == '-') {
			o[j++] = '&';
			i += 2;
		} else if (i == run_end) {
			why = "two adjacent base64 runs (non-canonical)";
			break;
		} else if (in[i + 1] == '\0') {
			why = "modified base64 not terminated by '-'";
			break;
		} else {
			if ((used = decode_run(in + i + 1, o, &j, &why)) < 0)
				break;
			i += 1 + (size_t)used;
			run_end = i;
		}
	}
	if (why) {
		free(o);
		return reject(e, in, why);
	}
	o[j] = '\0';
	*out = o;
	return 0;
}

/* Strict UTF-8: no overlong forms, surrogates or code points > 10FFFF. */
static int utf8_next(const unsigned char *s, size_t *i, uint32_t *cp)
{
	unsigned char c = s[*i];
	uint32_t min, v;
	int len, k;

	if (c < 0x80) {
		*cp = c;
		(*i)++;
		return 0;
	}
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80, v = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800, v = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000, v = c & 0x07;
	else
		return -1;
	for (k = 1; k < len; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		v = v << 6 | (s[*i + k] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*cp = v;
	*i += (size_t)len;
	return 0;
}

static int encode_run(const unsigned char *s, size_t *i, struct ms_buf *b,
		      struct ms_err *e)
{
	uint32_t bits = 0, cp, u[2];
	unsigned nbits = 0;
	int rc = ms_buf_addc(b, '&', e), k, nu;

	while (rc == 0 && s[*i] && (s[*i] < 0x20 || s[*i] > 0x7e)) {
		if (utf8_next(s, i, &cp) < 0)
			return ms_err_set(e, MS_EPROTO,
					  "folder name is not valid UTF-8");
		nu = 1;
		u[0] = cp;
		if (cp >= 0x10000) {
			u[0] = 0xd800 + ((cp - 0x10000) >> 10);
			u[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			nu = 2;
		}
		for (k = 0; k < nu; k++) {
			bits = bits << 16 | u[k];
			nbits += 16;
			while (rc == 0 && nbits >= 6) {
				nbits -= 6;
				rc = ms_buf_addc(b, b64[bits >> nbits & 63], e);
			}
			bits &= (1u << nbits) - 1;
		}
	}
	if (rc == 0 && nbits)
		rc = ms_buf_addc(b, b64[bits << (6 - nbits) & 63], e);
	return rc ? rc : ms_buf_addc(b, '-', e);
}

int ms_names_mutf7_encode(const char *in, char **out, struct ms_err *e)
{
	const unsigned char *s = (const unsigned char *)in;
	struct ms_buf b;
	size_t i = 0;
	int rc = 0;

	*out = NULL;
	ms_buf_init(&b, 0);
	while (rc == 0 && s[i]) {
		if (s[i] == '&') {
			rc = ms_buf_add(&b, "&-", 2, e);
			i++;
		} else if (s[i] >= 0x20 && s[i] <= 0x7e) {
			rc = ms_buf_addc(&b, (char)s[i++], e);
		} else {
			rc = encode_run(s, &i, &b, e);
		}
	}
	if (rc < 0) {
		ms_buf_free(&b);
		return rc;
	}
	*out = ms_buf_detach(&b, NULL);
	return 0;
}

/* Why a level (len bytes at p) must be skipped, or NULL. */
static const char *bad_level(const char *p, size_t len)
{
	if (len == 0)
		return "empty hierarchy level";
	if ((len == 1 && p[0] == '.') || (len == 2 && !memcmp(p, "..", 2)))
		return "\".\" or \"..\" as a hierarchy level";
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)p[k];
		if (c < 0x20 || c == 0x7f)
			return "control character (CR, LF, ...) in the name";
	}
	return NULL;
}

static int add_level(struct ms_buf *b, const char *p, size_t len,
		     const char **why, struct ms_err *e)
{
	size_t start = b->len;
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < len; k++) {
		if (p[k] == '%')
			rc = ms_buf_add(b, "%25", 3, e);
		else if (p[k] == '/')
			rc = ms_buf_add(b, "%2F", 3, e);
		else if (k == 0 && p[k] == '.')
			rc = ms_buf_add(b, "%2E", 3, e);
		else
			rc = ms_buf_addc(b, p[k], e);
	}
	if (rc == 0 && b->len - start > LEVEL_MAX)
		*why = "hierarchy level longer than 255 bytes";
	return rc;
}

static int split_levels(const char *u, char delim, struct ms_buf *b,
			const char **why, struct ms_err *e)
{
	const char *p = u, *q;
	int rc = 0;

	if (strcasecmp(u, "INBOX") == 0)
		return ms_buf_adds(b, "INBOX", e);
	while (rc == 0 && !*why) {
		q = delim ? strchr(p, delim) : NULL;
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if ((*why = bad_level(p, len)))
			break;
		if (p != u)
			rc = ms_buf_addc(b, '/', e);
		if (rc == 0)
			rc = add_level(b, p, len, why, e);
		if (!q)
			break;
		p = q + 1;
	}
	return rc;
}

int ms_names_folder_to_local(const char *raw, char delim, char **out,
			     struct ms_err *e)
{
	unsigned char d = (unsigned char)delim;
	const char *why = NULL;
	struct ms_buf b;
	char *u = NULL;
	int rc;

	*out = NULL;
	ms_buf_init(&b, 0);
	if (d && (d < 0x20 || d >= 0x7f || d == '&')) {
		rc = reject(e, raw, "unsupported hierarchy delimiter");
		goto out;
	}
	if ((rc = ms_names_mutf7_decode(raw, &u, e)) < 0)
		goto out;
	if (!*u)
		why = "empty folder name";
	else
		rc = split_levels(u, delim, &b, &why, e);
	if (rc == 0 && !why && b.len > NAME_TOTAL_MAX)
		why = "folder name longer than 1024 bytes";
	if (rc == 0 && why)
		rc = reject(e, raw, why);
	if (rc == 0)
		*out = ms_buf_detach(&b, NULL);
out:
	ms_buf_free(&b);
	free(u);
	return rc;
}

/* Is the store folder name well formed (as folder_to_local makes it)? */
static const char *bad_local(const char *folder)
{
	const char *p = folder, *q, *why;

	for (;;) {
		q = strchr(p, '/');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if ((why = bad_level(p, len)))
			return why;
		if (p[0] == '.')
			return "hidden (leading '.') hierarchy level";
		if (len > LEVEL_MAX)
			return "hierarchy level longer than 255 bytes";
		if (!q)
			return NULL;
		p = q + 1;
	}
}

static int verbatim_path(const char *folder, struct ms_buf *b, struct ms_err *e)
{
	static const char *const esc[][2] = {
	    {"cur", "%63ur"},
	    {"new", "%6Eew"},
	    {"tmp", "%74mp"},
	};
	const char *p = folder, *q;
	int rc = 0;

	while (rc == 0) {
		q = strchr(p, '/');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		const char *rep = NULL;
		for (size_t k = 0; k < 3; k++)
			if (len == 3 && !memcmp(p, esc[k][0], 3))
				rep = esc[k][1];
		if (p != folder)
			rc = ms_buf_addc(b, '/', e);
		if (rc == 0)
			rc = rep ? ms_buf_adds(b, rep, e)
				 : ms_buf_add(b, p, len, e);
		if (!q)
			break;
		p = q + 1;
	}
	return rc;
}

static int maildirpp_path(const char *folder, struct ms_buf *b,
			  const char **why, struct ms_err *e)
{
	int rc = 0;

	if (strcmp(folder, "INBOX") == 0)
		return 0;
	if (strcmp(folder, "mailsync-removed") == 0)
		return ms_buf_adds(b, ".%6Dailsync-removed", e);
	for (const char *p = folder; rc == 0 && *p; p++) {
		if (p == folder || *p == '/')
			rc = ms_buf_addc(b, '.', e);
		if (rc == 0 && *p == '.')
			rc = ms_buf_add(b, "%2E", 3, e);
		else if (rc == 0 && *p != '/')
			rc = ms_buf_addc(b, *p, e);
	}
	if (rc == 0 && b->len > LEVEL_MAX)
		*why = "maildir++ folder directory longer than 255 bytes";
	return rc;
}

int ms_names_local_to_path(const char *folder, enum ms_layout layout,
			   char **out, struct ms_err *e)
{
	const char *why = bad_local(folder);
	struct ms_buf b;
	int rc = 0;

	*out = NULL;
	if (why)
		return reject(e, folder, why);
	ms_buf_init(&b, 0);
	if (layout == MS_LAYOUT_MAILDIRPP)
		rc = maildirpp_path(folder, &b, &why, e);
	else
		rc = verbatim_path(folder, &b, e);
	if (rc == 0 && why)
		rc = reject(e, folder, why);
	if (rc == 0)
		*out = ms_buf_detach(&b, NULL);
	ms_buf_free(&b);
	return rc;
}

#define STATE_NAME_MAX 200
#define STATE_NAME_KEEP 180

/* FNV-1a: only to keep over-long state file names distinct. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

int ms_names_state_file(const char *folder, char **out, struct ms_err *e)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t keep = 0;
	struct ms_buf b;
	int rc = 0;

	*out = NULL;
	if (!*folder || !strcmp(folder, ".") || !strcmp(folder, ".."))
		return reject(e, folder, "not a valid folder name");
	ms_buf_init(&b, 0);
	for (const unsigned char *p = (const void *)folder; rc == 0 && *p;
	     p++) {
		if (b.len <= STATE_NAME_KEEP)
			keep = b.len;
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		    *p == '-') {
			rc = ms_buf_addc(&b, (char)*p, e);
		} else {
			char x[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			rc = ms_buf_add(&b, x, 3, e);
		}
	}
	/* too long for a file name: a prefix plus a hash of the whole;
	 * '~' never occurs in the plain encoding, so the forms cannot meet */
	if (rc == 0 && b.len > STATE_NAME_MAX) {
		b.len = keep;
		rc = ms_buf_addf(&b, e, "~%016llx",
				 (unsigned long long)fnv1a(folder));
	}
	if (rc == 0)
		*out = ms_buf_detach(&b, NULL);
	ms_buf_free(&b);
	return rc;
}
