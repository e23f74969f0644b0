/*
 * sync_gmail.c: "gmail = all-mail": after the \All folder is synced, the
 * labels of every stored message are written to the store's labels file.
 *
 * Gmail shows one message in every folder that is one of its labels, so a
 * per-folder backup stores it once per label.  All Mail holds each
 * message once (one UID per X-GM-MSGID); its labels are recorded beside
 * it instead, as a complete snapshot rewritten atomically each run the
 * folder is synced:
 *     # mailsync-labels 1 uidvalidity=N
 *     X-GM-MSGID<TAB>UID<TAB>label<TAB>label...
 * Only messages recorded in the state (stored durably) are listed, so the
 * file never names a message the backup does not hold.
 */
#include "sync_int.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

struct labels_ctx {
	struct ms_folder_run *fr;
	struct ms_buf out;
	unsigned long n;
};

static int one_label_line(void *ctx, uint32_t uid, uint64_t msgid,
			  const char *labels, struct ms_err *e)
{
	struct labels_ctx *c = ctx;

	if (!ms_state_has_uid(c->fr->state, uid))
		return 0;
	c->n++;
	return ms_buf_addf(&c->out, e, "%llu\t%lu%s%s\n",
			   (unsigned long long)msgid, (unsigned long)uid,
			   *labels ? "\t" : "", labels);
}

int ms_sync_gmail_labels(struct ms_folder_run *fr, struct ms_err *e)
{
	const struct ms_source_ops *ops = fr->ar->sess.ops;
	struct labels_ctx c = { .fr = fr };
	int rc;

	if (fr->ar->a->gmail != MS_GMAIL_ALL_MAIL || fr->ar->o->dry_run)
		return 0;
	if (!ops->gm_labels || !fr->ar->sops->put_labels)
		return ms_err_set(e, MS_EINTERNAL, "gmail = all-mail is not "
				  "supported by this source or store");
	ms_buf_init(&c.out, 0);
	if (!(rc = ms_buf_addf(&c.out, e, "# mailsync-labels 1 "
			       "uidvalidity=%lu\n",
			       (unsigned long)fr->fs.uidvalidity)) &&
	    !(rc = ops->gm_labels(fr->ar->sess.src, one_label_line, &c, e)) &&
	    !(rc = fr->ar->sops->put_labels(fr->sf, c.out.s, c.out.len, e)))
		ms_log(MS_LOG_DEBUG, "labels of %lu messages written", c.n);
	ms_buf_free(&c.out);
	return rc;
}
