/*
 * sync_int.h: shared between the engine's files (sync.c: sink, commit,
 * delete, state rebuild; sync_imap.c and sync_pop3.c: the per-protocol
 * plans; sync_account.c: the account driver).  Not a public API.
 */
#ifndef MS_SYNC_INT_H
#define MS_SYNC_INT_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "mailsync.h"
#include "session.h"
#include "source.h"
#include "state.h"
#include "store.h"
#include "uidset.h"

struct acct_run {
	const struct ms_config *c;
	const struct ms_account *a;
	const struct ms_run_opts *o;
	struct ms_stats *st;
	struct ms_session sess;
	const struct ms_store_ops *sops;
	struct ms_store *store;
	time_t now;
	/* The clock is behind the last run's (F39 b): no time-based
	 * deletion, and times recorded this run (POP3 first-seen, folder
	 * last_run) are last_run instead of the wrong, earlier now. */
	int clock_back;
	time_t stamp;                /* now, or last_run when clock_back */
	size_t colw;                 /* widest selected folder name (-v) */
	/* IMAP: the next folder this run will select, or NULL */
	const char *(*next_select)(struct acct_run *ar);
	void *next_ctx;
};

struct ms_folder_run {
	struct acct_run *ar;
	const char *raw;             /* server name */
	const char *local;           /* decoded local name, for messages */
	struct ms_state *state;
	int state_status;
	struct ms_store_folder *sf;
	struct ms_folder_status fs;

	/* sink state */
	struct ms_store_msg *cur;
	struct ms_msg cur_req;       /* what the source said it fetches */
	uint64_t cur_len;
	unsigned long long chunk_bytes;
	struct ms_err commit_err;
	int commit_failed;
	/* called for each durable message after it is recorded */
	void (*on_durable)(struct ms_folder_run *fr, const struct ms_msg *m);
	void *hook_ctx;              /* for on_durable and want */
	int (*want)(void *ctx, const struct ms_msg *m); /* reconcile filter */

	unsigned long fetched, deleted, rebuilt;
	unsigned long done, total;   /* progress: finished / planned */
	unsigned long long done_bytes;
	unsigned long would_fetch, would_delete;
	unsigned long long would_bytes;
	int no_delete;               /* identity in doubt: no deletion */
	unsigned long lost;          /* recorded, but the store lost them */
	int stream_commit;           /* commit every CHUNK_MSGS in sink_end */
	unsigned long uncommitted;   /* finished since the last commit */
	int last_fetch;              /* IMAP: the folder's last ms_sync_fetch */
	char msgname[128];

	/* POP3: deletions sent, committed by QUIT */
	char *pending;               /* their UIDLs, each NUL-ended ("": none) */
	size_t npending;

	/* Content matching (POP3 UIDL mass change, F18c): when set, the
	 * sink hashes every message as the store keeps it (CRLF -> LF) and
	 * asks match(); 1 means "already stored": the copy is discarded
	 * and match() has recorded the identity; 0 stores it as usual. */
	int (*match)(struct ms_folder_run *fr, const unsigned char sha[32],
		     const struct ms_msg *meta, struct ms_err *e);
	void *match_ctx;
	struct evp_md_ctx_st *md;    /* owned; NULL until first used */
	int md_cr;                   /* a CR ended the previous chunk */
};

int ms_sync_grow(void **v, size_t *cap, size_t n, size_t size,
		 struct ms_err *e);
int ms_sync_stopped(const struct ms_folder_run *fr);
const char *ms_sync_msg_name(struct ms_folder_run *fr, const struct ms_msg *m);
int ms_sync_fetch(struct ms_folder_run *fr, const struct ms_msg *msgs,
		  size_t n, struct ms_err *e);
int ms_sync_remove(struct ms_folder_run *fr, const struct ms_msg *del,
		   size_t n, struct ms_err *e);
/* The same for a list the caller keeps in its own compact form: at()
 * writes message i into *out (POP3 only: fetched a chunk at a time). */
typedef void (*ms_msg_at)(const void *ctx, size_t i, struct ms_msg *out);
int ms_sync_fetch_at(struct ms_folder_run *fr, ms_msg_at at, const void *ctx,
		     size_t n, struct ms_err *e);
int ms_sync_remove_at(struct ms_folder_run *fr, ms_msg_at at,
		      const void *ctx, size_t n, struct ms_err *e);
int ms_sync_rebuild(struct ms_folder_run *fr, struct ms_err *e);
int ms_sync_reconcile(struct ms_folder_run *fr,
		      int (*want)(void *ctx, const struct ms_msg *m),
		      void *ctx, struct ms_err *e);
/* Deleting policy: forget (durably) records the store no longer holds,
 * so they are fetched again, and delete nothing in the folder this run
 * when there were any.  Call after the state is settled (rebuilt or
 * re-matched) and before the fetch list is built. */
int ms_sync_check_present(struct ms_folder_run *fr, struct ms_err *e);
int ms_sync_folder_open(struct ms_folder_run *fr, struct ms_err *e);
/* The two halves of ms_sync_folder_open. */
int ms_sync_state_open(struct ms_folder_run *fr, struct ms_err *e);
int ms_sync_store_open(struct ms_folder_run *fr, struct ms_err *e);
/* A folder STATUS shows unchanged: finish it, writing nothing if
 * nothing needs writing. */
int ms_sync_folder_idle(struct ms_folder_run *fr,
			const struct ms_folder_status *st, struct ms_err *e);
void ms_sync_folder_close(struct ms_folder_run *fr);
int ms_sync_folder_finish(struct ms_folder_run *fr, struct ms_err *e);

/* Per-protocol folder plans. */
int ms_sync_imap_folder(struct ms_folder_run *fr, struct ms_err *e);
/* Does a STATUS taken before selecting show that nothing the account's
 * policy cares about changed since the state was written? */
int ms_sync_imap_unchanged(const struct ms_folder_run *fr,
			   const struct ms_folder_status *st);
/* IMAP extras (sync_mirror.c): flag/expunge mirroring, UIDVALIDITY
 * re-matching. */
int ms_sync_imap_mirror(struct ms_folder_run *fr,
			const struct ms_uidset *server, struct ms_err *e);
int ms_sync_imap_rematch(struct ms_folder_run *fr, struct ms_err *e);
/* gmail = all-mail: write the labels file of the synced \All folder. */
int ms_sync_gmail_labels(struct ms_folder_run *fr, struct ms_err *e);
/* POP3 runs before QUIT; ms_sync_pop3_finish after the QUIT's +OK. */
int ms_sync_pop3_folder(struct ms_folder_run *fr, struct ms_err *e);
int ms_sync_pop3_finish(struct ms_folder_run *fr, int quit_ok,
			struct ms_err *e);

#endif
