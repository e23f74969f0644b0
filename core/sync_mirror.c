/*
 * sync_mirror.c: bringing local copies in line with the server (mirror =
 * flags | full) and surviving a UIDVALIDITY change.
 *
 * Mirroring deletions is the dangerous direction, so it is guarded: never
 * in a run where the folder's identity is in doubt, never when more than
 * mirror_max_percent of the known messages vanished at once, and removed
 * copies go to the store's quarantine rather than being unlinked.
 */
#include "sync_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct mirror_ctx {
	struct ms_folder_run *fr;
	const struct ms_uidset *server;
	uint32_t *gone;
	size_t ngone, capgone;
	unsigned long changed;
	int rc;
	struct ms_err *e;
};

static int flags_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct mirror_ctx *mc = ctx;
	struct ms_folder_run *fr = mc->fr;

	if (!ms_state_has_uid(fr->state, m->uid))
		return 0;
	mc->changed++;
	return fr->ar->sops->set_flags(fr->sf, m->uid, m->flags, e);
}

static int mirror_flags(struct ms_folder_run *fr, struct mirror_ctx *mc,
			struct ms_err *e)
{
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	uint64_t since = ms_state_modseq(fr->state);

	if (!ops->flags || !fr->ar->sops->set_flags) {
		ms_log(MS_LOG_WARN, "mirror = flags is not supported "
		       "by this source or store");
		return 0;
	}
	if (fr->no_delete || !fr->fs.highestmodseq)
		since = 0;
	if (since && since == fr->fs.highestmodseq)
		return 0; /* CONDSTORE: nothing changed since last run */
	return ops->flags(fr->ar->sess.src, since, flags_cb, mc, e);
}

static int gone_cb(void *ctx, const struct ms_msg *m, time_t first_seen)
{
	struct mirror_ctx *mc = ctx;

	(void)first_seen;
	if (ms_uidset_has(mc->server, m->uid))
		return 0;
	if (ms_sync_grow((void **)&mc->gone, &mc->capgone, mc->ngone,
			 sizeof *mc->gone, mc->e) < 0)
		return -1;
	mc->gone[mc->ngone++] = m->uid;
	return 0;
}

static int mirror_expunges(struct ms_folder_run *fr, struct mirror_ctx *mc,
			   struct ms_err *e)
{
	const struct ms_account *a = fr->ar->a;
	size_t known = ms_state_count(fr->state);
	int rc = 0;

	if (fr->no_delete || !fr->ar->sops->remove)
		return 0;
	if (ms_state_foreach(fr->state, gone_cb, mc) < 0)
		return e->code ? e->code : ms_err_set(e, MS_EINTERNAL, "state");
	if (!mc->ngone)
		return 0;
	if ((uint64_t)mc->ngone * 100 > (uint64_t)a->mirror_max_percent * known)
		return ms_err_set(e, MS_EPROTO, "%zu of %zu known messages "
				  "vanished from the server at once (more than "
				  "%u%%); not mirroring deletions", mc->ngone,
				  known, a->mirror_max_percent);
	if (fr->ar->o->dry_run) {
		ms_log(MS_LOG_INFO, "would remove %zu local copies",
		       mc->ngone);
		return 0;
	}
	for (size_t i = 0; i < mc->ngone && rc == 0; i++) {
		struct ms_msg m;

		memset(&m, 0, sizeof m);
		m.uid = mc->gone[i];
		m.uidvalidity = fr->fs.uidvalidity;
		if ((rc = fr->ar->sops->remove(fr->sf, m.uid, e)) == 0)
			rc = ms_state_del(fr->state, &m, e);
	}
	if (rc == 0)
		rc = ms_state_sync(fr->state, e);
	if (rc == 0)
		ms_log(MS_LOG_INFO, "%zu local copies moved to the "
		       "quarantine", mc->ngone);
	return rc;
}

int ms_sync_imap_mirror(struct ms_folder_run *fr,
			const struct ms_uidset *server, struct ms_err *e)
{
	struct mirror_ctx mc;
	int rc = 0;

	if (fr->ar->a->mirror == MS_MIRROR_NO)
		return 0;
	memset(&mc, 0, sizeof mc);
	mc.fr = fr;
	mc.server = server;
	mc.e = e;
	if (!fr->ar->o->dry_run)
		rc = mirror_flags(fr, &mc, e);
	if (rc == 0 && fr->ar->a->mirror == MS_MIRROR_FULL)
		rc = mirror_expunges(fr, &mc, e);
	free(mc.gone);
	return rc;
}

/* ---- UIDVALIDITY change: re-match by (server size, INTERNALDATE) ---- */

struct rm_item {
	uint64_t size;
	int64_t date;
	uint32_t uid;      /* server: new UID; local: old UID */
	char *ref;         /* local only: the store's name for the copy */
};

struct rm_ctx {
	struct ms_folder_run *fr;
	uint32_t old;
	struct rm_item *loc, *srv;
	size_t nloc, caploc, nsrv, capsrv;
	unsigned long matched, kept;
};

static int rm_push(struct rm_item **v, size_t *n, size_t *cap,
		   const struct rm_item *it, struct ms_err *e)
{
	int rc;

	if ((rc = ms_sync_grow((void **)v, cap, *n, sizeof **v, e)) < 0)
		return rc;
	(*v)[(*n)++] = *it;
	return 0;
}

static int rm_local_cb(void *ctx, const struct ms_msg *m, const char *ref,
		       struct ms_err *e)
{
	struct rm_ctx *rc = ctx;
	struct rm_item it = { m->size, m->internaldate, m->uid, NULL };

	if (m->uid && m->uidvalidity == rc->fr->fs.uidvalidity) {
		rc->kept++; /* relabelled by an earlier, interrupted run */
		return ms_state_add(rc->fr->state, m, rc->fr->ar->stamp, e);
	}
	/* a copy whose size and date the store does not know cannot be
	 * matched safely (an empty message has size 0 but a date) */
	if (m->uidvalidity != rc->old || !m->uid ||
	    (!m->size && !m->internaldate))
		return 0;
	if (!(it.ref = strdup(ref)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	return rm_push(&rc->loc, &rc->nloc, &rc->caploc, &it, e);
}

static int rm_ids_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct rm_ctx *rc = ctx;
	struct rm_item it = { 0, 0, m->uid, NULL };

	if (ms_state_has_uid(rc->fr->state, m->uid))
		return 0;
	return rm_push(&rc->srv, &rc->nsrv, &rc->capsrv, &it, e);
}

static int rm_meta_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct rm_ctx *rc = ctx;
	size_t lo = 0, hi = rc->nsrv;

	(void)e;
	while (lo < hi) { /* srv is sorted by uid at this point */
		size_t mid = lo + (hi - lo) / 2;
		if (rc->srv[mid].uid < m->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < rc->nsrv && rc->srv[lo].uid == m->uid) {
		rc->srv[lo].size = m->size;
		rc->srv[lo].date = m->internaldate;
	}
	return 0;
}

static int cmp_uid(const void *a, const void *b)
{
	const struct rm_item *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int cmp_key(const void *a, const void *b)
{
	const struct rm_item *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return cmp_uid(a, b);
}

static int rm_server_meta(struct rm_ctx *rc, struct ms_err *e)
{
	struct ms_folder_run *fr = rc->fr;
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	struct ms_msg *v;
	int r = 0;

	qsort(rc->srv, rc->nsrv, sizeof *rc->srv, cmp_uid);
	if (!(v = calloc(1000, sizeof *v)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < rc->nsrv && r == 0; i += 1000) {
		size_t k = rc->nsrv - i < 1000 ? rc->nsrv - i : 1000;
		for (size_t j = 0; j < k; j++) {
			memset(&v[j], 0, sizeof v[j]);
			v[j].uid = rc->srv[i + j].uid;
			v[j].uidvalidity = fr->fs.uidvalidity;
		}
		r = ops->meta(fr->ar->sess.src, v, k, rm_meta_cb, rc, e);
	}
	free(v);
	return r;
}

/* Length of the run of items with the same key starting at i. */
static size_t run_len(const struct rm_item *v, size_t n, size_t i)
{
	size_t j = i + 1;

	while (j < n && v[j].size == v[i].size && v[j].date == v[i].date)
		j++;
	return j - i;
}

/* Pair keys that are unique on both sides; anything ambiguous is left to
 * be fetched again (a duplicate is better than a wrong match). */
static int rm_pair(struct rm_ctx *rc, struct ms_err *e)
{
	struct ms_folder_run *fr = rc->fr;
	size_t i = 0, j = 0;
	int r = 0;

	qsort(rc->loc, rc->nloc, sizeof *rc->loc, cmp_key);
	qsort(rc->srv, rc->nsrv, sizeof *rc->srv, cmp_key);
	while (i < rc->nloc && j < rc->nsrv && r == 0) {
		size_t li = run_len(rc->loc, rc->nloc, i);
		size_t sj = run_len(rc->srv, rc->nsrv, j);
		int c = cmp_key(&(struct rm_item){ rc->loc[i].size,
				rc->loc[i].date, 0, NULL },
				&(struct rm_item){ rc->srv[j].size,
				rc->srv[j].date, 0, NULL });
		if (c == 0 && li == 1 && sj == 1) {
			struct ms_msg m;

			memset(&m, 0, sizeof m);
			m.uid = rc->srv[j].uid;
			m.uidvalidity = fr->fs.uidvalidity;
			m.size = rc->srv[j].size;
			m.internaldate = rc->srv[j].date;
			r = fr->ar->sops->relabel(fr->sf, rc->loc[i].ref, &m, e);
			if (r == 0)
				r = ms_state_add(fr->state, &m, fr->ar->stamp, e);
			rc->matched++;
		}
		if (c <= 0)
			i += li;
		if (c >= 0)
			j += sj;
	}
	return r;
}

int ms_sync_imap_rematch(struct ms_folder_run *fr, struct ms_err *e)
{
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	struct rm_ctx rc;
	int r;

	memset(&rc, 0, sizeof rc);
	rc.fr = fr;
	rc.old = ms_state_uidvalidity(fr->state);
	ms_state_reset(fr->state, fr->fs.uidvalidity);
	if (!fr->ar->sops->relabel || fr->ar->o->dry_run) {
		ms_log(MS_LOG_WARN, "UIDVALIDITY changed (%u -> %u); "
		       "the store cannot re-match: messages will be fetched "
		       "again", rc.old,
		       fr->fs.uidvalidity);
		return 0;
	}
	if ((r = fr->ar->sops->scan(fr->sf, rm_local_cb, &rc, e)) < 0 ||
	    (r = ops->ids(fr->ar->sess.src, rm_ids_cb, &rc, e)) < 0 ||
	    (r = rm_server_meta(&rc, e)) < 0 || (r = rm_pair(&rc, e)) < 0 ||
	    (r = ms_state_sync(fr->state, e)) < 0)
		goto out;
	ms_log(MS_LOG_WARN, "UIDVALIDITY changed (%u -> %u): %lu "
	       "re-matched, %lu new; nothing deleted this run",
	       rc.old, fr->fs.uidvalidity,
	       rc.matched + rc.kept,
	       (unsigned long)(rc.nsrv - rc.matched));
out:
	for (size_t i = 0; i < rc.nloc; i++)
		free(rc.loc[i].ref);
	free(rc.loc);
	free(rc.srv);
	return r;
}
