/*
 * maildir_int.h: the Maildir file-name format, shared by maildir.c (the
 * store) and its unit test.  Pure string work in maildir_name.c, apart
 * from the clock, pid and getrandom that make names unique.
 *
 *   UNIQUE  = <sec>.M<usec>P<pid>R<16 hex random>Q<counter>.<host>
 *   final   = UNIQUE,S=<file bytes>,W=<size with CRLF>[,Z=<server size>]
 *             IDENT [:2,<flags>]
 *   IDENT   = [,A=<account>] ,U=<uid>,V=<uidvalidity>     (IMAP)
 *           | [,A=<account>] ,P=<UIDL, bytes outside [A-Za-z0-9._=+-]
 *                                   as %XX>                 (POP3)
 * A= names the account that stored the file (config.c allows only
 * [A-Za-z0-9._-] in account names): accounts sharing a Maildir never
 * take each other's files for their own, even when their servers give
 * the same UIDVALIDITY and UIDs or the same UIDLs.  Files without A=
 * (written before it existed) count for every account.
 * Z= only when the server's size differs from W.  Flags D F R S T (ASCII
 * order) from DRAFT FLAGGED ANSWERED SEEN DELETED; a message with no flag
 * goes to new/ without info, anything else to cur/.
 */
#ifndef MS_MAILDIR_INT_H
#define MS_MAILDIR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "source.h"

/* The host part: '/' ':' ',' '\' and non-graphic bytes as \ooo. */
void ms_maildir_host(char *out, size_t n);
/* A new UNIQUE into out (n >= 128 + strlen(host)); returns the offset of
 * ".host" in it (names may drop the host when too long). */
size_t ms_maildir_unique(const char *host, char *out, size_t n);
/* Does name start like a UNIQUE of ours (for stale tmp/ cleanup)? */
int ms_maildir_is_ours(const char *name);

/* The final name for a message; *cur: goes to cur/ (else new/).  Returns
 * 1 when the name had to be stored without its identity (too long). */
int ms_maildir_final(char *out, size_t n, const char *unique, size_t hostpos,
		     int proto, const char *acct, const struct ms_msg *meta,
		     uint64_t bytes, uint64_t vsize, int *cur);

/* Identity (uid+uidvalidity or uidl), flags (from :2, info) and size (Z=,
 * else W=, else 0) from a name.  -1 when the name carries no identity
 * of ours (or a malformed one), or A= names another account than acct
 * (NULL: any account): such files are ignored. */
int ms_maildir_parse(const char *name, const char *acct, struct ms_msg *m);

/* name with its flags replaced by flags; letters other than DFRST in the
 * old info are kept.  *cur: in_cur, or the new info is non-empty.  -1
 * when out is too small. */
int ms_maildir_with_flags(char *out, size_t n, const char *name, unsigned flags,
			  int in_cur, int *cur);

/* name with its identity replaced by IMAP uid/uidvalidity of m. */
int ms_maildir_relabel(char *out, size_t n, const char *name,
		       const struct ms_msg *m);

#endif
