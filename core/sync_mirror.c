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
		ms_log(MS_LOG_WARN, "%s: %s: mirror = flags is not supported "
		       "by this source or store", fr->ar->a->name, fr->local);
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
		ms_log(MS_LOG_INFO, "%s: %s: would remove %zu local copies",
		       a->name, fr->local, mc->ngone);
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
		ms_log(MS_LOG_INFO, "%s: %s: %zu local copies moved to the "
		       "quarantine", a->name, fr->local, mc->ngone);
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

int ms_sync_imap_rematch(struct ms_folder_run *fr, struct ms_err *e)
{
	/* Until content re-matching exists, refuse rather than download the
	 * whole folder a second time. */
	return ms_err_set(e, MS_EPROTO, "UIDVALIDITY changed from %u to %u; "
			  "refusing to re-download the folder (re-matching is "
			  "not implemented yet)",
			  ms_state_uidvalidity(fr->state), fr->fs.uidvalidity);
}
