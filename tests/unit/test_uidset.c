/*
 * test_uidset.c: UID range sets.  A table of operation scripts (ordered
 * and out-of-order adds, deletes that shrink, split or remove a range,
 * range appends, the top of the UID space) with the ranges they must
 * leave; 100,000 contiguous UIDs in any order make one range; and a
 * differential run of 200,000 random operations against a bitmap.
 */
#include "t.h"
#include "uidset.h"

#include <stdlib.h>

/* "1-3,5" for the set's ranges (via the public iterator). */
static void render(const struct ms_uidset *s, char *out, size_t cap)
{
	size_t i, n, len = 0;
	const struct ms_uidrange *r = ms_uidset_ranges(s, &n);

	out[0] = '\0';
	for (i = 0; i < n && len < cap; i++) {
		if (r[i].lo == r[i].hi)
			len +=
			    (size_t)snprintf(out + len, cap - len, "%s%" PRIu32,
					     i ? "," : "", r[i].lo);
		else
			len += (size_t)snprintf(out + len, cap - len,
						"%s%" PRIu32 "-%" PRIu32,
						i ? "," : "", r[i].lo, r[i].hi);
	}
}

/* Ops: "+U" add, "-U" delete, "aL-H" append; "?R" after an op expects
 * return code R (0 when absent). */
struct tcase {
	const char *name, *ops, *want;
	uint64_t count;
};

static const struct tcase cases[] = {
    {"ascending adds extend one range", "+1 +2 +3", "1-3", 3},
    {"a gap makes a second range", "+1 +3", "1,3", 2},
    {"shuffled 1..10 merge into one range", "+5 +3 +4 +1 +2 +10 +8 +9 +7 +6",
     "1-10", 10},
    {"descending adds", "+10 +9 +8", "8-10", 3},
    {"a UID queued twice is counted once", "+5 +3 +3?0 +3", "3,5", 2},
    {"re-adding a stored UID says so", "+1 +2 +3 +2?1", "1-3", 3},
    {"an out-of-order add bridges two ranges", "+1 +2 +5 +6 +3 +4", "1-6", 6},
    {"a middle UID joins its neighbours", "+1 +3 +2", "1-3", 3},
    {"pending adds below, between and above", "+10 +20 +5 +15 +25 +21",
     "5,10,15,20-21,25", 6},
    {"delete in the middle splits", "a1-10 -5", "1-4,6-10", 9},
    {"delete the low end shrinks", "a1-10 -1", "2-10", 9},
    {"delete the high end shrinks", "a1-10 -10", "1-9", 9},
    {"delete a one-UID range removes it", "+1 +3 +5 -3", "1,5", 2},
    {"delete the first range", "+1 +3 +5 -1", "3,5", 2},
    {"delete the last range", "+1 +3 +5 -5", "1,3", 2},
    {"delete a UID not in the set", "+1 -2?1 -0?1", "1", 1},
    {"delete from an empty set", "-1?1", "", 0},
    {"delete settles pending adds first", "+5 +3 -3?0 -4?1", "5", 1},
    {"delete everything", "+1 +2 -1 -2", "", 0},
    {"splits then refill", "a1-10 -3 -5 -7 +5 +3 +7", "1-10", 10},
    {"many splits", "a1-9 -2 -4 -6 -8", "1,3,5,7,9", 5},
    {"append touching the last range merges", "a1-5 a6-9", "1-9", 9},
    {"append after a gap", "a1-5 a8-9", "1-5,8-9", 7},
    {"append overlapping the top is refused", "a1-5 a5-9?1", "1-5", 5},
    {"append below is refused", "a10-20 a1-5?1", "10-20", 11},
    {"append lo > hi is refused", "a5-3?1", "", 0},
    {"append a single UID", "a7-7 a9-9", "7,9", 2},
    {"append after pending adds", "+5 +3 a6-8", "3,5-8", 5},
    {"append below a pending add is refused", "+5 +9 +3 a6-8?1", "3,5,9", 3},
    {"add after an append extends it", "a1-100 +101 +103", "1-101,103", 102},
    {"top of the UID space", "+4294967295 +4294967294", "4294967294-4294967295",
     2},
    {"max UID then a low one", "+4294967295 +1", "1,4294967295", 2},
    {"max UID re-added", "a4294967290-4294967295 +4294967295?1",
     "4294967290-4294967295", 6},
    {"append the whole UID space", "a1-4294967295 +77?1 -1 -4294967295",
     "2-4294967294", 4294967293ULL},
    {"delete the max UID", "a4294967294-4294967295 -4294967295", "4294967294",
     1},
    {"split just below the max", "a4294967293-4294967295 -4294967294",
     "4294967293,4294967295", 2},
    {"nothing follows the max UID", "+4294967295 a1-2?1", "4294967295", 1},
};

static int run_ops(struct ms_uidset *s, const char *ops, char *why, size_t cap)
{
	struct ms_err e;
	const char *p = ops;

	while (*p) {
		char op = *p++, *end;
		unsigned long long a = strtoull(p, &end, 10), b = a;
		long want = 0;
		int rc;

		if (op == 'a' && *end == '-')
			b = strtoull(end + 1, &end, 10);
		if (*end == '?')
			want = strtol(end + 1, &end, 10);
		if (op == '+')
			rc = ms_uidset_add(s, (uint32_t)a, &e);
		else if (op == '-')
			rc = ms_uidset_del(s, (uint32_t)a, &e);
		else
			rc = ms_uidset_append(s, (uint32_t)a, (uint32_t)b, &e);
		if (rc != want) {
			snprintf(why, cap, "op %c%llu returned %d, want %ld",
				 op, a, rc, want);
			return 0;
		}
		if (s->cap < s->n + s->npu) {
			snprintf(why, cap, "cap %zu < n %zu + npu %zu", s->cap,
				 s->n, s->npu);
			return 0;
		}
		while (*end == ' ')
			end++;
		p = end;
	}
	return 1;
}

static void table(void)
{
	char got[256], why[128], name[160];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct tcase *c = &cases[i];
		struct ms_uidset s;
		int ok;

		ms_uidset_init(&s);
		why[0] = '\0';
		ok = run_ops(&s, c->ops, why, sizeof why);
		snprintf(name, sizeof name, "%s: return codes", c->name);
		if (!T_OK(ok, name))
			printf("#   %s\n", why);
		render(&s, got, sizeof got);
		snprintf(name, sizeof name, "%s: ranges", c->name);
		T_EQ_STR(got, c->want, name);
		snprintf(name, sizeof name, "%s: count", c->name);
		T_EQ_INT(ms_uidset_count(&s), c->count, name);
		ms_uidset_free(&s);
	}
}

/* 100,000 contiguous UIDs are one range, whatever the order. */
static void contiguous(void)
{
	enum { N = 100000 };
	static uint32_t v[N];
	const struct ms_uidrange *r;
	struct ms_uidset s;
	struct ms_err e;
	int rc = 0;
	size_t n;
	uint64_t x = 42;

	ms_uidset_init(&s);
	for (uint32_t u = 1; u <= N; u++)
		rc |= ms_uidset_add(&s, u, &e);
	T_EQ_INT(rc, 0, "100000 ascending adds all return 0");
	T_EQ_INT(s.n, 1, "100000 ascending UIDs are one range at once");
	T_EQ_INT(s.cap, 4, "... in the first allocation");
	T_EQ_INT(ms_uidset_count(&s), N, "count of 100000");
	T_OK(ms_uidset_has(&s, 1) && ms_uidset_has(&s, N), "both ends present");
	T_OK(!ms_uidset_has(&s, 0) && !ms_uidset_has(&s, N + 1),
	     "outside absent");
	ms_uidset_free(&s);
	T_OK(!s.r && !s.pu && !s.n && !s.count, "free leaves an empty set");

	for (uint32_t i = 0; i < N; i++)
		v[i] = i + 1000;
	for (uint32_t i = N - 1; i > 0; i--) { /* Fisher-Yates, xorshift */
		uint32_t j, t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (uint32_t)(x % (i + 1));
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	for (uint32_t i = 0; i < N; i++)
		rc |= ms_uidset_add(&s, v[i], &e);
	T_EQ_INT(rc, 0, "100000 shuffled adds all return 0");
	r = ms_uidset_ranges(&s, &n);
	T_OK(n == 1 && r[0].lo == 1000 && r[0].hi == 1000 + N - 1,
	     "100000 shuffled UIDs merge into one range");
	T_EQ_INT(s.npu, 0, "reading the ranges merged the pending UIDs");
	T_EQ_INT(ms_uidset_count(&s), N, "shuffled count of 100000");
	ms_uidset_free(&s);

	for (uint32_t u = N; u >= 1; u--)
		rc |= ms_uidset_add(&s, u, &e);
	T_EQ_INT(rc, 0, "100000 descending adds all return 0");
	r = ms_uidset_ranges(&s, &n);
	T_OK(n == 1 && r[0].lo == 1 && r[0].hi == N,
	     "100000 descending UIDs merge into one range");
	ms_uidset_free(&s);
	r = ms_uidset_ranges(&s, &n);
	T_OK(n == 0 && r == NULL, "an empty set has no ranges");
}

/* Universe: 1..1024 and the top 1024 UIDs, so the random ops collide and
 * reach 4294967295. */
enum { HALF = 1024, U = 2 * HALF };

static uint32_t uid_of(uint32_t i)
{
	return i < HALF ? i + 1 : UINT32_MAX - (U - 1 - i);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Do the set's ranges hold exactly the bitmap's UIDs? */
static int same(const struct ms_uidset *s, const unsigned char *bit)
{
	size_t n, k = 0;
	const struct ms_uidrange *r = ms_uidset_ranges(s, &n);
	uint64_t count = 0;

	for (uint32_t i = 0; i < U; i++) {
		uint32_t u = uid_of(i);

		while (k < n && r[k].hi < u)
			k++;
		if (bit[i] != (k < n && r[k].lo <= u))
			return 0;
		count += bit[i];
	}
	for (k = 0; k < n; k++) /* disjoint, non-adjacent, ascending */
		if (r[k].lo > r[k].hi ||
		    (k && (uint64_t)r[k - 1].hi + 1 >= r[k].lo))
			return 0;
	return count == ms_uidset_count(s);
}

/* The differential run's state: the set, the bitmap, and the frontier
 * (no bit at or above front), which adds push up slowly so that deletes
 * hit and appends just above it succeed. */
struct diff {
	struct ms_uidset s;
	unsigned char bit[U];
	uint32_t front;
	uint64_t x;
	long bad, adds, dels, apps, refused, queued, rounds;
};

/* Append [i, i+len] (within one half); refused unless above every UID. */
static void diff_append(struct diff *d, uint32_t i)
{
	uint32_t len = (uint32_t)(rnd(&d->x) % 50), end, j;
	int above = i >= d->front, rc;
	struct ms_err e;

	end = i < HALF ? HALF : U;
	if (i + len >= end)
		len = end - 1 - i;
	rc = ms_uidset_append(&d->s, uid_of(i), uid_of(i + len), &e);
	if (rc != (above ? 0 : 1)) {
		printf("#   append %u+%u returned %d\n", i, len, rc);
		d->bad++;
	}
	if (!above) {
		d->refused++;
		return;
	}
	d->apps++;
	for (j = i; j <= i + len; j++)
		d->bit[j] = 1;
	d->front = i + len + 1;
}

static void diff_op(struct diff *d)
{
	uint32_t k = (uint32_t)(rnd(&d->x) % 100), span = d->front + 8, i;
	struct ms_err e;
	size_t npu = d->s.npu;
	int rc;

	i = (uint32_t)(rnd(&d->x) % (span < U ? span : U));
	if (k < 45) {
		rc = ms_uidset_add(&d->s, uid_of(i), &e);
		/* 1 when stored; while UIDs wait unmerged a stored one
		 * may say 0 */
		d->bad +=
		    rc != (d->bit[i] ? 1 : 0) && !(d->bit[i] && npu && rc == 0);
		d->adds += !d->bit[i];
		d->queued += d->s.npu > npu;
		d->bit[i] = 1;
		if (i >= d->front)
			d->front = i + 1;
	} else if (k < 70) {
		rc = ms_uidset_del(&d->s, uid_of(i), &e);
		d->bad += rc != (d->bit[i] ? 0 : 1);
		d->dels += d->bit[i];
		d->bit[i] = 0;
	} else if (k < 93) {
		d->bad += ms_uidset_has(&d->s, uid_of(i)) != d->bit[i];
	} else if (k < 98) {
		i = d->front + (uint32_t)(rnd(&d->x) % 3);
		diff_append(d, i < U ? i : U - 1);
	} else {
		diff_append(d, i);
	}
	d->bad += d->s.cap < d->s.n + d->s.npu;
}

static void differential(void)
{
	static struct diff d;
	long checks = 0, bad_same = 0;

	d.x = 0x9e3779b97f4a7c15ULL;
	ms_uidset_init(&d.s);
	for (long op = 0; op < 200000; op++) {
		if (d.front >= U) { /* full: start over */
			ms_uidset_free(&d.s);
			memset(d.bit, 0, sizeof d.bit);
			d.front = 0;
			d.rounds++;
		}
		diff_op(&d);
		if (op % 1000 == 999) {
			checks++;
			bad_same += !same(&d.s, d.bit);
		}
	}
	printf("# %ld new adds (%ld queued), %ld real deletes, %ld appends, "
	       "%ld refused, %ld times up to UID 4294967295\n",
	       d.adds, d.queued, d.dels, d.apps, d.refused, d.rounds);
	T_EQ_INT(d.bad, 0,
		 "differential: 200000 random add/del/has/append "
		 "return what the bitmap says, cap >= n + npu");
	T_EQ_INT(bad_same, 0,
		 "differential: ranges and count equal the "
		 "bitmap at every 1000th op");
	T_EQ_INT(checks, 200, "differential: 200 full comparisons");
	T_OK(d.adds > 10000 && d.queued > 5000 && d.dels > 20000 &&
		 d.apps > 2000 && d.refused > 1000 && d.rounds > 10,
	     "differential: the ops really added, deleted and appended");
	ms_uidset_free(&d.s);
}

int main(void)
{
	table();
	contiguous();
	differential();
	return t_done();
}
