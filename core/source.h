/*
 * source.h: the interface every mail source implements (IMAP, POP3).
 *
 * A source runs over an authenticated ms_net connection and never touches
 * the disk: message bytes go to a struct ms_fetch_sink that the engine
 * (sync.c) connects to a store.  Identity: IMAP (folder, UIDVALIDITY, UID);
 * POP3 UIDL (+ size), with the message number valid for this session only.
 * Every op returns 0 or a negative MS_E* and fills e; an error whose scope
 * is MS_SCOPE_ACCOUNT means the connection is no longer usable.
 */
#ifndef MS_SOURCE_H
#define MS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "net.h"

/* IMAP system flags as a bit mask (also used for Maildir info and mbox). */
#define MS_F_SEEN     0x01u
#define MS_F_ANSWERED 0x02u
#define MS_F_FLAGGED  0x04u
#define MS_F_DELETED  0x08u
#define MS_F_DRAFT    0x10u

#define MS_UIDL_MAX 70

struct ms_msg {
	uint32_t uid;          /* IMAP UID; POP3: message number (this session) */
	uint32_t uidvalidity;  /* IMAP folder UIDVALIDITY; 0 for POP3 */
	char uidl[MS_UIDL_MAX + 1]; /* POP3 UIDL, validated 0x21-0x7E; "" IMAP */
	uint64_t size;         /* RFC822.SIZE / LIST size: advisory only */
	unsigned flags;        /* MS_F_* */
	int64_t internaldate;  /* IMAP INTERNALDATE (epoch s); 0 = unknown */
	int has_meta;          /* size/flags/internaldate are filled in */
};

/* Folder as listed by the server. */
#define MS_FOLDER_NOSELECT 0x01u
/* RFC 6154 special-use attributes from LIST (Gmail: "[Gmail]/Alle
 * Nachrichten" carries \All whatever the interface language). */
#define MS_FOLDER_ALL      0x02u
#define MS_FOLDER_ARCHIVE  0x04u
#define MS_FOLDER_DRAFTS   0x08u
#define MS_FOLDER_FLAGGED  0x10u
#define MS_FOLDER_JUNK     0x20u
#define MS_FOLDER_SENT     0x40u
#define MS_FOLDER_TRASH    0x80u
struct ms_folder {
	const char *name;      /* server's raw name (modified UTF-7 for IMAP) */
	char delim;            /* hierarchy delimiter, 0 when none (NIL) */
	unsigned attrs;        /* MS_FOLDER_* */
};

struct ms_folder_status {
	uint32_t uidvalidity;  /* 0 when the server gave none */
	uint32_t uidnext;
	uint32_t exists;
	uint64_t highestmodseq; /* 0 without CONDSTORE */
	int readwrite;          /* selected with SELECT (1) or EXAMINE (0) */
};

/*
 * Where fetched bytes go.  The source calls begin, then data zero or more
 * times with exactly the literal's bytes (raw, CRLF as sent), then end once
 * the whole response for the message has been parsed and checked (UID as
 * requested, byte count equal to the literal length).  On any transport
 * doubt it calls abort instead of end.  A sink callback that fails with
 * scope MS_SCOPE_MESSAGE makes the source skip that message's remaining
 * bytes and go on; any other failure stops the fetch with that error.
 */
struct ms_fetch_sink {
	/* m: what was requested (uid/uidl, advisory size); len: literal size */
	int (*begin)(void *ctx, const struct ms_msg *m, uint64_t len,
		     struct ms_err *e);
	int (*data)(void *ctx, const char *p, size_t n, struct ms_err *e);
	/* m: final metadata from the response (flags, internaldate) */
	int (*end)(void *ctx, const struct ms_msg *m, struct ms_err *e);
	void (*abort)(void *ctx);
};

typedef int (*ms_folder_cb)(void *ctx, const struct ms_folder *f,
			    struct ms_err *e);
typedef int (*ms_msg_cb)(void *ctx, const struct ms_msg *m, struct ms_err *e);
/* Gmail: one message's X-GM-MSGID and X-GM-LABELS.  labels: each label as
 * the server sent it (modified UTF-7, "\\Inbox" for system labels), bytes
 * below 0x20, 0x7f and '%' as %XX, separated by tabs, "" for none; owned
 * by the source, valid during the call. */
typedef int (*ms_gm_cb)(void *ctx, uint32_t uid, uint64_t msgid,
			const char *labels, struct ms_err *e);
/* i: index into the names given; st: uidvalidity 0 when unknown. */
typedef int (*ms_status_fn)(void *ctx, size_t i,
			    const struct ms_folder_status *st);

struct ms_source;

#define MS_SELECT_RW 1
#define MS_SELECT_IDS 2

struct ms_source_ops {
	const char *proto; /* "imap" or "pop3" */
	/* Take ownership of an authenticated connection and learn the
	 * server's capabilities.  *out owned by the caller (close). */
	int (*open)(struct ms_source **out, struct ms_net *net,
		    const struct ms_account *a, struct ms_err *e);
	/* Every folder on the server (POP3: one, "INBOX"). */
	int (*list)(struct ms_source *s, ms_folder_cb cb, void *ctx,
		    struct ms_err *e);
	/* Open a folder, read-write when rw & MS_SELECT_RW (the policy
	 * deletes).  rw & MS_SELECT_IDS (IMAP): send the ids query in the
	 * same round trip; the next ids call reads its answer. */
	int (*select)(struct ms_source *s, const char *name, int rw,
		      struct ms_folder_status *st, struct ms_err *e);
	/* Optional (IMAP): send select(name, rw | MS_SELECT_IDS) now and
	 * read its answer in the next select of the same name, so the server
	 * works while the caller commits.  From here on no folder is
	 * selected: any other command first reads and drops the answers. */
	int (*preselect)(struct ms_source *s, const char *name, int rw,
			 struct ms_err *e);
	/* Every message identity in the selected folder, cheaply: IMAP UIDs
	 * (UID SEARCH ALL / ESEARCH), has_meta 0; POP3 UIDL + LIST size. */
	int (*ids)(struct ms_source *s, ms_msg_cb cb, void *ctx,
		   struct ms_err *e);
	/* Metadata (size, flags, internaldate) for the given messages,
	 * pipelined; cb per message with has_meta 1.  May be NULL when ids
	 * already gives everything (POP3). */
	int (*meta)(struct ms_source *s, const struct ms_msg *msgs, size_t n,
		    ms_msg_cb cb, void *ctx, struct ms_err *e);
	/* Optional: identities whose server date is older than days (IMAP
	 * UID SEARCH BEFORE).  NULL for POP3. */
	int (*older_than)(struct ms_source *s, unsigned days, ms_msg_cb cb,
			  void *ctx, struct ms_err *e);
	/* Fetch bodies without changing server state (BODY.PEEK[], RETR),
	 * pipelined, streaming each into sink. */
	int (*fetch)(struct ms_source *s, const struct ms_msg *msgs, size_t n,
		     const struct ms_fetch_sink *sink, void *ctx,
		     struct ms_err *e);
	/* Optional (POP3): the messages the next fetch call will ask for,
	 * in order; msgs stays valid until that call.  The fetch after this
	 * hint may send their requests once its own are out, so the server
	 * streams on while the caller commits; the next fetch takes them
	 * when it starts with those messages, and any other command first
	 * reads and drops their replies.  A hint lasts for one fetch. */
	void (*ahead)(struct ms_source *s, const struct ms_msg *msgs,
		      size_t n);
	/* Delete these messages.  IMAP: UID STORE +FLAGS.SILENT (\Deleted)
	 * then UID EXPUNGE of exactly these UIDs (refuse without UIDPLUS).
	 * POP3: DELE each; the deletion commits only at close(commit=1). */
	int (*remove)(struct ms_source *s, const struct ms_msg *msgs, size_t n,
		      struct ms_err *e);
	/* Optional (mirror=flags): current flags of every message, cb per
	 * message with uid and flags (CONDSTORE CHANGEDSINCE when since>0). */
	int (*flags)(struct ms_source *s, uint64_t since_modseq, ms_msg_cb cb,
		     void *ctx, struct ms_err *e);
	/* Optional: the status of many folders in one round trip (IMAP
	 * STATUS, pipelined) without selecting them: cb per folder, in
	 * order, with uidvalidity, uidnext, exists (MESSAGES) and
	 * highestmodseq; a folder the server refuses gets uidvalidity 0. */
	int (*status)(struct ms_source *s, const char *const *names,
		      size_t n, ms_status_fn cb, void *ctx, struct ms_err *e);
	/* Optional (gmail = all-mail): X-GM-MSGID and X-GM-LABELS of every
	 * message in the selected folder, cb per message in UID order;
	 * MS_EPROTO when the server does not announce X-GM-EXT-1. */
	int (*gm_labels)(struct ms_source *s, ms_gm_cb cb, void *ctx,
			 struct ms_err *e);
	/* LOGOUT / QUIT (commit=1) and free, closing the connection.  For
	 * POP3 the QUIT +OK is the commit of the DELEs: its failure is
	 * returned.  commit=0: drop the connection without QUIT. */
	int (*close)(struct ms_source *s, int commit, struct ms_err *e);
};

extern const struct ms_source_ops ms_imap_source;
extern const struct ms_source_ops ms_pop3_source;

#endif
