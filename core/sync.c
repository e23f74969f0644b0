/*
 * sync.c: the engine.  One account, one folder at a time: inventory, plan,
 * fetch, store, record, delete.
 *
 * Ordering is the whole point (DESIGN.md invariants 1-2): bytes stream
 * from the source into the store's temporary files; a chunk is committed
 * by the store (fsync, rename, directory fsync) and only then recorded in
 * the state journal (fsync); deletions are computed from the state (what
 * is durably stored AND still on the server) and sent only after that.
 * Whatever goes wrong mid-chunk, the messages finished before the fault
 * are still committed and recorded, and nothing unrecorded is deleted.
 */
#include "sync_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"
#include "names.h"
#include "rules.h"
#include "text.h"

#define CHUNK_MSGS 200
#define META_CHUNK 1000
#define DELETE_CHUNK 1000

int ms_sync_grow(void **v, size_t *cap, size_t n, size_t size,
		 struct ms_err *e)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	if (!(p = realloc(*v, ncap * size)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	*v = p;
	*cap = ncap;
	return 0;
}

int ms_sync_stopped(const struct ms_folder_run *fr)
{
	return fr->ar->o->stop && *fr->ar->o->stop;
}

/* ---- the fetch sink: source bytes -> store ---- */

/* Hash what the store keeps: CRLF -> LF, a lone CR kept (as maildir.c
 * and mbox.c convert), across chunk boundaries. */
static void hash_lf(struct ms_folder_run *fr, const char *p, size_t n)
{
	char out[4096];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (fr->md_cr && p[i] != '\n')
			out[o++] = '\r';
		fr->md_cr = p[i] == '\r';
		if (!fr->md_cr)
			out[o++] = p[i];
		if (o >= sizeof out - 2) {
			EVP_DigestUpdate(fr->md, out, o);
			o = 0;
		}
	}
	EVP_DigestUpdate(fr->md, out, o);
}

static int hash_begin(struct ms_folder_run *fr, struct ms_err *e)
{
	if (!fr->md && !(fr->md = EVP_MD_CTX_new()))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	fr->md_cr = 0;
	if (!EVP_DigestInit_ex(fr->md, EVP_sha256(), NULL))
		return ms_err_set(e, MS_EINTERNAL, "SHA-256 unavailable");
	return 0;
}

/* 1: the message is already stored (discard this copy), 0: store it. */
static int hash_match(struct ms_folder_run *fr, const struct ms_msg *meta,
		      struct ms_err *e)
{
	unsigned char sha[32];

	if (fr->md_cr)
		EVP_DigestUpdate(fr->md, "\r", 1);
	fr->md_cr = 0;
	EVP_DigestFinal_ex(fr->md, sha, NULL);
	return fr->match(fr, sha, meta, e);
}

static int sink_begin(void *ctx, const struct ms_msg *m, uint64_t len,
		      struct ms_err *e)
{
	struct ms_folder_run *fr = ctx;
	const struct ms_account *a = fr->ar->a;
	int rc;

	fr->cur = NULL;
	fr->cur_len = len;
	fr->cur_req = *m;
	if (!ms_rules_size_ok(a, len)) {
		fr->ar->st->skipped++;
		/* the engine logs it once, naming the UID or UIDL */
		rc = ms_err_set(e, MS_EPROTO, "%llu bytes exceed "
				"max_message_size", (unsigned long long)len);
		e->scope = MS_SCOPE_MESSAGE;
		return rc;
	}
	if (fr->match && (rc = hash_begin(fr, e)) < 0)
		return rc;
	rc = fr->ar->sops->msg_begin(fr->sf, &fr->cur, e);
	if (rc < 0)
		fr->cur = NULL;
	return rc;
}

static int sink_data(void *ctx, const char *p, size_t n, struct ms_err *e)
{
	struct ms_folder_run *fr = ctx;

	if (!fr->cur)
		return 0;
	if (fr->match)
		hash_lf(fr, p, n);
	return fr->ar->sops->msg_write(fr->cur, p, n, e);
}

static int commit_chunk(struct ms_folder_run *fr, struct ms_err *e);

static int sink_end(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct ms_folder_run *fr = ctx;
	struct ms_msg meta = *m;
	int rc;

	if (!fr->cur)
		return 0;
	if (fr->ar->a->proto == MS_PROTO_POP3) {
		/* identity is the listing's: UIDL and LIST size */
		memcpy(meta.uidl, fr->cur_req.uidl, sizeof meta.uidl);
		meta.size = fr->cur_req.size;
	} else {
		meta.uidvalidity = fr->fs.uidvalidity;
		meta.size = fr->cur_len;
	}
	if (fr->match && (rc = hash_match(fr, &meta, e)) != 0) {
		fr->ar->sops->msg_abort(fr->cur);
		fr->cur = NULL;
		if (rc < 0)
			return rc;
	} else {
		rc = fr->ar->sops->msg_finish(fr->cur, &meta, e);
		fr->cur = NULL;
	}
	if (rc < 0)
		return rc;
	fr->chunk_bytes += fr->cur_len;
	fr->done++;
	fr->done_bytes += fr->cur_len;
	if (fr->ar->o->progress_cb) {
		struct ms_progress pr = { fr->ar->a->name, fr->local, fr->done,
					  fr->total, fr->done_bytes };
		fr->ar->o->progress_cb(fr->ar->o->progress_ctx, &pr);
	}
	if (ms_sync_stopped(fr)) {
		rc = ms_err_set(e, MS_ETEMP, "interrupted by signal");
		e->scope = MS_SCOPE_ACCOUNT;
		return rc;
	}
	/* the next FETCHes are in flight: the server streams while this
	 * chunk is made durable (same order: store, then state) */
	if (fr->stream_commit && ++fr->uncommitted >= CHUNK_MSGS) {
		fr->uncommitted = 0;
		/* a failed commit stops the fetch (and the connection, whose
		 * answers are still coming), never just this message */
		if ((rc = commit_chunk(fr, e)) < 0 &&
		    e->scope < MS_SCOPE_FOLDER)
			e->scope = MS_SCOPE_FOLDER;
		return rc;
	}
	return 0;
}

static void sink_abort(void *ctx)
{
	struct ms_folder_run *fr = ctx;

	if (fr->cur)
		fr->ar->sops->msg_abort(fr->cur);
	fr->cur = NULL;
}

static const struct ms_fetch_sink fetch_sink = {
	.begin = sink_begin,
	.data = sink_data,
	.end = sink_end,
	.abort = sink_abort,
};

const char *ms_sync_msg_name(struct ms_folder_run *fr, const struct ms_msg *m)
{
	if (fr->ar->a->proto == MS_PROTO_POP3)
		snprintf(fr->msgname, sizeof fr->msgname,
			 "message %u (UIDL %s)", m->uid, m->uidl);
	else
		snprintf(fr->msgname, sizeof fr->msgname, "UID %u", m->uid);
	return fr->msgname;
}

/* ---- commit: store durable -> state journal durable ---- */

static void on_durable(void *ctx, const struct ms_msg *m)
{
	struct ms_folder_run *fr = ctx;

	fr->ar->st->fetched++;
	fr->fetched++;
	/* POP3 without UIDL (delete policy only) has no identity to keep */
	if ((fr->ar->a->proto == MS_PROTO_IMAP || m->uidl[0]) &&
	    ms_state_add(fr->state, m, fr->ar->stamp, &fr->commit_err) < 0)
		fr->commit_failed = 1;
	if (fr->on_durable)
		fr->on_durable(fr, m);
}

static int commit_chunk(struct ms_folder_run *fr, struct ms_err *e)
{
	int rc;

	rc = fr->ar->sops->commit(fr->sf, on_durable, fr, e);
	fr->ar->st->bytes += fr->chunk_bytes;
	fr->chunk_bytes = 0;
	if (fr->commit_failed) {
		*e = fr->commit_err;
		return e->code;
	}
	if (ms_state_sync(fr->state, rc < 0 ? &fr->commit_err : e) < 0)
		return rc < 0 ? rc : e->code;
	return rc;
}

/*
 * Nothing more to ask the server about this folder (keep, no mirroring):
 * send the next folder's EXAMINE + UID SEARCH before the last commit, so
 * its answers travel while we fsync.
 */
static void preselect_next(struct ms_folder_run *fr)
{
	struct acct_run *ar = fr->ar;
	const char *next;
	struct ms_err pe;

	if (!fr->last_fetch || !ar->next_select || !ar->sess.ops->preselect ||
	    ar->a->policy != MS_POLICY_KEEP || ar->a->mirror != MS_MIRROR_NO ||
	    ar->o->dry_run || ms_sync_stopped(fr) ||
	    !(next = ar->next_select(ar)))
		return;
	ms_err_clear(&pe);
	if (ar->sess.ops->preselect(ar->sess.src, next, 0, &pe) < 0)
		ms_log(MS_LOG_DEBUG, "%s", pe.msg);
}

/* A list of n messages: an array, or at() for lists kept compactly
 * (POP3), turned into arrays one window at a time. */
struct msg_list {
	const struct ms_msg *v;
	ms_msg_at at;
	const void *ctx;
	size_t n;
	struct ms_msg *buf;     /* the window, when at() */
};

/* msgs[i..i+k) as an array (k <= the window). */
static const struct ms_msg *list_window(struct msg_list *l, size_t i,
					size_t k)
{
	if (l->v)
		return l->v + i;
	for (size_t j = 0; j < k; j++)
		l->at(l->ctx, i + j, &l->buf[j]);
	return l->buf;
}

/* Fetch the list committing every CHUNK_MSGS messages.  IMAP keeps its
 * pipeline full across commits (sink_end commits); POP3 commits between
 * fetches. */
static int fetch_list(struct ms_folder_run *fr, struct msg_list *l,
		      struct ms_err *e)
{
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	int stream = fr->ar->a->proto == MS_PROTO_IMAP;
	size_t n = l->n, step = stream ? n : CHUNK_MSGS;
	const struct ms_msg *w;
	struct ms_err ce;
	int rc = 0, crc;

	if (stream && !l->v)
		return ms_err_set(e, MS_EINTERNAL, "fetch: IMAP needs an array");
	for (size_t i = 0; i < n && rc == 0; i += step) {
		size_t k = n - i < step ? n - i : step, rest = n - i - k;
		size_t ahead = rest < CHUNK_MSGS ? rest : CHUNK_MSGS;

		if (ms_sync_stopped(fr)) {
			rc = ms_err_set(e, MS_ETEMP, "interrupted by signal");
			e->scope = MS_SCOPE_ACCOUNT;
			break;
		}
		w = list_window(l, i, k + (ops->ahead ? ahead : 0));
		if (ops->ahead) /* the next chunk, requested early */
			ops->ahead(fr->ar->sess.src, w + k, ahead);
		fr->stream_commit = stream;
		fr->uncommitted = 0;
		rc = ops->fetch(fr->ar->sess.src, w, k, &fetch_sink, fr, e);
		fr->stream_commit = 0;
		if (fr->cur)
			sink_abort(fr);
		if (rc == 0 && stream)
			preselect_next(fr);
		/* commit what was finished even when the fetch failed */
		ms_err_clear(&ce);
		crc = commit_chunk(fr, &ce);
		if (crc < 0 && rc == 0) {
			rc = crc;
			*e = ce;
		} else if (crc < 0 && strcmp(ce.msg, e->msg)) {
			ms_log(MS_LOG_ERR, "%s", ce.msg); /* not said yet */
		}
	}
	return rc;
}

int ms_sync_fetch(struct ms_folder_run *fr, const struct ms_msg *msgs,
		  size_t n, struct ms_err *e)
{
	struct msg_list l = { .v = msgs, .n = n };

	return fetch_list(fr, &l, e);
}

int ms_sync_fetch_at(struct ms_folder_run *fr, ms_msg_at at, const void *ctx,
		     size_t n, struct ms_err *e)
{
	struct msg_list l = { .at = at, .ctx = ctx, .n = n };
	int rc;

	if (!n)
		return 0;
	if (!(l.buf = malloc(2 * CHUNK_MSGS * sizeof *l.buf)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	rc = fetch_list(fr, &l, e);
	free(l.buf);
	return rc;
}

/* ---- deletion ---- */

static int remove_list(struct ms_folder_run *fr, struct msg_list *l,
		       struct ms_err *e)
{
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	const struct ms_msg *w;
	size_t n = l->n;
	int rc = 0;

	if (fr->ar->o->dry_run) {
		fr->ar->st->would_delete += n;
		return 0;
	}
	for (size_t i = 0; i < n && rc == 0; i += DELETE_CHUNK) {
		size_t k = n - i < DELETE_CHUNK ? n - i : DELETE_CHUNK;

		w = list_window(l, i, k);
		rc = ops->remove(fr->ar->sess.src, w, k, e);
		if (rc < 0)
			break;
		if (fr->ar->a->proto == MS_PROTO_POP3)
			continue; /* committed by QUIT: see ms_pop3_finish */
		for (size_t j = 0; j < k && rc == 0; j++)
			rc = ms_state_del(fr->state, &w[j], e);
		if (rc == 0)
			rc = ms_state_sync(fr->state, e);
		fr->ar->st->deleted += k;
		fr->deleted += k;
	}
	return rc;
}

int ms_sync_remove(struct ms_folder_run *fr, const struct ms_msg *del,
		   size_t n, struct ms_err *e)
{
	struct msg_list l = { .v = del, .n = n };

	return remove_list(fr, &l, e);
}

int ms_sync_remove_at(struct ms_folder_run *fr, ms_msg_at at,
		      const void *ctx, size_t n, struct ms_err *e)
{
	struct msg_list l = { .at = at, .ctx = ctx, .n = n };
	int rc;

	if (!n || fr->ar->o->dry_run)
		return remove_list(fr, &l, e);
	if (!(l.buf = malloc(DELETE_CHUNK * sizeof *l.buf)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	rc = remove_list(fr, &l, e);
	free(l.buf);
	return rc;
}

/* ---- folder set-up shared by IMAP and POP3 ---- */

static int rebuild_cb(void *ctx, const struct ms_msg *m, const char *ref,
		      struct ms_err *e)
{
	struct ms_folder_run *fr = ctx;

	(void)ref;
	if (fr->ar->a->proto == MS_PROTO_IMAP &&
	    (m->uid == 0 || m->uidvalidity != fr->fs.uidvalidity ||
	     ms_state_has_uid(fr->state, m->uid)))
		return 0;
	if (fr->ar->a->proto == MS_PROTO_POP3 &&
	    (!m->uidl[0] || ms_state_has_uidl(fr->state, m->uidl, NULL, NULL)))
		return 0;
	if (fr->want && !fr->want(fr->hook_ctx, m))
		return 0;
	fr->rebuilt++;
	return ms_state_add(fr->state, m, fr->ar->stamp, e);
}

/* State missing or unreadable: what the store holds is the truth. */
int ms_sync_rebuild(struct ms_folder_run *fr, struct ms_err *e)
{
	int rc;

	ms_state_reset(fr->state, fr->fs.uidvalidity);
	fr->rebuilt = 0;
	fr->want = NULL;
	rc = fr->ar->sops->scan(fr->sf, rebuild_cb, fr, e);
	if (rc < 0)
		return rc;
	if (fr->rebuilt)
		ms_log(MS_LOG_WARN, "state %s; rebuilt from the "
		       "store: %lu messages",
		       fr->state_status == MS_STATE_BAD ? "was damaged" :
		       "was missing", fr->rebuilt);
	return ms_state_sync(fr->state, e);
}

/*
 * About to fetch messages the state does not know: are some of them
 * already in the store?  That is what a run killed between a store
 * commit and the journal sync leaves behind; recording them instead of
 * fetching them again avoids the duplicate.  want(ctx, m) says whether a
 * stored copy is one of the messages about to be fetched.
 */
int ms_sync_reconcile(struct ms_folder_run *fr,
		      int (*want)(void *ctx, const struct ms_msg *m),
		      void *ctx, struct ms_err *e)
{
	int rc;

	fr->rebuilt = 0;
	fr->want = want;
	fr->hook_ctx = ctx;
	rc = fr->ar->sops->scan(fr->sf, rebuild_cb, fr, e);
	fr->want = NULL;
	if (rc < 0 || !fr->rebuilt)
		return rc;
	ms_log(MS_LOG_WARN, "%lu messages were stored but not "
	       "recorded (an interrupted run); recorded now, not fetched "
	       "again", fr->rebuilt);
	return ms_state_sync(fr->state, e);
}

static int lost_cb(void *ctx, const struct ms_msg *m, const char *ref,
		   struct ms_err *e)
{
	struct ms_folder_run *fr = ctx;

	(void)ref;
	if (fr->ar->a->proto == MS_PROTO_IMAP &&
	    (!m->uid || (ms_state_uidvalidity(fr->state) &&
			 m->uidvalidity != ms_state_uidvalidity(fr->state))))
		return 0;
	if (fr->ar->a->proto == MS_PROTO_POP3 && !m->uidl[0])
		return 0;
	fr->lost++;
	return ms_state_del(fr->state, m, e);
}

/*
 * The store no longer holds messages it had recorded (an mbox removed,
 * truncated or replaced while its index stayed): the state must not keep
 * calling them stored, or they would never be fetched again and a
 * deleting policy would remove the only copy from the server.  They are
 * forgotten (durably) before the store drops its records, so a crash in
 * between only repeats this; nothing is deleted on the server in this run.
 */
static int forget_lost(struct ms_folder_run *fr, struct ms_err *e)
{
	const struct ms_store_ops *ops = fr->ar->sops;
	int rc;

	if (!ops->lost)
		return 0;
	fr->lost = 0;
	if ((rc = ops->lost(fr->sf, lost_cb, fr, e)) < 0)
		return rc;
	if (fr->lost) {
		fr->no_delete = 1;
		if ((rc = ms_state_sync(fr->state, e)) < 0)
			return rc;
	}
	return ops->forget_lost ? ops->forget_lost(fr->sf, e) : 0;
}

/* ---- deletions only for messages the store still holds (F39 a) ---- */

struct present {
	struct ms_folder_run *fr;
	uint32_t uidvalidity;          /* IMAP: the state's, 0 = any */
	struct ms_uidset uids;         /* IMAP: UIDs the store holds */
	char (*uidl)[MS_UIDL_MAX + 1]; /* POP3: UIDLs the store holds */
	size_t nuidl, capuidl;
	struct ms_msg *miss;           /* recorded, but not in the store */
	size_t nmiss, capmiss;
	int oom;
};

static int present_cb(void *ctx, const struct ms_msg *m, const char *ref,
		      struct ms_err *e)
{
	struct present *p = ctx;
	int rc;

	(void)ref;
	if (p->fr->ar->a->proto == MS_PROTO_IMAP) {
		if (!m->uid || (p->uidvalidity &&
				m->uidvalidity != p->uidvalidity))
			return 0;
		rc = ms_uidset_add(&p->uids, m->uid, e);
		return rc < 0 ? rc : 0;
	}
	if (!m->uidl[0])
		return 0;
	if ((rc = ms_sync_grow((void **)&p->uidl, &p->capuidl, p->nuidl,
			       sizeof *p->uidl, e)) < 0)
		return rc;
	memcpy(p->uidl[p->nuidl++], m->uidl, sizeof *p->uidl);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int missing_cb(void *ctx, const struct ms_msg *m, time_t first_seen)
{
	struct present *p = ctx;
	struct ms_err e;
	int held;

	(void)first_seen;
	if (p->fr->ar->a->proto == MS_PROTO_IMAP)
		held = ms_uidset_has(&p->uids, m->uid);
	else
		held = p->nuidl && bsearch(m->uidl, p->uidl, p->nuidl,
					   sizeof *p->uidl, cmp_str) != NULL;
	if (held)
		return 0;
	if (ms_sync_grow((void **)&p->miss, &p->capmiss, p->nmiss,
			 sizeof *p->miss, &e) < 0) {
		p->oom = 1;
		return 1;
	}
	p->miss[p->nmiss++] = *m;
	return 0;
}

/*
 * A deleting policy may remove from the server only what the store still
 * holds.  Before the fetch list is built, list the store's identities once
 * (Maildir: one readdir, no stat) and compare with the state: a record the
 * store no longer holds (a file removed by hand or another tool, a folder
 * or an mbox and its index removed, an old backup restored) is forgotten,
 * durably, so it is fetched again in this run; and nothing is deleted in
 * this folder in this run, so a copy fetched again now is deleted only by
 * the next run, after it is verified present.  Keep mode never checks:
 * local deletions stay deleted.
 */
int ms_sync_check_present(struct ms_folder_run *fr, struct ms_err *e)
{
	const struct ms_store_ops *ops = fr->ar->sops;
	struct present p;
	int rc;

	if (fr->ar->a->policy == MS_POLICY_KEEP || fr->no_delete ||
	    fr->state_status != MS_STATE_OK || !ms_state_count(fr->state))
		return 0; /* nothing to delete, or a state just rebuilt */
	memset(&p, 0, sizeof p);
	p.fr = fr;
	p.uidvalidity = ms_state_uidvalidity(fr->state);
	ms_uidset_init(&p.uids);
	rc = (ops->ids ? ops->ids : ops->scan)(fr->sf, present_cb, &p, e);
	if (rc < 0)
		goto out;
	if (p.nuidl)
		qsort(p.uidl, p.nuidl, sizeof *p.uidl, cmp_str);
	ms_state_foreach(fr->state, missing_cb, &p);
	if (p.oom) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	if (!p.nmiss)
		goto out;
	fr->no_delete = 1;
	for (size_t i = 0; i < p.nmiss && rc == 0; i++)
		rc = ms_state_del(fr->state, &p.miss[i], e);
	if (rc == 0)
		rc = ms_state_sync(fr->state, e);
	if (rc == 0)
		ms_log(MS_LOG_WARN, "%zu message(s) recorded as stored are "
		       "missing from the store; fetched again, not deleted "
		       "on the server", p.nmiss);
out:
	ms_uidset_free(&p.uids);
	free(p.uidl);
	free(p.miss);
	return rc;
}

int ms_sync_state_open(struct ms_folder_run *fr, struct ms_err *e)
{
	struct acct_run *ar = fr->ar;
	int rc;

	rc = ms_state_open(&fr->state, ar->c->state_dir, ar->a, fr->local,
			   ar->o->dry_run, e);
	if (rc < 0)
		return rc;
	fr->state_status = ms_state_status(fr->state);
	return 0;
}

int ms_sync_store_open(struct ms_folder_run *fr, struct ms_err *e)
{
	int rc;

	if (fr->sf)
		return 0; /* opened early (a store that can lose records) */
	rc = fr->ar->sops->folder_open(fr->ar->store, fr->local, &fr->sf, e);
	return rc < 0 ? rc : forget_lost(fr, e);
}

int ms_sync_folder_open(struct ms_folder_run *fr, struct ms_err *e)
{
	int rc = ms_sync_state_open(fr, e);

	return rc < 0 ? rc : ms_sync_store_open(fr, e);
}

/* -v: one line per folder, the counts lined up after the names (the
 * widest selected name, in code points) */
static int count_pad(const struct ms_folder_run *fr)
{
	size_t w = ms_text_width(fr->local);

	return fr->ar->colw > w ? (int)(fr->ar->colw - w) : 0;
}

/*
 * IMAP, STATUS says nothing changed (ms_sync_imap_unchanged): no SELECT,
 * and no write at all, neither store (no probe, no tmp/ sweep) nor
 * state, unless the state has something to write anyway.  With flag
 * mirroring off, a new HIGHESTMODSEQ alone is not worth a write: it is
 * only a starting point for CHANGEDSINCE, and an older one is safe.
 */
int ms_sync_folder_idle(struct ms_folder_run *fr,
			const struct ms_folder_status *st, struct ms_err *e)
{
	fr->fs = *st;
	if (fr->ar->a->mirror == MS_MIRROR_NO &&
	    fr->fs.highestmodseq != ms_state_modseq(fr->state))
		fr->fs.highestmodseq = ms_state_modseq(fr->state);
	if (fr->ar->o->dry_run || !ms_state_is_clean(fr->state) ||
	    fr->fs.uidvalidity != ms_state_uidvalidity(fr->state) ||
	    fr->fs.uidnext != ms_state_uidnext(fr->state))
		return ms_sync_folder_finish(fr, e);
	ms_log(MS_LOG_INFO, "%*s0 fetched, 0 deleted", count_pad(fr), "");
	return 0;
}

void ms_sync_folder_close(struct ms_folder_run *fr)
{
	if (fr->cur)
		sink_abort(fr);
	if (fr->sf)
		fr->ar->sops->folder_close(fr->sf);
	if (fr->state)
		ms_state_close(fr->state);
	EVP_MD_CTX_free(fr->md);
	fr->md = NULL;
	fr->match = NULL;
	fr->sf = NULL;
	fr->state = NULL;
}

int ms_sync_folder_finish(struct ms_folder_run *fr, struct ms_err *e)
{
	time_t stamp;
	int pad;

	ms_state_set_header(fr->state, fr->fs.uidvalidity, fr->fs.uidnext,
			    fr->fs.highestmodseq);
	if (fr->ar->o->dry_run)
		fr->ar->st->would_fetch += fr->would_fetch;
	pad = count_pad(fr);
	if (fr->ar->o->dry_run)
		ms_log(MS_LOG_INFO, "%*swould fetch %lu (%llu bytes), "
		       "would delete %lu", pad, "", fr->would_fetch,
		       fr->would_bytes, fr->would_delete);
	else
		ms_log(MS_LOG_INFO, "%*s%lu fetched, %lu deleted", pad, "",
		       fr->fetched, fr->deleted);
	/* nothing changed in the state (nothing fetched, deleted or
	 * learnt): no write, as for an idle IMAP folder; only the folder's
	 * last-run time would move, and the account's last-run file keeps
	 * the clock check going */
	if (ms_state_is_clean(fr->state))
		return 0;
	stamp = fr->ar->stamp;
	/* a clock that stays behind must keep being noticed */
	if (fr->ar->clock_back && ms_state_last_run(fr->state) > stamp)
		stamp = ms_state_last_run(fr->state);
	return ms_state_compact(fr->state, stamp, e);
}
