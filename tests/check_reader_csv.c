/*
 * check_reader_csv.c - device files (tsesim_rows_parse_csv, _read_csv and
 * the accessors): the rules of CLI.md "Device files", with every row's line,
 * cells and reason, and every file error's message, asserted exactly.
 *
 * Each case runs four ways: into an empty request and into one that already
 * holds two devices (the rows' device indexes follow them), with the file at
 * an exact-size heap copy and at the end of a page followed by a PROT_NONE
 * page. The input is destroyed before anything is checked, so that a row
 * pointing into it shows. A failure must leave the request as it was. Each
 * case is also read from a pipe and from a file in blocks of 1 to 7 bytes,
 * which must give the same rows and messages as the bytes parsed whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsesim_test.h"
#include "tt_place.h"

/* More valid EIDs (MOD 97-10 checked by hand: each is 1 modulo 97). */
#define EID3 "89049032123451234512345678910062"
#define EID4 "89001012012341234012345677770010"
/* Right length and digits, wrong check digits (as in check_builder.c). */
#define BAD_EID "89049032123451234512345678904213"
#define BAD_ICCID "89014103211118510721"
#define BAD_IMEI "352099001761482"

#define LIT(s) s, sizeof(s) - 1
#define BOM "\xEF\xBB\xBF"

typedef struct want_row {
  unsigned long line; /* 0 ends the list */
  const char *eid, *iccid, *imei;
  const char *error; /* NULL: valid */
} want_row;

typedef struct csv_case {
  const char *name;
  const char *in;
  size_t len;
  int checksums;
  const char *err; /* NULL: TSESIM_OK with rows; else TSESIM_E_INVAL with this errbuf */
  want_row rows[9];
} csv_case;

static const csv_case cases[] = {
    /* ---- format ---- */
    {"LF",
     LIT("eid,iccid,imei\n" EID "," ICCID "," IMEI "\n" EID2 "," ICCID19 ",\n"),
     1,
     NULL,
     {{2, EID, ICCID, IMEI, NULL}, {3, EID2, ICCID19, NULL, NULL}}},
    {"BOM and CRLF",
     LIT(BOM "eid,iccid\r\n" EID "," ICCID "\r\n" EID2 "," ICCID19 "\r\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, NULL}, {3, EID2, ICCID19, NULL, NULL}}},
    {"no newline at the end",
     LIT("eid,imei\r\n" EID "," IMEI "\r\n" EID2 "," IMEI2),
     1,
     NULL,
     {{2, EID, NULL, IMEI, NULL}, {3, EID2, NULL, IMEI2, NULL}}},
    {"CR at the end", LIT("eid,imei\n" EID "," IMEI "\r"), 1, NULL, {{2, EID, NULL, IMEI, NULL}}},
    {"a CR not before LF is data",
     LIT("eid,iccid\n" EID "," ICCID "\rX\n" EID2 "," ICCID19 "\n"),
     1,
     NULL,
     {{2, EID, "89014103211118510720\rX", NULL,
       "iccid \"89014103211118510720\\x0DX\": not a digit at position 21"},
      {3, EID2, ICCID19, NULL, NULL}}},
    {"header: case, order, spaces, other columns",
     LIT(" IMEI ,Notes,\tEid,ICCID  ,x,\n" IMEI ",hello," EID "," ICCID ",y,\n"),
     1,
     NULL,
     {{2, EID, ICCID, IMEI, NULL}}},
    {"header: quoted names",
     LIT("\"eid\",\" Iccid \",\"a,b\"\n" EID "," ICCID ",z\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, NULL}}},
    {"quotes: commas, newlines, doubled quotes",
     LIT("eid,note,iccid\n\"" EID "\",\"a, b \"\"quoted\"\"\r\nsecond line\"," ICCID "\n" EID2
         ",x,\"" ICCID19 "\"\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, NULL}, {4, EID2, ICCID19, NULL, NULL}}},
    {"quotes: a newline inside an eid",
     LIT("eid,iccid\n\"8904\n9\"," ICCID "\n" EID2 "," ICCID19 "\n"),
     1,
     NULL,
     {{2, "8904\n9", ICCID, NULL, "eid \"8904\\x0A9\": not a digit at position 5"},
      {4, EID2, ICCID19, NULL, NULL}}},
    {"quotes: a quote inside an unquoted cell is data",
     LIT("eid,iccid\n" EID ",8901\"2\n"),
     1,
     NULL,
     {{2, EID, "8901\"2", NULL, "iccid \"8901\\x222\": not a digit at position 5"}}},
    {"quotes: text after the closing quote",
     LIT("eid,iccid\n" EID2 "," ICCID19 "\n\"" EID "\"x," ICCID "\n" EID "," ICCID "\n"),
     1,
     NULL,
     {{2, EID2, ICCID19, NULL, NULL},
      {3, EID "x", ICCID, NULL, "cell 1: text after its closing quote"},
      {4, EID, ICCID, NULL, NULL}}},
    {"blank lines are skipped",
     LIT("eid,iccid\n\n" EID "," ICCID "\n   \n\t\r\n" EID2 "," ICCID19 "\n\n\r\n"),
     1,
     NULL,
     {{3, EID, ICCID, NULL, NULL}, {6, EID2, ICCID19, NULL, NULL}}},
    {"empty cells are absent",
     LIT("eid,iccid,imei\n" EID ",," IMEI "\n" EID2 "," ICCID19 ",\"\"\n"),
     1,
     NULL,
     {{2, EID, NULL, IMEI, NULL}, {3, EID2, ICCID19, NULL, NULL}}},
    {"a row of empty cells",
     LIT("eid,iccid\n,\n" EID "," ICCID "\n"),
     1,
     NULL,
     {{2, NULL, NULL, NULL, "eid missing (every device needs one)"}, {3, EID, ICCID, NULL, NULL}}},
    {"missing ids",
     LIT("eid,iccid,imei\n," ICCID ",\n" EID ",,\n" EID "," ICCID ",\n"),
     1,
     NULL,
     {{2, NULL, ICCID, NULL, "eid missing (every device needs one)"},
      {3, EID, NULL, NULL, "iccid or imei missing (every device needs one besides its eid)"},
      {4, EID, ICCID, NULL, NULL}}},
    {"bad ids, and an eid that only rejected rows held",
     LIT("eid,iccid,imei\n" BAD_EID "," ICCID ",\n" EID "," BAD_ICCID ",\n" EID "," ICCID
         "," BAD_IMEI "\n" EID ",," IMEI "X\n" EID ",123,\n" EID ", " ICCID ",\n" EID2 "," ICCID19
         "," IMEI2 "\n" EID "," ICCID ",\n"),
     1,
     NULL,
     {{2, BAD_EID, ICCID, NULL, "eid: check digits 13 do not match (expected 42)"},
      {3, EID, BAD_ICCID, NULL, "iccid: check digit 1 does not match (expected 0)"},
      {4, EID, ICCID, BAD_IMEI, "imei: check digit 2 does not match (expected 1)"},
      {5, EID, NULL, IMEI "X", "imei \"490154203237518X\": not a digit at position 16"},
      {6, EID, "123", NULL, "iccid \"123\": 3 digits, expected 19 or 20"},
      {7, EID, " " ICCID, NULL, "iccid \" 89014103211118510720\": not a digit at position 1"},
      {8, EID2, ICCID19, IMEI2, NULL},
      {9, EID, ICCID, NULL, NULL}}},
    {"check digits not verified",
     LIT("eid,iccid,imei\n" BAD_EID "," BAD_ICCID "," BAD_IMEI "\n" EID ",123,\n"),
     0,
     NULL,
     {{2, BAD_EID, BAD_ICCID, BAD_IMEI, NULL},
      {3, EID, "123", NULL, "iccid \"123\": 3 digits, expected 19 or 20"}}},
    {"eid repeats",
     LIT("eid,iccid\n" EID "," ICCID "\n" EID2 "," ICCID19 "\n" EID "," ICCID19 "\n" EID2 "," ICCID
         "\n" EID "," BAD_ICCID "\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, NULL},
      {3, EID2, ICCID19, NULL, NULL},
      {4, EID, ICCID19, NULL, "eid repeats line 2"},
      {5, EID2, ICCID, NULL, "eid repeats line 3"},
      {6, EID, BAD_ICCID, NULL, "eid repeats line 2"}}},
    {"eid repeats, lines after quoted newlines",
     LIT("note,eid,iccid\n\"a\nb\nc\"," EID3 "," ICCID "\n" EID4 "," EID3 ",\"" ICCID19 "\"\n"),
     1,
     NULL,
     {{2, EID3, ICCID, NULL, NULL}, {5, EID3, ICCID19, NULL, "eid repeats line 2"}}},
    {"cell counts",
     LIT("eid,iccid,imei,note\n" EID "," ICCID "\n" EID2 "," ICCID19 "," IMEI2 ",n,extra\n" EID3
         "\n" EID "," ICCID "," IMEI ",\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, "2 cells, the header has 4"},
      {3, EID2, ICCID19, IMEI2, "5 cells, the header has 4"},
      {4, EID3, NULL, NULL, "1 cell, the header has 4"},
      {5, EID, ICCID, IMEI, NULL}}},
    {"UTF-8 in other columns",
     LIT(BOM "eid,city,iccid\n" EID ",Z\xC3\xBCrich \xF0\x9F\x98\x80," ICCID "\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, NULL}}},
    {"UTF-8 at a cell's start, then a quote (data, not quoting)",
     LIT("eid,note,iccid\n" EID ",\xC3\xA9\"x," ICCID "\n" EID2 ",\xF0\x9F\x98\x80\"," ICCID19
         "\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, NULL}, {3, EID2, ICCID19, NULL, NULL}}},
    {"UTF-8 after a closing quote, then a quote",
     LIT("eid,note,iccid\n" EID ",\"n\"\xC3\xA9\"x," ICCID "\n" EID2 ",," ICCID19 "\n"),
     1,
     NULL,
     {{2, EID, ICCID, NULL, "cell 2: text after its closing quote"},
      {3, EID2, ICCID19, NULL, NULL}}},
    {"every row rejected",
     LIT("eid,iccid\n" EID ",1\n"),
     1,
     NULL,
     {{2, EID, "1", NULL, "iccid \"1\": 1 digits, expected 19 or 20"}}},

    /* ---- file errors ---- */
    {"empty", LIT(""), 1, "line 1: no header (the file is empty)", {{0}}},
    {"only a BOM", LIT(BOM), 1, "line 1: no header (the file is empty)", {{0}}},
    {"only the header", LIT("eid,iccid\n"), 1, "line 1: no data row after the header", {{0}}},
    {"header and blank lines",
     LIT("eid,iccid\r\n\r\n  \n\n"),
     1,
     "line 1: no data row after the header",
     {{0}}},
    {"no eid column",
     LIT("iccid,imei\n" ICCID "," IMEI "\n"),
     1,
     "line 1: no \"eid\" column (the first line names the columns)",
     {{0}}},
    {"no header line",
     LIT(EID "," ICCID "\n" EID2 "," ICCID19 "\n"),
     1,
     "line 1: no \"eid\" column (the first line names the columns)",
     {{0}}},
    {"a blank first line",
     LIT("\neid,iccid\n" EID "," ICCID "\n"),
     1,
     "line 1: no \"eid\" column (the first line names the columns)",
     {{0}}},
    {"neither iccid nor imei",
     LIT("eid,mdn\n" EID "," MDN "\n"),
     1,
     "line 1: no \"iccid\" or \"imei\" column (a device needs one besides its eid)",
     {{0}}},
    {"a column named twice",
     LIT("eid,iccid, EID\n" EID "," ICCID "," EID "\n"),
     1,
     "line 1: column \"eid\" named twice (columns 1 and 3)",
     {{0}}},
    {"a column named twice, other case",
     LIT("eid,x,Imei,IMEI\n"),
     1,
     "line 1: column \"imei\" named twice (columns 3 and 4)",
     {{0}}},
    {"a quote left open",
     LIT("eid,iccid\n" EID "," ICCID "\n" EID2 ",\"" ICCID19 "\nmore\n"),
     1,
     "line 3: a quote opened here is never closed",
     {{0}}},
    {"a quote left open after a doubled quote",
     LIT("eid,iccid\n" EID ",\"a\"\"\n"),
     1,
     "line 2: a quote opened here is never closed",
     {{0}}},
    {"a quote left open in the header",
     LIT("\"eid,iccid\n"),
     1,
     "line 1: a quote opened here is never closed",
     {{0}}},
    {"invalid UTF-8",
     LIT("eid,iccid\n" EID "," ICCID "\n" EID2 ",\xC3\x28\n"),
     1,
     "line 3: invalid UTF-8 at byte 34 of the line",
     {{0}}},
    {"invalid UTF-8 after a quoted newline",
     LIT("eid,note,iccid\n" EID ",\"a\nb\xFF\"," ICCID "\n"),
     1,
     "line 3: invalid UTF-8 at byte 2 of the line",
     {{0}}},
    {"invalid UTF-8: overlong",
     LIT("eid,iccid,n\n" EID "," ICCID ",\xC0\xAF\n"),
     1,
     "line 2: invalid UTF-8 at byte 55 of the line",
     {{0}}},
    {"invalid UTF-8: surrogate",
     LIT("eid,iccid\xED\xA0\x80\n"),
     1,
     "line 1: invalid UTF-8 at byte 10 of the line",
     {{0}}},
    {"invalid UTF-8: above U+10FFFF",
     LIT("eid,iccid\n\xF4\x90\x80\x80\n"),
     1,
     "line 2: invalid UTF-8 at byte 1 of the line",
     {{0}}},
    {"invalid UTF-8: cut at the end",
     LIT(BOM "eid,iccid\n" EID "," ICCID "\xE2\x82"),
     1,
     "line 2: invalid UTF-8 at byte 54 of the line",
     {{0}}},
    {"invalid UTF-8 after the BOM",
     LIT(BOM "eid,\xFF"),
     1,
     "line 1: invalid UTF-8 at byte 5 of the line",
     {{0}}},
    {"a NUL byte",
     LIT("eid,iccid\n" EID "," ICCID "\0\n"),
     1,
     "line 2: a NUL byte at byte 54 of the line (a device file is text)",
     {{0}}},
};

/* ---- helpers ---- */

/* The JSON body of req, or NULL when it holds no device. Caller frees. */
static char *json_of(const tsesim_request *req) {
  char *out = NULL;
  size_t len = 0;
  if (tsesim_request_device_count(req) == 0) return NULL;
  ck_assert_int_eq(tsesim_request_to_json(&out, &len, req), TSESIM_OK);
  return out;
}

static void assert_same_json(const char *a, const char *b) {
  if (!a || !b) {
    ck_assert_msg(a == b, "one request is empty, the other is not");
    return;
  }
  ck_assert_str_eq(a, b);
}

/* A request for "Acme" holding n_pre generated devices. */
static tsesim_request *make_req(size_t n_pre, int checksums) {
  tsesim_request *req = NULL;
  size_t i;
  ck_assert_int_eq(tsesim_request_new(&req, "Acme"), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_set_verify_checksums(req, checksums), TSESIM_OK);
  for (i = 0; i < n_pre; i++) {
    tt_device d;
    tt_device_make(&d, (unsigned long)i + 100);
    ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  }
  return req;
}

/* Adds a row's ids the way the reader must have. */
static void add_row_ids(tsesim_request *req, const want_row *w) {
  tsesim_device_id ids[3];
  size_t n = 0;
  ids[n].kind = TSESIM_ID_EID;
  ids[n].kind_name = NULL;
  ids[n++].id = w->eid;
  if (w->iccid) {
    ids[n].kind = TSESIM_ID_ICCID;
    ids[n].kind_name = NULL;
    ids[n++].id = w->iccid;
  }
  if (w->imei) {
    ids[n].kind = TSESIM_ID_IMEI;
    ids[n].kind_name = NULL;
    ids[n++].id = w->imei;
  }
  ck_assert_int_eq(tsesim_request_add_device(req, ids, n), TSESIM_OK);
}

/* Checks rows against the want list; n_pre devices were in the request. */
static void assert_rows(const char *ctx, const tsesim_rows *rows, const want_row *want,
                        size_t n_pre) {
  size_t i, n, rejected = 0, dev = n_pre;
  for (n = 0; want[n].line; n++) {
  }
  ck_assert_msg(tsesim_rows_count(rows) == n, "%s: %lu rows, expected %lu", ctx,
                (unsigned long)tsesim_rows_count(rows), (unsigned long)n);
  for (i = 0; i < n; i++) {
    const tsesim_row *r = tsesim_rows_get(rows, i);
    char where[240];
    snprintf(where, sizeof where, "%s: row %lu", ctx, (unsigned long)i);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->line == want[i].line, "%s: line %lu, expected %lu", where, r->line,
                  want[i].line);
    tt_expect_str(where, "eid", r->eid, want[i].eid);
    tt_expect_str(where, "iccid", r->iccid, want[i].iccid);
    tt_expect_str(where, "imei", r->imei, want[i].imei);
    tt_expect_str(where, "error", r->error, want[i].error);
    if (want[i].error) {
      rejected++;
      ck_assert_msg(r->device == (size_t)-1, "%s: a rejected row has device %lu", where,
                    (unsigned long)r->device);
    } else {
      ck_assert_msg(r->device == dev, "%s: device %lu, expected %lu", where,
                    (unsigned long)r->device, (unsigned long)dev);
      dev++;
    }
  }
  ck_assert_ptr_null(tsesim_rows_get(rows, n));
  ck_assert_ptr_null(tsesim_rows_get(rows, (size_t)-1));
  ck_assert_uint_eq(tsesim_rows_rejected(rows), rejected);
}

/* ---- every rule ---- */

/* Checks what a read of case c gave: rc, rows, errbuf (when with_errbuf)
 * and the request (which held n_pre devices, and before as JSON); frees
 * the rows. */
static void check_case(const char *ctx, const csv_case *c, tsesim_code rc, tsesim_rows *rows,
                       const char *errbuf, int with_errbuf, tsesim_request *req, size_t n_pre,
                       const char *before) {
  char *after = json_of(req);
  size_t i;
  if (c->err) {
    ck_assert_msg(rc == TSESIM_E_INVAL, "%s: %s", ctx, tsesim_code_name(rc));
    ck_assert_ptr_null(rows);
    if (with_errbuf) ck_assert_str_eq(errbuf, c->err);
    ck_assert_str_eq(tsesim_request_errmsg(req), c->err);
    ck_assert_uint_eq(tsesim_request_device_count(req), n_pre);
    assert_same_json(after, before);
  } else {
    tsesim_request *want = make_req(n_pre, c->checksums);
    char *want_json;
    ck_assert_msg(rc == TSESIM_OK, "%s: %s: %s", ctx, tsesim_code_name(rc), errbuf);
    if (with_errbuf) ck_assert_str_eq(errbuf, "untouched");
    ck_assert_str_eq(tsesim_request_errmsg(req), "");
    assert_rows(ctx, rows, c->rows, n_pre);
    for (i = 0; c->rows[i].line; i++)
      if (!c->rows[i].error) add_row_ids(want, &c->rows[i]);
    want_json = json_of(want);
    assert_same_json(after, want_json);
    tsesim_free(want_json);
    tsesim_request_free(want);
    tsesim_rows_free(rows);
  }
  tsesim_free(after);
}

/* _i: case * 8 + placement * 4 + (devices already in the request) * 2 + errbuf NULL */
START_TEST(test_cases) {
  const csv_case *c = &cases[_i / 8];
  place where = (_i / 4) % 2 ? PLACE_GUARD : PLACE_HEAP;
  size_t n_pre = (_i / 2) % 2 ? 2 : 0;
  int with_errbuf = !(_i % 2);
  char errbuf[TSESIM_ERRBUF_SIZE], ctx[200];
  tsesim_request *req = make_req(n_pre, c->checksums);
  char *before = json_of(req);
  tsesim_rows *rows = (tsesim_rows *)&rows;
  placed p;
  const char *in = body_put(&p, where, c->in, c->len);
  tsesim_code rc;

  snprintf(ctx, sizeof ctx, "%s (%s, %lu devices before, errbuf %s)", c->name,
           where == PLACE_HEAP ? "heap" : "at a PROT_NONE page", (unsigned long)n_pre,
           with_errbuf ? "set" : "NULL");
  strcpy(errbuf, "untouched");
  rc = tsesim_rows_parse_csv(&rows, req, in, c->len, with_errbuf ? errbuf : NULL);
  body_drop(&p); /* no row may point into the input */
  check_case(ctx, c, rc, rows, errbuf, with_errbuf, req, n_pre, before);
  tsesim_free(before);
  tsesim_request_free(req);
}
END_TEST

/* ---- the same, streamed ---- */

/* Writes len bytes to a new file in the build directory. */
static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

/* A descriptor that reads data to its end: a pipe (data must fit in the
 * pipe's buffer, 64 KiB) or a file (removed at once; the descriptor keeps
 * it). */
static int open_data(const char *data, size_t len, int as_pipe) {
  int fd;
  if (as_pipe) {
    int fds[2];
    ck_assert_uint_le(len, 65536);
    ck_assert_int_eq(pipe(fds), 0);
    if (len) ck_assert_int_eq(write(fds[1], data, len), (long)len);
    ck_assert_int_eq(close(fds[1]), 0);
    return fds[0];
  } else {
    char path[64];
    snprintf(path, sizeof path, "tmp-reader-csv-data-%ld.csv", (long)getpid());
    write_file(path, data, len);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(unlink(path), 0);
    return fd;
  }
}

/* _i: case * 14 + (block - 1) * 2 + from a file (not a pipe) */
START_TEST(test_cases_in_blocks) {
  const csv_case *c = &cases[_i / 14];
  size_t block = (size_t)(_i % 14) / 2 + 1, n_pre = c->len % 2 ? 2 : 0, peak = 0;
  int as_pipe = !(_i % 2), fd = open_data(c->in, c->len, as_pipe);
  char errbuf[TSESIM_ERRBUF_SIZE], ctx[200];
  tsesim_request *req = make_req(n_pre, c->checksums);
  char *before = json_of(req);
  tsesim_rows *rows = (tsesim_rows *)&rows;
  tsesim_code rc;

  snprintf(ctx, sizeof ctx, "%s (from a %s in blocks of %lu)", c->name, as_pipe ? "pipe" : "file",
           (unsigned long)block);
  strcpy(errbuf, "untouched");
  rc = tsesim__rows_read_fd(&rows, req, fd, "the file", errbuf, block, &peak);
  /* The descriptor is the caller's: still open. */
  ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
  ck_assert_int_eq(close(fd), 0);
  check_case(ctx, c, rc, rows, errbuf, 1, req, n_pre, before);
  /* The buffer grew for a record only: by half of itself, or a block. */
  ck_assert_uint_le(peak, c->len + c->len / 2 + block);
  tsesim_free(before);
  tsesim_request_free(req);
}
END_TEST

/* Reading goes on after a rejected row; the next call starts afresh. */
START_TEST(test_two_files_into_one_request) {
  static const char a[] = "eid,iccid\n" EID "," ICCID "\n";
  static const char b[] = "imei,eid\n" IMEI "," EID "\n" IMEI2 "," EID2 "\n";
  tsesim_request *req = make_req(0, 1);
  tsesim_rows *ra = NULL, *rb = NULL;
  ck_assert_int_eq(tsesim_rows_parse_csv(&ra, req, a, sizeof a - 1, NULL), TSESIM_OK);
  /* An eid of the first file is not a repeat in the second: each file is
   * judged on its own, and the request takes duplicates (add_device's rule). */
  ck_assert_int_eq(tsesim_rows_parse_csv(&rb, req, b, sizeof b - 1, NULL), TSESIM_OK);
  ck_assert_uint_eq(tsesim_rows_rejected(rb), 0);
  ck_assert_uint_eq(tsesim_rows_get(rb, 0)->device, 1);
  ck_assert_uint_eq(tsesim_rows_get(rb, 1)->device, 2);
  ck_assert_uint_eq(tsesim_request_device_count(req), 3);
  tsesim_rows_free(ra);
  tsesim_rows_free(rb);
  tsesim_request_free(req);
}
END_TEST

START_TEST(test_null_arguments) {
  static const char ok[] = "eid,iccid\n" EID "," ICCID "\n";
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = make_req(1, 1);
  tsesim_rows *rows = (tsesim_rows *)&rows;

  ck_assert_int_eq(tsesim_rows_parse_csv(NULL, req, ok, sizeof ok - 1, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "out is NULL");
  ck_assert_int_eq(tsesim_rows_parse_csv(&rows, NULL, ok, sizeof ok - 1, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "req is NULL");
  ck_assert_ptr_null(rows);
  rows = (tsesim_rows *)&rows;
  ck_assert_int_eq(tsesim_rows_parse_csv(&rows, req, NULL, 3, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "data is NULL");
  ck_assert_ptr_null(rows);
  rows = (tsesim_rows *)&rows;
  ck_assert_int_eq(tsesim_rows_parse_csv(&rows, req, NULL, 0, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "line 1: no header (the file is empty)");
  ck_assert_ptr_null(rows);

  ck_assert_int_eq(tsesim_rows_read_csv(NULL, req, "x", errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "out is NULL");
  rows = (tsesim_rows *)&rows;
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, NULL, "x", errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "req is NULL");
  ck_assert_ptr_null(rows);
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, req, NULL, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "path is NULL");
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, req, "", errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "path is empty");
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);

  ck_assert_uint_eq(tsesim_rows_count(NULL), 0);
  ck_assert_uint_eq(tsesim_rows_rejected(NULL), 0);
  ck_assert_ptr_null(tsesim_rows_get(NULL, 0));
  tsesim_rows_free(NULL);
  tsesim_request_free(req);
}
END_TEST

/* ---- files ---- */

START_TEST(test_read_file) {
  static const char data[] = BOM "eid,iccid\r\n" EID "," ICCID "\r\n" EID "," ICCID19 "\r\n";
  char path[64], errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = make_req(0, 1);
  tsesim_rows *rows = NULL;

  snprintf(path, sizeof path, "tmp-reader-csv-%ld.csv", (long)getpid());
  write_file(path, data, sizeof data - 1);
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, req, path, errbuf), TSESIM_OK);
  ck_assert_uint_eq(tsesim_rows_count(rows), 2);
  ck_assert_uint_eq(tsesim_rows_rejected(rows), 1);
  ck_assert_str_eq(tsesim_rows_get(rows, 1)->error, "eid repeats line 2");
  ck_assert_uint_eq(tsesim_rows_get(rows, 1)->line, 3);
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);
  tsesim_rows_free(rows);

  /* A file error names the line, not the path. */
  write_file(path, "eid\n", 4);
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, req, path, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf,
                   "line 1: no \"iccid\" or \"imei\" column (a device needs one besides its eid)");
  ck_assert_ptr_null(rows);
  ck_assert_int_eq(unlink(path), 0);

  /* An unreadable path: INVAL with the path and the system's reason. */
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, req, path, errbuf), TSESIM_E_INVAL);
  {
    char want[TSESIM_ERRBUF_SIZE];
    snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
    ck_assert_str_eq(errbuf, want);
  }
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, req, ".", errbuf), TSESIM_E_INVAL);
  {
    char want[TSESIM_ERRBUF_SIZE];
    snprintf(want, sizeof want, ".: %s", strerror(EISDIR));
    ck_assert_str_eq(errbuf, want);
  }
  ck_assert_ptr_null(rows);
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);
  tsesim_request_free(req);
}
END_TEST

/* A file that is not regular: read until its end, however it comes. */
START_TEST(test_read_pipe) {
  static const char data[] = "eid,iccid\n" EID "," ICCID "\n";
  char path[64];
  tsesim_request *req = make_req(0, 1);
  tsesim_rows *rows = NULL;
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  ck_assert_int_eq(write(fds[1], data, sizeof data - 1), (long)sizeof data - 1);
  ck_assert_int_eq(close(fds[1]), 0);
  snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
  ck_assert_int_eq(tsesim_rows_read_csv(&rows, req, path, NULL), TSESIM_OK);
  ck_assert_uint_eq(tsesim_rows_count(rows), 1);
  ck_assert_str_eq(tsesim_rows_get(rows, 0)->iccid, ICCID);
  close(fds[0]);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
}
END_TEST

/* A descriptor: read to its end, never closed; name stands for it in a
 * read error, "fd N" without one. */
START_TEST(test_read_fd) {
  static const char data[] = "eid,iccid\n" EID "," ICCID "\n";
  char errbuf[TSESIM_ERRBUF_SIZE], want[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = make_req(1, 1);
  tsesim_rows *rows = (tsesim_rows *)&rows;
  int fd = open_data(data, sizeof data - 1, 1);

  ck_assert_int_eq(tsesim_rows_read_csv_fd(&rows, req, fd, "-", errbuf), TSESIM_OK);
  ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
  ck_assert_uint_eq(tsesim_rows_count(rows), 1);
  ck_assert_str_eq(tsesim_rows_get(rows, 0)->iccid, ICCID);
  ck_assert_uint_eq(tsesim_rows_get(rows, 0)->device, 1);
  tsesim_rows_free(rows);
  /* At its end already: an empty file. */
  ck_assert_int_eq(tsesim_rows_read_csv_fd(&rows, req, fd, "-", errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "line 1: no header (the file is empty)");
  ck_assert_ptr_null(rows);
  ck_assert_int_eq(close(fd), 0);

  /* A directory opens, and its read fails. */
  fd = open(".", O_RDONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(tsesim_rows_read_csv_fd(&rows, req, fd, "-", errbuf), TSESIM_E_INVAL);
  snprintf(want, sizeof want, "-: %s", strerror(EISDIR));
  ck_assert_str_eq(errbuf, want);
  ck_assert_int_eq(tsesim_rows_read_csv_fd(&rows, req, fd, NULL, errbuf), TSESIM_E_INVAL);
  snprintf(want, sizeof want, "fd %d: %s", fd, strerror(EISDIR));
  ck_assert_str_eq(errbuf, want);
  ck_assert_int_eq(close(fd), 0);
  /* A closed descriptor: EBADF, named. */
  ck_assert_int_eq(tsesim_rows_read_csv_fd(&rows, req, fd, "devices", errbuf), TSESIM_E_INVAL);
  snprintf(want, sizeof want, "devices: %s", strerror(EBADF));
  ck_assert_str_eq(errbuf, want);

  ck_assert_int_eq(tsesim_rows_read_csv_fd(NULL, req, 0, "-", errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "out is NULL");
  ck_assert_int_eq(tsesim_rows_read_csv_fd(&rows, NULL, 0, "-", errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "req is NULL");
  ck_assert_int_eq(tsesim_rows_read_csv_fd(&rows, req, -1, "-", errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "fd -1 is not a descriptor");
  ck_assert_ptr_null(rows);
  ck_assert_uint_eq(tsesim_request_device_count(req), 2); /* the first read's */
  tsesim_request_free(req);
}
END_TEST

/* A valid row's cells come from its device in the request, which may move
 * as it grows; a rejected row keeps its own. */
START_TEST(test_rows_follow_the_request) {
  static const char data[] =
      "eid,iccid,imei\n" EID "," ICCID ",\n" EID3 ",,\n" EID2 ",," IMEI2 "\n";
  tsesim_request *req = make_req(0, 1);
  tsesim_rows *rows = NULL;
  const tsesim_row *r;
  size_t i;

  ck_assert_int_eq(tsesim_rows_parse_csv(&rows, req, data, sizeof data - 1, NULL), TSESIM_OK);
  for (i = 0; i < 5000; i++) { /* the request's blocks move */
    tt_device d;
    tt_device_make(&d, (unsigned long)i + 100);
    ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  }
  r = tsesim_rows_get(rows, 0);
  ck_assert_str_eq(r->eid, EID);
  ck_assert_str_eq(r->iccid, ICCID);
  ck_assert_ptr_null(r->imei);
  ck_assert_ptr_null(r->error);
  ck_assert_uint_eq(r->device, 0);
  r = tsesim_rows_get(rows, 2);
  ck_assert_str_eq(r->eid, EID2);
  ck_assert_ptr_null(r->iccid);
  ck_assert_str_eq(r->imei, IMEI2);
  ck_assert_uint_eq(r->device, 1);
  r = tsesim_rows_get(rows, 1);
  ck_assert_str_eq(r->eid, EID3);
  ck_assert_ptr_null(r->iccid);
  ck_assert_str_eq(r->error, "iccid or imei missing (every device needs one besides its eid)");
  ck_assert_uint_eq(r->device, (size_t)-1);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
}
END_TEST

/* ---- whole and streamed agree ---- */

typedef struct row_copy {
  unsigned long line;
  size_t device;
  char *cell[4]; /* eid, iccid, imei, error */
} row_copy;

static char *dup_or_null(const char *s) {
  char *d;
  if (!s) return NULL;
  d = strdup(s);
  ck_assert_ptr_nonnull(d);
  return d;
}

/* Row i of rows, copied (a row lasts until the next tsesim_rows_get). */
static void row_copy_of(row_copy *c, const tsesim_rows *rows, size_t i) {
  const tsesim_row *r = tsesim_rows_get(rows, i);
  ck_assert_ptr_nonnull(r);
  c->line = r->line;
  c->device = r->device;
  c->cell[0] = dup_or_null(r->eid);
  c->cell[1] = dup_or_null(r->iccid);
  c->cell[2] = dup_or_null(r->imei);
  c->cell[3] = dup_or_null(r->error);
}

static void row_copy_free(row_copy *c) {
  int k;
  for (k = 0; k < 4; k++) free(c->cell[k]);
}

/* data[0, len) parsed whole and read in blocks of `block` from a pipe or a
 * file: the same code, errbuf, rows and request. */
static void assert_same_streamed(const char *ctx, const char *data, size_t len, size_t block,
                                 int as_pipe) {
  char e1[TSESIM_ERRBUF_SIZE], e2[TSESIM_ERRBUF_SIZE], *j1, *j2;
  tsesim_request *q1 = make_req(1, 1), *q2 = make_req(1, 1);
  tsesim_rows *r1 = NULL, *r2 = NULL;
  tsesim_code c1, c2;
  int fd = open_data(data, len, as_pipe);
  size_t i;

  strcpy(e1, "untouched");
  strcpy(e2, "untouched");
  c1 = tsesim_rows_parse_csv(&r1, q1, data, len, e1);
  c2 = tsesim__rows_read_fd(&r2, q2, fd, "x", e2, block, NULL);
  ck_assert_int_eq(close(fd), 0);
  ck_assert_msg(c1 == c2, "%s: whole %s, in blocks %s", ctx, tsesim_code_name(c1),
                tsesim_code_name(c2));
  ck_assert_msg(strcmp(e1, e2) == 0, "%s: whole \"%s\", in blocks \"%s\"", ctx, e1, e2);
  ck_assert_str_eq(tsesim_request_errmsg(q1), tsesim_request_errmsg(q2));
  ck_assert_uint_eq(tsesim_rows_count(r1), tsesim_rows_count(r2));
  ck_assert_uint_eq(tsesim_rows_rejected(r1), tsesim_rows_rejected(r2));
  for (i = 0; i < tsesim_rows_count(r1); i++) {
    row_copy a, b;
    int k;
    row_copy_of(&a, r1, i);
    row_copy_of(&b, r2, i);
    ck_assert_msg(a.line == b.line && a.device == b.device, "%s: row %lu", ctx, (unsigned long)i);
    for (k = 0; k < 4; k++) tt_expect_str(ctx, "a cell", b.cell[k], a.cell[k]);
    row_copy_free(&a);
    row_copy_free(&b);
  }
  j1 = json_of(q1);
  j2 = json_of(q2);
  assert_same_json(j1, j2);
  tsesim_free(j1);
  tsesim_free(j2);
  tsesim_rows_free(r1);
  tsesim_rows_free(r2);
  tsesim_request_free(q1);
  tsesim_request_free(q2);
}

static char *mixed_file(size_t n, size_t *len);

/* A file with every kind of row, and the same with one flaw put in at
 * positions all over it: a cut or bad UTF-8 sequence, a NUL, a stray or
 * opening quote, a newline, a comma, a 4-byte character. */
START_TEST(test_whole_and_streamed_agree) {
  static const char *const flaws[] = {"\xC3", "\xF0\x9F", "\xED\xA0\x80",    "", "\"",
                                      "\n",   ",",        "\xF0\x9F\x98\x80"};
  static const size_t blocks[] = {1, 2, 3, 7, 65536};
  size_t len, at, f, b;
  char *data = mixed_file(24, &len), ctx[120];
  char *mut = malloc(len + 8);
  ck_assert_ptr_nonnull(mut);
  for (b = 0; b < ARRAY_LEN(blocks); b++) {
    snprintf(ctx, sizeof ctx, "as it is, blocks of %lu", (unsigned long)blocks[b]);
    assert_same_streamed(ctx, data, len, blocks[b], b % 2);
  }
  for (at = 0; at < len; at += len / 29 + 1)
    for (f = 0; f < ARRAY_LEN(flaws); f++) {
      size_t n = f == 3 ? 1 : strlen(flaws[f]); /* flaws[3]: a NUL */
      memcpy(mut, data, at);
      memcpy(mut + at, flaws[f], n);
      memcpy(mut + at + n, data + at, len - at);
      b = (at + f) % ARRAY_LEN(blocks);
      snprintf(ctx, sizeof ctx, "flaw %lu at %lu, blocks of %lu", (unsigned long)f,
               (unsigned long)at, (unsigned long)blocks[b]);
      assert_same_streamed(ctx, mut, len + n, blocks[b], (at + f) % 2);
    }
  free(mut);
  free(data);
}
END_TEST

/* ---- allocation failures ---- */

/* A file of n rows that takes every path that allocates: a BOM, CRLF,
 * quoted cells, rejected rows (bad ids, repeats, cell counts), blank lines,
 * and enough rows to grow the rows, the pool and the eid set. */
static char *mixed_file(size_t n, size_t *len) {
  size_t cap = 120 * n + 64, o = 0, i;
  char *s = malloc(cap);
  ck_assert_ptr_nonnull(s);
  o += (size_t)snprintf(s + o, cap - o, BOM "Note,EID,iccid\r\n");
  for (i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, (unsigned long)i + 1);
    if (i % 50 == 7)
      o += (size_t)snprintf(s + o, cap - o, "\r\n");
    else if (i % 13 == 5)
      o += (size_t)snprintf(s + o, cap - o, "x,%s,%s\r\n", EID, ICCID); /* repeats */
    else if (i % 17 == 3)
      o += (size_t)snprintf(s + o, cap - o, "x,%s,%s,extra\r\n", d.eid, d.iccid);
    else if (i % 19 == 4)
      o += (size_t)snprintf(s + o, cap - o, "x,%s,%s\r\n", d.eid, BAD_ICCID);
    else
      o += (size_t)snprintf(s + o, cap - o, "\"row\n%lu, \"\"q\"\"\",\"%s\",%s\r\n",
                            (unsigned long)i, d.eid, d.iccid);
  }
  o += (size_t)snprintf(s + o, cap - o, "x,%s,%s\r\n", EID, ICCID);
  *len = o;
  return s;
}

/* The request holds two devices before each run; a failed run must leave
 * exactly them. The request is made with no failure armed. */
static tsesim_request *alloc_req(char **json) {
  tsesim_request *req;
  tsesim__test_alloc_fail_at(0);
  req = make_req(2, 1);
  *json = json_of(req);
  return req;
}

static void alloc_check_unchanged(tsesim_request *req, char *json) {
  char *now = json_of(req);
  ck_assert_uint_eq(tsesim_request_device_count(req), 2);
  assert_same_json(now, json);
  tsesim_free(now);
}

START_TEST(test_alloc_failure_parse) {
  size_t len;
  char *data = mixed_file(900, &len), *json = NULL, errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = NULL;
  tsesim_rows *rows = NULL;
  size_t valid = 0, i;

  TT_FAIL_EACH_ALLOC(
      {
        req = alloc_req(&json);
        tsesim__test_alloc_fail_at(tt_n);
        rows = (tsesim_rows *)&rows;
        rc = tsesim_rows_parse_csv(&rows, req, data, len, errbuf);
        if (rc != TSESIM_OK) {
          tsesim__test_alloc_fail_at(0);
          ck_assert_str_eq(errbuf, "out of memory");
          alloc_check_unchanged(req, json);
          tsesim_free(json);
          tsesim_request_free(req);
        }
      },
      rows == NULL,
      {
        for (i = 0; i < tsesim_rows_count(rows); i++)
          if (!tsesim_rows_get(rows, i)->error) valid++;
        ck_assert_uint_eq(tsesim_request_device_count(req), 2 + valid);
        ck_assert_uint_gt(tsesim_rows_rejected(rows), 100);
        ck_assert_uint_gt(valid, 512); /* the eid set grew */
        tsesim_rows_free(rows);
        tsesim_free(json);
        tsesim_request_free(req);
      });
  free(data);
}
END_TEST

START_TEST(test_alloc_failure_read) {
  size_t len;
  char *data = mixed_file(40, &len), *json = NULL, path[64];
  tsesim_request *req = NULL;
  tsesim_rows *rows = NULL;

  snprintf(path, sizeof path, "tmp-reader-csv-alloc-%ld.csv", (long)getpid());
  write_file(path, data, len);
  TT_FAIL_EACH_ALLOC(
      {
        req = alloc_req(&json);
        tsesim__test_alloc_fail_at(tt_n);
        rows = (tsesim_rows *)&rows;
        rc = tsesim_rows_read_csv(&rows, req, path, NULL);
        if (rc != TSESIM_OK) {
          tsesim__test_alloc_fail_at(0);
          alloc_check_unchanged(req, json);
          tsesim_free(json);
          tsesim_request_free(req);
        }
      },
      rows == NULL,
      {
        ck_assert_uint_gt(tsesim_rows_count(rows), 30);
        tsesim_rows_free(rows);
        tsesim_free(json);
        tsesim_request_free(req);
      });
  ck_assert_int_eq(unlink(path), 0);
  free(data);
}
END_TEST

/* Read in blocks of 7 bytes: the buffer grows for each record and
 * shrinks after it. */
START_TEST(test_alloc_failure_read_blocks) {
  size_t len;
  char *data = mixed_file(30, &len), *json = NULL;
  tsesim_request *req = NULL;
  tsesim_rows *rows = NULL;
  int fd = -1;

  TT_FAIL_EACH_ALLOC(
      {
        req = alloc_req(&json);
        fd = open_data(data, len, tt_n % 2);
        tsesim__test_alloc_fail_at(tt_n);
        rows = (tsesim_rows *)&rows;
        rc = tsesim__rows_read_fd(&rows, req, fd, "-", NULL, 7, NULL);
        tsesim__test_alloc_fail_at(0);
        ck_assert_int_eq(close(fd), 0);
        if (rc != TSESIM_OK) {
          alloc_check_unchanged(req, json);
          tsesim_free(json);
          tsesim_request_free(req);
        }
      },
      rows == NULL,
      {
        ck_assert_uint_gt(tsesim_rows_count(rows), 20);
        tsesim_rows_free(rows);
        tsesim_free(json);
        tsesim_request_free(req);
      });
  free(data);
}
END_TEST

START_TEST(test_alloc_failure_read_fd) {
  size_t len;
  char *data = mixed_file(40, &len), *json = NULL;
  tsesim_request *req = NULL;
  tsesim_rows *rows = NULL;
  int fd = -1;

  TT_FAIL_EACH_ALLOC(
      {
        req = alloc_req(&json);
        fd = open_data(data, len, 1);
        tsesim__test_alloc_fail_at(tt_n);
        rows = (tsesim_rows *)&rows;
        rc = tsesim_rows_read_csv_fd(&rows, req, fd, "-", NULL);
        tsesim__test_alloc_fail_at(0);
        ck_assert_int_eq(close(fd), 0);
        if (rc != TSESIM_OK) {
          alloc_check_unchanged(req, json);
          tsesim_free(json);
          tsesim_request_free(req);
        }
      },
      rows == NULL,
      {
        ck_assert_uint_gt(tsesim_rows_count(rows), 30);
        tsesim_rows_free(rows);
        tsesim_free(json);
        tsesim_request_free(req);
      });
  free(data);
}
END_TEST

/* ---- a million rows ---- */

/* A valid EID and ICCID made from i: distinct for distinct i. */
static void million_ids(char eid[33], char iccid[21], unsigned long i) {
  unsigned r = 0, sum = 0;
  int k, dbl = 1;
  snprintf(eid, 33, "89049%025lu", i);
  for (k = 0; k < 30; k++) r = (r * 10 + (unsigned)(eid[k] - '0')) % 97;
  r = 98 - (r * 100) % 97;
  eid[30] = (char)('0' + r / 10);
  eid[31] = (char)('0' + r % 10);
  eid[32] = '\0';
  snprintf(iccid, 21, "8901%015lu", i);
  for (k = 18; k >= 0; k--) {
    unsigned d = (unsigned)(iccid[k] - '0');
    if (dbl) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    dbl = !dbl;
  }
  iccid[19] = (char)('0' + (10 - sum % 10) % 10);
  iccid[20] = '\0';
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define MILLION 1000000UL

START_TEST(test_million_rows) {
  size_t cap = 55 * MILLION + 16, o = 0, live0, live_req, live_rows, peak;
  char *data = malloc(cap), eid[33], iccid[21];
  tsesim_request *req = make_req(0, 1);
  tsesim_rows *rows = NULL;
  const tsesim_row *last;
  unsigned long i;
  double t0, t1;

  ck_assert_ptr_nonnull(data);
  memcpy(data, "eid,iccid\n", 10);
  o = 10;
  for (i = 0; i < MILLION; i++) {
    million_ids(eid, iccid, i);
    memcpy(data + o, eid, 32);
    data[o + 32] = ',';
    memcpy(data + o + 33, iccid, 20);
    data[o + 53] = '\n';
    o += 54;
  }
  tsesim__test_alloc_reset();
  live0 = tsesim__test_alloc_live();
  t0 = now_s();
  ck_assert_int_eq(tsesim_rows_parse_csv(&rows, req, data, o, NULL), TSESIM_OK);
  t1 = now_s();
  peak = tsesim__test_alloc_peak() - live0;
  ck_assert_uint_eq(tsesim_rows_count(rows), MILLION);
  ck_assert_uint_eq(tsesim_rows_rejected(rows), 0);
  ck_assert_uint_eq(tsesim_request_device_count(req), MILLION);
  last = tsesim_rows_get(rows, MILLION - 1);
  ck_assert_uint_eq(last->line, MILLION + 1);
  ck_assert_uint_eq(last->device, MILLION - 1);
  ck_assert_str_eq(last->eid, eid);
  ck_assert_str_eq(last->iccid, iccid);
  live_rows = tsesim__test_alloc_live();
  tsesim_rows_free(rows);
  live_req = tsesim__test_alloc_live();
  live_rows -= live_req;
  fprintf(stderr,
          "reader_csv: 1,000,000 rows in %.2f s; the rows keep %.1f bytes a row, the request "
          "%.1f; the call's peak beyond the request %.1f bytes a row\n",
          t1 - t0, (double)live_rows / MILLION, (double)(live_req - live0) / MILLION,
          (double)(peak - (live_req - live0)) / MILLION);
  /* The rows: a line and a device index a row, in chunks of 4096 rows. */
  ck_assert_uint_le(live_rows, MILLION * 16 + 128 * 1024);
  /* The call's peak beyond the request: the rows and the eid set. */
  ck_assert_uint_le(peak - (live_req - live0), MILLION * 32 + 1024 * 1024);
  /* Quadratic work would take hours; natively it is about 1.5 s, under valgrind
   * about 9 s: the bound leaves room for a loaded machine. */
  ck_assert_msg(t1 - t0 < 30.0, "1,000,000 rows took %.1f s", t1 - t0);
  free(data);
  tsesim_request_free(req);
}
END_TEST

/* ---- memory: 200,000 rows from a file and from a pipe ---- */

#define N_MEM 200000UL

/* Row i of the memory tests' file (54 bytes), the header for i = 0. */
static size_t mem_row(char *out, unsigned long i) {
  char eid[33], iccid[21];
  if (i == 0) {
    memcpy(out, "eid,iccid\n", 10);
    return 10;
  }
  million_ids(eid, iccid, i);
  memcpy(out, eid, 32);
  out[32] = ',';
  memcpy(out + 33, iccid, 20);
  out[53] = '\n';
  return 54;
}

/* Writes the header and N_MEM rows to fd, 64 rows at a time. */
static void mem_write(int fd) {
  char buf[64 * 54];
  unsigned long i = 0;
  while (i <= N_MEM) {
    size_t n = 0, off = 0;
    while (i <= N_MEM && n + 54 <= sizeof buf) n += mem_row(buf + n, i++);
    while (off < n) {
      ssize_t w = write(fd, buf + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;
      off += (size_t)w;
    }
  }
}

/* Checks the rows of the memory tests' file, and bounds what the read
 * held at its peak beyond what the request keeps: the rows (16 bytes
 * each), the eid set (4 bytes a slot, at most half full), the buffer. The
 * old reader held the whole file (54 bytes a row) and 102 bytes a row. */
static void mem_check(const char *how, tsesim_code rc, tsesim_rows *rows, tsesim_request *req,
                      size_t live0) {
  size_t peak = tsesim__test_alloc_peak() - live0, live_req;
  char eid[33], iccid[21];
  const tsesim_row *last;
  ck_assert_int_eq(rc, TSESIM_OK);
  ck_assert_uint_eq(tsesim_rows_count(rows), N_MEM);
  ck_assert_uint_eq(tsesim_request_device_count(req), N_MEM);
  last = tsesim_rows_get(rows, N_MEM - 1);
  million_ids(eid, iccid, N_MEM);
  ck_assert_str_eq(last->eid, eid);
  ck_assert_str_eq(last->iccid, iccid);
  ck_assert_uint_eq(last->line, N_MEM + 1);
  tsesim_rows_free(rows);
  live_req = tsesim__test_alloc_live() - live0;
  fprintf(stderr, "reader_csv: %s: peak beyond the request %.1f bytes a row (request %.1f)\n", how,
          (double)(peak - live_req) / N_MEM, (double)live_req / N_MEM);
  ck_assert_msg(peak - live_req <= 32 * N_MEM + 1024 * 1024,
                "%s: the read held %lu bytes beyond the request's %lu", how,
                (unsigned long)(peak - live_req), (unsigned long)live_req);
}

START_TEST(test_memory_file) {
  char path[64];
  tsesim_request *req = make_req(0, 1);
  tsesim_rows *rows = NULL;
  size_t live0;
  tsesim_code rc;
  int fd;

  snprintf(path, sizeof path, "tmp-reader-csv-mem-%ld.csv", (long)getpid());
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  mem_write(fd);
  ck_assert_int_eq(close(fd), 0);
  tsesim__test_alloc_reset();
  live0 = tsesim__test_alloc_live();
  rc = tsesim_rows_read_csv(&rows, req, path, NULL);
  ck_assert_int_eq(unlink(path), 0);
  mem_check("a file", rc, rows, req, live0);
  tsesim_request_free(req);
}
END_TEST

static void *mem_writer(void *arg) {
  int fd = *(int *)arg;
  mem_write(fd);
  close(fd);
  return NULL;
}

/* Through a pipe that a thread fills as the reader empties it (a thread, not
 * a child: valgrind would judge the child's exit): the reader never holds
 * more than a couple of blocks of the file. */
START_TEST(test_memory_pipe) {
  tsesim_request *req = make_req(0, 1);
  tsesim_rows *rows = NULL;
  size_t live0, buf_peak = 0;
  tsesim_code rc;
  pthread_t writer;
  int fds[2];

  ck_assert_int_eq(pipe(fds), 0);
  tsesim__test_alloc_reset();
  live0 = tsesim__test_alloc_live();
  ck_assert_int_eq(pthread_create(&writer, NULL, mem_writer, &fds[1]), 0);
  rc = tsesim__rows_read_fd(&rows, req, fds[0], "-", NULL, 0, &buf_peak);
  ck_assert_int_eq(pthread_join(writer, NULL), 0);
  ck_assert_int_eq(close(fds[0]), 0);
  ck_assert_msg(buf_peak <= 2 * 65536, "the buffer grew to %lu bytes", (unsigned long)buf_peak);
  ck_assert_uint_ge(buf_peak, 65536);
  mem_check("a pipe", rc, rows, req, live0);
  tsesim_request_free(req);
}
END_TEST

static Suite *reader_csv_suite(void) {
  Suite *s = suite_create("reader_csv");
  TCase *tc = tcase_create("rules");
  tcase_add_loop_test(tc, test_cases, 0, (int)ARRAY_LEN(cases) * 8);
  tcase_add_loop_test(tc, test_cases_in_blocks, 0, (int)ARRAY_LEN(cases) * 14);
  tcase_add_test(tc, test_two_files_into_one_request);
  tcase_add_test(tc, test_null_arguments);
  tcase_add_test(tc, test_read_file);
  tcase_add_test(tc, test_read_pipe);
  tcase_add_test(tc, test_read_fd);
  tcase_add_test(tc, test_rows_follow_the_request);
  tcase_add_test(tc, test_whole_and_streamed_agree);
  suite_add_tcase(s, tc);
  tc = tcase_create("alloc");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_alloc_failure_parse);
  tcase_add_test(tc, test_alloc_failure_read);
  tcase_add_test(tc, test_alloc_failure_read_blocks);
  tcase_add_test(tc, test_alloc_failure_read_fd);
  suite_add_tcase(s, tc);
  tc = tcase_create("million");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_million_rows);
  tcase_add_test(tc, test_memory_file);
  tcase_add_test(tc, test_memory_pipe);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(reader_csv_suite)
