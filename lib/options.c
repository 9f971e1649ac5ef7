/*
 * options.c - versioned client options (libgit2's _options pattern).
 */
#include <stddef.h>
#include <string.h>

#include "tsesim_int.h"

tsesim_code tsesim_options_init(tsesim_options *opts, unsigned int version) {
  /* The struct's size in each version: a caller built against an older
   * header has a smaller struct, and only that much is written. */
  static const size_t size_of_version[TSESIM_OPTIONS_VERSION + 1] = {
      0, offsetof(tsesim_options, connect_timeout_ms), sizeof(tsesim_options)};
  static const tsesim_options defaults = TSESIM_OPTIONS_INIT;
  if (!opts || version < 1 || version > TSESIM_OPTIONS_VERSION) return TSESIM_E_INVAL;
  memcpy(opts, &defaults, size_of_version[version]);
  opts->version = version;
  return TSESIM_OK;
}
