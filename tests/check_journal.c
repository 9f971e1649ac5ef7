/*
 * check_journal.c - the SQLite journal (lib/journal.c): the file it makes
 * (mode, WAL, synchronous, schema version, the documented tables), what it
 * refuses to open, recording a job and finding it again, each kind of
 * mismatch, chunks cut off while being sent, chunk changes and attempts,
 * rollback when SQLite fails half-way or the database is locked, our
 * allocations and SQLite's failing one by one, and a million devices.
 *
 * The tests read the database with connections of their own, through the
 * documented schema (tsesim-journal(5)), as a user with sqlite3 would.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "tsesim_test.h"
#include "tt_journal.h"

#define CUT_OFF "interrupted while being sent (the process ended)"

/* ---- files ---- */

static char dir[64], path[128];

/* A fresh directory (tests/tmp-journal-XXXXXX) and path = DIR/j.db. */
static void tmp_setup(void) { tt_journal_dir(dir, path); }

static void tmp_teardown(void) {
  char f[160];
  rm_db(path);
  snprintf(f, sizeof f, "%s/link.db", dir);
  unlink(f);
  snprintf(f, sizeof f, "%s/other.db", dir);
  rm_db(f);
  rmdir(dir);
}

static unsigned file_mode(const char *p) {
  struct stat st;
  ck_assert_msg(stat(p, &st) == 0, "stat %s: %s", p, strerror(errno));
  return (unsigned)(st.st_mode & 07777);
}

/* ---- direct SQLite access, as a user's sqlite3 ---- */

static sqlite3 *raw_open(const char *p) { return tt_db_open(p); }

static long long q_int(sqlite3 *db, const char *q) {
  sqlite3_stmt *st = NULL;
  long long v;
  ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s: %s", q,
                sqlite3_errmsg(db));
  ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row: %s", q, sqlite3_errmsg(db));
  v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* The first column of the first row as text ("(null)" for NULL), in buf. */
static const char *q_text(sqlite3 *db, const char *q, char *buf, size_t size) {
  sqlite3_stmt *st = NULL;
  const unsigned char *t;
  ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s: %s", q,
                sqlite3_errmsg(db));
  ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row: %s", q, sqlite3_errmsg(db));
  t = sqlite3_column_text(st, 0);
  snprintf(buf, size, "%s", t ? (const char *)t : "(null)");
  sqlite3_finalize(st);
  return buf;
}

static long long path_int(const char *q) {
  sqlite3 *db = raw_open(path);
  long long v = q_int(db, q);
  sqlite3_close(db);
  return v;
}

static void path_text(const char *q, char *buf, size_t size) {
  sqlite3 *db = raw_open(path);
  q_text(db, q, buf, size);
  sqlite3_close(db);
}

/* Every row of every table, in order, as one string: equal snapshots mean
 * nothing changed (chunk.updated included). Caller frees. */
static char *snapshot(void) {
  static const char *const q[] = {
      "SELECT * FROM meta ORDER BY key", "SELECT * FROM job ORDER BY id",
      "SELECT * FROM chunk ORDER BY job, seq", "SELECT * FROM device ORDER BY job, idx"};
  sqlite3 *db = raw_open(path);
  char *s = calloc(1, 1);
  size_t i;
  for (i = 0; i < ARRAY_LEN(q); i++) {
    ck_assert_int_eq(sqlite3_exec(db, q[i], snap_row, &s, NULL), SQLITE_OK);
    s = realloc(s, strlen(s) + 3);
    strcat(s, "--");
  }
  sqlite3_close(db);
  return s;
}

/* The column names of a table, comma-separated, from PRAGMA table_info. */
static void columns(sqlite3 *db, const char *table, char *out, size_t size) {
  char q[128];
  sqlite3_stmt *st = NULL;
  out[0] = '\0';
  snprintf(q, sizeof q, "PRAGMA table_info(%s)", table);
  ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (out[0]) strncat(out, ",", size - strlen(out) - 1);
    strncat(out, (const char *)sqlite3_column_text(st, 1), size - strlen(out) - 1);
  }
  sqlite3_finalize(st);
}

/* ---- requests and journals ---- */

/* A request for account with plan (NULL: none) and the devices of seeds
 * seed0 .. seed0 + n - 1. */
static tsesim_request *make_req_from(const char *account, const char *plan, size_t n,
                                     unsigned long seed0) {
  tsesim_request *req = NULL;
  size_t i;
  ck_assert_int_eq(tsesim_request_new(&req, account), TSESIM_OK);
  if (plan) ck_assert_int_eq(tsesim_request_set_service_plan(req, plan), TSESIM_OK);
  for (i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, seed0 + i);
    ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  }
  return req;
}

static tsesim_request *make_req(const char *account, const char *plan, size_t n) {
  return make_req_from(account, plan, n, 1);
}

static tsesim_journal *jopen(void) {
  tsesim_journal *j = NULL;
  char err[TSESIM_ERRBUF_SIZE] = "";
  tsesim_code rc = tsesim_journal_open(&j, path, err);
  ck_assert_msg(rc == TSESIM_OK, "open %s: %s: %s", path, tsesim_code_name(rc), err);
  ck_assert_ptr_nonnull(j);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "");
  return j;
}

static void begin_ok(tsesim_journal *j, const char *name, const tsesim_request *req,
                     size_t chunk_size, tsesim__job_rec *rec) {
  tsesim_code rc = tsesim__journal_job_begin(j, name, req, NULL, chunk_size, rec);
  ck_assert_msg(rc == TSESIM_OK, "job_begin %s: %s: %s", name, tsesim_code_name(rc),
                tsesim_journal_errmsg(j));
}

static void set_ok(tsesim_journal *j, const tsesim__job_rec *rec, const tsesim__chunk_change *c,
                   size_t n) {
  tsesim_code rc = tsesim__journal_chunks_set(j, rec, c, n);
  ck_assert_msg(rc == TSESIM_OK, "chunks_set: %s: %s", tsesim_code_name(rc),
                tsesim_journal_errmsg(j));
}

/* Asserts the states of the job's chunks, one letter each: q s a u r. */
static void expect_states(tsesim_journal *j, const tsesim__job_rec *rec, const char *want) {
  static const char letter[] = "qsaur";
  unsigned char st[64];
  char got[65];
  size_t i;
  ck_assert_uint_eq(rec->n_chunks, strlen(want));
  ck_assert_int_eq(tsesim__journal_chunk_states(j, rec, st), TSESIM_OK);
  for (i = 0; i < rec->n_chunks; i++) got[i] = letter[st[i]];
  got[i] = '\0';
  ck_assert_str_eq(got, want);
}

static void expect_msg(const char *got, const char *fmt, ...) TSESIM__PRINTF(2, 3);
static void expect_msg(const char *got, const char *fmt, ...) {
  char want[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(want, sizeof want, fmt, ap);
  va_end(ap);
  ck_assert_str_eq(got, want);
}

/* ---- opening ---- */

START_TEST(test_open_new) {
  tsesim_journal *j;
  sqlite3 *db, *mine;
  char buf[512];
  mode_t old = umask(0);
  tmp_setup();
  j = jopen();
  umask(old);
  /* 0600 even with umask 0: the listener's credentials will live in it */
  ck_assert_uint_eq(file_mode(path), 0600);
  mine = tsesim__test_journal_db(j);
  ck_assert_ptr_nonnull(mine);
  /* per connection: read through the journal's own */
  ck_assert_str_eq(q_text(mine, "PRAGMA journal_mode", buf, sizeof buf), "wal");
  ck_assert_int_eq(q_int(mine, "PRAGMA synchronous"), 2); /* FULL */
  ck_assert_int_eq(q_int(mine, "PRAGMA foreign_keys"), 1);
  ck_assert_int_eq(q_int(mine, "PRAGMA busy_timeout"), 10000);

  db = raw_open(path);
  ck_assert_int_eq(q_int(db, "PRAGMA user_version"), TSESIM__JOURNAL_VERSION);
  ck_assert_str_eq(q_text(db, "PRAGMA journal_mode", buf, sizeof buf), "wal"); /* persistent */
  columns(db, "meta", buf, sizeof buf);
  ck_assert_str_eq(buf, "key,value");
  columns(db, "job", buf, sizeof buf);
  ck_assert_str_eq(
      buf, "id,name,account,plan,chunk_size,devices,rows,fingerprint,created,callbacks,duplicates");
  columns(db, "chunk", buf, sizeof buf);
  ck_assert_str_eq(
      buf,
      "job,seq,first,count,state,request_id,http_status,error,attempts,updated,warning,success,"
      "failed");
  columns(db, "device", buf, sizeof buf);
  ck_assert_str_eq(buf,
                   "job,idx,line,eid,iccid,imei,device,chunk,error,status,fault,outcome,callbacks");
  ck_assert_int_eq(q_int(db, "SELECT count(*) FROM meta"), 0);
  /* no index on the devices: recording a job stays cheap; the tracker
   * makes those it needs (tsesim-journal(5)). Only the callbacks' and the
   * chunks' requestId. */
  ck_assert_int_eq(q_int(db,
                         "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                         "sql IS NOT NULL"),
                   3);
  ck_assert_int_eq(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name GLOB 'device_*'"), 0);
  /* the CHECK on chunk.state and the foreign keys are in the schema */
  ck_assert_int_ne(sqlite3_exec(db,
                                "PRAGMA foreign_keys = ON; INSERT INTO chunk(job, seq, first, "
                                "count, state, updated) VALUES(99, 0, 0, 1, 'queued', 'x')",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  ck_assert_int_ne(sqlite3_exec(db,
                                "PRAGMA foreign_keys = OFF; INSERT INTO chunk(job, seq, first, "
                                "count, state, updated) VALUES(99, 0, 0, 1, 'gone', 'x')",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  /* SQLite's own files follow the main file's mode */
  snprintf(buf, sizeof buf, "%s-wal", path);
  ck_assert_uint_eq(file_mode(buf), 0600);
  tsesim_journal_close(j);

  /* opened again: the same journal, version 1, no error */
  j = jopen();
  tsesim_journal_close(j);
  ck_assert_int_eq(path_int("PRAGMA user_version"), TSESIM__JOURNAL_VERSION);
  tmp_teardown();
}
END_TEST

START_TEST(test_open_existing_mode) {
  /* an existing empty file is a new journal and keeps the mode it has */
  tsesim_journal *j;
  FILE *f;
  tmp_setup();
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  ck_assert_int_eq(chmod(path, 0640), 0);
  j = jopen();
  tsesim_journal_close(j);
  ck_assert_uint_eq(file_mode(path), 0640);
  ck_assert_int_eq(path_int("PRAGMA user_version"), TSESIM__JOURNAL_VERSION);
  ck_assert_int_eq(path_int("SELECT count(*) FROM job"), 0);
  tmp_teardown();
}
END_TEST

START_TEST(test_open_refused) {
  tsesim_journal *j = (tsesim_journal *)&j;
  char err[TSESIM_ERRBUF_SIZE], buf[256], other[160];
  sqlite3 *db;
  FILE *f;
  int i;
  tmp_setup();

  ck_assert_int_eq(tsesim_journal_open(NULL, path, err), TSESIM_E_INVAL);
  ck_assert_str_eq(err, "out is NULL");
  ck_assert_int_eq(tsesim_journal_open(&j, NULL, err), TSESIM_E_INVAL);
  ck_assert_ptr_null(j);
  ck_assert_str_eq(err, "path is NULL");
  j = (tsesim_journal *)&j;
  ck_assert_int_eq(tsesim_journal_open(&j, "", NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(j);
  ck_assert_str_eq(tsesim_journal_errmsg(NULL), "journal is NULL");
  tsesim_journal_close(NULL);

  /* a newer schema: refused, and the file is left as it was */
  db = raw_open(path);
  raw_exec(db, "CREATE TABLE later(x); PRAGMA user_version = 3");
  sqlite3_close(db);
  ck_assert_int_eq(tsesim_journal_open(&j, path, err), TSESIM_E_JOURNAL);
  ck_assert_ptr_null(j);
  expect_msg(err,
             "journal %s: schema version 3 is newer than this library's 2; use a newer libtsesim",
             path);
  path_text("PRAGMA journal_mode", buf, sizeof buf);
  ck_assert_str_eq(buf, "delete");
  rm_db(path);

  /* tables but no version: someone else's database */
  db = raw_open(path);
  raw_exec(db, "CREATE TABLE t(x)");
  sqlite3_close(db);
  ck_assert_int_eq(tsesim_journal_open(&j, path, err), TSESIM_E_JOURNAL);
  expect_msg(err,
             "journal %s: not a libtsesim journal: it holds 1 tables and no schema version "
             "(user_version 0)",
             path);
  ck_assert_int_eq(path_int("SELECT count(*) FROM sqlite_master"), 1);
  rm_db(path);

  /* not SQLite at all */
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (i = 0; i < 200; i++) fputs("eid,iccid,imei\n", f);
  fclose(f);
  ck_assert_int_eq(tsesim_journal_open(&j, path, err), TSESIM_E_JOURNAL);
  ck_assert_ptr_null(j);
  expect_msg(err, "journal %s: cannot read it: file is not a database", path);
  rm_db(path);

  /* a directory that does not exist */
  snprintf(other, sizeof other, "%s/no/such.db", dir);
  ck_assert_int_eq(tsesim_journal_open(&j, other, err), TSESIM_E_JOURNAL);
  expect_msg(err, "journal %s: cannot create it: No such file or directory", other);

  /* a symbolic link is not followed (the journal holds credentials) */
  snprintf(other, sizeof other, "%s/link.db", dir);
  ck_assert_int_eq(symlink("j.db", other), 0);
  ck_assert_int_eq(tsesim_journal_open(&j, other, err), TSESIM_E_JOURNAL);
  ck_assert_ptr_null(j);
  ck_assert_msg(strncmp(err, "journal ", 8) == 0 && strstr(err, "link.db: cannot open it: "), "%s",
                err);
  ck_assert_int_eq(access(path, F_OK), -1); /* the link's target was not made */
  tmp_teardown();
}
END_TEST

START_TEST(test_open_long_path) {
  /* a long path is shown by its end, and the message still fits */
  char err[TSESIM_ERRBUF_SIZE], longp[400];
  tsesim_journal *j = NULL;
  size_t n;
  tmp_setup();
  n = (size_t)snprintf(longp, sizeof longp, "%s/", dir);
  while (n < 300) longp[n++] = 'd';
  memcpy(longp + n, "/x.db", 6);
  ck_assert_int_eq(tsesim_journal_open(&j, longp, err), TSESIM_E_JOURNAL);
  ck_assert_msg(strncmp(err, "journal ...ddd", 14) == 0, "%s", err);
  ck_assert_msg(strstr(err, "d/x.db: cannot create it: ") != NULL, "%s", err);
  tmp_teardown();
}
END_TEST

/* ---- jobs ---- */

START_TEST(test_job_new) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", NULL, 25);
  tsesim_device_id two[2];
  tt_device d;
  tsesim__job_rec rec, again;
  sqlite3 *db;
  sqlite3_stmt *st;
  char buf[256];
  size_t i;

  /* device 25: eid and imei only */
  tt_device_make(&d, 26);
  two[0] = d.ids[0];
  two[1] = d.ids[2];
  ck_assert_int_eq(tsesim_request_add_device(req, two, 2), TSESIM_OK);
  tmp_setup();
  j = jopen();
  begin_ok(j, "job-1", req, 10, &rec);
  ck_assert_int_gt(rec.id, 0);
  ck_assert_uint_eq(rec.chunk_size, 10);
  ck_assert_uint_eq(rec.n_chunks, 3);
  ck_assert_uint_eq(rec.n_devices, 26);
  ck_assert_uint_eq(rec.n_rows, 26);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "");
  expect_states(j, &rec, "qqq");

  db = raw_open(path);
  ck_assert_int_eq(q_int(db, "SELECT count(*) FROM job"), 1);
  ck_assert_str_eq(q_text(db,
                          "SELECT name || '|' || account || '|' || ifnull(plan, 'NULL') || '|' || "
                          "chunk_size || '|' || devices || '|' || rows FROM job",
                          buf, sizeof buf),
                   "job-1|Acme|NULL|10|26|26");
  ck_assert_int_eq(q_int(db,
                         "SELECT length(fingerprint) = 16 AND fingerprint NOT GLOB "
                         "'*[^0-9a-f]*' FROM job"),
                   1);
  ck_assert_int_eq(q_int(db,
                         "SELECT created GLOB "
                         "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:"
                         "[0-9][0-9]*Z' FROM job"),
                   1);
  ck_assert_str_eq(q_text(db,
                          "SELECT group_concat(seq || ':' || first || '+' || count || ' ' || state "
                          "|| ' ' || attempts || ifnull(request_id, '') || "
                          "ifnull(http_status, '') || ifnull(error, ''), ', ') FROM "
                          "(SELECT * FROM chunk ORDER BY seq)",
                          buf, sizeof buf),
                   "0:0+10 queued 0, 1:10+10 queued 0, 2:20+6 queued 0");
  ck_assert_int_eq(q_int(db, "SELECT count(*) FROM chunk WHERE updated NOT GLOB '*-*-*T*Z'"), 0);
  ck_assert_int_eq(q_int(db, "SELECT count(*) FROM device"), 26);
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT idx, line, eid, iccid, imei, device, chunk, error "
                                      "FROM device WHERE job = ?1 ORDER BY idx",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_int64(st, 1, rec.id);
  for (i = 0; i < 26; i++) {
    tt_device_make(&d, i + 1);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int64(st, 0), (long long)i);
    ck_assert_int_eq(sqlite3_column_int64(st, 1), (long long)i + 1);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), d.eid);
    if (i < 25)
      ck_assert_str_eq((const char *)sqlite3_column_text(st, 3), d.iccid);
    else
      ck_assert_int_eq(sqlite3_column_type(st, 3), SQLITE_NULL);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 4), d.imei);
    ck_assert_int_eq(sqlite3_column_int64(st, 5), (long long)i);
    ck_assert_int_eq(sqlite3_column_int64(st, 6), (long long)i / 10);
    ck_assert_int_eq(sqlite3_column_type(st, 7), SQLITE_NULL);
  }
  ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);

  /* the same job again, in a new connection: found, nothing added; chunk
   * size 0 takes the recorded one */
  tsesim_journal_close(j);
  j = jopen();
  begin_ok(j, "job-1", req, 0, &again);
  ck_assert_mem_eq(&again, &rec, sizeof rec);
  begin_ok(j, "job-1", req, 10, &again);
  ck_assert_mem_eq(&again, &rec, sizeof rec);
  ck_assert_int_eq(path_int("SELECT count(*) FROM job"), 1);
  ck_assert_int_eq(path_int("SELECT count(*) FROM chunk"), 3);
  ck_assert_int_eq(path_int("SELECT count(*) FROM device"), 26);

  /* a second job in the same file, chunk size 0: 10000 */
  begin_ok(j, "job-2", req, 0, &again);
  ck_assert_int_ne(again.id, rec.id);
  ck_assert_uint_eq(again.chunk_size, 10000);
  ck_assert_uint_eq(again.n_chunks, 1);
  ck_assert_int_eq(path_int("SELECT count FROM chunk WHERE job = (SELECT id FROM job WHERE "
                            "name = 'job-2')"),
                   26);
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

START_TEST(test_job_plan_and_empty) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", "Gold plan", 3), *none = make_req("Acme", NULL, 0);
  tsesim__job_rec rec;
  char buf[64];
  tmp_setup();
  j = jopen();
  begin_ok(j, "with-plan", req, 1, &rec);
  ck_assert_uint_eq(rec.n_chunks, 3);
  expect_states(j, &rec, "qqq");
  path_text("SELECT plan FROM job", buf, sizeof buf);
  ck_assert_str_eq(buf, "Gold plan");
  /* no device: a job of no chunk */
  begin_ok(j, "empty", none, 0, &rec);
  ck_assert_uint_eq(rec.n_chunks, 0);
  ck_assert_uint_eq(rec.n_rows, 0);
  ck_assert_int_eq(tsesim__journal_chunk_states(j, &rec, NULL), TSESIM_OK);
  begin_ok(j, "empty", none, 0, &rec);
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tsesim_request_free(none);
  tmp_teardown();
}
END_TEST

START_TEST(test_job_bad_args) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", NULL, 2);
  tsesim__job_rec rec;
  char *before;
  tmp_setup();
  j = jopen();
  ck_assert_int_eq(tsesim__journal_job_begin(NULL, "x", req, NULL, 0, &rec), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim__journal_job_begin(j, "x", NULL, NULL, 0, &rec), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "req is NULL");
  ck_assert_int_eq(tsesim__journal_job_begin(j, "x", req, NULL, 0, NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "out is NULL");
  ck_assert_int_eq(tsesim__journal_job_begin(j, "", req, NULL, 0, &rec), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "job name: empty");
  ck_assert_int_eq(tsesim__journal_job_begin(j, "a\nb", req, NULL, 0, &rec), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim__journal_job_begin(j, "x", req, NULL, 10001, &rec), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "chunk size 10001: at most 10000");
  before = snapshot();
  ck_assert_int_eq(path_int("SELECT count(*) FROM job"), 0);
  free(before);
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* Each kind of difference from the recorded job: TSESIM_E_INVAL, the
 * message, and nothing changed, not even the chunk found "sending". */
START_TEST(test_job_mismatch) {
  tsesim_journal *j;
  tsesim_request *rec_req = make_req("Acme", "Gold", 25), *req;
  tsesim__job_rec rec, got;
  tsesim__chunk_change c = {1, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  char *before, *after;
  tt_device d;
  size_t k;
  struct {
    const char *account, *plan;
    size_t n, chunk;
    int variant; /* 0: seeds 1..n; 1: device 24 replaced; 2: devices 0 and 1 swapped */
    const char *msg;
  } cases[] = {
      {"Other", "Gold", 25, 0, 0, "job \"J\" was recorded for account \"Acme\", not \"Other\""},
      {"Acme", NULL, 25, 0, 0, "job \"J\" was recorded with plan \"Gold\"; this request has none"},
      {"Acme", "Silver", 25, 0, 0,
       "job \"J\" was recorded with plan \"Gold\"; this request has plan \"Silver\""},
      {"Acme", "Gold", 24, 0, 0, "job \"J\" was recorded with 25 rows; this request has 24"},
      {"Acme", "Gold", 26, 0, 0, "job \"J\" was recorded with 25 rows; this request has 26"},
      {"Acme", "Gold", 25, 0, 1,
       "job \"J\" was recorded with other rows (the device file changed): line 25 differs"},
      {"Acme", "Gold", 25, 0, 2,
       "job \"J\" was recorded with other rows (the device file changed): line 1 differs"},
      {"Acme", "Gold", 25, 5, 0, "job \"J\" was recorded with chunk size 10, not 5"},
  };

  tmp_setup();
  j = jopen();
  begin_ok(j, "J", rec_req, 10, &rec);
  set_ok(j, &rec, &c, 1);
  tsesim_journal_close(j);
  j = jopen();
  before = snapshot();
  for (k = 0; k < ARRAY_LEN(cases); k++) {
    if (cases[k].variant == 0) {
      req = make_req(cases[k].account, cases[k].plan, cases[k].n);
    } else if (cases[k].variant == 1) {
      req = make_req(cases[k].account, cases[k].plan, 24);
      tt_device_make(&d, 1000);
      ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
    } else {
      req = make_req_from(cases[k].account, cases[k].plan, 1, 2);
      tt_device_make(&d, 1);
      ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
      for (size_t i = 2; i < 25; i++) {
        tt_device_make(&d, i + 1);
        ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
      }
    }
    memset(&got, 0xAA, sizeof got);
    ck_assert_msg(
        tsesim__journal_job_begin(j, "J", req, NULL, cases[k].chunk, &got) == TSESIM_E_INVAL,
        "case %lu", (unsigned long)k);
    ck_assert_str_eq(tsesim_journal_errmsg(j), cases[k].msg);
    ck_assert_uint_eq(got.n_chunks, 0);
    after = snapshot();
    ck_assert_str_eq(after, before);
    free(after);
    tsesim_request_free(req);
  }
  /* and the right request still finds it: then the sending chunk is cut off */
  begin_ok(j, "J", rec_req, 10, &got);
  ck_assert_mem_eq(&got, &rec, sizeof rec);
  expect_states(j, &rec, "quq");
  free(before);
  tsesim_journal_close(j);
  tsesim_request_free(rec_req);
  tmp_teardown();
}
END_TEST

START_TEST(test_sending_becomes_unknown) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", NULL, 30);
  tsesim__job_rec rec;
  tsesim__chunk_change c[2] = {{0, TSESIM__CHUNK_SENDING, NULL, 0, NULL},
                               {2, TSESIM__CHUNK_SENDING, NULL, 0, NULL}};
  char buf[256];
  tmp_setup();
  j = jopen();
  begin_ok(j, "crash", req, 10, &rec);
  set_ok(j, &rec, c, 2);
  c[0].state = TSESIM__CHUNK_ACCEPTED;
  c[0].request_id = "req-0";
  c[0].http_status = 202;
  set_ok(j, &rec, c, 1);
  expect_states(j, &rec, "aqs");
  /* the process ends here; the next one begins the job again */
  tsesim_journal_close(j);
  j = jopen();
  begin_ok(j, "crash", req, 0, &rec);
  expect_states(j, &rec, "aqu");
  path_text(
      "SELECT state || '|' || error || '|' || attempts || '|' || ifnull(request_id, 'NULL') "
      "FROM chunk WHERE seq = 2",
      buf, sizeof buf);
  ck_assert_str_eq(buf, "unknown|" CUT_OFF "|1|NULL");
  path_text(
      "SELECT state || '|' || request_id || '|' || http_status || '|' || "
      "ifnull(error, 'NULL') || '|' || attempts FROM chunk WHERE seq = 0",
      buf, sizeof buf);
  ck_assert_str_eq(buf, "accepted|req-0|202|NULL|1");
  /* already unknown: nothing more changes */
  begin_ok(j, "crash", req, 0, &rec);
  expect_states(j, &rec, "aqu");
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

START_TEST(test_chunks_set) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", NULL, 4);
  tsesim__job_rec rec, bad;
  tsesim__chunk_change c[3];
  char buf[512], *before, *after;
  tmp_setup();
  j = jopen();
  begin_ok(j, "t", req, 1, &rec);
  ck_assert_uint_eq(rec.n_chunks, 4);
  ck_assert_int_eq(tsesim__journal_chunks_set(j, &rec, NULL, 0), TSESIM_OK);

  /* three chunks sending in one call */
  c[0] = (tsesim__chunk_change){0, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  c[1] = (tsesim__chunk_change){1, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  c[2] = (tsesim__chunk_change){2, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  set_ok(j, &rec, c, 3);
  expect_states(j, &rec, "sssq");
  /* accepted, refused, back to queued (429) */
  c[0] = (tsesim__chunk_change){0, TSESIM__CHUNK_ACCEPTED, "a1b2-req", 202, NULL};
  c[1] =
      (tsesim__chunk_change){1, TSESIM__CHUNK_REFUSED, NULL, 400, "API error INVALID_EID: bad eid"};
  c[2] = (tsesim__chunk_change){2, TSESIM__CHUNK_QUEUED, NULL, 429, "rate limited"};
  set_ok(j, &rec, c, 3);
  expect_states(j, &rec, "arqq");
  /* chunk 2 again: sending, then unknown with no answer */
  c[0] = (tsesim__chunk_change){2, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  set_ok(j, &rec, c, 1);
  c[0] =
      (tsesim__chunk_change){2, TSESIM__CHUNK_UNKNOWN, NULL, 0, "connection reset after sending"};
  set_ok(j, &rec, c, 1);
  expect_states(j, &rec, "aruq");
  path_text(
      "SELECT group_concat(seq || ' ' || state || ' ' || ifnull(request_id, '-') || ' ' || "
      "ifnull(http_status, '-') || ' ' || ifnull(error, '-') || ' ' || attempts, '; ') "
      "FROM (SELECT * FROM chunk ORDER BY seq)",
      buf, sizeof buf);
  ck_assert_str_eq(buf,
                   "0 accepted a1b2-req 202 - 1; 1 refused - 400 API error INVALID_EID: bad eid "
                   "1; 2 unknown - - connection reset after sending 2; 3 queued - - - 0");

  /* refused before anything is written: out of range, bad state, NULLs */
  before = snapshot();
  c[0] = (tsesim__chunk_change){3, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  c[1] = (tsesim__chunk_change){4, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  ck_assert_int_eq(tsesim__journal_chunks_set(j, &rec, c, 2), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "changes[1]: chunk 4 of 4, state 1");
  c[1] = (tsesim__chunk_change){0, 7, NULL, 0, NULL};
  ck_assert_int_eq(tsesim__journal_chunks_set(j, &rec, c, 2), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim__journal_chunks_set(j, &rec, NULL, 1), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim__journal_chunks_set(j, NULL, c, 1), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim__journal_chunks_set(NULL, &rec, c, 1), TSESIM_E_INVAL);
  /* a job the journal does not hold: nothing recorded */
  bad = rec;
  bad.id = rec.id + 100;
  ck_assert_int_eq(tsesim__journal_chunks_set(j, &bad, c, 1), TSESIM_E_JOURNAL);
  expect_msg(tsesim_journal_errmsg(j), "journal %s: job %lld has no chunk 3", path,
             (long long)bad.id);
  ck_assert_int_eq(tsesim__journal_chunk_states(j, &bad, (unsigned char[4]){0}), TSESIM_E_JOURNAL);
  expect_msg(tsesim_journal_errmsg(j), "journal %s: job %lld has 0 chunks recorded, not 4", path,
             (long long)bad.id);
  after = snapshot();
  ck_assert_str_eq(after, before);
  free(before);
  free(after);
  ck_assert_str_eq(tsesim__chunk_state_name(TSESIM__CHUNK_REFUSED), "refused");
  ck_assert_ptr_null(tsesim__chunk_state_name(5));
  ck_assert_ptr_null(tsesim__chunk_state_name(-1));
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* SQLite fails half-way through a transaction (a trigger of the test's
 * raises an error on one statement): everything before it in the same call
 * is rolled back. */
START_TEST(test_rollback_half_way) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", NULL, 30);
  tsesim__job_rec rec;
  tsesim__chunk_change c[2] = {{0, TSESIM__CHUNK_SENDING, NULL, 0, NULL},
                               {2, TSESIM__CHUNK_ACCEPTED, "r", 202, NULL}};
  char *before, *after;
  sqlite3 *db;
  tmp_setup();
  j = jopen();
  db = raw_open(path);
  raw_exec(db,
           "CREATE TRIGGER no_row_20 BEFORE INSERT ON device WHEN NEW.idx = 20 "
           "BEGIN SELECT RAISE(ABORT, 'test refuses row 20'); END;"
           "CREATE TRIGGER no_accept_2 BEFORE UPDATE ON chunk WHEN NEW.seq = 2 AND "
           "NEW.state = 'accepted' BEGIN SELECT RAISE(ABORT, 'test refuses chunk 2'); END;");
  sqlite3_close(db);
  ck_assert_int_eq(tsesim__journal_job_begin(j, "half", req, NULL, 10, &rec), TSESIM_E_JOURNAL);
  expect_msg(tsesim_journal_errmsg(j), "journal %s: cannot record a row: test refuses row 20",
             path);
  ck_assert_int_eq(path_int("SELECT (SELECT count(*) FROM job) + (SELECT count(*) FROM chunk) + "
                            "(SELECT count(*) FROM device)"),
                   0);
  db = raw_open(path);
  raw_exec(db, "DROP TRIGGER no_row_20");
  sqlite3_close(db);
  begin_ok(j, "half", req, 10, &rec);
  before = snapshot();
  ck_assert_int_eq(tsesim__journal_chunks_set(j, &rec, c, 2), TSESIM_E_JOURNAL);
  expect_msg(tsesim_journal_errmsg(j),
             "journal %s: cannot record a chunk's state: test refuses chunk 2", path);
  after = snapshot();
  ck_assert_str_eq(after, before);
  expect_states(j, &rec, "qqq");
  /* the connection is usable again at once */
  set_ok(j, &rec, c, 1);
  expect_states(j, &rec, "sqq");
  free(before);
  free(after);
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* Another connection holds the write lock: after the busy timeout (made
 * short here through the test accessor), TSESIM_E_JOURNAL, nothing
 * recorded; once the lock goes, the same calls succeed. */
START_TEST(test_locked) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", NULL, 30);
  tsesim__job_rec rec;
  tsesim__chunk_change c = {1, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  tsesim__job_rec other_rec;
  unsigned char st[3];
  char *before, *after;
  sqlite3 *other;
  tmp_setup();
  j = jopen();
  begin_ok(j, "locked", req, 10, &rec);
  sqlite3_busy_timeout(tsesim__test_journal_db(j), 50);
  other = raw_open(path);
  raw_exec(other, "BEGIN EXCLUSIVE");
  before = snapshot(); /* readers still read in WAL mode */
  ck_assert_int_eq(tsesim__journal_chunks_set(j, &rec, &c, 1), TSESIM_E_JOURNAL);
  expect_msg(tsesim_journal_errmsg(j), "journal %s: cannot begin a transaction: database is locked",
             path);
  ck_assert_int_eq(tsesim__journal_job_begin(j, "locked", req, NULL, 10, &other_rec),
                   TSESIM_E_JOURNAL);
  ck_assert_int_eq(tsesim__journal_job_begin(j, "new", req, NULL, 10, &other_rec),
                   TSESIM_E_JOURNAL);
  expect_msg(tsesim_journal_errmsg(j), "journal %s: cannot begin a transaction: database is locked",
             path);
  /* reading needs no write lock */
  ck_assert_int_eq(tsesim__journal_chunk_states(j, &rec, st), TSESIM_OK);
  after = snapshot();
  ck_assert_str_eq(after, before);
  raw_exec(other, "ROLLBACK");
  sqlite3_close(other);
  set_ok(j, &rec, &c, 1);
  expect_states(j, &rec, "qsq");
  free(before);
  free(after);
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* Two jobs big enough to be recorded without the id indexes: the second
 * one's new indexes cover the first job's rows too. */
START_TEST(test_two_large_jobs) {
  tsesim_request *a = make_req("Acme", NULL, 20000), *b = make_req_from("Acme", NULL, 20000, 50001);
  tsesim__job_rec ra, rb;
  tsesim_journal *j;
  char buf[64], q[256];
  tt_device d;
  tmp_setup();
  j = jopen();
  begin_ok(j, "a", a, 0, &ra);
  begin_ok(j, "b", b, 7000, &rb);
  ck_assert_uint_eq(rb.n_chunks, 3);
  tsesim_journal_close(j);
  path_text("PRAGMA integrity_check", buf, sizeof buf);
  ck_assert_str_eq(buf, "ok");
  tt_device_make(&d, 20000);
  snprintf(q, sizeof q, "SELECT idx FROM device WHERE job = %lld AND iccid = '%s'",
           (long long)ra.id, d.iccid);
  ck_assert_int_eq(path_int(q), 19999);
  tt_device_make(&d, 50001);
  snprintf(q, sizeof q, "SELECT chunk FROM device WHERE job = %lld AND eid = '%s'",
           (long long)rb.id, d.eid);
  ck_assert_int_eq(path_int(q), 0);
  ck_assert_int_eq(path_int("SELECT count(*) FROM device WHERE job = 2 AND chunk = 2"), 6000);
  tsesim_request_free(a);
  tsesim_request_free(b);
  tmp_teardown();
}
END_TEST

/* ---- the application's settings (tsesim_journal_set / _get) ---- */

/* get, asserting TSESIM_OK and an empty errmsg; the value (caller frees, NULL when unset). */
static char *get_ok(tsesim_journal *j, const char *key) {
  char *v = (char *)"unset";
  tsesim_code rc = tsesim_journal_get(j, key, &v);
  ck_assert_msg(rc == TSESIM_OK, "get %s: %s: %s", key, tsesim_code_name(rc),
                tsesim_journal_errmsg(j));
  ck_assert_str_eq(tsesim_journal_errmsg(j), "");
  return v;
}

static void set_setting_ok(tsesim_journal *j, const char *key, const char *value) {
  tsesim_code rc = tsesim_journal_set(j, key, value);
  ck_assert_msg(rc == TSESIM_OK, "set %s: %s: %s", key, tsesim_code_name(rc),
                tsesim_journal_errmsg(j));
  ck_assert_str_eq(tsesim_journal_errmsg(j), "");
}

static void expect_setting(tsesim_journal *j, const char *key, const char *want) {
  char *v = get_ok(j, key);
  tt_expect_str("setting", key, v, want);
  tsesim_free(v);
}

/* Set, read back, overwrite, remove; a missing key is TSESIM_OK and NULL;
 * the values are what sqlite3 sees in meta, and they survive a reopen. */
START_TEST(test_settings_round_trip) {
  static const char pem[] = "-----BEGIN-----\nline two\ttabbed\n-----END-----\n";
  tsesim_journal *j;
  char buf[256];
  tmp_setup();
  j = jopen();
  expect_setting(j, "listener.port", NULL); /* missing: OK and NULL */
  set_setting_ok(j, "listener.port", "8443");
  expect_setting(j, "listener.port", "8443");
  path_text("SELECT value FROM meta WHERE key = 'listener.port'", buf, sizeof buf);
  ck_assert_str_eq(buf, "8443");
  /* overwrite: one row, the new value */
  set_setting_ok(j, "listener.port", "9443");
  expect_setting(j, "listener.port", "9443");
  ck_assert_int_eq(path_int("SELECT count(*) FROM meta WHERE key = 'listener.port'"), 1);
  /* values are any UTF-8 text, control characters included; "" is not unset */
  set_setting_ok(j, "listener.password", pem);
  expect_setting(j, "listener.password", pem);
  set_setting_ok(j, "listener.url", "");
  expect_setting(j, "listener.url", "");
  set_setting_ok(j, "caf\xC3\xA9 \xE2\x82\xAC", "\xE2\x82\xAC 5");
  expect_setting(j, "caf\xC3\xA9 \xE2\x82\xAC", "\xE2\x82\xAC 5");
  /* keys are exact: case and prefixes differ */
  expect_setting(j, "Listener.port", NULL);
  expect_setting(j, "listener.por", NULL);
  /* NULL removes it; removing a missing key is fine too */
  set_setting_ok(j, "listener.url", NULL);
  expect_setting(j, "listener.url", NULL);
  ck_assert_int_eq(path_int("SELECT count(*) FROM meta WHERE key = 'listener.url'"), 0);
  set_setting_ok(j, "never.set", NULL);
  /* 200 bytes is the longest key */
  memset(buf, 'k', 200);
  buf[200] = '\0';
  set_setting_ok(j, buf, "long key");
  expect_setting(j, buf, "long key");
  tsesim_journal_close(j);

  /* after close and reopen, by another handle */
  j = jopen();
  expect_setting(j, "listener.port", "9443");
  expect_setting(j, "listener.password", pem);
  expect_setting(j, "listener.url", NULL);
  expect_setting(j, buf, "long key");
  tsesim_journal_close(j);
  ck_assert_int_eq(path_int("SELECT count(*) FROM meta"), 4);
  ck_assert_uint_eq(file_mode(path), 0600); /* fit for the password */
  tmp_teardown();
}
END_TEST

/* Bad keys and values: TSESIM_E_INVAL, a message that says what is wrong
 * with which key, *out NULL, and the journal unchanged. */
START_TEST(test_settings_bad) {
  tsesim_journal *j;
  char long_key[202], *big, *before, *after, *v;
  size_t k;
  struct {
    const char *key, *msg;
  } keys[] = {
      {NULL, "key: NULL"},
      {"", "key: empty"},
      {"listener\x01port", "key: control character U+0001 at byte 9"},
      {"listener.port\n", "key: control character U+000A at byte 14"},
      {"caf\xC3", "key: invalid UTF-8 at byte 4"},
      {long_key, "key: 201 bytes, at most 200"},
  };
  memset(long_key, 'k', 201);
  long_key[201] = '\0';
  tmp_setup();
  j = jopen();
  set_setting_ok(j, "kept", "value");
  before = snapshot();
  for (k = 0; k < ARRAY_LEN(keys); k++) {
    ck_assert_msg(tsesim_journal_set(j, keys[k].key, "v") == TSESIM_E_INVAL, "set, key %lu",
                  (unsigned long)k);
    ck_assert_str_eq(tsesim_journal_errmsg(j), keys[k].msg);
    ck_assert_msg(tsesim_journal_set(j, keys[k].key, NULL) == TSESIM_E_INVAL, "remove, key %lu",
                  (unsigned long)k);
    ck_assert_str_eq(tsesim_journal_errmsg(j), keys[k].msg);
    v = (char *)"unset";
    ck_assert_msg(tsesim_journal_get(j, keys[k].key, &v) == TSESIM_E_INVAL, "get, key %lu",
                  (unsigned long)k);
    ck_assert_ptr_null(v);
    ck_assert_str_eq(tsesim_journal_errmsg(j), keys[k].msg);
  }
  /* values: at most 64 KiB of UTF-8; the message names the key */
  big = malloc(65538);
  memset(big, 'v', 65537);
  big[65537] = '\0';
  ck_assert_int_eq(tsesim_journal_set(j, "kept", big), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j),
                   "setting \"kept\": value of 65537 bytes, at most 65536");
  ck_assert_int_eq(tsesim_journal_set(j, "kept", "ok\xFF"), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "setting \"kept\": value not UTF-8 at byte 3");
  after = snapshot();
  ck_assert_str_eq(after, before);
  free(after);
  /* the longest value is kept whole */
  big[65536] = '\0';
  set_setting_ok(j, "big", big);
  v = get_ok(j, "big");
  ck_assert_str_eq(v, big);
  tsesim_free(v);
  /* NULL handles and outputs */
  ck_assert_int_eq(tsesim_journal_set(NULL, "k", "v"), TSESIM_E_INVAL);
  v = (char *)"unset";
  ck_assert_int_eq(tsesim_journal_get(NULL, "k", &v), TSESIM_E_INVAL);
  ck_assert_ptr_null(v);
  ck_assert_int_eq(tsesim_journal_get(j, "kept", NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "out is NULL");
  expect_setting(j, "kept", "value");
  free(big);
  free(before);
  tsesim_journal_close(j);
  tmp_teardown();
}
END_TEST

/* ---- tsesim_job_record: a job recorded without a client ---- */

/* A new job: its rows and queued chunks; the same again: OK, and a chunk
 * found "sending" becomes unknown; another request, chunk size or options
 * version: TSESIM_E_INVAL with the message, and nothing changed. */
START_TEST(test_job_record) {
  tsesim_journal *j;
  tsesim_request *req = make_req("Acme", "Gold", 25), *other;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim__job_rec rec;
  tsesim__chunk_change c = {1, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  char *before, *after;
  tmp_setup();
  j = jopen();
  o.chunk_size = 10;
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_OK);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "");
  ck_assert_int_eq(path_int("SELECT count(*) FROM device WHERE job = 1"), 25);
  ck_assert_int_eq(path_int("SELECT count(*) FROM chunk WHERE job = 1 AND state = 'queued'"), 3);
  ck_assert_int_eq(path_int("SELECT chunk_size FROM job WHERE name = 'J'"), 10);
  /* the same job again, with its chunk size or 0 */
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_OK);
  o.chunk_size = 0;
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_OK);
  begin_ok(j, "J", req, 0, &rec);
  expect_states(j, &rec, "qqq");
  /* a chunk cut off while being sent becomes unknown, as at a submit */
  set_ok(j, &rec, &c, 1);
  ck_assert_int_eq(tsesim_job_record(j, "J", req, NULL), TSESIM_OK);
  expect_states(j, &rec, "quq");

  before = snapshot();
  other = make_req("Other", "Gold", 25);
  ck_assert_int_eq(tsesim_job_record(j, "J", other, NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j),
                   "job \"J\" was recorded for account \"Acme\", not \"Other\"");
  tsesim_request_free(other);
  other = make_req_from("Acme", "Gold", 25, 2);
  ck_assert_int_eq(tsesim_job_record(j, "J", other, NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j),
                   "job \"J\" was recorded with other rows (the device file changed): line 1 "
                   "differs");
  tsesim_request_free(other);
  o.chunk_size = 5;
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "job \"J\" was recorded with chunk size 10, not 5");
  o.chunk_size = 10001;
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "chunk size 10001: at most 10000");
  o.chunk_size = 10;
  o.version = TSESIM_JOB_OPTIONS_VERSION + 1;
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "job: options version 3: this library knows 1..2");
  o.version = 0;
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "job: options version 0: this library knows 1..2");
  ck_assert_int_eq(tsesim_job_record(j, "", req, NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "job name: empty");
  ck_assert_int_eq(tsesim_job_record(j, NULL, req, NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "job name: NULL");
  ck_assert_int_eq(tsesim_job_record(j, "J", NULL, NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_journal_errmsg(j), "req is NULL");
  ck_assert_int_eq(tsesim_job_record(NULL, "J", req, NULL), TSESIM_E_INVAL);
  after = snapshot();
  ck_assert_str_eq(after, before);
  free(after);
  free(before);
  /* version 1 options are read as version 1 */
  o.version = 1;
  ck_assert_int_eq(tsesim_job_record(j, "J", req, &o), TSESIM_OK);
  tsesim_journal_close(j);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* ---- allocation failure ---- */

/* Our allocations, one by one, over open + job_begin + chunks_set. */
START_TEST(test_alloc_ours) {
  tsesim_request *req = make_req("Acme", "Gold", 5);
  tsesim__chunk_change c = {0, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  tsesim_journal *j = NULL;
  tsesim__job_rec rec;
  tmp_setup();
  TT_FAIL_EACH_ALLOC(
      {
        rm_db(path);
        rc = tsesim_journal_open(&j, path, NULL);
        if (!rc) rc = tsesim__journal_job_begin(j, "a", req, NULL, 2, &rec);
        if (!rc) rc = tsesim__journal_chunks_set(j, &rec, &c, 1);
        if (rc) {
          tsesim_journal_close(j);
          j = NULL;
        }
      },
      j == NULL,
      {
        expect_states(j, &rec, "sqq");
        tsesim_journal_close(j);
      });
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* SQLite's allocations, one by one, through an allocator the test puts in
 * for the test's own process (the library never changes SQLite's global
 * configuration). Every failure is TSESIM_E_NOMEM or TSESIM_E_JOURNAL, the
 * journal holds all of a job or none of it and all of a chunk change or
 * none of it, and SQLite's memory all comes back. */
static sqlite3_mem_methods sq_orig;
static long sq_count, sq_fail_at, sq_failed;

static void *sq_malloc(int n) {
  if (sq_fail_at && ++sq_count == sq_fail_at) {
    sq_failed++;
    return NULL;
  }
  return sq_orig.xMalloc(n);
}
static void *sq_realloc(void *p, int n) {
  if (sq_fail_at && ++sq_count == sq_fail_at) {
    sq_failed++;
    return NULL;
  }
  return sq_orig.xRealloc(p, n);
}

START_TEST(test_alloc_sqlite) {
  sqlite3_mem_methods m;
  tsesim_request *req = make_req("Acme", NULL, 5);
  tsesim__chunk_change c[2] = {{0, TSESIM__CHUNK_SENDING, NULL, 0, NULL},
                               {2, TSESIM__CHUNK_SENDING, NULL, 0, NULL}};
  long n, nomem = 0, journal = 0;
  tmp_setup();
  ck_assert_int_eq(sqlite3_shutdown(), SQLITE_OK);
  ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sq_orig), SQLITE_OK);
  m = sq_orig;
  m.xMalloc = sq_malloc;
  m.xRealloc = sq_realloc;
  ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
  ck_assert_int_eq(sqlite3_initialize(), SQLITE_OK);

  for (n = 1; n < 100000; n++) {
    tsesim_journal *j = NULL;
    tsesim__job_rec rec;
    tsesim_code rc;
    long long used0;
    rm_db(path);
    used0 = sqlite3_memory_used();
    sq_count = 0;
    sq_failed = 0;
    sq_fail_at = n;
    rc = tsesim_journal_open(&j, path, NULL);
    if (!rc) rc = tsesim__journal_job_begin(j, "a", req, NULL, 2, &rec);
    if (!rc) rc = tsesim__journal_chunks_set(j, &rec, c, 2);
    tsesim_journal_close(j);
    sq_fail_at = 0;
    ck_assert_int_eq(sqlite3_memory_used(), used0);
    if (!sq_failed) {
      ck_assert_msg(rc == TSESIM_OK, "run %ld: no failure injected but %s", n,
                    tsesim_code_name(rc));
      break;
    }
    if (rc == TSESIM_OK) continue; /* SQLite recovered from it by itself */
    ck_assert_msg(rc == TSESIM_E_NOMEM || rc == TSESIM_E_JOURNAL, "allocation %ld: %s", n,
                  tsesim_code_name(rc));
    if (rc == TSESIM_E_NOMEM)
      nomem++;
    else
      journal++;
    if (access(path, F_OK) == 0 && path_int("PRAGMA user_version") == TSESIM__JOURNAL_VERSION) {
      long long jobs = path_int("SELECT count(*) FROM job");
      ck_assert_int_le(jobs, 1);
      ck_assert_int_eq(path_int("SELECT count(*) FROM chunk"), jobs * 3);
      ck_assert_int_eq(path_int("SELECT count(*) FROM device"), jobs * 5);
      ck_assert_int_eq(path_int("SELECT count(*) FROM job WHERE fingerprint = ''"), 0);
      ck_assert_int_eq(path_int("SELECT count(*) IN (0, 2) FROM chunk WHERE state = 'sending'"), 1);
    } else if (access(path, F_OK) == 0) {
      ck_assert_int_eq(path_int("SELECT count(*) FROM sqlite_master"), 0);
    }
  }
  ck_assert_int_gt(n, 100);
  ck_assert_int_gt(nomem, 0);
  printf(
      "check_journal: %ld SQLite allocations failed in turn: %ld TSESIM_E_NOMEM, %ld "
      "TSESIM_E_JOURNAL, the rest recovered\n",
      n - 1, nomem, journal);

  ck_assert_int_eq(sqlite3_shutdown(), SQLITE_OK);
  ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_orig), SQLITE_OK);
  ck_assert_int_eq(sqlite3_initialize(), SQLITE_OK);
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* Our allocations, one by one, over tsesim_journal_set and _get: the copy
 * that get returns is the one; a failed get leaves *out NULL. */
START_TEST(test_alloc_settings_ours) {
  tsesim_journal *j;
  char *v = NULL;
  tmp_setup();
  j = jopen();
  TT_FAIL_EACH_ALLOC(
      {
        rc = tsesim_journal_set(j, "listener.password", "s3cret");
        if (!rc) rc = tsesim_journal_get(j, "listener.password", &v);
        if (rc) ck_assert_str_eq(tsesim_journal_errmsg(j), "out of memory");
      },
      v == NULL,
      {
        ck_assert_str_eq(v, "s3cret");
        tsesim_free(v);
      });
  tsesim_journal_close(j);
  tmp_teardown();
}
END_TEST

/* Our allocations, one by one, over open + tsesim_job_record. */
START_TEST(test_alloc_record_ours) {
  tsesim_request *req = make_req("Acme", "Gold", 5);
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim_journal *j = NULL;
  tsesim__job_rec rec;
  tmp_setup();
  o.chunk_size = 2;
  TT_FAIL_EACH_ALLOC(
      {
        rm_db(path);
        rc = tsesim_journal_open(&j, path, NULL);
        if (!rc) rc = tsesim_job_record(j, "a", req, &o);
        if (rc) {
          tsesim_journal_close(j);
          j = NULL;
        }
      },
      j == NULL,
      {
        begin_ok(j, "a", req, 0, &rec);
        expect_states(j, &rec, "qqq");
        tsesim_journal_close(j);
      });
  tsesim_request_free(req);
  tmp_teardown();
}
END_TEST

/* SQLite's allocations, one by one, over open + set + get + close of an
 * existing journal: every failure is TSESIM_E_NOMEM or TSESIM_E_JOURNAL, the
 * setting holds its old value or its new one, never a part, and SQLite's
 * memory all comes back. */
START_TEST(test_alloc_settings_sqlite) {
  sqlite3_mem_methods m;
  tsesim_journal *j;
  long n, nomem = 0, journal = 0;
  char buf[64];
  tmp_setup();
  j = jopen();
  set_setting_ok(j, "k", "old");
  tsesim_journal_close(j);
  ck_assert_int_eq(sqlite3_shutdown(), SQLITE_OK);
  ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sq_orig), SQLITE_OK);
  m = sq_orig;
  m.xMalloc = sq_malloc;
  m.xRealloc = sq_realloc;
  ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
  ck_assert_int_eq(sqlite3_initialize(), SQLITE_OK);

  for (n = 1; n < 100000; n++) {
    char *v = NULL;
    tsesim_code rc;
    long long used0 = sqlite3_memory_used();
    j = NULL;
    sq_count = 0;
    sq_failed = 0;
    sq_fail_at = n;
    rc = tsesim_journal_open(&j, path, NULL);
    if (!rc) rc = tsesim_journal_set(j, "k", "new");
    if (!rc) rc = tsesim_journal_get(j, "k", &v);
    if (rc) ck_assert_ptr_null(v);
    tsesim_journal_close(j);
    sq_fail_at = 0;
    ck_assert_int_eq(sqlite3_memory_used(), used0);
    if (!sq_failed) {
      ck_assert_msg(rc == TSESIM_OK, "run %ld: no failure injected but %s", n,
                    tsesim_code_name(rc));
      ck_assert_str_eq(v, "new");
      tsesim_free(v);
      break;
    }
    if (rc == TSESIM_OK) { /* SQLite recovered from it by itself */
      ck_assert_str_eq(v, "new");
    } else {
      ck_assert_msg(rc == TSESIM_E_NOMEM || rc == TSESIM_E_JOURNAL, "allocation %ld: %s", n,
                    tsesim_code_name(rc));
      if (rc == TSESIM_E_NOMEM)
        nomem++;
      else
        journal++;
    }
    tsesim_free(v);
    path_text("SELECT group_concat(value) FROM meta WHERE key = 'k'", buf, sizeof buf);
    ck_assert_msg(!strcmp(buf, "old") || !strcmp(buf, "new"), "allocation %ld: k is \"%s\"", n,
                  buf);
    {
      sqlite3 *db = raw_open(path);
      raw_exec(db, "UPDATE meta SET value = 'old' WHERE key = 'k'");
      sqlite3_close(db);
    }
  }
  ck_assert_int_gt(n, 10);
  ck_assert_int_gt(nomem + journal, 0);
  printf(
      "check_journal: settings: %ld SQLite allocations failed in turn: %ld TSESIM_E_NOMEM, %ld "
      "TSESIM_E_JOURNAL, the rest recovered\n",
      n - 1, nomem, journal);

  ck_assert_int_eq(sqlite3_shutdown(), SQLITE_OK);
  ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_orig), SQLITE_OK);
  ck_assert_int_eq(sqlite3_initialize(), SQLITE_OK);
  tmp_teardown();
}
END_TEST

/* ---- a million devices ---- */

static double now_s(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Under valgrind (its preload library is in LD_PRELOAD) the same path runs
 * with 20,000 devices: a million would take the better part of an hour. */
static size_t million(void) {
  const char *pre = getenv("LD_PRELOAD");
  return pre && strstr(pre, "vgpreload") ? 20000 : 1000000;
}

START_TEST(test_million) {
  size_t n = million();
  tsesim_request *req = make_req("Acme", NULL, n);
  tsesim_journal *j;
  tsesim__job_rec rec, again;
  tsesim__chunk_change c = {0, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  unsigned char states[100];
  double t0, t_new, t_again, t_set;
  struct stat sb;
  tmp_setup();
  j = jopen();
  t0 = now_s();
  begin_ok(j, "million", req, 10000, &rec);
  t_new = now_s() - t0;
  ck_assert_uint_eq(rec.n_rows, n);
  ck_assert_uint_eq(rec.n_chunks, n / 10000);
  tsesim_journal_close(j);
  j = jopen();
  t0 = now_s();
  begin_ok(j, "million", req, 0, &again);
  t_again = now_s() - t0;
  ck_assert_mem_eq(&again, &rec, sizeof rec);
  t0 = now_s();
  set_ok(j, &rec, &c, 1);
  t_set = now_s() - t0;
  ck_assert_int_eq(tsesim__journal_chunk_states(j, &rec, states), TSESIM_OK);
  ck_assert_int_eq(states[0], TSESIM__CHUNK_SENDING);
  tsesim_journal_close(j);
  ck_assert_int_eq(path_int("SELECT count(*) FROM device"), (long long)n);
  ck_assert_int_eq(path_int("SELECT max(chunk) FROM device"), (long long)rec.n_chunks - 1);
  ck_assert_int_eq(path_int("SELECT count(*) FROM device WHERE job = 1 AND imei > ''"),
                   (long long)n);
  ck_assert_int_eq(stat(path, &sb), 0);
  printf(
      "check_journal: %lu devices: recorded in %.2f s (%.0f rows/s), found again in %.2f s, "
      "one chunk change in %.1f ms; %.1f MB on disk\n",
      (unsigned long)n, t_new, (double)n / t_new, t_again, t_set * 1000, (double)sb.st_size / 1e6);
  tsesim_request_free(req);
  tmp_teardown(); /* first: a failed bound leaves no 200 MB behind */
  ck_assert_msg(t_new < 20, "recording %lu devices took %.1f s", (unsigned long)n, t_new);
  ck_assert_msg(t_again < 20, "finding %lu devices again took %.1f s", (unsigned long)n, t_again);
}
END_TEST

static Suite *journal_suite(void) {
  Suite *s = suite_create("journal");
  TCase *tc = tcase_create("journal"), *big = tcase_create("million");
  tcase_add_test(tc, test_open_new);
  tcase_add_test(tc, test_open_existing_mode);
  tcase_add_test(tc, test_open_refused);
  tcase_add_test(tc, test_open_long_path);
  tcase_add_test(tc, test_job_new);
  tcase_add_test(tc, test_job_plan_and_empty);
  tcase_add_test(tc, test_job_bad_args);
  tcase_add_test(tc, test_job_mismatch);
  tcase_add_test(tc, test_sending_becomes_unknown);
  tcase_add_test(tc, test_chunks_set);
  tcase_add_test(tc, test_rollback_half_way);
  tcase_add_test(tc, test_locked);
  tcase_add_test(tc, test_two_large_jobs);
  tcase_add_test(tc, test_settings_round_trip);
  tcase_add_test(tc, test_settings_bad);
  tcase_add_test(tc, test_job_record);
  tcase_add_test(tc, test_alloc_ours);
  tcase_add_test(tc, test_alloc_sqlite);
  tcase_add_test(tc, test_alloc_settings_ours);
  tcase_add_test(tc, test_alloc_record_ours);
  tcase_add_test(tc, test_alloc_settings_sqlite);
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  tcase_add_test(big, test_million);
  tcase_set_timeout(big, 600);
  suite_add_tcase(s, big);
  return s;
}

TT_MAIN(journal_suite)
