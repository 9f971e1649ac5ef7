/*
 * check_tracker.c - callbacks into the journal (lib/tracker.c) and what the
 * journal tells of a job (lib/tracker_query.c): matching by requestId and by
 * device ids, unknown chunks resolved, repeats, which status counts,
 * unmatched callbacks, the counts, the devices, the wait (with a writer in
 * another process), a full journal, the migration from version 1, and
 * allocation failures.
 *
 * Callbacks are built from JSON text with tsesim_callback_parse; jobs are
 * recorded as the job layer records them. The tests read the database with
 * connections of their own, through the documented schema.
 */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsesim_test.h"
#include "tt_journal.h"

/* ---- files ---- */

static char dir[64], path[128];

static void tmp_setup(void) {
  tt_journal_dir(dir, path);
  tsesim__test_journal_open_sql = NULL;
}

static void tmp_teardown(void) {
  tsesim__test_journal_open_sql = NULL;
  rm_db(path);
  rmdir(dir);
}

/* ---- direct SQLite access ---- */

/* Waits for the listener's and other writers' locks. */
static sqlite3 *raw_open(const char *p) {
  sqlite3 *db = tt_db_open(p);
  sqlite3_busy_timeout(db, 10000);
  return db;
}

static long long path_int(const char *fmt, ...) TSESIM__PRINTF(1, 2);
static long long path_int(const char *fmt, ...) {
  sqlite3 *db = raw_open(path);
  sqlite3_stmt *st = NULL;
  char q[512];
  long long v;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q, sizeof q, fmt, ap);
  va_end(ap);
  ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s: %s", q,
                sqlite3_errmsg(db));
  ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", q);
  v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* The first n of: job, chunk, device, callback. */
static char *snapshot_n(size_t n) {
  static const char *const q[] = {
      "SELECT * FROM job ORDER BY id", "SELECT * FROM chunk ORDER BY job, seq",
      "SELECT * FROM device ORDER BY job, idx", "SELECT * FROM callback ORDER BY id"};
  sqlite3 *db = raw_open(path);
  char *s = calloc(1, 1);
  size_t i;
  for (i = 0; i < n && i < ARRAY_LEN(q); i++) {
    ck_assert_int_eq(sqlite3_exec(db, q[i], snap_row, &s, NULL), SQLITE_OK);
    s = realloc(s, strlen(s) + 3);
    strcat(s, "--");
  }
  sqlite3_close(db);
  return s;
}

static char *snapshot(void) { return snapshot_n(4); }

/* ---- jobs ---- */

static tsesim_request *make_req(size_t n, unsigned long seed0) {
  tsesim_request *req = NULL;
  size_t i;
  ck_assert_int_eq(tsesim_request_new(&req, "acct"), TSESIM_OK);
  for (i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, seed0 + i);
    ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  }
  return req;
}

static tsesim_journal *jopen(void) {
  tsesim_journal *j = NULL;
  char err[TSESIM_ERRBUF_SIZE] = "";
  tsesim_code rc = tsesim_journal_open(&j, path, err);
  ck_assert_msg(rc == TSESIM_OK, "open %s: %s: %s", path, tsesim_code_name(rc), err);
  return j;
}

/* A job of n devices (seeds seed0..) in chunks of chunk_size. */
static void job(tsesim_journal *j, const char *name, size_t n, unsigned long seed0,
                size_t chunk_size, tsesim__job_rec *rec) {
  tsesim_request *req = make_req(n, seed0);
  tsesim_code rc = tsesim__journal_job_begin(j, name, req, NULL, chunk_size, rec);
  ck_assert_msg(rc == TSESIM_OK, "job_begin %s: %s", name, tsesim_journal_errmsg(j));
  tsesim_request_free(req);
}

static void chunk_set(tsesim_journal *j, const tsesim__job_rec *rec, size_t seq, int state,
                      const char *rid) {
  tsesim__chunk_change c;
  tsesim_code rc;
  memset(&c, 0, sizeof c);
  c.seq = seq;
  c.state = state;
  c.request_id = rid;
  if (state == TSESIM__CHUNK_REFUSED) c.error = "400 \"bad\"";
  if (state == TSESIM__CHUNK_UNKNOWN) c.error = "reset";
  rc = tsesim__journal_chunks_set(j, rec, &c, 1);
  ck_assert_msg(rc == TSESIM_OK, "chunks_set: %s", tsesim_journal_errmsg(j));
}

/* ---- callbacks ---- */

/* The JSON of a callback for device seed: requestId rid, identified by the
 * kinds in which ("e", "i", "m" for eid, iccid, imei, in that order), in
 * deviceIds or (collection) only in deviceIdentifierCollection. status NULL:
 * none; count < 0: no callbackCount. */
static void cb_json(char *out, size_t size, const char *rid, unsigned long seed, const char *which,
                    int collection, const char *status, long count, const char *fault) {
  tt_device d;
  char ids[512] = "", extra[256] = "";
  size_t i;
  tt_device_make(&d, seed);
  for (i = 0; which[i]; i++) {
    const char *kind = which[i] == 'e' ? "Eid" : which[i] == 'i' ? "ICCID" : "imei";
    const char *id = which[i] == 'e' ? d.eid : which[i] == 'i' ? d.iccid : d.imei;
    snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s{\"id\":\"%s\",\"kind\":\"%s\"}",
             i ? "," : "", id, kind);
  }
  if (status)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"status\":\"%s\"", status);
  if (count >= 0)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"callbackCount\":%ld", count);
  if (fault)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
             ",\"faultResponse\":{\"faultcode\":\"%s\",\"faultstring\":\"why %s\"}", fault, fault);
  if (collection)
    snprintf(out, size,
             "{\"requestId\":\"%s\",\"deviceResponse\":{\"deviceProfileResponse\":"
             "{\"deviceIdentifierCollection\":[%s]}}%s}",
             rid, ids, extra);
  else
    snprintf(out, size, "{\"requestId\":\"%s\",\"deviceIds\":[%s]%s}", rid, ids, extra);
}

/* A group of parsed callbacks, stored in one call. */
typedef struct group {
  tsesim__cb_item items[80];
  tsesim_callback *cbs[80];
  char *bodies[80];
  size_t n;
} group;

static void group_add(group *g, const char *json) {
  char err[TSESIM_ERRBUF_SIZE];
  ck_assert_uint_lt(g->n, ARRAY_LEN(g->items));
  ck_assert_msg(tsesim_callback_parse(&g->cbs[g->n], json, strlen(json), err) == TSESIM_OK,
                "%s: %s", json, err);
  g->bodies[g->n] = strdup(json);
  g->items[g->n].cb = g->cbs[g->n];
  g->items[g->n].body = g->bodies[g->n];
  g->items[g->n].len = strlen(json);
  g->n++;
}

static void group_free(group *g) {
  size_t i;
  for (i = 0; i < g->n; i++) {
    tsesim_callback_free(g->cbs[i]);
    free(g->bodies[i]);
  }
  g->n = 0;
}

/* Stores one callback and checks its result: repeat, job (NULL:
 * unmatched), line and state. */
static void store(tsesim_journal *j, const char *rid, unsigned long seed, const char *which,
                  int collection, const char *status, long count, int repeat, const char *jobname,
                  unsigned long line, const char *state) {
  group g;
  char json[1024];
  tsesim_code rc;
  memset(&g, 0, sizeof g);
  cb_json(json, sizeof json, rid, seed, which, collection, status, count, NULL);
  group_add(&g, json);
  rc = tsesim__journal_callbacks_store(j, g.items, 1);
  ck_assert_msg(rc == TSESIM_OK, "%s: %s", json, tsesim_journal_errmsg(j));
  ck_assert_int_eq(g.items[0].result.repeat, repeat);
  if (jobname) {
    ck_assert_pstr_eq(g.items[0].result.job, jobname);
    ck_assert_uint_eq(g.items[0].result.line, line);
    ck_assert_pstr_eq(g.items[0].result.state, state);
  } else {
    ck_assert_ptr_null(g.items[0].result.job);
    ck_assert_uint_eq(g.items[0].result.line, 0);
    ck_assert_ptr_null(g.items[0].result.state);
  }
  group_free(&g);
}

static tsesim_job_counts counts(tsesim_journal *j, const char *name) {
  tsesim_job_counts c;
  tsesim_code rc = tsesim_job_count(j, name, &c);
  ck_assert_msg(rc == TSESIM_OK, "job_count: %s", tsesim_journal_errmsg(j));
  ck_assert_uint_eq(c.devices, c.queued + c.submitted + c.unknown + c.refused + c.warning +
                                   c.success + c.failed + c.invalid);
  return c;
}

/* "q=1 s=2 ..." for the non-zero counts, to compare in one assertion. */
static const char *counts_str(const tsesim_job_counts *c) {
  static char s[256];
  snprintf(s, sizeof s, "d%lu q%lu s%lu u%lu r%lu w%lu ok%lu f%lu i%lu cb%lu dup%lu un%lu",
           (unsigned long)c->devices, (unsigned long)c->queued, (unsigned long)c->submitted,
           (unsigned long)c->unknown, (unsigned long)c->refused, (unsigned long)c->warning,
           (unsigned long)c->success, (unsigned long)c->failed, (unsigned long)c->invalid,
           c->callbacks, c->duplicates, c->unmatched);
  return s;
}

/* One device's row as tsesim_job_devices gives it. */
typedef struct dev_row {
  unsigned long line, callbacks;
  char state[16], rid[64], status[32], fault[32], error[128], eid[40], iccid[24], imei[20];
} dev_row;
typedef struct dev_rows {
  dev_row r[64];
  size_t n, stop_at;
} dev_rows;

static void cp(char *dst, size_t size, const char *s) { snprintf(dst, size, "%s", s ? s : "-"); }

static int collect(const tsesim_device_status *d, void *payload) {
  dev_rows *rows = payload;
  dev_row *r;
  ck_assert_uint_lt(rows->n, ARRAY_LEN(rows->r));
  r = &rows->r[rows->n++];
  r->line = d->line;
  r->callbacks = d->callbacks;
  cp(r->state, sizeof r->state, d->state);
  cp(r->rid, sizeof r->rid, d->request_id);
  cp(r->status, sizeof r->status, d->status);
  cp(r->fault, sizeof r->fault, d->fault);
  cp(r->error, sizeof r->error, d->error);
  cp(r->eid, sizeof r->eid, d->eid);
  cp(r->iccid, sizeof r->iccid, d->iccid);
  cp(r->imei, sizeof r->imei, d->imei);
  return rows->stop_at && rows->n == rows->stop_at;
}

static void devices(tsesim_journal *j, const char *name, dev_rows *rows) {
  tsesim_code rc;
  memset(rows, 0, sizeof *rows);
  rc = tsesim_job_devices(j, name, collect, rows);
  ck_assert_msg(rc == TSESIM_OK, "job_devices: %s", tsesim_journal_errmsg(j));
}

/* The states of every device, one letter each: q u r s w S F i. */
static const char *states(tsesim_journal *j) {
  static char s[65];
  dev_rows rows;
  size_t i;
  devices(j, NULL, &rows);
  for (i = 0; i < rows.n; i++) {
    const char *st = rows.r[i].state;
    s[i] = strcmp(st, "success") == 0   ? 'S'
           : strcmp(st, "failed") == 0  ? 'F'
           : strcmp(st, "invalid") == 0 ? 'i'
                                        : st[0];
  }
  s[i] = '\0';
  return s;
}

/* ---- matching ---- */

/* A recorded requestId: matched within its chunk, by eid. */
START_TEST(test_match_recorded) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  job(j, "a", 4, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_SENDING, NULL);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  ck_assert_str_eq(states(j), "ssqq");
  store(j, "R0", 2, "eim", 0, "SUCCESS", 1, 0, "a", 2, "success");
  ck_assert_str_eq(states(j), "sSqq");
  c = counts(j, "a");
  ck_assert_str_eq(counts_str(&c), "d4 q2 s1 u0 r0 w0 ok1 f0 i0 cb1 dup0 un0");
  ck_assert_int_eq(path_int("SELECT count(*) FROM callback WHERE job = 1 AND idx = 1"), 1);
  tsesim_journal_close(j);
}
END_TEST

/* A callback before the requestId: the chunk is being sent; the callback
 * gives it its requestId, then the job's own "accepted" (same requestId)
 * changes nothing. */
START_TEST(test_match_before_request_id) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  dev_rows rows;
  job(j, "a", 4, 1, 2, &rec);
  chunk_set(j, &rec, 1, TSESIM__CHUNK_SENDING, NULL);
  ck_assert_str_eq(states(j), "qquu");
  store(j, "R1", 4, "e", 0, "Warning", 1, 0, "a", 4, "warning");
  ck_assert_str_eq(states(j), "qqsw");
  devices(j, NULL, &rows);
  ck_assert_str_eq(rows.r[2].rid, "R1");
  ck_assert_str_eq(rows.r[3].status, "Warning");
  chunk_set(j, &rec, 1, TSESIM__CHUNK_ACCEPTED, "R1");
  ck_assert_str_eq(states(j), "qqsw");
  /* the second device now matches by the recorded requestId */
  store(j, "R1", 3, "e", 0, "Failed", 1, 0, "a", 3, "failed");
  c = counts(j, NULL);
  ck_assert_str_eq(counts_str(&c), "d4 q2 s0 u0 r0 w1 ok0 f1 i0 cb2 dup0 un0");
  tsesim_journal_close(j);
}
END_TEST

/* An unknown chunk resolved by a callback: accepted with its requestId, its
 * other devices submitted; then the job's late answers do not undo it. */
START_TEST(test_unknown_resolved) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  job(j, "a", 6, 1, 3, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_SENDING, NULL);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_UNKNOWN, NULL);
  c = counts(j, NULL);
  ck_assert_str_eq(counts_str(&c), "d6 q3 s0 u3 r0 w0 ok0 f0 i0 cb0 dup0 un0");
  store(j, "RU", 2, "e", 0, "In progress", 1, 0, "a", 2, "submitted");
  ck_assert_str_eq(states(j), "sssqqq");
  ck_assert_int_eq(path_int("SELECT count(*) FROM chunk WHERE seq = 0 AND state = 'accepted' "
                            "AND request_id = 'RU' AND error IS NULL"),
                   1);
  /* the job's answers, late: none of them undoes the requestId */
  chunk_set(j, &rec, 0, TSESIM__CHUNK_UNKNOWN, NULL);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_QUEUED, NULL);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_REFUSED, NULL);
  ck_assert_str_eq(states(j), "sssqqq");
  ck_assert_int_eq(path_int("SELECT count(*) FROM chunk WHERE seq = 0 AND state = 'accepted' AND "
                            "request_id = 'RU' AND error IS NULL"),
                   1);
  /* a chunk without a requestId still takes them */
  chunk_set(j, &rec, 1, TSESIM__CHUNK_REFUSED, NULL);
  ck_assert_str_eq(states(j), "sssrrr");
  tsesim_journal_close(j);
}
END_TEST

/* The job's "accepted" first, then a callback: no change of requestId. */
START_TEST(test_accepted_then_callback) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  job(j, "a", 2, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "RA");
  store(j, "RA", 1, "e", 0, "SUCCESS", 1, 0, "a", 1, "success");
  chunk_set(j, &rec, 0, TSESIM__CHUNK_UNKNOWN, NULL);
  ck_assert_str_eq(states(j), "Ss");
  ck_assert_int_eq(path_int("SELECT count(*) FROM chunk WHERE request_id = 'RA' AND state = "
                            "'accepted'"),
                   1);
  tsesim_journal_close(j);
}
END_TEST

/* iccid-only, imei-only and collection-only callbacks. */
START_TEST(test_match_other_keys) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  dev_rows rows;
  job(j, "a", 6, 1, 3, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  chunk_set(j, &rec, 1, TSESIM__CHUNK_SENDING, NULL);
  store(j, "R0", 1, "i", 0, "SUCCESS", 1, 0, "a", 1, "success");
  store(j, "R0", 2, "m", 0, "Failed", 1, 0, "a", 2, "failed");
  store(j, "R0", 3, "mi", 1, "SUCCESS", 1, 0, "a", 3, "success");
  /* before the requestId, by imei, through the collection */
  store(j, "R1", 5, "m", 1, "SUCCESS", 1, 0, "a", 5, "success");
  /* iccid wins over imei: the imei is of another device, the iccid of 6 */
  {
    tt_device d6, d4;
    char json[512];
    group g;
    memset(&g, 0, sizeof g);
    tt_device_make(&d6, 6);
    tt_device_make(&d4, 4);
    snprintf(json, sizeof json,
             "{\"requestId\":\"R1\",\"deviceIds\":[{\"id\":\"%s\",\"kind\":\"imei\"},"
             "{\"id\":\"%s\",\"kind\":\"iccid\"}],\"status\":\"SUCCESS\"}",
             d4.imei, d6.iccid);
    group_add(&g, json);
    ck_assert_int_eq(tsesim__journal_callbacks_store(j, g.items, 1), TSESIM_OK);
    ck_assert_uint_eq(g.items[0].result.line, 6);
    group_free(&g);
  }
  ck_assert_str_eq(states(j), "SFSsSS");
  devices(j, NULL, &rows);
  ck_assert_str_eq(rows.r[3].rid, "R1");
  ck_assert_str_eq(rows.r[1].status, "Failed");
  tsesim_journal_close(j);
}
END_TEST

/* ---- repeats and status ---- */

START_TEST(test_repeats) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  dev_rows rows;
  job(j, "a", 2, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  store(j, "R0", 1, "e", 0, "Warning", 1, 0, "a", 1, "warning");
  /* same status in another case, another callbackCount, another key of
   * the same device: a repeat */
  store(j, "R0", 1, "e", 0, "WARNING", 2, 1, "a", 1, "warning");
  store(j, "R0", 1, "i", 0, "warning", 3, 1, "a", 1, "warning");
  /* another status: not a repeat */
  store(j, "R0", 1, "e", 0, "SUCCESS", 4, 0, "a", 1, "success");
  store(j, "R0", 1, "e", 0, "success", 5, 1, "a", 1, "success");
  c = counts(j, NULL);
  ck_assert_str_eq(counts_str(&c), "d2 q0 s1 u0 r0 w0 ok1 f0 i0 cb2 dup3 un0");
  ck_assert_int_eq(path_int("SELECT count(*) FROM callback"), 2);
  ck_assert_int_eq(path_int("SELECT repeats FROM callback WHERE status = 'Warning'"), 2);
  ck_assert_int_eq(path_int("SELECT callback_count FROM callback WHERE status = 'Warning'"), 1);
  devices(j, NULL, &rows);
  ck_assert_uint_eq(rows.r[0].callbacks, 2);
  ck_assert_str_eq(rows.r[0].status, "SUCCESS");
  tsesim_journal_close(j);
}
END_TEST

/* Within one call, the same callback twice: the second is a repeat. */
START_TEST(test_repeat_in_group) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  group g;
  char json[1024];
  job(j, "a", 2, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_SENDING, NULL);
  memset(&g, 0, sizeof g);
  cb_json(json, sizeof json, "R0", 1, "e", 0, "SUCCESS", 1, NULL);
  group_add(&g, json);
  cb_json(json, sizeof json, "R0", 1, "e", 0, "Success", 2, NULL);
  group_add(&g, json);
  cb_json(json, sizeof json, "R0", 2, "e", 0, "Failed", 1, NULL);
  group_add(&g, json);
  ck_assert_int_eq(tsesim__journal_callbacks_store(j, g.items, g.n), TSESIM_OK);
  ck_assert_int_eq(g.items[0].result.repeat, 0);
  ck_assert_int_eq(g.items[1].result.repeat, 1);
  ck_assert_int_eq(g.items[2].result.repeat, 0);
  ck_assert_pstr_eq(g.items[2].result.state, "failed");
  ck_assert_pstr_eq(g.items[0].result.job, "a");
  group_free(&g);
  ck_assert_str_eq(states(j), "SF");
  ck_assert_int_eq(path_int("SELECT duplicates FROM job"), 1);
  tsesim_journal_close(j);
}
END_TEST

/* Warning, then SUCCESS, then Failed: SUCCESS kept, three stored. */
START_TEST(test_first_final_kept) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  dev_rows rows;
  group g;
  char json[1024];
  job(j, "a", 1, 1, 1, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  memset(&g, 0, sizeof g);
  cb_json(json, sizeof json, "R0", 1, "e", 0, "Warning", 1, "W1");
  group_add(&g, json);
  ck_assert_int_eq(tsesim__journal_callbacks_store(j, g.items, 1), TSESIM_OK);
  group_free(&g);
  devices(j, NULL, &rows);
  ck_assert_str_eq(rows.r[0].state, "warning");
  ck_assert_str_eq(rows.r[0].fault, "W1");
  store(j, "R0", 1, "e", 0, "SUCCESS", 2, 0, "a", 1, "success");
  store(j, "R0", 1, "e", 0, "Failed", 3, 0, "a", 1, "success");
  store(j, "R0", 1, "e", 0, "Warning2", 4, 0, "a", 1, "success");
  devices(j, NULL, &rows);
  ck_assert_str_eq(rows.r[0].state, "success");
  ck_assert_str_eq(rows.r[0].status, "SUCCESS");
  ck_assert_str_eq(rows.r[0].fault, "-");
  ck_assert_uint_eq(rows.r[0].callbacks, 4);
  ck_assert_int_eq(path_int("SELECT count(*) FROM callback WHERE job = 1"), 4);
  c = counts(j, NULL);
  ck_assert_str_eq(counts_str(&c), "d1 q0 s0 u0 r0 w0 ok1 f0 i0 cb4 dup0 un0");
  tsesim_journal_close(j);
}
END_TEST

/* A status that is neither Warning nor final changes nothing, even after
 * a Warning. */
START_TEST(test_other_status) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  dev_rows rows;
  job(j, "a", 1, 1, 1, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  store(j, "R0", 1, "e", 0, "Queued", 1, 0, "a", 1, "submitted");
  store(j, "R0", 1, "e", 0, "Warning", 1, 0, "a", 1, "warning");
  store(j, "R0", 1, "e", 0, NULL, 1, 0, "a", 1, "warning");
  store(j, "R0", 1, "e", 0, NULL, 2, 1, "a", 1, "warning");
  devices(j, NULL, &rows);
  ck_assert_str_eq(rows.r[0].status, "Warning");
  ck_assert_uint_eq(rows.r[0].callbacks, 3);
  tsesim_journal_close(j);
}
END_TEST

/* Unmatched: unknown requestId and eid; a known requestId with the eid of
 * another chunk; no key at all. Stored (with the body), counted, and their
 * repeats stored once. */
START_TEST(test_unmatched) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  char *before, *after;
  job(j, "a", 4, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  chunk_set(j, &rec, 1, TSESIM__CHUNK_UNKNOWN, NULL);
  before = snapshot_n(3);
  store(j, "R0", 3, "e", 0, "SUCCESS", 1, 0, NULL, 0, NULL);  /* eid of the unknown chunk */
  store(j, "RX", 99, "e", 0, "SUCCESS", 1, 0, NULL, 0, NULL); /* nobody's */
  store(j, "RX", 99, "e", 0, "success", 2, 1, NULL, 0, NULL); /* its repeat */
  store(j, "RX", 99, "", 0, "SUCCESS", 1, 0, NULL, 0, NULL);  /* no ids */
  after = snapshot_n(3);                                      /* job, chunk and device unchanged */
  ck_assert_str_eq(after, before);
  free(after);
  free(before);
  c = counts(j, NULL);
  ck_assert_str_eq(counts_str(&c), "d4 q0 s2 u2 r0 w0 ok0 f0 i0 cb0 dup0 un3");
  ck_assert_int_eq(path_int("SELECT count(*) FROM callback WHERE job IS NULL AND body LIKE "
                            "'{\"requestId\":%%'"),
                   3);
  ck_assert_int_eq(path_int("SELECT count(*) FROM callback WHERE kind = 'eid' AND repeats = 1"), 1);
  tsesim_journal_close(j);
}
END_TEST

/* ---- queries ---- */

START_TEST(test_devices_fields) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  dev_rows rows;
  tt_device d;
  job(j, "a", 5, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  chunk_set(j, &rec, 1, TSESIM__CHUNK_REFUSED, NULL);
  chunk_set(j, &rec, 2, TSESIM__CHUNK_SENDING, NULL);
  store(j, "R0", 2, "e", 0, "Failed", 1, 0, "a", 2, "failed");
  devices(j, "a", &rows);
  ck_assert_uint_eq(rows.n, 5);
  tt_device_make(&d, 1);
  ck_assert_uint_eq(rows.r[0].line, 1);
  ck_assert_str_eq(rows.r[0].eid, d.eid);
  ck_assert_str_eq(rows.r[0].iccid, d.iccid);
  ck_assert_str_eq(rows.r[0].imei, d.imei);
  ck_assert_str_eq(rows.r[0].state, "submitted");
  ck_assert_str_eq(rows.r[0].rid, "R0");
  ck_assert_str_eq(rows.r[0].status, "-");
  ck_assert_uint_eq(rows.r[0].callbacks, 0);
  ck_assert_str_eq(rows.r[1].state, "failed");
  ck_assert_str_eq(rows.r[1].status, "Failed");
  ck_assert_uint_eq(rows.r[1].callbacks, 1);
  ck_assert_str_eq(rows.r[2].state, "refused");
  ck_assert_str_eq(rows.r[2].error, "400 \"bad\"");
  ck_assert_str_eq(rows.r[2].rid, "-");
  ck_assert_uint_eq(rows.r[3].line, 4);
  ck_assert_str_eq(rows.r[4].state, "unknown");
  ck_assert_str_eq(rows.r[4].error, "-");
  /* fn stops it */
  memset(&rows, 0, sizeof rows);
  rows.stop_at = 2;
  ck_assert_int_eq(tsesim_job_devices(j, NULL, collect, &rows), TSESIM_OK);
  ck_assert_uint_eq(rows.n, 2);
  tsesim_journal_close(j);
}
END_TEST

START_TEST(test_job_names) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  char want[256];
  ck_assert_int_eq(tsesim_job_count(j, NULL, &c), TSESIM_E_INVAL);
  snprintf(want, sizeof want, "journal %s holds no job; name the job", path);
  ck_assert_str_eq(tsesim_journal_errmsg(j), want);
  job(j, "a", 2, 1, 2, &rec);
  job(j, "b", 3, 10, 2, &rec);
  ck_assert_int_eq(tsesim_job_count(j, NULL, &c), TSESIM_E_INVAL);
  snprintf(want, sizeof want, "journal %s holds several jobs; name the job", path);
  ck_assert_str_eq(tsesim_journal_errmsg(j), want);
  ck_assert_int_eq(tsesim_job_count(j, "x", &c), TSESIM_E_INVAL);
  snprintf(want, sizeof want, "no job \"x\" in journal %s", path);
  ck_assert_str_eq(tsesim_journal_errmsg(j), want);
  ck_assert_uint_eq(c.devices, 0);
  c = counts(j, "b");
  ck_assert_uint_eq(c.devices, 3);
  /* a callback to job b's device: result names b */
  chunk_set(j, &rec, 1, TSESIM__CHUNK_SENDING, NULL);
  store(j, "RB", 12, "e", 0, "SUCCESS", 1, 0, "b", 3, "success");
  ck_assert_int_eq(tsesim_job_count(NULL, "a", &c), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_job_count(j, "a", NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_job_devices(j, "a", NULL, NULL), TSESIM_E_INVAL);
  tsesim_journal_close(j);
}
END_TEST

/* ---- a full journal ---- */

START_TEST(test_full_journal) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  group g;
  char json[1024], *before, *after;
  unsigned long i;
  long long pages;
  tsesim_code rc = TSESIM_OK;
  job(j, "a", 60, 1, 60, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  tsesim_journal_close(j);
  pages = path_int("PRAGMA page_count");
  {
    static char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", pages);
    tsesim__test_journal_open_sql = sql;
    j = jopen();
  }
  before = snapshot();
  /* groups of 20 unmatched callbacks with long bodies until one fails */
  for (i = 0; i < 200 && rc == TSESIM_OK; i++) {
    unsigned long k;
    memset(&g, 0, sizeof g);
    for (k = 0; k < 20; k++) {
      char big[1100];
      memset(big, 'x', sizeof big - 1);
      big[sizeof big - 1] = '\0';
      snprintf(json, sizeof json, "{\"requestId\":\"U%lu-%lu\",\"pad\":\"%.900s\"}", i, k, big);
      group_add(&g, json);
    }
    /* and a real one, so a failure must undo it */
    cb_json(json, sizeof json, "R0", 1 + i % 60, "e", 0, "SUCCESS", 1, NULL);
    group_add(&g, json);
    rc = tsesim__journal_callbacks_store(j, g.items, g.n);
    if (rc == TSESIM_OK) {
      free(before);
      before = snapshot();
    }
    group_free(&g);
  }
  ck_assert_int_eq(rc, TSESIM_E_JOURNAL);
  ck_assert_msg(strstr(tsesim_journal_errmsg(j), "database or disk is full") != NULL, "%s",
                tsesim_journal_errmsg(j));
  ck_assert_msg(strncmp(tsesim_journal_errmsg(j), "journal ", 8) == 0, "%s",
                tsesim_journal_errmsg(j));
  after = snapshot();
  ck_assert_str_eq(after, before);
  free(after);
  free(before);
  tsesim_journal_close(j);
}
END_TEST

/* ---- the migration ---- */

static const char schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE job(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " account TEXT NOT NULL, plan TEXT, chunk_size INTEGER NOT NULL,"
    " devices INTEGER NOT NULL, rows INTEGER NOT NULL, fingerprint TEXT NOT NULL,"
    " created TEXT NOT NULL);"
    "CREATE TABLE chunk(job INTEGER NOT NULL REFERENCES job(id), seq INTEGER NOT NULL,"
    " first INTEGER NOT NULL, count INTEGER NOT NULL, state TEXT NOT NULL"
    " CHECK(state IN ('queued','sending','accepted','unknown','refused')),"
    " request_id TEXT, http_status INTEGER, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
    " updated TEXT NOT NULL, PRIMARY KEY(job, seq)) WITHOUT ROWID;"
    "CREATE TABLE device(job INTEGER NOT NULL REFERENCES job(id), idx INTEGER NOT NULL,"
    " line INTEGER NOT NULL, eid TEXT, iccid TEXT, imei TEXT, device INTEGER, chunk INTEGER,"
    " error TEXT, PRIMARY KEY(job, idx)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

START_TEST(test_migrate_v1) {
  sqlite3 *db = raw_open(path);
  tsesim_journal *j;
  tsesim_job_counts c;
  char q[1024];
  tt_device d;
  int i;
  raw_exec(db, "PRAGMA journal_mode = WAL");
  raw_exec(db, schema_v1);
  raw_exec(db,
           "INSERT INTO job VALUES(1, 'old', 'acct', NULL, 2, 3, 4, 'f00', 'now');"
           "INSERT INTO chunk(job, seq, first, count, state, request_id, updated) VALUES"
           " (1, 0, 0, 2, 'accepted', 'R0', 'now'), (1, 1, 2, 1, 'unknown', NULL, 'now')");
  for (i = 0; i < 3; i++) {
    tt_device_make(&d, (unsigned long)i + 1);
    snprintf(q, sizeof q, "INSERT INTO device VALUES(1, %d, %d, '%s', '%s', '%s', %d, %d, NULL)", i,
             i + 2, d.eid, d.iccid, d.imei, i, i / 2);
    raw_exec(db, q);
  }
  raw_exec(db, "INSERT INTO device VALUES(1, 3, 6, NULL, NULL, NULL, NULL, NULL, 'bad row')");
  sqlite3_close(db);

  j = jopen();
  ck_assert_int_eq(path_int("PRAGMA user_version"), 2);
  ck_assert_int_eq(path_int("SELECT count(*) FROM sqlite_master WHERE name IN ("
                            " 'chunk_request', 'callback', 'callback_repeat')"),
                   3);
  c = counts(j, "old");
  ck_assert_str_eq(counts_str(&c), "d4 q0 s2 u1 r0 w0 ok0 f0 i1 cb0 dup0 un0");
  store(j, "R0", 2, "e", 0, "SUCCESS", 1, 0, "old", 3, "success");
  store(j, "R1", 3, "i", 0, "Failed", 1, 0, "old", 4, "failed");
  ck_assert_str_eq(states(j), "sSFi");
  tsesim_journal_close(j);
  /* opened again: still version 2, nothing lost */
  j = jopen();
  ck_assert_str_eq(states(j), "sSFi");
  tsesim_journal_close(j);
}
END_TEST

/* The columns of every table and the indexes, as SQLite reads them back:
 * what a journal's queries can tell apart. */
static void schema_of(const char *p, char *out, size_t size) {
  static const char *const tables[] = {"meta", "job", "chunk", "device", "callback"};
  sqlite3 *db = raw_open(p);
  sqlite3_stmt *st;
  size_t i, len = 0;
  out[0] = '\0';
  for (i = 0; i < ARRAY_LEN(tables); i++) {
    char q[256];
    snprintf(q, sizeof q,
             "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\" || ' ' ||"
             " ifnull(dflt_value, '-') || ' ' || pk, ', ') FROM pragma_table_info('%s')",
             tables[i]);
    ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    len += (size_t)snprintf(out + len, size - len, "%s(%s)\n", tables[i],
                            (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT group_concat(sql, ';') FROM (SELECT sql FROM"
                                      " sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                                      " ORDER BY name)",
                                      -1, &st, NULL),
                   SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  snprintf(out + len, size - len, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  /* the CHECK on device.outcome holds in both */
  ck_assert_int_ne(sqlite3_exec(db,
                                "INSERT INTO device(job, idx, line, outcome) VALUES(77, 0, 1,"
                                " 'bogus')",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
}

/* A new journal is made as version 2 in one go; a version 1 journal is
 * migrated: both end with the same tables, columns and indexes. */
START_TEST(test_new_equals_migrated) {
  static char made[4096], migrated[4096];
  tsesim_journal *j;
  sqlite3 *db;
  j = jopen();
  tsesim_journal_close(j);
  schema_of(path, made, sizeof made);
  rm_db(path);
  db = raw_open(path);
  raw_exec(db, "PRAGMA journal_mode = WAL");
  raw_exec(db, schema_v1);
  sqlite3_close(db);
  j = jopen();
  tsesim_journal_close(j);
  schema_of(path, migrated, sizeof migrated);
  ck_assert_str_eq(made, migrated);
  ck_assert_ptr_nonnull(strstr(made, "device(job INTEGER 1 - 1"));
  ck_assert_ptr_nonnull(strstr(made, "callbacks INTEGER 1 0 0)"));
}
END_TEST

#define INDEXES "SELECT count(*) FROM sqlite_master WHERE name GLOB 'device_*'"

/* Recording a job builds no index on the devices: each is made the first
 * time a callback needs it, and kept. */
START_TEST(test_indexes_when_needed) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  job(j, "a", 3, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  ck_assert_int_eq(path_int(INDEXES), 0);
  store(j, "R0", 1, "e", 0, "Warning", 1, 0, "a", 1, "warning");
  ck_assert_int_eq(path_int(INDEXES " AND name = 'device_eid'"), 1);
  ck_assert_int_eq(path_int(INDEXES), 1);
  store(j, "R0", 2, "i", 0, "SUCCESS", 1, 0, "a", 2, "success");
  ck_assert_int_eq(path_int(INDEXES " AND name = 'device_iccid'"), 1);
  ck_assert_int_eq(path_int(INDEXES), 2);
  tsesim_journal_close(j);
  /* a journal opened again finds them made and uses them */
  j = jopen();
  store(j, "R0", 1, "e", 0, "SUCCESS", 2, 0, "a", 1, "success");
  store(j, "R0", 1, "m", 0, "Failed", 1, 0, "a", 1, "success"); /* imei only */
  ck_assert_int_eq(path_int(INDEXES), 3);
  tsesim_journal_close(j);
}
END_TEST

/* ---- the wait ---- */

START_TEST(test_wait_timeout) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  struct timeval t0, t1;
  long ms;
  job(j, "a", 2, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  ck_assert_int_eq(tsesim_job_wait(j, NULL, 0, &c), TSESIM_E_TIMEOUT);
  ck_assert_uint_eq(c.submitted, 2);
  gettimeofday(&t0, NULL);
  ck_assert_int_eq(tsesim_job_wait(j, NULL, 300, &c), TSESIM_E_TIMEOUT);
  gettimeofday(&t1, NULL);
  ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
  ck_assert_int_ge(ms, 290);
  ck_assert_int_lt(ms, 2000);
  ck_assert_uint_eq(c.submitted, 2);
  tsesim_journal_close(j);
}
END_TEST

/* Another process stores the callbacks, one every 100 ms; the wait ends
 * when the last is in. */
START_TEST(test_wait_other_process) {
  tsesim_journal *j = jopen();
  tsesim__job_rec rec;
  tsesim_job_counts c;
  struct timeval t0, t1;
  pid_t pid;
  int status;
  long ms;
  job(j, "a", 4, 1, 2, &rec);
  chunk_set(j, &rec, 0, TSESIM__CHUNK_ACCEPTED, "R0");
  chunk_set(j, &rec, 1, TSESIM__CHUNK_UNKNOWN, NULL);
  /* no connection is carried across fork() (SQLite forbids it) */
  tsesim_journal_close(j);
  gettimeofday(&t0, NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    tsesim_journal *w = NULL;
    unsigned long seed;
    static const char *const st[] = {"SUCCESS", "Failed", "Warning", "SUCCESS", "SUCCESS"};
    static const unsigned long seeds[] = {1, 2, 3, 4, 3};
    if (tsesim_journal_open(&w, path, NULL) != TSESIM_OK) _exit(2);
    for (seed = 0; seed < 5; seed++) {
      char json[1024];
      tsesim_callback *cb = NULL;
      tsesim__cb_item it;
      usleep(100000);
      cb_json(json, sizeof json, seed < 2 ? "R0" : "R1", seeds[seed], "e", 0, st[seed], 1, NULL);
      if (tsesim_callback_parse(&cb, json, strlen(json), NULL) != TSESIM_OK) _exit(3);
      memset(&it, 0, sizeof it);
      it.cb = cb;
      if (tsesim__journal_callbacks_store(w, &it, 1) != TSESIM_OK) _exit(4);
      tsesim_callback_free(cb);
    }
    tsesim_journal_close(w);
    _exit(0);
  }
  j = jopen();
  ck_assert_int_eq(tsesim_job_wait(j, NULL, 10000, &c), TSESIM_OK);
  gettimeofday(&t1, NULL);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer: status %d", status);
  ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
  ck_assert_int_ge(ms, 450);
  ck_assert_int_lt(ms, 3000);
  ck_assert_str_eq(counts_str(&c), "d4 q0 s0 u0 r0 w0 ok3 f1 i0 cb5 dup0 un0");
  tsesim_journal_close(j);
}
END_TEST

/* ---- allocation failures ---- */

START_TEST(test_alloc_store) {
  unsigned long n;
  int failed_some = 0;
  for (n = 1; n < 1000; n++) {
    tsesim_journal *j = NULL;
    tsesim__job_rec rec;
    tsesim_job_counts c;
    dev_rows rows;
    group g;
    char json[1024];
    tsesim_code rc;
    int failed;
    rm_db(path);
    j = jopen();
    job(j, "a", 3, 1, 2, &rec);
    chunk_set(j, &rec, 0, TSESIM__CHUNK_SENDING, NULL);
    memset(&g, 0, sizeof g);
    cb_json(json, sizeof json, "R0", 1, "e", 0, "SUCCESS", 1, NULL);
    group_add(&g, json);
    cb_json(json, sizeof json, "RX", 9, "e", 0, "SUCCESS", 1, NULL);
    group_add(&g, json);
    tt_alloc_arm(n);
    rc = tsesim__journal_callbacks_store(j, g.items, g.n);
    if (rc == TSESIM_OK) rc = tsesim_job_count(j, NULL, &c);
    if (rc == TSESIM_OK) {
      memset(&rows, 0, sizeof rows);
      rc = tsesim_job_devices(j, NULL, collect, &rows);
    }
    if (rc == TSESIM_OK) rc = tsesim_job_wait(j, NULL, 0, &c);
    failed = tt_alloc_disarm();
    group_free(&g);
    if (!failed) {
      ck_assert_int_eq(rc, TSESIM_E_TIMEOUT); /* device 2 still submitted */
      tsesim_journal_close(j);
      break;
    }
    failed_some = 1;
    ck_assert_msg(rc == TSESIM_E_NOMEM, "allocation %lu: %s: %s", n, tsesim_code_name(rc),
                  tsesim_journal_errmsg(j));
    tsesim_journal_close(j);
    /* stored whole or not at all */
    ck_assert_int_eq(path_int("SELECT count(*) FROM callback") == 0 ||
                         path_int("SELECT count(*) FROM callback") == 2,
                     1);
  }
  ck_assert_int_eq(failed_some, 1);
  ck_assert_uint_lt(n, 1000);
}
END_TEST

static Suite *tracker_suite(void) {
  Suite *s = suite_create("tracker");
  TCase *tc = tcase_create("tracker");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_match_recorded);
  tcase_add_test(tc, test_match_before_request_id);
  tcase_add_test(tc, test_unknown_resolved);
  tcase_add_test(tc, test_accepted_then_callback);
  tcase_add_test(tc, test_match_other_keys);
  tcase_add_test(tc, test_repeats);
  tcase_add_test(tc, test_repeat_in_group);
  tcase_add_test(tc, test_first_final_kept);
  tcase_add_test(tc, test_other_status);
  tcase_add_test(tc, test_unmatched);
  tcase_add_test(tc, test_devices_fields);
  tcase_add_test(tc, test_job_names);
  tcase_add_test(tc, test_full_journal);
  tcase_add_test(tc, test_migrate_v1);
  tcase_add_test(tc, test_new_equals_migrated);
  tcase_add_test(tc, test_indexes_when_needed);
  tcase_add_test(tc, test_wait_timeout);
  tcase_add_test(tc, test_wait_other_process);
  tcase_add_test(tc, test_alloc_store);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(tracker_suite)
