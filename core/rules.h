/*
 * rules.h: pure predicates for what to sync and what to delete.
 */
#ifndef MS_RULES_H
#define MS_RULES_H

#include <stdint.h>
#include <time.h>

#include "config.h"
#include "source.h"

/* Does a folder (decoded UTF-8, '/'-separated) match one pattern?  '*'
 * matches anything, '%' anything but the delimiter '/'. */
int ms_rules_match(const char *pattern, const char *folder);
/* The MS_FOLDER_* bit of an RFC 6154 special-use attribute ("\\All",
 * "\\Sent", ..., any case), 0 when the name is not one of them. */
unsigned ms_rules_special_use(const char *attr);
/* Apply an account's folders list: patterns in order, "!pat" excludes,
 * the last matching pattern wins; no patterns = everything.  A pattern
 * that starts with a backslash ("\\Trash") matches the folder whose LIST
 * attributes (attrs, MS_FOLDER_*) carry that special use, not a name. */
int ms_rules_folder_selected(const struct ms_account *a, const char *folder,
			     unsigned attrs);
/* May this message be fetched under max_message_size? */
int ms_rules_size_ok(const struct ms_account *a, uint64_t size);
/* Does the policy want a stored message deleted on the server now?
 * date: IMAP internaldate or POP3 first-seen time (0 = unknown: no). */
int ms_rules_delete_due(const struct ms_account *a, int64_t date, time_t now);

#endif
