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
unsigned long tsesim__test_alloc_count(void);  /* allocations since reset */
size_t tsesim__test_alloc_live(void);          /* bytes live now */
size_t tsesim__test_alloc_peak(void);          /* highest live bytes since reset */
unsigned long tsesim__test_alloc_failed(void); /* injected failures since reset */
void tsesim__test_alloc_reset(void);           /* counters to 0, peak to live */
/* Secret watch: every block freed from now on (realloc's old block too) is
 * searched for s; a copy of it (up to 15 watched, NULL clears them all). */
void tsesim__test_watch_secret(const char *s);
/* Freed blocks that still held a watched secret, since the last clear. */
unsigned long tsesim__test_secret_leaks(void);
/* global.c: the count behind tsesim_global_init, read under its lock. */
unsigned long tsesim__test_global_count(void);
/* journal.c: the journal's sqlite3 connection (as void *: this header does
 * not include sqlite3.h), for tests to read its pragmas and shorten its
 * busy timeout. */
void *tsesim__test_journal_db(tsesim_journal *j);
#endif

/* ---- secret.c ---- */
/* Zeroes n bytes at p in a way the compiler cannot drop (NULL ok). */
void tsesim__memzero(void *p, size_t n);
/* 1 when a[0..alen) equals b[0..blen), else 0, in time that depends on alen
 * only: a is the expected secret, b what a peer sent. */
int tsesim__ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* The same for NUL-terminated strings; two NULLs are equal, one is not. */
int tsesim__ct_streq(const char *expected, const char *given);

/* ---- loopback.c ---- */
/* 1 when host is a dotted-quad literal in 127.0.0.0/8: exactly four parts,
 * each 0-255 in decimal without leading zeros (which some parsers read as
 * octal); else 0. */
int tsesim__loopback_ipv4(const char *host);

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

/* ---- serialize.c: small bodies that carry credentials ---- */
/* {"k0":"v0","k1":"v1",...} from n (key, value) pairs, pairs[2i] a key and
 * pairs[2i+1] its value; a NULL value leaves its member out. Built in one
 * allocation of our own, never through jansson, so that the caller can zero
 * it (tsesim__free_secret). NULL when out of memory. */
char *tsesim__json_strings(const char *const *pairs, size_t n);

/* ---- text.c ---- */
/* Checks a free-text field (accountName, servicePlan): 1..max bytes of valid
 * UTF-8 without control characters. field names it in the reason. */
tsesim_code tsesim__text_check(const char *field, const char *s, size_t max, char *errbuf);
/* 0 when s is valid UTF-8, else the 1-based byte position of the first bad sequence. */
size_t tsesim__utf8_invalid_at(const char *s);
/* ASCII case-insensitive equality. */
int tsesim__ascii_ieq(const char *a, const char *b);
/* Writes s (at most max bytes shown) quoted into dst for a message:
 * printable ASCII as is, the rest as \xHH. */
void tsesim__quote(char *dst, size_t dstsize, const char *s, size_t max);

/* ---- builder.c, read by serialize.c ---- */
#define TSESIM__TEXT_MAX 64
typedef struct tsesim__device {
  size_t off;            /* first byte of its identifiers in the pool */
  unsigned char n_ids;   /* 1..3 */
  unsigned char kind[3]; /* tsesim_id_kind */
  unsigned char len[3];  /* digits of each identifier, back to back in the pool */
} tsesim__device;

struct tsesim_request {
  char *account_name;
  char *service_plan; /* NULL when not set */
  int verify_checksums;
  tsesim__device *devs;
  size_t n_devs, cap_devs;
  char *pool; /* every identifier's digits, no separators */
  size_t pool_len, pool_cap;
  char errmsg[TSESIM_ERRBUF_SIZE];
};

/* ---- builder.c, for the readers ---- */
/* Drops the devices from index n on (n <= count): a reader that fails puts
 * the request back as it found it. */
void tsesim__request_truncate(tsesim_request *req, size_t n);

/* ---- journal.c: the SQLite journal (tsesim-journal(5)) ---- */
#define TSESIM__JOURNAL_VERSION 1 /* PRAGMA user_version of the schema this library writes */
typedef enum tsesim__chunk_state {
  TSESIM__CHUNK_QUEUED = 0,
  TSESIM__CHUNK_SENDING,
  TSESIM__CHUNK_ACCEPTED,
  TSESIM__CHUNK_UNKNOWN,
  TSESIM__CHUNK_REFUSED
} tsesim__chunk_state;
/* "queued", "sending", ...: the names stored in chunk.state. */
const char *tsesim__chunk_state_name(int state);

typedef struct tsesim__job_rec {
  long long id; /* job.id */
  size_t chunk_size, n_chunks, n_devices, n_rows;
} tsesim__job_rec;

/* Finds the job name, or records it: the job, every row (rows, or the
 * request's devices as lines 1..n when rows is NULL) and every chunk, queued,
 * in one durable transaction. A recorded job must match: the account, the
 * plan, the rows (a fingerprint of every row's line, ids and validity) and,
 * when chunk_size is not 0, the chunk size; else TSESIM_E_INVAL, errmsg
 * naming what differs. Chunks found "sending" become "unknown" (a crash cut
 * them off), durably, before it returns. chunk_size 0 means 10000 for a new
 * job. TSESIM_E_JOURNAL, TSESIM_E_NOMEM, with tsesim_journal_errmsg set. */
tsesim_code tsesim__journal_job_begin(tsesim_journal *j, const char *name,
                                      const tsesim_request *req, const tsesim_rows *rows,
                                      size_t chunk_size, tsesim__job_rec *out);
/* The state of every chunk of the job: states[0..n_chunks). */
tsesim_code tsesim__journal_chunk_states(tsesim_journal *j, const tsesim__job_rec *job,
                                         unsigned char *states);
typedef struct tsesim__chunk_change {
  size_t seq;             /* the chunk, 0-based */
  int state;              /* tsesim__chunk_state */
  const char *request_id; /* accepted: its requestId; else NULL */
  long http_status;       /* the answer's status, 0 when none */
  const char *error;      /* refused, unknown, queued: why; NULL otherwise */
} tsesim__chunk_change;
/* Records n chunk changes in one transaction, committed with
 * synchronous=FULL: on TSESIM_OK they are on disk. "sending" also counts
 * an attempt (chunk.attempts). TSESIM_E_JOURNAL or TSESIM_E_NOMEM, nothing
 * recorded, errmsg set. */
tsesim_code tsesim__journal_chunks_set(tsesim_journal *j, const tsesim__job_rec *job,
                                       const tsesim__chunk_change *changes, size_t n);

/* ---- json_load.c (parsers only; includes jansson) ---- */
#ifdef TSESIM__WITH_JANSSON
#include <jansson.h>
/* Strict load: no NUL byte, no duplicate keys, valid JSON, any top level.
 * TSESIM_E_PARSE with line/column or byte offset in errbuf, TSESIM_E_NOMEM
 * (also when the tree jansson built differs from the source). */
tsesim_code tsesim__json_load(json_t **out, const char *body, size_t len, char *errbuf);
/* 0 when root holds exactly what the JSON text body[0..len) says (every key
 * and string byte for byte, every number's value, in order), else -1: the
 * check behind a successful load, because jansson can drop a byte when an
 * allocation fails and still succeed. body must be text jansson accepted. */
int tsesim__json_verify(const json_t *root, const char *body, size_t len);
/* "an object", "a string", ... for messages. */
const char *tsesim__json_type_name(const json_t *v);
#endif

/* ---- the client: client.c (flows), http.c (one exchange), backoff.c ---- */
#ifdef TSESIM__WITH_CURL
#include <curl/curl.h>

/* What a request authenticates with. */
typedef enum tsesim__auth {
  TSESIM__AUTH_BASIC,  /* the OAuth token request */
  TSESIM__AUTH_BEARER, /* the login */
  TSESIM__AUTH_SESSION /* Bearer and VZ-M2M-Token */
} tsesim__auth;

struct tsesim_client {
  CURL *easy; /* one per client, kept alive: the connection is reused */
  char *base_url;
  char *client_id, *client_secret, *username, *password;
  char *access_token, *session_token;
  long long access_expires_ms; /* on the client's clock; 0: not known */
  long long token_fetched_ms;
  int oauth_refused, login_refused; /* remembered refusals: never asked again */
  long connect_timeout_ms, timeout_ms, backoff_base_ms, backoff_cap_ms;
  unsigned int max_attempts;
  size_t max_response;
  char *user_agent;
  tsesim_log_fn log_fn;
  void *log_payload;
  int log_level;
  tsesim_token_fn token_fn;
  void *token_payload;
  tsesim_clock_fn clock_fn;
  tsesim_sleep_fn sleep_fn;
  void *time_payload;
  unsigned long long rng; /* back-off jitter */
  /* the last exchange */
  char *resp;
  size_t resp_len, resp_cap;
  int resp_over;      /* the answer passed max_response */
  long retry_after;   /* seconds from Retry-After, -1 when none */
  int guard_resend;   /* this request must never be sent twice */
  int request_sent;   /* its headers went out (the debug callback saw them) */
  int resend_refused; /* libcurl tried to send it again on a new connection */
  char errmsg[TSESIM_ERRBUF_SIZE];
  tsesim_api_error *last_error;
};

/* The outcome of one HTTP exchange. */
typedef struct tsesim__exchange {
  long status;      /* 0 when no complete answer came */
  int nothing_sent; /* the request never left: safe to send again */
} tsesim__exchange;

/* Sets the handle's callbacks (answer, headers, redacted debug log). */
void tsesim__http_setup(tsesim_client *c);
/* Sends method (POST, DELETE, GET) with body to base_url + path. TSESIM_OK when a complete answer
 * came (any status; body in c->resp). Otherwise the transport's code with c->errmsg set: TRANSPORT,
 * TIMEOUT, TLS, HTTP (answer over the cap), NOMEM, and, when no_resend is set and the request may
 * have been sent, UNKNOWN_OUTCOME; a request with no_resend is never sent twice, by libcurl either.
 */
tsesim_code tsesim__http_send(tsesim_client *c, const char *method, const char *path,
                              const char *body, size_t len, tsesim__auth auth, int no_resend,
                              tsesim__exchange *x);
void tsesim__client_log(tsesim_client *c, int level, const char *fmt, ...) TSESIM__PRINTF(3, 4);
void tsesim__client_fail(tsesim_client *c, const char *fmt, ...) TSESIM__PRINTF(2, 3);
/* Overwrites a secret with zeros, then frees it (NULL ok). */
void tsesim__free_secret(char *s);

/* backoff.c */
long long tsesim__now_ms(tsesim_client *c);
void tsesim__sleep_ms(tsesim_client *c, long ms);
/* The wait before try number attempt+1 (attempt >= 1): full jitter over
 * base * 2^(attempt-1), or Retry-After when the server gave one, capped. */
long tsesim__backoff_ms(tsesim_client *c, unsigned attempt, long retry_after_s);
/* Retry-After: delta-seconds or an HTTP-date; seconds from now (>= 0), -1 if neither. */
long tsesim__retry_after_parse(const char *value);
#endif

#endif /* TSESIM_INT_H */
