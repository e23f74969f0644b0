/*
 * uidset.c: UID sets as sorted ranges (see uidset.h).  Lookups are binary
 * searches.  A UID that does not extend or follow the last range waits
 * unsorted in pu; the next read sorts pu and merges it with the ranges
 * backwards into space reserved at the end of r, so a set rebuilt from a
 * store scanned in any order costs O(n log n), not a memmove per UID, and
 * the merge needs no allocation: readers can do it behind a const pointer.
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
	free(s->pu);
	ms_uidset_init(s);
}

static int oom(struct ms_err *e)
{
	return ms_err_set(e, MS_EINTERNAL, "UID set: out of memory");
}

/* Index of the first range with hi >= uid (n when none); pu not read. */
static size_t find(const struct ms_uidset *s, uint32_t uid)
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

static int in_ranges(const struct ms_uidset *s, uint32_t uid)
{
	size_t i = find(s, uid);

	return i < s->n && s->r[i].lo <= uid;
}

/* Make room for want ranges (keeping cap >= n + npu), doubling. */
static int reserve(struct ms_uidset *s, size_t want)
{
	struct ms_uidrange *r;
	size_t cap;

	if (s->cap >= want)
		return 0;
	cap = s->cap ? 2 * s->cap : 4;
	if (cap < want)
		cap = want;
	if (!(r = realloc(s->r, cap * sizeof *r)))
		return MS_EINTERNAL;
	s->r = r;
	s->cap = cap;
	return 0;
}

/* Insert [lo,hi] at index i (no pending UIDs). */
static int insert(struct ms_uidset *s, size_t i, uint32_t lo, uint32_t hi)
{
	if (reserve(s, s->n + 1) < 0)
		return MS_EINTERNAL;
	memmove(s->r + i + 1, s->r + i, (s->n - i) * sizeof *s->r);
	s->r[i].lo = lo;
	s->r[i].hi = hi;
	s->n++;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Merge pu into r, from the largest UID down, writing at the end of r
 * (cap >= n + npu).  It cannot overwrite a range not yet read: each range
 * written has consumed at least one input, range or pending UID. */
static void settle(struct ms_uidset *s)
{
	struct ms_uidrange cur = {0, 0}, in;
	size_t i = s->n, j = s->npu, w = s->cap;
	int have = 0;

	if (!s->npu)
		return;
	qsort(s->pu, s->npu, sizeof *s->pu, cmp_u32);
	while (i > 0 || j > 0) {
		if (j == 0 || (i > 0 && s->r[i - 1].hi >= s->pu[j - 1])) {
			in = s->r[--i];
		} else {
			in.lo = in.hi = s->pu[--j];
		}
		if (have && in.hi + 1ULL >= cur.lo) { /* overlap or touch */
			if (in.lo < cur.lo)
				cur.lo = in.lo;
			continue;
		}
		if (have)
			s->r[--w] = cur;
		cur = in;
		have = 1;
	}
	s->r[--w] = cur;
	s->n = s->cap - w;
	memmove(s->r, s->r + w, s->n * sizeof *s->r);
	s->count = 0;
	for (i = 0; i < s->n; i++)
		s->count += (uint64_t)s->r[i].hi - s->r[i].lo + 1;
	free(s->pu);
	s->pu = NULL;
	s->npu = s->pucap = 0;
}

/* For the readers: settling changes the representation, not the set. */
static void settle_c(const struct ms_uidset *s)
{
	settle((struct ms_uidset *)s);
}

static int push_pending(struct ms_uidset *s, uint32_t uid, struct ms_err *e)
{
	if (s->npu == s->pucap) {
		size_t cap = s->pucap ? 2 * s->pucap : 64;
		uint32_t *p = realloc(s->pu, cap * sizeof *p);

		if (!p)
			return oom(e);
		s->pu = p;
		s->pucap = cap;
	}
	if (reserve(s, s->n + s->npu + 1) < 0)
		return oom(e);
	s->pu[s->npu++] = uid;
	return 0;
}

int ms_uidset_add(struct ms_uidset *s, uint32_t uid, struct ms_err *e)
{
	size_t n = s->n;

	if (!s->npu && (!n || uid > s->r[n - 1].hi)) {
		if (n && uid == s->r[n - 1].hi + 1ULL) /* the common case */
			s->r[n - 1].hi = uid;
		else if (insert(s, n, uid, uid) < 0)
			return oom(e);
		s->count++;
		return 0;
	}
	if (in_ranges(s, uid))
		return 1;
	return push_pending(s, uid, e);
}

int ms_uidset_append(struct ms_uidset *s, uint32_t lo, uint32_t hi,
		     struct ms_err *e)
{
	struct ms_uidrange *last;

	settle(s);
	last = s->n ? &s->r[s->n - 1] : NULL;
	if (lo > hi || (last && lo <= last->hi))
		return 1;
	if (last && lo == last->hi + 1ULL)
		last->hi = hi;
	else if (insert(s, s->n, lo, hi) < 0)
		return oom(e);
	s->count += (uint64_t)hi - lo + 1;
	return 0;
}

int ms_uidset_del(struct ms_uidset *s, uint32_t uid, struct ms_err *e)
{
	struct ms_uidrange *r;
	size_t i;

	settle(s);
	i = find(s, uid);
	if (i == s->n || s->r[i].lo > uid)
		return 1;
	r = &s->r[i];
	if (r->lo == r->hi) {
		memmove(r, r + 1, (s->n - i - 1) * sizeof *r);
		s->n--;
	} else if (uid == r->lo) {
		r->lo++;
	} else if (uid == r->hi) {
		r->hi--;
	} else {
		uint32_t hi = r->hi; /* r moves if insert reallocates */

		if (insert(s, i + 1, uid + 1, hi) < 0)
			return oom(e);
		s->r[i].hi = uid - 1;
	}
	s->count--;
	return 0;
}

int ms_uidset_has(const struct ms_uidset *s, uint32_t uid)
{
	settle_c(s);
	return in_ranges(s, uid);
}

uint64_t ms_uidset_count(const struct ms_uidset *s)
{
	settle_c(s);
	return s->count;
}

const struct ms_uidrange *ms_uidset_ranges(const struct ms_uidset *s, size_t *n)
{
	settle_c(s);
	*n = s->n;
	return s->n ? s->r : NULL;
}
