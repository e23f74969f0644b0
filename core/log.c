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

	if (!ms_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log_sink(level, line, log_ctx);
}
