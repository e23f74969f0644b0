/* test_uidset.c: UID range sets: order independence, merging, limits. */
#include "t.h"
#include "uidset.h"

#include <stdlib.h>

int main(void)
{
	struct ms_uidset s;
	struct ms_err e;
	static uint32_t shuffled[] = { 5, 3, 4, 1, 2, 10, 8, 9, 7, 6 };

	ms_uidset_init(&s);
	for (uint32_t u = 1; u <= 100000; u++)
		ms_uidset_add(&s, u, &e);
	T_EQ_INT(s.n, 1, "100000 ascending UIDs make one range");
	T_EQ_INT(s.count, 100000, "count of 100000");
	T_OK(ms_uidset_has(&s, 1) && ms_uidset_has(&s, 100000),
	     "both ends present");
	T_OK(!ms_uidset_has(&s, 0) && !ms_uidset_has(&s, 100001),
	     "outside absent");
	ms_uidset_free(&s);

	for (size_t i = 0; i < sizeof shuffled / sizeof *shuffled; i++)
		ms_uidset_add(&s, shuffled[i], &e);
	T_EQ_INT(s.n, 1, "shuffled 1..10 merge into one range");
	T_EQ_INT(s.count, 10, "count 10");
	ms_uidset_add(&s, 7, &e);
	T_EQ_INT(s.count, 10, "re-adding is a no-op");
	ms_uidset_add(&s, 20, &e);
	ms_uidset_add(&s, 15, &e);
	T_EQ_INT(s.n, 3, "gaps make separate ranges");
	T_OK(!ms_uidset_has(&s, 12) && ms_uidset_has(&s, 15), "lookups in gaps");
	for (uint32_t u = 11; u < 20; u++)
		ms_uidset_add(&s, u, &e);
	T_EQ_INT(s.n, 1, "filling the gaps merges everything");
	T_EQ_INT(s.count, 20, "count 20");
	ms_uidset_add(&s, 4294967295u, &e);
	ms_uidset_add(&s, 4294967294u, &e);
	T_EQ_INT(s.n, 2, "top of the UID space without overflow");
	T_OK(ms_uidset_has(&s, 4294967295u), "max UID present");
	ms_uidset_free(&s);
	return t_done();
}
