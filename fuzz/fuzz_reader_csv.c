/*
 * fuzz_reader_csv.c - tsesim_rows_parse_csv over any file.
 *
 * Input: one selector byte, then the file's bytes (not NUL-terminated: the
 * fuzzer's buffer ends where the file ends, so AddressSanitizer sees any
 * read past it). Selector bit 0 turns check-digit verification off, bit 1
 * puts a device in the request first, bits 2-4 choose the block size of the
 * streamed read (1 to 7 bytes, or 64 KiB), bit 5 a pipe or a file for it.
 *
 * The file is also read here by a reference reader, written from
 * tsesim_rows_parse_csv(3) and CLI.md "Device files" and independently of
 * lib/reader_csv.c: a byte-at-a-time RFC 4180 tokenizer and the rules of
 * the header and the rows, with identifiers judged by fuzz_ids.h. Checks:
 * the result code and, for a file error, errbuf exactly; for a good file,
 * every row's line and cells, which rows are rejected and, for the rules
 * of the file (cell counts, repeated eids, text after a quote), the exact
 * reason; device indexes in order after those already in the request, and
 * the request's count. On failure *out is NULL and the request holds what
 * it held.
 *
 * The same bytes are also read through a pipe (or a file) in small blocks
 * (tsesim__rows_read_fd), so that records, quoted newlines and UTF-8
 * sequences cross blocks everywhere: the code, errbuf, every row and the
 * request must be what the whole parse gave. Any mismatch traps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_ids.h"
#include "tsesim_int.h" /* tsesim__rows_read_fd */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the reference reader ---- */

typedef struct rcell {
  char *s; /* NUL-terminated copy, may be "" */
  int quoted, stray;
} rcell;

typedef struct rrec {
  unsigned long line;
  rcell *cells;
  size_t n;
} rrec;

typedef struct ref {
  rrec *recs;
  size_t n;
  char err[TSESIM_ERRBUF_SIZE]; /* "" when the file tokenizes */
} ref;

/* 1 when s[0..n) is UTF-8 with no NUL; else the line and byte of the line. */
static int text_ok(const uint8_t *s, size_t n, char *err) {
  unsigned long line = 1, col;
  size_t i = 0, bol = 0;
  while (i < n) {
    unsigned long cp;
    size_t k, len;
    col = (unsigned long)(i - bol);
    if (s[i] == 0) {
      snprintf(err, TSESIM_ERRBUF_SIZE,
               "line %lu: a NUL byte at byte %lu of the line (a device file is text)", line,
               col + 1);
      return 0;
    }
    if (s[i] < 0x80) {
      if (s[i] == '\n') line++, bol = i + 1;
      i++;
      continue;
    }
    len = (s[i] & 0xE0) == 0xC0 ? 2 : (s[i] & 0xF0) == 0xE0 ? 3 : (s[i] & 0xF8) == 0xF0 ? 4 : 0;
    cp = len == 2 ? s[i] & 0x1Fu : len == 3 ? s[i] & 0x0Fu : s[i] & 0x07u;
    for (k = 1; len && k < len; k++) {
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) len = 0;
      if (len) cp = cp << 6 | (s[i + k] & 0x3Fu);
    }
    if (!len || (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      snprintf(err, TSESIM_ERRBUF_SIZE, "line %lu: invalid UTF-8 at byte %lu of the line", line,
               col + 1);
      return 0;
    }
    i += len;
  }
  return 1;
}

static void ref_free(ref *r) {
  size_t i, j;
  for (i = 0; i < r->n; i++) {
    for (j = 0; j < r->recs[i].n; j++) free(r->recs[i].cells[j].s);
    free(r->recs[i].cells);
  }
  free(r->recs);
}

/* Splits s[0..n) into records; r->err on a quote left open. */
static void tokenize(const uint8_t *s, size_t n, ref *r) {
  size_t i = 0;
  unsigned long line = 1;
  char *buf = malloc(n + 1); /* the cell being read */
  FUZZ_CHECK(buf);
  while (i < n) {
    rrec *rec;
    r->recs = realloc(r->recs, (r->n + 1) * sizeof *r->recs);
    FUZZ_CHECK(r->recs);
    rec = &r->recs[r->n++];
    rec->line = line;
    rec->cells = NULL;
    rec->n = 0;
    for (;;) {
      rcell *c;
      size_t len = 0;
      unsigned long open_line = line;
      rec->cells = realloc(rec->cells, (rec->n + 1) * sizeof *rec->cells);
      FUZZ_CHECK(rec->cells);
      c = &rec->cells[rec->n++];
      c->s = NULL;
      c->quoted = c->stray = 0;
      if (i < n && s[i] == '"') {
        c->quoted = 1;
        for (i++;;) {
          if (i >= n) {
            c->s = strndup(buf, len);
            FUZZ_CHECK(c->s);
            free(buf);
            snprintf(r->err, sizeof r->err, "line %lu: a quote opened here is never closed",
                     open_line);
            return;
          }
          if (s[i] == '"' && i + 1 < n && s[i + 1] == '"') {
            buf[len++] = '"';
            i += 2;
          } else if (s[i] == '"') {
            i++;
            break;
          } else {
            if (s[i] == '\n') line++;
            buf[len++] = (char)s[i++];
          }
        }
      }
#define AT_END(k)                             \
  ((k) >= n || s[k] == ',' || s[k] == '\n' || \
   (s[k] == '\r' && ((k) + 1 == n || s[(k) + 1] == '\n')))
      if (c->quoted && !AT_END(i)) c->stray = 1;
      while (!AT_END(i)) buf[len++] = (char)s[i++];
      c->s = strndup(buf, len);
      FUZZ_CHECK(c->s);
      if (i < n && s[i] == ',') {
        i++;
        continue;
      }
      if (i < n && s[i] == '\r') i++;
      if (i < n && s[i] == '\n') {
        i++;
        line++;
      }
      break;
    }
  }
  free(buf);
}

static int blank(const rrec *rec) {
  const char *p;
  if (rec->n != 1 || rec->cells[0].quoted) return 0;
  for (p = rec->cells[0].s; *p; p++)
    if (*p != ' ' && *p != '\t') return 0;
  return 1;
}

static int ieq_trimmed(const char *s, const char *name) {
  size_t n = strlen(s), k = strlen(name);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  while (n && (*s == ' ' || *s == '\t')) s++, n--;
  if (n != k) return 0;
  while (k--)
    if ((s[k] | 0x20) != name[k]) return 0;
  return 1;
}

static const char *const names[3] = {"eid", "iccid", "imei"};
static const int kinds[3] = {TSESIM_ID_EID, TSESIM_ID_ICCID, TSESIM_ID_IMEI};

/* Reads the first n cells of r's first record, the header, into col[]; err
 * stays "" when it is one. dups_only: the header ends in a quote left open,
 * and only a column named twice before it is found first. */
static void header(ref *r, size_t n, int dups_only, size_t col[3], char *err) {
  const rrec *h = &r->recs[0];
  size_t j, k;
  col[0] = col[1] = col[2] = (size_t)-1;
  for (j = 0; j < n; j++)
    for (k = 0; k < 3; k++) {
      if (!ieq_trimmed(h->cells[j].s, names[k])) continue;
      if (col[k] != (size_t)-1) {
        snprintf(err, TSESIM_ERRBUF_SIZE, "line 1: column \"%s\" named twice (columns %lu and %lu)",
                 names[k], (unsigned long)col[k] + 1, (unsigned long)j + 1);
        return;
      }
      col[k] = j;
    }
  if (dups_only) return;
  if (col[0] == (size_t)-1)
    snprintf(err, TSESIM_ERRBUF_SIZE,
             "line 1: no \"eid\" column (the first line names the columns)");
  else if (col[1] == (size_t)-1 && col[2] == (size_t)-1)
    snprintf(err, TSESIM_ERRBUF_SIZE,
             "line 1: no \"iccid\" or \"imei\" column (a device needs one besides its eid)");
}

static volatile size_t sink;

/* ---- whole and streamed agree ---- */

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

/* A descriptor reading file[0, len) to its end: a pipe when it fits in the
 * pipe's buffer and as_pipe, else an unlinked temporary file. */
static int data_fd(const uint8_t *file, size_t len, int as_pipe) {
  size_t off = 0;
  int fd, fds[2];
  if (as_pipe && len <= 65536) {
    FUZZ_CHECK(pipe(fds) == 0);
    while (off < len) {
      ssize_t w = write(fds[1], file + off, len - off);
      FUZZ_CHECK(w > 0);
      off += (size_t)w;
    }
    close(fds[1]);
    return fds[0];
  }
  {
    FILE *f = tmpfile();
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(len == 0 || fwrite(file, 1, len, f) == len);
    FUZZ_CHECK(fflush(f) == 0);
    fd = dup(fileno(f));
    FUZZ_CHECK(fd >= 0);
    fclose(f);
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
  }
}

/* The streamed read of the same bytes against the whole parse's result. */
static void check_streamed(const uint8_t *file, size_t len, int checksums, int pre, size_t block,
                           int as_pipe, tsesim_code rc, const tsesim_rows *rows, const char *errbuf,
                           const tsesim_request *req) {
  char errbuf2[TSESIM_ERRBUF_SIZE];
  tsesim_request *req2 = NULL;
  tsesim_rows *rows2 = (tsesim_rows *)&sink;
  char *j1 = NULL, *j2 = NULL;
  size_t i, l1 = 0, l2 = 0;
  tsesim_code rc2;
  int fd = data_fd(file, len, as_pipe);

  FUZZ_CHECK(tsesim_request_new(&req2, "Acme") == TSESIM_OK);
  FUZZ_CHECK(tsesim_request_set_verify_checksums(req2, checksums) == TSESIM_OK);
  if (pre) {
    static const tsesim_device_id one[2] = {
        {TSESIM_ID_EID, "89049032123451234512345678901235", NULL},
        {TSESIM_ID_IMEI, "490154203237518", NULL}};
    FUZZ_CHECK(tsesim_request_add_device(req2, one, 2) == TSESIM_OK);
  }
  memset(errbuf2, 0xAA, sizeof errbuf2);
  rc2 = tsesim__rows_read_fd(&rows2, req2, fd, "-", errbuf2, block, NULL);
  close(fd);
  FUZZ_CHECK(rc2 == rc);
  FUZZ_CHECK(strcmp(tsesim_request_errmsg(req2), tsesim_request_errmsg(req)) == 0);
  FUZZ_CHECK(tsesim_request_device_count(req2) == tsesim_request_device_count(req));
  if (rc != TSESIM_OK) {
    FUZZ_CHECK(rows2 == NULL && strcmp(errbuf2, errbuf) == 0);
  } else {
    FUZZ_CHECK(rows2 != NULL);
    FUZZ_CHECK(tsesim_rows_count(rows2) == tsesim_rows_count(rows));
    FUZZ_CHECK(tsesim_rows_rejected(rows2) == tsesim_rows_rejected(rows));
    for (i = 0; i < tsesim_rows_count(rows); i++) {
      /* Different rows: each row lasts until the next get on its own rows. */
      const tsesim_row *a = tsesim_rows_get(rows, i), *b = tsesim_rows_get(rows2, i);
      FUZZ_CHECK(a && b && a->line == b->line && a->device == b->device);
      FUZZ_CHECK(same_str(a->eid, b->eid) && same_str(a->iccid, b->iccid) &&
                 same_str(a->imei, b->imei) && same_str(a->error, b->error));
    }
    if (tsesim_request_device_count(req) > 0) {
      FUZZ_CHECK(tsesim_request_to_json(&j1, &l1, req) == TSESIM_OK);
      FUZZ_CHECK(tsesim_request_to_json(&j2, &l2, req2) == TSESIM_OK);
      FUZZ_CHECK(l1 == l2 && memcmp(j1, j2, l1) == 0);
      tsesim_free(j1);
      tsesim_free(j2);
    }
    tsesim_rows_free(rows2);
  }
  tsesim_request_free(req2);
}

static void same_cell(const char *got, const rrec *rec, size_t col) {
  const char *want = col < rec->n && rec->cells[col].s[0] ? rec->cells[col].s : NULL;
  if (!want) {
    FUZZ_CHECK(got == NULL);
    return;
  }
  FUZZ_CHECK(got != NULL && strcmp(got, want) == 0);
  sink += strlen(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char errbuf[TSESIM_ERRBUF_SIZE], want_err[TSESIM_ERRBUF_SIZE] = "", why[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = NULL;
  tsesim_rows *rows = (tsesim_rows *)&sink; /* must become NULL on failure */
  int checksums, pre, as_pipe;
  size_t block;
  const uint8_t *file, *body;
  size_t len, blen, n0, col[3], i, j, k, n_data = 0, dev;
  ref r;
  tsesim_code rc;

  if (size < 1) return 0;
  checksums = !(data[0] & 1);
  pre = (data[0] & 2) != 0;
  block = (size_t)(data[0] >> 2) & 7;
  block = block ? block : 65536;
  as_pipe = !(data[0] & 32);
  file = data + 1;
  len = size - 1;
  FUZZ_CHECK(tsesim_request_new(&req, "Acme") == TSESIM_OK);
  FUZZ_CHECK(tsesim_request_set_verify_checksums(req, checksums) == TSESIM_OK);
  if (pre) {
    static const tsesim_device_id one[2] = {
        {TSESIM_ID_EID, "89049032123451234512345678901235", NULL},
        {TSESIM_ID_IMEI, "490154203237518", NULL}};
    FUZZ_CHECK(tsesim_request_add_device(req, one, 2) == TSESIM_OK);
  }
  n0 = tsesim_request_device_count(req);

  memset(errbuf, 0xAA, sizeof errbuf);
  rc = tsesim_rows_parse_csv(&rows, req, (const char *)file, len, errbuf);
  check_streamed(file, len, checksums, pre, block, as_pipe, rc, rows, errbuf, req);

  /* What the manual says should have happened. */
  memset(&r, 0, sizeof r);
  body = file;
  blen = len;
  if (blen >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) body += 3, blen -= 3;
  if (!text_ok(body, blen, want_err)) {
  } else if (blen == 0) {
    snprintf(want_err, sizeof want_err, "line 1: no header (the file is empty)");
  } else {
    tokenize(body, blen, &r);
    /* The header is judged before a later record's quote left open. */
    if (r.err[0] && r.n == 1) {
      header(&r, r.recs[0].n - 1, 1, col, want_err);
      if (!want_err[0]) memcpy(want_err, r.err, sizeof want_err);
    } else {
      header(&r, r.recs[0].n, 0, col, want_err);
      if (!want_err[0] && r.err[0]) memcpy(want_err, r.err, sizeof want_err);
      for (i = 1; !want_err[0] && i < r.n; i++) n_data += !blank(&r.recs[i]);
      if (!want_err[0] && n_data == 0)
        snprintf(want_err, sizeof want_err, "line 1: no data row after the header");
    }
  }

  if (want_err[0]) {
    FUZZ_CHECK(rc == TSESIM_E_INVAL && rows == NULL);
    FUZZ_CHECK(fuzz_errbuf_ok(errbuf) && strcmp(errbuf, want_err) == 0);
    FUZZ_CHECK(tsesim_request_device_count(req) == n0);
    FUZZ_CHECK(strcmp(tsesim_request_errmsg(req), want_err) == 0);
  } else {
    size_t n_rejected = 0;
    FUZZ_CHECK(rc == TSESIM_OK && rows != NULL);
    FUZZ_CHECK(tsesim_rows_count(rows) == n_data);
    dev = n0;
    for (i = 1, j = 0; i < r.n; i++) {
      const rrec *rec = &r.recs[i];
      const tsesim_row *got;
      tsesim_row cur, *row = &cur;
      char *cells[4];
      size_t stray = (size_t)-1;
      if (blank(rec)) continue;
      got = tsesim_rows_get(rows, j++);
      FUZZ_CHECK(got != NULL && got->line == rec->line);
      /* A row lasts until the next tsesim_rows_get on its rows, and the
       * search for a repeated eid below gets others: a copy. */
      cur = *got;
      cells[0] = cur.eid ? strdup(cur.eid) : NULL;
      cells[1] = cur.iccid ? strdup(cur.iccid) : NULL;
      cells[2] = cur.imei ? strdup(cur.imei) : NULL;
      cells[3] = cur.error ? strdup(cur.error) : NULL;
      FUZZ_CHECK(!cur.eid == !cells[0] && !cur.iccid == !cells[1] && !cur.imei == !cells[2] &&
                 !cur.error == !cells[3]);
      cur.eid = cells[0];
      cur.iccid = cells[1];
      cur.imei = cells[2];
      cur.error = cells[3];
      same_cell(row->eid, rec, col[0]);
      same_cell(row->iccid, rec, col[1]);
      same_cell(row->imei, rec, col[2]);
      for (k = 0; k < rec->n; k++)
        if (rec->cells[k].stray && stray == (size_t)-1) stray = k;
      why[0] = '\0';
      if (stray != (size_t)-1) {
        snprintf(why, sizeof why, "cell %lu: text after its closing quote",
                 (unsigned long)stray + 1);
      } else if (rec->n != r.recs[0].n) {
        snprintf(why, sizeof why, "%lu cell%s, the header has %lu", (unsigned long)rec->n,
                 rec->n == 1 ? "" : "s", (unsigned long)r.recs[0].n);
      } else if (row->eid) {
        size_t e;
        for (e = 0; e + 1 < j; e++) { /* an earlier valid row with this eid */
          const tsesim_row *o = tsesim_rows_get(rows, e);
          if (!o->error && strcmp(o->eid, row->eid) == 0) {
            snprintf(why, sizeof why, "eid repeats line %lu", o->line);
            break;
          }
        }
      }
      if (why[0]) {
        FUZZ_CHECK(row->error && strcmp(row->error, why) == 0);
      } else {
        const char *cells[3] = {row->eid, row->iccid, row->imei};
        int valid = row->eid && (row->iccid || row->imei);
        for (k = 0; k < 3; k++)
          if (cells[k] && !fuzz_id_valid(kinds[k], cells[k], checksums)) valid = 0;
        if (valid) {
          FUZZ_CHECK(row->error == NULL);
        } else {
          /* An identifier's reason is tsesim_request_add_device's, without
           * its device index. */
          FUZZ_CHECK(row->error && row->error[0] && strncmp(row->error, "device ", 7) != 0);
        }
      }
      if (row->error) {
        sink += strlen(row->error);
        FUZZ_CHECK(row->device == (size_t)-1);
        n_rejected++;
      } else {
        FUZZ_CHECK(row->device == dev++);
      }
      for (k = 0; k < 4; k++) free(cells[k]);
    }
    FUZZ_CHECK(tsesim_rows_get(rows, j) == NULL);
    FUZZ_CHECK(tsesim_rows_rejected(rows) == n_rejected);
    FUZZ_CHECK(tsesim_request_device_count(req) == dev);
    FUZZ_CHECK(tsesim_request_errmsg(req)[0] == '\0');
    tsesim_rows_free(rows);
  }
  ref_free(&r);
  tsesim_request_free(req);
  return 0;
}
