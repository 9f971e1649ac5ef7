/*
 * tsesim_int.h - internals shared between the layers of libtsesim.
 * Never installed. Names are tsesim__<noun>_<verb>; everything else is static.
 */
#ifndef TSESIM_INT_H
#define TSESIM_INT_H

#include <stddef.h>

#include "tsesim.h"

#if defined(__GNUC__)
#define TSESIM__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TSESIM__PRINTF(f, a)
#endif

/* ---- alloc.c: the one way the library allocates ---- */
void *tsesim__malloc(size_t size);
void *tsesim__realloc(void *ptr, size_t size);
void tsesim__free(void *ptr);
/* A copy of s[0..len) plus a NUL, or NULL. */
char *tsesim__strndup(const char *s, size_t len);

#ifdef TSESIM_TEST_HOOKS
/* Only in the noinst test build (libtsesim_test.la): the shipped library has
 * no mutable globals. fail_at(n): the n-th allocation from now (1-based)
 * fails, and only that one; 0 disarms. */
void tsesim__test_alloc_fail_at(unsigned long n);
unsigned long tsesim__test_alloc_count(void);   /* allocations since reset */
size_t tsesim__test_alloc_live(void);           /* bytes live now */
size_t tsesim__test_alloc_peak(void);           /* highest live bytes since reset */
unsigned long tsesim__test_alloc_failed(void);  /* injected failures since reset */
void tsesim__test_alloc_reset(void);            /* counters to 0, peak to live */
#endif

/* ---- error.c ---- */
/* Writes a formatted reason into errbuf (TSESIM_ERRBUF_SIZE bytes) if it is
 * not NULL, truncating safely. */
void tsesim__errbuf_set(char *errbuf, const char *fmt, ...) TSESIM__PRINTF(2, 3);

/* ---- ids.c ---- */
/* Lower-case wire name of a kind ("eid"), or NULL for an unknown kind. */
const char *tsesim__id_kind_name(tsesim_id_kind kind);
/* Checks an identifier; verify_checksums 0 skips the check digits. */
tsesim_code tsesim__id_check(tsesim_id_kind kind, const char *id, int verify_checksums,
                             char *errbuf);
/* Maps a kind as received (any case) to the enum; TSESIM_ID_UNKNOWN if none. */
tsesim_id_kind tsesim__id_kind_parse(const char *name);

/* ---- text.c ---- */
/* Checks a free-text field (accountName, servicePlan): 1..max bytes of valid
 * UTF-8 without control characters. field names it in the reason. */
tsesim_code tsesim__text_check(const char *field, const char *s, size_t max, char *errbuf);
/* ASCII case-insensitive equality. */
int tsesim__ascii_ieq(const char *a, const char *b);
/* Writes s (at most max bytes shown) quoted into dst for a message:
 * printable ASCII as is, the rest as \xHH. */
void tsesim__quote(char *dst, size_t dstsize, const char *s, size_t max);

/* ---- builder.c, read by serialize.c ---- */
#define TSESIM__TEXT_MAX 64
typedef struct tsesim__device {
  size_t off;                  /* first byte of its identifiers in the pool */
  unsigned char n_ids;         /* 1..3 */
  unsigned char kind[3];       /* tsesim_id_kind */
  unsigned char len[3];        /* digits of each identifier, back to back in the pool */
} tsesim__device;

struct tsesim_request {
  char *account_name;
  char *service_plan;          /* NULL when not set */
  int verify_checksums;
  tsesim__device *devs;
  size_t n_devs, cap_devs;
  char *pool;                  /* every identifier's digits, no separators */
  size_t pool_len, pool_cap;
  char errmsg[TSESIM_ERRBUF_SIZE];
};

/* ---- json_load.c (parsers only; includes jansson) ---- */
#ifdef TSESIM__WITH_JANSSON
#include <jansson.h>
/* Strict load: no NUL byte, no duplicate keys, valid JSON, any top level.
 * TSESIM_E_PARSE with line/column or byte offset in errbuf, TSESIM_E_NOMEM. */
tsesim_code tsesim__json_load(json_t **out, const char *body, size_t len, char *errbuf);
/* "an object", "a string", ... for messages. */
const char *tsesim__json_type_name(const json_t *v);
#endif

#endif /* TSESIM_INT_H */
