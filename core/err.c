/*
 * err.c: error records and the mapping to exit statuses.
 *
 * Messages are formatted once where the failure happens; the buffer is
 * fixed-size so that reporting an error can never itself fail.
 */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void ms_err_clear(struct ms_err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->scope = 0;
	e->reported = 0;
	e->folder[0] = '\0';
	e->msg[0] = '\0';
}

void ms_err_folder(struct ms_err *e, const char *folder)
{
	size_t n;

	if (!e || e->folder[0] || !folder)
		return;
	n = strlen(folder);
	if (n >= sizeof e->folder) {
		/* cut on a UTF-8 character boundary, marked */
		n = sizeof e->folder - 4;
		while (n > 0 && ((unsigned char)folder[n] & 0xc0) == 0x80)
			n--;
		memcpy(e->folder, folder, n);
		memcpy(e->folder + n, "...", 4);
		return;
	}
	memcpy(e->folder, folder, n + 1);
}

static int default_scope(int code)
{
	switch (code) {
	case MS_ETEMP:
	case MS_EPERM:
	case MS_ECONFIG:
		return MS_SCOPE_ACCOUNT;
	case MS_EUSAGE:
	case MS_EINTERNAL:
		return MS_SCOPE_RUN;
	default:
		return MS_SCOPE_FOLDER;
	}
}

int ms_err_vset(struct ms_err *e, int code, const char *fmt, va_list ap)
{
	if (!e)
		return code;
	e->code = code;
	e->scope = default_scope(code);
	e->reported = 0;
	e->folder[0] = '\0';
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	return code;
}

int ms_err_set(struct ms_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ms_err_vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int ms_err_sys(struct ms_err *e, int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	ms_err_vset(e, code, fmt, ap);
	va_end(ap);
	if (e) {
		n = strlen(e->msg);
		snprintf(e->msg + n, sizeof e->msg - n, ": %s",
			 strerror(errnum));
	}
	return code;
}

int ms_err_prefix(struct ms_err *e, const char *fmt, ...)
{
	char tmp[MS_ERR_MSG_MAX];
	size_t hl, ml;
	va_list ap;

	if (!e)
		return 0;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	hl = strlen(tmp);
	if (hl + 2 < sizeof tmp) {
		memcpy(tmp + hl, ": ", 2);
		hl += 2;
		ml = strlen(e->msg);
		if (ml > sizeof tmp - 1 - hl)
			ml = sizeof tmp - 1 - hl;
		memcpy(tmp + hl, e->msg, ml);
		tmp[hl + ml] = '\0';
	}
	memcpy(e->msg, tmp, sizeof e->msg);
	return e->code;
}

int ms_err_exit_status(int code)
{
	if (code == 0)
		return 0;
	if (code <= -64 && code >= -78)
		return -code;
	return 70;
}

/* Severity order: config and permission problems need a human most. */
static int rank(int code)
{
	switch (code) {
	case 0: return 0;
	case MS_ETEMP: return 1;
	case MS_EPROTO: return 2;
	case MS_EIO: return 3;
	case MS_ECREATE: return 4;
	case MS_EPERM: return 5;
	case MS_ECONFIG: return 6;
	case MS_EUSAGE: return 7;
	default: return 8;
	}
}

int ms_err_worse(int a, int b)
{
	return rank(b) > rank(a) ? b : a;
}

int ms_err_code_for_errno(int errnum)
{
	switch (errnum) {
	case EACCES:
	case EPERM:
	case EROFS:
	case EEXIST:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
		return MS_ECREATE;
	default:
		return MS_EIO;
	}
}
