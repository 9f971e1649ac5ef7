/*
 * check_job.c - jobs (lib/job.c) against tools/tsesim-sim over loopback:
 * chunks in order, several in flight on one multi handle, the per-chunk
 * safety rules (retry only what was certainly not acted on; unknown is
 * never re-sent; refused is kept), one token renewal for every chunk in
 * flight, resume from the journal, and crashes (SIGKILL) in the middle.
 * Every test asserts from the simulator that no EID was accepted twice
 * (downloads.eids_repeated), and reads the journal's own tables with SQLite
 * to see the states it documents (tsesim-journal(5)).
 */
#include <ctype.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsesim_test.h"
#include "tt_sim.h"

/* tsesim-sim's default OAuth client and M2M user */
#define SIM_KEY "sim-key"
#define SIM_SECRET "sim-secret"
#define SIM_USER "sim-user"
#define SIM_PASS "sim-pass"

typedef struct job_env {
  tt_sim *s;
  char dir[PATH_MAX], db[PATH_MAX + 16], url[256];
  tsesim_options o;
  tsesim_client *c;
  tsesim_journal *j;
  tsesim_request *req;
  /* what the progress function saw */
  size_t reports, max_sending, last_accepted, chunk_events;
  char events[4096]; /* "S0 A0 U1 ..." in order */
  /* log lines */
  char log[16384];
  size_t log_len;
  double t0;
} job_env;

static void on_log(int level, const char *line, void *payload) {
  job_env *e = payload;
  int n;
  (void)level;
  n = snprintf(e->log + e->log_len, sizeof e->log - e->log_len, "%.3f %s\n", tt_now() - e->t0,
               line);
  if (n > 0 && e->log_len + (size_t)n < sizeof e->log) e->log_len += (size_t)n;
}

static void on_progress(const tsesim_job_progress *p, void *payload) {
  job_env *e = payload;
  e->reports++;
  if (p->sending > e->max_sending) e->max_sending = p->sending;
  e->last_accepted = p->accepted;
  ck_assert_uint_eq(p->queued + p->sending + p->accepted + p->unknown + p->refused, p->devices);
  if (p->chunk >= 0) {
    size_t n = strlen(e->events);
    e->chunk_events++;
    snprintf(e->events + n, sizeof e->events - n, "%c%ld ", toupper((unsigned char)p->state[0]),
             p->chunk);
    if (!strcmp(p->state, "accepted")) ck_assert_ptr_nonnull(p->request_id);
  }
}

/* A simulator started with args, a client with its default credentials
 * (real time: the job's waits are real), a journal in a temporary
 * directory, and a request of n devices for TT_ACCOUNT. */
static void env_start(job_env *e, const char *const *args, size_t n, unsigned long seed) {
  tt_device d;
  size_t i;
  memset(e, 0, sizeof *e);
  e->t0 = tt_now();
  e->s = tt_sim_start(args);
  tt_mkdtemp(e->dir);
  snprintf(e->db, sizeof e->db, "%s/journal.db", e->dir);
  ck_assert_int_eq(tsesim_options_init(&e->o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  snprintf(e->url, sizeof e->url, "%s/api", e->s->base);
  e->o.base_url = e->url;
  e->o.client_id = SIM_KEY;
  e->o.client_secret = SIM_SECRET;
  e->o.username = SIM_USER;
  e->o.password = SIM_PASS;
  e->o.log_fn = on_log;
  e->o.log_payload = e;
  e->o.log_level = 2;
  e->o.backoff_base_ms = 50;
  ck_assert_int_eq(tsesim_client_new(&e->c, &e->o), TSESIM_OK);
  ck_assert_int_eq(tsesim_journal_open(&e->j, e->db, NULL), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_new(&e->req, TT_ACCOUNT), TSESIM_OK);
  for (i = 0; i < n; i++) {
    tt_plain_device(&d, seed + i);
    ck_assert_int_eq(tsesim_request_add_device(e->req, d.ids, 3), TSESIM_OK);
  }
}

static void env_end(job_env *e) {
  tsesim_client_free(e->c);
  tsesim_journal_close(e->j);
  tsesim_request_free(e->req);
  ck_assert_int_eq(tt_sim_stop(e->s), 0);
  tt_rmdir(e->dir);
}

static tsesim_code submit(job_env *e, const char *name, size_t chunk, unsigned in_flight,
                          int resend_unknown) {
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  o.chunk_size = chunk;
  o.in_flight = in_flight;
  o.resend_unknown = resend_unknown;
  o.progress_fn = on_progress;
  o.progress_payload = e;
  e->events[0] = '\0';
  return tsesim_job_submit(e->c, e->j, name, e->req, &o);
}

static void expect_rc(const char *ctx, tsesim_code got, tsesim_code want, const job_env *e) {
  ck_assert_msg(got == want, "%s: %s, expected %s; errmsg \"%s\"\nlog:\n%s", ctx,
                tsesim_code_name(got), tsesim_code_name(want), tsesim_client_errmsg(e->c), e->log);
}

/* The journal's chunk states, read with SQLite itself: "AAUA..." (Queued,
 * Sending, Accepted, Unknown, Refused) in chunk order. */
static void chunk_states(const char *db_path, char *out, size_t cap) {
  sqlite3 *db;
  sqlite3_stmt *st;
  size_t n = 0;
  ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT state, request_id FROM chunk ORDER BY job, seq",
                                      -1, &st, NULL),
                   SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW && n + 1 < cap) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    out[n++] = (char)toupper((unsigned char)state[0]);
    /* accepted chunks, and only they, hold a requestId */
    ck_assert_msg((state[0] == 'a') == (sqlite3_column_type(st, 1) != SQLITE_NULL),
                  "chunk %lu: state %s with requestId %s", (unsigned long)n - 1, state,
                  sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "NULL");
  }
  out[n] = '\0';
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void expect_chunks(const job_env *e, const char *ctx, const char *want) {
  char got[256];
  chunk_states(e->db, got, sizeof got);
  ck_assert_msg(!strcmp(got, want), "%s: chunk states %s, expected %s\nlog:\n%s", ctx, got, want,
                e->log);
}

/* Nothing downloaded twice: the simulator's per-EID count. */
static void expect_no_repeat(const job_env *e, const char *ctx, long devices) {
  tt_stats_expect(e->s, ctx, TT_ST("downloads.eids_repeated", 0),
                  TT_ST("downloads.devices_accepted", devices), NULL);
}

START_TEST(test_25000_three_chunks) {
  job_env e;
  env_start(&e, (const char *[]){"--no-callbacks", NULL}, 25000, 1);
  expect_rc("25000 devices", submit(&e, "big", 0, 0, 0), TSESIM_OK, &e);
  expect_chunks(&e, "25000 devices", "AAA");
  tt_stats_expect(e.s, "25000 devices", TT_ST("requests.download", 3),
                  TT_ST("downloads.accepted", 3), TT_ST("downloads.eids", 25000),
                  TT_ST("requests.token", 1), TT_ST("requests.login", 1), NULL);
  expect_no_repeat(&e, "25000 devices", 25000);
  ck_assert_uint_eq(e.last_accepted, 25000);
  ck_assert_uint_eq(e.chunk_events, 6); /* sending and accepted, per chunk */
  tt_expect_str("after success", "errmsg", tsesim_client_errmsg(e.c), "");
  /* run again: everything is accepted, nothing is sent */
  expect_rc("again", submit(&e, "big", 0, 0, 0), TSESIM_OK, &e);
  tt_stats_expect(e.s, "again", TT_ST("requests.download", 3), NULL);
  env_end(&e);
}
END_TEST

START_TEST(test_one_device_chunks_eight_in_flight) {
  job_env e;
  env_start(&e, (const char *[]){"--no-callbacks", "--latency-ms", "50", NULL}, 50, 100);
  expect_rc("50 chunks", submit(&e, "small", 1, 8, 0), TSESIM_OK, &e);
  expect_chunks(&e, "50 chunks", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  tt_stats_expect(e.s, "50 chunks", TT_ST("requests.download", 50), TT_ST("downloads.accepted", 50),
                  TT_ST("requests.token", 1), NULL);
  expect_no_repeat(&e, "50 chunks", 50);
  /* they were in flight together, never more than 8 */
  ck_assert_msg(e.max_sending > 1 && e.max_sending <= 8, "at most %lu chunks in flight",
                (unsigned long)e.max_sending);
  env_end(&e);
}
END_TEST

/* Two chunks get 429 with Retry-After 1: they wait, and the others are
 * accepted meanwhile. */
START_TEST(test_429_others_go_on) {
  job_env e;
  const char *retry;
  env_start(&e,
            (const char *[]){"--no-callbacks", "--fault",
                             "429:endpoint=download,every=3,count=2,retry-after=1", NULL},
            60, 200);
  expect_rc("429", submit(&e, "busy", 10, 2, 0), TSESIM_OK, &e);
  expect_chunks(&e, "429", "AAAAAA");
  tt_stats_expect(e.s, "429", TT_ST("requests.download", 8), TT_ST("downloads.accepted", 6),
                  TT_ST("faults.injected", 2), NULL);
  expect_no_repeat(&e, "429", 60);
  /* while the first 429'd chunk waited its second, another was accepted */
  retry = strstr(e.log, ": 429; retrying in 1000 ms");
  ck_assert_msg(retry != NULL, "no retry in the log:\n%s", e.log);
  {
    const char *line = retry, *own, *other;
    char mine[64];
    long seq;
    while (line > e.log && line[-1] != '\n') line--;
    own = strstr(line, "chunk ");
    ck_assert_ptr_nonnull(own);
    seq = strtol(own + 6, NULL, 10);
    snprintf(mine, sizeof mine, "chunk %ld accepted: ", seq);
    own = strstr(retry, mine);
    ck_assert_msg(own != NULL, "chunk %ld never accepted:\n%s", seq, e.log);
    other = strstr(retry, " accepted: ");
    ck_assert_msg(other != NULL && other < own - 10,
                  "no other chunk was accepted while chunk %ld waited:\n%s", seq, e.log);
  }
  env_end(&e);
}
END_TEST

/* The download of chunk 1 is read and acted on, and its connection closed
 * with no answer: that chunk is unknown, never re-sent; the others go on. */
START_TEST(test_close_unknown_not_resent) {
  job_env e;
  env_start(&e,
            (const char *[]){"--no-callbacks", "--fault",
                             "close:endpoint=download,mode=processed,every=2,count=1", NULL},
            40, 300);
  expect_rc("close", submit(&e, "cut", 10, 1, 0), TSESIM_E_UNKNOWN_OUTCOME, &e);
  expect_chunks(&e, "close", "AUAA");
  ck_assert_msg(strstr(tsesim_client_errmsg(e.c), "1 unknown") != NULL, "errmsg \"%s\"",
                tsesim_client_errmsg(e.c));
  tt_stats_expect(e.s, "close", TT_ST("requests.download", 4), TT_ST("downloads.accepted", 4),
                  NULL);
  expect_no_repeat(&e, "close", 40);
  /* resumed: the unknown chunk stays unknown, nothing is sent */
  expect_rc("resume", submit(&e, "cut", 0, 1, 0), TSESIM_E_UNKNOWN_OUTCOME, &e);
  tt_stats_expect(e.s, "resume", TT_ST("requests.download", 4), NULL);
  expect_chunks(&e, "resume", "AUAA");
  env_end(&e);
}
END_TEST

START_TEST(test_503_then_success) {
  job_env e;
  env_start(&e,
            (const char *[]){"--no-callbacks", "--fault",
                             "503:endpoint=download,count=1,retry-after=0", NULL},
            30, 400);
  expect_rc("503", submit(&e, "503", 10, 2, 0), TSESIM_OK, &e);
  expect_chunks(&e, "503", "AAA");
  tt_stats_expect(e.s, "503", TT_ST("requests.download", 4), TT_ST("downloads.accepted", 3), NULL);
  expect_no_repeat(&e, "503", 30);
  env_end(&e);
}
END_TEST

/* 503 on every try of every chunk: they go back to queued, and a later run
 * sends them. */
START_TEST(test_503_stays_queued) {
  job_env e;
  env_start(&e,
            (const char *[]){"--no-callbacks", "--fault",
                             "503:endpoint=download,count=6,retry-after=0", NULL},
            20, 450);
  expect_rc("503 always", submit(&e, "q", 10, 2, 0), TSESIM_E_RATE_LIMITED, &e);
  expect_chunks(&e, "503 always", "QQ");
  tt_stats_expect(e.s, "503 always", TT_ST("requests.download", 6), TT_ST("downloads.accepted", 0),
                  NULL);
  expect_rc("later", submit(&e, "q", 0, 2, 0), TSESIM_OK, &e);
  expect_chunks(&e, "later", "AA");
  expect_no_repeat(&e, "later", 20);
  env_end(&e);
}
END_TEST

/* Access tokens revoked while chunks are in flight: exactly one new token
 * for all of them. */
static job_env *revoke_env;
static void revoke_on_first_accept(const tsesim_job_progress *p, void *payload) {
  on_progress(p, payload);
  if (p->chunk >= 0 && !strcmp(p->state, "accepted") && p->accepted == 10) {
    tt_resp r;
    tt_req(revoke_env->s, &r, "POST", "/_sim/revoke",
           (const char *[]){"Content-Type: application/json", NULL}, "{\"access_tokens\":true}");
    tt_expect_status("revoke", &r, 200);
    tt_resp_free(&r);
  }
}

START_TEST(test_401_one_new_token) {
  job_env e;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  env_start(&e, (const char *[]){"--no-callbacks", "--latency-ms", "100", NULL}, 80, 500);
  revoke_env = &e;
  o.chunk_size = 10;
  o.in_flight = 4;
  o.progress_fn = revoke_on_first_accept;
  o.progress_payload = &e;
  expect_rc("401 mid-job", tsesim_job_submit(e.c, e.j, "renew", e.req, &o), TSESIM_OK, &e);
  expect_chunks(&e, "401 mid-job", "AAAAAAAA");
  tt_stats_expect(e.s, "401 mid-job", TT_ST("requests.token", 2), TT_ST("tokens.issued", 2),
                  TT_ST("requests.login", 1), TT_ST("downloads.accepted", 8), NULL);
  ck_assert_msg(tt_stat(e.s, "requests.download") > 8, "no download was refused with 401:\n%s",
                e.log);
  expect_no_repeat(&e, "401 mid-job", 80);
  env_end(&e);
}
END_TEST

START_TEST(test_refused_login_stops) {
  job_env e;
  env_start(&e, (const char *[]){"--no-callbacks", NULL}, 30, 600);
  tsesim_client_free(e.c);
  e.o.password = "wrong-password";
  ck_assert_int_eq(tsesim_client_new(&e.c, &e.o), TSESIM_OK);
  expect_rc("refused login", submit(&e, "auth", 10, 4, 0), TSESIM_E_AUTH, &e);
  expect_chunks(&e, "refused login", "QQQ");
  tt_stats_expect(e.s, "refused login", TT_ST("requests.login", 1), TT_ST("logins.refused", 1),
                  TT_ST("requests.download", 0), NULL);
  /* and the client remembers: a second run asks nobody */
  expect_rc("again", submit(&e, "auth", 10, 4, 0), TSESIM_E_AUTH, &e);
  tt_stats_expect(e.s, "again", TT_ST("requests.login", 1), TT_ST("requests.download", 0), NULL);
  expect_no_repeat(&e, "refused login", 0);
  env_end(&e);
}
END_TEST

START_TEST(test_name_reused_other_devices) {
  job_env e;
  tt_device d;
  tsesim_request *other = NULL;
  size_t i;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  env_start(&e, (const char *[]){"--no-callbacks", NULL}, 20, 700);
  expect_rc("first", submit(&e, "same", 10, 2, 0), TSESIM_OK, &e);
  ck_assert_int_eq(tsesim_request_new(&other, TT_ACCOUNT), TSESIM_OK);
  for (i = 0; i < 20; i++) {
    tt_plain_device(&d, 700 + i + (i == 7 ? 5000 : 0)); /* one device differs */
    ck_assert_int_eq(tsesim_request_add_device(other, d.ids, 3), TSESIM_OK);
  }
  expect_rc("other devices", tsesim_job_submit(e.c, e.j, "same", other, &o), TSESIM_E_INVAL, &e);
  ck_assert_msg(strstr(tsesim_client_errmsg(e.c), "same") != NULL, "errmsg \"%s\"",
                tsesim_client_errmsg(e.c));
  o.chunk_size = 5;
  expect_rc("other chunk size", tsesim_job_submit(e.c, e.j, "same", e.req, &o), TSESIM_E_INVAL, &e);
  tt_stats_expect(e.s, "nothing sent", TT_ST("requests.download", 2), NULL);
  expect_no_repeat(&e, "reused", 20);
  tsesim_request_free(other);
  env_end(&e);
}
END_TEST

/* ---- recording without sending, and stopping (job options version 2) ---- */

/* tsesim_job_record on a new journal: every device queued, and nobody
 * asked; recording it again is fine; other requests and options are
 * refused with the difference named; a submit then sends it all. */
START_TEST(test_record_sends_nothing) {
  job_env e;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim_job_counts n;
  tsesim_request *other = NULL;
  tt_device d;
  size_t i;
  env_start(&e, (const char *[]){"--no-callbacks", NULL}, 40, 1000);
  o.chunk_size = 10;
  ck_assert_int_eq(tsesim_job_record(e.j, "rec", e.req, &o), TSESIM_OK);
  ck_assert_int_eq(tsesim_job_count(e.j, "rec", &n), TSESIM_OK);
  ck_assert_uint_eq(n.devices, 40);
  ck_assert_uint_eq(n.queued, 40);
  ck_assert_uint_eq(
      n.submitted + n.unknown + n.refused + n.warning + n.success + n.failed + n.invalid, 0);
  expect_chunks(&e, "recorded", "QQQQ");
  ck_assert_int_eq(tsesim_job_record(e.j, "rec", e.req, &o), TSESIM_OK); /* again */
  /* another account, devices, chunk size, options version: refused, named */
  ck_assert_int_eq(tsesim_request_new(&other, "0000999999-00001"), TSESIM_OK);
  for (i = 0; i < 40; i++) {
    tt_plain_device(&d, 1000 + i);
    ck_assert_int_eq(tsesim_request_add_device(other, d.ids, 3), TSESIM_OK);
  }
  ck_assert_int_eq(tsesim_job_record(e.j, "rec", other, &o), TSESIM_E_INVAL);
  ck_assert_msg(strstr(tsesim_journal_errmsg(e.j), "recorded for account") &&
                    strstr(tsesim_journal_errmsg(e.j), "0000999999-00001"),
                "errmsg \"%s\"", tsesim_journal_errmsg(e.j));
  tsesim_request_free(other);
  ck_assert_int_eq(tsesim_request_new(&other, TT_ACCOUNT), TSESIM_OK);
  for (i = 0; i < 40; i++) {
    tt_plain_device(&d, 1000 + i + (i == 12 ? 5000 : 0)); /* line 13 differs */
    ck_assert_int_eq(tsesim_request_add_device(other, d.ids, 3), TSESIM_OK);
  }
  ck_assert_int_eq(tsesim_job_record(e.j, "rec", other, &o), TSESIM_E_INVAL);
  ck_assert_msg(strstr(tsesim_journal_errmsg(e.j), "line 13 differs") != NULL, "errmsg \"%s\"",
                tsesim_journal_errmsg(e.j));
  tsesim_request_free(other);
  o.chunk_size = 20;
  ck_assert_int_eq(tsesim_job_record(e.j, "rec", e.req, &o), TSESIM_E_INVAL);
  tt_expect_str("chunk size", "errmsg", tsesim_journal_errmsg(e.j),
                "job \"rec\" was recorded with chunk size 10, not 20");
  o.chunk_size = 10;
  o.version = 3;
  ck_assert_int_eq(tsesim_job_record(e.j, "rec", e.req, &o), TSESIM_E_INVAL);
  tt_expect_str("version 3", "errmsg", tsesim_journal_errmsg(e.j),
                "job: options version 3: this library knows 1..2");
  /* a submit with version 3 options is refused the same way, sending nothing */
  expect_rc("version 3", tsesim_job_submit(e.c, e.j, "rec", e.req, &o), TSESIM_E_INVAL, &e);
  expect_chunks(&e, "refused", "QQQQ");
  tt_stats_expect(e.s, "recorded", TT_ST("requests.download", 0), TT_ST("requests.token", 0),
                  TT_ST("requests.login", 0), NULL);
  /* the recorded job is the one a submit then sends */
  expect_rc("submit", submit(&e, "rec", 0, 2, 0), TSESIM_OK, &e);
  expect_chunks(&e, "submit", "AAAA");
  tt_stats_expect(e.s, "submit", TT_ST("requests.download", 4), NULL);
  expect_no_repeat(&e, "recorded then submitted", 40);
  env_end(&e);
}
END_TEST

typedef struct stop_state {
  job_env *e;
  volatile sig_atomic_t stop; /* as a signal handler would set it */
  unsigned long asked;
  const char *on; /* the chunk event that sets stop: "S0" */
} stop_state;

static int stop_when_set(void *payload) {
  stop_state *st = payload;
  st->asked++;
  return st->stop != 0;
}

static void stop_progress(const tsesim_job_progress *p, void *payload) {
  stop_state *st = payload;
  char ev[32];
  on_progress(p, st->e);
  snprintf(ev, sizeof ev, "%c%ld", toupper((unsigned char)(p->state ? p->state[0] : '-')),
           p->chunk);
  if (p->chunk >= 0 && !strcmp(ev, st->on)) st->stop = 1;
}

static tsesim_code submit_stoppable(job_env *e, stop_state *st, const char *name, size_t chunk,
                                    unsigned in_flight) {
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  o.chunk_size = chunk;
  o.in_flight = in_flight;
  o.progress_fn = stop_progress;
  o.progress_payload = st;
  o.stop_fn = stop_when_set;
  o.stop_payload = st;
  e->events[0] = '\0';
  return tsesim_job_submit(e->c, e->j, name, e->req, &o);
}

/* stop_fn says stop once chunk 0 has started: chunk 0 finishes (accepted),
 * no other starts, TSESIM_E_CANCELLED; a second submit without stop_fn
 * sends only the other three. */
START_TEST(test_stop_after_first_chunk) {
  job_env e;
  stop_state st;
  tsesim_job_counts n;
  env_start(&e, (const char *[]){"--no-callbacks", "--latency-ms", "200", NULL}, 40, 1100);
  memset(&st, 0, sizeof st);
  st.e = &e;
  st.on = "S0";
  expect_rc("stopped", submit_stoppable(&e, &st, "stop", 10, 1), TSESIM_E_CANCELLED, &e);
  ck_assert_str_eq(e.events, "S0 A0 ");
  ck_assert_uint_ge(st.asked, 2);
  expect_chunks(&e, "stopped", "AQQQ");
  tt_stats_expect(e.s, "stopped", TT_ST("requests.download", 1), TT_ST("downloads.accepted", 1),
                  NULL);
  ck_assert_msg(strstr(tsesim_client_errmsg(e.c), "1 accepted, 0 unknown, 0 refused, 3 queued") &&
                    strstr(tsesim_client_errmsg(e.c), "stopped by its stop_fn"),
                "errmsg \"%s\"", tsesim_client_errmsg(e.c));
  ck_assert_int_eq(tsesim_job_count(e.j, "stop", &n), TSESIM_OK);
  ck_assert_uint_eq(n.submitted, 10);
  ck_assert_uint_eq(n.queued, 30);
  /* the same job without stop_fn: the rest, once */
  expect_rc("rest", submit(&e, "stop", 0, 1, 0), TSESIM_OK, &e);
  ck_assert_str_eq(e.events, "S1 A1 S2 A2 S3 A3 ");
  expect_chunks(&e, "rest", "AAAA");
  tt_stats_expect(e.s, "rest", TT_ST("requests.download", 4), NULL);
  expect_no_repeat(&e, "stopped then resumed", 40);
  env_end(&e);
}
END_TEST

/* Every chunk in flight when it says stop finishes: two of four here. */
START_TEST(test_stop_in_flight_finish) {
  job_env e;
  stop_state st;
  env_start(&e, (const char *[]){"--no-callbacks", "--latency-ms", "300", NULL}, 40, 1200);
  memset(&st, 0, sizeof st);
  st.e = &e;
  st.on = "S1"; /* both first chunks are recorded "sending" in one pass */
  expect_rc("stopped", submit_stoppable(&e, &st, "two", 10, 2), TSESIM_E_CANCELLED, &e);
  expect_chunks(&e, "stopped", "AAQQ");
  tt_stats_expect(e.s, "stopped", TT_ST("requests.download", 2), TT_ST("downloads.accepted", 2),
                  NULL);
  expect_rc("rest", submit(&e, "two", 0, 2, 0), TSESIM_OK, &e);
  expect_chunks(&e, "rest", "AAAA");
  expect_no_repeat(&e, "two in flight", 40);
  env_end(&e);
}
END_TEST

/* A stop_fn that says stop from the start: nothing is sent, every chunk
 * stays queued, TSESIM_E_CANCELLED. Options version 1 never read stop_fn. */
static int always_stop(void *payload) {
  (*(unsigned long *)payload)++;
  return 1;
}

START_TEST(test_stop_at_once_and_version_1) {
  job_env e;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  unsigned long asked = 0;
  env_start(&e, (const char *[]){"--no-callbacks", NULL}, 30, 1300);
  o.chunk_size = 10;
  o.stop_fn = always_stop;
  o.stop_payload = &asked;
  expect_rc("at once", tsesim_job_submit(e.c, e.j, "v", e.req, &o), TSESIM_E_CANCELLED, &e);
  ck_assert_uint_ge(asked, 1);
  expect_chunks(&e, "at once", "QQQ");
  tt_stats_expect(e.s, "at once", TT_ST("requests.download", 0), TT_ST("requests.login", 0),
                  TT_ST("requests.token", 0), NULL);
  /* version 1 options: the fields after progress_payload are not read */
  asked = 0;
  o.version = 1;
  expect_rc("version 1", tsesim_job_submit(e.c, e.j, "v", e.req, &o), TSESIM_OK, &e);
  ck_assert_uint_eq(asked, 0);
  expect_chunks(&e, "version 1", "AAA");
  expect_no_repeat(&e, "version 1", 30);
  env_end(&e);
}
END_TEST

/* A chunk waiting to be sent again (429, Retry-After 2) when it says stop
 * goes back to queued, is not sent again, and the job is cancelled, not
 * rate limited: it was queued by the stop. */
static stop_state *log_stop;
static void stop_on_retry_log(int level, const char *line, void *payload) {
  on_log(level, line, payload);
  if (strstr(line, "retrying in")) log_stop->stop = 1;
}

START_TEST(test_stop_while_waiting_to_retry) {
  job_env e;
  stop_state st;
  env_start(&e,
            (const char *[]){"--no-callbacks", "--fault",
                             "429:endpoint=download,count=1,retry-after=2", NULL},
            20, 1400);
  tsesim_client_free(e.c);
  memset(&st, 0, sizeof st);
  st.e = &e;
  st.on = "none";
  log_stop = &st;
  e.o.log_fn = stop_on_retry_log;
  ck_assert_int_eq(tsesim_client_new(&e.c, &e.o), TSESIM_OK);
  expect_rc("stopped", submit_stoppable(&e, &st, "w", 10, 1), TSESIM_E_CANCELLED, &e);
  ck_assert_str_eq(e.events, "S0 Q0 ");
  expect_chunks(&e, "stopped", "QQ");
  tt_stats_expect(e.s, "stopped", TT_ST("requests.download", 1), TT_ST("downloads.accepted", 0),
                  NULL);
  ck_assert_msg(strstr(e.log, "not sent again: the job stopped") != NULL, "log:\n%s", e.log);
  expect_rc("rest", submit(&e, "w", 0, 1, 0), TSESIM_OK, &e);
  expect_chunks(&e, "rest", "AA");
  expect_no_repeat(&e, "stopped while waiting", 20);
  env_end(&e);
}
END_TEST

/* ---- crashes ---- */

/* The child: a 10-chunk job, then exit with its result code. */
static void child_job(job_env *e, int resend_unknown) {
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim_journal *j = NULL;
  o.chunk_size = 10;
  o.in_flight = 1;
  o.resend_unknown = resend_unknown;
  if (tsesim_journal_open(&j, e->db, NULL) != TSESIM_OK) _exit(100);
  _exit((int)tsesim_job_submit(e->c, j, "crash", e->req, &o));
}

static void kill_self_at_3(size_t seq) {
  if (seq == 3) raise(SIGKILL);
}

static void expect_killed(pid_t pid) {
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
}

/* Killed while the simulator holds chunk 3's whole request and has not
 * answered it (its latency): on resume that chunk is unknown and is not
 * sent again, and the rest are accepted. */
START_TEST(test_kill_while_server_holds_request) {
  job_env e;
  pid_t pid;
  env_start(&e, (const char *[]){"--no-callbacks", "--latency-ms", "1500", NULL}, 100, 800);
  tsesim_journal_close(e.j);
  e.j = NULL;
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) child_job(&e, 0);
  /* the moment: the simulator has received chunk 3's body (the 4th download) */
  ck_assert_int_eq(tt_stat_wait(e.s, "downloads.received", 4, tt_slow(60)), 4);
  kill(pid, SIGKILL);
  expect_killed(pid);
  tt_sim_faults(e.s, "{\"latency_ms\":0}");
  ck_assert_int_eq(tt_stat_wait(e.s, "downloads.accepted", 4, tt_slow(10)), 4);
  ck_assert_int_eq(tsesim_journal_open(&e.j, e.db, NULL), TSESIM_OK);
  expect_rc("resume", submit(&e, "crash", 0, 1, 0), TSESIM_E_UNKNOWN_OUTCOME, &e);
  expect_chunks(&e, "resume", "AAAUAAAAAA");
  tt_stats_expect(e.s, "resume", TT_ST("downloads.received", 10), TT_ST("downloads.accepted", 10),
                  NULL);
  expect_no_repeat(&e, "kill -9 while held", 100);
  env_end(&e);
}
END_TEST

/* Killed after chunk 3's "sending" is committed and before its download
 * leaves: unknown on resume; "resend unknown" then sends it, once. */
START_TEST(test_kill_after_sending_committed) {
  job_env e;
  pid_t pid;
  env_start(&e, (const char *[]){"--no-callbacks", NULL}, 100, 900);
  tsesim_journal_close(e.j);
  e.j = NULL;
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    tsesim__test_job_sending_hook(kill_self_at_3);
    child_job(&e, 0);
  }
  expect_killed(pid);
  tt_stats_expect(e.s, "killed", TT_ST("downloads.received", 3), NULL);
  expect_chunks(&e, "killed", "AAASQQQQQQ");
  ck_assert_int_eq(tsesim_journal_open(&e.j, e.db, NULL), TSESIM_OK);
  expect_rc("resume", submit(&e, "crash", 0, 1, 0), TSESIM_E_UNKNOWN_OUTCOME, &e);
  expect_chunks(&e, "resume", "AAAUAAAAAA");
  tt_stats_expect(e.s, "resume", TT_ST("downloads.received", 9), NULL);
  expect_rc("resend unknown", submit(&e, "crash", 0, 1, 1), TSESIM_OK, &e);
  expect_chunks(&e, "resend unknown", "AAAAAAAAAA");
  tt_stats_expect(e.s, "resend unknown", TT_ST("downloads.received", 10),
                  TT_ST("downloads.accepted", 10), NULL);
  expect_no_repeat(&e, "resend unknown", 100);
  env_end(&e);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("job");
  TCase *tc = tcase_create("job");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_25000_three_chunks);
  tcase_add_test(tc, test_one_device_chunks_eight_in_flight);
  tcase_add_test(tc, test_429_others_go_on);
  tcase_add_test(tc, test_close_unknown_not_resent);
  tcase_add_test(tc, test_503_then_success);
  tcase_add_test(tc, test_503_stays_queued);
  tcase_add_test(tc, test_401_one_new_token);
  tcase_add_test(tc, test_refused_login_stops);
  tcase_add_test(tc, test_name_reused_other_devices);
  tcase_add_test(tc, test_record_sends_nothing);
  tcase_add_test(tc, test_stop_after_first_chunk);
  tcase_add_test(tc, test_stop_in_flight_finish);
  tcase_add_test(tc, test_stop_at_once_and_version_1);
  tcase_add_test(tc, test_stop_while_waiting_to_retry);
  tcase_add_test(tc, test_kill_while_server_holds_request);
  tcase_add_test(tc, test_kill_after_sending_committed);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN_GLOBAL(suite)
