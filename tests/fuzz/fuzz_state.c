/*
 * fuzz_state.c: libFuzzer target for the state snapshot and journal
 * parsers (core/state_fmt.c, core/state_mem.c).
 *
 * Input: byte 0 holds flags, the rest is the snapshot, then a NUL byte,
 * then the journal.  Flags: 1 snapshot present, 2 journal present, 4
 * check the identity of a fixed IMAP account (8: a POP3 one) instead of
 * taking it from the header, 16 replace the snapshot's last line by a
 * correct "end COUNT CHECKSUM" trailer (COUNT from its "count" line) so
 * that the checks after the checksum are reached too.  Properties: no
 * crash or leak; foreach agrees with count and has_uid/has_uidl; an OK
 * state written out and parsed again is OK with the same records, and an
 * IMAP snapshot written twice is byte-identical.
 * Build: clang -fsanitize=fuzzer,address,undefined -Icore ...; for a
 * plain replay of files (no libFuzzer) add tests/fuzz/standalone.c.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VISIT_MAX 100000

struct visit {
	const struct ms_state *other; /* NULL: check against itself */
	const struct ms_state *self;
	size_t n;
};

static int visit_cb(void *ctx, const struct ms_msg *m, time_t first_seen)
{
	struct visit *v = ctx;
	const struct ms_state *s = v->other ? v->other : v->self;
	uint64_t size = 0;
	time_t fs = 0;

	if (m->uidl[0]) {
		if (!ms_state_has_uidl(s, m->uidl, &size, &fs) ||
		    size != m->size || fs != first_seen)
			abort();
	} else if (!ms_state_has_uid(s, m->uid)) {
		abort();
	}
	return ++v->n >= VISIT_MAX;
}

static void check_visits(const struct ms_state *s, const struct ms_state *o)
{
	struct visit v = {o, s, 0};

	ms_state_foreach(s, visit_cb, &v);
	if (v.n < VISIT_MAX && v.n != ms_state_count(s))
		abort();
}

/* The snapshot with its last line replaced by a correct trailer. */
static char *fix_trailer(const char *p, size_t n, size_t *out_len)
{
	size_t keep = n, cap;
	const char *c;
	char *q;

	while (keep > 0 && p[keep - 1] != '\n')
		keep--;
	if (keep > 0) /* drop the last complete line too */
		for (keep--; keep > 0 && p[keep - 1] != '\n'; keep--)
			;
	cap = keep + 64;
	if (!(q = malloc(cap)))
		return NULL;
	memcpy(q, p, keep);
	q[keep] = '\0';
	c = strstr(q, "\ncount ");
	*out_len = keep + (size_t)snprintf(
			      q + keep, cap - keep, "end %llu %016" PRIx64 "\n",
			      c ? strtoull(c + 7, NULL, 10) : 0ULL,
			      ms_state_fnv(MS_STATE_FNV0, q, keep));
	return q;
}

static void roundtrip(const struct ms_state *s)
{
	struct ms_buf b1, b2;
	struct ms_state *t = NULL;
	struct ms_err e;

	ms_buf_init(&b1, 0);
	ms_buf_init(&b2, 0);
	if (ms_state_snapshot(s, ms_state_last_run(s), &b1, &e) < 0)
		goto out;
	if (ms_state_parse_mem(&t, NULL, NULL, b1.s, b1.len, NULL, 0, &e) < 0)
		goto out;
	if (ms_state_status(t) != MS_STATE_OK ||
	    ms_state_count(t) != ms_state_count(s) ||
	    ms_state_uidvalidity(t) != ms_state_uidvalidity(s) ||
	    ms_state_modseq(t) != ms_state_modseq(s))
		abort();
	check_visits(s, t);
	if (s->proto == MS_PROTO_IMAP) {
		if (ms_state_snapshot(t, ms_state_last_run(t), &b2, &e) < 0)
			goto out;
		if (b1.len != b2.len || memcmp(b1.s, b2.s, b1.len))
			abort();
	}
out:
	ms_state_close(t);
	ms_buf_free(&b1);
	ms_buf_free(&b2);
}

/* Edits on a parsed (read-only) state stay consistent. */
static void edit(struct ms_state *s, const uint8_t *d, size_t n)
{
	struct ms_msg m;
	struct ms_err e;
	size_t before = ms_state_count(s);
	uint32_t uid = 1;

	memset(&m, 0, sizeof m);
	if (n >= 4)
		uid = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
		      (uint32_t)d[2] << 8 | d[3];
	m.uid = uid ? uid : 1;
	m.uidvalidity = ms_state_uidvalidity(s);
	snprintf(m.uidl, sizeof m.uidl, "fz%08" PRIx32, uid);
	if (ms_state_add(s, &m, 5, &e) == 0) {
		if (!(s->proto == MS_PROTO_POP3
			  ? ms_state_has_uidl(s, m.uidl, NULL, NULL)
			  : ms_state_has_uid(s, m.uid)))
			abort();
		if (ms_state_del(s, &m, &e) == 0 && ms_state_count(s) > before)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_account a;
	struct ms_state *s = NULL;
	struct ms_err e;
	const char *snap = NULL, *jnl = NULL, *p, *nul;
	char *fixed = NULL;
	size_t sn = 0, jn = 0, n;
	unsigned flags;

	if (size < 1)
		return 0;
	flags = data[0];
	p = (const char *)data + 1;
	n = size - 1;
	nul = memchr(p, '\0', n);
	if (flags & 1) {
		snap = p;
		sn = nul ? (size_t)(nul - p) : n;
		if ((flags & 16) && (fixed = fix_trailer(snap, sn, &sn)))
			snap = fixed;
	}
	if ((flags & 2) && nul) {
		jnl = nul + 1;
		jn = n - (size_t)(nul - p) - 1;
	}
	memset(&a, 0, sizeof a);
	a.name = "acct";
	a.proto = flags & 8 ? MS_PROTO_POP3 : MS_PROTO_IMAP;
	a.host = "imap.example.org";
	a.user = "me@example.org";
	if (ms_state_parse_mem(&s, flags & 12 ? &a : NULL,
			       flags & 12 ? "INBOX" : NULL, snap, sn, jnl, jn,
			       &e) == 0) {
		if (ms_state_status(s) == MS_STATE_BAD && ms_state_count(s))
			abort();
		check_visits(s, NULL);
		if (ms_state_status(s) == MS_STATE_OK)
			roundtrip(s);
		edit(s, data, size);
		ms_state_close(s);
	}
	free(fixed);
	return 0;
}
