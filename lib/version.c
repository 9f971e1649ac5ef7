/*
 * version.c - the run-time version, to compare with TSESIM_VERSION_NUM.
 */
#include "tsesim_int.h"

unsigned int tsesim_version(void) { return TSESIM_VERSION_NUM; }
