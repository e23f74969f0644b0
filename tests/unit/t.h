/*
 * t.h: a tiny TAP producer for table-driven unit tests.
 * Each check prints "ok N - name" or "not ok N - name"; t_done() returns
 * the exit status.  tests/run.sh counts the lines.
 */
#ifndef MS_T_H
#define MS_T_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int t_n, t_fail;

static inline int t_ok(int cond, const char *name)
{
	t_n++;
	if (!cond)
		t_fail++;
	printf("%sok %d - %s\n", cond ? "" : "not ", t_n, name);
	fflush(stdout);
	return cond;
}

/* Deterministic xorshift32 for generated inputs; seed t_rng_state. */
static uint32_t t_rng_state = 1;

static inline uint32_t t_rng(void)
{
	t_rng_state ^= t_rng_state << 13;
	t_rng_state ^= t_rng_state >> 17;
	t_rng_state ^= t_rng_state << 5;
	return t_rng_state;
}

/* 1 to 12 pieces drawn from piece[0..npiece), concatenated into p while
 * they fit in cap bytes; returns the length. */
static inline size_t t_gen_pieces(char *p, size_t cap,
				  const char *const *piece, size_t npiece)
{
	size_t n = 0, k = 1 + t_rng() % 12, i, l;

	for (i = 0; i < k; i++) {
		const char *s = piece[t_rng() % npiece];

		l = strlen(s);
		if (n + l > cap)
			break;
		memcpy(p + n, s, l);
		n += l;
	}
	return n;
}

#define T_OK(cond, name) t_ok(!!(cond), name)
#define T_EQ_INT(got, want, name)                                         \
	do {                                                              \
		long long g_ = (long long)(got), w_ = (long long)(want);  \
		if (!t_ok(g_ == w_, name))                                \
			printf("#   got %lld, want %lld\n", g_, w_);      \
	} while (0)
#define T_EQ_STR(got, want, name)                                         \
	do {                                                              \
		const char *g_ = (got), *w_ = (want);                     \
		int same_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;  \
		if (!t_ok(same_, name))                                   \
			printf("#   got \"%s\", want \"%s\"\n",           \
			       g_ ? g_ : "(null)", w_ ? w_ : "(null)");   \
	} while (0)
#define T_EQ_MEM(got, glen, want, wlen, name)                             \
	t_ok((glen) == (wlen) && memcmp((got), (want), (wlen)) == 0, name)

static inline int t_done(void)
{
	printf("1..%d\n", t_n);
	return t_fail ? 1 : 0;
}

#endif
