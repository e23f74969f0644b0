/*
 * state_fmt.c: the two text formats of a folder's state.
 *
 * The snapshot (F.state) is a header, the records and a trailer with the
 * record count and a 64-bit FNV-1a checksum of every byte before it; the
 * journal (F.journal) is a line naming the account and folder, then one
 * change per line.  Both parsers trust nothing: every number, UIDL, line
 * length, the order of UID ranges and the checksum are checked, and
 * anything odd makes the state BAD (rebuilt from the store by the
 * engine), never "nothing fetched yet".  No I/O here, so the fuzzer
 * reaches all of it.  The formats are documented in DESIGN.md.
 */
#include "state_int.h"
#include "text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SNAP_MAGIC "mailsync-state 1"
#define JNL_MAGIC "mailsync-journal 1"
#define SNAP_LINE_MAX 16384 /* header values are percent-encoded names */
#define JNL_LINE_MAX 256    /* the longest op is "+p" + UIDL + 2 numbers */
#define WRAP 76		    /* "u" lines are wrapped to this width */
#define fnv ms_state_fnv
#define FNV0 MS_STATE_FNV0

/* The line reader of both parsers. */
struct rd {
	const char *p;
	size_t n, pos, max;
};

static const char *proto_name(int proto)
{
	return proto == MS_PROTO_POP3 ? "pop3" : "imap";
}

/* ---- small validators ---- */

/* Canonical decimal (no sign, no leading zero), at most max. */
static int num(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	return ms_text_u64(p, n, max, 1, out);
}


/* Header values: bytes 0x21-0x7E except '%' as they are, others %XX. */
static int pct_add(struct ms_buf *b, const char *v, struct ms_err *e)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	int rc = 0;

	for (p = (const unsigned char *)v; *p && rc == 0; p++) {
		char x[3] = {'%', hex[*p >> 4], hex[*p & 15]};

		if (*p >= 0x21 && *p <= 0x7e && *p != '%')
			rc = ms_buf_addc(b, (char)*p, e);
		else
			rc = ms_buf_add(b, x, 3, e);
	}
	return rc;
}

/* 0 and *out (caller frees), 1 malformed, MS_EINTERNAL. */
static int pct_decode(const char *v, size_t n, char **out)
{
	char *d = malloc(n + 1);
	size_t i, k = 0;

	if (!d)
		return MS_EINTERNAL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '%') {
			int h1, h2;

			if (n - i < 3)
				goto bad;
			h1 = ms_text_hexval(v[i + 1]);
			h2 = ms_text_hexval(v[i + 2]);
			if (h1 < 0 || h2 < 0 || (h1 | h2) == 0)
				goto bad;
			c = (unsigned char)(h1 * 16 + h2);
			i += 2;
		} else if (c < 0x21 || c > 0x7e) {
			goto bad;
		}
		d[k++] = (char)c;
	}
	d[k] = '\0';
	*out = d;
	return 0;
bad:
	free(d);
	return 1;
}

/* Journal id: which account and folder a journal belongs to.  The host
 * is compared case-insensitively, so it is hashed in lower case. */
static uint64_t ident(const struct ms_state *s)
{
	const char *f[] = {proto_name(s->proto), s->account, s->host, s->user,
			   s->folder};
	uint64_t h = FNV0;
	size_t i;

	for (i = 0; i < sizeof f / sizeof f[0]; i++) {
		const char *p = f[i] ? f[i] : "";

		for (; *p; p++) {
			char c = *p;

			if (i == 2 && c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			h = fnv(h, &c, 1);
		}
		h = fnv(h, "", 1);
	}
	return h;
}

static int hex64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n != 16)
		return -1;
	for (i = 0; i < n; i++) {
		int d = ms_text_hexval(p[i]);

		if (d < 0 || (p[i] >= 'A' && p[i] <= 'F'))
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

static int ieq(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = *a, y = *b;

		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
		if (!x)
			return 1;
	}
}

/* ---- reading lines and fields ---- */

/* 1: a line (without its '\n'); 0: the end; -1: a last line without '\n'
 * (a torn write); -2: a line longer than max. */
static int rd_line(struct rd *r, const char **line, size_t *len)
{
	size_t rest = r->n - r->pos;
	size_t lim = rest < r->max + 1 ? rest : r->max + 1;
	const char *nl;

	if (!rest)
		return 0;
	nl = memchr(r->p + r->pos, '\n', lim);
	if (!nl)
		return rest > r->max ? -2 : -1;
	*line = r->p + r->pos;
	*len = (size_t)(nl - *line);
	r->pos += *len + 1;
	return 1;
}

#define NFIELDS 5
struct fields {
	const char *p[NFIELDS];
	size_t n[NFIELDS];
};

/* Split at single spaces: the number of fields, or -1 for an empty field
 * or too many. */
static int split(const char *line, size_t len, struct fields *f)
{
	size_t i, start = 0;
	int count = 0;

	for (i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (i == start || count == NFIELDS)
			return -1;
		f->p[count] = line + start;
		f->n[count++] = i - start;
		start = i + 1;
	}
	return count;
}

static int is(const struct fields *f, int i, const char *lit)
{
	size_t n = strlen(lit);

	return f->n[i] == n && memcmp(f->p[i], lit, n) == 0;
}

/* ---- the snapshot ---- */

/* An identity field: take it when unknown, else it must match. */
static int adopt(char **field, const char *v, size_t n, int ci,
		 const char *foreign, const char **why)
{
	char *d;
	int rc = pct_decode(v, n, &d), same;

	if (rc) {
		*why = "bad header encoding";
		return rc;
	}
	if (!*field) {
		*field = d;
		return 0;
	}
	same = ci ? ieq(*field, d) : strcmp(*field, d) == 0;
	free(d);
	if (same)
		return 0;
	*why = foreign;
	return 1;
}

static int hdr_proto(struct ms_state *s, const char *v, size_t n,
		     const char **why)
{
	int p = 0;

	if (n == 4 && !memcmp(v, "imap", 4))
		p = MS_PROTO_IMAP;
	else if (n == 4 && !memcmp(v, "pop3", 4))
		p = MS_PROTO_POP3;
	*why = p ? "written for the other protocol (foreign)" : "bad proto";
	return p && ms_state_take_proto(s, p) ? 0 : 1;
}

static const char *const hkeys[] = {
    "proto",	   "account", "host",	"user",	   "folder",
    "uidvalidity", "uidnext", "modseq", "lastrun", "count",
};

static int parse_header(struct ms_state *s, struct rd *r, uint64_t *count,
			const char **why)
{
	char **ids[] = {NULL, &s->account, &s->host, &s->user, &s->folder};
	static const char *const foreign[] = {
	    NULL, "written for another account (foreign)",
	    "written for another host (foreign)",
	    "written for another user (foreign)",
	    "written for another folder (foreign)"};
	const uint64_t max[] = {0,	   0,	       0,	   0,
				0,	   UINT32_MAX, UINT32_MAX, UINT64_MAX,
				INT64_MAX, UINT64_MAX};
	uint64_t v[10];
	const char *line;
	size_t k, kl, len;
	int rc;

	*why = "truncated";
	if (rd_line(r, &line, &len) != 1)
		return 1;
	if (len != strlen(SNAP_MAGIC) || memcmp(line, SNAP_MAGIC, len)) {
		*why = len > 15 && !memcmp(line, "mailsync-state ", 15)
			   ? "unsupported version"
			   : "not a mailsync state file";
		return 1;
	}
	for (k = 0; k < 10; k++) {
		kl = strlen(hkeys[k]);
		*why = "bad header";
		if (rd_line(r, &line, &len) != 1 || len < kl + 1 ||
		    memcmp(line, hkeys[k], kl) || line[kl] != ' ')
			return 1;
		line += kl + 1;
		len -= kl + 1;
		if (k == 0)
			rc = hdr_proto(s, line, len, why);
		else if (k <= 4)
			rc = adopt(ids[k], line, len, k == 2, foreign[k], why);
		else
			rc = num(line, len, max[k], &v[k]) ? 1 : 0;
		if (rc)
			return rc;
	}
	s->uidvalidity = (uint32_t)v[5];
	s->uidnext = (uint32_t)v[6];
	s->modseq = v[7];
	s->lastrun = (int64_t)v[8];
	*count = v[9];
	return 0;
}

/* "u 1-500,502,510-700": ascending, disjoint. */
static int parse_ranges(struct ms_state *s, const char *p, size_t n,
			const char **why)
{
	size_t i = 0, j;
	int rc;

	*why = "bad UID range";
	if (s->proto != MS_PROTO_IMAP)
		return 1;
	for (;;) {
		const char *d;
		uint64_t lo, hi;

		for (j = i; j < n && p[j] != ','; j++)
			;
		d = memchr(p + i, '-', j - i);
		if (d ? num(p + i, (size_t)(d - p) - i, UINT32_MAX, &lo) ||
			    num(d + 1, j - (size_t)(d - p) - 1, UINT32_MAX, &hi)
		      : num(p + i, j - i, UINT32_MAX, &lo))
			return 1;
		if (!d)
			hi = lo;
		if (lo == 0) /* UID 0 names no message */
			return 1;
		if ((rc = ms_uidset_append(&s->uids, (uint32_t)lo, (uint32_t)hi,
					   NULL)) != 0)
			return rc;
		if (j == n)
			return 0;
		i = j + 1;
	}
}

/* "p UIDL SIZE FIRST_SEEN" */
static int parse_pop(struct ms_state *s, const char *line, size_t len,
		     const char **why)
{
	struct fields f;
	uint64_t size, t;
	int dup;

	*why = "bad UIDL record";
	if (s->proto != MS_PROTO_POP3 || split(line, len, &f) != 4 ||
	    !ms_state_uidl_ok(f.p[1], f.n[1]) ||
	    num(f.p[2], f.n[2], UINT64_MAX, &size) ||
	    num(f.p[3], f.n[3], INT64_MAX, &t))
		return 1;
	if (ms_state_uidl_put(s, f.p[1], f.n[1], size, (int64_t)t, &dup) < 0)
		return MS_EINTERNAL;
	*why = "duplicate UIDL record";
	return dup;
}

static int parse_snapshot(struct ms_state *s, const char *p, size_t n,
			  const char **why)
{
	struct rd r = {p, n, 0, SNAP_LINE_MAX};
	uint64_t count, tcount, sum;
	struct fields f;
	const char *line;
	size_t len, at;
	int rc;

	if ((rc = parse_header(s, &r, &count, why)) != 0)
		return rc;
	for (;;) {
		at = r.pos;
		rc = rd_line(&r, &line, &len);
		*why = rc == -2 ? "line too long" : "truncated (no trailer)";
		if (rc != 1)
			return 1;
		if (len > 4 && !memcmp(line, "end ", 4))
			break;
		*why = "bad record";
		if (len > 2 && line[0] == 'u' && line[1] == ' ')
			rc = parse_ranges(s, line + 2, len - 2, why);
		else if (len > 2 && line[0] == 'p' && line[1] == ' ')
			rc = parse_pop(s, line, len, why);
		else
			rc = 1;
		if (rc)
			return rc;
	}
	*why = "bad trailer";
	if (split(line, len, &f) != 3 ||
	    num(f.p[1], f.n[1], UINT64_MAX, &tcount) ||
	    hex64(f.p[2], f.n[2], &sum))
		return 1;
	*why = "data after the trailer";
	if (r.pos != n)
		return 1;
	*why = "checksum mismatch (corrupt)";
	if (sum != fnv(FNV0, p, at))
		return 1;
	*why = "record count mismatch";
	return count != ms_state_nrec(s) || tcount != count;
}

/* Does the last line carry the checksum of everything before it?  Only
 * to name the damage: a bit flipped in the header should be reported as
 * corruption, not as a foreign account. */
static int sum_ok(const char *p, size_t n)
{
	uint64_t c, sum;
	struct fields f;
	size_t start;

	if (n < 2 || p[n - 1] != '\n')
		return 0;
	for (start = n - 1; start > 0 && p[start - 1] != '\n'; start--)
		;
	if (split(p + start, n - 1 - start, &f) != 3 || !is(&f, 0, "end") ||
	    num(f.p[1], f.n[1], UINT64_MAX, &c) || hex64(f.p[2], f.n[2], &sum))
		return 0;
	return sum == fnv(FNV0, p, start);
}

/* ---- the journal ---- */

static int op_uid(struct ms_state *s, const struct fields *f, int n)
{
	uint64_t uid;
	int rc;

	if (n != 2 || num(f->p[1], f->n[1], UINT32_MAX, &uid) || uid == 0 ||
	    !ms_state_take_proto(s, MS_PROTO_IMAP))
		return 1;
	if (f->p[0][0] == '+')
		rc = ms_uidset_add(&s->uids, (uint32_t)uid, NULL);
	else
		rc = ms_uidset_del(&s->uids, (uint32_t)uid, NULL);
	return rc < 0 ? rc : 0;
}

static int op_uidl(struct ms_state *s, const struct fields *f, int n)
{
	uint64_t size, t;

	if (n != (f->p[0][0] == '+' ? 4 : 2) ||
	    !ms_state_uidl_ok(f->p[1], f->n[1]) ||
	    !ms_state_take_proto(s, MS_PROTO_POP3))
		return 1;
	if (f->p[0][0] == '-') {
		ms_state_uidl_del(s, f->p[1], f->n[1]);
		return 0;
	}
	if (num(f->p[2], f->n[2], UINT64_MAX, &size) ||
	    num(f->p[3], f->n[3], INT64_MAX, &t))
		return 1;
	return ms_state_uidl_put(s, f->p[1], f->n[1], size, (int64_t)t, NULL);
}

/* One change: "+u UID", "-u UID", "+p UIDL SIZE FIRST_SEEN", "-p UIDL",
 * "v UIDVALIDITY" (reset), "h UIDVALIDITY UIDNEXT MODSEQ". */
static int apply_op(struct ms_state *s, const char *line, size_t len)
{
	uint64_t a, b, c;
	struct fields f;
	int n = split(line, len, &f);

	if (n < 2)
		return 1;
	if (is(&f, 0, "+u") || is(&f, 0, "-u"))
		return op_uid(s, &f, n);
	if (is(&f, 0, "+p") || is(&f, 0, "-p"))
		return op_uidl(s, &f, n);
	if (is(&f, 0, "v")) {
		if (n != 2 || num(f.p[1], f.n[1], UINT32_MAX, &a))
			return 1;
		ms_state_clear(s, (uint32_t)a);
		return 0;
	}
	if (is(&f, 0, "h")) {
		if (n != 4 || num(f.p[1], f.n[1], UINT32_MAX, &a) ||
		    num(f.p[2], f.n[2], UINT32_MAX, &b) ||
		    num(f.p[3], f.n[3], UINT64_MAX, &c))
			return 1;
		s->uidvalidity = (uint32_t)a;
		s->uidnext = (uint32_t)b;
		s->modseq = c;
		return 0;
	}
	return 1;
}

static int parse_journal(struct ms_state *s, const char *p, size_t n,
			 const char **why)
{
	struct rd r = {p, n, 0, JNL_LINE_MAX};
	size_t len, ml = strlen(JNL_MAGIC);
	const char *line;
	uint64_t id;
	int rc;

	rc = rd_line(&r, &line, &len);
	if (rc == 0 || rc == -1)
		return 0; /* nothing was committed before the crash */
	*why = "bad journal header";
	if (rc == -2 || len != ml + 17 || memcmp(line, JNL_MAGIC, ml) ||
	    line[ml] != ' ' || hex64(line + ml + 1, 16, &id))
		return 1;
	*why = "journal of another account or folder (foreign)";
	if (s->proto && s->account && s->host && s->user && s->folder &&
	    id != ident(s))
		return 1;
	*why = "bad journal line";
	while ((rc = rd_line(&r, &line, &len)) == 1)
		if ((rc = apply_op(s, line, len)) != 0)
			return rc;
	if (rc == -2)
		return 1;
	if (rc == -1)
		ms_log(MS_LOG_INFO, "state: ignoring a torn last journal line");
	return 0;
}

int ms_state_load(struct ms_state *s, const char *snap, size_t snap_len,
		  const char *jnl, size_t jnl_len, struct ms_err *e)
{
	const char *why = NULL;
	int rc = 0;

	s->need_compact = 1;
	if (!snap && !jnl) {
		s->status = MS_STATE_NEW;
		return 0;
	}
	if (snap && (rc = parse_snapshot(s, snap, snap_len, &why)) == 1 &&
	    !sum_ok(snap, snap_len))
		why = "truncated or corrupt (checksum mismatch)";
	if (rc == 0 && jnl)
		rc = parse_journal(s, jnl, jnl_len, &why);
	if (rc < 0)
		return ms_err_set(e, MS_EINTERNAL, "state: out of memory");
	if (!snap) {
		/* a journal is only created next to a snapshot */
		why = "journal without its snapshot (snapshot lost)";
		rc = 1;
	}
	if (rc) {
		ms_log(MS_LOG_WARN, "state %s: %s",
		       s->snap_path ? s->snap_path : "(memory)", why);
		ms_state_clear(s, 0);
		s->lastrun = 0;
		s->status = MS_STATE_BAD;
		return 0;
	}
	s->status = MS_STATE_OK;
	s->need_compact = jnl != NULL;
	return 0;
}

/* ---- writing ---- */

static int put_kv(struct ms_buf *b, const char *k, const char *v,
		  struct ms_err *e)
{
	int rc = ms_buf_adds(b, k, e);

	if (rc == 0)
		rc = ms_buf_addc(b, ' ', e);
	if (rc == 0)
		rc = pct_add(b, v ? v : "", e);
	if (rc == 0)
		rc = ms_buf_addc(b, '\n', e);
	return rc;
}

static int put_ranges(const struct ms_state *s, struct ms_buf *b,
		      struct ms_err *e)
{
	size_t i, nr, col = 0;
	const struct ms_uidrange *rs = ms_uidset_ranges(&s->uids, &nr);
	char item[32];
	int n, rc = 0;

	for (i = 0; i < nr && rc == 0; i++) {
		const struct ms_uidrange *r = &rs[i];

		if (r->lo == r->hi)
			n = snprintf(item, sizeof item, "%" PRIu32, r->lo);
		else
			n = snprintf(item, sizeof item, "%" PRIu32 "-%" PRIu32,
				     r->lo, r->hi);
		if (col && col + 1 + (size_t)n > WRAP) {
			rc = ms_buf_addc(b, '\n', e);
			col = 0;
		}
		if (rc == 0)
			rc = ms_buf_adds(b, col ? "," : "u ", e);
		if (rc == 0)
			rc = ms_buf_add(b, item, (size_t)n, e);
		col += (col ? 1 : 2) + (size_t)n;
	}
	if (rc == 0 && col)
		rc = ms_buf_addc(b, '\n', e);
	return rc;
}

/* v in decimal at p (20 bytes suffice); the length. */
static size_t dec(char *p, uint64_t v)
{
	char t[20];
	size_t n = 0, i;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = t[n - 1 - i];
	return n;
}

/* "p UIDL SIZE FIRST_SEEN" per record, formatted by hand: a maildrop of
 * 100,000 messages is written at the end of every run, and printf made
 * that a fifth of a run with nothing new. */
static int put_uidls(const struct ms_state *s, struct ms_buf *b,
		     struct ms_err *e)
{
	char line[MS_UIDL_MAX + 48];
	size_t i, n, u;
	int rc = 0;

	for (i = 0; i < s->npop && rc == 0; i++) {
		const struct ms_state_pent *p = &s->ents[i];

		u = strlen(s->pool + p->off);
		if (p->first_seen < 0 || u > MS_UIDL_MAX) {
			rc = ms_buf_addf(b, e, "p %s %" PRIu64 " %" PRId64 "\n",
					 s->pool + p->off, p->size,
					 p->first_seen);
			continue;
		}
		line[0] = 'p';
		line[1] = ' ';
		memcpy(line + 2, s->pool + p->off, u);
		n = 2 + u;
		line[n++] = ' ';
		n += dec(line + n, p->size);
		line[n++] = ' ';
		n += dec(line + n, (uint64_t)p->first_seen);
		line[n++] = '\n';
		rc = ms_buf_add(b, line, n, e);
	}
	return rc;
}

int ms_state_snapshot(const struct ms_state *s, int64_t lastrun,
		      struct ms_buf *b, struct ms_err *e)
{
	size_t start = b->len;
	uint64_t count = ms_state_nrec(s); /* also merges pending UIDs */
	int rc;

	rc = ms_buf_adds(b, SNAP_MAGIC "\n", e);
	if (rc == 0)
		rc = put_kv(b, "proto", proto_name(s->proto), e);
	if (rc == 0)
		rc = put_kv(b, "account", s->account, e);
	if (rc == 0)
		rc = put_kv(b, "host", s->host, e);
	if (rc == 0)
		rc = put_kv(b, "user", s->user, e);
	if (rc == 0)
		rc = put_kv(b, "folder", s->folder, e);
	if (rc == 0)
		rc = ms_buf_addf(b, e,
				 "uidvalidity %" PRIu32 "\nuidnext %" PRIu32
				 "\nmodseq %" PRIu64 "\nlastrun %" PRId64
				 "\ncount %" PRIu64 "\n",
				 s->uidvalidity, s->uidnext, s->modseq,
				 lastrun < 0 ? 0 : lastrun, count);
	if (rc == 0)
		rc = s->proto == MS_PROTO_POP3 ? put_uidls(s, b, e)
					       : put_ranges(s, b, e);
	if (rc == 0)
		rc =
		    ms_buf_addf(b, e, "end %" PRIu64 " %016" PRIx64 "\n", count,
				fnv(FNV0, b->s + start, b->len - start));
	return rc;
}

int ms_state_journal_head(const struct ms_state *s, struct ms_buf *b,
			  struct ms_err *e)
{
	return ms_buf_addf(b, e, JNL_MAGIC " %016" PRIx64 "\n", ident(s));
}

int ms_state_parse_mem(struct ms_state **out, const struct ms_account *a,
		       const char *folder, const char *snap, size_t snap_len,
		       const char *journal, size_t journal_len,
		       struct ms_err *e)
{
	struct ms_state *s;
	int rc;

	*out = NULL;
	if (a)
		rc = ms_state_alloc(&s, a->proto, a->name,
				    a->host ? a->host : "",
				    a->user ? a->user : "", folder, e);
	else
		rc = ms_state_alloc(&s, 0, NULL, NULL, NULL, folder, e);
	if (rc < 0)
		return rc;
	s->dry_run = 1;
	if ((rc = ms_state_load(s, snap, snap_len, journal, journal_len, e)) <
	    0) {
		ms_state_free_mem(s);
		return rc;
	}
	*out = s;
	return 0;
}
