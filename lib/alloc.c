/*
 * alloc.c - every allocation of the library goes through here, so that the
 * test build can fail the n-th one and count bytes (libcurl's torture tests,
 * jansson's test_chaos). The shipped build is a thin layer over malloc.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tsesim_int.h"

#ifndef TSESIM_TEST_HOOKS

void *tsesim__malloc(size_t size) { return malloc(size ? size : 1); }

void *tsesim__realloc(void *ptr, size_t size) { return realloc(ptr, size ? size : 1); }

void tsesim__free(void *ptr) { free(ptr); }

#else /* the test build: a size header in front of each block */

typedef union hdr {
  size_t size;
  max_align_t align;
} hdr;

/* Relaxed atomics: the thread tests allocate from several threads at once
 * (and run under ThreadSanitizer); the failure loops are single-threaded, so
 * no ordering is needed beyond each counter being whole. */
#define LOAD(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)
#define ADD(v, x) __atomic_add_fetch(&(v), (x), __ATOMIC_RELAXED)

static unsigned long fail_at, count, failed;
static size_t live, peak;

/* An injected failure looks like malloc's own: NULL and errno ENOMEM. */
static int should_fail(void) {
  unsigned long n = ADD(count, 1), at = LOAD(fail_at);
  if (at && n == at) {
    ADD(failed, 1);
    errno = ENOMEM;
    return 1;
  }
  return 0;
}

void tsesim__test_alloc_fail_at(unsigned long n) { STORE(fail_at, n ? LOAD(count) + n : 0); }
unsigned long tsesim__test_alloc_count(void) { return LOAD(count); }
size_t tsesim__test_alloc_live(void) { return LOAD(live); }
size_t tsesim__test_alloc_peak(void) { return LOAD(peak); }
unsigned long tsesim__test_alloc_failed(void) { return LOAD(failed); }
void tsesim__test_alloc_reset(void) {
  STORE(count, 0);
  STORE(failed, 0);
  STORE(fail_at, 0);
  STORE(peak, LOAD(live));
}

static void account(size_t add, size_t sub) {
  size_t now = ADD(live, add - sub), p = LOAD(peak);
  while (now > p &&
         !__atomic_compare_exchange_n(&peak, &p, now, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

static char *watched[15];
static unsigned long leaks;
static int watching;

void *tsesim__malloc(size_t size) {
  hdr *h;
  if (should_fail() || size > (size_t)-1 - sizeof(hdr)) return NULL;
  h = malloc(sizeof(hdr) + size);
  if (!h) return NULL;
  h->size = size;
  /* While secrets are watched, every freed block is searched whole, also
   * the bytes the library never wrote (a buffer made before an answer of
   * unknown length): they start as zeros, so that the search reads only
   * defined memory and valgrind stays meaningful. */
  if (watching) memset(h + 1, 0, size);
  account(size, 0);
  return h + 1;
}

void tsesim__test_watch_secret(const char *s) {
  size_t i;
  for (i = 0; i < sizeof watched / sizeof *watched; i++) {
    if (!s) {
      free(watched[i]);
      watched[i] = NULL;
    } else if (!watched[i]) {
      if ((watched[i] = malloc(strlen(s) + 1))) strcpy(watched[i], s);
      break;
    }
  }
  if (!s) leaks = 0;
  watching = s != NULL;
}

unsigned long tsesim__test_secret_leaks(void) { return leaks; }

static int holds(const char *block, size_t size, const char *s) {
  size_t k = strlen(s), i;
  for (i = 0; k && i + k <= size; i++)
    if (block[i] == s[0] && memcmp(block + i, s, k) == 0) return 1;
  return 0;
}

void *tsesim__realloc(void *ptr, size_t size) {
  hdr *h, *n;
  size_t old;
  char *moved;
  if (!ptr) return tsesim__malloc(size);
  if (watching) { /* always move, so that the watch sees the old block go */
    h = (hdr *)ptr - 1;
    if (!(moved = tsesim__malloc(size))) return NULL;
    memcpy(moved, ptr, h->size < size ? h->size : size);
    tsesim__free(ptr);
    return moved;
  }
  if (should_fail() || size > (size_t)-1 - sizeof(hdr)) return NULL;
  h = (hdr *)ptr - 1;
  old = h->size;
  n = realloc(h, sizeof(hdr) + size);
  if (!n) return NULL;
  n->size = size;
  account(size, old);
  return n + 1;
}

void tsesim__free(void *ptr) {
  hdr *h;
  size_t i;
  if (!ptr) return;
  h = (hdr *)ptr - 1;
  for (i = 0; i < sizeof watched / sizeof *watched; i++)
    if (watched[i] && holds(ptr, h->size, watched[i])) leaks++;
  account(0, h->size);
  free(h);
}

#endif

char *tsesim__strndup(const char *s, size_t len) {
  char *p;
  if (len == (size_t)-1) return NULL;
  p = tsesim__malloc(len + 1);
  if (!p) return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void tsesim_free(void *ptr) { tsesim__free(ptr); }

void tsesim__free_secret(char *s) {
  if (!s) return;
  tsesim__memzero(s, strlen(s));
  tsesim__free(s);
}
