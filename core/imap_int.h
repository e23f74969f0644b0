/*
 * imap_int.h: internals shared by imap.c (session, commands, folders),
 * imap_uid.c (SEARCH, UID sets, remove) and imap_fetch.c (pipelined FETCH
 * for meta, bodies and flags).  Not a public interface.
 */
#ifndef MS_IMAP_INT_H
#define MS_IMAP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "imap_parse.h"
#include "source.h"

#define IMAP_CAP_IMAP4REV1 0x001u
#define IMAP_CAP_UIDPLUS 0x002u
#define IMAP_CAP_ESEARCH 0x004u
#define IMAP_CAP_CONDSTORE 0x008u
#define IMAP_CAP_QRESYNC 0x010u
#define IMAP_CAP_LITERALPLUS 0x020u
#define IMAP_CAP_ENABLE 0x040u
#define IMAP_CAP_ID 0x080u
#define IMAP_CAP_SPECIALUSE 0x100u
#define IMAP_CAP_LISTSTATUS 0x200u
#define IMAP_CAP_XGMEXT1 0x400u
#define IMAP_CAP_LISTEXTENDED 0x800u

#define IMAP_RBUF (256u * 1024)   /* receive buffer */
#define IMAP_MAX_UNTAGGED_BIG 10000000ul /* fetch, search, flags */
#define IMAP_MAX_UNTAGGED 100000ul       /* everything else */
#define IMAP_SEARCH_MAX_LINE ((size_t)256 << 20)
#define IMAP_SEARCH_MAX_TOKEN ((size_t)128 << 20)

enum imap_status { IMAP_OK = 1, IMAP_NO, IMAP_BAD, IMAP_BYE, IMAP_PREAUTH };

struct ms_source {
	struct ms_net *net;          /* owned */
	const struct ms_account *acct;
	struct ms_imap_parser p;
	char *rbuf;                  /* IMAP_RBUF bytes, owned */
	size_t rpos, rlen;
	unsigned tagn;               /* last tag number used ("m<n>") */
	unsigned caps;               /* IMAP_CAP_* */
	int dead;                    /* connection unusable */
	int in_logout;               /* BYE is expected */
	int selected, readwrite;
	char *folder;                /* selected folder (messages), owned */
	uint32_t uidvalidity;
	uint32_t exists;
	struct ms_buf out;           /* queued commands */
	struct ms_buf code, text;    /* of the last status response */
	unsigned ids_tag;            /* UID SEARCH sent, answer not read */
	unsigned pre_tag;            /* SELECT/EXAMINE sent ahead (pre_name) */
	char *pre_name;              /* owned */
	int pre_rw;
	char search_cmd[200];        /* imap_search_cmd's result */
	/* LIST-STATUS (RFC 5819): the STATUS answers that came with LIST,
	 * sorted by name; used by imap_status_many instead of asking */
	struct imap_lstatus *lst;
	size_t nlst, caplst;
	int lst_valid;
};

struct imap_lstatus {
	char *name;
	struct ms_folder_status st;
};

/* The head of one response, read by imap_resp(). */
struct imap_resp {
	int kind;        /* MS_IMAP_TAGGED / UNTAGGED / CONTINUE */
	unsigned tag;    /* tagged: our tag number (0 if not ours) */
	int status;      /* enum imap_status or 0 */
	int has_num;
	uint64_t num;    /* "* 5 FETCH": 5 */
	char name[32];   /* first atom, upper-cased: FETCH, LIST, OK... */
	int done;        /* the whole response (through CRLF) was read */
};

/* One requested UID and where it is in the caller's array. */
struct imap_want {
	uint32_t uid;
	size_t idx;
};

typedef int (*imap_untagged_fn)(struct ms_source *s, struct imap_resp *r,
				void *ctx, struct ms_err *e);

/* Send one command and read until its tagged answer; fn sees every
 * untagged response first (returns 1 when it consumed it, 0 to leave it
 * to imap_untagged). */
int imap_run(struct ms_source *s, const char *line, const char *what,
	     imap_untagged_fn fn, void *ctx, unsigned long max_untagged,
	     struct ms_err *e);
/* Read until the tagged answer to tag (sent before), like imap_run. */
int imap_wait(struct ms_source *s, unsigned tag, const char *what,
	      imap_untagged_fn fn, void *ctx, unsigned long max_untagged,
	      struct ms_err *e);
/* Read and drop the answers to commands sent ahead (ids_tag, pre_tag). */
int imap_drain(struct ms_source *s, struct ms_err *e);
/* "UID SEARCH [RETURN (ALL)] criteria" (in s->search_cmd). */
const char *imap_search_cmd(struct ms_source *s, const char *criteria);
/* "m12" -> 12; 0 when not one of our tags. */
unsigned imap_our_tag(const char *tag);


/* Next token from the connection (refills the receive buffer). */
int imap_tok(struct ms_source *s, struct ms_imap_tok *t, struct ms_err *e);
/* Read the start of a response; status responses are read completely
 * (code and text in s->code, s->text). */
int imap_resp(struct ms_source *s, struct imap_resp *r, struct ms_err *e);
/* Consume the rest of the current response. */
int imap_skip(struct ms_source *s, struct imap_resp *r, struct ms_err *e);
/* Default handling of an untagged response nobody else wanted (BYE,
 * ALERT, EXISTS, EXPUNGE...); consumes it. */
int imap_untagged(struct ms_source *s, struct imap_resp *r,
		  struct ms_err *e);
/* Queue "m<n> line CRLF" (traced); *tag = n.  imap_flush sends. */
int imap_queue(struct ms_source *s, const char *line, unsigned *tag,
	       struct ms_err *e);
int imap_flush(struct ms_source *s, struct ms_err *e);
/* Error for a tagged NO/BAD: what = "UID FETCH" etc. */
int imap_cmd_error(struct ms_source *s, const struct imap_resp *r,
		   const char *what, struct ms_err *e);
/* Mark the connection unusable; errors get account scope. */
int imap_fatal(struct ms_source *s, int rc, struct ms_err *e);
/* Sorted, de-duplicated wants from msgs (*out owned by the caller). */
int imap_wants(const struct ms_msg *msgs, size_t n, struct imap_want **out,
	       size_t *nout, struct ms_err *e);
/* Append the compact UID set of w[lo..hi) ("1:500,502"). */
int imap_set(struct ms_buf *b, const struct imap_want *w, size_t lo,
	     size_t hi, struct ms_err *e);
/* "dd-Mon-yyyy hh:mm:ss +zzzz" -> epoch seconds; -1 when malformed. */
int imap_parse_date(const char *s, size_t n, int64_t *out);
/* Does s->folder etc. allow commands?  MS_ETEMP when dead. */
int imap_usable(struct ms_source *s, int need_selected, struct ms_err *e);

/* An astring (atom, quoted or literal) into b; -1 when malformed. */
int imap_astring(struct ms_source *s, struct ms_buf *b, struct ms_err *e);
/* Append name as a quoted string; names with CR/LF are refused. */
int imap_add_quoted(struct ms_buf *b, const char *name, struct ms_err *e);
int imap_status_many(struct ms_source *s, const char *const *names, size_t n,
		     ms_status_fn cb, void *ctx, struct ms_err *e);
/* The STATUS items to ask for (with the leading space). */
const char *imap_status_items(const struct ms_source *s);
/* "* STATUS name (items)" after imap_resp: keep it in s->lst (LIST-STATUS);
 * returns 1 (consumed) or < 0. */
int imap_lstatus_fn(struct ms_source *s, struct imap_resp *r,
		    struct ms_buf *name, struct ms_err *e);
void imap_lstatus_clear(struct ms_source *s);
/* Sort s->lst and mark it valid. */
void imap_lstatus_done(struct ms_source *s);

int imap_ids(struct ms_source *s, ms_msg_cb cb, void *ctx,
	     struct ms_err *e);
int imap_older_than(struct ms_source *s, unsigned days, ms_msg_cb cb,
		    void *ctx, struct ms_err *e);
int imap_remove(struct ms_source *s, const struct ms_msg *msgs, size_t n,
		struct ms_err *e);
int imap_meta(struct ms_source *s, const struct ms_msg *msgs, size_t n,
	      ms_msg_cb cb, void *ctx, struct ms_err *e);
int imap_fetch(struct ms_source *s, const struct ms_msg *msgs, size_t n,
	       const struct ms_fetch_sink *sink, void *ctx, struct ms_err *e);
int imap_flags(struct ms_source *s, uint64_t since_modseq, ms_msg_cb cb,
	       void *ctx, struct ms_err *e);
int imap_gm_labels(struct ms_source *s, ms_gm_cb cb, void *ctx,
		   struct ms_err *e);

#endif
