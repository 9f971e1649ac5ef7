/*
 * tt_place.h - where a parser test puts a body: an exact-size heap copy, or
 * the end of a page followed by a PROT_NONE page, so that reading one byte
 * past the body faults (picohttpparser's trick). body_drop destroys the copy
 * before anything is checked, so a result that kept a pointer into it shows.
 */
#ifndef TT_PLACE_H
#define TT_PLACE_H

#include <sys/mman.h>
#include <unistd.h>

#include "tsesim_test.h"

typedef enum place { PLACE_HEAP, PLACE_GUARD } place;

typedef struct placed {
  place where;
  char *buf;          /* what the parser gets */
  unsigned char *map; /* PLACE_GUARD: the two pages */
  size_t page, len;
} placed;

static const char *body_put(placed *p, place where, const char *body, size_t len) {
  p->where = where;
  p->len = len;
  p->map = NULL;
  if (where == PLACE_HEAP) {
    p->buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p->buf);
    if (len) memcpy(p->buf, body, len);
    return p->buf;
  }
  p->page = (size_t)sysconf(_SC_PAGESIZE);
  ck_assert_uint_ge(p->page, len);
  p->map = mmap(NULL, 2 * p->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert(p->map != MAP_FAILED);
  ck_assert_int_eq(mprotect(p->map + p->page, p->page, PROT_NONE), 0);
  p->buf = (char *)p->map + p->page - len;
  if (len) memcpy(p->buf, body, len);
  return p->buf;
}

static void body_drop(placed *p) {
  if (p->where == PLACE_HEAP) {
    memset(p->buf, 0xA5, p->len);
    free(p->buf);
  } else {
    ck_assert_int_eq(munmap(p->map, 2 * p->page), 0);
  }
  p->buf = NULL;
}

#endif /* TT_PLACE_H */
