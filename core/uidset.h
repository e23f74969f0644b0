/*
 * uidset.h: a set of IMAP UIDs kept as sorted, disjoint, non-adjacent
 * ranges: the server's UIDs in the engine (sync_imap.c, sync_mirror.c) and
 * the stored UIDs of a folder's state (state_mem.c).  Appending the next
 * UID is O(1), so 100,000 contiguous UIDs are one range of 8 bytes, not
 * 400 KB.  UIDs added out of order wait unsorted and are merged in one
 * O(n log n) pass when the set is next read, so a set built in any order
 * never pays a memmove per UID.
 */
#ifndef MS_UIDSET_H
#define MS_UIDSET_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct ms_uidrange {
	uint32_t lo, hi; /* inclusive */
};

/* Treat the fields as private: read through the functions below, which
 * merge the pending UIDs first. */
struct ms_uidset {
	struct ms_uidrange *r; /* owned; sorted, disjoint, non-adjacent */
	size_t n, cap;	       /* cap >= n + npu: merging cannot fail */
	uint64_t count;	       /* UIDs in r (pending ones not counted) */
	uint32_t *pu;	       /* owned; added out of order, not yet in r */
	size_t npu, pucap;
};

void ms_uidset_init(struct ms_uidset *s);
/* Free the memory; s is empty (and initialised) again. */
void ms_uidset_free(struct ms_uidset *s);

/* Add uid, in any order (ascending is O(1)).  1 if it was already in the
 * set, 0 if added (or queued: a UID queued twice is merged once),
 * MS_EINTERNAL when out of memory (e may be NULL). */
int ms_uidset_add(struct ms_uidset *s, uint32_t uid, struct ms_err *e);
/* Add [lo,hi] above every member: 0, 1 if lo > hi or lo is not above
 * the largest member (nothing changed), MS_EINTERNAL. */
int ms_uidset_append(struct ms_uidset *s, uint32_t lo, uint32_t hi,
		     struct ms_err *e);
/* Remove uid (shrinking or splitting its range): 0 removed, 1 not in the
 * set, MS_EINTERNAL (a split needs a range more). */
int ms_uidset_del(struct ms_uidset *s, uint32_t uid, struct ms_err *e);

/*
 * The readers below are logically const: they may merge the pending UIDs
 * first, which changes the representation, not the set, and cannot fail.
 * So do not read one set from two threads at once.
 */
int ms_uidset_has(const struct ms_uidset *s, uint32_t uid);
/* Number of UIDs (up to 2^32). */
uint64_t ms_uidset_count(const struct ms_uidset *s);
/* The ranges in ascending order, *n of them (NULL when empty).  Valid
 * until the set next changes:
 *	const struct ms_uidrange *r = ms_uidset_ranges(s, &n);
 *	for (i = 0; i < n; i++) ... r[i].lo .. r[i].hi ...
 */
const struct ms_uidrange *ms_uidset_ranges(const struct ms_uidset *s,
					   size_t *n);

#endif
