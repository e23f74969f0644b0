/*
 * uidset.h: a set of IMAP UIDs (or POP3 message numbers) kept as sorted,
 * disjoint ranges.  Appending in ascending order is O(1), so a folder of
 * 100,000 contiguous UIDs costs one range, not 400 KB.
 */
#ifndef MS_UIDSET_H
#define MS_UIDSET_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct ms_uidrange {
	uint32_t lo, hi; /* inclusive */
};

struct ms_uidset {
	struct ms_uidrange *r; /* owned */
	size_t n, cap;
	size_t count;          /* number of UIDs */
};

void ms_uidset_init(struct ms_uidset *s);
void ms_uidset_free(struct ms_uidset *s);
/* Add uid (any order; ascending is fastest). */
int ms_uidset_add(struct ms_uidset *s, uint32_t uid, struct ms_err *e);
int ms_uidset_has(const struct ms_uidset *s, uint32_t uid);

#endif
