/*
 * imap_fetch.c: pipelined UID FETCH for bodies (the hot path), metadata
 * and flags.
 *
 * Requested UIDs are sorted, cut into batches (at most FETCH_BATCH_MSGS
 * messages or FETCH_BATCH_BYTES advisory bytes per command) and up to
 * FETCH_WINDOW commands are kept in flight: a new one goes out as soon as
 * one completes, so the link never idles for a round trip.  FETCH items
 * may come in any order; the BODY[] literal is handed to the sink straight
 * from the receive buffer.  Every response's UID is checked against the
 * batches in flight and against what was already delivered.
 */
#include "imap_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define FETCH_WINDOW 8
#define FETCH_BATCH_MSGS 100
#define FETCH_BATCH_BYTES ((uint64_t)16 << 20)
#define META_WINDOW 4
#define META_BATCH_MSGS 1000

enum { MODE_BODY = 1, MODE_META, MODE_FLAGS };

struct batch {
	unsigned tag;
	size_t lo, hi; /* range of f->w */
};

struct fctx {
	struct ms_source *s;
	int mode;
	const struct ms_msg *msgs;
	struct imap_want *w;
	size_t nw, next;
	unsigned char *done;        /* per want: delivered (or skipped) */
	struct batch inf[FETCH_WINDOW];
	int ninf, window, stop;
	const struct ms_fetch_sink *sink;
	void *sctx;
	ms_msg_cb cb;
	void *cbctx;
	int cbrc;                   /* first callback or folder-wide sink failure */
	struct ms_err cberr;
	int cmdrc;                  /* first tagged NO/BAD */
	struct ms_err cmderr;
	unsigned long untagged;
	struct ms_buf cmd;
};

/* What one "* n FETCH (...)" said. */
struct item {
	uint64_t uid, size;
	int has_uid, has_size, has_flags, body, open, skip;
	unsigned flags;
	int64_t idate;
	uint64_t blen, bgot;
	struct ms_msg m;            /* as given to begin */
};

/* ---- INTERNALDATE ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int num2(const char *p, int *v)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	*v = (p[0] - '0') * 10 + (p[1] - '0');
	return 0;
}

int imap_parse_date(const char *s, size_t n, int64_t *out)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char b[32];
	int d, m, yh, yl, hh, mi, ss, zh, zm;
	const char *p;

	/* "dd-Mon-yyyy hh:mm:ss +zzzz", dd may be " d" or "d" */
	if (n == 25 && s[0] != ' ') {
		b[0] = '0';
		memcpy(b + 1, s, n);
		n++;
	} else if (n == 26) {
		memcpy(b, s, n);
		if (b[0] == ' ')
			b[0] = '0';
	} else {
		return -1;
	}
	for (m = 0; m < 12; m++)
		if (!strncasecmp(b + 3, mon + 3 * m, 3))
			break;
	p = b;
	if (m == 12 || num2(p, &d) || p[2] != '-' || p[6] != '-' ||
	    num2(p + 7, &yh) || num2(p + 9, &yl) || p[11] != ' ' ||
	    num2(p + 12, &hh) || p[14] != ':' || num2(p + 15, &mi) ||
	    p[17] != ':' || num2(p + 18, &ss) || p[20] != ' ' ||
	    (p[21] != '+' && p[21] != '-') || num2(p + 22, &zh) ||
	    num2(p + 24, &zm))
		return -1;
	if (d < 1 || d > 31 || hh > 23 || mi > 59 || ss > 60 || zm > 59)
		return -1;
	*out = days_from_civil(yh * 100 + yl, (unsigned)m + 1, (unsigned)d) *
		       86400 + hh * 3600 + mi * 60 + ss -
	       (p[21] == '-' ? -1 : 1) * (zh * 3600 + zm * 60);
	return 0;
}

/* ---- lookups ---- */

/* Index into f->w of uid, or -1. */
static long want_find(const struct fctx *f, uint64_t uid)
{
	size_t lo = 0, hi = f->nw;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->w[mid].uid == uid)
			return (long)mid;
		if (f->w[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The want for uid if it is in a batch in flight and not yet delivered. */
static long want_open(const struct fctx *f, uint64_t uid)
{
	long i = want_find(f, uid);
	int k;

	if (i < 0 || f->done[i])
		return -1;
	for (k = 0; k < f->ninf; k++)
		if ((size_t)i >= f->inf[k].lo && (size_t)i < f->inf[k].hi)
			return i;
	return -1;
}

static int mismatch(struct fctx *f, const struct item *it, struct ms_err *e)
{
	return imap_fatal(f->s, ms_err_set(e, MS_EPROTO,
		"IMAP: UID mismatch: server sent UID %llu, which was "
		"not requested or was already delivered",
		(unsigned long long)it->uid), e);
}

static int malformed(struct fctx *f, struct ms_err *e)
{
	return imap_fatal(f->s, ms_err_set(e, MS_EPROTO,
		"IMAP: malformed FETCH response \"%s\"", f->s->p.ex), e);
}

/* ---- one FETCH response ---- */

/*
 * A sink failure: scope MESSAGE skips the message.  Scope FOLDER (a
 * commit that failed while FETCHes were in flight) sends no more and
 * drops the bodies still coming, so the connection stays in step and the
 * next folder can run; the error is returned when the stream has ended.
 * Anything wider stops at once.
 */
static int sink_failed(struct fctx *f, struct item *it, int rc,
		       struct ms_err *e)
{
	if (e->scope == MS_SCOPE_FOLDER) {
		if (!f->cbrc) {
			f->cbrc = rc;
			f->cberr = *e;
		}
		ms_err_clear(e);
		f->stop = 1;
		it->skip = 1;
		return 0;
	}
	if (e->scope != MS_SCOPE_MESSAGE)
		return rc;
	ms_log(MS_LOG_WARN, "UID %llu: skipped: %s",
	       (unsigned long long)(it->has_uid ? it->uid : it->m.uid),
	       e->msg);
	ms_err_clear(e);
	it->skip = 1;
	return 0;
}

static int body_begin(struct fctx *f, struct item *it, uint64_t len,
		      struct ms_err *e)
{
	long i;
	int rc;

	if (it->body)
		return malformed(f, e);
	it->body = 1;
	it->blen = len;
	/* never asked for, or the folder failed: drop the bytes */
	if (f->mode != MODE_BODY || f->cbrc) {
		it->skip = 1;
		return 0;
	}
	memset(&it->m, 0, sizeof it->m);
	if (it->has_uid) {
		if ((i = want_open(f, it->uid)) < 0)
			return mismatch(f, it, e);
		it->m = f->msgs[f->w[i].idx];
	}
	if ((rc = f->sink->begin(f->sctx, &it->m, len, e)))
		return sink_failed(f, it, rc, e);
	it->open = 1;
	return 0;
}

static int body_data(struct fctx *f, struct item *it, const char *p,
		     size_t n, struct ms_err *e)
{
	int rc;

	it->bgot += n;
	if (!it->open)
		return 0;
	if ((rc = f->sink->data(f->sctx, p, n, e))) {
		it->open = 0;
		f->sink->abort(f->sctx);
		return sink_failed(f, it, rc, e);
	}
	return 0;
}

static int body_value(struct fctx *f, struct item *it, struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	if ((rc = imap_tok(f->s, &t, e)))
		return rc;
	if (t.type == MS_IMAP_T_QUOTED) { /* legal, if unusual */
		if ((rc = body_begin(f, it, t.n, e)))
			return rc;
		return body_data(f, it, t.s, t.n, e);
	}
	if (t.type != MS_IMAP_T_LITERAL)
		return malformed(f, e); /* NIL or junk: no body */
	if ((rc = body_begin(f, it, t.num, e)))
		return rc;
	while (!(rc = imap_tok(f->s, &t, e)) && t.type == MS_IMAP_T_LITDATA)
		if ((rc = body_data(f, it, t.s, t.n, e)))
			return rc;
	if (!rc && (t.type != MS_IMAP_T_LITEND || it->bgot != it->blen))
		return malformed(f, e);
	return rc;
}

static int skip_value(struct fctx *f, struct ms_err *e)
{
	struct ms_imap_tok t;
	unsigned depth;
	int rc;

	if ((rc = imap_tok(f->s, &t, e)))
		return rc;
	if (t.type == MS_IMAP_T_LPAREN || t.type == MS_IMAP_T_LITERAL) {
		depth = t.type == MS_IMAP_T_LPAREN ? t.depth - 1 : t.depth;
		while (!(rc = imap_tok(f->s, &t, e))) {
			if (t.type == MS_IMAP_T_END)
				return malformed(f, e);
			if (t.depth == depth &&
			    (t.type == MS_IMAP_T_RPAREN ||
			     t.type == MS_IMAP_T_LITEND))
				break;
		}
		return rc;
	}
	if (t.type == MS_IMAP_T_RPAREN || t.type == MS_IMAP_T_END)
		return malformed(f, e);
	return 0;
}

static int flags_value(struct fctx *f, struct item *it, struct ms_err *e)
{
	static const struct { const char *n; unsigned bit; } fl[] = {
		{ "\\Seen", MS_F_SEEN }, { "\\Answered", MS_F_ANSWERED },
		{ "\\Flagged", MS_F_FLAGGED }, { "\\Deleted", MS_F_DELETED },
		{ "\\Draft", MS_F_DRAFT },
	};
	struct ms_imap_tok t;
	size_t i;
	int rc;

	if ((rc = imap_tok(f->s, &t, e)))
		return rc;
	if (t.type != MS_IMAP_T_LPAREN)
		return malformed(f, e);
	it->has_flags = 1;
	it->flags = 0;
	while (!(rc = imap_tok(f->s, &t, e)) && t.type != MS_IMAP_T_RPAREN) {
		if (t.type != MS_IMAP_T_ATOM)
			return malformed(f, e);
		for (i = 0; i < sizeof fl / sizeof fl[0]; i++)
			if (!strcasecmp(t.s, fl[i].n))
				it->flags |= fl[i].bit;
	}
	return rc;
}

static int number_value(struct fctx *f, uint64_t max, uint64_t *v,
			struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	if ((rc = imap_tok(f->s, &t, e)))
		return rc;
	if (t.type != MS_IMAP_T_NUMBER || t.num > max)
		return malformed(f, e);
	*v = t.num;
	return 0;
}

static int date_value(struct fctx *f, struct item *it, struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	if ((rc = imap_tok(f->s, &t, e)))
		return rc;
	if (t.type == MS_IMAP_T_NIL)
		return 0;
	if (t.type != MS_IMAP_T_QUOTED)
		return malformed(f, e);
	if (imap_parse_date(t.s, t.n, &it->idate)) {
		ms_log(MS_LOG_DEBUG, "IMAP: unparsable INTERNALDATE \"%.40s\"",
		       t.s);
		it->idate = 0;
	}
	return 0;
}

static int fetch_item(struct fctx *f, struct item *it,
		      const struct ms_imap_tok *name, struct ms_err *e)
{
	uint64_t v = 0;
	int rc;

	if (!strcasecmp(name->s, "UID")) {
		if ((rc = number_value(f, 0xffffffffu, &v, e)))
			return rc;
		if (!v || (it->has_uid && v != it->uid))
			return malformed(f, e);
		it->uid = v;
		it->has_uid = 1;
		return 0;
	}
	if (!strcasecmp(name->s, "RFC822.SIZE")) {
		it->has_size = 1;
		return number_value(f, UINT64_MAX, &it->size, e);
	}
	if (!strcasecmp(name->s, "FLAGS"))
		return flags_value(f, it, e);
	if (!strcasecmp(name->s, "INTERNALDATE"))
		return date_value(f, it, e);
	if (!strcasecmp(name->s, "BODY[]"))
		return body_value(f, it, e);
	return skip_value(f, e);
}

/* The response is complete: check identity and byte count, deliver. */
static int finish_body(struct fctx *f, struct item *it, struct ms_err *e)
{
	struct ms_msg m;
	long i;
	int rc;

	if (!it->body)
		return 0; /* unsolicited (e.g. a flag change): data only */
	if (!it->has_uid)
		return imap_fatal(f->s, ms_err_set(e, MS_EPROTO,
			"IMAP: FETCH response with BODY[] but no UID"), e);
	if ((i = want_open(f, it->uid)) < 0)
		return mismatch(f, it, e);
	if (it->bgot != it->blen)
		return imap_fatal(f->s, ms_err_set(e, MS_EPROTO,
			"UID %llu: got %llu bytes of a %llu-byte literal",
			(unsigned long long)it->uid,
			(unsigned long long)it->bgot,
			(unsigned long long)it->blen), e);
	f->done[i] = 1;
	if (!it->open)
		return 0; /* skipped by the sink */
	m = f->msgs[f->w[i].idx];
	m.uidvalidity = f->s->uidvalidity;
	m.size = it->blen; /* the literal wins over RFC822.SIZE */
	if (it->has_flags)
		m.flags = it->flags;
	if (it->idate)
		m.internaldate = it->idate;
	m.has_meta = 1;
	it->open = 0;
	if ((rc = f->sink->end(f->sctx, &m, e)))
		return sink_failed(f, it, rc, e);
	return 0;
}

static void deliver(struct fctx *f, const struct ms_msg *m)
{
	if (f->cbrc)
		return;
	if ((f->cbrc = f->cb(f->cbctx, m, &f->cberr))) {
		if (!f->cberr.code)
			ms_err_set(&f->cberr, f->cbrc, "callback failed");
		f->stop = 1; /* finish what is in flight, send no more */
	}
}

static void finish_meta(struct fctx *f, struct item *it)
{
	struct ms_msg m;
	long i;

	if (!it->has_uid || !it->has_size ||
	    (i = want_open(f, it->uid)) < 0)
		return; /* not ours: an unsolicited update */
	f->done[i] = 1;
	m = f->msgs[f->w[i].idx];
	m.uidvalidity = f->s->uidvalidity;
	m.size = it->size;
	m.flags = it->has_flags ? it->flags : 0;
	m.internaldate = it->idate;
	m.has_meta = 1;
	deliver(f, &m);
}

static void finish_flags(struct fctx *f, struct item *it)
{
	struct ms_msg m;

	if (!it->has_uid || !it->has_flags)
		return;
	memset(&m, 0, sizeof m);
	m.uid = (uint32_t)it->uid;
	m.uidvalidity = f->s->uidvalidity;
	m.flags = it->flags;
	deliver(f, &m);
}

/* "* n FETCH (" was read as far as FETCH; read the rest. */
static int parse_fetch(struct fctx *f, struct imap_resp *r, struct ms_err *e)
{
	struct item it;
	struct ms_imap_tok t;
	int rc;

	memset(&it, 0, sizeof it);
	if ((rc = imap_tok(f->s, &t, e)))
		goto out;
	if (t.type != MS_IMAP_T_LPAREN) {
		rc = malformed(f, e);
		goto out;
	}
	while (!(rc = imap_tok(f->s, &t, e))) {
		if (t.type == MS_IMAP_T_RPAREN && !t.depth)
			break;
		if (t.type != MS_IMAP_T_ATOM)
			rc = malformed(f, e);
		else
			rc = fetch_item(f, &it, &t, e);
		if (rc)
			goto out;
	}
	if (!rc && !(rc = imap_tok(f->s, &t, e)) && t.type != MS_IMAP_T_END)
		rc = malformed(f, e);
	if (rc)
		goto out;
	r->done = 1;
	if (f->mode == MODE_BODY)
		rc = finish_body(f, &it, e);
	else if (f->mode == MODE_META)
		finish_meta(f, &it);
	else
		finish_flags(f, &it);
out:
	if (rc && it.open)
		f->sink->abort(f->sctx);
	return rc;
}

/* ---- the pipeline ---- */

static int send_batch(struct fctx *f, struct ms_err *e)
{
	size_t lo = f->next, hi = lo;
	size_t max = f->mode == MODE_BODY ? FETCH_BATCH_MSGS : META_BATCH_MSGS;
	uint64_t bytes = 0, sz;
	unsigned tag;
	int rc;

	while (hi < f->nw && hi - lo < max) {
		sz = f->msgs[f->w[hi].idx].size;
		if (f->mode == MODE_BODY && hi > lo &&
		    bytes + sz > FETCH_BATCH_BYTES)
			break;
		bytes += sz;
		hi++;
	}
	ms_buf_reset(&f->cmd);
	if ((rc = ms_buf_adds(&f->cmd, "UID FETCH ", e)) ||
	    (rc = imap_set(&f->cmd, f->w, lo, hi, e)) ||
	    (rc = ms_buf_adds(&f->cmd, f->mode == MODE_BODY ?
		" (UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[])" :
		" (UID RFC822.SIZE FLAGS INTERNALDATE)", e)) ||
	    (rc = imap_queue(f->s, f->cmd.s, &tag, e)))
		return rc;
	f->inf[f->ninf].tag = tag;
	f->inf[f->ninf].lo = lo;
	f->inf[f->ninf].hi = hi;
	f->ninf++;
	f->next = hi;
	return 0;
}

static int tagged(struct fctx *f, struct imap_resp *r, struct ms_err *e)
{
	int k;

	for (k = 0; k < f->ninf && f->inf[k].tag != r->tag; k++)
		;
	if (k == f->ninf)
		return imap_fatal(f->s, ms_err_set(e, MS_EPROTO,
			"IMAP: unexpected tagged response \"%s\" to UID FETCH",
			f->s->p.ex), e);
	memmove(f->inf + k, f->inf + k + 1,
		(size_t)(f->ninf - k - 1) * sizeof f->inf[0]);
	f->ninf--;
	if (r->status == IMAP_OK)
		return 0;
	/* RFC 5530: some messages went away meanwhile; not an error */
	if (r->status == IMAP_NO &&
	    !strncasecmp(f->s->code.s, "EXPUNGEISSUED", 13))
		return 0;
	if (!f->cmdrc)
		f->cmdrc = imap_cmd_error(f->s, r, "UID FETCH", &f->cmderr);
	f->stop = 1;
	return 0;
}

static int run_pipe(struct fctx *f, struct ms_err *e)
{
	struct imap_resp r;
	int rc = 0;

	while (f->ninf || (!f->stop && f->next < f->nw)) {
		while (!rc && !f->stop && f->ninf < f->window &&
		       f->next < f->nw)
			rc = send_batch(f, e);
		if (rc || (rc = imap_flush(f->s, e)) ||
		    (rc = imap_resp(f->s, &r, e)))
			break;
		if (r.kind == MS_IMAP_TAGGED) {
			rc = tagged(f, &r, e);
		} else if (r.kind == MS_IMAP_CONTINUE) {
			rc = malformed(f, e);
		} else if (++f->untagged > IMAP_MAX_UNTAGGED_BIG) {
			rc = imap_fatal(f->s, ms_err_set(e, MS_EPROTO,
				"IMAP: more than %lu responses to UID FETCH",
				IMAP_MAX_UNTAGGED_BIG), e);
		} else if (r.has_num && !strcmp(r.name, "FETCH")) {
			rc = parse_fetch(f, &r, e);
		} else {
			rc = imap_untagged(f->s, &r, e);
		}
		if (rc)
			break;
	}
	if (rc) /* stopped in the middle of the stream */
		return imap_fatal(f->s, rc, e);
	if (f->cmdrc) {
		*e = f->cmderr;
		return f->cmdrc;
	}
	if (f->cbrc) {
		*e = f->cberr;
		return f->cbrc;
	}
	return 0;
}

static int pipe_init(struct fctx *f, struct ms_source *s, int mode,
		     const struct ms_msg *msgs, size_t n, struct ms_err *e)
{
	int rc;

	memset(f, 0, sizeof *f);
	f->s = s;
	f->mode = mode;
	f->msgs = msgs;
	f->window = mode == MODE_BODY ? FETCH_WINDOW : META_WINDOW;
	ms_err_clear(&f->cberr);
	ms_err_clear(&f->cmderr);
	ms_buf_init(&f->cmd, 0);
	if ((rc = imap_usable(s, 1, e)))
		return rc;
	if ((rc = imap_wants(msgs, n, &f->w, &f->nw, e)))
		return rc;
	if (f->nw && !(f->done = calloc(f->nw, 1)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	return 0;
}

static void pipe_free(struct fctx *f)
{
	free(f->w);
	free(f->done);
	ms_buf_free(&f->cmd);
}

int imap_meta(struct ms_source *s, const struct ms_msg *msgs, size_t n,
	      ms_msg_cb cb, void *ctx, struct ms_err *e)
{
	struct fctx f;
	int rc;

	if (!(rc = pipe_init(&f, s, MODE_META, msgs, n, e))) {
		f.cb = cb;
		f.cbctx = ctx;
		rc = run_pipe(&f, e);
	}
	pipe_free(&f);
	return rc;
}

int imap_fetch(struct ms_source *s, const struct ms_msg *msgs, size_t n,
	       const struct ms_fetch_sink *sink, void *ctx, struct ms_err *e)
{
	struct fctx f;
	int rc;

	if (!(rc = pipe_init(&f, s, MODE_BODY, msgs, n, e))) {
		f.sink = sink;
		f.sctx = ctx;
		rc = run_pipe(&f, e);
	}
	pipe_free(&f);
	return rc;
}

int imap_flags(struct ms_source *s, uint64_t since_modseq, ms_msg_cb cb,
	       void *ctx, struct ms_err *e)
{
	struct fctx f;
	char cmd[128];
	int rc;

	if (!(rc = pipe_init(&f, s, MODE_FLAGS, NULL, 0, e)) && s->exists) {
		f.cb = cb;
		f.cbctx = ctx;
		if (since_modseq && (s->caps & IMAP_CAP_CONDSTORE))
			snprintf(cmd, sizeof cmd, "UID FETCH 1:* (UID FLAGS) "
				 "(CHANGEDSINCE %llu)",
				 (unsigned long long)since_modseq);
		else
			snprintf(cmd, sizeof cmd, "UID FETCH 1:* (UID FLAGS)");
		rc = imap_queue(s, cmd, &f.inf[0].tag, e);
		if (!rc) {
			f.ninf = 1;
			rc = run_pipe(&f, e);
		}
	}
	pipe_free(&f);
	return rc;
}
