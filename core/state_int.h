/*
 * state_int.h: shared by state.c (files, journal writes, lock) and
 * state_mem.c (the in-memory records and the text formats).  Not for any
 * other module: they use state.h.
 */
#ifndef MS_STATE_INT_H
#define MS_STATE_INT_H

#include <stdint.h>

#include "buf.h"
#include "state.h"
#include "uidset.h"

/* One POP3 record, kept in insertion order in ents[]. */
struct ms_state_pent {
	uint64_t size;
	int64_t first_seen;
	uint32_t off; /* UIDL in the pool */
	uint32_t hash;
};

struct ms_state {
	int proto;	  /* MS_PROTO_*, 0 = take it from the snapshot */
	int status;	  /* enum ms_state_status, fixed at open */
	int dry_run;	  /* never write */
	int dirty;	  /* changes not yet written */
	int need_compact; /* the next sync writes a snapshot, not a journal */
	int dirfd, jfd;	  /* STATE_DIR/ACCOUNT and the journal we created */
	/* identity; NULL = take it from the snapshot (listing, fuzzing) */
	char *account, *host, *user, *folder;
	char *snap_name, *jnl_name;	       /* relative to dirfd */
	char *dir_path, *snap_path, *jnl_path; /* for messages */
	uint32_t uidvalidity, uidnext;
	uint64_t modseq;
	int64_t lastrun;
	struct ms_uidset uids;	   /* IMAP: the stored UIDs */
	/* POP3: the records, and an index to them: 2^k slots of 4 bytes
	 * (record number + 1, 0 = empty), linear probing */
	struct ms_state_pent *ents;
	size_t npop, ecap;
	uint32_t *tab;
	size_t tcap;
	char *pool; /* NUL-terminated UIDLs */
	size_t plen, pcap;
	struct ms_buf pend; /* journal lines not yet written */
};

/* Longest account, host, user or folder name a snapshot header holds
 * (percent-encoded it stays below the parser's 16 KiB line limit). */
#define MS_STATE_VALUE_MAX 4096

#define MS_STATE_FNV0 0xcbf29ce484222325ULL

/* 64-bit FNV-1a: checksums, journal ids, hash slots. */
static inline uint64_t ms_state_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--) {
		h ^= *c++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Number of stored messages. */
uint64_t ms_state_nrec(const struct ms_state *s);

/* Records (state_mem.c; IMAP UIDs: ms_uidset_* on s->uids).
 * MS_EINTERNAL when out of memory. */
/* Insert, or update the size of a known UIDL (*known = 1; first_seen
 * stays).  u is n bytes, valid (ms_state_uidl_ok). */
int ms_state_uidl_put(struct ms_state *s, const char *u, size_t n,
		      uint64_t size, int64_t first_seen, int *known);
void ms_state_uidl_del(struct ms_state *s, const char *u, size_t n);
/* 1..70 bytes 0x21-0x7E (RFC 1939). */
int ms_state_uidl_ok(const char *u, size_t n);
/* Set the protocol if unknown; 1 if it is (now) proto. */
int ms_state_take_proto(struct ms_state *s, int proto);
/* Forget every record; header = (uidvalidity, 0, 0). */
void ms_state_clear(struct ms_state *s, uint32_t uidvalidity);

/* A zeroed state owning copies of the non-NULL identity strings. */
int ms_state_alloc(struct ms_state **out, int proto, const char *account,
		   const char *host, const char *user, const char *folder,
		   struct ms_err *e);
/* Free everything but the file descriptors. */
void ms_state_free_mem(struct ms_state *s);
/* Parse the snapshot and journal bytes (NULL: file absent) into s and set
 * status and need_compact.  Fails only when out of memory. */
int ms_state_load(struct ms_state *s, const char *snap, size_t snap_len,
		  const char *jnl, size_t jnl_len, struct ms_err *e);
/* The snapshot of s, stamped with lastrun, appended to b. */
int ms_state_snapshot(const struct ms_state *s, int64_t lastrun,
		      struct ms_buf *b, struct ms_err *e);
/* The first line of a new journal, appended to b. */
int ms_state_journal_head(const struct ms_state *s, struct ms_buf *b,
			  struct ms_err *e);

#endif
