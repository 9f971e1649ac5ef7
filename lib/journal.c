/*
 * journal.c - the durable journal of jobs: one SQLite database per journal
 * (tsesim-journal(5) documents the schema), one connection per handle.
 *
 * A job is recorded once, whole, in one transaction: the job, every row of
 * its device file and every chunk, queued. After that only chunks change,
 * each change committed with synchronous=FULL in WAL mode, so that a state
 * the caller acts on (above all "sending", before a download leaves) is on
 * disk when the call returns.
 *
 * SQLite allocates with its own allocator; what this file allocates goes
 * through tsesim__malloc. The rows of a job are bound straight from the
 * request's pool or the rows' cells (SQLITE_STATIC): a million rows cost no
 * allocation of ours.
 */
#define _POSIX_C_SOURCE 200809L /* O_NOFOLLOW, O_CLOEXEC, the XSI strerror_r */

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TSESIM__WITH_SQLITE /* the journal handle (tsesim_int.h) */
#include "tsesim_int.h"

/* Until the device-file reader (rows.c) is in the same tree, these two are
 * weak references, so that the library links without it; a job recorded
 * with rows == NULL never calls them. Remove these two lines when rows.c
 * is merged: a weak reference to a defined function is an ordinary one. */

#define JOB_NAME_MAX 255
#define PATH_SHOWN 96 /* bytes of the path a message shows (its end) */
#define BUSY_TIMEOUT_MS 10000
#define CUT_OFF "interrupted while being sent (the process ended)"
#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
#define KEEP "(state = 'accepted' AND request_id IS NOT NULL AND ?3 <> 'accepted')"

/* Every statement the journal runs, prepared once when it opens. */
enum {
  S_BEGIN,
  S_COMMIT,
  S_ROLLBACK,
  S_JOB_FIND,
  S_JOB_ADD,
  S_JOB_PRINT,
  S_DEVICE_ADD,
  S_CHUNK_ADD,
  S_CHUNK_CUT,
  S_CHUNK_STATES,
  S_CHUNK_SET,
  S_COUNT
};

static const char *const sql[S_COUNT] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT id, account, plan, chunk_size, devices, rows, fingerprint FROM job WHERE name = ?1",
    "INSERT INTO job(name, account, plan, chunk_size, devices, rows, fingerprint, created)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, '', " NOW ")",
    "UPDATE job SET fingerprint = ?2 WHERE id = ?1",
    "INSERT INTO device(job, idx, line, eid, iccid, imei, device, chunk, error)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    "INSERT INTO chunk(job, seq, first, count, state, updated)"
    " VALUES(?1, ?2, ?3, ?4, 'queued', " NOW ")",
    "UPDATE chunk SET state = 'unknown', error = '" CUT_OFF "', updated = " NOW
    " WHERE job = ?1 AND state = 'sending'",
    "SELECT seq, state FROM chunk WHERE job = ?1 ORDER BY seq",
    /* A chunk that learnt its requestId from a callback (tracker.c) stays
     * accepted: the job's answer (unknown, queued, refused) came after the
     * callbacks and knows less. An "accepted" answer is recorded as given. */
    "UPDATE chunk SET"
    " state = CASE WHEN " KEEP
    " THEN state ELSE ?3 END,"
    " request_id = CASE WHEN " KEEP
    " THEN request_id ELSE ?4 END,"
    " http_status = CASE WHEN " KEEP
    " THEN http_status ELSE ?5 END,"
    " error = CASE WHEN " KEEP
    " THEN error ELSE ?6 END,"
    " attempts = attempts + ?7, updated = " NOW " WHERE job = ?1 AND seq = ?2",
};

/* What version 2 adds beside columns: the tracker's tables and indexes.
 * callback_repeat is the repeat key: requestId, the device (job and idx
 * when matched, else the callback's key) and the status,
 * case-insensitively. */
#define SCHEMA_V2_TABLES                                                                 \
  "CREATE INDEX chunk_request ON chunk(request_id);"                                     \
  "CREATE TABLE callback(id INTEGER PRIMARY KEY, received TEXT NOT NULL,"                \
  " request_id TEXT NOT NULL, job INTEGER REFERENCES job(id), idx INTEGER,"              \
  " kind TEXT NOT NULL, key TEXT NOT NULL, status TEXT, callback_count INTEGER,"         \
  " fault_code TEXT, fault_string TEXT, body TEXT, repeats INTEGER NOT NULL DEFAULT 0);" \
  "CREATE UNIQUE INDEX callback_repeat ON callback(request_id, ifnull(job, 0),"          \
  " ifnull(idx, kind || ':' || key), ifnull(status, '') COLLATE NOCASE);"                \
  "CREATE INDEX callback_unmatched ON callback(id) WHERE job IS NULL;"

/* The schema of version 2 (tsesim-journal(5)) for a new journal, whole: run
 * in the transaction that sets user_version, so a journal holds all of it
 * or none. Its tables have the columns, in the same order, that version 1's
 * get from schema_v1_to_v2 (check_tracker compares the two). The tracker's
 * look-ups of devices by eid, iccid and imei (device_eid, device_iccid,
 * device_imei) are made neither here nor while a job's rows go in:
 * tracker.c makes each the first time a callback needs it, so recording a
 * job pays for no index, and a journal whose callbacks all carry an eid
 * never builds the other two. */
static const char schema_v2[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE job(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " account TEXT NOT NULL, plan TEXT, chunk_size INTEGER NOT NULL,"
    " devices INTEGER NOT NULL, rows INTEGER NOT NULL, fingerprint TEXT NOT NULL,"
    " created TEXT NOT NULL, callbacks INTEGER NOT NULL DEFAULT 0,"
    " duplicates INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE chunk(job INTEGER NOT NULL REFERENCES job(id), seq INTEGER NOT NULL,"
    " first INTEGER NOT NULL, count INTEGER NOT NULL, state TEXT NOT NULL"
    " CHECK(state IN ('queued','sending','accepted','unknown','refused')),"
    " request_id TEXT, http_status INTEGER, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
    " updated TEXT NOT NULL, warning INTEGER NOT NULL DEFAULT 0,"
    " success INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(job, seq)) WITHOUT ROWID;"
    "CREATE TABLE device(job INTEGER NOT NULL REFERENCES job(id), idx INTEGER NOT NULL,"
    " line INTEGER NOT NULL, eid TEXT, iccid TEXT, imei TEXT, device INTEGER, chunk INTEGER,"
    " error TEXT, status TEXT, fault TEXT, outcome TEXT"
    " CHECK(outcome IS NULL OR outcome IN ('warning','success','failed')),"
    " callbacks INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(job, idx)) WITHOUT ROWID;" SCHEMA_V2_TABLES
    "PRAGMA user_version = 2;";

/* Brings a version 1 journal to version 2, in the transaction that opens it. */
static const char schema_v1_to_v2[] =
    "ALTER TABLE device ADD COLUMN status TEXT;"
    "ALTER TABLE device ADD COLUMN fault TEXT;"
    "ALTER TABLE device ADD COLUMN outcome TEXT"
    " CHECK(outcome IS NULL OR outcome IN ('warning','success','failed'));"
    "ALTER TABLE device ADD COLUMN callbacks INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE chunk ADD COLUMN warning INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE chunk ADD COLUMN success INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE chunk ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE job ADD COLUMN callbacks INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE job ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;" SCHEMA_V2_TABLES
    "PRAGMA user_version = 2;";

/* The handle (tsesim_int.h) holds st[TSESIM__JOURNAL_STMTS] for these. */
typedef char journal_stmts_check[S_COUNT == TSESIM__JOURNAL_STMTS ? 1 : -1];
typedef char journal_path_check[sizeof(((tsesim_journal *)0)->path) >= PATH_SHOWN + 4 ? 1 : -1];

static const char *const state_names[] = {"queued", "sending", "accepted", "unknown", "refused"};

const char *tsesim__chunk_state_name(int state) {
  if (state < 0 || state > TSESIM__CHUNK_REFUSED) return NULL;
  return state_names[state];
}

static int chunk_state_parse(const unsigned char *s) {
  int i;
  if (!s) return -1;
  for (i = 0; i <= TSESIM__CHUNK_REFUSED; i++)
    if (strcmp((const char *)s, state_names[i]) == 0) return i;
  return -1;
}

/* ---- messages ---- */

static void path_shown(char *dst, const char *path) {
  size_t n = strlen(path);
  if (n <= PATH_SHOWN) {
    memcpy(dst, path, n + 1);
  } else {
    memcpy(dst, "...", 3);
    memcpy(dst + 3, path + n - (PATH_SHOWN - 3), PATH_SHOWN - 3 + 1);
  }
}

static void set_msg(tsesim_journal *j, const char *fmt, ...) TSESIM__PRINTF(2, 3);
static void set_msg(tsesim_journal *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__errbuf_vset(j->errmsg, fmt, ap);
  va_end(ap);
}

/* SQLite's failure on db as the library's: NOMEM stays NOMEM, the rest is
 * the journal's. errmsg: "journal PATH: what: SQLite's message". Called
 * right after the failing call, before anything else touches db. */
static tsesim_code db_fail(tsesim_journal *j, const char *what) {
  int code = sqlite3_errcode(j->db) & 0xff;
  set_msg(j, "journal %s: %s: %s", j->path, what, sqlite3_errmsg(j->db));
  return code == SQLITE_NOMEM ? TSESIM_E_NOMEM : TSESIM_E_JOURNAL;
}

/* ---- statements ---- */

/* Ready for the next use: reset (which also ends the read a SELECT holds,
 * so that it keeps no WAL snapshot open) and no binding left pointing into
 * the caller's memory. */
static void done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no row, then readies it again. */
static int run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static tsesim_code begin(tsesim_journal *j) {
  if (run(j->st[S_BEGIN]) != SQLITE_OK) return db_fail(j, "cannot begin a transaction");
  return TSESIM_OK;
}

/* Ends a failed transaction, if one is open; the message of the failure
 * that led here is kept. */
static void rollback(tsesim_journal *j) {
  if (!sqlite3_get_autocommit(j->db)) run(j->st[S_ROLLBACK]);
}

static tsesim_code commit(tsesim_journal *j) {
  tsesim_code rc;
  if (run(j->st[S_COMMIT]) == SQLITE_OK) return TSESIM_OK;
  rc = db_fail(j, "cannot commit");
  rollback(j);
  return rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s, size_t n) {
  if (!s) return sqlite3_bind_null(st, i);
  return sqlite3_bind_text(st, i, s, (int)n, SQLITE_STATIC);
}

static int bind_str(sqlite3_stmt *st, int i, const char *s) {
  return bind_text(st, i, s, s ? strlen(s) : 0);
}

/* ---- opening ---- */

/* One integer from a statement such as "PRAGMA user_version"; *out = -1 if
 * it gave no row. */
static int query_int(sqlite3 *db, const char *q, long long *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
  *out = -1;
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  /* finalize returns the step's error again; keep the first */
  sqlite3_finalize(st);
  return rc;
}

/* The schema, in one transaction; rechecked inside it, since another
 * process may be making the same journal at the same time. */
static tsesim_code schema_make(tsesim_journal *j) {
  long long v, tables;
  tsesim_code rc;
  if (sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return db_fail(j, "cannot begin a transaction");
  if (query_int(j->db, "PRAGMA user_version", &v) != SQLITE_OK ||
      query_int(j->db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK) {
    rc = db_fail(j, "cannot read it");
    goto fail;
  }
  if (v == 0) {
    if (tables != 0) {
      set_msg(j,
              "journal %s: not a libtsesim journal: it holds %lld tables and no schema "
              "version (user_version 0)",
              j->path, tables);
      rc = TSESIM_E_JOURNAL;
      goto fail;
    }
    if (sqlite3_exec(j->db, schema_v2, NULL, NULL, NULL) != SQLITE_OK) {
      rc = db_fail(j, "cannot make the schema");
      goto fail;
    }
  }
  /* Migrations: a journal of version v < TSESIM__JOURNAL_VERSION is
   * brought up to date, one version at a time, in this transaction. */
  if (v == 1 && sqlite3_exec(j->db, schema_v1_to_v2, NULL, NULL, NULL) != SQLITE_OK) {
    rc = db_fail(j, "cannot bring the schema to version 2");
    goto fail;
  }
  if (sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    rc = db_fail(j, "cannot commit the schema");
    goto fail;
  }
  return TSESIM_OK;
fail:
  if (!sqlite3_get_autocommit(j->db)) sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static tsesim_code configure(tsesim_journal *j) {
  long long v;
  sqlite3_stmt *st = NULL;
  const unsigned char *mode;
  int rc, i, wal;

  sqlite3_busy_timeout(j->db, BUSY_TIMEOUT_MS);
  /* Read first: a file that is not SQLite fails here, and a newer journal
   * is refused before anything in it changes, its journal mode included. */
  if (query_int(j->db, "PRAGMA user_version", &v) != SQLITE_OK) return db_fail(j, "cannot read it");
  if (v > TSESIM__JOURNAL_VERSION) {
    set_msg(
        j, "journal %s: schema version %lld is newer than this library's %d; use a newer libtsesim",
        j->path, v, TSESIM__JOURNAL_VERSION);
    return TSESIM_E_JOURNAL;
  }
  if (sqlite3_db_readonly(j->db, "main") == 1) {
    set_msg(j, "journal %s: opened read-only: the file or its directory cannot be written",
            j->path);
    return TSESIM_E_JOURNAL;
  }
  if (sqlite3_prepare_v2(j->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
    return db_fail(j, "cannot set WAL mode");
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    return db_fail(j, "cannot set WAL mode");
  }
  mode = sqlite3_column_text(st, 0);
  if (!mode) { /* the column could not be read: out of memory */
    sqlite3_finalize(st);
    return db_fail(j, "cannot set WAL mode");
  }
  wal = strcmp((const char *)mode, "wal") == 0;
  if (!wal) /* e.g. a file system without shared memory */
    set_msg(j, "journal %s: SQLite kept journal mode \"%s\" and refused WAL", j->path,
            (const char *)mode);
  sqlite3_finalize(st);
  if (!wal) return TSESIM_E_JOURNAL;
  if (sqlite3_exec(j->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL, NULL,
                   NULL) != SQLITE_OK)
    return db_fail(j, "cannot set synchronous and foreign_keys");
  if (v < TSESIM__JOURNAL_VERSION) {
    tsesim_code trc = schema_make(j);
    if (trc) return trc;
  }
  for (i = 0; i < S_COUNT; i++) {
    if (sqlite3_prepare_v3(j->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->st[i], NULL) !=
        SQLITE_OK)
      return db_fail(j, "cannot prepare its statements");
  }
  for (i = 0; i < TSESIM__T_COUNT; i++) {
    /* the look-ups of devices are prepared once their index exists */
    if (i >= TSESIM__T_FIND_EID_RID && i <= TSESIM__T_FIND_IMEI_NEW) continue;
    if (sqlite3_prepare_v3(j->db, tsesim__tracker_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->tr[i],
                           NULL) != SQLITE_OK)
      return db_fail(j, "cannot prepare its statements");
  }
  return TSESIM_OK;
}

tsesim_code tsesim_journal_open(tsesim_journal **out, const char *path, char *errbuf) {
  tsesim_journal *j;
  tsesim_code rc;
  int fd, flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

  if (!out) {
    tsesim__errbuf_set(errbuf, "out is NULL");
    return TSESIM_E_INVAL;
  }
  *out = NULL;
  if (!path || !*path) {
    tsesim__errbuf_set(errbuf, "path is %s", path ? "empty" : "NULL");
    return TSESIM_E_INVAL;
  }
  j = tsesim__malloc(sizeof *j);
  if (!j) {
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  memset(j, 0, sizeof *j);
  path_shown(j->path, path);

  /* Made here with mode 0600, not by SQLite (which would use 0644 less the
   * umask): the listener's credentials will live in it. An existing file
   * keeps its mode; SQLite gives the -wal and -shm files the main file's. */
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
  } else if (errno != EEXIST) {
    char why[128];
    int e = errno;
    if (strerror_r(e, why, sizeof why) != 0) snprintf(why, sizeof why, "errno %d", e);
    set_msg(j, "journal %s: cannot create it: %s", j->path, why);
    rc = TSESIM_E_JOURNAL;
    goto fail;
  }
#ifdef SQLITE_OPEN_NOFOLLOW
  flags |= SQLITE_OPEN_NOFOLLOW;
#endif
  if (sqlite3_open_v2(path, &j->db, flags, NULL) != SQLITE_OK) {
    if (j->db) {
      rc = db_fail(j, "cannot open it");
    } else { /* SQLite could not even allocate its handle */
      set_msg(j, "journal %s: cannot open it: out of memory", j->path);
      rc = TSESIM_E_NOMEM;
    }
    goto fail;
  }
  rc = configure(j);
  if (rc) goto fail;
#ifdef TSESIM_TEST_HOOKS
  if (tsesim__test_journal_open_sql &&
      sqlite3_exec(j->db, tsesim__test_journal_open_sql, NULL, NULL, NULL) != SQLITE_OK) {
    rc = db_fail(j, "cannot run the test's SQL");
    goto fail;
  }
#endif
  *out = j;
  return TSESIM_OK;
fail:
  tsesim__errbuf_set(errbuf, "%s", j->errmsg);
  tsesim_journal_close(j);
  return rc;
}

const char *tsesim_journal_errmsg(const tsesim_journal *journal) {
  return journal ? journal->errmsg : "journal is NULL";
}

void tsesim_journal_close(tsesim_journal *journal) {
  int i;
  if (!journal) return;
  for (i = 0; i < S_COUNT; i++) sqlite3_finalize(journal->st[i]);
  for (i = 0; i < TSESIM__T_COUNT; i++) sqlite3_finalize(journal->tr[i]);
  /* Every statement is finalized first, so the plain sqlite3_close closes
   * at once (sqlite3_close_v2 would leave a "zombie" connection behind any
   * statement forgotten). */
  sqlite3_close(journal->db);
  for (i = 0; i < (int)journal->n_names; i++) tsesim__free(journal->names[i].name);
  tsesim__free(journal->names);
  tsesim__free(journal);
}

#ifdef TSESIM_TEST_HOOKS
void *tsesim__test_journal_db(tsesim_journal *j) { return j ? j->db : NULL; }
const char *tsesim__test_journal_open_sql = NULL;
#endif

/* ---- for tracker.c ---- */

tsesim_code tsesim__journal_fail(tsesim_journal *j, const char *what) { return db_fail(j, what); }

void tsesim__journal_msg(tsesim_journal *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__errbuf_vset(j->errmsg, fmt, ap);
  va_end(ap);
}

tsesim_code tsesim__journal_begin(tsesim_journal *j) { return begin(j); }
tsesim_code tsesim__journal_commit(tsesim_journal *j) { return commit(j); }
void tsesim__journal_rollback(tsesim_journal *j) { rollback(j); }

/* ---- the rows of a job ---- */

/* One row, as recorded: pointers into the request's pool or the rows'
 * cells, lengths given (the pool has no terminators). */
typedef struct row_view {
  unsigned long long line;
  const char *id[3]; /* eid, iccid, imei; NULL when absent */
  size_t len[3];
  const char *error; /* NULL for a valid row */
  size_t device;     /* a valid row: its device in the request */
} row_view;

/* 64-bit FNV-1a: the job's fingerprint, to tell on resume whether the
 * rows are the ones recorded without reading a million of them back. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static unsigned long long fnv(unsigned long long h, const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ b[i]) * FNV_PRIME;
  return h;
}

/* A field: 0x01 for none, else 0x02, its bytes and 0x00 (no field holds a
 * NUL byte), so that no two sequences of fields hash the same bytes. */
static unsigned long long fnv_field(unsigned long long h, const char *s, size_t n) {
  static const unsigned char none = 1, some = 2, end = 0;
  if (!s) return fnv(h, &none, 1);
  h = fnv(h, &some, 1);
  h = fnv(h, s, n);
  return fnv(h, &end, 1);
}

static unsigned long long fnv_row(unsigned long long h, const row_view *r) {
  unsigned char line[8], valid = r->error ? 'r' : 'v';
  int i;
  for (i = 0; i < 8; i++) line[i] = (unsigned char)(r->line >> (8 * i));
  h = fnv(h, line, sizeof line);
  for (i = 0; i < 3; i++) h = fnv_field(h, r->id[i], r->len[i]);
  return fnv(h, &valid, 1);
}

static unsigned long long fnv_head(const tsesim_request *req) {
  unsigned long long h = FNV_OFFSET;
  h = fnv_field(h, req->account_name, strlen(req->account_name));
  return fnv_field(h, req->service_plan, req->service_plan ? strlen(req->service_plan) : 0);
}

/* Row i of the job: rows[i], or device i of the request as line i + 1.
 * *valid counts the valid rows so far; a valid row must be the request's
 * next device, else the rows were not read into this request. */
static tsesim_code row_get(tsesim_journal *j, const tsesim_request *req, const tsesim_rows *rows,
                           size_t i, size_t *valid, row_view *r) {
  memset(r, 0, sizeof *r);
  if (!rows) {
    const tsesim__device *d = &req->devs[i];
    size_t off = d->off;
    int k;
    for (k = 0; k < d->n_ids; k++) {
      int col = d->kind[k] == TSESIM_ID_EID ? 0 : d->kind[k] == TSESIM_ID_ICCID ? 1 : 2;
      r->id[col] = req->pool + off;
      r->len[col] = d->len[k];
      off += d->len[k];
    }
    r->line = (unsigned long long)i + 1;
    r->device = i;
  } else {
    const tsesim_row *row = tsesim_rows_get(rows, i);
    int k;
    if (!row) {
      set_msg(j, "rows: no row %lu of %lu", (unsigned long)i,
              (unsigned long)tsesim_rows_count(rows));
      return TSESIM_E_INVAL;
    }
    r->line = row->line;
    r->id[0] = row->eid;
    r->id[1] = row->iccid;
    r->id[2] = row->imei;
    for (k = 0; k < 3; k++) r->len[k] = r->id[k] ? strlen(r->id[k]) : 0;
    r->error = row->error;
    r->device = row->device;
    if (!row->error && (row->device != *valid || row->device >= req->n_devs)) {
      set_msg(j,
              "rows do not match the request: line %lu is device %lu in the rows, and the "
              "request's device %lu is its next (of %lu)",
              row->line, (unsigned long)row->device, (unsigned long)*valid,
              (unsigned long)req->n_devs);
      return TSESIM_E_INVAL;
    }
    if (!row->error) { /* its cells are the device's identifiers, kind by kind */
      const tsesim__device *d = &req->devs[row->device];
      size_t off = d->off;
      int n_cells = 0, same = 1;
      for (k = 0; k < 3; k++) n_cells += r->id[k] != NULL;
      for (k = 0; k < d->n_ids; k++) {
        int col = d->kind[k] == TSESIM_ID_EID ? 0 : d->kind[k] == TSESIM_ID_ICCID ? 1 : 2;
        if (!r->id[col] || r->len[col] != d->len[k] ||
            memcmp(r->id[col], req->pool + off, d->len[k]) != 0)
          same = 0;
        off += d->len[k];
      }
      if (!same || n_cells != d->n_ids) {
        set_msg(j,
                "rows do not match the request: line %lu holds other identifiers than the "
                "request's device %lu",
                row->line, (unsigned long)row->device);
        return TSESIM_E_INVAL;
      }
    }
  }
  if (!r->error) (*valid)++;
  return TSESIM_OK;
}

/* After the last row: every device of the request had its row. */
static tsesim_code rows_total(tsesim_journal *j, const tsesim_request *req, size_t valid) {
  if (valid == req->n_devs) return TSESIM_OK;
  set_msg(j, "rows do not match the request: %lu valid rows, %lu devices in the request",
          (unsigned long)valid, (unsigned long)req->n_devs);
  return TSESIM_E_INVAL;
}

/* The fingerprint of the request's rows, in one pass. */
static tsesim_code fingerprint(tsesim_journal *j, const tsesim_request *req,
                               const tsesim_rows *rows, size_t n_rows, char hex[17]) {
  unsigned long long h = fnv_head(req);
  size_t i, valid = 0;
  row_view r;
  for (i = 0; i < n_rows; i++) {
    tsesim_code rc = row_get(j, req, rows, i, &valid, &r);
    if (rc) return rc;
    h = fnv_row(h, &r);
  }
  snprintf(hex, 17, "%016llx", h);
  return rows_total(j, req, valid);
}

/* ---- jobs ---- */

static size_t chunks_of(size_t devices, size_t chunk_size) {
  return devices / chunk_size + (devices % chunk_size != 0);
}

/* Records a new job: the job, its chunks (queued) and its rows, in the
 * transaction the caller opened. */
static tsesim_code job_add(tsesim_journal *j, const char *name, const tsesim_request *req,
                           const tsesim_rows *rows, size_t n_rows, size_t chunk_size,
                           tsesim__job_rec *out) {
  sqlite3_stmt *st = j->st[S_JOB_ADD];
  unsigned long long h = fnv_head(req);
  size_t i, valid = 0, n_chunks = chunks_of(req->n_devs, chunk_size);
  long long id;
  char hex[17];
  row_view r;
  tsesim_code rc;

  if (bind_str(st, 1, name) || bind_str(st, 2, req->account_name) ||
      bind_str(st, 3, req->service_plan) || sqlite3_bind_int64(st, 4, (long long)chunk_size) ||
      sqlite3_bind_int64(st, 5, (long long)req->n_devs) ||
      sqlite3_bind_int64(st, 6, (long long)n_rows) || run(st) != SQLITE_OK) {
    rc = db_fail(j, "cannot record the job");
    done(st);
    return rc;
  }
  done(st);
  id = sqlite3_last_insert_rowid(j->db);

  st = j->st[S_CHUNK_ADD];
  sqlite3_bind_int64(st, 1, id);
  for (i = 0; i < n_chunks; i++) {
    size_t first = i * chunk_size, count = req->n_devs - first;
    if (count > chunk_size) count = chunk_size;
    if (sqlite3_bind_int64(st, 2, (long long)i) || sqlite3_bind_int64(st, 3, (long long)first) ||
        sqlite3_bind_int64(st, 4, (long long)count) || run(st) != SQLITE_OK) {
      rc = db_fail(j, "cannot record a chunk");
      done(st);
      return rc;
    }
  }
  done(st);

  st = j->st[S_DEVICE_ADD];
  sqlite3_bind_int64(st, 1, id);
  for (i = 0; i < n_rows; i++) {
    int k, e = 0;
    rc = row_get(j, req, rows, i, &valid, &r);
    if (rc) {
      done(st);
      return rc;
    }
    h = fnv_row(h, &r);
    e |= sqlite3_bind_int64(st, 2, (long long)i);
    e |= sqlite3_bind_int64(st, 3, (long long)r.line);
    for (k = 0; k < 3; k++) e |= bind_text(st, 4 + k, r.id[k], r.len[k]);
    if (r.error) {
      e |= sqlite3_bind_null(st, 7);
      e |= sqlite3_bind_null(st, 8);
    } else {
      e |= sqlite3_bind_int64(st, 7, (long long)r.device);
      e |= sqlite3_bind_int64(st, 8, (long long)(r.device / chunk_size));
    }
    e |= bind_str(st, 9, r.error);
    if (e || run(st) != SQLITE_OK) {
      rc = db_fail(j, "cannot record a row");
      done(st);
      return rc;
    }
  }
  done(st);
  rc = rows_total(j, req, valid);
  if (rc) return rc;
  st = j->st[S_JOB_PRINT];
  snprintf(hex, sizeof hex, "%016llx", h);
  if (sqlite3_bind_int64(st, 1, id) || bind_str(st, 2, hex) || run(st) != SQLITE_OK) {
    rc = db_fail(j, "cannot record the job");
    done(st);
    return rc;
  }
  done(st);
  out->id = id;
  out->chunk_size = chunk_size;
  out->n_chunks = n_chunks;
  out->n_devices = req->n_devs;
  out->n_rows = n_rows;
  return TSESIM_OK;
}

/* 1 when the recorded cell (column col of st) is the row's cell. */
static int same_cell(sqlite3_stmt *st, int col, const char *id, size_t len) {
  const char *v = (const char *)sqlite3_column_text(st, col);
  if (!v || !id) return !v && !id;
  return (size_t)sqlite3_column_bytes(st, col) == len && memcmp(v, id, len) == 0;
}

/* The rows differ from the recorded ones (their fingerprints do): finds
 * the first that differs, reading the device table back in file order, for
 * a message that says where. 0 when none is found (rows missing, or memory). */
static unsigned long long first_difference(tsesim_journal *j, long long job,
                                           const tsesim_request *req, const tsesim_rows *rows,
                                           size_t n_rows, unsigned long long *rec_line) {
  sqlite3_stmt *st = NULL;
  unsigned long long at = 0;
  size_t i, valid = 0;
  row_view r;
  *rec_line = 0;
  if (sqlite3_prepare_v2(j->db,
                         "SELECT line, eid, iccid, imei, error IS NULL FROM device WHERE job = ?1 "
                         "ORDER BY idx",
                         -1, &st, NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_int64(st, 1, job);
  for (i = 0; i < n_rows && sqlite3_step(st) == SQLITE_ROW; i++) {
    if (row_get(j, req, rows, i, &valid, &r) != TSESIM_OK) break;
    if ((unsigned long long)sqlite3_column_int64(st, 0) != r.line ||
        !same_cell(st, 1, r.id[0], r.len[0]) || !same_cell(st, 2, r.id[1], r.len[1]) ||
        !same_cell(st, 3, r.id[2], r.len[2]) || sqlite3_column_int(st, 4) != !r.error) {
      at = r.line;
      *rec_line = (unsigned long long)sqlite3_column_int64(st, 0);
      break;
    }
  }
  sqlite3_finalize(st);
  return at;
}

/* The recorded job (the current row of S_JOB_FIND) against this request;
 * TSESIM_E_INVAL with errmsg naming the first difference. */
static tsesim_code job_match(tsesim_journal *j, sqlite3_stmt *st, const char *name,
                             const tsesim_request *req, const tsesim_rows *rows, size_t n_rows,
                             size_t chunk_size, tsesim__job_rec *out) {
  const char *account = (const char *)sqlite3_column_text(st, 1);
  const char *plan = (const char *)sqlite3_column_text(st, 2);
  long long rec_chunk = sqlite3_column_int64(st, 3), rec_devices = sqlite3_column_int64(st, 4),
            rec_rows = sqlite3_column_int64(st, 5);
  const char *print = (const char *)sqlite3_column_text(st, 6);
  char shown[80], a[80], b[80], hex[17];
  tsesim_code rc;

  if (!account || !print || rec_chunk < 1 || rec_chunk > TSESIM_MAX_DEVICES_PER_REQUEST ||
      rec_devices < 0 || rec_rows < rec_devices) {
    /* a column read can fail for memory only; anything else is damage */
    if ((sqlite3_errcode(j->db) & 0xff) == SQLITE_NOMEM) return db_fail(j, "cannot read the job");
    set_msg(j, "journal %s: job row damaged (chunk_size %lld, devices %lld, rows %lld)", j->path,
            rec_chunk, rec_devices, rec_rows);
    return TSESIM_E_JOURNAL;
  }
  tsesim__quote(shown, sizeof shown, name, 48);
  if (strcmp(account, req->account_name) != 0) {
    tsesim__quote(a, sizeof a, account, 64);
    tsesim__quote(b, sizeof b, req->account_name, 64);
    set_msg(j, "job %s was recorded for account %s, not %s", shown, a, b);
    return TSESIM_E_INVAL;
  }
  if (!plan != !req->service_plan || (plan && strcmp(plan, req->service_plan) != 0)) {
    if (plan) tsesim__quote(a, sizeof a, plan, 64);
    if (req->service_plan) tsesim__quote(b, sizeof b, req->service_plan, 64);
    set_msg(j, "job %s was recorded with %s%s; this request has %s%s", shown,
            plan ? "plan " : "no plan", plan ? a : "", req->service_plan ? "plan " : "none",
            req->service_plan ? b : "");
    return TSESIM_E_INVAL;
  }
  if ((unsigned long long)rec_rows != n_rows) {
    set_msg(j, "job %s was recorded with %lld rows; this request has %lu", shown, rec_rows,
            (unsigned long)n_rows);
    return TSESIM_E_INVAL;
  }
  if ((unsigned long long)rec_devices != req->n_devs) {
    set_msg(j, "job %s was recorded with %lld valid devices; this request has %lu", shown,
            rec_devices, (unsigned long)req->n_devs);
    return TSESIM_E_INVAL;
  }
  rc = fingerprint(j, req, rows, n_rows, hex);
  if (rc) return rc;
  if (strcmp(hex, print) != 0) {
    unsigned long long rec_line,
        at = first_difference(j, sqlite3_column_int64(st, 0), req, rows, n_rows, &rec_line);
    if (at && at == rec_line)
      set_msg(j,
              "job %s was recorded with other rows (the device file changed): line %llu "
              "differs",
              shown, at);
    else if (at)
      set_msg(j,
              "job %s was recorded with other rows (the device file changed): row at line %llu "
              "differs from the one recorded (at line %llu)",
              shown, at, rec_line);
    else
      set_msg(j, "job %s was recorded with other rows (the device file changed)", shown);
    return TSESIM_E_INVAL;
  }
  if (chunk_size && (long long)chunk_size != rec_chunk) {
    set_msg(j, "job %s was recorded with chunk size %lld, not %lu", shown, rec_chunk,
            (unsigned long)chunk_size);
    return TSESIM_E_INVAL;
  }
  out->id = sqlite3_column_int64(st, 0);
  out->chunk_size = (size_t)rec_chunk;
  out->n_devices = (size_t)rec_devices;
  out->n_rows = (size_t)rec_rows;
  out->n_chunks = chunks_of(out->n_devices, out->chunk_size);
  return TSESIM_OK;
}

tsesim_code tsesim__journal_job_begin(tsesim_journal *j, const char *name,
                                      const tsesim_request *req, const tsesim_rows *rows,
                                      size_t chunk_size, tsesim__job_rec *out) {
  sqlite3_stmt *st;
  size_t n_rows;
  tsesim__job_rec rec;
  tsesim_code rc;
  int step;

  if (!j) return TSESIM_E_INVAL;
  if (!req || !out) {
    set_msg(j, "%s is NULL", req ? "out" : "req");
    return TSESIM_E_INVAL;
  }
  memset(out, 0, sizeof *out);
  rc = tsesim__text_check("job name", name, JOB_NAME_MAX, j->errmsg);
  if (rc) return rc;
  if (chunk_size > TSESIM_MAX_DEVICES_PER_REQUEST) {
    set_msg(j, "chunk size %lu: at most %d", (unsigned long)chunk_size,
            TSESIM_MAX_DEVICES_PER_REQUEST);
    return TSESIM_E_INVAL;
  }
  n_rows = rows ? tsesim_rows_count(rows) : req->n_devs;
  memset(&rec, 0, sizeof rec);

  /* One write transaction from the lookup on: two processes that record the
   * same job name one after the other cannot both find it missing. */
  rc = begin(j);
  if (rc) return rc;
  st = j->st[S_JOB_FIND];
  bind_str(st, 1, name);
  step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    rc = job_match(j, st, name, req, rows, n_rows, chunk_size, &rec);
    done(st);
    if (!rc) {
      sqlite3_stmt *cut = j->st[S_CHUNK_CUT];
      if (sqlite3_bind_int64(cut, 1, rec.id) || run(cut) != SQLITE_OK)
        rc = db_fail(j, "cannot mark the chunks cut off while being sent");
      done(cut);
    }
  } else if (step == SQLITE_DONE) {
    done(st);
    rc = job_add(j, name, req, rows, n_rows, chunk_size ? chunk_size : 10000, &rec);
  } else {
    rc = db_fail(j, "cannot look the job up");
    done(st);
  }
  if (rc) {
    rollback(j);
    return rc;
  }
  rc = commit(j);
  if (rc) return rc;
  *out = rec;
  j->errmsg[0] = '\0';
  return TSESIM_OK;
}

tsesim_code tsesim__journal_chunk_states(tsesim_journal *j, const tsesim__job_rec *job,
                                         unsigned char *states) {
  sqlite3_stmt *st;
  size_t n = 0;
  int step;
  tsesim_code rc = TSESIM_OK;

  if (!j) return TSESIM_E_INVAL;
  if (!job || (!states && job->n_chunks)) {
    set_msg(j, "%s is NULL", job ? "states" : "job");
    return TSESIM_E_INVAL;
  }
  st = j->st[S_CHUNK_STATES];
  sqlite3_bind_int64(st, 1, job->id);
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    long long seq = sqlite3_column_int64(st, 0);
    int s = chunk_state_parse(sqlite3_column_text(st, 1));
    if (seq != (long long)n || n >= job->n_chunks || s < 0) {
      if ((sqlite3_errcode(j->db) & 0xff) == SQLITE_NOMEM) {
        rc = db_fail(j, "cannot read the chunks");
      } else {
        set_msg(j, "journal %s: job %lld: chunk %lld found where chunk %lu of %lu was expected%s",
                j->path, (long long)job->id, seq, (unsigned long)n, (unsigned long)job->n_chunks,
                s < 0 ? ", in no known state" : "");
        rc = TSESIM_E_JOURNAL;
      }
      break;
    }
    states[n++] = (unsigned char)s;
  }
  if (!rc && step != SQLITE_DONE) rc = db_fail(j, "cannot read the chunks");
  if (!rc && n != job->n_chunks) {
    set_msg(j, "journal %s: job %lld has %lu chunks recorded, not %lu", j->path, (long long)job->id,
            (unsigned long)n, (unsigned long)job->n_chunks);
    rc = TSESIM_E_JOURNAL;
  }
  done(st);
  if (!rc) j->errmsg[0] = '\0';
  return rc;
}

tsesim_code tsesim__journal_chunks_set(tsesim_journal *j, const tsesim__job_rec *job,
                                       const tsesim__chunk_change *changes, size_t n) {
  sqlite3_stmt *st;
  size_t i;
  tsesim_code rc;

  if (!j) return TSESIM_E_INVAL;
  if (!job || (!changes && n)) {
    set_msg(j, "%s is NULL", job ? "changes" : "job");
    return TSESIM_E_INVAL;
  }
  for (i = 0; i < n; i++) {
    if (changes[i].seq >= job->n_chunks || !tsesim__chunk_state_name(changes[i].state)) {
      set_msg(j, "changes[%lu]: chunk %lu of %lu, state %d", (unsigned long)i,
              (unsigned long)changes[i].seq, (unsigned long)job->n_chunks, changes[i].state);
      return TSESIM_E_INVAL;
    }
  }
  rc = begin(j);
  if (rc) return rc;
  st = j->st[S_CHUNK_SET];
  sqlite3_bind_int64(st, 1, job->id);
  for (i = 0; i < n; i++) {
    const tsesim__chunk_change *c = &changes[i];
    int e = 0;
    e |= sqlite3_bind_int64(st, 2, (long long)c->seq);
    e |= bind_str(st, 3, tsesim__chunk_state_name(c->state));
    e |= bind_str(st, 4, c->request_id);
    e |= c->http_status ? sqlite3_bind_int64(st, 5, c->http_status) : sqlite3_bind_null(st, 5);
    e |= bind_str(st, 6, c->error);
    e |= sqlite3_bind_int(st, 7, c->state == TSESIM__CHUNK_SENDING);
    if (e || run(st) != SQLITE_OK) {
      rc = db_fail(j, "cannot record a chunk's state");
      break;
    }
    if (sqlite3_changes(j->db) != 1) {
      set_msg(j, "journal %s: job %lld has no chunk %lu", j->path, (long long)job->id,
              (unsigned long)c->seq);
      rc = TSESIM_E_JOURNAL;
      break;
    }
  }
  done(st);
  if (rc) {
    rollback(j);
    return rc;
  }
  rc = commit(j);
  if (!rc) j->errmsg[0] = '\0';
  return rc;
}

/* ---- a job recorded without sending (the tsesim command records before it listens) ---- */

tsesim_code tsesim_job_record(tsesim_journal *j, const char *name, const tsesim_request *req,
                              const tsesim_job_options *o) {
  static const tsesim_job_options defaults = TSESIM_JOB_OPTIONS_INIT;
  tsesim__job_rec rec;
  if (!j) return TSESIM_E_INVAL;
  if (!o) o = &defaults;
  if (o->version < 1 || o->version > TSESIM_JOB_OPTIONS_VERSION) {
    set_msg(j, "job: options version %u: this library knows 1..%d", o->version,
            TSESIM_JOB_OPTIONS_VERSION);
    return TSESIM_E_INVAL;
  }
  if (o->rows && tsesim_rows_count(o->rows) - tsesim_rows_rejected(o->rows) !=
                     tsesim_request_device_count(req)) {
    set_msg(j, "job: rows has %lu valid rows, but the request holds %lu devices",
            (unsigned long)(tsesim_rows_count(o->rows) - tsesim_rows_rejected(o->rows)),
            (unsigned long)tsesim_request_device_count(req));
    return TSESIM_E_INVAL;
  }
  return tsesim__journal_job_begin(j, name, req, o->rows, o->chunk_size, &rec);
}

/* ---- the application's settings (the meta table) ---- */

#define SETTING_KEY_MAX 200
#define SETTING_VALUE_MAX 65536

static tsesim_code setting_key(tsesim_journal *j, const char *key) {
  return tsesim__text_check("key", key, SETTING_KEY_MAX, j->errmsg);
}

tsesim_code tsesim_journal_set(tsesim_journal *j, const char *key, const char *value) {
  sqlite3_stmt *st = NULL;
  tsesim_code rc;
  int step;
  if (!j) return TSESIM_E_INVAL;
  if ((rc = setting_key(j, key)) != TSESIM_OK) return rc;
  if (value && strlen(value) > SETTING_VALUE_MAX) {
    set_msg(j, "setting \"%s\": value of %lu bytes, at most %d", key, (unsigned long)strlen(value),
            SETTING_VALUE_MAX);
    return TSESIM_E_INVAL;
  }
  if (value && tsesim__utf8_invalid_at(value)) {
    set_msg(j, "setting \"%s\": value not UTF-8 at byte %lu", key,
            (unsigned long)tsesim__utf8_invalid_at(value));
    return TSESIM_E_INVAL;
  }
  if (sqlite3_prepare_v2(j->db,
                         value ? "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)"
                               : "DELETE FROM meta WHERE key = ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return db_fail(j, "cannot keep a setting");
  bind_str(st, 1, key);
  if (value) bind_str(st, 2, value);
  step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step != SQLITE_DONE) return db_fail(j, "cannot keep a setting");
  j->errmsg[0] = '\0';
  return TSESIM_OK;
}

tsesim_code tsesim_journal_get(tsesim_journal *j, const char *key, char **out) {
  sqlite3_stmt *st = NULL;
  tsesim_code rc;
  int step;
  if (out) *out = NULL;
  if (!j) return TSESIM_E_INVAL;
  if (!out) {
    set_msg(j, "out is NULL");
    return TSESIM_E_INVAL;
  }
  if ((rc = setting_key(j, key)) != TSESIM_OK) return rc;
  if (sqlite3_prepare_v2(j->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
      SQLITE_OK)
    return db_fail(j, "cannot read a setting");
  bind_str(st, 1, key);
  step = sqlite3_step(st);
  if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    if (!v || !(*out = tsesim__malloc(n + 1))) {
      sqlite3_finalize(st);
      set_msg(j, "out of memory");
      return TSESIM_E_NOMEM;
    }
    memcpy(*out, v, n);
    (*out)[n] = '\0';
  } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
    sqlite3_finalize(st);
    return db_fail(j, "cannot read a setting");
  }
  sqlite3_finalize(st);
  j->errmsg[0] = '\0';
  return TSESIM_OK;
}
