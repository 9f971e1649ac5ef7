/*
 * global.c - process-wide set-up: wraps libcurl's, reference-counted and
 * safe from any thread (git_libgit2_init): a once-guard makes the lock, the
 * lock guards the count, and libcurl's own set-up and tear-down run under
 * it, on the 0 -> 1 and 1 -> 0 transitions only.
 */
#include <curl/curl.h>
#include <pthread.h>

#include "tsesim_int.h"

static pthread_once_t lock_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock;
static int lock_made; /* written once, inside pthread_once: read after it without a race */
static unsigned long init_count;

static void make_lock(void) { lock_made = pthread_mutex_init(&lock, NULL) == 0; }

tsesim_code tsesim_global_init(void) {
  tsesim_code rc = TSESIM_OK;
  if (pthread_once(&lock_once, make_lock) != 0 || !lock_made) return TSESIM_E_NOMEM;
  pthread_mutex_lock(&lock);
  if (init_count == 0) {
    /* Under the lock: no other thread of ours can be inside libcurl's
     * set-up or tear-down at the same time. */
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (c == CURLE_OUT_OF_MEMORY)
      rc = TSESIM_E_NOMEM;
    else if (c != CURLE_OK)
      rc = TSESIM_E_TRANSPORT;
  }
  if (rc == TSESIM_OK) init_count++;
  pthread_mutex_unlock(&lock);
  return rc;
}

void tsesim_global_cleanup(void) {
  /* The once-guard here too: a cleanup with no init ever made still needs a
   * lock that exists, and then finds the count at 0. */
  if (pthread_once(&lock_once, make_lock) != 0 || !lock_made) return;
  pthread_mutex_lock(&lock);
  if (init_count > 0 && --init_count == 0) curl_global_cleanup();
  pthread_mutex_unlock(&lock);
}

#ifdef TSESIM_TEST_HOOKS
unsigned long tsesim__test_global_count(void) {
  unsigned long n;
  if (pthread_once(&lock_once, make_lock) != 0 || !lock_made) return (unsigned long)-1;
  pthread_mutex_lock(&lock);
  n = init_count;
  pthread_mutex_unlock(&lock);
  return n;
}
#endif
