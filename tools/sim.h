/*
 * sim.h - internals of tsesim-sim, the local ThingSpace simulator.
 *
 * Layers, one per file:
 *   sim_main.c     start-up, port file, signals, shutdown
 *   sim_config.c   command line and config file
 *   sim_state.c    tokens, sessions, users, listeners, counters, ids
 *   sim_http.c     libmicrohttpd glue: bodies, routing, latency, faults, log
 *   sim_api.c      the /api endpoints
 *   sim_admin.c    the /_sim endpoints
 *   sim_faults.c   fault rules: parse, fire, render
 *   sim_deliver.c  asynchronous callback delivery (libcurl multi)
 *   sim_eids.c     per-EID count of accepted downloads
 *   sim_json.c     JSON output buffer and answer helpers
 *   sim_make.c     --make-devices: a generated device file on stdout
 *
 * The simulator is a tool, not the library: an allocation failure prints a
 * message and exits (sim_xmalloc), which keeps every handler short.
 */
#ifndef SIM_H
#define SIM_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
#define SIM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SIM_PRINTF(f, a)
#endif

#define SIM_MAX_DEVICES 10000
#define SIM_MAX_BODY (32u * 1024u * 1024u)
#define SIM_MAX_ATTEMPTS 4
#define SIM_UUID_LEN 36
#define SIM_BODY_BUDGET (64u * 1024u * 1024u) /* raw body bytes held at once, by default */

/* ---- memory and text (sim_json.c) ---- */
void *sim_xmalloc(size_t n);
void *sim_xcalloc(size_t n, size_t size);
void *sim_xrealloc(void *p, size_t n);
char *sim_xstrdup(const char *s);
char *sim_xstrndup(const char *s, size_t n);
/* Overwrites a secret with zeros (not optimised away), then frees it. */
void sim_free_secret(char *s);

typedef struct sim_buf {
  char *p;
  size_t len, cap;
} sim_buf;
void sim_buf_add(sim_buf *b, const char *s, size_t n);
void sim_buf_adds(sim_buf *b, const char *s);
void sim_buf_addf(sim_buf *b, const char *fmt, ...) SIM_PRINTF(2, 3);
/* Appends s as a JSON string literal, quotes included; NULL gives null. */
void sim_buf_json_str(sim_buf *b, const char *s);
void sim_buf_free(sim_buf *b);

double sim_now(void); /* monotonic seconds */
void sim_sleep(double seconds);

/* ---- configuration (sim_config.c) ---- */
typedef struct sim_listener {
  char *service, *url, *username, *password;
  struct sim_listener *next;
} sim_listener;

typedef struct sim_account {
  char *name;
  char **plans;
  size_t n_plans;
  sim_listener *listeners; /* guarded by sim.mu */
} sim_account;

typedef struct sim_user {
  char *name, *password;
  char **accounts; /* NULL: every account */
  size_t n_accounts;
  int failures, locked; /* guarded by sim.mu */
} sim_user;

typedef struct sim_client {
  char *key, *secret;
  char token[SIM_UUID_LEN + 1]; /* guarded by sim.mu; "" when none */
  double token_expires;
} sim_client;

typedef enum sim_endpoint {
  SIM_EP_TOKEN,
  SIM_EP_LOGIN,
  SIM_EP_LOGOUT,
  SIM_EP_CALLBACKS,
  SIM_EP_DOWNLOAD,
  SIM_EP_SIM,
  SIM_EP_OTHER,
  SIM_EP_COUNT,
  SIM_EP_ANY = -1 /* fault rules only */
} sim_endpoint;
const char *sim_endpoint_name(int ep);
int sim_endpoint_parse(const char *name); /* -2 when unknown */

typedef enum sim_fault_kind {
  SIM_FAULT_429,
  SIM_FAULT_503,
  SIM_FAULT_500,
  SIM_FAULT_CLOSE,
  SIM_FAULT_TRUNCATE,
  SIM_FAULT_NON_JSON,
  SIM_FAULT_REDIRECT,
  SIM_FAULT_OVERSIZE,
  SIM_FAULT_KINDS
} sim_fault_kind;

typedef struct sim_fault_rule {
  sim_fault_kind kind;
  unsigned long every, count; /* count 0: unlimited */
  int endpoint;               /* sim_endpoint or SIM_EP_ANY */
  int processed;              /* 1: handle the request, replace only the answer */
  char *retry_after;          /* 429/503 */
  char *to;                   /* redirect */
  size_t bytes;               /* oversize */
  unsigned long matched, fired;
} sim_fault_rule;

typedef struct sim_faults {
  long latency_ms;
  int callback_duplicate, callback_reorder, listener_down;
  sim_fault_rule *rules;
  size_t n_rules;
} sim_faults;

typedef struct sim_config {
  char *bind, *port_file, *tls_cert, *tls_key, *log_path, *callback_cacert;
  unsigned port;
  sim_client *clients;
  size_t n_clients;
  sim_user *users;
  size_t n_users;
  sim_account *accounts;
  size_t n_accounts;
  int clients_set, users_set, accounts_set; /* the first one given replaces the default */
  double token_lifetime, session_idle, redelivery_interval, callback_timeout;
  unsigned lock_after, callback_workers;
  int on_term_finish;
  size_t body_budget;                   /* raw request-body bytes held at once, all requests */
  unsigned connection_timeout;          /* s a connection may stay silent (0: never closed) */
  unsigned max_connections, max_per_ip; /* connection caps (max_per_ip 0: none) */
  int allow_remote_callbacks;           /* listeners off this machine may be registered */
  int no_callbacks;                     /* accepted downloads queue no callback */
  long answer_latency_ms;               /* /api answers held this long after processing */
  sim_faults faults;
} sim_config;

/* Parses argv (and any --config file); 0 ok, 1 when --help/--version printed
 * (exit 0), -1 on a bad option (message on stderr, exit 2). */
int sim_config_parse(sim_config *cfg, int argc, char **argv);
void sim_config_free(sim_config *cfg);
sim_account *sim_config_account(sim_config *cfg, const char *name);
int sim_user_may_use(const sim_user *u, const char *account);

/* ---- fault rules (sim_faults.c) ---- */
/* "429:every=3,count=2,endpoint=download,retry-after=date:5"; 0 ok, else -1
 * with a reason in err. */
int sim_fault_rule_parse(sim_fault_rule *r, const char *spec, char *err, size_t errsize);
void sim_fault_rule_clear(sim_fault_rule *r);
const char *sim_fault_kind_name(sim_fault_kind k);
void sim_faults_free(sim_faults *f);
/* Replaces *f from a JSON body ({} clears); 0 ok, else -1 with the JSON path
 * and reason in err, *f untouched. */
int sim_faults_from_json(sim_faults *f, const char *body, size_t len, char *err, size_t errsize);
void sim_faults_to_json(const sim_faults *f, sim_buf *out);
/* Counts the request against the rules; returns a copy of the rule that fires
 * (caller clears it) in *out and 1, or 0. */
int sim_faults_pick(sim_faults *f, int endpoint, sim_fault_rule *out);

/* ---- counters (sim_state.c); updated with atomics, read relaxed ---- */
typedef struct sim_stats {
  unsigned long requests[SIM_EP_COUNT];
  unsigned long downloads_received, downloads_accepted, devices_accepted;
  unsigned long tokens_issued, tokens_reused, tokens_refused;
  unsigned long logins_ok, logins_refused, logins_locked;
  unsigned long cb_queued, cb_attempted, cb_delivered, cb_failed, cb_abandoned, cb_no_listener,
      cb_duplicates;
  unsigned long faults_injected, faults_latency;
  unsigned long bodies_refused; /* 503: over the body budget */
} sim_stats;
#define SIM_COUNT(s, field, n) __atomic_fetch_add(&(s)->stats.field, (n), __ATOMIC_RELAXED)

/* ---- the running simulator ---- */
typedef struct sim_session {
  char token[SIM_UUID_LEN + 1];
  sim_user *user;
  double last_used;
  int state; /* SIM_SESSION_* */
} sim_session;
enum { SIM_SESSION_LIVE, SIM_SESSION_ENDED, SIM_SESSION_REVOKED };

typedef struct sim_deliver sim_deliver;

/* ---- per-EID count of accepted downloads (sim_eids.c); takes its own lock ---- */
typedef struct sim_eid_key {
  unsigned long long hi, lo; /* digits 1-16 and 17-32, as numbers */
} sim_eid_key;
typedef struct sim_eids sim_eids;
/* 0 when eid is exactly 32 decimal digits (key set), else -1. */
int sim_eid_pack(const char *eid, sim_eid_key *out);
void sim_eid_unpack(const sim_eid_key *k, char out[33]);
sim_eids *sim_eids_new(void);
void sim_eids_free(sim_eids *t); /* NULL ok */
/* Counts one accepted download holding keys[0..n) (sorted in place; an EID
 * given twice counts once). */
void sim_eids_add(sim_eids *t, sim_eid_key *keys, size_t n);
/* The accepted downloads that held k (0: never). */
unsigned long sim_eids_count(sim_eids *t, const sim_eid_key *k);
/* The EIDs accepted at least once, and those accepted more than once. */
void sim_eids_totals(sim_eids *t, unsigned long *distinct, unsigned long *repeated);
void sim_eids_clear(sim_eids *t);

typedef struct sim {
  sim_config cfg;
  pthread_mutex_t mu; /* tokens, sessions, users, listeners, faults */
  sim_session *sessions;
  size_t n_sessions, cap_sessions;
  sim_stats stats;
  FILE *log;
  pthread_mutex_t log_mu;
  sim_deliver *deliver;
  sim_eids *eids;
  int tls;
  size_t body_bytes; /* raw body bytes held by requests now (atomic) */
} sim;

/* One log line; every byte that is a control character, a backslash or not
 * ASCII is written as \xNN, so nothing a peer sends can forge a line. */
void sim_log(sim *s, const char *fmt, ...) SIM_PRINTF(2, 3);
/* Appends s[0..n) to b with those bytes escaped the same way. */
void sim_buf_add_escaped(sim_buf *b, const char *s, size_t n);
void sim_uuid4(char out[SIM_UUID_LEN + 1]);

/* sim_state.c: every function takes s->mu itself. */
/* 0 when key/secret is a known client, else -1. With issue, also copies its
 * live token, or a new one, into token and sets *expires_in and *reused. */
int sim_token_issue(sim *s, const char *key, const char *secret, int issue, char *token,
                    long *expires_in, int *reused);
/* 0 valid, -1 unknown/expired/revoked. */
int sim_token_check(sim *s, const char *token);
/* Login: 0 ok (session token copied), 1 wrong credentials, 2 locked. */
int sim_login(sim *s, const char *user, const char *password, char *session_out);
/* Session check: 0 ok (*user set, idle clock restarted), or an errorCode. */
const char *sim_session_use(sim *s, const char *token, sim_user **user);
/* Ends a session (after sim_session_use succeeded). */
void sim_session_end(sim *s, const char *token);
void sim_revoke(sim *s, int tokens, int sessions, unsigned long *n_tokens,
                unsigned long *n_sessions);
void sim_stats_to_json(sim *s, sim_buf *out);
void sim_stats_reset(sim *s);

/* ---- HTTP answers (sim_json.c) ---- */
typedef struct sim_answer {
  int status;
  sim_buf body;
  const char *content_type;
  char *location, *retry_after;
  int www_authenticate;
} sim_answer;
void sim_answer_json(sim_answer *a, int status, sim_buf *body); /* takes body */
void sim_answer_error(sim_answer *a, int status, const char *code, const char *fmt, ...)
    SIM_PRINTF(4, 5);
void sim_answer_fault(sim_answer *a, const char *code, const char *message,
                      const char *description);
void sim_answer_oauth(sim_answer *a, int status, const char *error, const char *description);
void sim_answer_clear(sim_answer *a);

/* A request as the handlers see it (sim_http.c fills it). */
typedef struct sim_rq {
  const char *method, *path; /* path without "/api" */
  const char *authorization, *session_token, *content_type;
  const char *body;
  size_t len;
} sim_rq;

/* sim_api.c */
int sim_api_classify(const char *method, const char *path); /* sim_endpoint */
void sim_api_handle(sim *s, int endpoint, const sim_rq *rq, sim_answer *a);
/* sim_admin.c */
void sim_admin_handle(sim *s, const sim_rq *rq, sim_answer *a);

/* sim_http.c */
struct MHD_Daemon;
struct MHD_Daemon *sim_http_start(sim *s, unsigned *port_out, char *err, size_t errsize);
void sim_http_stop(struct MHD_Daemon *d); /* NULL ok: frees what start kept */

/* 1 when url is an http:// or https:// URL whose host is on this machine: a
 * dotted quad in 127.0.0.0/8, [::1] or localhost (curl_url parses it). */
int sim_url_is_loopback(const char *url);

/* ---- callback delivery (sim_deliver.c) ---- */
typedef struct sim_dev {
  char id[3][33];
  unsigned char kind[3]; /* SIM_KIND_* in request order */
  unsigned char n_ids;
} sim_dev;
enum { SIM_KIND_EID, SIM_KIND_ICCID, SIM_KIND_IMEI };

typedef struct sim_job {
  char request_id[SIM_UUID_LEN + 1];
  char *url, *username, *password;
  struct sim_item *items; /* one per device, set by sim_deliver_submit (sim_deliver.c) */
  size_t n_devs;
  size_t refs; /* items alive; only the delivery thread changes it after submit */
  sim_dev devs[];
} sim_job;

sim_job *sim_job_new(size_t n_devs);
sim_deliver *sim_deliver_start(sim *s);
/* Queues the callbacks of an accepted download; takes the job. */
void sim_deliver_submit(sim_deliver *d, sim_job *job);
unsigned long sim_deliver_pending(sim_deliver *d);
/* Stops the delivery thread: finish != 0 waits until nothing is pending. */
void sim_deliver_stop(sim_deliver *d, int finish);
/* The callback body of one device (sim_deliver.c, exposed for sim_api.c's docs). */
void sim_callback_body(const sim_job *job, size_t dev, int warning, int count, sim_buf *out);

/* ---- the device file generator (sim_make.c) ---- */
/* 1 when argv asks for --make-devices: main then runs sim_make_main alone. */
int sim_make_requested(int argc, char **argv);
/* Writes the CSV to stdout; the exit status (2: bad usage). */
int sim_make_main(int argc, char **argv);
/* 1 when name[0..len) is one of the generator's options. */
int sim_make_option(const char *name, size_t len);

#endif /* SIM_H */
