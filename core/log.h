/*
 * log.h: the core's only way to say anything.
 *
 * Nothing in core prints; it calls ms_log(), and cmd/ installs the sink
 * (stderr, with the "mailsync: " prefix).  Levels follow -q/-v/-vv.  A
 * message must never contain a secret: protocol traces go through the
 * redacting helpers in net.c and imap.c/pop3.c.
 */
#ifndef MS_LOG_H
#define MS_LOG_H

enum ms_log_level {
	MS_LOG_ERR = 0,   /* always shown (unless -q for warnings only)  */
	MS_LOG_WARN = 1,  /* shown by default                            */
	MS_LOG_INFO = 2,  /* -v: one line per folder, summaries          */
	MS_LOG_DEBUG = 3, /* -vv: protocol trace (redacted)               */
};

typedef void (*ms_log_sink)(int level, const char *line, void *ctx);

/* Who a line is about: "ACCOUNT: " or "ACCOUNT/FOLDER: " is put in front
 * of every line logged until the next call, so that the messages never
 * name the account or folder themselves (and a module that does not know
 * them, like a store or a protocol engine, still says whose it is).
 * account NULL: no prefix.  The strings are not copied: they must outlive
 * the scope (one account at a time per process). */
void ms_log_scope(const char *account, const char *folder);

/* Install the sink and the maximum level that is emitted. */
void ms_log_setup(ms_log_sink sink, void *ctx, int max_level);
int ms_log_level(void);
/* True when messages of this level are emitted (avoid costly formatting). */
int ms_log_enabled(int level);
void ms_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
