/*
 * reader_csv.c - device files: CSV (RFC 4180 quoting) in UTF-8 into a
 * request, keeping every data row with its line and, for a rejected row,
 * the reason (CLI.md, "Device files").
 *
 * The file streams: bytes come in blocks (64 KiB from a descriptor; the
 * whole of it from tsesim_rows_parse_csv), and one pass over each block
 * checks that it is text (UTF-8, no NUL) and follows the quotes far enough
 * to see where each record ends. A record is tokenized once it is whole;
 * only the unfinished one is carried to the next block, so a file is never
 * held whole, and a record longer than a block grows the buffer to that
 * record only. A text error anywhere wins over the other file errors (as
 * when the whole file was checked first): after a file error, the rest is
 * still read, for its text only.
 *
 * A million rows must cost little beyond the request: a valid row keeps its
 * line and its device's index (16 bytes, in chunks that never move), and
 * its cells are the device's identifiers, made into strings again by
 * tsesim_rows_get. A rejected row, which the request does not hold, keeps
 * its cells and reason in a pool. The set that finds a repeated eid holds
 * 32-bit row numbers and is freed before the call returns.
 */
#define _POSIX_C_SOURCE 200809L /* strerror_r (XSI), O_CLOEXEC */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tsesim_int.h"

#define NONE ((size_t)-1)
#define BLOCK 65536           /* what one read asks for */
#define CHUNK 4096            /* rows per chunk of kept rows */
#define REJECTED 0x80000000u  /* in kept.ref */
#define MAX_ROWS 0x7FFFFFFEul /* row numbers and refs live in 31 bits */
enum { COL_EID, COL_ICCID, COL_IMEI, N_COLS };
static const char *const col_names[N_COLS] = {"eid", "iccid", "imei"};
static const tsesim_id_kind col_kinds[N_COLS] = {TSESIM_ID_EID, TSESIM_ID_ICCID, TSESIM_ID_IMEI};

/* A row as kept: 16 bytes on LP64. */
typedef struct kept {
  unsigned long line;
  uint32_t ref; /* valid: its device's index less n0; rejected: REJECTED | its index in bad */
  uint32_t tag; /* valid: its eid's hash, which the set compares first */
} kept;

/* A rejected row: its cells and reason, as offsets in the pool (NONE: none). */
typedef struct bad_row {
  size_t cell[N_COLS];
  size_t error;
} bad_row;

/* What tsesim_rows_get hands out: one row at a time. */
typedef struct view {
  tsesim_row row;
  char text[N_COLS * 256]; /* a valid row's identifiers (each < 256 digits), NUL-terminated */
} view;

struct tsesim_rows {
  kept **chunks;
  size_t n, rejected;
  bad_row *bad;
  char *pool;
  const tsesim_request *req; /* the valid rows' cells */
  size_t n0;                 /* the devices req held before */
  view *view;
};

/* The rows and their view, in one block. */
typedef struct rows_block {
  tsesim_rows rows;
  view view;
} rows_block;

/* Where the record scanner is: at a cell's start, in unquoted text (also
 * text after a closing quote), inside quotes, right after a quote there. */
enum { AT_START, IN_PLAIN, IN_QUOTES, AT_QUOTE };

typedef struct reader {
  /* the record being tokenized */
  const unsigned char *p, *end;
  unsigned long line; /* of the byte at p */
  tsesim_request *req;
  size_t n0;   /* the devices req held before */
  char *cells; /* the kept cells of that record, NUL-terminated */
  size_t cells_len, cells_cap;
  size_t col[N_COLS]; /* 0-based column of each field in the header, NONE */
  size_t n_cols;
  int have_header;
  /* the rows so far */
  kept **chunks;
  size_t chunks_cap, n;
  bad_row *bad;
  size_t bad_cap, rejected;
  char *pool;
  size_t pool_len, pool_cap;
  uint32_t *set; /* 1 + row number of a valid row, by its eid's hash; 0: free */
  size_t set_cap, set_n;
  /* the stream: offsets in the bytes fed, which the carry moves to 0 */
  size_t rec;                /* start of the unfinished record */
  size_t pos;                /* the first byte not yet checked */
  int state;                 /* the record scanner's, at pos */
  unsigned long tline;       /* line of the byte at pos */
  unsigned long tcol;        /* bytes of that line before pos */
  int bom_done, any, failed; /* failed: a file error is in msg; only text is checked now */
  char msg[TSESIM_ERRBUF_SIZE];
} reader;

/* Sets the reason of a file error; returns -1 for the caller to pass up. */
static int fail(reader *r, const char *fmt, ...) TSESIM__PRINTF(2, 3);
static int fail(reader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__errbuf_vset(r->msg, fmt, ap);
  va_end(ap);
  return -1;
}

#define NOMEM (-2) /* besides -1, what the steps below return */

/* Makes room for n more bytes after len in a byte block, 1.5x at a time. */
static int bytes_room(char **buf, size_t *cap, size_t len, size_t n, size_t first) {
  size_t c = *cap ? *cap : first;
  char *p;
  if (n <= *cap - len) return 0;
  if (n > (size_t)-1 / 2 - len) return NOMEM;
  while (c - len < n) c += c / 2;
  p = tsesim__realloc(*buf, c);
  if (!p) return NOMEM;
  *buf = p;
  *cap = c;
  return 0;
}

static int cells_add(reader *r, const void *s, size_t n) {
  if (bytes_room(&r->cells, &r->cells_cap, r->cells_len, n, 256)) return NOMEM;
  if (n) memcpy(r->cells + r->cells_len, s, n);
  r->cells_len += n;
  return 0;
}

static int pool_add(reader *r, const char *s, size_t n, size_t *off) {
  if (bytes_room(&r->pool, &r->pool_cap, r->pool_len, n, 1024)) return NOMEM;
  *off = r->pool_len;
  memcpy(r->pool + r->pool_len, s, n);
  r->pool_len += n;
  return 0;
}

/* ---- the bytes are text ---- */

/* Length of the UTF-8 sequence that byte c >= 0x80 starts; 0 when no
 * sequence starts with it. */
static size_t utf8_need(unsigned char c) {
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

/* 1 when the n = utf8_need(s[0]) bytes at s are a valid sequence (not
 * overlong, not a surrogate, not above U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t n) {
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  size_t i;
  /* The second byte's range rules out overlongs, surrogates and > U+10FFFF. */
  if (c == 0xE0) lo = 0xA0;
  if (c == 0xED) hi = 0x9F;
  if (c == 0xF0) lo = 0x90;
  if (c == 0xF4) hi = 0x8F;
  if (s[1] < lo || s[1] > hi) return 0;
  for (i = 2; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return 1;
}

/* ---- the tokenizer (RFC 4180), over one whole record ---- */

/* A comma, LF, or CR before LF or at the end ends an unquoted cell. */
static int is_end(const unsigned char *s, const unsigned char *end) {
  return *s == ',' || *s == '\n' || (*s == '\r' && (s + 1 == end || s[1] == '\n'));
}

typedef struct cell {
  size_t off;                         /* in r->cells when kept and not empty, else NONE */
  const unsigned char *raw, *raw_end; /* what the file holds for it */
  int quoted, stray;                  /* stray: text after its closing quote */
} cell;

#define END_CELL 0
#define END_RECORD 1

/* Reads the cell at r->p, copying it NUL-terminated into r->cells when keep
 * is set. Returns END_CELL (a comma followed), END_RECORD, -1 or NOMEM. */
static int read_cell(reader *r, int keep, cell *c) {
  const unsigned char *s = r->p, *end = r->end, *q;
  size_t start = r->cells_len;

  c->off = NONE;
  c->raw = s;
  c->quoted = c->stray = 0;
  if (s < end && *s == '"') {
    unsigned long open_line = r->line;
    c->quoted = 1;
    for (s++;; s = q + 2) {
      q = memchr(s, '"', (size_t)(end - s));
      if (!q) return fail(r, "line %lu: a quote opened here is never closed", open_line);
      if (keep && cells_add(r, s, (size_t)(q - s))) return NOMEM;
      for (; s < q; s++)
        if (*s == '\n') r->line++; /* a quoted newline is a line of the file */
      if (q + 1 == end || q[1] != '"') break;
      if (keep && cells_add(r, "\"", 1)) return NOMEM; /* "" inside quotes */
    }
    s = q + 1;
    /* Text after the closing quote is kept as it is, and rejects the row. */
    if (s < end && !is_end(s, end)) c->stray = 1;
  }
  for (q = s; q < end && !is_end(q, end); q++) {
  }
  if (keep && cells_add(r, s, (size_t)(q - s))) return NOMEM;
  c->raw_end = q;
  if (keep && r->cells_len > start) {
    if (cells_add(r, "", 1)) return NOMEM;
    c->off = start;
  }
  if (q < end && *q == ',') {
    r->p = q + 1;
    return END_CELL;
  }
  if (q < end && *q == '\r') q++;
  if (q < end && *q == '\n') {
    q++;
    r->line++;
  }
  r->p = q;
  return END_RECORD;
}

/* ---- the header ---- */

static int read_header(reader *r) {
  size_t i;
  int end;
  for (i = 0; i < N_COLS; i++) r->col[i] = NONE;
  do {
    cell c;
    size_t k;
    r->cells_len = 0; /* the names are not kept */
    end = read_cell(r, 1, &c);
    if (end < 0) return end;
    if (c.off != NONE) {
      char *name = r->cells + c.off, *last = r->cells + r->cells_len - 2;
      while (*name == ' ' || *name == '\t') name++;
      while (last >= name && (*last == ' ' || *last == '\t')) *last-- = '\0';
      for (k = 0; k < N_COLS; k++) {
        if (!tsesim__ascii_ieq(name, col_names[k])) continue;
        if (r->col[k] != NONE)
          return fail(r, "line 1: column \"%s\" named twice (columns %lu and %lu)", col_names[k],
                      (unsigned long)r->col[k] + 1, (unsigned long)r->n_cols + 1);
        r->col[k] = r->n_cols;
      }
    }
    r->n_cols++;
  } while (end == END_CELL);
  if (r->col[COL_EID] == NONE)
    return fail(r, "line 1: no \"eid\" column (the first line names the columns)");
  if (r->col[COL_ICCID] == NONE && r->col[COL_IMEI] == NONE)
    return fail(r, "line 1: no \"iccid\" or \"imei\" column (a device needs one besides its eid)");
  return 0;
}

/* ---- the rows kept ---- */

static kept *kept_at(kept *const *chunks, size_t i) { return &chunks[i / CHUNK][i % CHUNK]; }

/* The eid of device dev of req (a device has one): its digits and length. */
static const char *device_eid(const tsesim_request *req, size_t dev, size_t *len) {
  const tsesim__device *d = &req->devs[dev];
  size_t off = d->off;
  int k;
  for (k = 0; k < d->n_ids - 1 && d->kind[k] != TSESIM_ID_EID; k++) off += d->len[k];
  *len = d->len[k];
  return req->pool + off;
}

/* A new row at the end, line set; chunks of CHUNK rows never move. */
static int kept_add(reader *r, unsigned long line, kept **out) {
  if (r->n >= MAX_ROWS) return fail(r, "line %lu: more than %lu data rows", line, MAX_ROWS);
  if (r->n % CHUNK == 0) {
    size_t c = r->n / CHUNK;
    if (c == r->chunks_cap) {
      size_t cap = r->chunks_cap ? r->chunks_cap * 2 : 16;
      kept **p;
      if (cap > (size_t)-1 / sizeof *p) return NOMEM;
      p = tsesim__realloc(r->chunks, cap * sizeof *p);
      if (!p) return NOMEM;
      r->chunks = p;
      r->chunks_cap = cap;
    }
    r->chunks[c] = tsesim__malloc(CHUNK * sizeof(kept));
    if (!r->chunks[c]) return NOMEM;
  }
  *out = kept_at(r->chunks, r->n++);
  (*out)->line = line;
  (*out)->ref = REJECTED;
  (*out)->tag = 0;
  return 0;
}

/* ---- the set of valid eids ---- */

/* The eid's 32-bit hash: the tag a valid row keeps, which places it in the
 * set. */
static uint32_t hash(const char *s, size_t n) {
  uint64_t h = 14695981039346656037ULL; /* FNV-1a */
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return (uint32_t)(h ^ (h >> 32));
}

/* The position of an eid (its tag) in the set, or of the free entry where
 * it belongs. A probe reads the row's tag first, and the eid itself, in the
 * request, only when the tags match: that spares the cache misses that
 * dominate a million rows. */
static size_t set_find(const reader *r, const char *eid, size_t n, uint32_t tag) {
  size_t i = tag & (r->set_cap - 1), len;
  for (; r->set[i]; i = (i + 1) & (r->set_cap - 1)) {
    const kept *k = kept_at(r->chunks, r->set[i] - 1);
    const char *s;
    if (k->tag != tag) continue;
    s = device_eid(r->req, r->n0 + k->ref, &len);
    if (len == n && memcmp(s, eid, n) == 0) break;
  }
  return i;
}

/* Keeps the set at most half full, so that probes stay short. The rows'
 * tags place them again: no eid is read. */
static int set_room(reader *r) {
  size_t cap = r->set_cap ? r->set_cap * 2 : 1024, i, old_cap = r->set_cap;
  uint32_t *old = r->set;
  if (r->set_n + 1 <= r->set_cap / 2) return 0;
  /* the tags are 32 bits, and rows at most MAX_ROWS */
  if (cap > (size_t)-1 / sizeof *old || cap - 1 > 0xFFFFFFFFul) return NOMEM;
  r->set = tsesim__malloc(cap * sizeof *old);
  if (!r->set) {
    r->set = old;
    return NOMEM;
  }
  memset(r->set, 0, cap * sizeof *old);
  r->set_cap = cap;
  for (i = 0; i < old_cap; i++) {
    size_t at;
    if (!old[i]) continue;
    at = kept_at(r->chunks, old[i] - 1)->tag & (cap - 1);
    while (r->set[at]) at = (at + 1) & (cap - 1);
    r->set[at] = old[i];
  }
  tsesim__free(old);
  return 0;
}

/* ---- rows ---- */

/* Rejects row k with the reason, keeping its cells (offsets in r->cells). */
static int reject(reader *r, kept *k, const size_t at[N_COLS], const char *fmt, ...)
    TSESIM__PRINTF(4, 5);
static int reject(reader *r, kept *k, const size_t at[N_COLS], const char *fmt, ...) {
  char why[TSESIM_ERRBUF_SIZE];
  va_list ap;
  bad_row *b;
  size_t i;
  va_start(ap, fmt);
  if (vsnprintf(why, sizeof why, fmt, ap) < 0) why[0] = '\0';
  va_end(ap);
  if (r->rejected == r->bad_cap) {
    size_t cap = r->bad_cap ? r->bad_cap + r->bad_cap / 2 : 16;
    if (cap > (size_t)-1 / sizeof *b) return NOMEM;
    b = tsesim__realloc(r->bad, cap * sizeof *b);
    if (!b) return NOMEM;
    r->bad = b;
    r->bad_cap = cap;
  }
  b = &r->bad[r->rejected];
  for (i = 0; i < N_COLS; i++) {
    const char *s = at[i] == NONE ? NULL : r->cells + at[i];
    b->cell[i] = NONE;
    if (s && pool_add(r, s, strlen(s) + 1, &b->cell[i])) return NOMEM;
  }
  if (pool_add(r, why, strlen(why) + 1, &b->error)) return NOMEM;
  k->ref = REJECTED | (uint32_t)r->rejected++;
  return 0;
}

/* Checks the row just read and adds it to the rows, and to the request
 * when valid. */
static int judge(reader *r, unsigned long line, const size_t at[N_COLS], size_t n_cells,
                 size_t stray) {
  tsesim_device_id ids[N_COLS];
  size_t n = 0, k, pos = 0;
  uint32_t tag = 0;
  tsesim_code rc;
  kept *row = NULL;
  int e;

  if ((e = kept_add(r, line, &row)) != 0) return e;
  if (stray != NONE)
    return reject(r, row, at, "cell %lu: text after its closing quote", (unsigned long)stray + 1);
  if (n_cells != r->n_cols)
    return reject(r, row, at, "%lu cell%s, the header has %lu", (unsigned long)n_cells,
                  n_cells == 1 ? "" : "s", (unsigned long)r->n_cols);
  if (at[COL_EID] != NONE) {
    const char *eid = r->cells + at[COL_EID];
    if (set_room(r)) return NOMEM;
    size_t len = strlen(eid);
    tag = hash(eid, len);
    pos = set_find(r, eid, len, tag);
    if (r->set[pos])
      return reject(r, row, at, "eid repeats line %lu", kept_at(r->chunks, r->set[pos] - 1)->line);
  }
  for (k = 0; k < N_COLS; k++) {
    if (at[k] == NONE) continue;
    ids[n].kind = col_kinds[k];
    ids[n].id = r->cells + at[k];
    ids[n++].kind_name = NULL;
  }
  rc = tsesim_request_add_device(r->req, ids, n);
  if (rc == TSESIM_E_NOMEM) return NOMEM;
  if (rc != TSESIM_OK) {
    /* The request says "device N: why"; a row is named by its line. */
    const char *why = r->req->errmsg, *colon = strchr(why, ':');
    if (strncmp(why, "device ", 7) == 0 && colon && colon[1] == ' ') why = colon + 2;
    return reject(r, row, at, "%s", why);
  }
  row->ref = (uint32_t)(r->req->n_devs - 1 - r->n0);
  row->tag = tag;
  r->set[pos] = (uint32_t)r->n; /* a valid row has an eid, so pos is its place */
  r->set_n++;
  return 0;
}

/* Reads the record at r->p: a data row, or nothing for a blank line. */
static int read_row(reader *r) {
  unsigned long line = r->line;
  size_t n_cells = 0, stray = NONE, k, cell_at[N_COLS];
  cell c;
  int end;

  r->cells_len = 0;
  for (k = 0; k < N_COLS; k++) cell_at[k] = NONE;
  do {
    int keep = 0;
    for (k = 0; k < N_COLS; k++)
      if (r->col[k] == n_cells) keep = 1;
    end = read_cell(r, keep, &c);
    if (end < 0) return end;
    for (k = 0; k < N_COLS; k++)
      if (r->col[k] == n_cells) cell_at[k] = c.off;
    if (c.stray && stray == NONE) stray = n_cells;
    n_cells++;
  } while (end == END_CELL);
  if (n_cells == 1 && !c.quoted) {
    const unsigned char *b = c.raw;
    while (b < c.raw_end && (*b == ' ' || *b == '\t')) b++;
    if (b == c.raw_end) return 0; /* a blank line */
  }
  return judge(r, line, cell_at, n_cells, stray);
}

/* ---- the stream ---- */

/* Tokenizes the whole record base[r->rec, end). A file error stops the
 * rows, not the reading: a text error further on would still win. */
static int record(reader *r, const unsigned char *base, size_t end) {
  int rc;
  r->p = base + r->rec;
  r->end = base + end;
  r->rec = end;
  if (r->failed) return 0;
  rc = r->have_header ? read_row(r) : read_header(r);
  r->have_header = 1;
  if (rc == -1) r->failed = 1;
  return rc == NOMEM ? NOMEM : 0;
}

/* A text error: it wins over anything found before it. */
static int text_fail(reader *r, const char *what) {
  return fail(r, "line %lu: %s at byte %lu of the line%s", r->tline, what, r->tcol + 1,
              what[0] == 'a' ? " (a device file is text)" : "");
}

/*
 * Takes base[0, len), of which base[0, r->pos) was seen before: checks the
 * new bytes' text, and tokenizes every record that ends in them (and the
 * last one at eof). Afterwards base[r->rec, len) is what the next call
 * needs again in front of the next bytes: the unfinished record, or once a
 * file error is known only an unfinished UTF-8 sequence. Returns 0, -1
 * (msg) or NOMEM; at eof also the file errors found on the way.
 */
static int feed(reader *r, const unsigned char *base, size_t len, int eof) {
  size_t i = r->pos;
  int rc;
  if (!r->bom_done) {
    /* Wait for three bytes while they may still be the BOM. */
    if (len < 3 && !eof && memcmp(base, "\xEF\xBB\xBF", len) == 0) return 0;
    if (len >= 3 && memcmp(base, "\xEF\xBB\xBF", 3) == 0) i = r->rec = 3;
    r->bom_done = 1;
  }
  while (i < len) {
    unsigned char c = base[i];
    int ends = 0;
    r->any = 1;
    if (c >= 0x80) {
      size_t n = utf8_need(c);
      if (n && len - i < n && !eof) break; /* the rest of it comes next */
      if (!n || len - i < n || !utf8_ok(base + i, n)) return text_fail(r, "invalid UTF-8");
      if (r->state != IN_QUOTES) r->state = IN_PLAIN;
      i += n;
      r->tcol += (unsigned long)n;
      continue;
    }
    if (c == '\0') return text_fail(r, "a NUL byte");
    switch (r->state) {
      case AT_START:
        r->state = c == '"' ? IN_QUOTES : c == ',' ? AT_START : IN_PLAIN;
        ends = c == '\n';
        break;
      case IN_QUOTES:
        if (c == '"') r->state = AT_QUOTE;
        break;
      default: /* IN_PLAIN, or AT_QUOTE, where a second quote is a doubled one */
        r->state = c == '"' && r->state == AT_QUOTE ? IN_QUOTES : c == ',' ? AT_START : IN_PLAIN;
        ends = c == '\n';
        break;
    }
    i++;
    if (c == '\n') {
      r->tline++;
      r->tcol = 0;
    } else {
      r->tcol++;
    }
    if (ends) {
      r->state = AT_START;
      if ((rc = record(r, base, i)) != 0) return rc;
    }
  }
  r->pos = i;
  if (r->failed) r->rec = i; /* no record is needed again */
  if (!eof) return 0;
  if (r->rec < len && (rc = record(r, base, len)) != 0) return rc;
  if (r->failed) return -1;
  if (!r->any) return fail(r, "line 1: no header (the file is empty)");
  if (r->n == 0) return fail(r, "line 1: no data row after the header");
  return 0;
}

/* ---- the calls ---- */

static void reader_init(reader *r, tsesim_request *req) {
  memset(r, 0, sizeof *r);
  r->req = req;
  r->n0 = req->n_devs;
  r->line = 1;
  r->tline = 1;
  r->state = AT_START;
}

static void chunks_free(kept **chunks, size_t n) {
  size_t i;
  if (!chunks) return;
  for (i = 0; i < (n + CHUNK - 1) / CHUNK; i++) tsesim__free(chunks[i]);
  tsesim__free(chunks);
}

/* Ends a read: on success the rows go to *out, on failure the request
 * loses the devices the read added and errbuf says why. */
static tsesim_code finish(reader *r, int rc, tsesim_rows **out, char *errbuf) {
  rows_block *b = NULL;
  tsesim__free(r->cells);
  tsesim__free(r->set);
  if (!rc) {
    b = tsesim__malloc(sizeof *b);
    if (!b) rc = NOMEM;
  }
  if (rc) {
    if (rc == NOMEM) snprintf(r->msg, sizeof r->msg, "out of memory");
    chunks_free(r->chunks, r->n);
    tsesim__free(r->bad);
    tsesim__free(r->pool);
    tsesim__request_truncate(r->req, r->n0);
    tsesim__errbuf_set(errbuf, "%s", r->msg);
    tsesim__errbuf_set(r->req->errmsg, "%s", r->msg);
    return rc == NOMEM ? TSESIM_E_NOMEM : TSESIM_E_INVAL;
  }
  b->rows.chunks = r->chunks;
  b->rows.n = r->n;
  b->rows.rejected = r->rejected;
  b->rows.bad = r->bad;
  b->rows.pool = r->pool;
  b->rows.req = r->req;
  b->rows.n0 = r->n0;
  b->rows.view = &b->view;
  r->req->errmsg[0] = '\0';
  *out = &b->rows;
  return TSESIM_OK;
}

tsesim_code tsesim_rows_parse_csv(tsesim_rows **out, tsesim_request *req, const char *data,
                                  size_t len, char *errbuf) {
  reader r;

  if (!out) {
    tsesim__errbuf_set(errbuf, "out is NULL");
    return TSESIM_E_INVAL;
  }
  *out = NULL;
  if (!req) {
    tsesim__errbuf_set(errbuf, "req is NULL");
    return TSESIM_E_INVAL;
  }
  if (!data && len) {
    tsesim__errbuf_set(errbuf, "data is NULL");
    return TSESIM_E_INVAL;
  }
  if (!data) data = ""; /* len is 0: an empty file */
  reader_init(&r, req);
  /* All of it is there: one block, at its end. */
  return finish(&r, feed(&r, (const unsigned char *)data, len, 1), out, errbuf);
}

/* The system's reason for errno e, thread-safely. */
static void sys_reason(char *buf, size_t size, int e) {
  if (strerror_r(e, buf, size) != 0) snprintf(buf, size, "error %d", e);
}

tsesim_code tsesim__rows_read_fd(tsesim_rows **out, tsesim_request *req, int fd, const char *name,
                                 char *errbuf, size_t block, size_t *peak) {
  char fd_name[32];
  unsigned char *buf = NULL;
  size_t len = 0, cap = 0;
  reader r;
  int rc = 0;

  if (!out) {
    tsesim__errbuf_set(errbuf, "out is NULL");
    return TSESIM_E_INVAL;
  }
  *out = NULL;
  if (!req || fd < 0) {
    tsesim__errbuf_set(errbuf, !req ? "req is NULL" : "fd %d is not a descriptor", fd);
    return TSESIM_E_INVAL;
  }
  if (!name) {
    snprintf(fd_name, sizeof fd_name, "fd %d", fd);
    name = fd_name;
  }
  if (!block) block = BLOCK;
  if (peak) *peak = 0;
  reader_init(&r, req);
  for (;;) {
    ssize_t got;
    size_t want;
    if (len == cap) { /* the record in hand fills the buffer: it grows for that record */
      size_t ncap = cap + (cap / 2 > block ? cap / 2 : block);
      unsigned char *nb;
      if (ncap < cap || !(nb = tsesim__realloc(buf, ncap))) {
        rc = NOMEM;
        break;
      }
      buf = nb;
      cap = ncap;
      if (peak && cap > *peak) *peak = cap;
    }
    want = cap - len < block ? cap - len : block;
    got = read(fd, buf + len, want);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      char why[128];
      sys_reason(why, sizeof why, errno);
      rc = fail(&r, "%s: %s", name, why);
      break;
    }
    len += (size_t)got;
    rc = feed(&r, buf, len, got == 0);
    if (rc || got == 0) break;
    /* Only what feed needs again stays, moved to the front. */
    if (r.rec) {
      memmove(buf, buf + r.rec, len - r.rec);
      len -= r.rec;
      r.pos -= r.rec;
      r.rec = 0;
    }
    if (cap > block && len < block) { /* that long record is done */
      unsigned char *nb = tsesim__realloc(buf, block);
      if (!nb) {
        rc = NOMEM;
        break;
      }
      buf = nb;
      cap = block;
    }
  }
  tsesim__free(buf);
  return finish(&r, rc, out, errbuf);
}

tsesim_code tsesim_rows_read_csv_fd(tsesim_rows **out, tsesim_request *req, int fd,
                                    const char *name, char *errbuf) {
  return tsesim__rows_read_fd(out, req, fd, name, errbuf, BLOCK, NULL);
}

tsesim_code tsesim_rows_read_csv(tsesim_rows **out, tsesim_request *req, const char *path,
                                 char *errbuf) {
  char why[128];
  tsesim_code rc;
  int fd;

  if (!out) {
    tsesim__errbuf_set(errbuf, "out is NULL");
    return TSESIM_E_INVAL;
  }
  *out = NULL;
  if (!req || !path || !*path) {
    tsesim__errbuf_set(errbuf, !req ? "req is NULL" : !path ? "path is NULL" : "path is empty");
    return TSESIM_E_INVAL;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sys_reason(why, sizeof why, errno);
    tsesim__errbuf_set(errbuf, "%s: %s", path, why);
    return TSESIM_E_INVAL;
  }
  rc = tsesim_rows_read_csv_fd(out, req, fd, path, errbuf);
  close(fd);
  return rc;
}

size_t tsesim_rows_count(const tsesim_rows *rows) { return rows ? rows->n : 0; }

size_t tsesim_rows_rejected(const tsesim_rows *rows) { return rows ? rows->rejected : 0; }

const tsesim_row *tsesim_rows_get(const tsesim_rows *rows, size_t i) {
  const kept *k;
  tsesim_row *row;
  const char **dst_of[N_COLS];
  size_t dev;
  if (!rows || i >= rows->n) return NULL;
  k = kept_at(rows->chunks, i);
  row = &rows->view->row;
  dst_of[COL_EID] = &row->eid;
  dst_of[COL_ICCID] = &row->iccid;
  dst_of[COL_IMEI] = &row->imei;
  row->line = k->line;
  row->eid = row->iccid = row->imei = row->error = NULL;
  dev = rows->n0 + k->ref;
  if (k->ref & REJECTED) {
    const bad_row *b = &rows->bad[k->ref & ~REJECTED];
    size_t c;
    for (c = 0; c < N_COLS; c++)
      if (b->cell[c] != NONE) *dst_of[c] = rows->pool + b->cell[c];
    row->error = rows->pool + b->error;
    row->device = NONE;
  } else if (dev < rows->req->n_devs) {
    /* The cells of a valid row are its device's identifiers. */
    const tsesim__device *d = &rows->req->devs[dev];
    const char *src = rows->req->pool + d->off;
    char *dst = rows->view->text;
    int j;
    for (j = 0; j < d->n_ids; j++) {
      int c = d->kind[j] == TSESIM_ID_EID     ? COL_EID
              : d->kind[j] == TSESIM_ID_ICCID ? COL_ICCID
                                              : COL_IMEI;
      memcpy(dst, src, d->len[j]);
      dst[d->len[j]] = '\0';
      *dst_of[c] = dst;
      src += d->len[j];
      dst += d->len[j] + 1;
    }
    row->device = dev;
  } else {
    row->device = dev; /* the request lost it: no cells to show */
  }
  return row;
}

void tsesim_rows_free(tsesim_rows *rows) {
  if (!rows) return;
  chunks_free(rows->chunks, rows->n);
  tsesim__free(rows->bad);
  tsesim__free(rows->pool);
  tsesim__free(rows); /* the rows_block, whose first member it is */
}
