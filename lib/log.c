/*
 * log.c - the one way the library writes a log line: formatted, cut at 512
 * bytes, handed to the application's log function when its level allows.
 */
#include <stdarg.h>
#include <stdio.h>

#include "tsesim_int.h"

void tsesim__log(const tsesim__logger *lg, int level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  if (!lg->fn || level > lg->level) return;
  va_start(ap, fmt);
  if (vsnprintf(line, sizeof line, fmt, ap) < 0) line[0] = '\0';
  va_end(ap);
  lg->fn(level, line, lg->payload);
}
