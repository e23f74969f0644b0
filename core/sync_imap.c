/*
 * sync_imap.c: the plan for one IMAP folder.
 *
 * Inventory is one UID SEARCH (ESEARCH ranges when offered), so a run with
 * nothing new costs a few round trips per folder whatever its size.  New
 * UIDs are those the state does not hold; metadata is fetched first only
 * when a size limit must be applied before download.  Deletion candidates
 * are UIDs both on the server and in the (durable) state, never anything
 * else, and nothing is deleted in a run where the folder's identity is in
 * doubt (UIDVALIDITY changed or missing).
 */
#include "sync_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"

#define BATCH 1000

struct imap_plan {
	struct ms_folder_run *fr;
	struct ms_uidset server;
	uint32_t *newv;
	size_t nnew, capnew;
	struct ms_msg *v;      /* current batch */
	size_t nv;
	struct ms_msg *del;
	size_t ndel, capdel;
};

static int ids_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct imap_plan *p = ctx;
	int rc;

	if (m->uid == 0)
		return ms_err_set(e, MS_EPROTO, "server listed UID 0");
	if ((rc = ms_uidset_add(&p->server, m->uid, e)) < 0)
		return rc;
	if (ms_state_has_uid(p->fr->state, m->uid))
		return 0;
	if ((rc = ms_sync_grow((void **)&p->newv, &p->capnew, p->nnew,
			       sizeof *p->newv, e)) < 0)
		return rc;
	p->newv[p->nnew++] = m->uid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int meta_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct imap_plan *p = ctx;
	size_t lo = 0, hi = p->nv;

	(void)e;
	while (lo < hi) { /* p->v is sorted by uid */
		size_t mid = lo + (hi - lo) / 2;
		if (p->v[mid].uid < m->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->nv && p->v[lo].uid == m->uid) {
		uint32_t v = p->v[lo].uidvalidity;
		p->v[lo] = *m;
		p->v[lo].uidvalidity = v;
		p->v[lo].has_meta = 1;
	}
	return 0;
}

/* Drop what the size policy refuses; in a dry run only count. */
static size_t filter_batch(struct imap_plan *p)
{
	struct ms_folder_run *fr = p->fr;
	const struct ms_account *a = fr->ar->a;
	size_t k = 0;

	for (size_t i = 0; i < p->nv; i++) {
		struct ms_msg *m = &p->v[i];
		if (!m->has_meta)
			continue; /* expunged since the search */
		if (!ms_rules_size_ok(a, m->size)) {
			fr->ar->st->skipped++;
			ms_log(MS_LOG_WARN, "UID %u: skipped: %llu "
			       "bytes exceed max_message_size",
			       m->uid, (unsigned long long)m->size);
			continue;
		}
		if (fr->ar->o->dry_run) {
			fr->would_fetch++;
			fr->would_bytes += m->size;
			ms_log(MS_LOG_DEBUG, "would fetch UID %u "
			       "(%llu bytes)", m->uid,
			       (unsigned long long)m->size);
		}
		p->v[k++] = *m;
	}
	return k;
}

static int is_new(void *ctx, const struct ms_msg *m)
{
	struct imap_plan *p = ctx;

	return bsearch(&m->uid, p->newv, p->nnew, sizeof *p->newv,
		       cmp_u32) != NULL;
}

/* Stored-but-unrecorded copies of new UIDs are recorded, not fetched. */
static int reconcile(struct imap_plan *p, struct ms_err *e)
{
	size_t k = 0;
	int rc;

	if ((rc = ms_sync_reconcile(p->fr, is_new, p, e)) < 0 ||
	    !p->fr->rebuilt)
		return rc;
	for (size_t i = 0; i < p->nnew; i++)
		if (!ms_state_has_uid(p->fr->state, p->newv[i]))
			p->newv[k++] = p->newv[i];
	p->nnew = k;
	return 0;
}

static int fetch_new(struct imap_plan *p, struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	int need_meta = fr->ar->a->max_message_size || fr->ar->o->dry_run;
	int rc = 0;

	if (p->nnew) /* newv is NULL when nothing is new */
		qsort(p->newv, p->nnew, sizeof *p->newv, cmp_u32);
	if (p->nnew && fr->state_status == MS_STATE_OK &&
	    (rc = reconcile(p, e)) < 0)
		return rc;
	fr->total = p->nnew;
	if (!(p->v = calloc(BATCH, sizeof *p->v)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < p->nnew && rc == 0; i += BATCH) {
		size_t k = p->nnew - i < BATCH ? p->nnew - i : BATCH;

		memset(p->v, 0, k * sizeof *p->v);
		for (size_t j = 0; j < k; j++) {
			p->v[j].uid = p->newv[i + j];
			p->v[j].uidvalidity = fr->fs.uidvalidity;
			p->v[j].has_meta = !need_meta;
		}
		p->nv = k;
		if (need_meta &&
		    (rc = ops->meta(fr->ar->sess.src, p->v, k, meta_cb, p,
				    e)) < 0)
			break;
		k = filter_batch(p);
		fr->last_fetch = i + BATCH >= p->nnew;
		if (!fr->ar->o->dry_run)
			rc = ms_sync_fetch(fr, p->v, k, e);
		fr->last_fetch = 0;
	}
	return rc;
}

static int add_del(struct imap_plan *p, uint32_t uid, struct ms_err *e)
{
	int rc;

	if ((rc = ms_sync_grow((void **)&p->del, &p->capdel, p->ndel,
			       sizeof *p->del, e)) < 0)
		return rc;
	memset(&p->del[p->ndel], 0, sizeof *p->del);
	p->del[p->ndel].uid = uid;
	p->del[p->ndel].uidvalidity = p->fr->fs.uidvalidity;
	p->ndel++;
	return 0;
}

static int older_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct imap_plan *p = ctx;

	if (ms_state_has_uid(p->fr->state, m->uid) &&
	    ms_uidset_has(&p->server, m->uid))
		return add_del(p, m->uid, e);
	return 0;
}

/* Deletion candidates: durably stored (in state) and on the server. */
static int plan_deletes(struct imap_plan *p, struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	const struct ms_account *a = fr->ar->a;
	const struct ms_uidrange *r;
	size_t n;
	int rc = 0;

	if (a->policy == MS_POLICY_KEEP || fr->no_delete)
		return 0;
	if (a->policy == MS_POLICY_DELETE_AFTER && fr->ar->clock_back)
		return 0; /* "older than" by a clock that went backwards */
	if (a->policy == MS_POLICY_DELETE_AFTER)
		return fr->ar->sess.ops->older_than(fr->ar->sess.src,
						     a->delete_after_days,
						     older_cb, p, e);
	r = ms_uidset_ranges(&p->server, &n);
	for (size_t i = 0; i < n && rc == 0; i++)
		for (uint64_t u = r[i].lo; u <= r[i].hi && rc == 0; u++)
			if (ms_state_has_uid(fr->state, (uint32_t)u))
				rc = add_del(p, (uint32_t)u, e);
	return rc;
}

static int check_identity(struct ms_folder_run *fr, struct ms_err *e)
{
	uint32_t old = ms_state_uidvalidity(fr->state);

	if (fr->fs.uidvalidity == 0) {
		/* without it a UID names nothing for sure: fetch, but a
		 * deleting policy must not act (reported at the end); also
		 * on a first run, before the state is rebuilt */
		if (fr->ar->a->policy == MS_POLICY_KEEP)
			ms_log(MS_LOG_WARN, "server gives no UIDVALIDITY");
		fr->no_delete = 1;
	}
	if (fr->state_status != MS_STATE_OK)
		return ms_sync_rebuild(fr, e);
	if (old && old != fr->fs.uidvalidity) {
		fr->no_delete = 1;
		return ms_sync_imap_rematch(fr, e);
	}
	return 0;
}

int ms_sync_imap_unchanged(const struct ms_folder_run *fr,
			   const struct ms_folder_status *st)
{
	const struct ms_account *a = fr->ar->a;
	const struct ms_state *s = fr->state;

	if (!st || !st->uidvalidity || fr->state_status != MS_STATE_OK ||
	    st->uidvalidity != ms_state_uidvalidity(s) ||
	    st->uidnext != ms_state_uidnext(s))
		return 0; /* new mail, or an identity question */
	if (a->policy != MS_POLICY_KEEP && st->exists)
		return 0; /* something may be due for deletion */
	if (a->mirror != MS_MIRROR_NO &&
	    (!st->highestmodseq || st->highestmodseq != ms_state_modseq(s)))
		return 0; /* flags may have changed */
	if (a->mirror == MS_MIRROR_FULL && st->exists != ms_state_count(s))
		return 0; /* something was expunged */
	if (a->gmail == MS_GMAIL_ALL_MAIL &&
	    (!st->highestmodseq || st->highestmodseq != ms_state_modseq(s)))
		return 0; /* labels may have changed */
	return 1;
}

int ms_sync_imap_folder(struct ms_folder_run *fr, struct ms_err *e)
{
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	const struct ms_account *a = fr->ar->a;
	struct imap_plan p;
	int rw, rc;

	memset(&p, 0, sizeof p);
	p.fr = fr;
	ms_uidset_init(&p.server);
	rw = a->policy != MS_POLICY_KEEP && !fr->ar->o->dry_run ?
	     MS_SELECT_RW : 0;
	/* the UID SEARCH goes out with the EXAMINE: one round trip */
	if ((rc = ops->select(fr->ar->sess.src, fr->raw, rw | MS_SELECT_IDS,
			      &fr->fs, e)) < 0)
		goto out;
	if ((rc = check_identity(fr, e)) < 0)
		goto out;
	if ((rc = ms_sync_check_present(fr, e)) < 0)
		goto out;
	if ((rc = ops->ids(fr->ar->sess.src, ids_cb, &p, e)) < 0)
		goto out;
	if ((rc = fetch_new(&p, e)) < 0)
		goto out;
	if ((rc = plan_deletes(&p, e)) < 0)
		goto out;
	if ((rc = ms_sync_remove(fr, p.del, p.ndel, e)) < 0)
		goto out;
	fr->would_delete = fr->ar->o->dry_run ? p.ndel : 0;
	if ((rc = ms_sync_imap_mirror(fr, &p.server, e)) < 0)
		goto out;
	if ((rc = ms_sync_gmail_labels(fr, e)) < 0)
		goto out;
	if ((rc = ms_sync_folder_finish(fr, e)) < 0)
		goto out;
	if (fr->fs.uidvalidity == 0 && a->policy != MS_POLICY_KEEP)
		rc = ms_err_set(e, MS_EPROTO, "server gives no UIDVALIDITY: "
				"messages fetched, but refusing to delete");
out:
	ms_uidset_free(&p.server);
	free(p.newv);
	free(p.v);
	free(p.del);
	return rc;
}
