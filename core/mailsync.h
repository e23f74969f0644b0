/*
 * mailsync.h: the public API of the core: what cmd/ and tests may call.
 *
 * One call per user-visible operation; each takes a loaded config and an
 * account and reports through struct ms_err (never prints: messages go to
 * the ms_log sink that the caller installs).
 */
#ifndef MAILSYNC_H
#define MAILSYNC_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "log.h"

#define MS_VERSION "0.1.0"

/* Progress of one folder's fetch, reported after every message. */
struct ms_progress {
	const char *account;
	const char *folder;
	unsigned long done;           /* messages fetched so far */
	unsigned long total;          /* messages to fetch in this folder */
	unsigned long long bytes;     /* bytes fetched so far */
};
typedef void (*ms_progress_cb)(void *ctx, const struct ms_progress *p);

struct ms_run_opts {
	int dry_run;                  /* no server change, no local write */
	int progress;                 /* progress line (stderr is a TTY) */
	volatile sig_atomic_t *stop;  /* set by SIGINT/SIGTERM: finish the
				       * current message, commit, stop */
	ms_progress_cb progress_cb;   /* optional; called from the engine */
	void *progress_ctx;
};

struct ms_stats {
	unsigned long folders;        /* folders synced without error */
	unsigned long failed_folders; /* folders that reported an error */
	unsigned long fetched;        /* messages stored this run */
	unsigned long long bytes;     /* bytes stored */
	unsigned long deleted;        /* messages deleted on the server */
	unsigned long skipped;        /* refused by policy (size) */
	unsigned long would_fetch;    /* dry run: what would be fetched */
	unsigned long would_delete;   /* dry run: what would be deleted */
};

/* Process-wide set-up (libcurl) and tear-down; call once each. */
int ms_global_init(struct ms_err *e);
void ms_global_cleanup(void);

/* Sync one account: lock, connect, every selected folder, unlock.  The
 * return value is the worst folder's code; e holds the first error. */
int ms_sync_account(const struct ms_config *c, const struct ms_account *a,
		    const struct ms_run_opts *o, struct ms_stats *st,
		    struct ms_err *e);

/* Obtain the secret, connect, log in, log out. */
int ms_check_account(const struct ms_config *c, const struct ms_account *a,
		     struct ms_err *e);

/* Server folders with their local path (NULL and a reason when the name
 * is refused) and whether the account's patterns select them. */
typedef int (*ms_folder_list_cb)(void *ctx, const char *server_name,
				 const char *local_path, const char *why,
				 int selected);
int ms_list_folders(const struct ms_config *c, const struct ms_account *a,
		    ms_folder_list_cb cb, void *ctx, struct ms_err *e);

/* Per folder with local state: last successful run and stored count. */
typedef int (*ms_status_cb)(void *ctx, const char *folder, time_t last_run,
			    unsigned long count, uint32_t uidvalidity);
int ms_status_account(const struct ms_config *c, const struct ms_account *a,
		      ms_status_cb cb, void *ctx, struct ms_err *e);

#endif
