/*
 * log.c: level filter and sink dispatch.  Thread-safe enough for our use:
 * the sink is installed once, before any account runs.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static ms_log_sink log_sink;
static void *log_ctx;
static int log_max = MS_LOG_WARN;
static const char *log_account, *log_folder;

void ms_log_scope(const char *account, const char *folder)
{
	log_account = account;
	log_folder = account ? folder : NULL;
}

void ms_log_setup(ms_log_sink sink, void *ctx, int max_level)
{
	log_sink = sink;
	log_ctx = ctx;
	log_max = max_level;
}

int ms_log_level(void)
{
	return log_max;
}

int ms_log_enabled(int level)
{
	return log_sink && level <= log_max;
}

void ms_log(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n = 0;

	if (!ms_log_enabled(level))
		return;
	if (log_account)
		n = snprintf(line, sizeof line, "%s%s%s: ", log_account,
			     log_folder ? "/" : "", log_folder ? log_folder
							       : "");
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	log_sink(level, line, log_ctx);
}
