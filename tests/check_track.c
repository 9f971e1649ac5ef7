/*
 * check_track.c - the whole path of a job's results, end to end over
 * loopback: tools/tsesim-sim accepts the downloads of a job
 * (tsesim_job_submit) and POSTs their callbacks to the library's listener
 * (tsesim_listener_start with the job's journal); the tracker matches them
 * (tsesim_job_wait, tsesim_job_count, tsesim_job_devices). Each test breaks
 * one thing ThingSpace or the host can break: duplicated and reordered
 * callbacks, callbacks before the requestId is recorded, a chunk whose
 * outcome is unknown, a listener that goes down or is killed (kill -9)
 * mid-stream, forged callbacks, a journal that cannot store. The numbers are
 * checked against what the simulator says it did (its /_sim/stats), and every
 * test asserts that no EID was downloaded twice (downloads.eids_repeated).
 */
#include <ctype.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsesim_int.h"
#include "tsesim_test.h"
#include "tt_sim.h"

#define JOB "track"
#define LUSER "tt-listener"
#define LPASS "tt-listener-pass-5c1e0a7d93"

typedef struct track_env {
  tt_sim *s;
  char dir[PATH_MAX], db[PATH_MAX + 16], api[256], cb_url[128];
  tsesim_options o;
  tsesim_client *c;
  tsesim_journal *j;
  tsesim_request *req;
  tsesim_listener *l;
  unsigned port;
  size_t n;
  unsigned long seed;
  int mixed;                       /* devices of every outcome, not only plain ones */
  size_t want_failed, want_warned; /* imei ending in 13 (Failed), in 77 (Warning, then SUCCESS) */
  /* what on_callback saw, on the listener's writer thread */
  pthread_mutex_t mu;
  unsigned long seen, seen_repeat, seen_unmatched;
  double slow_s; /* on_callback sleeps this long: the listener takes ~1/slow_s callbacks a second */
  char seen_request_id[64];
  int request_ids_differ;
  /* what the job's progress function saw, on the test's thread */
  unsigned long seen_at_accept;
  char accepted_request_id[64];
  /* log lines of the client and the listener */
  char log[16384];
  size_t log_len;
  double t0;
} track_env;

/* The test's environment: static, so that the teardown can stop what a
 * failed test left running (under CK_FORK=no its listener's threads would
 * otherwise go on calling into a test that has returned). */
static track_env the_env;
static int the_env_live;

static void on_log(int level, const char *line, void *payload) {
  track_env *e = payload;
  int n;
  (void)level;
  pthread_mutex_lock(&e->mu);
  n = snprintf(e->log + e->log_len, sizeof e->log - e->log_len, "%.3f %s\n", tt_now() - e->t0,
               line);
  if (n > 0 && e->log_len + (size_t)n < sizeof e->log) e->log_len += (size_t)n;
  pthread_mutex_unlock(&e->mu);
}

static void on_callback(const tsesim_callback *cb, const tsesim_callback_result *res,
                        void *payload) {
  track_env *e = payload;
  pthread_mutex_lock(&e->mu);
  e->seen++;
  e->seen_repeat += res->repeat != 0;
  e->seen_unmatched += res->job == NULL;
  if (!e->seen_request_id[0])
    snprintf(e->seen_request_id, sizeof e->seen_request_id, "%s", cb->request_id);
  else if (strcmp(e->seen_request_id, cb->request_id))
    e->request_ids_differ = 1;
  pthread_mutex_unlock(&e->mu);
  if (e->slow_s > 0) tt_sleep(e->slow_s);
}

static unsigned long seen_now(track_env *e) {
  unsigned long n;
  pthread_mutex_lock(&e->mu);
  n = e->seen;
  pthread_mutex_unlock(&e->mu);
  return n;
}

static void on_progress(const tsesim_job_progress *p, void *payload) {
  track_env *e = payload;
  if (p->chunk >= 0 && !strcmp(p->state, "accepted")) {
    e->seen_at_accept = seen_now(e);
    snprintf(e->accepted_request_id, sizeof e->accepted_request_id, "%s",
             p->request_id ? p->request_id : "");
  }
}

/* Device i of the job: a plain one (SUCCESS), or, mixed, any outcome. */
static void device_of(const track_env *e, size_t i, tt_device *d) {
  if (e->mixed)
    tt_device_make(d, e->seed + i);
  else
    tt_plain_device(d, e->seed + i);
}

/* A simulator started with args, a client of its default credentials, a
 * journal in a temporary directory, and a request of n devices. */
static void env_start(track_env *e, const char *const *args, size_t n, unsigned long seed,
                      int mixed) {
  tt_device d;
  size_t i;
  ck_assert_msg(!the_env_live, "env_start: the last test's environment is still live");
  memset(e, 0, sizeof *e);
  pthread_mutex_init(&e->mu, NULL);
  the_env_live = 1;
  e->t0 = tt_now();
  e->n = n;
  e->seed = seed;
  e->mixed = mixed;
  e->s = tt_sim_start(args);
  tt_mkdtemp(e->dir);
  snprintf(e->db, sizeof e->db, "%s/journal.db", e->dir);
  ck_assert_int_eq(tsesim_options_init(&e->o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  snprintf(e->api, sizeof e->api, "%s/api", e->s->base);
  e->o.base_url = e->api;
  e->o.client_id = "sim-key";
  e->o.client_secret = "sim-secret";
  e->o.username = "sim-user";
  e->o.password = "sim-pass";
  e->o.log_fn = on_log;
  e->o.log_payload = e;
  e->o.log_level = 2;
  e->o.backoff_base_ms = 50;
  ck_assert_int_eq(tsesim_client_new(&e->c, &e->o), TSESIM_OK);
  ck_assert_int_eq(tsesim_journal_open(&e->j, e->db, NULL), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_new(&e->req, TT_ACCOUNT), TSESIM_OK);
  for (i = 0; i < n; i++) {
    device_of(e, i, &d);
    e->want_failed += tt_ends_with(d.imei, "13");
    e->want_warned += tt_ends_with(d.imei, "77");
    ck_assert_int_eq(tsesim_request_add_device(e->req, d.ids, 3), TSESIM_OK);
  }
}

/* Frees what env_start made but the simulator (and its directory). */
static void env_free(track_env *e) {
  tsesim_listener_stop(e->l);
  e->l = NULL;
  tsesim_client_free(e->c);
  tsesim_journal_close(e->j);
  tsesim_request_free(e->req);
  tsesim__test_journal_open_sql = NULL;
  pthread_mutex_destroy(&e->mu);
  the_env_live = 0;
}

static void env_end(track_env *e) {
  env_free(e);
  ck_assert_int_eq(tt_sim_stop(e->s), 0);
  tt_rmdir(e->dir);
}

/* The checked teardown: what a failed test left (its files stay for a look). */
static void teardown(void) {
  if (the_env_live) env_free(&the_env);
  tt_cleanup();
}

/* Starts a listener on the job's journal at port (0: any); its code. */
static tsesim_code listen_on(track_env *e, unsigned port, tsesim_listener **out, char *errbuf) {
  tsesim_listener_options lo;
  ck_assert_int_eq(tsesim_listener_options_init(&lo, TSESIM_LISTENER_OPTIONS_VERSION), TSESIM_OK);
  lo.journal = e->db;
  lo.port = port;
  lo.username = LUSER;
  lo.password = LPASS;
  lo.on_callback = on_callback;
  lo.callback_payload = e;
  lo.log_fn = on_log;
  lo.log_payload = e;
  lo.log_level = 1; /* not a line per request */
  return tsesim_listener_start(out, &lo, errbuf);
}

/* e->l: a listener at port (0: any, then e->port is set; else port must be e->port). */
static void listen_ok(track_env *e, unsigned port) {
  char err[TSESIM_ERRBUF_SIZE] = "";
  tsesim_code rc;
  ck_assert_ptr_null(e->l);
  rc = listen_on(e, port, &e->l, err);
  ck_assert_msg(rc == TSESIM_OK, "listener on port %u: %s: %s", port, tsesim_code_name(rc), err);
  if (port)
    ck_assert_uint_eq(tsesim_listener_port(e->l), port);
  else
    e->port = tsesim_listener_port(e->l);
  ck_assert_uint_ne(e->port, 0);
}

static void unlisten(track_env *e) {
  tsesim_listener_stop(e->l);
  e->l = NULL;
}

/* Registers http://127.0.0.1:e->port/callbacks with the listener's credentials. */
static void register_url(track_env *e) {
  tsesim_code rc;
  snprintf(e->cb_url, sizeof e->cb_url, "http://127.0.0.1:%u/callbacks", e->port);
  rc = tsesim_client_register_callback(e->c, TT_ACCOUNT, NULL, e->cb_url, LUSER, LPASS);
  ck_assert_msg(rc == TSESIM_OK, "register %s: %s: %s", e->cb_url, tsesim_code_name(rc),
                tsesim_client_errmsg(e->c));
}

static void submit(track_env *e, size_t chunk, tsesim_code want) {
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim_code rc;
  o.chunk_size = chunk;
  o.in_flight = 1; /* chunk k is the (k+1)-th download: fault rules count on it */
  o.progress_fn = on_progress;
  o.progress_payload = e;
  rc = tsesim_job_submit(e->c, e->j, JOB, e->req, &o);
  ck_assert_msg(rc == want, "submit: %s, expected %s; errmsg \"%s\"\nlog:\n%s",
                tsesim_code_name(rc), tsesim_code_name(want), tsesim_client_errmsg(e->c), e->log);
}

static void fmt_counts(const tsesim_job_counts *c, char *out, size_t cap) {
  snprintf(out, cap,
           "devices %zu queued %zu submitted %zu unknown %zu refused %zu warning %zu success %zu "
           "failed %zu invalid %zu callbacks %lu duplicates %lu unmatched %lu",
           c->devices, c->queued, c->submitted, c->unknown, c->refused, c->warning, c->success,
           c->failed, c->invalid, c->callbacks, c->duplicates, c->unmatched);
}

static void count(track_env *e, tsesim_job_counts *c) {
  tsesim_code rc = tsesim_job_count(e->j, JOB, c);
  ck_assert_msg(rc == TSESIM_OK, "count: %s: %s", tsesim_code_name(rc),
                tsesim_journal_errmsg(e->j));
  ck_assert_uint_eq(c->devices, c->queued + c->submitted + c->unknown + c->refused + c->warning +
                                    c->success + c->failed + c->invalid);
}

/* Waits until every device is final, then until the simulator has nothing
 * pending (the duplicates and repeats after the last final status), so
 * that everything it was answered 200 for is committed; the counts then. */
static void wait_final(track_env *e, double timeout, tsesim_job_counts *c) {
  char text[512];
  tsesim_code rc = tsesim_job_wait(e->j, JOB, (long)(tt_slow(timeout) * 1000), c);
  fmt_counts(c, text, sizeof text);
  ck_assert_msg(rc == TSESIM_OK, "wait: %s (%s); %s\nlog:\n%s", tsesim_code_name(rc),
                tsesim_journal_errmsg(e->j), text, e->log);
  ck_assert_int_eq(tt_stat_wait(e->s, "callbacks.pending", 0, timeout), 0);
  count(e, c);
}

/* Asserts the counts of a job whose every device got its callbacks once and
 * ended as the simulator decided (imei ending in 13: Failed). */
static void expect_final(const track_env *e, const tsesim_job_counts *c, const char *ctx) {
  char text[512];
  fmt_counts(c, text, sizeof text);
  ck_assert_msg(c->devices == e->n && c->failed == e->want_failed &&
                    c->success == e->n - e->want_failed && c->success + c->failed == e->n,
                "%s: %s; expected devices %zu success %zu failed %zu", ctx, text, e->n,
                e->n - e->want_failed, e->want_failed);
  /* distinct callbacks: a final one per device, and a Warning before it for "77" devices */
  ck_assert_msg(c->callbacks == e->n + e->want_warned, "%s: %s; expected callbacks %zu", ctx, text,
                e->n + e->want_warned);
}

static void expect_no_repeat(const track_env *e, const char *ctx) {
  tt_stats_expect(e->s, ctx, TT_ST("downloads.eids_repeated", 0),
                  TT_ST("downloads.devices_accepted", (long)e->n), NULL);
}

/* Polls the simulator until the counter at path is at least want; its value. */
static long stat_wait_ge(const track_env *e, const char *path, long want, double timeout) {
  double end = tt_now() + tt_slow(timeout);
  long v;
  while ((v = tt_stat(e->s, path)) < want && tt_now() < end) tt_sleep(0.01);
  ck_assert_msg(v >= want, "simulator: %s is %ld after %.0f s, expected at least %ld", path, v,
                timeout, want);
  return v;
}

/* Waits until the simulator has attempted at least min_attempted deliveries
 * and none is in flight (each attempt ended: 200, or failed), in one
 * snapshot of its counters; then *delivered and *failed. */
static void settle(const track_env *e, long min_attempted, long *delivered, long *failed) {
  double end = tt_now() + tt_slow(30);
  for (;;) {
    json_t *st = tt_stats(e->s);
    long attempted = tt_stat_of(st, "callbacks.attempted");
    *delivered = tt_stat_of(st, "callbacks.delivered");
    *failed = tt_stat_of(st, "callbacks.failed");
    json_decref(st);
    if (attempted >= min_attempted && attempted == *delivered + *failed) return;
    ck_assert_msg(tt_now() < end, "simulator: %ld attempted, %ld delivered, %ld failed after 30 s",
                  attempted, *delivered, *failed);
    tt_sleep(0.01);
  }
}

/* ---- every row, as tsesim_job_devices gives it ---- */

typedef struct rows_check {
  const track_env *e;
  const char *want_request_id; /* NULL: any requestId */
  size_t rows;
  char why[512]; /* the first mismatch */
} rows_check;

static int check_row(const tsesim_device_status *d, void *payload) {
  rows_check *rc = payload;
  const track_env *e = rc->e;
  size_t i = rc->rows++;
  tt_device want;
  int failed, warned;
  device_of(e, i, &want);
  failed = tt_ends_with(want.imei, "13");
  warned = tt_ends_with(want.imei, "77");
  if (d->line != i + 1 || !d->eid || strcmp(d->eid, want.eid))
    snprintf(rc->why, sizeof rc->why, "row %zu: line %lu eid %s, expected line %zu eid %s", i,
             d->line, d->eid ? d->eid : "NULL", i + 1, want.eid);
  else if (strcmp(d->state, failed ? "failed" : "success"))
    snprintf(rc->why, sizeof rc->why, "line %lu (imei %s): state %s", d->line, want.imei, d->state);
  else if (!d->status || strcmp(d->status, failed ? "Failed" : "SUCCESS"))
    snprintf(rc->why, sizeof rc->why, "line %lu: status %s", d->line,
             d->status ? d->status : "NULL");
  else if (failed && (!d->fault || strcmp(d->fault, "REQUEST_FAILED.Device.NotReachable")))
    snprintf(rc->why, sizeof rc->why, "line %lu: fault %s", d->line, d->fault ? d->fault : "NULL");
  else if (d->callbacks != (warned ? 2u : 1u))
    snprintf(rc->why, sizeof rc->why, "line %lu (imei %s): %lu callbacks stored", d->line,
             want.imei, d->callbacks);
  else if (!tt_is_uuid4(d->request_id) ||
           (rc->want_request_id && strcmp(d->request_id, rc->want_request_id)))
    snprintf(rc->why, sizeof rc->why, "line %lu: requestId %s, expected %s", d->line,
             d->request_id ? d->request_id : "NULL",
             rc->want_request_id ? rc->want_request_id : "a uuid");
  return rc->why[0] != '\0';
}

static void expect_rows(const track_env *e, const char *want_request_id) {
  rows_check rc;
  tsesim_code code;
  memset(&rc, 0, sizeof rc);
  rc.e = e;
  rc.want_request_id = want_request_id;
  code = tsesim_job_devices(e->j, JOB, check_row, &rc);
  ck_assert_msg(code == TSESIM_OK, "devices: %s: %s", tsesim_code_name(code),
                tsesim_journal_errmsg(e->j));
  ck_assert_msg(!rc.why[0], "devices: %s", rc.why);
  ck_assert_uint_eq(rc.rows, e->n);
}

/* The journal's chunk states, read with SQLite itself (tsesim-journal(5)):
 * "AU..." in chunk order; request_ids gets chunk k's requestId at [k]. */
static void chunk_states(const track_env *e, char *out, size_t cap, char (*request_ids)[64],
                         size_t max_ids) {
  sqlite3 *db;
  sqlite3_stmt *st;
  size_t n = 0;
  ck_assert_int_eq(sqlite3_open_v2(e->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT state, request_id FROM chunk ORDER BY job, seq",
                                      -1, &st, NULL),
                   SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW && n + 1 < cap) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    const char *id = (const char *)sqlite3_column_text(st, 1);
    if (n < max_ids) snprintf(request_ids[n], 64, "%s", id ? id : "");
    out[n++] = (char)toupper((unsigned char)state[0]);
  }
  out[n] = '\0';
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* ---- forged callbacks ---- */

/* A callback body for device i of the job, as ThingSpace writes it; user
 * or pass NULL: not in the body. */
static char *callback_body(const track_env *e, size_t i, const char *request_id, const char *status,
                           int count, const char *user, const char *pass) {
  tt_device d;
  json_t *b;
  char *text;
  device_of(e, i, &d);
  b = json_pack("{sss[{ssss}{ssss}{ssss}]sssisi}", "requestId", request_id, "deviceIds", "id",
                d.eid, "kind", "Eid", "id", d.iccid, "kind", "Iccid", "id", d.imei, "kind", "Imei",
                "status", status, "callbackCount", count, "maxCallbackThreshold", 4);
  ck_assert_ptr_nonnull(b);
  if (!strcmp(status, "Failed"))
    json_object_set_new(b, "faultResponse",
                        json_pack("{ssss}", "faultcode", "REQUEST_FAILED.Device.NotReachable",
                                  "faultstring", "The device could not be reached."));
  if (user) json_object_set_new(b, "username", json_string(user));
  if (pass) json_object_set_new(b, "password", json_string(pass));
  text = json_dumps(b, JSON_COMPACT);
  ck_assert_ptr_nonnull(text);
  json_decref(b);
  return text;
}

/* POSTs body to the listener; the HTTP status. */
static long post_callback(const track_env *e, const char *body) {
  tt_resp r;
  long status;
  tt_http(&r, "POST", e->cb_url, (const char *[]){"Content-Type: application/json", NULL}, body,
          strlen(body), NULL);
  ck_assert_msg(r.rc == CURLE_OK, "POST %s: %s", e->cb_url, curl_easy_strerror(r.rc));
  status = r.status;
  tt_resp_free(&r);
  return status;
}

/* The request id of device line (1-based), copied into out. */
typedef struct find_row {
  unsigned long line;
  char request_id[64], state[16], status[16];
  unsigned long callbacks;
} find_row;

static int find_row_fn(const tsesim_device_status *d, void *payload) {
  find_row *f = payload;
  if (d->line != f->line) return 0;
  snprintf(f->request_id, sizeof f->request_id, "%s", d->request_id ? d->request_id : "");
  snprintf(f->state, sizeof f->state, "%s", d->state);
  snprintf(f->status, sizeof f->status, "%s", d->status ? d->status : "");
  f->callbacks = d->callbacks;
  return 1;
}

static find_row row_of(track_env *e, unsigned long line) {
  find_row f;
  memset(&f, 0, sizeof f);
  f.line = line;
  ck_assert_int_eq(tsesim_job_devices(e->j, JOB, find_row_fn, &f), TSESIM_OK);
  ck_assert_msg(f.state[0], "no row at line %lu", line);
  return f;
}

/* ======================================================================== */

/* 25,000 devices of every outcome, every callback delivered twice and in
 * reverse order (a device's final status before its Warning): each device
 * ends as the simulator decided, each callback is stored once, and every
 * duplicate the simulator sent is counted as one. */
START_TEST(test_25000_duplicated_reordered) {
  track_env *e = &the_env;
  tsesim_job_counts c;
  json_t *st;
  long delivered, dups;
  double t0 = tt_now();
  env_start(e,
            (const char *[]){"--callback-duplicate", "--callback-reorder", "--callback-workers",
                             "16", "--redelivery-interval", "1", NULL},
            25000, 1000000, 1);
  ck_assert_uint_gt(e->want_failed, 0);
  ck_assert_uint_gt(e->want_warned, 0);
  listen_ok(e, 0);
  register_url(e);
  submit(e, 0, TSESIM_OK);
  wait_final(e, 90, &c);
  st = tt_stats(e->s);
  delivered = tt_stat_of(st, "callbacks.delivered");
  dups = tt_stat_of(st, "callbacks.duplicates");
  ck_assert_msg(
      tt_stat_of(st, "callbacks.failed") == 0 && tt_stat_of(st, "callbacks.abandoned") == 0,
      "the listener refused %ld deliveries (%ld abandoned)", tt_stat_of(st, "callbacks.failed"),
      tt_stat_of(st, "callbacks.abandoned"));
  json_decref(st);
  expect_final(e, &c, "25000");
  ck_assert_uint_eq(c.queued + c.submitted + c.unknown + c.refused + c.warning + c.invalid, 0);
  /* every delivered callback is stored once or counted as a repeat */
  ck_assert_msg(dups > 0 && c.duplicates == (unsigned long)dups,
                "duplicates %lu, the simulator sent %ld", c.duplicates, dups);
  ck_assert_int_eq((long)(c.callbacks + c.duplicates), delivered);
  ck_assert_uint_eq(c.unmatched, 0);
  expect_rows(e, NULL);
  tt_stats_expect(e->s, "25000", TT_ST("downloads.accepted", 3), NULL);
  expect_no_repeat(e, "25000");
  ck_assert_msg(e->seen == (unsigned long)delivered && e->seen_repeat == c.duplicates &&
                    e->seen_unmatched == 0,
                "on_callback: %lu calls, %lu repeats, %lu unmatched", e->seen, e->seen_repeat,
                e->seen_unmatched);
  env_end(e);
  fprintf(stderr, "check_track: 25,000 devices in %.1f s\n", tt_now() - t0);
}
END_TEST

/* The simulator holds each answer after processing: the callbacks of the
 * download are stored before the job records its requestId, matched by
 * device ids among the chunk being sent, and none is unmatched. */
START_TEST(test_callbacks_before_request_id) {
  track_env *e = &the_env;
  tsesim_job_counts c;
  char states[8], ids[2][64];
  env_start(e, (const char *[]){"--answer-latency-ms", "800", NULL}, 50, 2000000, 0);
  listen_ok(e, 0);
  register_url(e);
  submit(e, 0, TSESIM_OK);
  ck_assert_msg(e->seen_at_accept == e->n,
                "%lu of %zu callbacks stored before the job recorded the requestId\nlog:\n%s",
                e->seen_at_accept, e->n, e->log);
  wait_final(e, 30, &c);
  expect_final(e, &c, "before the requestId");
  ck_assert_uint_eq(c.unmatched, 0);
  ck_assert_uint_eq(c.duplicates, 0);
  ck_assert_msg(e->seen_unmatched == 0 && !e->request_ids_differ,
                "on_callback: %lu unmatched, request ids differ: %d", e->seen_unmatched,
                e->request_ids_differ);
  tt_expect_str("requestId", "accepted", e->accepted_request_id, e->seen_request_id);
  expect_rows(e, e->seen_request_id);
  chunk_states(e, states, sizeof states, ids, 2);
  tt_expect_str("chunks", "states", states, "A");
  tt_expect_str("chunk 0", "request_id", ids[0], e->seen_request_id);
  tt_stats_expect(e->s, "before the requestId", TT_ST("callbacks.delivered", (long)e->n),
                  TT_ST("callbacks.failed", 0), NULL);
  expect_no_repeat(e, "before the requestId");
  env_end(e);
}
END_TEST

/* Chunk 1's download is processed and its connection closed unanswered:
 * unknown. Its callbacks (delivered once the listener is up) give it the
 * simulator's requestId; it ends accepted, every device final, and running
 * the job again sends nothing. */
START_TEST(test_unknown_chunk_resolved) {
  track_env *e = &the_env;
  tsesim_job_counts c;
  char states[8], ids[2][64];
  env_start(e,
            (const char *[]){"--fault", "close:endpoint=download,mode=processed,every=2,count=1",
                             "--redelivery-interval", "0.5", NULL},
            20, 3000000, 0);
  /* the listener's port, free while the job runs: the callbacks wait for it */
  listen_ok(e, 0);
  register_url(e);
  unlisten(e);
  submit(e, 10, TSESIM_E_UNKNOWN_OUTCOME);
  chunk_states(e, states, sizeof states, ids, 2);
  tt_expect_str("after the job", "states", states, "AU");
  count(e, &c);
  ck_assert_uint_eq(c.unknown, 10);
  ck_assert_uint_eq(c.submitted, 10);
  listen_ok(e, e->port);
  wait_final(e, 30, &c);
  expect_final(e, &c, "unknown resolved");
  ck_assert_uint_eq(c.unmatched, 0);
  chunk_states(e, states, sizeof states, ids, 2);
  tt_expect_str("resolved", "states", states, "AA");
  ck_assert_msg(tt_is_uuid4(ids[1]) && strcmp(ids[0], ids[1]), "chunk requestIds %s and %s", ids[0],
                ids[1]);
  ck_assert_msg(e->request_ids_differ, "the callbacks of only one requestId arrived");
  /* the rows of chunk 1 carry the requestId only its callbacks told */
  ck_assert_str_eq(row_of(e, 11).request_id, ids[1]);
  ck_assert_str_eq(row_of(e, 20).request_id, ids[1]);
  expect_rows(e, NULL);
  /* nothing is left to send */
  submit(e, 0, TSESIM_OK);
  tt_stats_expect(e->s, "unknown resolved", TT_ST("requests.download", 2),
                  TT_ST("downloads.accepted", 2), TT_ST("callbacks.abandoned", 0), NULL);
  expect_no_repeat(e, "unknown resolved");
  env_end(e);
}
END_TEST

/* The listener stops mid-stream (it drains: what it answered is stored),
 * deliveries fail, and a new listener on the same port takes the
 * simulator's redeliveries. */
START_TEST(test_listener_down_then_up) {
  track_env *e = &the_env;
  tsesim_job_counts c;
  long delivered;
  env_start(e, (const char *[]){"--callback-workers", "2", "--redelivery-interval", "1", NULL},
            3000, 4000000, 1);
  e->slow_s = 0.002; /* so that the stop comes mid-stream */
  listen_ok(e, 0);
  register_url(e);
  submit(e, 0, TSESIM_OK);
  stat_wait_ge(e, "callbacks.delivered", 200, 30);
  unlisten(e);
  e->slow_s = 0;
  delivered = tt_stat(e->s, "callbacks.delivered");
  count(e, &c);
  ck_assert_msg((long)(c.callbacks + c.duplicates) >= delivered,
                "stopped: %lu callbacks stored, the simulator had %ld answered 200", c.callbacks,
                delivered);
  ck_assert_msg(delivered < (long)e->n, "every callback was delivered before the stop");
  /* down: deliveries fail and wait for their next attempt */
  stat_wait_ge(e, "callbacks.failed", 1, 10);
  listen_ok(e, e->port);
  wait_final(e, 60, &c);
  expect_final(e, &c, "down then up");
  ck_assert_uint_eq(c.unmatched, 0);
  ck_assert_int_eq((long)(c.callbacks + c.duplicates), tt_stat(e->s, "callbacks.delivered"));
  tt_stats_expect(e->s, "down then up", TT_ST("callbacks.abandoned", 0), NULL);
  ck_assert_int_gt(tt_stat(e->s, "callbacks.failed"), 0);
  expect_rows(e, NULL);
  expect_no_repeat(e, "down then up");
  env_end(e);
}
END_TEST

/* A child process holds the listener and is killed (SIGKILL) mid-stream:
 * every callback the simulator had answered 200 is in the journal, at most
 * the deliveries in flight more; a new listener on the same port takes the
 * rest. */
START_TEST(test_kill_listener_process) {
  track_env *e = &the_env;
  tsesim_job_counts c;
  tsesim_journal *j2 = NULL;
  int fds[2], status = 0;
  unsigned port = 0;
  pid_t pid;
  long delivered = 0, failed = 0;
  unsigned long unanswered;
  char text[512], interval[16];
  /* The deliveries that fail while no listener runs are tried 4 times,
   * interval seconds apart, then abandoned: the new listener must be up
   * before that, which under make check-valgrind (the simulator and this
   * test both under valgrind) takes longer than 3 s. */
  snprintf(interval, sizeof interval, "%.0f", tt_slow(1.0));
  env_start(e, (const char *[]){"--callback-workers", "4", "--redelivery-interval", interval, NULL},
            4000, 5000000, 0);
  ck_assert_int_eq(pipe(fds), 0);
  e->slow_s = 0.001; /* the child's listener: so that the kill comes mid-stream */
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    tsesim_listener *l = NULL;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    if (listen_on(e, 0, &l, NULL) != TSESIM_OK) _exit(3);
    port = tsesim_listener_port(l);
    if (write(fds[1], &port, sizeof port) != (ssize_t)sizeof port) _exit(4);
    for (;;) pause();
  }
  e->slow_s = 0;
  close(fds[1]);
  ck_assert_int_eq(read(fds[0], &port, sizeof port), (ssize_t)sizeof port);
  close(fds[0]);
  e->port = port;
  register_url(e);
  submit(e, 0, TSESIM_OK);
  stat_wait_ge(e, "callbacks.delivered", 300, 30);
  kill(pid, SIGKILL);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
  /* the simulator settles: no delivery in flight (each one ended, failed or 200) */
  settle(e, 0, &delivered, &failed);
  ck_assert_msg(delivered >= 300 && delivered < (long)e->n, "killed after %ld of %zu", delivered,
                e->n);
  /* reopened: what was answered 200 is there */
  ck_assert_int_eq(tsesim_journal_open(&j2, e->db, NULL), TSESIM_OK);
  ck_assert_int_eq(tsesim_job_count(j2, JOB, &c), TSESIM_OK);
  tsesim_journal_close(j2);
  fmt_counts(&c, text, sizeof text);
  ck_assert_msg(
      c.callbacks >= (unsigned long)delivered && c.callbacks <= (unsigned long)delivered + 4,
      "after kill -9: %s; the simulator had %ld answered 200 (4 in flight at most)", text,
      delivered);
  ck_assert_uint_eq(c.duplicates, 0);
  ck_assert_uint_eq(c.success, c.callbacks);
  /* stored, never answered: the simulator delivers those again, as repeats */
  unanswered = c.callbacks - (unsigned long)delivered;
  /* a new listener on the same port takes the rest */
  listen_ok(e, port);
  wait_final(e, 60, &c);
  expect_final(e, &c, "after the kill");
  ck_assert_uint_eq(c.unmatched, 0);
  ck_assert_uint_eq(c.duplicates, unanswered);
  ck_assert_int_eq((long)(c.callbacks + c.duplicates),
                   tt_stat(e->s, "callbacks.delivered") + (long)unanswered);
  tt_stats_expect(e->s, "after the kill", TT_ST("callbacks.abandoned", 0), NULL);
  expect_rows(e, NULL);
  expect_no_repeat(e, "kill -9");
  env_end(e);
}
END_TEST

/* Callbacks the simulator never sent: wrong or missing credentials are
 * refused and change nothing; an unknown requestId is stored unmatched; a
 * later Failed for a SUCCESS device is stored and changes nothing; its
 * repeat is counted once. */
START_TEST(test_forged_callbacks) {
  track_env *e = &the_env;
  tsesim_job_counts c0, c;
  find_row r;
  char *body;
  static const char other_id[] = "0b7e3c2a-5d4f-4e1a-9c8b-7a6f5e4d3c2b";
  env_start(e, NULL, 3, 6000000, 0);
  listen_ok(e, 0);
  register_url(e);
  submit(e, 0, TSESIM_OK);
  wait_final(e, 30, &c0);
  expect_final(e, &c0, "setup");
  r = row_of(e, 1);
  ck_assert_str_eq(r.state, "success");

  body = callback_body(e, 0, r.request_id, "Failed", 1, LUSER, "wrong-password");
  ck_assert_int_eq(post_callback(e, body), 401);
  free(body);
  body = callback_body(e, 0, r.request_id, "Failed", 1, "someone", LPASS);
  ck_assert_int_eq(post_callback(e, body), 401);
  free(body);
  body = callback_body(e, 0, r.request_id, "Failed", 1, NULL, NULL);
  ck_assert_int_eq(post_callback(e, body), 401);
  free(body);
  count(e, &c);
  ck_assert_msg(!memcmp(&c, &c0, sizeof c), "a refused callback changed the counts");

  /* an unknown requestId with a known device's ids: its chunk has its own requestId */
  body = callback_body(e, 0, other_id, "Failed", 1, LUSER, LPASS);
  ck_assert_int_eq(post_callback(e, body), 200);
  free(body);
  count(e, &c);
  ck_assert_uint_eq(c.unmatched, c0.unmatched + 1);
  ck_assert_uint_eq(c.callbacks, c0.callbacks);
  ck_assert_uint_eq(c.success, e->n);

  /* a later Failed for the SUCCESS device: stored, its state stays */
  body = callback_body(e, 0, r.request_id, "Failed", 1, LUSER, LPASS);
  ck_assert_int_eq(post_callback(e, body), 200);
  free(body);
  count(e, &c);
  ck_assert_uint_eq(c.callbacks, c0.callbacks + 1);
  ck_assert_uint_eq(c.success, e->n);
  ck_assert_uint_eq(c.failed, 0);
  r = row_of(e, 1);
  ck_assert_str_eq(r.state, "success");
  ck_assert_str_eq(r.status, "SUCCESS");
  ck_assert_uint_eq(r.callbacks, 2);
  /* its redelivery (callbackCount 2, status in another case) is a repeat */
  body = callback_body(e, 0, r.request_id, "FAILED", 2, LUSER, LPASS);
  ck_assert_int_eq(post_callback(e, body), 200);
  free(body);
  count(e, &c);
  ck_assert_uint_eq(c.callbacks, c0.callbacks + 1);
  ck_assert_uint_eq(c.duplicates, c0.duplicates + 1);
  ck_assert_uint_eq(c.unmatched, c0.unmatched + 1);
  ck_assert_uint_eq(row_of(e, 1).callbacks, 2);
  expect_no_repeat(e, "forged");
  env_end(e);
}
END_TEST

/* A listener whose journal cannot grow answers 503, storing nothing it
 * refused; the simulator delivers again, and a normal listener on the same
 * port stores those redeliveries. */
START_TEST(test_full_journal_503) {
  track_env *e = &the_env;
  tsesim_job_counts c;
  long delivered, failed;
  char *body;
  env_start(e, (const char *[]){"--redelivery-interval", "1", NULL}, 300, 7000000, 0);
  /* the connection the listener opens may not grow the file (SQLite keeps
   * max_page_count at least the current size) */
  tsesim__test_journal_open_sql = "PRAGMA max_page_count = 1";
  listen_ok(e, 0);
  register_url(e);
  submit(e, 0, TSESIM_OK);
  /* the first round of deliveries: every one attempted, most refused */
  settle(e, (long)e->n, &delivered, &failed);
  ck_assert_msg(failed > (long)e->n / 2, "only %ld of %zu deliveries refused by a full journal",
                failed, e->n);
  /* an unmatched callback must be stored too: 503, and it is not */
  body = callback_body(e, 0, "0b7e3c2a-5d4f-4e1a-9c8b-7a6f5e4d3c2b", "Failed", 1, LUSER, LPASS);
  ck_assert_int_eq(post_callback(e, body), 503);
  free(body);
  unlisten(e);
  tsesim__test_journal_open_sql = NULL;
  listen_ok(e, e->port);
  wait_final(e, 30, &c);
  expect_final(e, &c, "after the full journal");
  ck_assert_uint_eq(c.unmatched, 0);
  ck_assert_int_eq((long)(c.callbacks + c.duplicates), tt_stat(e->s, "callbacks.delivered"));
  tt_stats_expect(e->s, "after the full journal", TT_ST("callbacks.abandoned", 0), NULL);
  ck_assert_int_ge(tt_stat(e->s, "callbacks.failed"), failed);
  expect_rows(e, NULL);
  expect_no_repeat(e, "full journal");
  env_end(e);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("track");
  TCase *tc = tcase_create("track");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, tt_slow(180));
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_25000_duplicated_reordered);
  tcase_add_test(tc, test_callbacks_before_request_id);
  tcase_add_test(tc, test_unknown_chunk_resolved);
  tcase_add_test(tc, test_listener_down_then_up);
  tcase_add_test(tc, test_kill_listener_process);
  tcase_add_test(tc, test_forged_callbacks);
  tcase_add_test(tc, test_full_journal_503);
  return s;
}

TT_MAIN_GLOBAL(suite)
