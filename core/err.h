/*
 * err.h: the one error convention of the core.
 *
 * A fallible function returns 0 or a negative MS_E* code and takes a
 * struct ms_err * last.  The site that detects the failure writes the
 * message once (UID, path, errno or server text); callers only add
 * context with ms_err_prefix(), and the folder with ms_err_folder().  The
 * account is never in the message: whoever prints it puts it in front.  Each code maps 1:1 to a sysexits
 * status so cmd/ never has to guess; the scope says how far the damage goes.
 */
#ifndef MS_ERR_H
#define MS_ERR_H

#include <stdarg.h>

enum ms_code {
	MS_OK = 0,
	MS_EUSAGE = -64,    /* bad command line                       -> 64 */
	MS_EINTERNAL = -70, /* bug, out of memory                     -> 70 */
	MS_ECREATE = -73,   /* cannot create in the destination       -> 73 */
	MS_EIO = -74,       /* local I/O error (ENOSPC, EIO)          -> 74 */
	MS_ETEMP = -75,     /* temporary: network, timeout, lock held -> 75 */
	MS_EPROTO = -76,    /* protocol: malformed/hostile, identity  -> 76 */
	MS_EPERM = -77,     /* authentication, TLS verification       -> 77 */
	MS_ECONFIG = -78,   /* configuration invalid or insecure      -> 78 */
};

/* How far the damage goes: the engine uses it to decide whether to go on. */
enum ms_scope {
	MS_SCOPE_MESSAGE = 1, /* skip this message, continue the folder */
	MS_SCOPE_FOLDER,      /* skip this folder, continue the account */
	MS_SCOPE_ACCOUNT,     /* stop this account (connection is gone) */
	MS_SCOPE_RUN,         /* stop everything */
};

#define MS_ERR_MSG_MAX 1024
#define MS_ERR_FOLDER_MAX 256

/* The message names neither the account nor the folder: whoever prints it
 * puts "ACCOUNT: " or "ACCOUNT/FOLDER: " in front (see log.h). */
struct ms_err {
	int code;           /* 0 or a negative MS_E* */
	int scope;          /* enum ms_scope, 0 when unset */
	int reported;       /* already logged where it happened: say no more */
	char folder[MS_ERR_FOLDER_MAX]; /* the folder concerned, or "" */
	char msg[MS_ERR_MSG_MAX]; /* one line, no trailing newline, no secret */
};

/* Reset to "no error". */
void ms_err_clear(struct ms_err *e);
/* Record an error (code, default scope for the code) and return code. */
int ms_err_set(struct ms_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int ms_err_vset(struct ms_err *e, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Like ms_err_set, appending ": strerror(errnum)". */
int ms_err_sys(struct ms_err *e, int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prepend "ctx: " to the message (e.g. the folder name); returns e->code. */
int ms_err_prefix(struct ms_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Name the folder the error concerns, unless one is named already. */
void ms_err_folder(struct ms_err *e, const char *folder);
/* sysexits status for a code (0 for MS_OK, 70 for unknown codes). */
int ms_err_exit_status(int code);
/* Worse of two codes by exit-status severity rules ("worst account wins"). */
int ms_err_worse(int a, int b);
/* Local I/O errno -> MS_EIO, MS_ECREATE (EACCES, EROFS, EEXIST...). */
int ms_err_code_for_errno(int errnum);

#endif
