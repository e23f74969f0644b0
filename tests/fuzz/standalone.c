/*
 * standalone.c: replay files through a fuzz target without libFuzzer, so
 * the seed and regression corpora run in `make check` (tests/fuzz/run.sh
 * --replay) with the ordinary compiler.  Prints one TAP line per file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(int level, const char *line, void *ctx)
{
	(void)level;
	(void)ctx;
	fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];

	ms_log_setup(getenv("FUZZ_VERBOSE") ? sink : NULL, NULL, MS_LOG_DEBUG);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		size_t n;

		if (!f) {
			printf("not ok %d - cannot open %s\n", i, argv[i]);
			continue;
		}
		n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
		printf("ok %d - replay %s\n", i, argv[i]);
	}
	return 0;
}
