/*
 * store.h: the interface every destination implements (Maildir, mbox).
 *
 * A store never touches the network.  Writing is two-phase so durability
 * can be batched: msg_begin/msg_write/msg_finish put the bytes in a
 * temporary place; commit makes every finished message durable in its
 * final place (file fsync, rename, directory fsync) and only then reports
 * it through durable_cb, after which the engine records it in state and
 * may delete it on the server.  Bytes arrive raw from the server; the
 * store converts CRLF to LF (nothing else changes).
 */
#ifndef MS_STORE_H
#define MS_STORE_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "source.h"

struct ms_store;
struct ms_store_folder;
struct ms_store_msg;

typedef void (*ms_durable_cb)(void *ctx, const struct ms_msg *m);
/* ref: the store's name for the copy (file name, mbox offset) */
typedef int (*ms_stored_cb)(void *ctx, const struct ms_msg *m,
			    const char *ref, struct ms_err *e);

struct ms_store_ops {
	const char *kind; /* "maildir", "mbox" */
	/* Open the store root for this account; creates it when missing
	 * unless dry_run.  *out owned by the caller (close). */
	int (*open)(struct ms_store **out, const struct ms_account *a,
		    int dry_run, struct ms_err *e);
	/* Open a folder by its decoded UTF-8 name, '/' separating levels
	 * (already validated by names.c).  Creates it (unless dry_run) and
	 * checks it is writable with a probe file before anything else
	 * happens (MS_ECREATE naming the path otherwise). */
	int (*folder_open)(struct ms_store *s, const char *folder,
			   struct ms_store_folder **out, struct ms_err *e);
	/* Start a message in a temporary place. */
	int (*msg_begin)(struct ms_store_folder *f, struct ms_store_msg **out,
			 struct ms_err *e);
	int (*msg_write)(struct ms_store_msg *m, const char *p, size_t n,
			 struct ms_err *e);
	/* All bytes written; meta gives identity, flags and date.  Not yet
	 * durable; the message belongs to the folder until commit. */
	int (*msg_finish)(struct ms_store_msg *m, const struct ms_msg *meta,
			  struct ms_err *e);
	/* Discard a message that was begun (temporary bytes removed). */
	void (*msg_abort)(struct ms_store_msg *m);
	/* Make every finished message durable; durable_cb for each one that
	 * is, in order.  On failure, messages not reported are removed from
	 * the temporary place and the error names the file. */
	int (*commit)(struct ms_store_folder *f, ms_durable_cb cb, void *ctx,
		      struct ms_err *e);
	/* Every stored identity in the folder (to rebuild state).  The
	 * ms_msg also carries, when the store knows them, size = the size
	 * the server gave (the literal length, CRLF counted) and
	 * internaldate (Maildir: the file's mtime, set from INTERNALDATE at
	 * commit, as Dovecot does); 0 when unknown. */
	int (*scan)(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		    struct ms_err *e);
	/* Optional: as scan, but only the identities (UID + UIDVALIDITY,
	 * UIDL) are needed, as cheaply as the store can list them
	 * (Maildir: readdir only, no stat per file); size and internaldate
	 * may be 0.  Without it the engine calls scan. */
	int (*ids)(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		   struct ms_err *e);
	/* Optional: identities the store had recorded as stored but no
	 * longer holds (mbox: removed, truncated or replaced behind the
	 * index's back), found at folder_open; cb(ctx, m, NULL, e) once
	 * each.  The engine forgets them in the state (so they are fetched
	 * again, and not deleted on the server in this run), makes that
	 * durable, then calls forget_lost so the store drops the records. */
	int (*lost)(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		    struct ms_err *e);
	int (*forget_lost)(struct ms_store_folder *f, struct ms_err *e);
	/* Optional: give the stored copy named ref (from scan) the identity
	 * of m (new UID and UIDVALIDITY), durably (rename + dir fsync).
	 * Used to re-match a folder after a UIDVALIDITY change. */
	int (*relabel)(struct ms_store_folder *f, const char *ref,
		       const struct ms_msg *m, struct ms_err *e);
	/* Optional: SHA-256 of the stored copy named ref (from scan), as
	 * stored (after CRLF -> LF), into sha.  Used to match messages by
	 * content after a POP3 UIDL mass change. */
	int (*digest)(struct ms_store_folder *f, const char *ref,
		      unsigned char sha[32], struct ms_err *e);
	/* Optional (gmail = all-mail): replace the folder's labels file
	 * (Maildir: FOLDER/mailsync-labels; mbox: MBOX.labels) with data,
	 * atomically and durably (tmp, fsync, rename, directory fsync). */
	int (*put_labels)(struct ms_store_folder *f, const char *data,
			  size_t n, struct ms_err *e);
	/* Optional (mirror=flags): set a stored IMAP message's flags. */
	int (*set_flags)(struct ms_store_folder *f, uint32_t uid,
			 unsigned flags, struct ms_err *e);
	/* Optional (mirror=full): move a stored copy to the quarantine. */
	int (*remove)(struct ms_store_folder *f, uint32_t uid,
		      struct ms_err *e);
	/* Aborts unfinished and uncommitted messages, frees. */
	void (*folder_close)(struct ms_store_folder *f);
	void (*close)(struct ms_store *s);
};

extern const struct ms_store_ops ms_maildir_store;
extern const struct ms_store_ops ms_mbox_store;

#endif
