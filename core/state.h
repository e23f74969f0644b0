/*
 * state.h: what mailsync has stored, per account and folder, and the lock.
 *
 * Layout: STATE_DIR/ACCOUNT/lock, STATE_DIR/ACCOUNT/F.state (compacted
 * snapshot) and F.journal (append-only, fsynced per committed chunk), F
 * being the folder name encoded by ms_names_state_file().  A snapshot
 * starts with a header naming account, host, user and folder; one that is
 * missing, truncated, corrupt or foreign is reported as such (never read
 * as "nothing fetched yet") so the engine rebuilds it from the store.
 */
#ifndef MS_STATE_H
#define MS_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "source.h"

enum ms_state_status {
	MS_STATE_NEW = 1,   /* no state file existed for this folder */
	MS_STATE_OK,        /* loaded and consistent */
	MS_STATE_BAD,       /* corrupt, truncated or foreign: rebuild */
};

struct ms_state;

/* Per-account lock: STATE_DIR/ACCOUNT/lock, flock(LOCK_EX|LOCK_NB),
 * created 0600, holding the holder's pid.  Held lock: MS_ETEMP
 * "account NAME is locked by pid N".  *fd released by ms_state_unlock
 * (or by the kernel on crash). */
int ms_state_lock(const char *state_dir, const char *account, int *fd,
		  struct ms_err *e);
void ms_state_unlock(int fd);

/* The account's last successful run (STATE_DIR/ACCOUNT/last-run); *t = 0
 * when unknown (no such file: older state, or a damaged one).  The set
 * function replaces it atomically and durably. */
int ms_state_account_last_run(const char *state_dir, const char *account,
			      time_t *t, struct ms_err *e);
int ms_state_account_set_last_run(const char *state_dir, const char *account,
				  time_t t, struct ms_err *e);

/* Open (creating directories 0700) and load a folder's state.  dry_run:
 * never write anything.  *out owned by the caller (ms_state_close). */
int ms_state_open(struct ms_state **out, const char *state_dir,
		  const struct ms_account *a, const char *folder, int dry_run,
		  struct ms_err *e);
int ms_state_status(const struct ms_state *s);
void ms_state_close(struct ms_state *s);

/* Header values (0 when unknown). */
uint32_t ms_state_uidvalidity(const struct ms_state *s);
uint32_t ms_state_uidnext(const struct ms_state *s);
uint64_t ms_state_modseq(const struct ms_state *s);
time_t ms_state_last_run(const struct ms_state *s);
/* Nothing to write: no change since open, no journal left by an earlier
 * run, not new or damaged (ms_state_compact would only restamp). */
int ms_state_is_clean(const struct ms_state *s);
size_t ms_state_count(const struct ms_state *s);
void ms_state_set_header(struct ms_state *s, uint32_t uidvalidity,
			 uint32_t uidnext, uint64_t modseq);

/* Forget every record (UIDVALIDITY changed); header gets uidvalidity. */
void ms_state_reset(struct ms_state *s, uint32_t uidvalidity);

/* Lookups.  IMAP by uid; POP3 by uidl. */
int ms_state_has_uid(const struct ms_state *s, uint32_t uid);
/* POP3: 1 if known; fills *size (the LIST size recorded) and
 * *first_seen (when mailsync stored it) when non-NULL. */
int ms_state_has_uidl(const struct ms_state *s, const char *uidl,
		      uint64_t *size, time_t *first_seen);

/* Record a durably stored message (journaled; durable after sync). */
int ms_state_add(struct ms_state *s, const struct ms_msg *m, time_t now,
		 struct ms_err *e);
/* Forget a message (deleted on the server, or mirrored away). */
int ms_state_del(struct ms_state *s, const struct ms_msg *m,
		 struct ms_err *e);
/* Make the journal durable (write + fsync). */
int ms_state_sync(struct ms_state *s, struct ms_err *e);
/* Rewrite the snapshot atomically (tmp, fsync, rename, fsync dir),
 * stamping last_run = now, and drop the journal. */
int ms_state_compact(struct ms_state *s, time_t now, struct ms_err *e);

/* Iterate stored records (IMAP: uid set; POP3: uidl, size, first_seen). */
typedef int (*ms_state_cb)(void *ctx, const struct ms_msg *m,
			   time_t first_seen);
int ms_state_foreach(const struct ms_state *s, ms_state_cb cb, void *ctx);

/* Folders with state for an account (for `mailsync status`). */
int ms_state_folders(const char *state_dir, const char *account,
		     int (*cb)(void *ctx, const char *folder,
			       const struct ms_state *s),
		     void *ctx, struct ms_err *e);

/* ---- For tests and fuzzing only; the engine never calls this. ----
 * Parse a snapshot and a journal held in memory exactly as ms_state_open
 * parses F.state and F.journal (snap or journal NULL: that file is
 * absent).  The identity checked is a's and folder's; a NULL (and folder
 * NULL) checks nothing and takes the identity from the snapshot header.
 * The result is read-only (as with dry_run).  Fails only when out of
 * memory; *out owned by the caller (ms_state_close). */
int ms_state_parse_mem(struct ms_state **out, const struct ms_account *a,
		       const char *folder, const char *snap, size_t snap_len,
		       const char *journal, size_t journal_len,
		       struct ms_err *e);

#endif
