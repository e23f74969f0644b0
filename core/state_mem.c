/*
 * state_mem.c: a folder's state in memory, and the pure part of the API.
 *
 * IMAP UIDs are a range set (uidset.c): appending the next UID is O(1),
 * so 100,000 contiguous UIDs are one range of 8 bytes, and UIDs added out
 * of order are merged in O(n log n).  POP3 records are one dense array
 * (24 bytes each, UIDLs in one string pool) indexed by an open-addressing
 * hash table of 4-byte slots (linear probing, backward-shift deletion, no
 * tombstones): 100,000 UIDLs cost about 5 MB, not 100,000 mallocs.  Changes are
 * applied here at once and queued as journal lines for ms_state_sync.
 */
#include "state_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t ms_state_nrec(const struct ms_state *s)
{
	if (s->proto == MS_PROTO_POP3)
		return s->npop;
	return ms_uidset_count(&s->uids);
}

/* ---- POP3 UIDL table ---- */

static uint32_t uidl_hash(const char *u, size_t n)
{
	uint64_t h = ms_state_fnv(MS_STATE_FNV0, u, n);

	return (uint32_t)(h ^ (h >> 32));
}

/* Slot holding uidl, or the empty slot where it would go (tcap > 0). */
static size_t pop_slot(const struct ms_state *s, const char *u, size_t n,
		       uint32_t h, int *found)
{
	size_t mask = s->tcap - 1, i = h & mask;

	for (;; i = (i + 1) & mask) {
		const struct ms_state_pent *p;

		*found = s->tab[i] != 0;
		if (!s->tab[i])
			return i;
		p = &s->ents[s->tab[i] - 1];
		if (p->hash == h && strncmp(s->pool + p->off, u, n) == 0 &&
		    s->pool[p->off + n] == '\0')
			return i;
	}
}

static const struct ms_state_pent *pop_get(const struct ms_state *s,
					   const char *u)
{
	size_t n = strlen(u), i;
	int found;

	if (!s->tcap)
		return NULL;
	i = pop_slot(s, u, n, uidl_hash(u, n), &found);
	return found ? &s->ents[s->tab[i] - 1] : NULL;
}

/* The first empty slot from record k's home. */
static size_t free_slot(const struct ms_state *s, size_t k)
{
	size_t mask = s->tcap - 1, j = s->ents[k].hash & mask;

	while (s->tab[j])
		j = (j + 1) & mask;
	return j;
}

/* Room for one more record: the array, and slots at most 70% full. */
static int pop_grow(struct ms_state *s)
{
	size_t cap;

	if (s->npop == s->ecap) {
		struct ms_state_pent *v;

		cap = s->ecap ? s->ecap * 2 : 64;
		if (!(v = realloc(s->ents, cap * sizeof *v)))
			return MS_EINTERNAL;
		s->ents = v;
		s->ecap = cap;
	}
	if ((s->npop + 1) * 10 > s->tcap * 7) {
		uint32_t *t;

		cap = s->tcap ? s->tcap * 2 : 128;
		if (cap > (size_t)UINT32_MAX || !(t = calloc(cap, sizeof *t)))
			return MS_EINTERNAL;
		free(s->tab);
		s->tab = t;
		s->tcap = cap;
		for (size_t k = 0; k < s->npop; k++)
			s->tab[free_slot(s, k)] = (uint32_t)(k + 1);
	}
	return 0;
}

static int pool_add(struct ms_state *s, const char *u, size_t n, uint32_t *off)
{
	if (!s->plen)
		s->plen = 1; /* offset 0 marks an empty slot */
	if (s->plen + n + 1 > UINT32_MAX)
		return MS_EINTERNAL;
	if (s->plen + n + 1 > s->pcap) {
		size_t cap = s->pcap ? s->pcap * 2 : 4096;
		char *p;

		while (cap < s->plen + n + 1)
			cap *= 2;
		if (!(p = realloc(s->pool, cap)))
			return MS_EINTERNAL;
		s->pool = p;
		s->pcap = cap;
	}
	memcpy(s->pool + s->plen, u, n);
	s->pool[s->plen + n] = '\0';
	*off = (uint32_t)s->plen;
	s->plen += n + 1;
	return 0;
}

/* Insert, or update the size of a known UIDL (first_seen stays: it is
 * when the message was first seen, which a replay must not move). */
int ms_state_uidl_put(struct ms_state *s, const char *u, size_t n,
		      uint64_t size, int64_t first_seen, int *dup)
{
	uint32_t h = uidl_hash(u, n), off;
	struct ms_state_pent *p;
	size_t i;
	int found;

	if (pop_grow(s) < 0)
		return MS_EINTERNAL;
	i = pop_slot(s, u, n, h, &found);
	if (dup)
		*dup = found;
	if (found) {
		s->ents[s->tab[i] - 1].size = size;
		return 0;
	}
	if (pool_add(s, u, n, &off) < 0)
		return MS_EINTERNAL;
	p = &s->ents[s->npop];
	p->size = size;
	p->first_seen = first_seen;
	p->off = off;
	p->hash = h;
	s->tab[i] = (uint32_t)(++s->npop);
	return 0;
}

/* Remove by backward shifting, so lookups never need tombstones; the
 * last record moves into the hole.  The UIDL's bytes stay in the pool
 * until the state is closed or reset. */
void ms_state_uidl_del(struct ms_state *s, const char *u, size_t n)
{
	size_t mask = s->tcap - 1, i, j, k, last;
	int found;

	if (!s->tcap)
		return;
	i = j = pop_slot(s, u, n, uidl_hash(u, n), &found);
	if (!found)
		return;
	k = s->tab[i] - 1;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!s->tab[j])
			break;
		home = s->ents[s->tab[j] - 1].hash & mask;
		/* leave j where it is if its home is cyclically in (i, j] */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		s->tab[i] = s->tab[j];
		i = j;
	}
	s->tab[i] = 0;
	last = s->npop - 1;
	if (k != last) { /* at most tcap probes: last's slot is there */
		j = s->ents[last].hash & mask;
		for (size_t x = 0; x < s->tcap && s->tab[j] != last + 1; x++)
			j = (j + 1) & mask;
		s->tab[j] = (uint32_t)(k + 1);
		s->ents[k] = s->ents[last];
	}
	s->npop--;
}

void ms_state_clear(struct ms_state *s, uint32_t uidvalidity)
{
	ms_uidset_free(&s->uids);
	free(s->tab);
	free(s->ents);
	free(s->pool);
	s->tab = NULL;
	s->ents = NULL;
	s->pool = NULL;
	s->tcap = s->npop = s->ecap = s->plen = s->pcap = 0;
	s->uidvalidity = uidvalidity;
	s->uidnext = 0;
	s->modseq = 0;
}

int ms_state_uidl_ok(const char *u, size_t n)
{
	size_t i;

	if (n < 1 || n > MS_UIDL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return 0;
	return 1;
}

int ms_state_take_proto(struct ms_state *s, int proto)
{
	if (!s->proto)
		s->proto = proto;
	return s->proto == proto;
}

/* ---- life cycle ---- */

int ms_state_alloc(struct ms_state **out, int proto, const char *account,
		   const char *host, const char *user, const char *folder,
		   struct ms_err *e)
{
	const char *in[] = {account, host, user, folder};
	struct ms_state *s = calloc(1, sizeof *s);
	char **to[4];
	size_t i;

	*out = NULL;
	if (!s)
		return ms_err_set(e, MS_EINTERNAL, "state: out of memory");
	to[0] = &s->account;
	to[1] = &s->host;
	to[2] = &s->user;
	to[3] = &s->folder;
	s->proto = proto;
	s->dirfd = s->jfd = -1;
	ms_buf_init(&s->pend, 0);
	for (i = 0; i < 4; i++) {
		if (in[i] && !(*to[i] = strdup(in[i]))) {
			ms_state_free_mem(s);
			return ms_err_set(e, MS_EINTERNAL,
					  "state: out of memory");
		}
	}
	*out = s;
	return 0;
}

void ms_state_free_mem(struct ms_state *s)
{
	if (!s)
		return;
	ms_state_clear(s, 0);
	ms_buf_free(&s->pend);
	free(s->account);
	free(s->host);
	free(s->user);
	free(s->folder);
	free(s->snap_name);
	free(s->jnl_name);
	free(s->dir_path);
	free(s->snap_path);
	free(s->jnl_path);
	free(s);
}

/* ---- the pure part of the public API ---- */

int ms_state_status(const struct ms_state *s)
{
	return s->status;
}

uint32_t ms_state_uidvalidity(const struct ms_state *s)
{
	return s->uidvalidity;
}

uint32_t ms_state_uidnext(const struct ms_state *s)
{
	return s->uidnext;
}

uint64_t ms_state_modseq(const struct ms_state *s)
{
	return s->modseq;
}

time_t ms_state_last_run(const struct ms_state *s)
{
	return (time_t)s->lastrun;
}

size_t ms_state_count(const struct ms_state *s)
{
	return (size_t)ms_state_nrec(s);
}

/* Queue one journal line.  Nothing is queued when the next sync writes a
 * whole snapshot anyway; if queueing fails, make it do that. */
__attribute__((format(printf, 2, 3))) static void journal(struct ms_state *s,
							  const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	s->dirty = 1;
	if (s->dry_run || s->need_compact)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line ||
	    ms_buf_add(&s->pend, line, (size_t)n, NULL) < 0) {
		s->need_compact = 1;
		ms_buf_reset(&s->pend);
	}
}

void ms_state_reset(struct ms_state *s, uint32_t uidvalidity)
{
	ms_state_clear(s, uidvalidity);
	/* what follows a reset is a rebuild: one snapshot of ranges is
	 * smaller than a journal line per message, and queued lines are
	 * moot */
	ms_buf_reset(&s->pend);
	s->need_compact = 1;
	s->dirty = 1;
}

/* A new UIDVALIDITY relabels nothing: records stored under the old one
 * are forgotten (the engine normally calls ms_state_reset first). */
void ms_state_set_header(struct ms_state *s, uint32_t uidvalidity,
			 uint32_t uidnext, uint64_t modseq)
{
	if (uidvalidity != s->uidvalidity && ms_state_nrec(s) > 0)
		ms_state_reset(s, uidvalidity);
	if (uidvalidity == s->uidvalidity && uidnext == s->uidnext &&
	    modseq == s->modseq)
		return;
	s->uidvalidity = uidvalidity;
	s->uidnext = uidnext;
	s->modseq = modseq;
	journal(s, "h %" PRIu32 " %" PRIu32 " %" PRIu64 "\n", uidvalidity,
		uidnext, modseq);
}

int ms_state_has_uid(const struct ms_state *s, uint32_t uid)
{
	if (s->proto != MS_PROTO_IMAP || !uid)
		return 0;
	return ms_uidset_has(&s->uids, uid);
}

int ms_state_has_uidl(const struct ms_state *s, const char *uidl,
		      uint64_t *size, time_t *first_seen)
{
	const struct ms_state_pent *p;

	if (s->proto != MS_PROTO_POP3 || !uidl)
		return 0;
	if (!(p = pop_get(s, uidl)))
		return 0;
	if (size)
		*size = p->size;
	if (first_seen)
		*first_seen = (time_t)p->first_seen;
	return 1;
}

static int bad_msg(const struct ms_state *s, const struct ms_msg *m,
		   const char *what, struct ms_err *e)
{
	int rc;

	(void)s;
	rc = ms_err_set(e, MS_EPROTO, "message %" PRIu32 ": %s", m->uid,
			    what);

	if (e)
		e->scope = MS_SCOPE_MESSAGE;
	return rc;
}

static int oom(const struct ms_state *s, struct ms_err *e)
{
	(void)s;
	return ms_err_set(e, MS_EINTERNAL, "state: out of memory");
}

static int add_pop(struct ms_state *s, const struct ms_msg *m, time_t now,
		   struct ms_err *e)
{
	size_t n = strnlen(m->uidl, sizeof m->uidl);
	int64_t t = now < 0 ? 0 : (int64_t)now;

	if (!ms_state_uidl_ok(m->uidl, n))
		return bad_msg(s, m, "invalid UIDL, not recorded", e);
	if (ms_state_uidl_put(s, m->uidl, n, m->size, t, NULL) < 0)
		return oom(s, e);
	journal(s, "+p %s %" PRIu64 " %" PRId64 "\n", m->uidl, m->size, t);
	return 0;
}

int ms_state_add(struct ms_state *s, const struct ms_msg *m, time_t now,
		 struct ms_err *e)
{
	int rc;

	if (s->proto == MS_PROTO_POP3)
		return add_pop(s, m, now, e);
	if (s->proto != MS_PROTO_IMAP) /* a listing handle: no protocol */
		return ms_err_set(e, MS_EINTERNAL, "state: read-only handle");
	if (m->uid == 0)
		return bad_msg(s, m, "UID 0, not recorded", e);
	if (m->uidvalidity != s->uidvalidity) {
		if (ms_state_nrec(s))
			return ms_err_set(e, MS_EINTERNAL,
					  "UID %" PRIu32 " has UIDVALIDITY "
					  "%" PRIu32 " but the state %" PRIu32,
					  m->uid,
					  m->uidvalidity, s->uidvalidity);
		ms_state_set_header(s, m->uidvalidity, s->uidnext, s->modseq);
	}
	if ((rc = ms_uidset_add(&s->uids, m->uid, NULL)) < 0)
		return oom(s, e);
	if (rc == 0)
		journal(s, "+u %" PRIu32 "\n", m->uid);
	return 0;
}

int ms_state_del(struct ms_state *s, const struct ms_msg *m, struct ms_err *e)
{
	size_t n;
	int rc;

	if (s->proto == MS_PROTO_POP3) {
		n = strnlen(m->uidl, sizeof m->uidl);
		if (!ms_state_uidl_ok(m->uidl, n))
			return bad_msg(s, m, "invalid UIDL", e);
		if (!pop_get(s, m->uidl))
			return 0;
		ms_state_uidl_del(s, m->uidl, n);
		journal(s, "-p %s\n", m->uidl);
		return 0;
	}
	if (m->uid == 0 || (rc = ms_uidset_del(&s->uids, m->uid, NULL)) > 0)
		return 0;
	if (rc < 0)
		return oom(s, e);
	journal(s, "-u %" PRIu32 "\n", m->uid);
	return 0;
}

int ms_state_foreach(const struct ms_state *s, ms_state_cb cb, void *ctx)
{
	const struct ms_uidrange *r;
	struct ms_msg m;
	size_t i, nr;
	int rc;

	memset(&m, 0, sizeof m);
	if (s->proto == MS_PROTO_POP3) {
		for (i = 0; i < s->npop; i++) {
			const struct ms_state_pent *p = &s->ents[i];

			snprintf(m.uidl, sizeof m.uidl, "%s", s->pool + p->off);
			m.size = p->size;
			if ((rc = cb(ctx, &m, (time_t)p->first_seen)) != 0)
				return rc;
		}
		return 0;
	}
	m.uidvalidity = s->uidvalidity;
	r = ms_uidset_ranges(&s->uids, &nr);
	for (i = 0; i < nr; i++) {
		for (uint64_t u = r[i].lo; u <= r[i].hi; u++) {
			m.uid = (uint32_t)u;
			if ((rc = cb(ctx, &m, 0)) != 0)
				return rc;
		}
	}
	return 0;
}
