/*
 * tracker_query.c - what the journal knows of a job: its counts
 * (tsesim_job_count), a wait for its devices to be final (tsesim_job_wait)
 * and its devices one by one (tsesim_job_devices).
 *
 * The counts read the job's row and its chunks only (a chunk keeps its
 * devices' warning, success and failed counts: tracker.c), never its
 * devices. The wait polls: it may share the journal with a listener in
 * another process, and it never keeps a read transaction open between two
 * looks, so the writer's WAL can be checkpointed.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */

#include <string.h>
#include <time.h>

#define TSESIM__WITH_SQLITE /* the journal handle (tsesim_int.h) */
#include "tsesim_int.h"

#define POLL_MS 50

static void done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* The job the caller names (NULL: the journal's only one): its row. */
typedef struct job_row {
  long long id;
  size_t devices, rows;
  unsigned long callbacks, duplicates;
} job_row;

static tsesim_code job_find(tsesim_journal *j, const char *name, job_row *out) {
  sqlite3_stmt *st = j->tr[name ? TSESIM__T_Q_JOB_NAMED : TSESIM__T_Q_JOB_ONLY];
  int step, found = 0;
  tsesim_code rc = TSESIM_OK;

  if (name && sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
    return tsesim__journal_fail(j, "cannot look the job up");
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (found++) break; /* a second job */
    out->id = sqlite3_column_int64(st, 0);
    out->devices = (size_t)sqlite3_column_int64(st, 1);
    out->rows = (size_t)sqlite3_column_int64(st, 2);
    out->callbacks = (unsigned long)sqlite3_column_int64(st, 3);
    out->duplicates = (unsigned long)sqlite3_column_int64(st, 4);
  }
  if (step != SQLITE_ROW && step != SQLITE_DONE) {
    rc = tsesim__journal_fail(j, "cannot look the job up");
  } else if (name && !found) {
    char shown[80];
    tsesim__quote(shown, sizeof shown, name, 48);
    tsesim__journal_msg(j, "no job %s in journal %s", shown, j->path);
    rc = TSESIM_E_INVAL;
  } else if (!name && found != 1) {
    tsesim__journal_msg(j, "journal %s holds %s; name the job", j->path,
                        found ? "several jobs" : "no job");
    rc = TSESIM_E_INVAL;
  }
  done(st);
  return rc;
}

/* The counts of a job, read inside the caller's transaction. */
static tsesim_code counts_read(tsesim_journal *j, const char *name, tsesim_job_counts *out) {
  sqlite3_stmt *st;
  job_row job;
  size_t sum;
  int step;
  tsesim_code rc;

  memset(out, 0, sizeof *out);
  rc = job_find(j, name, &job);
  if (rc) return rc;
  out->devices = job.rows;
  out->invalid = job.rows - job.devices;
  out->callbacks = job.callbacks;
  out->duplicates = job.duplicates;
  st = j->tr[TSESIM__T_Q_CHUNKS];
  sqlite3_bind_int64(st, 1, job.id);
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    size_t count = (size_t)sqlite3_column_int64(st, 1);
    size_t w = (size_t)sqlite3_column_int64(st, 2), s = (size_t)sqlite3_column_int64(st, 3),
           f = (size_t)sqlite3_column_int64(st, 4), rest = count - w - s - f;
    if (!state || w + s + f > count) {
      if ((sqlite3_errcode(j->db) & 0xff) == SQLITE_NOMEM) {
        rc = tsesim__journal_fail(j, "cannot read the chunks");
      } else {
        tsesim__journal_msg(j, "journal %s: job %lld: a chunk counts %lu devices and %lu outcomes",
                            j->path, job.id, (unsigned long)count, (unsigned long)(w + s + f));
        rc = TSESIM_E_JOURNAL;
      }
      done(st);
      return rc;
    }
    out->warning += w;
    out->success += s;
    out->failed += f;
    if (strcmp(state, "queued") == 0)
      out->queued += rest;
    else if (strcmp(state, "accepted") == 0)
      out->submitted += rest;
    else if (strcmp(state, "refused") == 0)
      out->refused += rest;
    else /* sending, unknown */
      out->unknown += rest;
  }
  done(st);
  if (step != SQLITE_DONE) return tsesim__journal_fail(j, "cannot read the chunks");
  st = j->tr[TSESIM__T_Q_UNMATCHED];
  step = sqlite3_step(st);
  if (step == SQLITE_ROW) out->unmatched = (unsigned long)sqlite3_column_int64(st, 0);
  done(st);
  if (step != SQLITE_ROW) return tsesim__journal_fail(j, "cannot count unmatched callbacks");
  sum = out->queued + out->submitted + out->unknown + out->refused + out->warning + out->success +
        out->failed + out->invalid;
  if (sum != out->devices) {
    tsesim__journal_msg(j, "journal %s: job %lld: its chunks count %lu devices, its rows %lu",
                        j->path, job.id, (unsigned long)(sum - out->invalid),
                        (unsigned long)job.devices);
    return TSESIM_E_JOURNAL;
  }
  return TSESIM_OK;
}

/* A read transaction around fn's reading: one snapshot, ended before the
 * call returns. */
static tsesim_code read_begin(tsesim_journal *j) {
  sqlite3_stmt *st = j->tr[TSESIM__T_Q_BEGIN];
  int step = sqlite3_step(st);
  sqlite3_reset(st);
  if (step != SQLITE_DONE) return tsesim__journal_fail(j, "cannot begin reading");
  return TSESIM_OK;
}

static void read_end(tsesim_journal *j) {
  if (sqlite3_get_autocommit(j->db)) return;
  sqlite3_step(j->tr[TSESIM__T_Q_END]);
  sqlite3_reset(j->tr[TSESIM__T_Q_END]);
  /* a COMMIT of a read cannot fail but for memory; make sure it ended */
  if (!sqlite3_get_autocommit(j->db)) tsesim__journal_rollback(j);
}

static tsesim_code counts(tsesim_journal *j, const char *name, tsesim_job_counts *out) {
  tsesim_code rc = read_begin(j);
  if (rc) return rc;
  rc = counts_read(j, name, out);
  read_end(j);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

tsesim_code tsesim_job_count(tsesim_journal *journal, const char *job_name,
                             tsesim_job_counts *out) {
  tsesim_code rc;
  if (out) memset(out, 0, sizeof *out);
  if (!journal) return TSESIM_E_INVAL;
  if (!out) {
    tsesim__journal_msg(journal, "out is NULL");
    return TSESIM_E_INVAL;
  }
  rc = counts(journal, job_name, out);
  if (!rc) journal->errmsg[0] = '\0';
  return rc;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* PRAGMA data_version: changes when another connection commits. */
static tsesim_code data_version(tsesim_journal *j, long long *out) {
  sqlite3_stmt *st = j->tr[TSESIM__T_Q_DATA_VERSION];
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (step != SQLITE_ROW) return tsesim__journal_fail(j, "cannot read its data version");
  return TSESIM_OK;
}

tsesim_code tsesim_job_wait(tsesim_journal *journal, const char *job_name, long timeout_ms,
                            tsesim_job_counts *out) {
  tsesim_job_counts c;
  long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0, seen = -1, v = 0;
  tsesim_code rc;

  if (out) memset(out, 0, sizeof *out);
  if (!journal) return TSESIM_E_INVAL;
  memset(&c, 0, sizeof c);
  for (;;) {
    rc = data_version(journal, &v);
    if (rc) return rc;
    if (v != seen) { /* else nothing was committed since the last look */
      rc = counts(journal, job_name, &c);
      if (rc) return rc;
      seen = v;
      if (out) *out = c;
      if (c.submitted + c.warning + c.unknown == 0) break;
    }
    if (timeout_ms == 0) {
      tsesim__journal_msg(journal, "journal %s: %lu devices submitted, warning or unknown",
                          journal->path, (unsigned long)(c.submitted + c.warning + c.unknown));
      return TSESIM_E_TIMEOUT;
    }
    if (timeout_ms > 0) {
      long long left = deadline - now_ms();
      if (left <= 0) {
        tsesim__journal_msg(journal,
                            "journal %s: %ld ms passed with %lu devices submitted, warning or "
                            "unknown",
                            journal->path, timeout_ms,
                            (unsigned long)(c.submitted + c.warning + c.unknown));
        return TSESIM_E_TIMEOUT;
      }
      sleep_ms(left < POLL_MS ? (long)left : POLL_MS);
    } else {
      sleep_ms(POLL_MS);
    }
  }
  journal->errmsg[0] = '\0';
  return TSESIM_OK;
}

static const char *text(sqlite3_stmt *st, int col) {
  return (const char *)sqlite3_column_text(st, col);
}

/* Fills one row; 0 on success, -1 when a column could not be read. */
static int device_row(sqlite3_stmt *st, tsesim_device_status *d) {
  const char *outcome = text(st, 5), *state = text(st, 9);
  memset(d, 0, sizeof *d);
  d->line = (unsigned long)sqlite3_column_int64(st, 0);
  d->eid = text(st, 1);
  d->iccid = text(st, 2);
  d->imei = text(st, 3);
  d->status = text(st, 6);
  d->fault = text(st, 7);
  d->callbacks = (unsigned long)sqlite3_column_int64(st, 8);
  if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
    d->state = "invalid";
    d->error = text(st, 4);
    return d->error ? 0 : -1;
  }
  d->request_id = text(st, 10);
  if (!state) return -1;
  if (outcome) {
    d->state = strcmp(outcome, "warning") == 0   ? "warning"
               : strcmp(outcome, "success") == 0 ? "success"
                                                 : "failed";
  } else if (strcmp(state, "queued") == 0) {
    d->state = "queued";
  } else if (strcmp(state, "accepted") == 0) {
    d->state = "submitted";
  } else if (strcmp(state, "refused") == 0) {
    d->state = "refused";
    d->error = text(st, 11);
  } else {
    d->state = "unknown";
  }
  return 0;
}

tsesim_code tsesim_job_devices(tsesim_journal *journal, const char *job_name, tsesim_device_fn fn,
                               void *payload) {
  sqlite3_stmt *st;
  job_row job;
  tsesim_device_status d;
  int step;
  tsesim_code rc;

  if (!journal) return TSESIM_E_INVAL;
  if (!fn) {
    tsesim__journal_msg(journal, "fn is NULL");
    return TSESIM_E_INVAL;
  }
  rc = read_begin(journal);
  if (rc) return rc;
  rc = job_find(journal, job_name, &job);
  if (rc) {
    read_end(journal);
    return rc;
  }
  st = journal->tr[TSESIM__T_Q_DEVICES];
  sqlite3_bind_int64(st, 1, job.id);
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (device_row(st, &d) != 0) {
      if ((sqlite3_errcode(journal->db) & 0xff) == SQLITE_NOMEM) {
        rc = tsesim__journal_fail(journal, "cannot read the devices");
      } else {
        tsesim__journal_msg(journal, "journal %s: job %lld: the row at line %lu is damaged",
                            journal->path, job.id, d.line);
        rc = TSESIM_E_JOURNAL;
      }
      break;
    }
    if (fn(&d, payload) != 0) break; /* the caller stopped it */
  }
  if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
    rc = tsesim__journal_fail(journal, "cannot read the devices");
  done(st);
  read_end(journal);
  if (!rc) journal->errmsg[0] = '\0';
  return rc;
}
