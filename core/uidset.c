/*
 * uidset.c: UID sets as sorted ranges (see uidset.h).  Lookups are binary
 * searches; inserting out of order shifts the tail, which only happens
 * for servers that list UIDs unsorted.
 */
#include "uidset.h"

#include <stdlib.h>
#include <string.h>

void ms_uidset_init(struct ms_uidset *s)
{
	memset(s, 0, sizeof *s);
}

void ms_uidset_free(struct ms_uidset *s)
{
	free(s->r);
	ms_uidset_init(s);
}

/* Index of the first range with hi >= uid (n when none). */
static size_t lower(const struct ms_uidset *s, uint32_t uid)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].hi < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int ms_uidset_has(const struct ms_uidset *s, uint32_t uid)
{
	size_t i = lower(s, uid);

	return i < s->n && s->r[i].lo <= uid;
}

static int insert_at(struct ms_uidset *s, size_t i, uint32_t uid,
		     struct ms_err *e)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct ms_uidrange *p = realloc(s->r, ncap * sizeof *p);
		if (!p)
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		s->r = p;
		s->cap = ncap;
	}
	memmove(s->r + i + 1, s->r + i, (s->n - i) * sizeof *s->r);
	s->r[i].lo = s->r[i].hi = uid;
	s->n++;
	return 0;
}

int ms_uidset_add(struct ms_uidset *s, uint32_t uid, struct ms_err *e)
{
	size_t i;
	int rc;

	/* fast path: extends or follows the last range */
	if (s->n && s->r[s->n - 1].hi < uid) {
		if (s->r[s->n - 1].hi + 1 == uid) {
			s->r[s->n - 1].hi = uid;
			s->count++;
			return 0;
		}
		i = s->n;
	} else {
		i = lower(s, uid);
		if (i < s->n && s->r[i].lo <= uid)
			return 0; /* present */
	}
	if (i > 0 && s->r[i - 1].hi + 1 == uid) {
		s->r[i - 1].hi = uid;
	} else if (i < s->n && uid + 1 == s->r[i].lo) {
		s->r[i].lo = uid;
	} else {
		if ((rc = insert_at(s, i, uid, e)) < 0)
			return rc;
		s->count++;
		return 0;
	}
	s->count++;
	/* merge neighbours that now touch */
	if (i > 0 && i < s->n && s->r[i - 1].hi + 1 >= s->r[i].lo) {
		s->r[i - 1].hi = s->r[i].hi;
		memmove(s->r + i, s->r + i + 1, (s->n - i - 1) * sizeof *s->r);
		s->n--;
	}
	return 0;
}
