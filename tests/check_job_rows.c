/*
 * check_job_rows.c - a job fed from a device file (tsesim_rows_parse_csv,
 * then tsesim_job_submit with opts.rows) against tools/tsesim-sim over
 * loopback: the journal's device table, read with SQLite itself
 * (tsesim-journal(5)), holds every data row in file order with its line,
 * its cells, and either its device and chunk or why it was rejected; the
 * job's counts are right; the same rows resume and send nothing; other
 * rows under the same name, or rows that are not the request's, are
 * TSESIM_E_INVAL and send nothing; a file whose rows are all rejected is a
 * job of no chunk that contacts no one. Every test asserts from the
 * simulator that no EID was accepted twice.
 */
#include <sqlite3.h>

#include "tsesim_test.h"
#include "tt_sim.h"

/* One row the journal must hold. */
typedef struct want_row {
  long line;
  const char *eid, *iccid, *imei; /* NULL: SQL NULL */
  long device;                    /* -1: NULL (a rejected row) */
  const char *error;              /* NULL for a valid row; else the reason, exactly */
} want_row;

typedef struct rows_env {
  tt_sim *s;
  char dir[PATH_MAX], db[PATH_MAX + 16];
  tt_opts t;
  tsesim_client *c;
  tsesim_journal *j;
  size_t progress_devices; /* what the progress function said */
} rows_env;

static void env_start(rows_env *e) {
  memset(e, 0, sizeof *e);
  e->s = tt_sim_start((const char *[]){"--no-callbacks", NULL});
  tt_mkdtemp(e->dir);
  snprintf(e->db, sizeof e->db, "%s/journal.db", e->dir);
  tt_opts_for(&e->t, e->s);
  ck_assert_int_eq(tsesim_client_new(&e->c, &e->t.o), TSESIM_OK);
  ck_assert_int_eq(tsesim_journal_open(&e->j, e->db, NULL), TSESIM_OK);
}

static void env_end(rows_env *e) {
  tsesim_client_free(e->c);
  tsesim_journal_close(e->j);
  ck_assert_int_eq(tt_sim_stop(e->s), 0);
  tt_rmdir(e->dir);
}

static void on_progress(const tsesim_job_progress *p, void *payload) {
  rows_env *e = payload;
  e->progress_devices = p->devices;
  ck_assert_uint_eq(p->queued + p->sending + p->accepted + p->unknown + p->refused, p->devices);
}

static tsesim_code submit(rows_env *e, const char *name, const tsesim_request *req,
                          const tsesim_rows *rows) {
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  o.chunk_size = 2;
  o.in_flight = 2;
  o.rows = rows;
  o.progress_fn = on_progress;
  o.progress_payload = e;
  return tsesim_job_submit(e->c, e->j, name, req, &o);
}

static void expect_rc(const rows_env *e, const char *ctx, tsesim_code got, tsesim_code want) {
  ck_assert_msg(got == want, "%s: %s, expected %s; errmsg \"%s\"", ctx, tsesim_code_name(got),
                tsesim_code_name(want), tsesim_client_errmsg(e->c));
}

static void expect_errmsg_has(const rows_env *e, const char *ctx, const char *part) {
  ck_assert_msg(strstr(tsesim_client_errmsg(e->c), part) != NULL,
                "%s: errmsg \"%s\" does not say \"%s\"", ctx, tsesim_client_errmsg(e->c), part);
}

/* Parses csv (NUL-terminated) into a new request for TT_ACCOUNT. */
static tsesim_rows *parse(const char *csv, tsesim_request **out_req) {
  tsesim_rows *rows = NULL;
  char errbuf[TSESIM_ERRBUF_SIZE] = "";
  ck_assert_int_eq(tsesim_request_new(out_req, TT_ACCOUNT), TSESIM_OK);
  ck_assert_msg(tsesim_rows_parse_csv(&rows, *out_req, csv, strlen(csv), errbuf) == TSESIM_OK,
                "parse: %s", errbuf);
  return rows;
}

/* ---- the journal, read with SQLite ---- */

static sqlite3 *db_open(const rows_env *e) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(e->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  return db;
}

/* One integer from q (a statement with no parameter); -1 when no row. */
static long long db_int(const rows_env *e, const char *q) {
  sqlite3 *db = db_open(e);
  sqlite3_stmt *st;
  long long v = -1;
  ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s: %s", q,
                sqlite3_errmsg(db));
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void expect_text(const char *ctx, const char *col, sqlite3_stmt *st, int i,
                        const char *want) {
  const char *got = (const char *)sqlite3_column_text(st, i);
  if (!want)
    ck_assert_msg(sqlite3_column_type(st, i) == SQLITE_NULL, "%s: %s: \"%s\", expected NULL", ctx,
                  col, got);
  else
    tt_expect_str(ctx, col, got, want);
}

static void expect_int(const char *ctx, const char *col, sqlite3_stmt *st, int i, long want) {
  if (want < 0)
    ck_assert_msg(sqlite3_column_type(st, i) == SQLITE_NULL, "%s: %s: %lld, expected NULL", ctx,
                  col, sqlite3_column_int64(st, i));
  else
    ck_assert_msg(
        sqlite3_column_type(st, i) == SQLITE_INTEGER && sqlite3_column_int64(st, i) == want,
        "%s: %s: %s, expected %ld", ctx, col,
        sqlite3_column_text(st, i) ? (const char *)sqlite3_column_text(st, i) : "NULL", want);
}

/* The device table of job name holds exactly want[0..n), in file order
 * (idx 0, 1, ...), each valid row's chunk its device / chunk_size. */
static void expect_devices(const rows_env *e, const char *name, const want_row *want, size_t n,
                           long chunk_size) {
  sqlite3 *db = db_open(e);
  sqlite3_stmt *st;
  size_t i = 0;
  char ctx[64];
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT d.idx, d.line, d.eid, d.iccid, d.imei, d.device,"
                                      " d.chunk, d.error FROM device d JOIN job j ON j.id = d.job"
                                      " WHERE j.name = ?1 ORDER BY d.idx",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const want_row *w = &want[i];
    ck_assert_msg(i < n, "job %s: more than %lu rows in the device table", name, (unsigned long)n);
    snprintf(ctx, sizeof ctx, "job %s, device row %lu (line %ld)", name, (unsigned long)i, w->line);
    expect_int(ctx, "idx", st, 0, (long)i);
    expect_int(ctx, "line", st, 1, w->line);
    expect_text(ctx, "eid", st, 2, w->eid);
    expect_text(ctx, "iccid", st, 3, w->iccid);
    expect_text(ctx, "imei", st, 4, w->imei);
    expect_int(ctx, "device", st, 5, w->device);
    expect_int(ctx, "chunk", st, 6, w->device < 0 ? -1 : w->device / chunk_size);
    expect_text(ctx, "error", st, 7, w->error);
    i++;
  }
  ck_assert_msg(i == n, "job %s: %lu rows in the device table, expected %lu", name,
                (unsigned long)i, (unsigned long)n);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* The job row: account, plan (NULL), chunk_size, devices, rows. */
static void expect_job(const rows_env *e, const char *name, long chunk_size, long devices,
                       long rows) {
  sqlite3 *db = db_open(e);
  sqlite3_stmt *st;
  char ctx[64];
  snprintf(ctx, sizeof ctx, "job %s", name);
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT account, plan, chunk_size, devices, rows FROM job"
                                      " WHERE name = ?1",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: not recorded", ctx);
  expect_text(ctx, "account", st, 0, TT_ACCOUNT);
  expect_text(ctx, "plan", st, 1, NULL);
  expect_int(ctx, "chunk_size", st, 2, chunk_size);
  expect_int(ctx, "devices", st, 3, devices);
  expect_int(ctx, "rows", st, 4, rows);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* The job's chunks: "first,count,state;" each, in order ("" for none). */
static void expect_chunks(const rows_env *e, const char *name, const char *want) {
  sqlite3 *db = db_open(e);
  sqlite3_stmt *st;
  char got[512] = "";
  size_t off = 0;
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT c.first, c.count, c.state FROM chunk c JOIN job j"
                                      " ON j.id = c.job WHERE j.name = ?1 ORDER BY c.seq",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW && off < sizeof got)
    off +=
        (size_t)snprintf(got + off, sizeof got - off, "%lld,%lld,%s;", sqlite3_column_int64(st, 0),
                         sqlite3_column_int64(st, 1), (const char *)sqlite3_column_text(st, 2));
  sqlite3_finalize(st);
  sqlite3_close(db);
  ck_assert_msg(!strcmp(got, want), "job %s: chunks \"%s\", expected \"%s\"", name, got, want);
}

static long long jobs_named(const rows_env *e, const char *name) {
  char q[256];
  snprintf(q, sizeof q, "SELECT count(*) FROM job WHERE name = '%s'", name);
  return db_int(e, q);
}

/* How many accepted downloads held eid. */
static long sim_eid(const rows_env *e, const char *eid) {
  char path[64];
  json_t *j;
  long v;
  snprintf(path, sizeof path, "/_sim/eids/%s", eid);
  j = tt_sim_get_json(e->s, path);
  v = tt_stat_of(j, "downloads");
  json_decref(j);
  return v;
}

/* ---- the device file ---- */

/* Devices D0..D7 of seeds seed..seed+7, and the file of the tests: valid
 * rows, a bad check digit, an eid repeated, a short row, blank lines, an
 * empty cell, and a quoted newline in a column the job does not read. */
typedef struct file_env {
  tt_device d[8];
  char bad_imei[16]; /* D1's imei, its check digit wrong */
  char csv[2048];
} file_env;

static void file_make(file_env *f, unsigned long seed, const char *bad_digit_cell) {
  size_t i;
  for (i = 0; i < 8; i++) tt_plain_device(&f->d[i], seed + i);
  memcpy(f->bad_imei, f->d[1].imei, sizeof f->bad_imei);
  f->bad_imei[14] = (char)('0' + (f->bad_imei[14] - '0' + 1) % 10);
  snprintf(f->csv, sizeof f->csv,
           "eid,iccid,imei,note\n"   /* 1 */
           "%s,%s,%s,first\n"        /* 2: D0, device 0 */
           "%s,%s,%s,bad\n"          /* 3: D1, its imei wrong: rejected */
           "\n"                      /* 4: blank */
           "%s,%s,%s,\n"             /* 5: D2, device 1 */
           "%s,%s,%s,again\n"        /* 6: D0's eid again: rejected */
           "%s,%s\n"                 /* 7: short: rejected */
           "  \t\n"                  /* 8: blank */
           "%s,,%s,\"two\nlines\"\n" /* 9-10: D5 without iccid, device 2 */
           "%s,%s,%s,x\n"            /* 11: D6, device 3 */
           "%s,%s,,\n",              /* 12: D7 without imei, device 4 */
           f->d[0].eid, f->d[0].iccid, f->d[0].imei, f->d[1].eid, f->d[1].iccid,
           bad_digit_cell ? bad_digit_cell : f->bad_imei, f->d[2].eid, f->d[2].iccid, f->d[2].imei,
           f->d[0].eid, f->d[3].iccid, f->d[3].imei, f->d[4].eid, f->d[4].iccid, f->d[5].eid,
           f->d[5].imei, f->d[6].eid, f->d[6].iccid, f->d[6].imei, f->d[7].eid, f->d[7].iccid);
}

#define FILE_ROWS 8
#define FILE_DEVICES 5

/* What the journal must hold for file_make's file; imei_reason is the
 * reader's reason for line 3 (its wording is check_reader_csv's). */
static void file_want(const file_env *f, const char *imei_reason, want_row w[FILE_ROWS]) {
  const want_row rows[FILE_ROWS] = {
      {2, f->d[0].eid, f->d[0].iccid, f->d[0].imei, 0, NULL},
      {3, f->d[1].eid, f->d[1].iccid, f->bad_imei, -1, imei_reason},
      {5, f->d[2].eid, f->d[2].iccid, f->d[2].imei, 1, NULL},
      {6, f->d[0].eid, f->d[3].iccid, f->d[3].imei, -1, "eid repeats line 2"},
      {7, f->d[4].eid, f->d[4].iccid, NULL, -1, "2 cells, the header has 4"},
      {9, f->d[5].eid, NULL, f->d[5].imei, 2, NULL},
      {11, f->d[6].eid, f->d[6].iccid, f->d[6].imei, 3, NULL},
      {12, f->d[7].eid, f->d[7].iccid, NULL, 4, NULL},
  };
  memcpy(w, rows, sizeof rows);
}

/* The file recorded, sent as 3 chunks of the 5 valid devices; the same
 * rows resume and send nothing; a rejected row changed in one cell, or a
 * line moved, is another file: TSESIM_E_INVAL, nothing sent, the journal
 * as it was. */
START_TEST(test_rows_recorded_and_resumed) {
  rows_env e;
  file_env f, g;
  tsesim_request *req = NULL, *req2 = NULL;
  tsesim_rows *rows, *rows2;
  want_row want[FILE_ROWS];
  const tsesim_row *r;
  char bad2[16], moved[2100], why3[TSESIM_ERRBUF_SIZE];
  size_t i;

  env_start(&e);
  file_make(&f, 1000, NULL);
  rows = parse(f.csv, &req);
  ck_assert_uint_eq(tsesim_rows_count(rows), FILE_ROWS);
  ck_assert_uint_eq(tsesim_rows_rejected(rows), FILE_ROWS - FILE_DEVICES);
  ck_assert_uint_eq(tsesim_request_device_count(req), FILE_DEVICES);
  r = tsesim_rows_get(rows, 1);
  ck_assert_ptr_nonnull(r->error);
  ck_assert_msg(strstr(r->error, "imei") && strstr(r->error, "check digit"),
                "line 3 rejected for \"%s\"", r->error);
  /* a row lasts until the next tsesim_rows_get: its reason is copied */
  snprintf(why3, sizeof why3, "%s", r->error);
  file_want(&f, why3, want);

  expect_rc(&e, "first", submit(&e, "fleet", req, rows), TSESIM_OK);
  ck_assert_uint_eq(e.progress_devices, FILE_DEVICES);
  expect_job(&e, "fleet", 2, FILE_DEVICES, FILE_ROWS);
  expect_devices(&e, "fleet", want, FILE_ROWS, 2);
  expect_chunks(&e, "fleet", "0,2,accepted;2,2,accepted;4,1,accepted;");
  /* the server got the valid rows' devices, each once, and no other */
  tt_stats_expect(e.s, "first", TT_ST("requests.download", 3), TT_ST("downloads.accepted", 3),
                  TT_ST("downloads.devices_accepted", FILE_DEVICES),
                  TT_ST("downloads.eids_repeated", 0), NULL);
  for (i = 0; i < 8; i++) {
    long want_n = i == 0 || i == 2 || i >= 5;
    ck_assert_msg(sim_eid(&e, f.d[i].eid) == want_n, "D%lu's eid downloaded %ld times, not %ld",
                  (unsigned long)i, sim_eid(&e, f.d[i].eid), want_n);
  }

  /* the same rows: nothing to send, and no one contacted */
  e.progress_devices = 0;
  expect_rc(&e, "resumed", submit(&e, "fleet", req, rows), TSESIM_OK);
  ck_assert_uint_eq(e.progress_devices, FILE_DEVICES);
  tt_stats_expect(e.s, "resumed", TT_ST("requests.download", 3), TT_ST("requests.token", 1),
                  TT_ST("requests.login", 1), NULL);

  /* the same file with line 3's imei wrong in another way */
  snprintf(bad2, sizeof bad2, "%s", f.bad_imei);
  bad2[14] = (char)('0' + (bad2[14] - '0' + 1) % 10);
  if (!strcmp(bad2, f.d[1].imei)) bad2[14] = (char)('0' + (bad2[14] - '0' + 1) % 10);
  file_make(&g, 1000, bad2);
  ck_assert_str_ne(g.csv, f.csv);
  rows2 = parse(g.csv, &req2);
  ck_assert_uint_eq(tsesim_rows_rejected(rows2), FILE_ROWS - FILE_DEVICES);
  expect_rc(&e, "a rejected cell changed", submit(&e, "fleet", req2, rows2), TSESIM_E_INVAL);
  expect_errmsg_has(&e, "a rejected cell changed", "\"fleet\"");
  expect_errmsg_has(&e, "a rejected cell changed", "the device file changed");
  tsesim_rows_free(rows2);
  tsesim_request_free(req2);
  req2 = NULL;

  /* the same rows, one line further down: lines are part of the rows */
  snprintf(moved, sizeof moved, "%.*s\n%s", (int)(strchr(f.csv, '\n') + 1 - f.csv), f.csv,
           strchr(f.csv, '\n') + 1);
  rows2 = parse(moved, &req2);
  ck_assert_uint_eq(tsesim_rows_get(rows2, 0)->line, 3);
  expect_rc(&e, "lines moved", submit(&e, "fleet", req2, rows2), TSESIM_E_INVAL);
  expect_errmsg_has(&e, "lines moved", "the device file changed");
  tsesim_rows_free(rows2);
  tsesim_request_free(req2);

  /* nothing sent, nothing recorded */
  tt_stats_expect(e.s, "refused resumes", TT_ST("requests.download", 3),
                  TT_ST("downloads.eids_repeated", 0), NULL);
  ck_assert_int_eq(jobs_named(&e, "fleet"), 1);
  ck_assert_int_eq(db_int(&e, "SELECT count(*) FROM job"), 1);
  expect_devices(&e, "fleet", want, FILE_ROWS, 2);
  expect_chunks(&e, "fleet", "0,2,accepted;2,2,accepted;4,1,accepted;");

  tsesim_rows_free(rows);
  tsesim_request_free(req);
  env_end(&e);
}
END_TEST

/* Rows that are not the request's: from a file with another number of
 * valid rows, or from a file of as many valid rows but other devices.
 * Both TSESIM_E_INVAL; no job recorded, nothing sent. */
START_TEST(test_rows_of_another_file_count) {
  rows_env e;
  file_env f;
  tsesim_request *req = NULL, *other_req = NULL;
  tsesim_rows *rows, *other;
  tt_device d;
  char csv[512];
  env_start(&e);
  file_make(&f, 2000, NULL);
  rows = parse(f.csv, &req);
  tt_plain_device(&d, 2100);
  snprintf(csv, sizeof csv, "eid,imei\n%s,%s\n", d.eid, d.imei);
  other = parse(csv, &other_req);
  expect_rc(&e, "1 valid row for 5 devices", submit(&e, "mixed", req, other), TSESIM_E_INVAL);
  expect_errmsg_has(&e, "1 valid row for 5 devices", "rows has 1 valid rows");
  expect_rc(&e, "5 valid rows for 1 device", submit(&e, "mixed", other_req, rows), TSESIM_E_INVAL);
  ck_assert_int_eq(jobs_named(&e, "mixed"), 0);
  tt_stats_expect(e.s, "mixed", TT_ST("requests.download", 0), TT_ST("requests.token", 0), NULL);
  tsesim_rows_free(other);
  tsesim_request_free(other_req);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  env_end(&e);
}
END_TEST

/* The rows of another file of the same shape: every count and device
 * index agrees with the request, only the cells differ. Recorded, the
 * journal would name devices that were never sent (and the tracker would
 * look callbacks up by them), while the request's devices go out unnamed. */
START_TEST(test_rows_of_another_file_same_count) {
  rows_env e;
  file_env f, g;
  tsesim_request *req = NULL, *other_req = NULL;
  tsesim_rows *rows, *other;
  env_start(&e);
  file_make(&f, 3000, NULL);
  file_make(&g, 3100, NULL); /* the same shape: 5 valid rows at the same places, other devices */
  rows = parse(f.csv, &req);
  other = parse(g.csv, &other_req);
  expect_rc(&e, "rows of another file", submit(&e, "swapped", req, other), TSESIM_E_INVAL);
  ck_assert_int_eq(jobs_named(&e, "swapped"), 0);
  tt_stats_expect(e.s, "swapped", TT_ST("requests.download", 0), NULL);
  tsesim_rows_free(other);
  tsesim_request_free(other_req);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  env_end(&e);
}
END_TEST

/* Every row rejected: the job is recorded with its rows and no chunk,
 * TSESIM_OK, and no one is contacted, now or when run again. */
START_TEST(test_all_rows_rejected) {
  rows_env e;
  tsesim_request *req = NULL;
  tsesim_rows *rows;
  tt_device d[3];
  char csv[1024], bad_eid[33];
  size_t i;
  env_start(&e);
  for (i = 0; i < 3; i++) tt_plain_device(&d[i], 4000 + i);
  memcpy(bad_eid, d[0].eid, sizeof bad_eid);
  bad_eid[31] = (char)('0' + (bad_eid[31] - '0' + 1) % 10);
  snprintf(csv, sizeof csv,
           "eid,iccid,imei\n"
           "%s,%s,%s\n" /* 2: eid check digits wrong */
           "\n"
           "%s\n"             /* 4: short */
           "%s,%s,%s,extra\n" /* 5: too long */
           "%s,,\n",          /* 6: no iccid, no imei */
           bad_eid, d[0].iccid, d[0].imei, d[1].eid, d[1].eid, d[1].iccid, d[1].imei, d[2].eid);
  rows = parse(csv, &req);
  ck_assert_uint_eq(tsesim_rows_count(rows), 4);
  ck_assert_uint_eq(tsesim_rows_rejected(rows), 4);
  ck_assert_uint_eq(tsesim_request_device_count(req), 0);
  for (i = 0; i < 4; i++) ck_assert_ptr_nonnull(tsesim_rows_get(rows, i)->error);
  ck_assert_msg(strstr(tsesim_rows_get(rows, 0)->error, "eid") != NULL, "line 2: %s",
                tsesim_rows_get(rows, 0)->error);
  {
    /* a row lasts until the next tsesim_rows_get: the reasons are copied */
    char why2[TSESIM_ERRBUF_SIZE], why6[TSESIM_ERRBUF_SIZE];
    want_row w[4] = {
        {2, bad_eid, d[0].iccid, d[0].imei, -1, why2},
        {4, d[1].eid, NULL, NULL, -1, "1 cell, the header has 3"},
        {5, d[1].eid, d[1].iccid, d[1].imei, -1, "4 cells, the header has 3"},
        {6, d[2].eid, NULL, NULL, -1, why6},
    };
    snprintf(why2, sizeof why2, "%s", tsesim_rows_get(rows, 0)->error);
    snprintf(why6, sizeof why6, "%s", tsesim_rows_get(rows, 3)->error);
    expect_rc(&e, "all rejected", submit(&e, "none", req, rows), TSESIM_OK);
    expect_job(&e, "none", 2, 0, 4);
    expect_chunks(&e, "none", "");
    expect_devices(&e, "none", w, 4, 2);
  }
  tt_stats_expect(e.s, "all rejected", TT_ST("requests.token", 0), TT_ST("requests.login", 0),
                  TT_ST("requests.download", 0), NULL);
  expect_rc(&e, "again", submit(&e, "none", req, rows), TSESIM_OK);
  ck_assert_int_eq(db_int(&e, "SELECT count(*) FROM job"), 1);
  tt_stats_expect(e.s, "again", TT_ST("requests.token", 0), TT_ST("requests.login", 0),
                  TT_ST("requests.download", 0), NULL);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  env_end(&e);
}
END_TEST

/* tsesim_job_record with the rows: every row recorded, valid and rejected,
 * with the chunks queued, and no one contacted; the same request without
 * its rows, or rows that are not the request's, are refused with the
 * difference named; a submit then sends the valid devices once. */
START_TEST(test_record_with_rows) {
  rows_env e;
  file_env f;
  tsesim_request *req = NULL, *fewer = NULL;
  tsesim_rows *rows;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim_job_counts n;
  want_row want[FILE_ROWS];
  tt_device d;
  size_t i;

  env_start(&e);
  file_make(&f, 5000, NULL);
  rows = parse(f.csv, &req);
  file_want(&f, tsesim_rows_get(rows, 1)->error, want);
  o.chunk_size = 2;
  o.rows = rows;
  ck_assert_int_eq(tsesim_job_record(e.j, "fleet", req, &o), TSESIM_OK);
  expect_job(&e, "fleet", 2, FILE_DEVICES, FILE_ROWS);
  expect_devices(&e, "fleet", want, FILE_ROWS, 2);
  expect_chunks(&e, "fleet", "0,2,queued;2,2,queued;4,1,queued;");
  ck_assert_int_eq(tsesim_job_count(e.j, "fleet", &n), TSESIM_OK);
  ck_assert_uint_eq(n.devices, FILE_ROWS);
  ck_assert_uint_eq(n.queued, FILE_DEVICES);
  ck_assert_uint_eq(n.invalid, FILE_ROWS - FILE_DEVICES);
  ck_assert_int_eq(tsesim_job_record(e.j, "fleet", req, &o), TSESIM_OK); /* again */

  /* the request without its rows: the recorded rows differ */
  o.rows = NULL;
  ck_assert_int_eq(tsesim_job_record(e.j, "fleet", req, &o), TSESIM_E_INVAL);
  tt_expect_str("no rows", "errmsg", tsesim_journal_errmsg(e.j),
                "job \"fleet\" was recorded with 8 rows; this request has 5");
  /* rows that did not fill this request */
  ck_assert_int_eq(tsesim_request_new(&fewer, TT_ACCOUNT), TSESIM_OK);
  for (i = 0; i < 4; i++) {
    tt_plain_device(&d, 6000 + i);
    ck_assert_int_eq(tsesim_request_add_device(fewer, d.ids, 3), TSESIM_OK);
  }
  o.rows = rows;
  ck_assert_int_eq(tsesim_job_record(e.j, "fleet", fewer, &o), TSESIM_E_INVAL);
  tt_expect_str("other request", "errmsg", tsesim_journal_errmsg(e.j),
                "job: rows has 5 valid rows, but the request holds 4 devices");
  expect_chunks(&e, "fleet", "0,2,queued;2,2,queued;4,1,queued;");
  tt_stats_expect(e.s, "recorded", TT_ST("requests.token", 0), TT_ST("requests.login", 0),
                  TT_ST("requests.download", 0), NULL);

  expect_rc(&e, "submitted", submit(&e, "fleet", req, rows), TSESIM_OK);
  expect_chunks(&e, "fleet", "0,2,accepted;2,2,accepted;4,1,accepted;");
  tt_stats_expect(e.s, "submitted", TT_ST("requests.download", 3),
                  TT_ST("downloads.devices_accepted", FILE_DEVICES),
                  TT_ST("downloads.eids_repeated", 0), NULL);
  tsesim_request_free(fewer);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  env_end(&e);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("job_rows");
  TCase *tc = tt_tcase(s, "rows", 60);
  tcase_add_test(tc, test_rows_recorded_and_resumed);
  tcase_add_test(tc, test_rows_of_another_file_count);
  tcase_add_test(tc, test_rows_of_another_file_same_count);
  tcase_add_test(tc, test_all_rows_rejected);
  tcase_add_test(tc, test_record_with_rows);
  return s;
}

TT_MAIN_GLOBAL(suite)
