/*
 * tt_journal.h - what the journal's tests (check_journal, check_tracker)
 * share: a scratch directory, removing a database with its -wal and -shm
 * files, and reading the database with connections of their own, through
 * the documented schema (tsesim-journal(5)), as a user's sqlite3 would.
 * Include after tsesim_test.h.
 */
#ifndef TT_JOURNAL_H
#define TT_JOURNAL_H

#include <errno.h>
#include <sqlite3.h>
#include <unistd.h>

/* A fresh directory tests/tmp-journal-XXXXXX (or tmp-journal-XXXXXX when
 * run from the tests directory itself) in dir[64], and path = DIR/j.db. */
static void tt_journal_dir(char dir[64], char path[128]) {
  strcpy(dir, "tests/tmp-journal-XXXXXX");
  if (!mkdtemp(dir)) {
    strcpy(dir, "tmp-journal-XXXXXX");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
  }
  snprintf(path, 128, "%s/j.db", dir);
}

/* Removes the database p and the files SQLite keeps beside it. */
static void rm_db(const char *p) {
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char f[160];
  size_t i;
  for (i = 0; i < ARRAY_LEN(sfx); i++) {
    snprintf(f, sizeof f, "%s%s", p, sfx[i]);
    unlink(f);
  }
}

static sqlite3 *tt_db_open(const char *p) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  ck_assert_msg(rc == SQLITE_OK, "sqlite3_open_v2 %s: %s", p, sqlite3_errstr(rc));
  return db;
}

static void raw_exec(sqlite3 *db, const char *q) {
  char *err = NULL;
  int rc = sqlite3_exec(db, q, NULL, NULL, &err);
  ck_assert_msg(rc == SQLITE_OK, "%s: %s", q, err ? err : sqlite3_errstr(rc));
}

/* sqlite3_exec's row function for snapshots: appends the row to the string
 * at p (realloc'ed), fields "|"-terminated, NULL as "(null)". */
static int snap_row(void *p, int n, char **v, char **names) {
  char **s = p;
  size_t have = strlen(*s), add = 2;
  int i;
  (void)names;
  for (i = 0; i < n; i++) add += (v[i] ? strlen(v[i]) : 6) + 1;
  *s = realloc(*s, have + add);
  ck_assert_ptr_nonnull(*s);
  for (i = 0; i < n; i++) {
    strcat(*s, v[i] ? v[i] : "(null)");
    strcat(*s, "|");
  }
  strcat(*s, "\n");
  return 0;
}

#endif
