/*
 * check_job_alloc.c - every allocation of libtsesim failed in turn over a
 * small job (6 devices: 3 chunks of 2, 2 in flight) against tools/tsesim-sim
 * with callbacks off, then the job resumed with allocations working.
 *
 * Each run makes its client and its journal (a fresh file) before the
 * failure is armed: their constructors have their own loops
 * (check_client_alloc, check_journal), and made inside the window the first
 * runs would fail them and never reach the job. The client is fresh each
 * run, so its token and login are fetched inside the window, by the job.
 * Each run has its own job name and its own devices (seeds no other run
 * uses), so that the simulator's per-EID count tells, chunk by chunk, what
 * it accepted in this run, and downloads.eids_repeated, asserted 0 at the
 * end, catches any device accepted twice in any run. (With the same devices
 * every run, each new job would send them again by right: the simulator's
 * count could no longer tell a chunk sent twice from a chunk of another run.)
 *
 * A run whose allocation failed must:
 *   - return the code that tsesim_job_submit(3) gives for the states left
 *     in the journal: TSESIM_E_NOMEM while a chunk is queued (and then only
 *     when the failure came before it was sent), else
 *     TSESIM_E_UNKNOWN_OUTCOME while a chunk is unknown, else TSESIM_OK;
 *     never a refused chunk, never a chunk left "sending";
 *   - agree with the simulator: a chunk it accepted is accepted or unknown
 *     in the journal, never queued; a chunk the journal holds accepted was
 *     accepted by it, once; a queued chunk was never accepted;
 *   - leak nothing, and leave a journal that a second submit, with
 *     allocations working, completes: the queued chunks sent and accepted
 *     once, the unknown ones not sent again.
 * Only libtsesim's own allocations fail; SQLite's, jansson's and libcurl's
 * allocators are never replaced.
 */
#include <ctype.h>
#include <sqlite3.h>
#include <unistd.h>

#include "tt_sim.h"

#define MAX_RUNS 3000 /* far more than such a job makes */
#define N_DEVICES 6
#define CHUNK 2
#define N_CHUNKS 3
#define SEEDS_PER_RUN 8

static void no_sleep(long ms, void *payload) {
  (void)ms;
  (void)payload;
}

/* The progress counts always add up to the job's devices. */
static void on_progress(const tsesim_job_progress *p, void *payload) {
  size_t *reports = payload;
  (*reports)++;
  ck_assert_uint_eq(p->devices, N_DEVICES);
  ck_assert_uint_eq(p->chunks, N_CHUNKS);
  ck_assert_uint_eq(p->queued + p->sending + p->accepted + p->unknown + p->refused, p->devices);
}

static tsesim_code submit(tsesim_client *c, tsesim_journal *j, const char *name,
                          const tsesim_request *req, size_t *reports) {
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  o.chunk_size = CHUNK;
  o.in_flight = 2;
  o.progress_fn = on_progress;
  o.progress_payload = reports;
  return tsesim_job_submit(c, j, name, req, &o);
}

/* The job's chunks as the journal holds them, read with SQLite. */
typedef struct chunks {
  char states[N_CHUNKS + 1]; /* "AQU": Queued, Sending, Accepted, Unknown, Refused */
  long attempts[N_CHUNKS];
  char errors[N_CHUNKS][256]; /* "" when NULL */
} chunks;

static void chunks_read(const char *db_path, chunks *out) {
  sqlite3 *db;
  sqlite3_stmt *st;
  size_t n = 0;
  memset(out, 0, sizeof *out);
  ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  ck_assert_int_eq(
      sqlite3_prepare_v2(db, "SELECT state, request_id, attempts, error FROM chunk ORDER BY seq",
                         -1, &st, NULL),
      SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    const char *error = (const char *)sqlite3_column_text(st, 3);
    ck_assert_uint_lt(n, N_CHUNKS);
    /* accepted chunks, and only they, hold a requestId */
    ck_assert_msg((state[0] == 'a') == (sqlite3_column_type(st, 1) != SQLITE_NULL),
                  "chunk %lu: state %s with requestId %s", (unsigned long)n, state,
                  sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "NULL");
    out->attempts[n] = (long)sqlite3_column_int64(st, 2);
    snprintf(out->errors[n], sizeof out->errors[n], "%s", error ? error : "");
    out->states[n++] = (char)toupper((unsigned char)state[0]);
  }
  ck_assert_uint_eq(n, N_CHUNKS);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* How many accepted downloads held each chunk's devices: all of a chunk's
 * devices go in one download, so they must agree. */
static void sim_chunks(const tt_sim *s, const tt_device *d, long out[N_CHUNKS], const char *what,
                       unsigned long n) {
  size_t k, i;
  char path[64];
  for (k = 0; k < N_CHUNKS; k++) {
    for (i = 0; i < CHUNK; i++) {
      json_t *j;
      long v;
      snprintf(path, sizeof path, "/_sim/eids/%s", d[k * CHUNK + i].eid);
      j = tt_sim_get_json(s, path);
      v = tt_stat_of(j, "downloads");
      json_decref(j);
      if (i == 0)
        out[k] = v;
      else
        ck_assert_msg(v == out[k], "%s, run %lu: chunk %lu: devices downloaded %ld and %ld times",
                      what, n, (unsigned long)k, out[k], v);
    }
    ck_assert_msg(out[k] <= 1, "%s, run %lu: chunk %lu accepted %ld times", what, n,
                  (unsigned long)k, out[k]);
  }
}

/* The journal against the simulator, after one submit. */
static void expect_agree(const char *what, unsigned long n, const chunks *ch,
                         const long sim[N_CHUNKS]) {
  size_t k;
  for (k = 0; k < N_CHUNKS; k++) {
    char st = ch->states[k];
    ck_assert_msg(st != 'S' && st != 'R', "%s, run %lu: chunk %lu left %c (chunks %s): %s", what, n,
                  (unsigned long)k, st, ch->states, ch->errors[k]);
    if (sim[k])
      ck_assert_msg(st == 'A' || st == 'U',
                    "%s, run %lu: the simulator accepted chunk %lu, the journal holds %c (%s): %s",
                    what, n, (unsigned long)k, st, ch->states, ch->errors[k]);
    if (st == 'A')
      ck_assert_msg(sim[k] == 1,
                    "%s, run %lu: chunk %lu accepted in the journal, not by the server", what, n,
                    (unsigned long)k);
    if (st == 'Q')
      ck_assert_msg(sim[k] == 0, "%s, run %lu: chunk %lu queued, but the server accepted it", what,
                    n, (unsigned long)k);
    if (st == 'U')
      ck_assert_msg(ch->attempts[k] >= 1,
                    "%s, run %lu: chunk %lu unknown, never recorded as sending: %s", what, n,
                    (unsigned long)k, ch->errors[k]);
  }
}

/* The code tsesim_job_submit(3) gives for the states left: queued first
 * (what left it queued: here only memory), then unknown, then OK. */
static tsesim_code code_for(const char *states) {
  if (strchr(states, 'Q')) return TSESIM_E_NOMEM;
  if (strchr(states, 'U')) return TSESIM_E_UNKNOWN_OUTCOME;
  return TSESIM_OK;
}

static void remove_journal(const char *path) {
  char p[PATH_MAX + 48];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

/* What happens before the job, after the client is made, and the downloads
 * the simulator then receives in a run where no allocation fails. */
static const char *const setups[] = {
    NULL, /* a fresh client: the job fetches the token and logs in */
    /* logged in, and the first download gets 429: a chunk waits and is sent again */
    "{\"faults\":[{\"kind\":\"429\",\"endpoint\":\"download\",\"count\":1,\"retry_after\":0}]}",
    /* logged in, the access token revoked: 401 on the chunks in flight, one new token, replays */
    "{\"access_tokens\":true}",
    /* logged in, the session revoked: SessionToken.Expired, one new login, replays */
    "{\"sessions\":true}",
};

static const long setup_downloads[] = {3, 4, 5, 5};

START_TEST(test_job_alloc) {
  const char *setup = setups[_i];
  tt_sim *s = tt_sim_start((const char *[]){"--no-callbacks", NULL});
  char dir[PATH_MAX], db[PATH_MAX + 32], name[64], what[32];
  unsigned long n, failed_runs = 0, sent_runs = 0, nomem_runs = 0, unknown_runs = 0;
  tt_opts t;
  tt_mkdtemp(dir);
  snprintf(what, sizeof what, "job %d", _i);
  tt_opts_for(&t, s);
  t.o.sleep_fn = no_sleep;
  t.o.backoff_base_ms = 1;
  for (n = 1; n < MAX_RUNS; n++) {
    size_t live0 = tsesim__test_alloc_live(), reports = 0;
    tsesim_client *c = NULL;
    tsesim_journal *j = NULL;
    tsesim_request *req = NULL;
    tt_device d[N_DEVICES];
    chunks ch, after;
    long sim[N_CHUNKS], sim_after[N_CHUNKS];
    long received0;
    tsesim_code rc, want;
    size_t k;
    int failed;

    ck_assert_int_eq(tsesim_request_new(&req, TT_ACCOUNT), TSESIM_OK);
    for (k = 0; k < N_DEVICES; k++) {
      tt_plain_device(&d[k], 100000UL * (unsigned long)(_i + 1) + n * SEEDS_PER_RUN + k);
      ck_assert_int_eq(tsesim_request_add_device(req, d[k].ids, 3), TSESIM_OK);
    }
    ck_assert_int_eq(tsesim_client_new(&c, &t.o), TSESIM_OK);
    snprintf(db, sizeof db, "%s/run-%lu.db", dir, n);
    snprintf(name, sizeof name, "alloc-%d-%lu", _i, n);
    ck_assert_int_eq(tsesim_journal_open(&j, db, NULL), TSESIM_OK);
    if (setup) {
      ck_assert_int_eq(tsesim_client_login(c), TSESIM_OK);
      if (strstr(setup, "\"faults\"") == NULL) {
        tt_resp r;
        tt_req(s, &r, "POST", "/_sim/revoke",
               (const char *[]){"Content-Type: application/json", NULL}, setup);
        tt_expect_status("revoke", &r, 200);
        tt_resp_free(&r);
      } else {
        tt_sim_faults(s, setup);
      }
    }
    received0 = tt_stat(s, "downloads.received");

    tt_alloc_arm(n);
    rc = submit(c, j, name, req, &reports);
    failed = tt_alloc_disarm();

    chunks_read(db, &ch);
    sim_chunks(s, d, sim, what, n);
    expect_agree(what, n, &ch, sim);
    if (!failed) {
      ck_assert_msg(rc == TSESIM_OK && !strcmp(ch.states, "AAA"),
                    "%s, run %lu: no allocation failed, but %s, chunks %s (%s)", what, n,
                    tsesim_code_name(rc), ch.states, tsesim_client_errmsg(c));
      /* the setup did what it says: a retry, or the chunks in flight replayed */
      ck_assert_int_eq(tt_stat(s, "downloads.received") - received0, setup_downloads[_i]);
    } else {
      want = code_for(ch.states);
      ck_assert_msg(rc == want, "%s, run %lu: chunks %s, so %s expected, got %s (%s)", what, n,
                    ch.states, tsesim_code_name(want), tsesim_code_name(rc),
                    tsesim_client_errmsg(c));
      if (rc != TSESIM_OK)
        ck_assert_msg(tsesim_client_errmsg(c)[0] != '\0', "%s, run %lu: %s without errmsg", what, n,
                      tsesim_code_name(rc));
      failed_runs++;
      sent_runs += tt_stat(s, "downloads.received") > received0;
      nomem_runs += rc == TSESIM_E_NOMEM;
      unknown_runs += rc == TSESIM_E_UNKNOWN_OUTCOME;
    }
    ck_assert_msg(reports > 0 || rc == TSESIM_E_NOMEM, "%s, run %lu: %s and no progress report",
                  what, n, tsesim_code_name(rc));

    /* The job resumed with allocations working: the queued chunks sent,
     * once; the unknown ones left alone. */
    rc = submit(c, j, name, req, &reports);
    chunks_read(db, &after);
    sim_chunks(s, d, sim_after, what, n);
    expect_agree(what, n, &after, sim_after);
    ck_assert_msg(rc == code_for(after.states) && !strchr(after.states, 'Q'),
                  "%s, run %lu: resumed from %s: %s, chunks %s (%s)", what, n, ch.states,
                  tsesim_code_name(rc), after.states, tsesim_client_errmsg(c));
    for (k = 0; k < N_CHUNKS; k++) {
      if (ch.states[k] == 'Q')
        ck_assert_msg(after.states[k] == 'A', "%s, run %lu: queued chunk %lu resumed as %c", what,
                      n, (unsigned long)k, after.states[k]);
      else
        ck_assert_msg(after.states[k] == ch.states[k] && sim_after[k] == sim[k],
                      "%s, run %lu: chunk %lu was %c, then %c, sent again", what, n,
                      (unsigned long)k, ch.states[k], after.states[k]);
    }

    tsesim_journal_close(j);
    tsesim_client_free(c);
    tsesim_request_free(req);
    ck_assert_msg(tsesim__test_alloc_live() == live0, "%s, run %lu: %ld bytes leaked", what, n,
                  (long)(tsesim__test_alloc_live() - live0));
    remove_journal(db);
    if (!failed) break;
  }
  ck_assert_uint_gt(n, 1);
  /* The loop reached every part of the job: failures before anything was
   * sent, after a chunk was, and some that left a chunk unknown. */
  ck_assert_msg(nomem_runs > 0 && sent_runs > 0,
                "%s: %lu runs, %lu NOMEM, %lu after sending, %lu unknown", what, n, nomem_runs,
                sent_runs, unknown_runs);
  fprintf(stderr, "%s: %lu runs, %lu failing: %lu NOMEM, %lu after sending, %lu unknown\n", what, n,
          failed_runs, nomem_runs, sent_runs, unknown_runs);
  tt_stats_expect(s, what, TT_ST("downloads.eids_repeated", 0), NULL);
  tt_sim_faults(s, "{\"faults\":[]}");
  tt_rmdir(dir);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("job_alloc");
  TCase *tc = tt_tcase(s, "alloc", 240);
  tcase_add_loop_test(tc, test_job_alloc, 0, (int)ARRAY_LEN(setups));
  return s;
}

TT_MAIN_GLOBAL(suite)
