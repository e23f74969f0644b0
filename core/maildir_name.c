/*
 * maildir_name.c: Maildir file names, made and read back.
 *
 * The name carries the identity so that state can be rebuilt from the
 * store alone (DESIGN.md invariant 5); the format is in maildir_int.h.
 * Uniqueness does not rest on the clock: pid, 64 random bits and a
 * process-wide counter are in every name (F37, F39).  Reading is strict:
 * a malformed identity makes the file "not ours" rather than a wrong
 * record, and IMAP needs both U= and V= (mbsync writes a bare ,U= of its
 * own numbering, which must not be mistaken for a server UID).
 */
#include "maildir_int.h"
#include "text.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define ALL_FLAGS                                                              \
	(MS_F_SEEN | MS_F_ANSWERED | MS_F_FLAGGED | MS_F_DELETED | MS_F_DRAFT)

static uint64_t rnd64(void)
{
	static _Atomic uint64_t mix = 0x9e3779b97f4a7c15ULL;
	uint64_t r;
	ssize_t n;

	do
		n = getrandom(&r, sizeof r, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof r) /* no getrandom: still unique by Q */
		r = atomic_fetch_add(&mix, 0x9e3779b97f4a7c15ULL) ^
		    (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 40);
	return r;
}

void ms_maildir_host(char *out, size_t n)
{
	char h[256] = "";
	size_t j = 0;

	if (gethostname(h, sizeof h - 1) < 0 || !h[0])
		strcpy(h, "localhost");
	for (const unsigned char *p = (const void *)h; *p && j + 5 < n; p++) {
		if (*p == '/' || *p == ':' || *p == ',' || *p == '\\' ||
		    *p < 0x21 || *p > 0x7e)
			j += (size_t)snprintf(out + j, n - j, "\\%03o", *p);
		else
			out[j++] = (char)*p;
	}
	out[j] = '\0';
}

size_t ms_maildir_unique(const char *host, char *out, size_t n)
{
	static _Atomic unsigned long counter;
	struct timespec ts;
	int k;

	clock_gettime(CLOCK_REALTIME, &ts);
	k = snprintf(out, n, "%lld.M%06ldP%ldR%016llxQ%lu",
		     (long long)ts.tv_sec, ts.tv_nsec / 1000, (long)getpid(),
		     (unsigned long long)rnd64(),
		     atomic_fetch_add(&counter, 1) + 1);
	snprintf(out + k, n - (size_t)k, ".%s", host);
	return (size_t)k;
}

int ms_maildir_is_ours(const char *p)
{
	static const struct {
		const char *lit, *set;
		size_t len; /* 0: one or more */
	} step[] = {
	    {"", "0123456789", 0},  {".M", "0123456789", 0},
	    {"P", "0123456789", 0}, {"R", "0123456789abcdef", 16},
	    {"Q", "0123456789", 0},
	};
	size_t n;

	for (size_t i = 0; i < sizeof step / sizeof *step; i++) {
		n = strlen(step[i].lit);
		if (strncmp(p, step[i].lit, n) != 0)
			return 0;
		p += n;
		n = strspn(p, step[i].set);
		if (n == 0 || (step[i].len && n != step[i].len))
			return 0;
		p += n;
	}
	return *p == '.';
}

static void flag_letters(unsigned flags, char *out)
{
	if (flags & MS_F_DRAFT)
		*out++ = 'D';
	if (flags & MS_F_FLAGGED)
		*out++ = 'F';
	if (flags & MS_F_ANSWERED)
		*out++ = 'R';
	if (flags & MS_F_SEEN)
		*out++ = 'S';
	if (flags & MS_F_DELETED)
		*out++ = 'T';
	*out = '\0';
}

static unsigned letters_flags(const char *p)
{
	unsigned f = 0;

	for (; *p; p++)
		f |= *p == 'D'	 ? MS_F_DRAFT
		     : *p == 'F' ? MS_F_FLAGGED
		     : *p == 'R' ? MS_F_ANSWERED
		     : *p == 'S' ? MS_F_SEEN
		     : *p == 'T' ? MS_F_DELETED
				 : 0;
	return f;
}

static int uidl_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || (c && strchr("._=+-", c));
}

static void ident(int proto, const struct ms_msg *m, const char *acct,
		  char *out, size_t n)
{
	size_t j;

	out[0] = '\0';
	if (proto == MS_PROTO_POP3 && !m->uidl[0])
		return;
	/* the account first: two accounts may share one Maildir, and their
	 * servers may number alike (same UIDVALIDITY, same UIDL format) */
	j = acct && *acct ? (size_t)snprintf(out, n, ",A=%s", acct) : 0;
	if (j >= n)
		j = 0;
	out += j;
	n -= j;
	if (proto == MS_PROTO_POP3) {
		j = (size_t)snprintf(out, n, ",P=");
		for (const unsigned char *p = (const void *)m->uidl;
		     *p && j + 4 < n; p++) {
			if (uidl_char_ok(*p))
				out[j++] = (char)*p;
			else
				j += (size_t)snprintf(out + j, n - j, "%%%02X",
						      *p);
		}
		out[j] = '\0';
	} else {
		snprintf(out, n, ",U=%lu,V=%lu", (unsigned long)m->uid,
			 (unsigned long)m->uidvalidity);
	}
}

/* Over-long names (a POP3 UIDL full of escapes, a long account name)
 * drop the host, then the sizes, then the account (the file then counts
 * for every account, as before A= existed), and the identity last (the
 * copy is kept either way).  Returns 1 when the identity was dropped. */
int ms_maildir_final(char *out, size_t n, const char *unique, size_t hostpos,
		     int proto, const char *acct, const struct ms_msg *meta,
		     uint64_t bytes, uint64_t vsize, int *cur)
{
	char id[3 * MS_UIDL_MAX + 128], bare[3 * MS_UIDL_MAX + 40];
	char sz[80], info[16] = "", fl[8];
	const char *use;
	int k, try;

	ident(proto, meta, acct, id, sizeof id);
	ident(proto, meta, NULL, bare, sizeof bare);
	k = snprintf(sz, sizeof sz, ",S=%llu,W=%llu", (unsigned long long)bytes,
		     (unsigned long long)vsize);
	if (meta->size && meta->size != vsize)
		snprintf(sz + k, sizeof sz - (size_t)k, ",Z=%llu",
			 (unsigned long long)meta->size);
	*cur = (meta->flags & ALL_FLAGS) != 0;
	if (*cur) {
		flag_letters(meta->flags, fl);
		snprintf(info, sizeof info, ":2,%s", fl);
	}
	for (try = 0; try < 5; try++) {
		use = try < 3 ? id : try < 4 ? bare : "";
		k = snprintf(out, n, "%.*s%s%s%s",
			     (int)(try ? hostpos : strlen(unique)), unique,
			     try < 2 ? sz : "", use, info);
		if (k > 0 && (size_t)k < n && k <= 255)
			break;
	}
	return try >= 4 && id[0];
}

static int parse_num(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	return ms_text_u64(p, n, max, 0, out);
}


static int parse_uidl(const char *p, size_t n, char *out)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i];
		if (c == '%') {
			int h = i + 2 < n ? ms_text_hexval(p[i + 1]) : -1;
			int l = h >= 0 ? ms_text_hexval(p[i + 2]) : -1;
			if (l < 0)
				return -1;
			c = h << 4 | l;
			i += 2;
		} else if (!uidl_char_ok((unsigned char)c)) {
			return -1;
		}
		if (c < 0x21 || c > 0x7e || j >= MS_UIDL_MAX)
			return -1;
		out[j++] = (char)c;
	}
	out[j] = '\0';
	return j ? 0 : -1;
}

/* One ",K=value" field of the name (p after the ','); 0 or -1.  A= is
 * -1 when it names another account than acct (NULL: any). */
static int parse_field(const char *p, size_t n, const char *acct,
		       struct ms_msg *m, int seen[4], uint64_t *w, uint64_t *z)
{
	uint64_t v;

	if (n < 2 || p[1] != '=')
		return 0;
	switch (p[0]) {
	case 'A':
		if (seen[3]++ || n == 2)
			return -1;
		return acct && (strlen(acct) != n - 2 ||
				memcmp(acct, p + 2, n - 2) != 0) ? -1 : 0;
	case 'U':
		if (seen[0]++ || parse_num(p + 2, n - 2, UINT32_MAX, &v) || !v)
			return -1;
		m->uid = (uint32_t)v;
		return 0;
	case 'V':
		if (seen[1]++ || parse_num(p + 2, n - 2, UINT32_MAX, &v))
			return -1;
		m->uidvalidity = (uint32_t)v;
		return 0;
	case 'P':
		return seen[2]++ || parse_uidl(p + 2, n - 2, m->uidl) ? -1 : 0;
	case 'W':
		return parse_num(p + 2, n - 2, UINT64_MAX, w);
	case 'Z':
		return parse_num(p + 2, n - 2, UINT64_MAX, z);
	}
	return 0;
}

int ms_maildir_parse(const char *name, const char *acct, struct ms_msg *m)
{
	const char *colon = strchr(name, ':'), *p, *q, *end;
	int seen[4] = {0}, bad = 0;
	uint64_t w = 0, z = 0;

	memset(m, 0, sizeof *m);
	end = colon ? colon : name + strlen(name);
	if (colon && strncmp(colon, ":2,", 3) == 0)
		m->flags = letters_flags(colon + 3);
	for (p = memchr(name, ',', (size_t)(end - name)); p && !bad; p = q) {
		p++;
		q = memchr(p, ',', (size_t)(end - p));
		bad = parse_field(p, (size_t)((q ? q : end) - p), acct, m,
				  seen, &w, &z);
	}
	if (bad || !((seen[0] && seen[1] && !seen[2]) ||
		     (seen[2] && !seen[0] && !seen[1])))
		return -1;
	m->size = z ? z : w;
	return 0;
}

int ms_maildir_with_flags(char *out, size_t n, const char *name, unsigned flags,
			  int in_cur, int *cur)
{
	const char *colon = strchr(name, ':');
	char have[128] = {0}, info[64], fl[8];
	size_t j = 0, base = colon ? (size_t)(colon - name) : strlen(name);
	int k;

	flag_letters(flags, fl);
	for (const char *p = fl; *p; p++)
		have[(unsigned char)*p] = 1;
	if (colon && strncmp(colon, ":2,", 3) == 0)
		for (const char *p = colon + 3; *p; p++)
			if (((*p >= 'A' && *p <= 'Z') ||
			     (*p >= 'a' && *p <= 'z')) &&
			    !strchr("DFRST", *p))
				have[(unsigned char)*p] = 1; /* keywords */
	for (int c = 'A'; c <= 'z'; c++)
		if (have[c] && j < sizeof info - 1)
			info[j++] = (char)c;
	info[j] = '\0';
	*cur = in_cur || j > 0;
	k = snprintf(out, n, "%.*s%s%s", (int)base, name, *cur ? ":2," : "",
		     info);
	return k > 0 && (size_t)k < n ? 0 : -1;
}

int ms_maildir_relabel(char *out, size_t n, const char *name,
		       const struct ms_msg *m)
{
	const char *colon = strchr(name, ':'), *p, *q;
	const char *end = colon ? colon : name + strlen(name);
	size_t j;
	int k;

	/* the unique part, then every field but the identity */
	p = memchr(name, ',', (size_t)(end - name));
	j = (size_t)((p ? p : end) - name);
	if (j >= n)
		return -1;
	memcpy(out, name, j);
	for (; p; p = q) {
		q = memchr(p + 1, ',', (size_t)(end - p - 1));
		size_t len = (size_t)((q ? q : end) - p);
		if (len >= 3 && p[2] == '=' && strchr("UVP", p[1]))
			continue;
		if (j + len >= n)
			return -1;
		memcpy(out + j, p, len);
		j += len;
	}
	k = snprintf(out + j, n - j, ",U=%lu,V=%lu%s", (unsigned long)m->uid,
		     (unsigned long)m->uidvalidity, colon ? colon : "");
	return k > 0 && (size_t)k < n - j ? 0 : -1;
}
