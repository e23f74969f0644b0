/*
 * imap_uid.c: the IMAP operations on sets of UIDs: UID SEARCH (ids,
 * older_than) with ESEARCH when offered, compact UID sets for commands,
 * and deletion by UID STORE +FLAGS.SILENT (\\Deleted) + UID EXPUNGE.
 *
 * Deletion is refused without UIDPLUS: a plain EXPUNGE would also purge
 * messages other clients marked \\Deleted.  SEARCH results are validated
 * (1..2^32-1) and capped, and streamed to the callback as they arrive.
 */
#include "imap_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_SEARCH 10000000ul
#define SEARCH_MAX_LINE IMAP_SEARCH_MAX_LINE
#define SEARCH_MAX_TOKEN IMAP_SEARCH_MAX_TOKEN
#define REMOVE_CHUNK 1000

/* ---- SEARCH / ESEARCH ---- */

struct search_ctx {
	ms_msg_cb cb;
	void *ctx;
	unsigned tag;
	unsigned long n;
	uint32_t uidvalidity;
	int cbrc;
	struct ms_err cberr;
};

static int search_hit(struct ms_source *s, struct search_ctx *c,
		      uint64_t uid, struct ms_err *e)
{
	struct ms_msg m = { 0 };

	if (uid < 1 || uid > 0xffffffffu)
		return imap_fatal(s, ms_err_set(e, MS_EPROTO,
			"IMAP: SEARCH returned invalid UID %llu",
			(unsigned long long)uid), e);
	if (++c->n > MAX_SEARCH)
		return imap_fatal(s, ms_err_set(e, MS_EPROTO,
			"IMAP: SEARCH returned more than %lu UIDs",
			MAX_SEARCH), e);
	if (c->cbrc)
		return 0;
	m.uid = (uint32_t)uid;
	m.uidvalidity = c->uidvalidity;
	if ((c->cbrc = c->cb(c->ctx, &m, &c->cberr)) && !c->cberr.code)
		ms_err_set(&c->cberr, c->cbrc, "message callback failed");
	return 0;
}

static int parse_u64(const char **p, uint64_t *v)
{
	uint64_t x = 0;
	const char *q = *p;

	if (!isdigit((unsigned char)*q))
		return -1;
	for (; isdigit((unsigned char)*q); q++) {
		unsigned d = (unsigned)(*q - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*p = q;
	*v = x;
	return 0;
}

/* "1:5,7,9:12" -> a hit per UID (a:b and b:a are the same range). */
static int search_set(struct ms_source *s, struct search_ctx *c,
		      const char *set, struct ms_err *e)
{
	const char *p = set;
	uint64_t lo, hi, u;
	int rc;

	for (;;) {
		if (parse_u64(&p, &lo))
			goto bad;
		hi = lo;
		if (*p == ':' && (p++, parse_u64(&p, &hi)))
			goto bad;
		if (lo > hi)
			u = lo, lo = hi, hi = u;
		if (lo < 1 || hi > 0xffffffffu || hi - lo >= MAX_SEARCH)
			goto bad;
		for (u = lo; u <= hi; u++)
			if ((rc = search_hit(s, c, u, e)))
				return rc;
		if (!*p)
			return 0;
		if (*p++ != ',')
			goto bad;
	}
bad:
	return imap_fatal(s, ms_err_set(e, MS_EPROTO,
		"IMAP: bad UID set in ESEARCH \"%.60s\"", set), e);
}

/* * ESEARCH (TAG "m5") UID ALL 1:5,7 */
static int esearch_fn(struct ms_source *s, struct search_ctx *c,
		      struct imap_resp *r, struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc, all = 0;

	while (!(rc = imap_tok(s, &t, e)) && t.type != MS_IMAP_T_END) {
		if (t.type == MS_IMAP_T_LPAREN) { /* (TAG "m5") */
			if ((rc = imap_tok(s, &t, e)) ||
			    t.type != MS_IMAP_T_ATOM ||
			    strcasecmp(t.s, "TAG") ||
			    (rc = imap_tok(s, &t, e)))
				goto bad;
			if (t.type != MS_IMAP_T_QUOTED ||
			    imap_our_tag(t.s) != c->tag) {
				r->done = 0; /* someone else's: ignore */
				return imap_skip(s, r, e);
			}
			if ((rc = imap_tok(s, &t, e)) ||
			    t.type != MS_IMAP_T_RPAREN)
				goto bad;
		} else if (all) {
			if (t.type != MS_IMAP_T_ATOM &&
			    t.type != MS_IMAP_T_NUMBER)
				goto bad;
			if ((rc = search_set(s, c, t.s, e)))
				return rc;
			all = 0;
		} else if (t.type == MS_IMAP_T_ATOM) {
			all = !strcasecmp(t.s, "ALL");
		}
	}
	r->done = 1;
	return rc ? rc : 1;
bad:
	if (!rc)
		rc = imap_fatal(s, ms_err_set(e, MS_EPROTO,
			"IMAP: malformed ESEARCH \"%s\"", s->p.ex), e);
	return rc;
}

static int search_fn(struct ms_source *s, struct imap_resp *r, void *vctx,
		     struct ms_err *e)
{
	struct search_ctx *c = vctx;
	struct ms_imap_tok t;
	int rc;

	if (r->has_num)
		return 0;
	if (!strcmp(r->name, "ESEARCH"))
		return esearch_fn(s, c, r, e);
	if (strcmp(r->name, "SEARCH"))
		return 0;
	while (!(rc = imap_tok(s, &t, e)) && t.type != MS_IMAP_T_END)
		if (t.type == MS_IMAP_T_NUMBER && !t.depth &&
		    (rc = search_hit(s, c, t.num, e)))
			return rc;
	r->done = 1;
	return rc ? rc : 1;
}

const char *imap_search_cmd(struct ms_source *s, const char *criteria)
{
	snprintf(s->search_cmd, sizeof s->search_cmd, "UID SEARCH %s%s",
		 s->caps & IMAP_CAP_ESEARCH ? "RETURN (ALL) " : "", criteria);
	return s->search_cmd;
}

/* Read the answer to the UID SEARCH tagged tag (sent already). */
static int search_wait(struct ms_source *s, unsigned tag, ms_msg_cb cb,
		       void *ctx, struct ms_err *e)
{
	struct search_ctx c = { .cb = cb, .ctx = ctx };
	int rc;

	ms_err_clear(&c.cberr);
	c.uidvalidity = s->uidvalidity;
	c.tag = tag;
	s->p.max_line = SEARCH_MAX_LINE;
	s->p.max_token = SEARCH_MAX_TOKEN;
	rc = imap_wait(s, tag, "UID SEARCH", search_fn, &c,
		       IMAP_MAX_UNTAGGED, e);
	s->p.max_line = MS_IMAP_MAX_LINE_DEFAULT;
	s->p.max_token = MS_IMAP_MAX_TOKEN_DEFAULT;
	if (!rc && c.cbrc) {
		*e = c.cberr;
		rc = c.cbrc;
	}
	return rc;
}

static int search(struct ms_source *s, const char *criteria, ms_msg_cb cb,
		  void *ctx, struct ms_err *e)
{
	unsigned tag;
	int rc;

	if ((rc = imap_usable(s, 1, e)))
		return rc;
	if ((rc = imap_queue(s, imap_search_cmd(s, criteria), &tag, e)) ||
	    (rc = imap_flush(s, e)))
		return rc;
	return search_wait(s, tag, cb, ctx, e);
}

int imap_ids(struct ms_source *s, ms_msg_cb cb, void *ctx,
	     struct ms_err *e)
{
	unsigned tag = s->ids_tag;

	/* sent with the EXAMINE (MS_SELECT_IDS) and not read yet */
	if (tag && !s->pre_tag && s->selected && !s->dead) {
		s->ids_tag = 0;
		return search_wait(s, tag, cb, ctx, e);
	}
	return search(s, "ALL", cb, ctx, e);
}

int imap_older_than(struct ms_source *s, unsigned days, ms_msg_cb cb,
			   void *ctx, struct ms_err *e)
{
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
					 "Jun", "Jul", "Aug", "Sep", "Oct",
					 "Nov", "Dec" };
	time_t now = time(NULL), t;
	struct tm tm;
	char crit[64];

	if (days > 36500)
		days = 36500;
	t = now - (time_t)days * 86400;
	if (t < 0)
		t = 0;
	if (!gmtime_r(&t, &tm))
		return ms_err_set(e, MS_EINTERNAL, "gmtime failed");
	snprintf(crit, sizeof crit, "BEFORE %d-%s-%d", tm.tm_mday,
		 mon[tm.tm_mon], tm.tm_year + 1900);
	return search(s, crit, cb, ctx, e);
}

/* ---- UID sets ---- */

static int want_cmp(const void *a, const void *b)
{
	const struct imap_want *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int imap_wants(const struct ms_msg *msgs, size_t n, struct imap_want **out,
	       size_t *nout, struct ms_err *e)
{
	struct imap_want *w;
	size_t i, k = 0;

	*out = NULL;
	*nout = 0;
	if (!n)
		return 0;
	if (!(w = calloc(n, sizeof *w)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (i = 0; i < n; i++) {
		if (!msgs[i].uid) {
			free(w);
			return ms_err_set(e, MS_EINTERNAL,
					  "IMAP: asked for UID 0");
		}
		w[i].uid = msgs[i].uid;
		w[i].idx = i;
	}
	qsort(w, n, sizeof *w, want_cmp);
	for (i = 0; i < n; i++)
		if (!k || w[k - 1].uid != w[i].uid)
			w[k++] = w[i];
	*out = w;
	*nout = k;
	return 0;
}

int imap_set(struct ms_buf *b, const struct imap_want *w, size_t lo,
	     size_t hi, struct ms_err *e)
{
	size_t i = lo, j;
	int rc = 0;

	while (!rc && i < hi) {
		for (j = i; j + 1 < hi && w[j + 1].uid == w[j].uid + 1; j++)
			;
		if (i > lo)
			rc = ms_buf_addc(b, ',', e);
		if (!rc && j == i)
			rc = ms_buf_addf(b, e, "%u", (unsigned)w[i].uid);
		else if (!rc)
			rc = ms_buf_addf(b, e, "%u:%u", (unsigned)w[i].uid,
					 (unsigned)w[j].uid);
		i = j + 1;
	}
	return rc;
}

/* ---- UID STORE + UID EXPUNGE ---- */

/* Both commands of one chunk are sent at once; read until both answer. */
static int remove_chunk(struct ms_source *s, const struct imap_want *w,
			size_t lo, size_t hi, struct ms_err *e)
{
	struct ms_buf cmd;
	struct imap_resp r;
	unsigned tag[2];
	unsigned long n = 0;
	int rc, pending = 2, first = 0;

	ms_buf_init(&cmd, 0);
	if ((rc = ms_buf_adds(&cmd, "UID STORE ", e)) ||
	    (rc = imap_set(&cmd, w, lo, hi, e)) ||
	    (rc = ms_buf_adds(&cmd, " +FLAGS.SILENT (\\Deleted)", e)) ||
	    (rc = imap_queue(s, cmd.s, &tag[0], e)))
		goto out;
	ms_buf_reset(&cmd);
	if ((rc = ms_buf_adds(&cmd, "UID EXPUNGE ", e)) ||
	    (rc = imap_set(&cmd, w, lo, hi, e)) ||
	    (rc = imap_queue(s, cmd.s, &tag[1], e)) ||
	    (rc = imap_flush(s, e)))
		goto out;
	while (pending) {
		if ((rc = imap_resp(s, &r, e)))
			goto out;
		if (r.kind == MS_IMAP_UNTAGGED) {
			if (++n > IMAP_MAX_UNTAGGED_BIG) {
				rc = imap_fatal(s, ms_err_set(e, MS_EPROTO,
					"IMAP: endless responses to UID "
					"EXPUNGE"), e);
				goto out;
			}
			if ((rc = imap_untagged(s, &r, e)))
				goto out;
			continue;
		}
		if (r.kind != MS_IMAP_TAGGED ||
		    (r.tag != tag[0] && r.tag != tag[1])) {
			rc = imap_fatal(s, ms_err_set(e, MS_EPROTO,
				"IMAP: unexpected response \"%s\" to UID "
				"STORE/EXPUNGE", s->p.ex), e);
			goto out;
		}
		pending--;
		if (r.status != IMAP_OK && !first)
			first = imap_cmd_error(s, &r, r.tag == tag[0] ?
					       "UID STORE" : "UID EXPUNGE", e);
	}
	rc = first;
out:
	ms_buf_free(&cmd);
	return rc;
}

int imap_remove(struct ms_source *s, const struct ms_msg *msgs,
		       size_t n, struct ms_err *e)
{
	struct imap_want *w = NULL;
	size_t nw = 0, i;
	int rc;

	if ((rc = imap_usable(s, 1, e)))
		return rc;
	if (!(s->caps & IMAP_CAP_UIDPLUS))
		return ms_err_set(e, MS_EPROTO, "server lacks UIDPLUS; "
				  "refusing to expunge (would purge other "
				  "clients' \\Deleted mail)");
	if (!s->readwrite)
		return ms_err_set(e, MS_EPROTO, "folder is read-only; "
				  "refusing to delete");
	if ((rc = imap_wants(msgs, n, &w, &nw, e)))
		return rc;
	for (i = 0; !rc && i < nw; i += REMOVE_CHUNK)
		rc = remove_chunk(s, w, i,
				  nw - i < REMOVE_CHUNK ? nw : i + REMOVE_CHUNK,
				  e);
	free(w);
	return rc;
}
