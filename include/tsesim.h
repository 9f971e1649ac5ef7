/*
 * tsesim.h - libtsesim, a C SDK for Verizon ThingSpace's Global eSIM
 * profile download (POST /m2m/v1/devices/profile/actions/download) and its
 * callbacks.
 *
 * This is the only installed header. It includes neither libcurl nor
 * jansson. Compiles as C89 and as C++.
 *
 * Ownership in one line: what the library allocates, the library frees
 * (tsesim_free, tsesim_*_free); inputs are copied; returned "borrowed"
 * pointers live until their handle is freed or changed. See libtsesim(7).
 */
#ifndef TSESIM_H
#define TSESIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a function exported from the shared library. */
#if defined(_WIN32) && defined(TSESIM_BUILDING_DLL)
#define TSESIM_EXTERN __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define TSESIM_EXTERN __attribute__((visibility("default")))
#else
#define TSESIM_EXTERN
#endif

/* ---- version ---- */
#define TSESIM_VERSION_MAJOR 0
#define TSESIM_VERSION_MINOR 2
#define TSESIM_VERSION_PATCH 0
#define TSESIM_VERSION_NUM \
  ((TSESIM_VERSION_MAJOR << 16) | (TSESIM_VERSION_MINOR << 8) | TSESIM_VERSION_PATCH)
#define TSESIM_VERSION_STR "0.2.0"

/**
 * The version of the library in use at run time, encoded like
 * TSESIM_VERSION_NUM: compare it with the TSESIM_VERSION_NUM you built with.
 */
TSESIM_EXTERN unsigned int tsesim_version(void);

/* ---- results ---- */
typedef enum tsesim_code {
  TSESIM_OK = 0,
  TSESIM_E_INVAL,     /* bad argument or invalid input data (details in errmsg/errbuf) */
  TSESIM_E_NOMEM,     /* an allocation failed; nothing leaked, outputs NULL */
  TSESIM_E_LIMIT,     /* a documented limit was exceeded (e.g. > 10,000 devices in one body) */
  TSESIM_E_PARSE,     /* input is not valid JSON, or not the expected shape */
  TSESIM_E_TRANSPORT, /* could not connect or send; for a download: nothing of it was sent */
  TSESIM_E_TIMEOUT,   /* timed out; for a download: before anything of it was sent */
  TSESIM_E_TLS,       /* certificate or handshake failure */
  TSESIM_E_AUTH,      /* credentials refused: OAuth client, or M2M login (see the client) */
  TSESIM_E_HTTP, /* an answer the API does not document: a 3xx, an oversized body, a non-JSON 2xx */
  TSESIM_E_API,  /* any 4xx/5xx answer (JSON or not): see tsesim_client_last_error */
  TSESIM_E_RATE_LIMITED,    /* still 429/503 after the allowed attempts */
  TSESIM_E_UNKNOWN_OUTCOME, /* the download was sent and no complete answer came (reset, timeout,
                              truncated body): it may have been acted on; never re-sent */
  TSESIM_E_JOURNAL,         /* the journal could not be opened, read or written (see its errmsg) */
  TSESIM_E_CANCELLED        /* stopped because the caller asked (a job's stop_fn) */
  /* append only */
} tsesim_code;

/** A one-line English description of code. Static text, never NULL. */
TSESIM_EXTERN const char *tsesim_strerror(tsesim_code code);
/** The enumerator's name ("TSESIM_E_INVAL"), or "TSESIM_E_???" for an
 * unknown value. Static text, never NULL. */
TSESIM_EXTERN const char *tsesim_code_name(tsesim_code code);

#define TSESIM_ERRBUF_SIZE 256
#define TSESIM_MAX_DEVICES_PER_REQUEST 10000

/* ---- identifiers ---- */
typedef enum tsesim_id_kind {
  TSESIM_ID_UNKNOWN = 0, /* parser only: a kind the SDK does not know; see kind_name */
  TSESIM_ID_EID = 1,
  TSESIM_ID_ICCID = 2,
  TSESIM_ID_IMEI = 3,
  TSESIM_ID_MDN = 4
} tsesim_id_kind;

/* Frozen: stored in arrays, never grows. */
typedef struct tsesim_device_id {
  tsesim_id_kind kind;
  const char *id;        /* NUL-terminated */
  const char *kind_name; /* output only: the kind exactly as received ("Iccid"); ignored on input */
} tsesim_device_id;

/**
 * Checks one identifier: digits only, length (eid 32, iccid 19-20, imei 15,
 * mdn 10), and the check digits (Luhn for iccid and imei, ISO 7064 MOD 97-10
 * for eid).
 * @param errbuf TSESIM_ERRBUF_SIZE bytes or NULL; on failure the reason,
 *        e.g. `imei "35209900176148X": not a digit at position 15`.
 * @return TSESIM_OK or TSESIM_E_INVAL.
 */
TSESIM_EXTERN tsesim_code tsesim_id_validate(tsesim_id_kind kind, const char *id, char *errbuf);

/* ---- the download request ---- */
typedef struct tsesim_request tsesim_request; /* opaque */

/**
 * A new, empty download request for an account.
 * @param[out] out the request (free with tsesim_request_free), NULL on failure.
 * @param account_name required, 1-64 bytes of UTF-8 without control
 *        characters; copied.
 * @return TSESIM_OK, TSESIM_E_INVAL, TSESIM_E_NOMEM.
 */
TSESIM_EXTERN tsesim_code tsesim_request_new(tsesim_request **out, const char *account_name);
/**
 * As tsesim_request_new, and on failure writes why into errbuf
 * (TSESIM_ERRBUF_SIZE bytes or NULL), e.g. `accountName: control character
 * U+0009 at byte 4`.
 */
TSESIM_EXTERN tsesim_code tsesim_request_new_v2(tsesim_request **out, const char *account_name,
                                                char *errbuf);
/** Sets (copies) the optional service plan: 1-64 bytes of UTF-8 without
 * control characters. NULL removes it. On failure the request is unchanged. */
TSESIM_EXTERN tsesim_code tsesim_request_set_service_plan(tsesim_request *req,
                                                          const char *service_plan);
/* Check digits are verified by default; 0 turns that off (lengths and digits still checked). */
TSESIM_EXTERN tsesim_code tsesim_request_set_verify_checksums(tsesim_request *req, int enabled);
/* Copies the identifiers. Rejects, with TSESIM_E_INVAL and nothing added: an
 * invalid identifier, a kind other than eid/iccid/imei, a kind twice, a device
 * without an eid or without at least one of iccid/imei. */
TSESIM_EXTERN tsesim_code tsesim_request_add_device(tsesim_request *req,
                                                    const tsesim_device_id *ids, size_t n_ids);
/**
 * Adds many devices from one buffer (what a binding hands over in one call):
 * len bytes of records separated by '\n' (a last '\n' is optional), each
 * `EID,ICCID,IMEI` with an empty field for an absent identifier. Every record
 * is checked as tsesim_request_add_device checks the device {eid, iccid,
 * imei}; a record without exactly 3 fields, or with a NUL or CR, is refused.
 * All or nothing: on failure the request keeps the devices it had.
 * @param errbuf TSESIM_ERRBUF_SIZE bytes or NULL; on failure the reason (also
 *        in tsesim_request_errmsg), e.g.
 *        `device 7 (record 3): imei: check digit 4 does not match (expected 3)`.
 * @return TSESIM_OK (len 0 adds nothing), TSESIM_E_INVAL, TSESIM_E_NOMEM.
 */
TSESIM_EXTERN tsesim_code tsesim_request_add_devices(tsesim_request *req, const char *buf,
                                                     size_t len, char *errbuf);
/** Number of devices added so far; 0 for NULL. */
TSESIM_EXTERN size_t tsesim_request_device_count(const tsesim_request *req);
/* Why the last call on req failed, naming the device (0-based) and field. Borrowed.
 * "" when the last call succeeded. tsesim_request_to_json takes req const and
 * leaves it alone: its result code says all (LIMIT, INVAL, NOMEM). */
TSESIM_EXTERN const char *tsesim_request_errmsg(const tsesim_request *req);
/* Compact JSON body of the whole request: NUL-terminated, *out_len excludes
 * the NUL; caller frees with tsesim_free. Exactly the keys "devices" (each
 * {"deviceIds":[{"kind","id"},...]} with kinds in lower case and identifiers in
 * the order given), "accountName", and "servicePlan" only when set; no others.
 * TSESIM_E_LIMIT when it holds more than TSESIM_MAX_DEVICES_PER_REQUEST devices,
 * TSESIM_E_INVAL when it holds none. Does not change req. */
TSESIM_EXTERN tsesim_code tsesim_request_to_json(char **out, size_t *out_len,
                                                 const tsesim_request *req);
TSESIM_EXTERN void tsesim_request_free(tsesim_request *req); /* NULL ok */
TSESIM_EXTERN void tsesim_free(void *ptr);                   /* NULL ok */

/* ---- the synchronous answer and errors ---- */
/* {"requestId": "..."} -> *out_request_id (caller frees with tsesim_free). */
TSESIM_EXTERN tsesim_code tsesim_response_parse(char **out_request_id, const char *body, size_t len,
                                                char *errbuf);

typedef struct tsesim_api_error {
  long http_status;
  const char *code;        /* errorCode, fault.code or OAuth "error"; NULL if none */
  const char *message;     /* errorMessage, fault.message or error_description; NULL if none */
  const char *description; /* fault.description; NULL if none */
  const char *body;        /* the raw body, NUL-terminated copy */
  long retry_after;        /* seconds the Retry-After header asked for; -1 when none
                            * (always -1 from tsesim_api_error_parse, which sees no headers) */
} tsesim_api_error;
/* Understands the three error shapes (ThingSpace, API gateway fault, OAuth).
 * A body in none of them still yields TSESIM_OK with code/message NULL and body set.
 * Free with tsesim_api_error_free. */
TSESIM_EXTERN tsesim_code tsesim_api_error_parse(tsesim_api_error **out, long http_status,
                                                 const char *body, size_t len);
TSESIM_EXTERN void tsesim_api_error_free(tsesim_api_error *err); /* NULL ok */

/* ---- the client ---- */
typedef struct tsesim_client tsesim_client; /* opaque; one thread at a time */
/* level: 0 error, 1 warning, 2 info, 3 debug. Secrets never reach it. */
typedef void (*tsesim_log_fn)(int level, const char *line, void *payload);

/* The client obtained a token (token and its life in seconds, -1 when not
 * known) or dropped one (token NULL): lets an application persist tokens and
 * pass them back through access_token/session_token. */
typedef enum tsesim_token_kind {
  TSESIM_TOKEN_ACCESS = 1,
  TSESIM_TOKEN_SESSION = 2
} tsesim_token_kind;
typedef void (*tsesim_token_fn)(tsesim_token_kind kind, const char *token, long expires_in,
                                void *payload);
/* Time, for back-off and token expiry: a monotonic clock in seconds and a
 * sleep in milliseconds. NULL: the real ones. Tests and event loops supply
 * their own. */
typedef double (*tsesim_clock_fn)(void *payload);
typedef void (*tsesim_sleep_fn)(long ms, void *payload);

typedef struct tsesim_options {
  unsigned int version;  /* first, always: TSESIM_OPTIONS_VERSION */
  const char *base_url;  /* NULL: "https://thingspace.verizon.com/api" */
  const char *client_id; /* OAuth client key, with client_secret ... */
  const char *client_secret;
  const char *access_token; /* ... or a ready access token */
  const char *username;     /* M2M user, with password ... */
  const char *password;
  const char *session_token; /* ... or a ready session token */
  tsesim_log_fn log_fn;      /* NULL: silent */
  void *log_payload;
  int log_level; /* highest level passed to log_fn, used as given (0: errors only) */
  /* ---- version 2 ---- */
  long connect_timeout_ms;          /* 0: 10000 */
  long timeout_ms;                  /* one whole HTTP exchange, 0: 60000 */
  const char *ca_file;              /* PEM bundle to verify servers with; NULL: the system's */
  const char *ca_path;              /* directory of CA certificates; NULL: the system's */
  const char *proxy;                /* e.g. "http://proxy:3128"; NULL: none (environment ignored) */
  const char *user_agent;           /* appended to "libtsesim/<version>" */
  unsigned int max_attempts;        /* tries of one request when retrying is safe; 0: 3 */
  long backoff_base_ms;             /* 0: 500 */
  long backoff_cap_ms;              /* longest wait between tries, Retry-After included; 0: 20000 */
  size_t max_response_bytes;        /* larger answers are refused (TSESIM_E_HTTP); 0: 1 MiB */
  int insecure_plain_http_any_host; /* 1: allow http:// to hosts that are not loopback */
  tsesim_token_fn token_fn;         /* NULL: none */
  void *token_payload;
  tsesim_clock_fn clock_fn; /* NULL: CLOCK_MONOTONIC */
  tsesim_sleep_fn sleep_fn; /* NULL: nanosleep */
  void *time_payload;
} tsesim_options;
#define TSESIM_OPTIONS_VERSION 2 /* bumped each time fields are appended */
/** An initializer that lists every field, for static or automatic options. */
#define TSESIM_OPTIONS_INIT                                                                      \
  {                                                                                              \
    TSESIM_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, \
        NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL                            \
  }
/* Fills opts with the defaults of that version (all pointers NULL, numbers 0 meaning "default").
 * TSESIM_E_INVAL for NULL or a version outside 1..TSESIM_OPTIONS_VERSION. */
TSESIM_EXTERN tsesim_code tsesim_options_init(tsesim_options *opts, unsigned int version);

TSESIM_EXTERN tsesim_code tsesim_global_init(void); /* reference-counted; before any client */
TSESIM_EXTERN void tsesim_global_cleanup(void);
/* Copies everything it keeps. No network until a request needs it.
 * base_url must be https://, or http:// to a loopback host (127.0.0.0/8, ::1,
 * localhost) unless an explicit opt-in option allows more: else TSESIM_E_INVAL. */
TSESIM_EXTERN tsesim_code tsesim_client_new(tsesim_client **out, const tsesim_options *opts);
/**
 * As tsesim_client_new, and on failure says why.
 * @param[out] out the client (free with tsesim_client_free), NULL on failure.
 * @param opts the options (copied); required.
 * @param errbuf TSESIM_ERRBUF_SIZE bytes or NULL; on failure the option that
 *        is wrong and why, e.g. `access_token: control character 0x0D at
 *        byte 3` or `username: set with no password`. Never a secret's value.
 *        Left as it was on success.
 * @return TSESIM_OK, TSESIM_E_INVAL (an option), TSESIM_E_NOMEM.
 */
TSESIM_EXTERN tsesim_code tsesim_client_new_v2(tsesim_client **out, const tsesim_options *opts,
                                               char *errbuf);
TSESIM_EXTERN void tsesim_client_free(
    tsesim_client *client); /* NULL ok; zeroes the secrets it held */
/* Gets whatever tokens are missing or stale now (access token, then session). */
TSESIM_EXTERN tsesim_code tsesim_client_login(tsesim_client *client);
TSESIM_EXTERN tsesim_code tsesim_client_logout(tsesim_client *client);
/* One download POST of up to TSESIM_MAX_DEVICES_PER_REQUEST devices. Obtains
 * and renews tokens as needed, retries only where the server certainly did not
 * act (nothing sent; 429; 503), and never re-sends after TSESIM_E_UNKNOWN_OUTCOME.
 * Tokens: a 401 gateway fault fetches a new access token once and replays once;
 * an errorCode ending in "SessionToken.Expired" logs in again once and replays
 * once; other session errors are TSESIM_E_API. A refusal of credentials (a
 * 4xx but 429 from the token endpoint; a 4xx but 429 and a 401 gateway fault
 * from the login) is TSESIM_E_AUTH, and the client remembers it: no further
 * attempt with those credentials until a new client is made (ThingSpace locks
 * a user after 5 failed logins). */
TSESIM_EXTERN tsesim_code tsesim_client_download(char **out_request_id, tsesim_client *client,
                                                 const tsesim_request *req);
/* Registers url as the account's listener for service_name (NULL:
 * "DeviceProfileService"): ThingSpace POSTs the callbacks there and echoes
 * username/password (both optional, NULL to omit) in each. Replaces an earlier
 * registration of that service. Tokens and retries as for the download. */
TSESIM_EXTERN tsesim_code tsesim_client_register_callback(tsesim_client *client,
                                                          const char *account_name,
                                                          const char *service_name, const char *url,
                                                          const char *username,
                                                          const char *password);
/* Removes the account's listener for service_name (NULL: "DeviceProfileService"). */
TSESIM_EXTERN tsesim_code tsesim_client_unregister_callback(tsesim_client *client,
                                                            const char *account_name,
                                                            const char *service_name);
/* Why the last call on client failed. Borrowed, valid until the next call. */
TSESIM_EXTERN const char *tsesim_client_errmsg(const tsesim_client *client);
/* The HTTP answer of the last failure, or NULL when it had none. Borrowed. */
TSESIM_EXTERN const tsesim_api_error *tsesim_client_last_error(const tsesim_client *client);

/* ---- device files ---- */
typedef struct tsesim_rows tsesim_rows; /* opaque: the rows of a device file */

/* Frozen: one data row of a device file, valid or not. */
typedef struct tsesim_row {
  unsigned long line; /* 1-based line of the file where the row starts */
  const char *eid;    /* the cells as read; NULL when empty or when there is no such column */
  const char *iccid;
  const char *imei;
  const char *error; /* NULL: a valid row, added to the request; else why it was rejected,
                      * naming the field (`imei "3520...": not a digit at position 15`,
                      * `eid repeats line 4`) */
  size_t device;     /* a valid row: its device's index in the request */
} tsesim_row;

/**
 * Reads a device file (CSV, RFC 4180 quoting, UTF-8; a leading BOM is
 * skipped, CRLF accepted) and adds every valid row to req, in file order.
 * The first line names the columns, case-insensitively and in any order:
 * "eid" and at least one of "iccid" and "imei"; others are ignored. An
 * empty cell means absent; blank lines are skipped. A row is checked as
 * tsesim_request_add_device checks a device; a row whose eid an earlier row
 * holds is rejected too ("eid repeats line N"). Rejected rows are kept in
 * *out with their reason and are not added.
 * @param[out] out every data row (free with tsesim_rows_free), NULL on failure.
 * @param req the request the valid rows are added to.
 * @param data, len the file's bytes (not NUL-terminated; never kept).
 * @param errbuf TSESIM_ERRBUF_SIZE bytes or NULL; on failure `line N: why`.
 * @return TSESIM_OK (even when rows were rejected: see tsesim_rows_rejected);
 *         TSESIM_E_INVAL for a file that is not a device file (no header,
 *         no eid column, neither iccid nor imei, no data row, a quote left
 *         open, invalid UTF-8); TSESIM_E_NOMEM. On failure req is as it was.
 */
TSESIM_EXTERN tsesim_code tsesim_rows_parse_csv(tsesim_rows **out, tsesim_request *req,
                                                const char *data, size_t len, char *errbuf);
/** As tsesim_rows_parse_csv, reading the file at path (opened, read to its
 * end as tsesim_rows_read_csv_fd does, closed). An unreadable file is
 * TSESIM_E_INVAL, errbuf naming the path and the system's reason. */
TSESIM_EXTERN tsesim_code tsesim_rows_read_csv(tsesim_rows **out, tsesim_request *req,
                                               const char *path, char *errbuf);
/** As tsesim_rows_parse_csv, reading the open descriptor fd (a file, a pipe,
 * standard input) to its end in blocks of 64 KiB: the file is never held
 * whole, only the record being read. fd is not closed. name (or NULL: "fd N")
 * stands for the file in errbuf when reading fails: `name: the system's
 * reason`; content errors are `line N: why` as for tsesim_rows_parse_csv.
 * Since 0.2.0. */
TSESIM_EXTERN tsesim_code tsesim_rows_read_csv_fd(tsesim_rows **out, tsesim_request *req, int fd,
                                                  const char *name, char *errbuf);
/** Number of data rows, valid and rejected; 0 for NULL. */
TSESIM_EXTERN size_t tsesim_rows_count(const tsesim_rows *rows);
/** Number of rejected rows; 0 for NULL. */
TSESIM_EXTERN size_t tsesim_rows_rejected(const tsesim_rows *rows);
/** Row i (0-based, file order); NULL when out of range. The row and its
 * strings are borrowed until the next tsesim_rows_get on the same rows, or
 * tsesim_rows_free: copy what must outlive that. A valid row's cells are
 * made from its device in the request, so the request the rows were read
 * into must outlive the rows and keep its devices (tsesim_request_free
 * after tsesim_rows_free). Since the row is made anew on each call, one
 * thread at a time may call this on given rows. */
TSESIM_EXTERN const tsesim_row *tsesim_rows_get(const tsesim_rows *rows, size_t i);
TSESIM_EXTERN void tsesim_rows_free(tsesim_rows *rows); /* NULL ok */

/* ---- the journal and jobs ---- */
typedef struct tsesim_journal tsesim_journal; /* opaque: one SQLite connection */

/**
 * Opens the journal at path, an SQLite database, creating it (mode 0600)
 * when it does not exist. See tsesim-journal(5) for its schema.
 * @param[out] out the journal (close with tsesim_journal_close), NULL on failure.
 * @param errbuf TSESIM_ERRBUF_SIZE bytes or NULL; on failure why.
 * @return TSESIM_OK, TSESIM_E_INVAL (path NULL or empty), TSESIM_E_JOURNAL
 *         (cannot be opened or created, not a journal, or made by a newer
 *         version of the library), TSESIM_E_NOMEM.
 */
TSESIM_EXTERN tsesim_code tsesim_journal_open(tsesim_journal **out, const char *path, char *errbuf);
/** Why the last call that used the journal failed. Borrowed. */
TSESIM_EXTERN const char *tsesim_journal_errmsg(const tsesim_journal *journal);
TSESIM_EXTERN void tsesim_journal_close(tsesim_journal *journal); /* NULL ok */
/**
 * Keeps an application's setting in the journal, durably: key (1..200
 * bytes of printable text) set to value (text; NULL removes it). The
 * journal's mode 0600 makes it fit for a secret the application must find
 * again after a crash. Keys starting with "tsesim." are the library's.
 * @return TSESIM_OK, TSESIM_E_INVAL, TSESIM_E_JOURNAL, TSESIM_E_NOMEM.
 */
TSESIM_EXTERN tsesim_code tsesim_journal_set(tsesim_journal *journal, const char *key,
                                             const char *value);
/**
 * Reads a setting that tsesim_journal_set kept.
 * @param[out] out a copy of its value (free with tsesim_free), NULL when the
 *        key is not set or on failure.
 * @return TSESIM_OK (also when it is not set), TSESIM_E_INVAL,
 *         TSESIM_E_JOURNAL, TSESIM_E_NOMEM.
 */
TSESIM_EXTERN tsesim_code tsesim_journal_get(tsesim_journal *journal, const char *key, char **out);

/* What a job's progress function is told: after each chunk changes state,
 * and at least once a second while chunks are in flight. Device counts are
 * of the valid devices, by the state of their chunk. Borrowed for the call. */
typedef struct tsesim_job_progress {
  size_t devices;                                     /* valid devices in the job */
  size_t queued, sending, accepted, unknown, refused; /* devices, by chunk state */
  size_t chunks, chunks_done; /* chunks_done: accepted, unknown or refused */
  unsigned long bytes;        /* request bytes sent by this call */
  long chunk;                 /* the chunk (0-based) that just changed, -1 for a periodic report */
  const char *state;      /* its new state: "sending", "accepted", "unknown", "refused", "queued" */
  const char *request_id; /* accepted: its requestId; else NULL */
  const char *error;      /* unknown, refused, queued: why; else NULL */
} tsesim_job_progress;
typedef void (*tsesim_progress_fn)(const tsesim_job_progress *progress, void *payload);
/* Asked before the job's first contact with ThingSpace, then at each pass of
 * its loop (before chunks start, and at least once a second while chunks
 * are in flight): non-zero stops the job (no new chunk starts; chunks in
 * flight finish). Safe to back with a flag that a signal handler sets. */
typedef int (*tsesim_stop_fn)(void *payload);

typedef struct tsesim_job_options {
  unsigned int version;           /* first, always: TSESIM_JOB_OPTIONS_VERSION */
  size_t chunk_size;              /* devices per download, 1..10000; 0: 10000, or what the job
                                   * recorded. Fixed when the job is first recorded. */
  unsigned int in_flight;         /* downloads on the wire at once; 0: 4 */
  int resend_unknown;             /* 1: send unknown chunks again (they may be downloaded twice) */
  const tsesim_rows *rows;        /* the device file req was read from, to record every row and
                                   * its line; NULL: device i is line i + 1 and no row was rejected */
  tsesim_progress_fn progress_fn; /* NULL: none; runs inside tsesim_job_submit */
  void *progress_payload;
  /* ---- version 2 ---- */
  tsesim_stop_fn stop_fn; /* NULL: never stopped; runs inside tsesim_job_submit */
  void *stop_payload;
} tsesim_job_options;
#define TSESIM_JOB_OPTIONS_VERSION 2
#define TSESIM_JOB_OPTIONS_INIT \
  { TSESIM_JOB_OPTIONS_VERSION, 0, 0, 0, NULL, NULL, NULL, NULL, NULL }
/* Fills opts with the defaults of that version. TSESIM_E_INVAL for NULL or a
 * version outside 1..TSESIM_JOB_OPTIONS_VERSION. */
TSESIM_EXTERN tsesim_code tsesim_job_options_init(tsesim_job_options *opts, unsigned int version);

/**
 * Submits a request of any size as the job job_name: chunks of chunk_size
 * devices in the request's order, up to in_flight downloads at once on the
 * client's connections and tokens. Each chunk's state is recorded in the
 * journal, durably, before it is acted on: "sending" is committed before
 * the first byte of its download leaves. A chunk ends accepted (with its
 * requestId), refused (a 4xx but 429, the error kept), unknown (it may have
 * been acted on: never sent again unless resend_unknown), or back to queued
 * (certainly not acted on). A second call with the same job name sends only
 * the queued chunks (and the unknown ones with resend_unknown); a chunk
 * found "sending" after a crash is unknown.
 * @return the first that applies: TSESIM_E_INVAL, TSESIM_E_NOMEM or
 *         TSESIM_E_JOURNAL before anything was sent (a job name recorded
 *         with other devices, account, plan or chunk size is TSESIM_E_INVAL);
 *         TSESIM_E_AUTH (credentials refused: the job stopped);
 *         TSESIM_E_JOURNAL (the journal failed: the job stopped);
 *         the code that left a chunk queued (TSESIM_E_RATE_LIMITED,
 *         TSESIM_E_TRANSPORT, ...): run it again later;
 *         TSESIM_E_UNKNOWN_OUTCOME (a chunk is unknown);
 *         TSESIM_E_API (a chunk was refused);
 *         TSESIM_OK (every chunk accepted). tsesim_client_errmsg says why.
 */
TSESIM_EXTERN tsesim_code tsesim_job_submit(tsesim_client *client, tsesim_journal *journal,
                                            const char *job_name, const tsesim_request *req,
                                            const tsesim_job_options *opts);

/**
 * Records the job job_name as tsesim_job_submit does before its first
 * download, and sends nothing: a new job gets its rows and queued chunks;
 * an existing one must hold the same devices, rows, account, plan and chunk
 * size (opts->chunk_size 0: what it recorded), and a chunk found "sending"
 * becomes unknown. Only opts' chunk_size and rows are read.
 * @return TSESIM_OK, TSESIM_E_INVAL (an argument; a job recorded with other
 *         devices, rows, account, plan or chunk size), TSESIM_E_JOURNAL,
 *         TSESIM_E_NOMEM; tsesim_journal_errmsg says why.
 */
TSESIM_EXTERN tsesim_code tsesim_job_record(tsesim_journal *journal, const char *job_name,
                                            const tsesim_request *req,
                                            const tsesim_job_options *opts);

/* ---- callbacks ---- */
typedef enum tsesim_status {
  TSESIM_STATUS_OTHER = 0,
  TSESIM_STATUS_SUCCESS,
  TSESIM_STATUS_FAILED,
  TSESIM_STATUS_WARNING
} tsesim_status;
typedef enum tsesim_profile_role {
  TSESIM_ROLE_OTHER = 0,
  TSESIM_ROLE_LEAD,
  TSESIM_ROLE_LOCAL,
  TSESIM_ROLE_DEFAULT
} tsesim_profile_role;

typedef struct tsesim_profile_response {
  const tsesim_device_id *ids;
  size_t n_ids;      /* deviceIdentifierCollection */
  const char *state; /* NULL when absent */
  const char *profile_status;
  const char *profile_role; /* as received */
  tsesim_profile_role role; /* case-insensitive match, OTHER when unknown or absent */
} tsesim_profile_response;

typedef struct tsesim_callback {
  const char *request_id; /* required */
  const tsesim_device_id *device_ids;
  size_t n_device_ids;
  const tsesim_profile_response *profile; /* NULL when no deviceResponse.deviceProfileResponse */
  const char *status;                     /* as received, NULL when absent */
  tsesim_status status_code;              /* case-insensitive: SUCCESS/FAILED/WARNING, else OTHER */
  long callback_count;         /* integer or digit string (else a wrong type); -1 when absent */
  long max_callback_threshold; /* likewise */
  const char *fault_code;      /* faultResponse.faultcode, NULL when absent */
  const char *fault_string;    /* faultResponse.faultstring */
  const char *username;        /* echoed listener credentials, NULL when absent */
  const char *password;
} tsesim_callback;

/* Parses one callback body (not NUL-terminated; never kept). Identifiers in
 * it are ThingSpace's data and are not validated. Unknown fields are ignored;
 * kinds, status and role match case-insensitively. TSESIM_E_PARSE, with the
 * JSON path or line/column in errbuf, for: invalid JSON, a NUL byte, duplicate
 * keys, a top level that is not an object, no requestId, or a known field of
 * the wrong type. The callback and all it points to is freed together.
 * An optional member that is JSON null counts as absent. */
TSESIM_EXTERN tsesim_code tsesim_callback_parse(tsesim_callback **out, const char *body, size_t len,
                                                char *errbuf);
TSESIM_EXTERN void tsesim_callback_free(tsesim_callback *cb); /* NULL ok */

/* ---- the tracker: what the journal knows of a job ---- */

/* A job's devices by state, and its callbacks. Every data row is in exactly
 * one of the nine device counts: devices = queued + submitted + unknown +
 * refused + warning + success + failed + invalid. */
typedef struct tsesim_job_counts {
  size_t devices;           /* every data row of the job, valid or not */
  size_t queued;            /* in a chunk not sent yet (or certainly not acted on) */
  size_t submitted;         /* in an accepted chunk, no Warning and no final status yet */
  size_t unknown;           /* in a chunk whose outcome is unknown (or that was being sent) */
  size_t refused;           /* in a chunk ThingSpace refused */
  size_t warning;           /* its last callback said Warning: not final yet */
  size_t success;           /* final: SUCCESS */
  size_t failed;            /* final: Failed */
  size_t invalid;           /* a rejected row, never sent */
  unsigned long callbacks;  /* distinct callbacks stored for the job's devices */
  unsigned long duplicates; /* repeats of those, answered 200 and stored once */
  unsigned long unmatched;  /* callbacks of the whole journal matched to no device */
} tsesim_job_counts;

/**
 * Counts the devices of job job_name by state (see tsesim_job_counts).
 * @param journal an open journal.
 * @param job_name the job; NULL: the journal's only job (TSESIM_E_INVAL
 *        when it holds none or several).
 * @param[out] out the counts; zeroed on failure.
 * @return TSESIM_OK, TSESIM_E_INVAL (no such job, a NULL argument),
 *         TSESIM_E_JOURNAL, TSESIM_E_NOMEM; tsesim_journal_errmsg says why.
 */
TSESIM_EXTERN tsesim_code tsesim_job_count(tsesim_journal *journal, const char *job_name,
                                           tsesim_job_counts *out);

/**
 * Waits until no device of the job is submitted, warning or unknown (each
 * is final, or was never acted on), or until timeout_ms passes. Reads the
 * journal a few times a second, so the listener that stores the callbacks
 * may run in this process or in another one.
 * @param timeout_ms the longest wait, in milliseconds; 0: look once; <0: no limit.
 * @param[out] out the counts when it returned; NULL: not wanted.
 * @return TSESIM_OK (nothing left to wait for), TSESIM_E_TIMEOUT (the
 *         deadline passed first), or as tsesim_job_count.
 */
TSESIM_EXTERN tsesim_code tsesim_job_wait(tsesim_journal *journal, const char *job_name,
                                          long timeout_ms, tsesim_job_counts *out);

/* Frozen: one row of a job as the tracker sees it. Borrowed for the call. */
typedef struct tsesim_device_status {
  unsigned long line; /* 1-based line of the device file */
  const char *eid;    /* the row's cells; NULL when empty */
  const char *iccid;
  const char *imei;
  const char *state;       /* "invalid", "queued", "unknown", "refused", "submitted",
                            * "warning", "success" or "failed" */
  const char *request_id;  /* its chunk's requestId; NULL when none */
  const char *status;      /* the status, as ThingSpace wrote it, of the callback that decided
                            * state (the kept final one, or the Warning); NULL before any */
  const char *fault;       /* that callback's faultResponse faultcode; NULL when none */
  const char *error;       /* invalid: why the row was rejected; refused: the chunk's error */
  unsigned long callbacks; /* distinct callbacks stored for the device */
} tsesim_device_status;
/* Called once per row; a non-zero return stops the iteration. */
typedef int (*tsesim_device_fn)(const tsesim_device_status *device, void *payload);

/**
 * Calls fn for every row of the job, in the device file's order, from one
 * consistent reading of the journal.
 * @return TSESIM_OK (also when fn stopped it), or as tsesim_job_count.
 */
TSESIM_EXTERN tsesim_code tsesim_job_devices(tsesim_journal *journal, const char *job_name,
                                             tsesim_device_fn fn, void *payload);

/* ---- the callback listener ---- */
typedef struct tsesim_listener tsesim_listener; /* opaque; owns threads: libtsesim-thread(3) */

/* What the listener made of one callback it answered 200. Borrowed for the call. */
typedef struct tsesim_callback_result {
  int repeat;         /* 1: it repeats a stored callback; nothing changed */
  const char *job;    /* the job of its device; NULL when unmatched */
  unsigned long line; /* the device's line; 0 when unmatched */
  const char *state;  /* the device's state after it ("submitted", "warning", "success",
                       * "failed"); NULL when unmatched */
} tsesim_callback_result;
/* Runs on the listener's writer thread, once per callback that will be
 * answered 200 (repeats included), after its group is committed to the
 * journal and before the answers are sent: keep it short. It must not call
 * tsesim_listener_stop on its own listener. */
typedef void (*tsesim_callback_fn)(const tsesim_callback *cb, const tsesim_callback_result *result,
                                   void *payload);

typedef struct tsesim_listener_options {
  unsigned int version; /* first, always: TSESIM_LISTENER_OPTIONS_VERSION */
  const char *journal;  /* the journal's path (it must exist: tsesim_journal_open makes
                         * it); the listener opens its own connection. NULL: nothing is
                         * stored, callbacks are answered 200 once on_callback returns */
  const char *address;  /* IP address to bind; NULL: "127.0.0.1" ("::" and "0.0.0.0" for all) */
  unsigned int port;    /* 0: any free port (see tsesim_listener_port) */
  const char *path;     /* NULL: "/callbacks" */
  const char *username; /* what every callback must echo; both NULL: not checked */
  const char *password;
  const char *tls_cert_file; /* PEM files: with both, the listener speaks HTTPS */
  const char *tls_key_file;
  size_t max_body_bytes;           /* larger bodies are answered 413; 0: 1 MiB */
  unsigned int max_connections;    /* 0: 256 */
  unsigned int per_ip_connections; /* 0: no per-address limit */
  unsigned int timeout_s;          /* idle connections and unfinished requests; 0: 10 */
  size_t memory_budget;           /* request bodies held at once, in all (503 past it); 0: 64 MiB */
  tsesim_callback_fn on_callback; /* NULL: none */
  void *callback_payload;
  tsesim_log_fn log_fn; /* NULL: silent; runs on the listener's threads */
  void *log_payload;
  int log_level;
} tsesim_listener_options;
#define TSESIM_LISTENER_OPTIONS_VERSION 1
#define TSESIM_LISTENER_OPTIONS_INIT                                                             \
  {                                                                                              \
    TSESIM_LISTENER_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, \
        NULL, NULL, NULL, NULL, 0                                                                \
  }
/* Fills opts with the defaults of that version. TSESIM_E_INVAL for NULL or a
 * version outside 1..TSESIM_LISTENER_OPTIONS_VERSION. */
TSESIM_EXTERN tsesim_code tsesim_listener_options_init(tsesim_listener_options *opts,
                                                       unsigned int version);

/**
 * Starts the callback listener: it serves POST on path, checks the echoed
 * credentials in constant time, parses each callback, matches it to its
 * device, and answers 200 only once it is committed to the journal
 * (callbacks that arrive together share one commit). See
 * tsesim_listener_start(3) for every answer and limit.
 * @param[out] out the running listener (stop with tsesim_listener_stop), NULL on failure.
 * @param errbuf TSESIM_ERRBUF_SIZE bytes or NULL; on failure the option or
 *        resource at fault and why.
 * @return TSESIM_OK, TSESIM_E_INVAL (an option), TSESIM_E_JOURNAL,
 *         TSESIM_E_TLS (the certificate or key), TSESIM_E_TRANSPORT (cannot
 *         bind), TSESIM_E_NOMEM.
 */
TSESIM_EXTERN tsesim_code tsesim_listener_start(tsesim_listener **out,
                                                const tsesim_listener_options *opts, char *errbuf);
/** The TCP port the listener is bound to; 0 for NULL. */
TSESIM_EXTERN unsigned int tsesim_listener_port(const tsesim_listener *listener);
/**
 * Stops accepting, answers and commits every callback it already holds
 * (drains), joins its threads and frees it. NULL ok. Never from its own
 * on_callback.
 */
TSESIM_EXTERN void tsesim_listener_stop(tsesim_listener *listener);

#ifdef __cplusplus
}
#endif

#endif /* TSESIM_H */
