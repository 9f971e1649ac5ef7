/*
 * tsesim_int.h - internals shared between the layers of libtsesim.
 * Never installed. Names are tsesim__<noun>_<verb>; everything else is static.
 */
#ifndef TSESIM_INT_H
#define TSESIM_INT_H

#include <stdarg.h>
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
/* Zeroes a NUL-terminated secret (tsesim__memzero), then frees it (NULL ok). */
void tsesim__free_secret(char *s);

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
/* job.c: fn(seq) runs right after a chunk's "sending" is committed and
 * before its download is handed to libcurl (NULL: none). A crash test
 * kills the process there. */
void tsesim__test_job_sending_hook(void (*fn)(size_t seq));
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
/* The same with a va_list: the one formatter behind every errmsg. */
void tsesim__errbuf_vset(char *errbuf, const char *fmt, va_list ap);

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
/* The body of devices [first, first + count) of req, as tsesim_request_to_json
 * writes a whole request: what a job sends as one chunk. TSESIM_E_INVAL for
 * an empty or out-of-range slice or more than 10000 devices; NOMEM. */
tsesim_code tsesim__request_json_range(char **out, size_t *out_len, const tsesim_request *req,
                                       size_t first, size_t count);

/* ---- text.c ---- */
/* Checks a free-text field (accountName, servicePlan): 1..max bytes of valid
 * UTF-8 without control characters. field names it in the reason. */
tsesim_code tsesim__text_check(const char *field, const char *s, size_t max, char *errbuf);
/* 0 when s is valid UTF-8, else the 1-based byte position of the first bad sequence. */
size_t tsesim__utf8_invalid_at(const char *s);
/* ASCII case-insensitive equality. */
int tsesim__ascii_ieq(const char *a, const char *b);
/* 1 when s[0..n) starts with prefix, ASCII case-insensitively; the one
 * case-insensitive prefix test (URL schemes, header names). */
int tsesim__ascii_iprefix(const char *s, size_t n, const char *prefix);
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

/* ---- reader_csv.c ---- */
/* tsesim_rows_read_csv_fd reading at most block bytes at a time (0: its
 * 64 KiB): tests and the fuzz target pass 1..7 so that records, quotes and
 * UTF-8 sequences cross blocks everywhere. peak (or NULL) gets the largest
 * buffer the read held, in bytes. */
tsesim_code tsesim__rows_read_fd(tsesim_rows **out, tsesim_request *req, int fd, const char *name,
                                 char *errbuf, size_t block, size_t *peak);

/* ---- journal.c: the SQLite journal (tsesim-journal(5)) ---- */
#define TSESIM__JOURNAL_VERSION 2 /* PRAGMA user_version of the schema this library writes */
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

/* ---- tracker.c: callbacks into the journal (CLI.md, "The listener") ---- */
typedef struct tsesim__cb_item {
  const tsesim_callback *cb; /* in: the parsed callback */
  const char *body;          /* in: its raw body, kept for an unmatched callback */
  size_t len;
  tsesim_callback_result result; /* out, on TSESIM_OK: result.job and result.state are
                                  * borrowed from the journal until its next call */
} tsesim__cb_item;
/* Matches, de-duplicates and stores n callbacks in one transaction,
 * committed with synchronous=FULL: on TSESIM_OK every one is on disk (a
 * repeat changes nothing but the duplicate count). On failure nothing is
 * stored (TSESIM_E_JOURNAL, TSESIM_E_NOMEM; errmsg set): the listener
 * answers 503 to all n, and ThingSpace delivers them again. */
tsesim_code tsesim__journal_callbacks_store(tsesim_journal *j, tsesim__cb_item *items, size_t n);
#ifdef TSESIM_TEST_HOOKS
/* SQL run on every journal right after it is opened (test build only),
 * e.g. "PRAGMA max_page_count = 60" for a journal that cannot grow. */
extern const char *tsesim__test_journal_open_sql;
#endif

/* ---- listener_http.c: judging one request, without sockets (the fuzz
 * target drives it) ---- */
typedef struct tsesim__listener_rules {
  const char *path;     /* the callback path, e.g. "/callbacks" */
  const char *username; /* expected; both NULL: not checked */
  const char *password;
  size_t max_body; /* the body cap, for the 413 message */
} tsesim__listener_rules;
/* What a request's body was, as the reader saw it. */
enum { TSESIM__BODY_OK = 0, TSESIM__BODY_TOO_LARGE, TSESIM__BODY_OVER_BUDGET, TSESIM__BODY_NOMEM };
#define TSESIM__ANSWER_SIZE 512
/* Judges one request in this order: path (another path 404, except GET
 * /healthz 200), method (not POST: 405), size (413), the body budget or an
 * allocation (503), tsesim_callback_parse (400; its NOMEM 503), credentials
 * (401, constant time, both compared). Returns the HTTP status, with a small
 * JSON body in answer (TSESIM__ANSWER_SIZE bytes, control characters
 * escaped, never a credential); or 0: the callback is good and *cb (the
 * caller's to free) must be stored before it is answered. */
int tsesim__listener_judge(const tsesim__listener_rules *rules, const char *method, const char *url,
                           int body_state, const char *body, size_t len, tsesim_callback **cb,
                           char *answer);
/* The JSON answer {"status":N,"message":"..."} for status and a message
 * (escaped: printable ASCII as is, every other byte as \u00XX). */
void tsesim__listener_answer(char *answer, int status, const char *message);
#ifdef TSESIM_TEST_HOOKS
/* listener_mhd.c: how many group commits (tsesim__journal_callbacks_store
 * calls that succeeded) the listener's writer made. */
unsigned long tsesim__test_listener_commits(const tsesim_listener *l);
#endif

#ifdef TSESIM__WITH_SQLITE
#include <sqlite3.h>
/* ---- journal.c and tracker.c: the journal handle, shared by the two ---- */
#define TSESIM__JOURNAL_STMTS 11 /* journal.c's own prepared statements */
/* tracker.c's, prepared with the journal's when it opens (tsesim__tracker_sql) */
enum {
  TSESIM__T_RID_KNOWN,
  TSESIM__T_FIND_EID_RID,
  TSESIM__T_FIND_ICCID_RID,
  TSESIM__T_FIND_IMEI_RID,
  TSESIM__T_FIND_EID_NEW,
  TSESIM__T_FIND_ICCID_NEW,
  TSESIM__T_FIND_IMEI_NEW,
  TSESIM__T_CB_STORE,
  TSESIM__T_CHUNK_LEARN,
  TSESIM__T_DEVICE_COUNT,
  TSESIM__T_DEVICE_DECIDE,
  TSESIM__T_CHUNK_OUTCOME,
  TSESIM__T_JOB_CALLBACKS,
  TSESIM__T_JOB_NAME,
  TSESIM__T_Q_JOB_NAMED,
  TSESIM__T_Q_JOB_ONLY,
  TSESIM__T_Q_CHUNKS,
  TSESIM__T_Q_UNMATCHED,
  TSESIM__T_Q_DEVICES,
  TSESIM__T_Q_DATA_VERSION,
  TSESIM__T_Q_BEGIN,
  TSESIM__T_Q_END,
  TSESIM__T_COUNT
};
extern const char *const tsesim__tracker_sql[TSESIM__T_COUNT];
typedef struct tsesim__job_name {
  long long id;
  char *name;
} tsesim__job_name;
struct tsesim_journal {
  sqlite3 *db;
  sqlite3_stmt *st[TSESIM__JOURNAL_STMTS];
  sqlite3_stmt *tr[TSESIM__T_COUNT];
  tsesim__job_name *names; /* job names by id, for callback results; never evicted */
  size_t n_names, cap_names;
  char path[96 + 4]; /* as messages show it: "..." and its last bytes when long */
  char errmsg[TSESIM_ERRBUF_SIZE];
};
/* errmsg "journal PATH: what: SQLite's message", right after the failing
 * call; TSESIM_E_NOMEM for SQLite's NOMEM, else TSESIM_E_JOURNAL. */
tsesim_code tsesim__journal_fail(tsesim_journal *j, const char *what);
void tsesim__journal_msg(tsesim_journal *j, const char *fmt, ...) TSESIM__PRINTF(2, 3);
/* BEGIN IMMEDIATE; COMMIT (rolls back when it fails); ROLLBACK if a
 * transaction is open (the message of what failed is kept). */
tsesim_code tsesim__journal_begin(tsesim_journal *j);
tsesim_code tsesim__journal_commit(tsesim_journal *j);
void tsesim__journal_rollback(tsesim_journal *j);
#endif

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

/* ---- log.c ---- */
typedef struct tsesim__logger {
  tsesim_log_fn fn; /* NULL: silent */
  void *payload;
  int level; /* highest level passed on */
} tsesim__logger;
void tsesim__log(const tsesim__logger *lg, int level, const char *fmt, ...) TSESIM__PRINTF(3, 4);
void tsesim__vlog(const tsesim__logger *lg, int level, const char *fmt, va_list ap);

/* ---- text.c, for messages about header values ---- */
/* "control character", "space" or "non-ASCII byte": what is wrong with b. */
const char *tsesim__byte_kind(unsigned char b);
/* The first byte of s[0..len) outside lo..0x7E, or len when there is none. */
size_t tsesim__first_bad_byte(const char *s, size_t len, unsigned char lo);

/* ---- parse_response.c ---- */
#define TSESIM__REQUEST_ID_MAX 128 /* the longest requestId accepted from an answer */
/* Reads the requestId of a download's answer into id without allocating
 * anything but jansson's tree: TSESIM_OK; TSESIM_E_PARSE (not JSON, no
 * requestId string) or TSESIM_E_INVAL (empty, too long, not printable
 * ASCII), with why in err (TSESIM_ERRBUF_SIZE bytes); TSESIM_E_NOMEM. */
tsesim_code tsesim__request_id_read(const char *body, size_t len,
                                    char id[TSESIM__REQUEST_ID_MAX + 1], char *err);

/* ---- retry.c: the retry decision (pure: no sleep, no I/O, no clock) ---- */
typedef struct tsesim__attempt {
  unsigned attempt;      /* the try that just ended, 1-based */
  unsigned max_attempts; /* tries allowed in all */
  tsesim_code rc;        /* the transport's outcome: TSESIM_OK when an answer came */
  long status;           /* the answer's status, when rc is TSESIM_OK */
  int nothing_sent;      /* the request certainly never left */
  int no_resend;         /* the request must never be sent twice */
  long answered;         /* an earlier try's 429 or 503, 0 when none */
  long retry_after_s;    /* the answer's Retry-After, -1 when none */
  long base_ms, cap_ms;  /* back-off */
} tsesim__attempt;
enum { TSESIM__RETRY_ANSWER, TSESIM__RETRY_AGAIN, TSESIM__RETRY_FAIL };
enum {
  TSESIM__WHY_FAILED,        /* code: the transport's failure */
  TSESIM__WHY_STILL_BUSY,    /* RATE_LIMITED: still 429/503 after every try */
  TSESIM__WHY_NEXT_NOT_SENT, /* RATE_LIMITED: 429/503, then a try that could not be sent */
  TSESIM__WHY_LAST_NOT_SENT  /* RATE_LIMITED: 429/503, then the last try was not sent */
};
typedef struct tsesim__retry {
  int action;       /* ANSWER: an answer the caller acts on; AGAIN after wait_ms; FAIL with code */
  long wait_ms;     /* AGAIN */
  tsesim_code code; /* FAIL */
  int why;          /* FAIL: TSESIM__WHY_* for the message */
} tsesim__retry;
tsesim__retry tsesim__retry_decide(const tsesim__attempt *a, unsigned long long random);
/* The wait before try number attempt+1 (attempt >= 1): full jitter over
 * base * 2^(attempt-1) from random, or Retry-After when the server gave one,
 * capped. */
long tsesim__backoff_ms(long base_ms, long cap_ms, unsigned attempt, long retry_after_s,
                        unsigned long long random);
/* Retry-After: delta-seconds or an HTTP-date; seconds from now (>= 0), -1 if neither. */
long tsesim__retry_after_parse(const char *value);
unsigned long long tsesim__random_next(unsigned long long *state);
/* 1 for a code that reads as "nothing was sent" (NOMEM, TRANSPORT, TIMEOUT,
 * TLS, INVAL): after an answer, such a code would tell the caller to send
 * the request again. */
int tsesim__reads_as_not_sent(tsesim_code rc);

#ifdef TSESIM__WITH_CURL
#include <curl/curl.h>

/* ---- transport_curl.c: transfers on one curl multi handle ---- */
typedef struct tsesim__net {
  CURLM *multi; /* every transfer of a client: they share its connections */
  long connect_timeout_ms, timeout_ms;
  size_t max_response;
  const char *user_agent, *ca_file, *ca_path, *proxy; /* borrowed from the client */
  tsesim__logger log;
  tsesim_clock_fn clock_fn; /* for the log's timings */
  void *time_payload;
} tsesim__net;

typedef struct tsesim__transfer {
  CURL *easy; /* kept from exchange to exchange */
  tsesim__net *net;
  struct curl_slist *headers; /* zeroed when freed: they hold credentials */
  char *url;
  const char *method, *path; /* for messages */
  const char *body;          /* borrowed until the exchange ends */
  size_t body_len, body_pos;
  char *resp; /* the answer, NUL-terminated; RESP_MIN bytes made before sending */
  size_t resp_len, resp_cap;
  int resp_over;      /* the answer passed max_response */
  long retry_after;   /* seconds from Retry-After, -1 when none */
  int guard_resend;   /* this request must never be sent twice */
  int request_sent;   /* its headers went out (the debug callback saw them) */
  int resend_refused; /* libcurl tried to send it again */
  int running;        /* on the multi handle */
  /* the outcome, once done */
  int done;
  tsesim_code rc; /* TSESIM_OK: a complete answer came (any status); else the failure, and
                   * UNKNOWN_OUTCOME when guarded and it may have been sent */
  long status;
  int nothing_sent;
  unsigned long long bytes_sent;
  long long t0;
  char errmsg[TSESIM_ERRBUF_SIZE];
  void *owner; /* the caller's */
} tsesim__transfer;

tsesim_code tsesim__net_init(tsesim__net *net);
void tsesim__net_cleanup(tsesim__net *net);
long long tsesim__net_now_ms(const tsesim__net *net);
/* A transfer with its easy handle and answer buffer: TSESIM_OK or NOMEM. */
tsesim_code tsesim__transfer_init(tsesim__transfer *t, tsesim__net *net);
void tsesim__transfer_cleanup(tsesim__transfer *t); /* zeroes the answer buffer */
/* Zeroes the answer (it carried a token). */
void tsesim__transfer_wipe(tsesim__transfer *t);
/* Starts method (POST, DELETE) with body[0..len) (borrowed until done) to
 * base_url + path, with the header lines given (copied, and the copies
 * zeroed when done). A transfer with no_resend is never sent twice, by
 * libcurl either. TSESIM_OK: it is on the multi handle; TSESIM_E_NOMEM:
 * nothing sent, done set, errmsg set. */
tsesim_code tsesim__transfer_start(tsesim__transfer *t, const char *method, const char *base_url,
                                   const char *path, char *const *lines, size_t n_lines,
                                   const char *body, size_t len, int no_resend);
/* Drives every transfer of net for at most timeout_ms (-1: no limit),
 * returning as soon as `until` is done (NULL: only at the time-out). Each
 * transfer that ends gets done = 1 and its outcome. */
void tsesim__net_run(tsesim__net *net, tsesim__transfer *until, long timeout_ms);
/* The same, returning as soon as any transfer has ended, or at the time-out. */
void tsesim__net_run_any(tsesim__net *net, long timeout_ms);

/* ---- auth.c: credentials and tokens ---- */
typedef enum tsesim__auth_kind {
  TSESIM__AUTH_BASIC,  /* the OAuth token request */
  TSESIM__AUTH_BEARER, /* the login */
  TSESIM__AUTH_SESSION /* Bearer and VZ-M2M-Token */
} tsesim__auth_kind;
#define TSESIM__AUTH_LINES 4
typedef struct tsesim__auth {
  char *client_id, *client_secret, *username, *password;
  char *access_token, *session_token;
  long long access_expires_ms; /* on the client's clock; 0: not known */
  long long token_fetched_ms;
  unsigned long access_gen, session_gen; /* change with every drop or replacement */
  int oauth_refused, login_refused;      /* remembered refusals: never asked again */
  tsesim_token_fn token_fn;
  void *token_payload;
} tsesim__auth;
void tsesim__auth_drop_access(tsesim__auth *a);
void tsesim__auth_drop_session(tsesim__auth *a);
/* Takes token (allocated) as the current one, and tells token_fn. */
void tsesim__auth_set_access(tsesim__auth *a, char *token, long expires_in, long long now_ms);
void tsesim__auth_set_session(tsesim__auth *a, char *token);
int tsesim__auth_access_stale(const tsesim__auth *a, long long now_ms);
void tsesim__auth_free(tsesim__auth *a); /* zeroes every secret */
/* The header lines of a request of that kind (credentials, Content-Type,
 * Accept) into lines[0..*n), allocated; free with tsesim__auth_headers_free,
 * which zeroes them. The tokens the kind needs must be set. */
tsesim_code tsesim__auth_headers(const tsesim__auth *a, tsesim__auth_kind kind,
                                 char *lines[TSESIM__AUTH_LINES], size_t *n);
void tsesim__auth_headers_free(char **lines, size_t n);
/* Takes the string member name out of t's 2xx answer into *out
 * (allocated), zeroing jansson's copy and the answer. With expires_in, also
 * reads "expires_in" (a number or digits; else -1). On failure errmsg says
 * why, starting with what: TSESIM_E_HTTP (no usable token), NOMEM. */
tsesim_code tsesim__auth_take_token(tsesim__transfer *t, const char *what, const char *name,
                                    char **out, long *expires_in, char *errmsg);

/* ---- the client: client.c (construction), client_call.c (blocking flows) ---- */
struct tsesim_client {
  char *base_url, *user_agent, *ca_file, *ca_path, *proxy;
  tsesim__net net;
  tsesim__transfer xfer; /* the exchange of the blocking calls */
  tsesim__auth auth;
  long backoff_base_ms, backoff_cap_ms;
  unsigned int max_attempts;
  tsesim__logger log;
  tsesim_clock_fn clock_fn;
  tsesim_sleep_fn sleep_fn;
  void *time_payload;
  unsigned long long rng; /* back-off jitter */
  char errmsg[TSESIM_ERRBUF_SIZE];
  tsesim_api_error *last_error;
};

void tsesim__client_log(tsesim_client *c, int level, const char *fmt, ...) TSESIM__PRINTF(3, 4);
void tsesim__client_fail(tsesim_client *c, const char *fmt, ...) TSESIM__PRINTF(2, 3);
long long tsesim__now_ms(tsesim_client *c);
/* The retry decision's input for try number attempt of a request: its
 * outcome from t (NULL: it could not be made, out of memory, nothing sent)
 * and the client's limits. */
void tsesim__client_attempt(const tsesim_client *c, const tsesim__transfer *t, unsigned attempt,
                            long answered, int no_resend, tsesim__attempt *a);
/* Waits ms: the application's sleep when it gave one, else drives the
 * client's other transfers for that long. */
void tsesim__client_wait(tsesim_client *c, long ms);
/* Gets the tokens a request of that kind needs, blocking: the access token
 * when missing or stale, then (SESSION) the session. */
tsesim_code tsesim__client_tokens(tsesim_client *c, tsesim__auth_kind kind);
/* last_error from t's answer (status): TSESIM_OK, or NOMEM when it could
 * not be read (last_error is then NULL). */
tsesim_code tsesim__client_set_last_error(tsesim_client *c, const tsesim__transfer *t, long status);
/* 1 when last_error is a 401 gateway fault ({"fault":...}): the access token. */
int tsesim__client_gateway_fault(const tsesim_client *c, long status);
/* 1 when last_error's errorCode ends in SessionToken.Expired. */
int tsesim__client_session_expired(const tsesim_client *c);
/* errmsg: "what: status "code": "message"" then tail, server text escaped and cut. */
void tsesim__client_describe(tsesim_client *c, const char *what, long status, const char *tail);
/* The same text into dst (TSESIM_ERRBUF_SIZE bytes), errmsg left alone. */
void tsesim__client_describe_into(const tsesim_client *c, char *dst, const char *what, long status,
                                  const char *tail);
#endif

#endif /* TSESIM_INT_H */
