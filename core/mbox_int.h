/*
 * mbox_int.h: what mbox.c (messages, locks, commit) and mbox_index.c (the
 * PATH.msidx index, crash recovery, scan) share.  Internal to the mbox
 * store: nothing else includes it.
 */
#ifndef MS_MBOX_INT_H
#define MS_MBOX_INT_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>

#include "buf.h"
#include "mbox_quote.h"
#include "store.h"

#define CHUNK (32 * 1024)         /* input bytes converted per step */
#define COPY_BUF (256 * 1024)     /* commit writes */
#define HDR_KEEP (64 * 1024)      /* header bytes kept for Return-Path */
#define IDX_MAGIC "mailsync-mbox-index 1\n"
#define FROM_MAX 320

struct ms_store {
	const struct ms_account *a;
	int dry_run;
	int pop3;       /* store_path is the mbox file itself */
	int dirfd;      /* POP3: the file's directory; IMAP: the root */
	char *root;     /* directory path, for messages */
	char *base;     /* POP3: the file name */
};

struct done_msg {
	off_t start, len;        /* quoted bytes in the spool */
	struct ms_msg meta;
	char from[FROM_MAX];     /* the From_ line with its LF */
	unsigned char sha[32];
	int nl_added;
};

/* A committed "m" record of the index, and whether the mbox still holds
 * that message at its offset (ms_mbox_validate).  64 bytes: the UIDL
 * lives in the folder's upool, and the record's text, with the SHA-256,
 * stays in the index file (loff, llen), read again when a hash is
 * checked or the index rewritten. */
struct idx_ent {
	uint64_t off, len;       /* the message in the mbox */
	uint64_t loff;           /* the record in the index file */
	uint64_t size;           /* the server's size */
	int64_t internaldate;
	uint32_t uidvalidity, uid;
	uint32_t uoff;           /* UIDL at upool.s + uoff; 0: none ("") */
	uint32_t flags;          /* MS_F_* */
	uint16_t llen;           /* the record without its newline */
	uint8_t nl, valid;
	uint8_t foreign;         /* stored by another account (a=NAME) */
};

struct ms_store_folder {
	struct ms_store *s;
	int dirfd;               /* the mbox's directory */
	char *name, *path;       /* file name in dirfd; full path */
	char *lockname, *idxname;
	int fd;                  /* the mbox, O_RDWR|O_APPEND; -1 if none */
	int spool;               /* anonymous temp file; -1 until needed */
	off_t spool_end;
	/* commit: bytes of the append written so far, and how far writeback
	 * was started (the fsync then has little left to wait for) */
	uint64_t woff, wsync;
	struct done_msg *msgs;
	size_t n, cap;
	struct ms_store_msg *cur;
	char *lf, *q, *wbuf;     /* CHUNK + 8, 2 * CHUNK + 16, COPY_BUF */
	/* index as last read */
	off_t idx_off;           /* bytes of complete lines parsed */
	uint64_t idx_ino;        /* of the index parsed (a rewrite replaces it) */
	int idx_torn;            /* a partial line follows idx_off */
	int open_b;              /* an append was begun and not closed */
	uint64_t b_pre, b_end;
	int dotlocked, fcntl_locked;
	int swept;               /* dead temporary dotlock files removed */
	time_t touched;          /* last refresh of our dotlock */
	/* index validation (ms_mbox_validate) */
	struct idx_ent *ents;
	size_t nents, capents;
	struct ms_buf upool;     /* their UIDLs, each NUL-ended; byte 0 "" */
	int stamp_ok;            /* the last "s" record matches the mbox */
	/* records of other accounts that failed the last validation: they
	 * stay for their account to report, and while any do, no "s" record
	 * is written (it would let the next validation skip the hashes) */
	size_t nforeign_bad;
	int val_cached;          /* ents match mbox and index as in val_key */
	unsigned long long val_key[6]; /* their size, mtime s, mtime ns */
	unsigned char *bad1;     /* invalid at folder open, by position */
	uint64_t *bad1_off;
	size_t nbad1;
};

struct ms_store_msg {
	struct ms_store_folder *f;
	off_t start, pos;        /* in the spool */
	uint64_t raw;            /* LF bytes (what is hashed) */
	char last;
	struct ms_mbox_crlf crlf;
	struct ms_mbox_quote quote;
	EVP_MD_CTX *md;
	char *hdr;               /* first HDR_KEEP bytes up to the blank line */
	size_t hlen;
	int hdr_done;
};

/* Index (mbox_index.c).  Each returns 0 or a negative MS_E*. */
/* Parse what was appended to the index since the last call. */
int ms_mbox_idx_refresh(struct ms_store_folder *f, struct ms_err *e);
/* Append records and fsync (creating the index with its magic line). */
int ms_mbox_idx_append(struct ms_store_folder *f, const char *p, size_t n,
		       struct ms_err *e);
/* Locks held: cut an append a crash left open, close it with "x". */
int ms_mbox_recover(struct ms_store_folder *f, struct ms_err *e);
/* The "m" record of a message appended at off, len bytes long, by the
 * account acct. */
int ms_mbox_index_line(struct ms_buf *b, const struct done_msg *d, off_t off,
		       uint64_t len, const char *acct, struct ms_err *e);
int ms_mbox_scan(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		 struct ms_err *e);
/* Read the committed records and check each against the mbox: inside the
 * file, a From_ line at its offset after a line end, ending in the blank
 * line; when the mbox's size or mtime differ from the last "s" record, also
 * the SHA-256 of the unquoted message.  When size, mtime, ctime and inode
 * all match the "s" record, the mbox was not written since: nothing is
 * read from it.  Sets ents[].valid and stamp_ok. */
int ms_mbox_validate(struct ms_store_folder *f, struct ms_err *e);
/* Identities with no valid record; cb(ctx, m, NULL, e) for each (at most
 * once each; POP3 without UIDL has none).  *n: how many. */
int ms_mbox_lost_ids(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		     size_t *n, struct ms_err *e);
/* Locks held, just validated: rewrite the index without the records that
 * drop[i] marks (atomically: temporary file, fsync, rename, directory
 * fsync) ending with a fresh "s" record; with nothing to drop only append
 * the "s" record. */
int ms_mbox_idx_rewrite(struct ms_store_folder *f, const unsigned char *drop,
			struct ms_err *e);
/* The "s SIZE SEC NSEC" record for the mbox as it is now. */
int ms_mbox_stamp_line(struct ms_store_folder *f, char *out, size_t cap,
		       struct ms_err *e);
void ms_mbox_ents_free(struct ms_store_folder *f);
/* The store's digest op: SHA-256 of the message scan named ref (its
 * offset), from the "m" record of a valid index entry. */
int ms_mbox_digest(struct ms_store_folder *f, const char *ref,
		   unsigned char sha[32], struct ms_err *e);

#endif
