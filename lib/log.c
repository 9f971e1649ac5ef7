/*
 * log.c - the one way the library writes a log line: formatted, cut at 512
 * bytes, handed to the application's log function when its level allows.
 */
#include <stdarg.h>
#include <stdio.h>

#include "tsesim_int.h"

void tsesim__vlog(const tsesim__logger *lg, int level, const char *fmt, va_list ap) {
  char line[512];
  if (!lg->fn || level > lg->level) return;
  if (vsnprintf(line, sizeof line, fmt, ap) < 0) line[0] = '\0';
  lg->fn(level, line, lg->payload);
}

void tsesim__log(const tsesim__logger *lg, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__vlog(lg, level, fmt, ap);
  va_end(ap);
}
