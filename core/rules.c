/*
 * rules.c: pure predicates on the account's policy (which folders, which
 * sizes, when to delete).  No I/O, no allocation except for very long
 * patterns.  Folder globs are matched by simulating the pattern as a set
 * of positions (an NFA), so the cost is O(len(pattern) * len(folder)) for
 * any input: a hostile "*a*a*a*a*b" cannot make us backtrack
 * exponentially.
 */
#include "rules.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STACK_PATTERN 256

/* Length of a leading "INBOX" level (any case, followed by '/' or the
 * end), else 0.  RFC 3501 5.1: the name INBOX is case-insensitive. */
static size_t inbox_len(const char *s)
{
	static const char inbox[] = "inbox";
	size_t i;

	for (i = 0; i < 5; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != inbox[i])
			return 0;
	}
	return (s[5] == '\0' || s[5] == '/') ? 5 : 0;
}

static char fold(const char *s, size_t i, size_t ilen)
{
	char c = s[i];

	if (i < ilen && c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	return c;
}

/* Positions that are reachable without consuming: a wildcard may match
 * the empty string, so j reachable implies j+1 reachable. */
static void closure(bool *set, const char *pat, size_t m)
{
	size_t j;

	for (j = 0; j < m; j++)
		if (set[j] && (pat[j] == '*' || pat[j] == '%'))
			set[j + 1] = true;
}

static int match_sets(const char *pat, size_t m, const char *s, bool *cur,
		      bool *next)
{
	size_t plen = inbox_len(pat), slen = inbox_len(s);
	size_t i, j;

	memset(cur, 0, m + 1);
	cur[0] = true;
	closure(cur, pat, m);
	for (i = 0; s[i]; i++) {
		char c = fold(s, i, slen);
		bool any = false;

		memset(next, 0, m + 1);
		for (j = 0; j < m; j++) {
			if (!cur[j])
				continue;
			if (pat[j] == '*' || (pat[j] == '%' && c != '/'))
				next[j] = any = true;
			else if (pat[j] != '%' && fold(pat, j, plen) == c)
				next[j + 1] = any = true;
		}
		if (!any)
			return 0;
		closure(next, pat, m);
		memcpy(cur, next, m + 1);
	}
	return cur[m];
}

int ms_rules_match(const char *pattern, const char *folder)
{
	bool sbuf[2 * (STACK_PATTERN + 1)], *mem = sbuf;
	size_t m;
	int rc;

	if (!pattern || !folder)
		return 0;
	m = strlen(pattern);
	if (m > STACK_PATTERN) {
		mem = malloc(2 * (m + 1));
		if (!mem)
			return 0;
	}
	rc = match_sets(pattern, m, folder, mem, mem + m + 1);
	if (mem != sbuf)
		free(mem);
	return rc;
}

static const struct {
	const char *name;
	unsigned bit;
} special[] = {
	{ "\\All", MS_FOLDER_ALL },         { "\\Archive", MS_FOLDER_ARCHIVE },
	{ "\\Drafts", MS_FOLDER_DRAFTS },   { "\\Flagged", MS_FOLDER_FLAGGED },
	{ "\\Junk", MS_FOLDER_JUNK },       { "\\Sent", MS_FOLDER_SENT },
	{ "\\Trash", MS_FOLDER_TRASH },
};

unsigned ms_rules_special_use(const char *attr)
{
	size_t i;

	for (i = 0; attr && i < sizeof special / sizeof special[0]; i++)
		if (!strcasecmp(attr, special[i].name))
			return special[i].bit;
	return 0;
}

/* A "\\Attr" pattern matches by attribute only: a folder literally named
 * "\\Trash" is not matched by it (config validation refuses unknown
 * attribute names, so a pattern starting with "\\" is never a glob). */
static int pattern_match(const char *p, const char *folder, unsigned attrs)
{
	if (p[0] == '\\')
		return (ms_rules_special_use(p) & attrs) != 0;
	return ms_rules_match(p, folder);
}

// Folder selection (the wording of mailsync.ini(5)):
//
// The patterns of "folders" are read in order.  A pattern that starts
// with "!" excludes the folders it matches, any other pattern includes
// them.  The last pattern that matches a folder decides.  If no pattern
// matches, the folder is selected only when the list is empty or its
// first pattern is an exclusion: "folders = !Junk" selects every folder
// except Junk, "folders = INBOX Lists/*" selects only INBOX and the
// folders below Lists.  "*" matches any characters including the
// hierarchy delimiter "/", "%" any characters except "/"; matching is
// case-sensitive, except that the name INBOX matches in any case.  A
// pattern that starts with a backslash names an RFC 6154 special-use
// attribute (\All, \Archive, \Drafts, \Flagged, \Junk, \Sent, \Trash,
// any case) and matches the folder LIST marks with it, whatever its
// (localised) name.  With "gmail = all-mail" the one folder selected is
// the \All folder.
int ms_rules_folder_selected(const struct ms_account *a, const char *folder,
			     unsigned attrs)
{
	int selected;
	size_t i;

	if (a->gmail == MS_GMAIL_ALL_MAIL)
		return (attrs & MS_FOLDER_ALL) != 0;
	if (!a->folders || a->nfolders == 0)
		return 1;
	selected = a->folders[0][0] == '!';
	for (i = 0; i < a->nfolders; i++) {
		const char *p = a->folders[i];
		int exclude = p[0] == '!';

		if (pattern_match(exclude ? p + 1 : p, folder, attrs))
			selected = !exclude;
	}
	return selected;
}

int ms_rules_size_ok(const struct ms_account *a, uint64_t size)
{
	return a->max_message_size == 0 || size <= a->max_message_size;
}

int ms_rules_delete_due(const struct ms_account *a, int64_t date, time_t now)
{
	int64_t age;

	switch (a->policy) {
	case MS_POLICY_KEEP:
		return 0;
	case MS_POLICY_DELETE:
		return 1;
	case MS_POLICY_DELETE_AFTER:
		/* Unknown date, or a date in the future (clock skew): never. */
		if (date <= 0 || (int64_t)now < date)
			return 0;
		age = (int64_t)now - date;
		return age >= (int64_t)a->delete_after_days * 86400;
	}
	return 0;
}
