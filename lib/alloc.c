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

static unsigned long fail_at, count, failed;
static size_t live, peak;

/* An injected failure looks like malloc's own: NULL and errno ENOMEM. */
static int should_fail(void) {
  count++;
  if (fail_at && count == fail_at) {
    failed++;
    errno = ENOMEM;
    return 1;
  }
  return 0;
}

void tsesim__test_alloc_fail_at(unsigned long n) { fail_at = n ? count + n : 0; }
unsigned long tsesim__test_alloc_count(void) { return count; }
size_t tsesim__test_alloc_live(void) { return live; }
size_t tsesim__test_alloc_peak(void) { return peak; }
unsigned long tsesim__test_alloc_failed(void) { return failed; }
void tsesim__test_alloc_reset(void) {
  count = failed = fail_at = 0;
  peak = live;
}

static void account(size_t add, size_t sub) {
  live = live + add - sub;
  if (live > peak) peak = live;
}

void *tsesim__malloc(size_t size) {
  hdr *h;
  if (should_fail() || size > (size_t)-1 - sizeof(hdr)) return NULL;
  h = malloc(sizeof(hdr) + size);
  if (!h) return NULL;
  h->size = size;
  account(size, 0);
  return h + 1;
}

void *tsesim__realloc(void *ptr, size_t size) {
  hdr *h, *n;
  size_t old;
  if (!ptr) return tsesim__malloc(size);
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
  if (!ptr) return;
  h = (hdr *)ptr - 1;
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
