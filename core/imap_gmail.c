/*
 * imap_gmail.c: Gmail's IMAP extension (X-GM-EXT-1) for "gmail =
 * all-mail": one UID FETCH 1:* (UID X-GM-MSGID X-GM-LABELS) on the
 * selected \All folder gives every message's permanent id and its labels.
 *
 * Labels are passed on as the server spells them (modified UTF-7, system
 * labels as "\Inbox"), escaped so that a label can never break the
 * tab-separated, line-based labels file the engine writes: any byte below
 * 0x20, 0x7f and '%' become %XX.  FETCH responses without X-GM-MSGID
 * (unsolicited flag updates) are ignored.
 */
#include "imap_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LABELS_MAX (64u * 1024) /* escaped labels of one message */

struct gm_ctx {
	ms_gm_cb cb;
	void *ctx;
	int cbrc;
	struct ms_err cberr;
	struct ms_buf labels;
};

static int malformed(struct ms_source *s, struct ms_err *e)
{
	return imap_fatal(s, ms_err_set(e, MS_EPROTO, "IMAP: malformed "
		"X-GM-LABELS FETCH response \"%s\"", s->p.ex), e);
}

static int add_escaped(struct ms_buf *b, const char *p, size_t n,
		       struct ms_err *e)
{
	char hex[4];
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f || c == '%') {
			snprintf(hex, sizeof hex, "%%%02X", c);
			rc = ms_buf_add(b, hex, 3, e);
		} else {
			rc = ms_buf_addc(b, (char)c, e);
		}
	}
	return rc;
}

/* "(" label* ")": atoms, numbers, quoted strings or literals. */
static int labels_value(struct ms_source *s, struct gm_ctx *c,
			struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc, first = 1;

	ms_buf_reset(&c->labels);
	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type != MS_IMAP_T_LPAREN)
		return malformed(s, e);
	while (!(rc = imap_tok(s, &t, e)) && t.type != MS_IMAP_T_RPAREN) {
		if (t.type == MS_IMAP_T_NIL)
			continue;
		if (!first && (rc = ms_buf_addc(&c->labels, '\t', e)))
			return imap_fatal(s, rc, e);
		first = 0;
		if (t.type == MS_IMAP_T_ATOM || t.type == MS_IMAP_T_NUMBER) {
			rc = add_escaped(&c->labels, t.s, strlen(t.s), e);
		} else if (t.type == MS_IMAP_T_QUOTED) {
			rc = add_escaped(&c->labels, t.s, t.n, e);
		} else if (t.type == MS_IMAP_T_LITERAL) {
			while (!(rc = imap_tok(s, &t, e)) &&
			       t.type == MS_IMAP_T_LITDATA)
				if ((rc = add_escaped(&c->labels, t.s, t.n, e)))
					break;
			if (!rc && t.type != MS_IMAP_T_LITEND)
				return malformed(s, e);
		} else {
			return malformed(s, e);
		}
		if (rc)
			return imap_fatal(s, rc, e);
	}
	return rc;
}

/* Any other item's value: one token, or a list / literal to its end. */
static int skip_value(struct ms_source *s, struct ms_err *e)
{
	struct ms_imap_tok t;
	unsigned depth;
	int rc;

	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type == MS_IMAP_T_RPAREN || t.type == MS_IMAP_T_END)
		return malformed(s, e);
	if (t.type != MS_IMAP_T_LPAREN && t.type != MS_IMAP_T_LITERAL)
		return 0;
	depth = t.type == MS_IMAP_T_LPAREN ? t.depth - 1 : t.depth;
	while (!(rc = imap_tok(s, &t, e))) {
		if (t.type == MS_IMAP_T_END)
			return malformed(s, e);
		if (t.depth == depth && (t.type == MS_IMAP_T_RPAREN ||
					 t.type == MS_IMAP_T_LITEND))
			break;
	}
	return rc;
}

static int gm_fn(struct ms_source *s, struct imap_resp *r, void *vctx,
		 struct ms_err *e)
{
	struct gm_ctx *c = vctx;
	struct ms_imap_tok t;
	uint64_t uid = 0, msgid = 0;
	int rc, has_id = 0, has_labels = 0;

	if (!r->has_num || strcmp(r->name, "FETCH"))
		return 0;
	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type != MS_IMAP_T_LPAREN)
		return malformed(s, e);
	while (!(rc = imap_tok(s, &t, e)) &&
	       !(t.type == MS_IMAP_T_RPAREN && !t.depth)) {
		if (t.type != MS_IMAP_T_ATOM)
			return malformed(s, e);
		if (!strcasecmp(t.s, "UID") || !strcasecmp(t.s, "X-GM-MSGID")) {
			int is_uid = !strcasecmp(t.s, "UID");

			if ((rc = imap_tok(s, &t, e)))
				return rc;
			if (t.type != MS_IMAP_T_NUMBER ||
			    (is_uid && (t.num < 1 || t.num > 0xffffffffu)))
				return malformed(s, e);
			if (is_uid)
				uid = t.num;
			else
				msgid = t.num, has_id = 1;
		} else if (!strcasecmp(t.s, "X-GM-LABELS")) {
			if ((rc = labels_value(s, c, e)))
				return rc;
			has_labels = 1;
		} else if ((rc = skip_value(s, e))) {
			return rc;
		}
	}
	if (!rc && !(rc = imap_tok(s, &t, e)) && t.type != MS_IMAP_T_END)
		return malformed(s, e);
	if (rc)
		return rc;
	r->done = 1;
	if (!uid || !has_id)
		return 1; /* an unsolicited FETCH (flags): not ours */
	if (!has_labels)
		ms_buf_reset(&c->labels);
	if (!c->cbrc && (c->cbrc = c->cb(c->ctx, (uint32_t)uid, msgid,
					  c->labels.s, &c->cberr)))
		if (!c->cberr.code)
			ms_err_set(&c->cberr, c->cbrc, "labels callback "
				   "failed");
	return 1;
}

int imap_gm_labels(struct ms_source *s, ms_gm_cb cb, void *ctx,
		   struct ms_err *e)
{
	struct gm_ctx c = { .cb = cb, .ctx = ctx };
	int rc;

	if ((rc = imap_usable(s, 1, e)))
		return rc;
	if (!(s->caps & IMAP_CAP_XGMEXT1))
		return ms_err_set(e, MS_EPROTO, "server does not announce "
				  "X-GM-EXT-1, needed by gmail = all-mail");
	if (!s->exists)
		return 0;
	ms_buf_init(&c.labels, LABELS_MAX);
	ms_err_clear(&c.cberr);
	rc = imap_run(s, "UID FETCH 1:* (UID X-GM-MSGID X-GM-LABELS)",
		      "UID FETCH", gm_fn, &c, IMAP_MAX_UNTAGGED_BIG, e);
	if (!rc && c.cbrc) {
		*e = c.cberr;
		rc = c.cbrc;
	}
	ms_buf_free(&c.labels);
	return rc;
}
