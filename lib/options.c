/*
 * options.c - versioned client options (libgit2's _options pattern).
 */
#include <string.h>

#include "tsesim_int.h"

tsesim_code tsesim_options_init(tsesim_options *opts, unsigned int version) {
  static const tsesim_options defaults = TSESIM_OPTIONS_INIT;
  if (!opts || version < 1 || version > TSESIM_OPTIONS_VERSION) return TSESIM_E_INVAL;
  /* Version 1 is the whole struct today; a later version writes only the
   * fields that version knows, so an older caller's smaller struct is safe. */
  memcpy(opts, &defaults, sizeof *opts);
  opts->version = version;
  return TSESIM_OK;
}
