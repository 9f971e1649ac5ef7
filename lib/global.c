/*
 * global.c - process-wide set-up: wraps libcurl's, reference-counted
 * (git_libgit2_init). Call from the main thread before other threads start.
 */
#include <curl/curl.h>

#include "tsesim_int.h"

static unsigned long init_count;

tsesim_code tsesim_global_init(void) {
  if (init_count == 0) {
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (c == CURLE_OUT_OF_MEMORY) return TSESIM_E_NOMEM;
    if (c != CURLE_OK) return TSESIM_E_TRANSPORT;
  }
  init_count++;
  return TSESIM_OK;
}

void tsesim_global_cleanup(void) {
  if (init_count == 0) return;
  if (--init_count == 0) curl_global_cleanup();
}
