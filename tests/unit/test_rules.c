/*
 * test_rules.c: folder globs, the folder selection rule, size cap and the
 * delete policy, as tables.
 */
#include "rules.h"

#include <stdlib.h>
#include <string.h>

#include "t.h"

struct match_case {
	const char *pat, *folder;
	int want;
};

static const struct match_case matches[] = {
    {"*", "INBOX", 1},
    {"*", "Lists/a/b", 1},
    {"*", "", 1},
    {"%", "Lists", 1},
    {"%", "Lists/a", 0},
    {"%", "", 1},
    {"Lists/%", "Lists/a", 1},
    {"Lists/%", "Lists/a/b", 0},
    {"Lists/%", "Lists", 0},
    {"Lists/%", "Lists/", 1},
    {"Lists/*", "Lists/a/b", 1},
    {"Lists/*", "Listsx", 0},
    {"Lists*", "Listsx/y", 1},
    {"%/%", "a/b", 1},
    {"%/%", "a/b/c", 0},
    {"*/%", "a/b/c", 1},
    {"a%c", "abc", 1},
    {"a%c", "a/c", 0},
    {"a*c", "a/c", 1},
    {"a*c", "a/b", 0},
    {"Junk", "Junk", 1},
    {"Junk", "junk", 0},
    {"Junk", "Junk/x", 0},
    {"INBOX", "inbox", 1},
    {"inbox", "INBOX", 1},
    {"InBox", "iNbOx", 1},
    {"INBOX/*", "inbox/Sub", 1},
    {"INBOX/Sub", "inbox/sub", 0},
    {"INBOX", "INBOXES", 0},
    {"inboxes", "INBOXES", 0},
    {"Lists/INBOX", "Lists/inbox", 0},
    {"IN*", "inbox", 1},
    {"", "", 1},
    {"", "a", 0},
    {"a", "", 0},
    {"**", "x/y", 1},
    {"%*%", "x/y", 1},
    {"Sent Items", "Sent Items", 1},
    {"Caf\xc3\xa9", "Caf\xc3\xa9", 1},
};

struct sel_case {
	const char *list; /* space-separated patterns, NULL = none */
	const char *folder;
	int want;
};

static const struct sel_case sels[] = {
    {NULL, "anything", 1},
    {"", "anything", 1},
    {"!Junk", "INBOX", 1},
    {"!Junk", "Junk", 0},
    {"!Junk", "Junk/old", 1},
    {"INBOX Lists/*", "INBOX", 1},
    {"INBOX Lists/*", "inbox", 1},
    {"INBOX Lists/*", "Lists/x/y", 1},
    {"INBOX Lists/*", "Sent", 0},
    {"* !Junk !Trash", "Sent", 1},
    {"* !Junk !Trash", "Trash", 0},
    {"* !Lists/* Lists/keep", "Lists/keep", 1},
    {"* !Lists/* Lists/keep", "Lists/drop", 0},
    {"Lists/keep !Lists/*", "Lists/keep", 0},
    {"!Junk Junk", "Junk", 1},
    {"!Junk Junk !Junk", "Junk", 0},
    {"!Trash Lists/%", "Lists/a/b", 1},
    {"Lists/% !Trash", "Lists/a/b", 0},
    {"Lists/% !Trash", "Lists/a", 1},
};

static size_t split(char *s, char **v, size_t max)
{
	size_t n = 0;
	char *tok;

	for (tok = strtok(s, " "); tok && n < max; tok = strtok(NULL, " "))
		v[n++] = tok;
	return n;
}

static void test_select(void)
{
	size_t i;

	for (i = 0; i < sizeof sels / sizeof sels[0]; i++) {
		struct ms_account a = {0};
		char buf[256], name[320], *v[16];

		if (sels[i].list) {
			snprintf(buf, sizeof buf, "%s", sels[i].list);
			a.nfolders = split(buf, v, 16);
			a.folders = v;
		}
		snprintf(name, sizeof name, "select [%s] %s",
			 sels[i].list ? sels[i].list : "(none)",
			 sels[i].folder);
		T_EQ_INT(ms_rules_folder_selected(&a, sels[i].folder, 0),
			 sels[i].want, name);
	}
}

/* Special-use patterns match LIST attributes, not names (F25: Gmail's
 * localised "[Gmail]/Papierkorb" is \Trash). */
static void test_special_use(void)
{
	static const struct {
		const char *list, *folder;
		unsigned attrs;
		int want;
	} c[] = {
	    {"* !\\Trash !\\Junk", "[Gmail]/Papierkorb", MS_FOLDER_TRASH, 0},
	    {"* !\\Trash !\\Junk", "[Gmail]/Spam", MS_FOLDER_JUNK, 0},
	    {"* !\\Trash !\\Junk", "Trash", 0, 1},
	    {"* !\\Trash !\\Junk", "INBOX", 0, 1},
	    {"\\All", "[Gmail]/Alle Nachrichten", MS_FOLDER_ALL, 1},
	    {"\\all", "[Gmail]/Alle Nachrichten", MS_FOLDER_ALL, 1},
	    {"\\All", "\\All", 0, 0},
	    {"\\All", "INBOX", 0, 0},
	    {"INBOX \\Sent", "[Gmail]/Gesendet",
	     MS_FOLDER_SENT | MS_FOLDER_FLAGGED, 1},
	    {"!\\Drafts", "Entw", MS_FOLDER_DRAFTS, 0},
	    {"!\\Drafts", "Work", 0, 1},
	    {"\\Archive \\Flagged", "Arch", MS_FOLDER_ARCHIVE, 1},
	    {"\\Archive \\Flagged", "Star", MS_FOLDER_FLAGGED, 1},
	    {"\\Bogus", "X", 0xffu, 0},
	};
	size_t i;

	T_EQ_INT(ms_rules_special_use("\\TRASH"), MS_FOLDER_TRASH, "\\TRASH");
	T_EQ_INT(ms_rules_special_use("\\Noselect"), 0, "\\Noselect: not one");
	T_EQ_INT(ms_rules_special_use("Trash"), 0, "Trash: no backslash");
	for (i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct ms_account a = {0};
		char buf[256], name[320], *v[16];

		snprintf(buf, sizeof buf, "%s", c[i].list);
		a.nfolders = split(buf, v, 16);
		a.folders = v;
		snprintf(name, sizeof name, "special-use [%s] %s %#x",
			 c[i].list, c[i].folder, c[i].attrs);
		T_EQ_INT(ms_rules_folder_selected(&a, c[i].folder, c[i].attrs),
			 c[i].want, name);
	}
}

static void test_blowup(void)
{
	char pat[200], folder[5000];
	size_t i;

	/* "*a*a*...*b" against "aaaa...": exponential for a naive
	 * backtracker, linear-times-pattern here. */
	for (i = 0; i < 90; i++) {
		pat[2 * i] = '*';
		pat[2 * i + 1] = 'a';
	}
	strcpy(pat + 180, "*b");
	memset(folder, 'a', sizeof folder - 1);
	folder[sizeof folder - 1] = '\0';
	T_EQ_INT(ms_rules_match(pat, folder), 0, "many stars: no blow-up");
	folder[sizeof folder - 2] = 'b';
	T_EQ_INT(ms_rules_match(pat, folder), 1, "many stars: match");
}

static void test_long_pattern(void)
{
	char *pat = malloc(1001), *f = malloc(1001);

	memset(pat, '%', 1000);
	pat[1000] = '\0';
	pat[999] = 'z';
	memset(f, 'y', 1000);
	f[1000] = '\0';
	f[999] = 'z';
	T_EQ_INT(ms_rules_match(pat, f), 1, "1000-byte pattern (heap path)");
	f[500] = '/';
	T_EQ_INT(ms_rules_match(pat, f), 0, "1000-byte pattern, '/' inside");
	free(pat);
	free(f);
}

struct due_case {
	int policy;
	unsigned days;
	int64_t date;
	time_t now;
	int want;
	const char *name;
};

#define DAY 86400
static const struct due_case dues[] = {
    {MS_POLICY_KEEP, 0, 1000, 1000 + 400 * DAY, 0, "keep: never"},
    {MS_POLICY_DELETE, 0, 0, 1000, 1, "delete: always"},
    {MS_POLICY_DELETE, 0, 5000, 1000, 1, "delete: even future date"},
    {MS_POLICY_DELETE_AFTER, 30, 1000, 1000 + 30 * DAY, 1,
     "after 30d: exactly 30 days"},
    {MS_POLICY_DELETE_AFTER, 30, 1000, 1000 + 30 * DAY - 1, 0,
     "after 30d: one second short"},
    {MS_POLICY_DELETE_AFTER, 30, 1000, 1000 + 400 * DAY, 1,
     "after 30d: 400 days"},
    {MS_POLICY_DELETE_AFTER, 30, 0, 1000 + 400 * DAY, 0,
     "after 30d: unknown date"},
    {MS_POLICY_DELETE_AFTER, 30, -5, 1000 + 400 * DAY, 0,
     "after 30d: negative date"},
    {MS_POLICY_DELETE_AFTER, 30, 1000 + 400 * DAY, 1000, 0,
     "after 30d: date in the future"},
    {MS_POLICY_DELETE_AFTER, 0, 1000, 1000, 1, "after 0d: now"},
    {MS_POLICY_DELETE_AFTER, 0, 1001, 1000, 0, "after 0d: future"},
    {MS_POLICY_DELETE_AFTER, 4000000000u, 1, 2000000000, 0,
     "after huge days: no overflow"},
};

static void test_due(void)
{
	size_t i;

	for (i = 0; i < sizeof dues / sizeof dues[0]; i++) {
		struct ms_account a = {0};

		a.policy = dues[i].policy;
		a.delete_after_days = dues[i].days;
		T_EQ_INT(ms_rules_delete_due(&a, dues[i].date, dues[i].now),
			 dues[i].want, dues[i].name);
	}
}

static void test_size(void)
{
	struct ms_account a = {0};

	T_EQ_INT(ms_rules_size_ok(&a, UINT64_MAX), 1, "size: no limit");
	a.max_message_size = 100;
	T_EQ_INT(ms_rules_size_ok(&a, 100), 1, "size: at the limit");
	T_EQ_INT(ms_rules_size_ok(&a, 101), 0, "size: over the limit");
	T_EQ_INT(ms_rules_size_ok(&a, 0), 1, "size: empty");
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof matches / sizeof matches[0]; i++) {
		char name[256];

		snprintf(name, sizeof name, "match \"%s\" \"%s\"",
			 matches[i].pat, matches[i].folder);
		T_EQ_INT(ms_rules_match(matches[i].pat, matches[i].folder),
			 matches[i].want, name);
	}
	test_select();
	test_special_use();
	test_blowup();
	test_long_pattern();
	test_due();
	test_size();
	return t_done();
}
