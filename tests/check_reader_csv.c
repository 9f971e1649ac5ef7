/*
 * check_reader_csv.c - device files (tsesim_rows_parse_csv, _read_csv and
 * the accessors): the rules of CLI.md "Device files", with every row's line,
 * cells and reason, and every file error's message, asserted exactly.
 *
 * Each case runs four ways: into an empty request and into one that already
 * holds two devices (the rows' device indexes follow them), with the file at
 * an exact-size heap copy and at the end of a page followed by a PROT_NONE
 * page. The input is destroyed before anything is checked, so that a row
 * pointing into it shows. A failure must leave the request as it was.
 */
#include <errno.h>
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

/* _i: case * 8 + placement * 4 + (devices already in the request) * 2 + errbuf NULL */
START_TEST(test_cases) {
  const csv_case *c = &cases[_i / 8];
  place where = (_i / 4) % 2 ? PLACE_GUARD : PLACE_HEAP;
  size_t n_pre = (_i / 2) % 2 ? 2 : 0, i;
  int with_errbuf = !(_i % 2);
  char errbuf[TSESIM_ERRBUF_SIZE], ctx[200];
  tsesim_request *req = make_req(n_pre, c->checksums);
  char *before = json_of(req), *after;
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
  after = json_of(req);
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
  tsesim_free(before);
  tsesim_free(after);
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

/* Writes len bytes to a new file in the build directory; returns its name. */
static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

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
          "reader_csv: 1,000,000 rows in %.2f s; the rows keep %.1f bytes a row (cells "
          "%u + row %u), the request %.1f; peak during the call %.1f bytes a row\n",
          t1 - t0, (double)live_rows / MILLION, 32 + 1 + 20 + 1, (unsigned)sizeof(tsesim_row),
          (double)(live_req - live0) / MILLION, (double)peak / MILLION);
  /* The rows: the public row plus the two cells, NUL-terminated; nothing else. */
  ck_assert_uint_le(live_rows, MILLION * (sizeof(tsesim_row) + 33 + 21) + 4096);
  /* The call's peak over what it leaves: the set and the growth of the blocks. */
  ck_assert_uint_le(peak, MILLION * 300);
  /* Quadratic work would take hours; natively it is about 1.5 s, under valgrind
   * about 9 s: the bound leaves room for a loaded machine. */
  ck_assert_msg(t1 - t0 < 30.0, "1,000,000 rows took %.1f s", t1 - t0);
  free(data);
  tsesim_request_free(req);
}
END_TEST

static Suite *reader_csv_suite(void) {
  Suite *s = suite_create("reader_csv");
  TCase *tc = tcase_create("rules");
  tcase_add_loop_test(tc, test_cases, 0, (int)ARRAY_LEN(cases) * 8);
  tcase_add_test(tc, test_two_files_into_one_request);
  tcase_add_test(tc, test_null_arguments);
  tcase_add_test(tc, test_read_file);
  tcase_add_test(tc, test_read_pipe);
  suite_add_tcase(s, tc);
  tc = tcase_create("alloc");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_alloc_failure_parse);
  tcase_add_test(tc, test_alloc_failure_read);
  suite_add_tcase(s, tc);
  tc = tcase_create("million");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_million_rows);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(reader_csv_suite)
