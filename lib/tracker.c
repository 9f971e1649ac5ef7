/*
 * tracker.c - callbacks into the journal: matching each to its device,
 * de-duplicating, and resolving the device's state (CLI.md, "The
 * listener"; tsesim-journal(5) gives the tables).
 *
 * A group of callbacks is stored in one write transaction, committed with
 * synchronous=FULL. Each costs a handful of indexed statements: a look-up of
 * its requestId, one of its device (by eid through device_eid, by iccid or
 * imei within its chunk through device_iccid or device_imei), the insert that
 * detects a repeat (the unique index callback_repeat), and the counters of
 * its device, chunk and job. Nothing here scans a job's devices, and the
 * counts are kept per chunk so that tsesim_job_count reads only chunks.
 *
 * Every statement of this file and of tracker_query.c is prepared with the
 * journal's when it opens; nothing here allocates but the cache of job
 * names (the job of a result is borrowed from it).
 */
#define _POSIX_C_SOURCE 200809L /* gmtime_r, clock_gettime */
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TSESIM__WITH_SQLITE /* the journal handle (tsesim_int.h) */
#include "tsesim_int.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* A device and its chunk, as a look-up finds them. By eid: device_eid. By
 * iccid or imei: within the candidate chunks, device_iccid or device_imei
 * (job, chunk, id); named, because the planner, without statistics, would
 * take the primary key's job prefix: every row of the job. */
#define FIND_COLS "SELECT d.job, d.idx, d.line, d.chunk, d.outcome, c.request_id FROM device d"
#define FIND_JOIN " JOIN chunk c ON c.job = d.job AND c.seq = d.chunk WHERE d."
#define FIND_BY_EID FIND_COLS FIND_JOIN "eid"
#define FIND_BY(col) FIND_COLS " INDEXED BY device_" col FIND_JOIN col
/* A recorded requestId: within its chunk. */
#define FIND_RID " = ?1 AND c.request_id = ?2 ORDER BY d.job, d.idx LIMIT 1"
/* Not recorded: among the devices whose chunk has no requestId yet. */
#define FIND_NEW                                                                        \
  " = ?1 AND c.request_id IS NULL AND c.state IN ('sending','unknown') ORDER BY d.job," \
  " d.idx LIMIT 1"

const char *const tsesim__tracker_sql[TSESIM__T_COUNT] = {
    /* T_RID_KNOWN */
    "SELECT 1 FROM chunk WHERE request_id = ?1 LIMIT 1",
    FIND_BY_EID FIND_RID,
    FIND_BY("iccid") FIND_RID,
    FIND_BY("imei") FIND_RID,
    FIND_BY_EID FIND_NEW,
    FIND_BY("iccid") FIND_NEW,
    FIND_BY("imei") FIND_NEW,
    /* T_CB_STORE: a repeat hits callback_repeat and only counts */
    "INSERT INTO callback(received, request_id, job, idx, kind, key, status, callback_count,"
    " fault_code, fault_string, body) VALUES(?11, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    " ON CONFLICT DO UPDATE SET repeats = repeats + 1 RETURNING repeats",
    /* T_CHUNK_LEARN */
    "UPDATE chunk SET state = 'accepted', request_id = ?3, error = NULL, updated = " NOW
    " WHERE job = ?1 AND seq = ?2 AND request_id IS NULL",
    /* T_DEVICE_COUNT */
    "UPDATE device SET callbacks = callbacks + 1 WHERE job = ?1 AND idx = ?2",
    /* T_DEVICE_DECIDE */
    "UPDATE device SET callbacks = callbacks + 1, outcome = ?3, status = ?4, fault = ?5"
    " WHERE job = ?1 AND idx = ?2",
    /* T_CHUNK_OUTCOME */
    "UPDATE chunk SET warning = warning + ?3, success = success + ?4, failed = failed + ?5"
    " WHERE job = ?1 AND seq = ?2",
    /* T_JOB_CALLBACKS */
    "UPDATE job SET callbacks = callbacks + ?2, duplicates = duplicates + ?3 WHERE id = ?1",
    /* T_JOB_NAME */
    "SELECT name FROM job WHERE id = ?1",
    /* T_Q_JOB_NAMED */
    "SELECT id, devices, rows, callbacks, duplicates FROM job WHERE name = ?1",
    /* T_Q_JOB_ONLY: two rows are enough to tell "several" */
    "SELECT id, devices, rows, callbacks, duplicates FROM job ORDER BY id LIMIT 2",
    /* T_Q_CHUNKS */
    "SELECT state, count, warning, success, failed FROM chunk WHERE job = ?1",
    /* T_Q_UNMATCHED: through the partial index callback_unmatched */
    "SELECT count(*) FROM callback WHERE job IS NULL",
    /* T_Q_DEVICES: in file order (the primary key) */
    "SELECT d.line, d.eid, d.iccid, d.imei, d.error, d.outcome, d.status, d.fault, d.callbacks,"
    " c.state, c.request_id, c.error FROM device d LEFT JOIN chunk c ON c.job = d.job AND"
    " c.seq = d.chunk WHERE d.job = ?1 ORDER BY d.idx",
    /* T_Q_DATA_VERSION */
    "PRAGMA data_version",
    /* T_Q_BEGIN: a read transaction, for one consistent reading */
    "BEGIN",
    /* T_Q_END */
    "COMMIT",
};

enum { OUT_NONE, OUT_WARNING, OUT_SUCCESS, OUT_FAILED };
static const char *const outcome_names[] = {NULL, "warning", "success", "failed"};

static int outcome_parse(const unsigned char *s) {
  int i;
  if (!s) return OUT_NONE;
  for (i = OUT_WARNING; i <= OUT_FAILED; i++)
    if (strcmp((const char *)s, outcome_names[i]) == 0) return i;
  return OUT_NONE;
}

static void done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static int bind_str(sqlite3_stmt *st, int i, const char *s) {
  if (!s) return sqlite3_bind_null(st, i);
  return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Steps a statement that returns no row, then readies it again. */
static int run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  done(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The name of job id, from the cache (filled from the job table on a miss):
 * borrowed until the journal is closed. */
static tsesim_code job_name(tsesim_journal *j, long long id, const char **out) {
  sqlite3_stmt *st = j->tr[TSESIM__T_JOB_NAME];
  const unsigned char *name;
  size_t i;
  int step;
  char *copy;

  for (i = 0; i < j->n_names; i++) {
    if (j->names[i].id == id) {
      *out = j->names[i].name;
      return TSESIM_OK;
    }
  }
  if (j->n_names == j->cap_names) {
    size_t cap = j->cap_names ? 2 * j->cap_names : 4;
    tsesim__job_name *grown = tsesim__realloc(j->names, cap * sizeof *grown);
    if (!grown) {
      tsesim__journal_msg(j, "out of memory");
      return TSESIM_E_NOMEM;
    }
    j->names = grown;
    j->cap_names = cap;
  }
  sqlite3_bind_int64(st, 1, id);
  step = sqlite3_step(st);
  name = step == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
  if (!name) {
    tsesim_code rc = tsesim__journal_fail(j, "cannot read a job's name");
    done(st);
    return rc;
  }
  copy = tsesim__strndup((const char *)name, (size_t)sqlite3_column_bytes(st, 0));
  done(st);
  if (!copy) {
    tsesim__journal_msg(j, "out of memory");
    return TSESIM_E_NOMEM;
  }
  j->names[j->n_names].id = id;
  j->names[j->n_names].name = copy;
  *out = j->names[j->n_names++].name;
  return TSESIM_OK;
}

/* The key of a callback: the first of eid, iccid and imei among its
 * deviceIds, or its profile's deviceIdentifierCollection when it has no
 * deviceIds. NULL when it carries none of the three. */
static const tsesim_device_id *callback_key(const tsesim_callback *cb) {
  static const tsesim_id_kind order[] = {TSESIM_ID_EID, TSESIM_ID_ICCID, TSESIM_ID_IMEI};
  const tsesim_device_id *ids = cb->device_ids;
  size_t n = cb->n_device_ids, i, k;
  if (n == 0 && cb->profile) {
    ids = cb->profile->ids;
    n = cb->profile->n_ids;
  }
  for (k = 0; k < 3; k++)
    for (i = 0; i < n; i++)
      if (ids[i].kind == order[k] && ids[i].id) return &ids[i];
  return NULL;
}

/* What one call (one group, one transaction) keeps between its callbacks:
 * the time they are stored at, the last requestId looked up, and the
 * counters of chunks and jobs, written once per group rather than once per
 * callback (most of a group's callbacks share a chunk). */
#define TALLY_MAX 16
typedef struct tally {
  long long job, seq; /* seq -1: the job's own counters */
  long a, b, c;       /* chunk: warning, success, failed; job: callbacks, duplicates */
} tally;
typedef struct group {
  char received[64];
  const char *rid; /* borrowed from a callback of the group */
  int rid_known;
  tally t[TALLY_MAX];
  size_t n_t;
} group;

/* What a look-up found. */
typedef struct found {
  long long job, idx, seq;
  unsigned long line;
  int outcome; /* OUT_* */
  int learnt;  /* its chunk had no requestId: it takes the callback's */
} found;

/* Finds the device of a callback (CLI.md): 1 found, 0 unmatched, -1 with
 * errmsg set (*rc). */
static int match(tsesim_journal *j, group *g, const tsesim_callback *cb,
                 const tsesim_device_id *key, found *f, tsesim_code *rc) {
  sqlite3_stmt *st = j->tr[TSESIM__T_RID_KNOWN];
  int step, known, col;

  memset(f, 0, sizeof *f);
  if (!key) return 0;
  if (g->rid && strcmp(g->rid, cb->request_id) == 0) {
    known = g->rid_known;
  } else {
    bind_str(st, 1, cb->request_id);
    step = sqlite3_step(st);
    done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
      *rc = tsesim__journal_fail(j, "cannot look a requestId up");
      return -1;
    }
    known = step == SQLITE_ROW;
    g->rid = cb->request_id;
    g->rid_known = known;
  }
  col = key->kind == TSESIM_ID_EID ? 0 : key->kind == TSESIM_ID_ICCID ? 1 : 2;
  st = j->tr[(known ? TSESIM__T_FIND_EID_RID : TSESIM__T_FIND_EID_NEW) + col];
  if (bind_str(st, 1, key->id) || (known && bind_str(st, 2, cb->request_id))) {
    *rc = tsesim__journal_fail(j, "cannot look a device up");
    done(st);
    return -1;
  }
  step = sqlite3_step(st);
  if (step == SQLITE_DONE) {
    done(st);
    return 0;
  }
  if (step != SQLITE_ROW) {
    *rc = tsesim__journal_fail(j, "cannot look a device up");
    done(st);
    return -1;
  }
  f->job = sqlite3_column_int64(st, 0);
  f->idx = sqlite3_column_int64(st, 1);
  f->line = (unsigned long)sqlite3_column_int64(st, 2);
  f->seq = sqlite3_column_int64(st, 3);
  f->outcome = outcome_parse(sqlite3_column_text(st, 4));
  f->learnt = sqlite3_column_type(st, 5) == SQLITE_NULL;
  done(st);
  return 1;
}

/* The index a look-up by kind col (0 eid, 1 iccid, 2 imei) goes through,
 * and its two statements: made the first time a callback needs them, in a
 * transaction of their own before the group's (a rolled-back group cannot
 * take the index away from statements prepared on it). Building an index
 * over a million rows takes about half a second, once per journal. */
static const char *const device_index[3] = {
    "CREATE INDEX IF NOT EXISTS device_eid ON device(eid)",
    "CREATE INDEX IF NOT EXISTS device_iccid ON device(job, chunk, iccid)",
    "CREATE INDEX IF NOT EXISTS device_imei ON device(job, chunk, imei)",
};

static tsesim_code lookup_ready(tsesim_journal *j, int col) {
  int k, slot[2] = {TSESIM__T_FIND_EID_RID + col, TSESIM__T_FIND_EID_NEW + col};
  if (j->tr[slot[0]] && j->tr[slot[1]]) return TSESIM_OK;
  if (sqlite3_exec(j->db, device_index[col], NULL, NULL, NULL) != SQLITE_OK)
    return tsesim__journal_fail(j, "cannot index the devices");
  for (k = 0; k < 2; k++) {
    if (!j->tr[slot[k]] &&
        sqlite3_prepare_v3(j->db, tsesim__tracker_sql[slot[k]], -1, SQLITE_PREPARE_PERSISTENT,
                           &j->tr[slot[k]], NULL) != SQLITE_OK)
      return tsesim__journal_fail(j, "cannot prepare a look-up of devices");
  }
  return TSESIM_OK;
}

/* Writes the group's counters of chunks and jobs. */
static tsesim_code tally_flush(tsesim_journal *j, group *g) {
  size_t i;
  for (i = 0; i < g->n_t; i++) {
    const tally *t = &g->t[i];
    sqlite3_stmt *st = j->tr[t->seq < 0 ? TSESIM__T_JOB_CALLBACKS : TSESIM__T_CHUNK_OUTCOME];
    int e = 0, k = 1;
    e |= sqlite3_bind_int64(st, k++, t->job);
    if (t->seq >= 0) e |= sqlite3_bind_int64(st, k++, t->seq);
    e |= sqlite3_bind_int64(st, k++, t->a);
    e |= sqlite3_bind_int64(st, k++, t->b);
    if (t->seq >= 0) e |= sqlite3_bind_int64(st, k++, t->c);
    if (e || run(st) != SQLITE_OK)
      return tsesim__journal_fail(
          j, t->seq < 0 ? "cannot count a job's callbacks" : "cannot count a chunk's states");
  }
  g->n_t = 0;
  return TSESIM_OK;
}

/* Adds to the counters of chunk seq (seq -1: of the job), written by
 * tally_flush when the group ends or the table is full. */
static tsesim_code tally_add(tsesim_journal *j, group *g, long long job, long long seq, long a,
                             long b, long c) {
  size_t i;
  for (i = 0; i < g->n_t; i++)
    if (g->t[i].job == job && g->t[i].seq == seq) break;
  if (i == g->n_t) {
    if (g->n_t == TALLY_MAX) {
      tsesim_code rc = tally_flush(j, g);
      if (rc) return rc;
      i = 0;
    }
    g->t[i].job = job;
    g->t[i].seq = seq;
    g->t[i].a = g->t[i].b = g->t[i].c = 0;
    g->n_t = i + 1;
  }
  g->t[i].a += a;
  g->t[i].b += b;
  g->t[i].c += c;
  return TSESIM_OK;
}

/* Stores the callback row; *repeat = 1 when it was stored before (the
 * insert then only counted it). */
static tsesim_code store_row(tsesim_journal *j, const group *g, const tsesim__cb_item *it,
                             const tsesim_device_id *key, const found *f, int *repeat) {
  sqlite3_stmt *st = j->tr[TSESIM__T_CB_STORE];
  const tsesim_callback *cb = it->cb;
  int e = 0, step;
  tsesim_code rc;

  e |= bind_str(st, 1, cb->request_id);
  if (f) {
    e |= sqlite3_bind_int64(st, 2, f->job);
    e |= sqlite3_bind_int64(st, 3, f->idx);
  } /* else NULL: unmatched */
  e |= bind_str(st, 4, key ? tsesim__id_kind_name(key->kind) : "");
  e |= bind_str(st, 5, key ? key->id : "");
  e |= bind_str(st, 6, cb->status);
  if (cb->callback_count >= 0) e |= sqlite3_bind_int64(st, 7, cb->callback_count);
  e |= bind_str(st, 8, cb->fault_code);
  e |= bind_str(st, 9, cb->fault_string);
  if (!f && it->body) e |= sqlite3_bind_text(st, 10, it->body, (int)it->len, SQLITE_STATIC);
  e |= bind_str(st, 11, g->received);
  if (e) {
    rc = tsesim__journal_fail(j, "cannot store a callback");
    done(st);
    return rc;
  }
  step = sqlite3_step(st);
  if (step != SQLITE_ROW) {
    rc = tsesim__journal_fail(j, "cannot store a callback");
    done(st);
    return rc;
  }
  *repeat = sqlite3_column_int64(st, 0) > 0;
  step = sqlite3_step(st);
  if (step != SQLITE_DONE) {
    rc = tsesim__journal_fail(j, "cannot store a callback");
    done(st);
    return rc;
  }
  done(st);
  return TSESIM_OK;
}

/* A new (not repeated) callback of a matched device: its chunk learns the
 * requestId if it had none, and the device its state when the callback
 * decides one. *outcome is the device's outcome after it. */
static tsesim_code apply(tsesim_journal *j, group *g, const tsesim_callback *cb, const found *f,
                         int *outcome) {
  sqlite3_stmt *st;
  int now = f->outcome, decide = 0, e = 0;

  *outcome = now;
  if (f->learnt) {
    st = j->tr[TSESIM__T_CHUNK_LEARN];
    e |= sqlite3_bind_int64(st, 1, f->job);
    e |= sqlite3_bind_int64(st, 2, f->seq);
    e |= bind_str(st, 3, cb->request_id);
    if (e || run(st) != SQLITE_OK) return tsesim__journal_fail(j, "cannot record a requestId");
    g->rid = cb->request_id; /* recorded now */
    g->rid_known = 1;
  }
  /* Warning is not final and is replaced by a later Warning or a final
   * status; the first final status is kept; any other status decides
   * nothing. */
  if (f->outcome != OUT_SUCCESS && f->outcome != OUT_FAILED) {
    if (cb->status_code == TSESIM_STATUS_SUCCESS) now = OUT_SUCCESS;
    if (cb->status_code == TSESIM_STATUS_FAILED) now = OUT_FAILED;
    if (cb->status_code == TSESIM_STATUS_WARNING) now = OUT_WARNING;
    decide = cb->status_code != TSESIM_STATUS_OTHER;
  }
  if (!decide) {
    st = j->tr[TSESIM__T_DEVICE_COUNT];
  } else { /* it decides (a later Warning's text replaces the first's) */
    st = j->tr[TSESIM__T_DEVICE_DECIDE];
    e |= bind_str(st, 3, outcome_names[now]);
    e |= bind_str(st, 4, cb->status);
    e |= bind_str(st, 5, cb->fault_code);
  }
  e |= sqlite3_bind_int64(st, 1, f->job);
  e |= sqlite3_bind_int64(st, 2, f->idx);
  if (e || run(st) != SQLITE_OK) return tsesim__journal_fail(j, "cannot record a device's state");
  if (now != f->outcome) {
    int d[4] = {0, 0, 0, 0};
    d[f->outcome]--;
    d[now]++;
    tsesim_code rc = tally_add(j, g, f->job, f->seq, d[OUT_WARNING], d[OUT_SUCCESS], d[OUT_FAILED]);
    if (rc) return rc;
  }
  *outcome = now;
  return TSESIM_OK;
}

static tsesim_code store_one(tsesim_journal *j, group *g, tsesim__cb_item *it) {
  const tsesim_callback *cb = it->cb;
  const tsesim_device_id *key = callback_key(cb);
  found f;
  int m, repeat = 0, outcome;
  tsesim_code rc = TSESIM_OK;

  memset(&it->result, 0, sizeof it->result);
  m = match(j, g, cb, key, &f, &rc);
  if (m < 0) return rc;
  rc = store_row(j, g, it, key, m ? &f : NULL, &repeat);
  if (rc) return rc;
  it->result.repeat = repeat;
  if (!m) return TSESIM_OK; /* unmatched: counted by its row */
  outcome = f.outcome;
  if (!repeat) {
    rc = apply(j, g, cb, &f, &outcome);
    if (rc) return rc;
  }
  rc = tally_add(j, g, f.job, -1, !repeat, repeat, 0);
  if (rc) return rc;
  rc = job_name(j, f.job, &it->result.job);
  if (rc) return rc;
  it->result.line = f.line;
  /* its chunk is accepted now (it had the requestId or just learnt it) */
  it->result.state = outcome == OUT_NONE ? "submitted" : outcome_names[outcome];
  return TSESIM_OK;
}

/* The time as the journal writes it, UTC to the millisecond
 * (strftime('%Y-%m-%dT%H:%M:%fZ','now')), taken once per group. */
static void now_text(char out[64]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

tsesim_code tsesim__journal_callbacks_store(tsesim_journal *j, tsesim__cb_item *items, size_t n) {
  group g;
  size_t i;
  tsesim_code rc;

  if (!j) return TSESIM_E_INVAL;
  if (!items && n) {
    tsesim__journal_msg(j, "items is NULL");
    return TSESIM_E_INVAL;
  }
  for (i = 0; i < n; i++) {
    if (!items[i].cb || !items[i].cb->request_id) {
      tsesim__journal_msg(j, "items[%lu]: %s is NULL", (unsigned long)i,
                          items[i].cb ? "cb->request_id" : "cb");
      return TSESIM_E_INVAL;
    }
  }
  for (i = 0; i < n; i++) {
    const tsesim_device_id *key = callback_key(items[i].cb);
    if (!key) continue;
    rc = lookup_ready(j, key->kind == TSESIM_ID_EID ? 0 : key->kind == TSESIM_ID_ICCID ? 1 : 2);
    if (rc) return rc;
  }
  memset(&g, 0, sizeof g);
  now_text(g.received);
  rc = tsesim__journal_begin(j);
  if (rc) return rc;
  for (i = 0; i < n; i++) {
    rc = store_one(j, &g, &items[i]);
    if (rc) break;
  }
  if (!rc) rc = tally_flush(j, &g);
  if (rc) {
    tsesim__journal_rollback(j);
    for (i = 0; i < n; i++) memset(&items[i].result, 0, sizeof items[i].result);
    return rc;
  }
  rc = tsesim__journal_commit(j);
  if (rc) {
    for (i = 0; i < n; i++) memset(&items[i].result, 0, sizeof items[i].result);
    return rc;
  }
  j->errmsg[0] = '\0';
  return TSESIM_OK;
}
