/*
 * reader_csv.c - device files: CSV (RFC 4180 quoting) in UTF-8 into a
 * request, keeping every data row with its line and, for a rejected row,
 * the reason (CLI.md, "Device files").
 *
 * One pass over the bytes checks that they are text (UTF-8, no NUL), so
 * that the tokenizer after it deals with structure only. The rows and the
 * cells they keep (eid, iccid, imei and reasons, NUL-terminated) go to two
 * growing blocks; since both move while growing, a row holds pool offsets
 * until the end, when they become the pointers of tsesim_row. A million
 * rows must fit comfortably: other columns are never copied, and the set
 * that finds a repeated eid holds 32-bit row numbers and is freed before
 * the call returns.
 */
#define _POSIX_C_SOURCE 200809L /* strerror_r (XSI), O_CLOEXEC */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsesim_int.h"

#define NONE ((size_t)-1)
enum { COL_EID, COL_ICCID, COL_IMEI, N_COLS };
static const char *const col_names[N_COLS] = {"eid", "iccid", "imei"};
static const tsesim_id_kind col_kinds[N_COLS] = {TSESIM_ID_EID, TSESIM_ID_ICCID, TSESIM_ID_IMEI};

/* A row while the pool may still move: offsets (NONE for none), turned
 * into the public row's pointers in place at the end. */
typedef union slot {
  tsesim_row row;
  struct {
    unsigned long line;
    size_t cell[N_COLS];
    size_t error;
  } at;
} slot;

struct tsesim_rows {
  slot *slots;
  size_t n, rejected;
  char *pool;
};

typedef struct reader {
  const unsigned char *p, *end;
  unsigned long line; /* of the byte at p */
  tsesim_request *req;
  char *pool;
  size_t pool_len, pool_cap;
  slot *slots;
  size_t n, cap, rejected;
  uint32_t *set; /* 1 + index of a valid row, by its eid's hash; 0: free */
  size_t set_cap, set_n;
  size_t col[N_COLS]; /* 0-based column of each field in the header, NONE */
  size_t n_cols;
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

/* Makes room for n more bytes in the pool, 1.5x at a time. */
static int pool_room(reader *r, size_t n) {
  size_t cap = r->pool_cap ? r->pool_cap : 4096;
  char *p;
  if (n <= r->pool_cap - r->pool_len) return 0;
  if (n > (size_t)-1 / 2 - r->pool_len) return NOMEM;
  while (cap - r->pool_len < n) cap += cap / 2;
  p = tsesim__realloc(r->pool, cap);
  if (!p) return NOMEM;
  r->pool = p;
  r->pool_cap = cap;
  return 0;
}

static int pool_add(reader *r, const void *s, size_t n) {
  if (pool_room(r, n)) return NOMEM;
  if (n) memcpy(r->pool + r->pool_len, s, n);
  r->pool_len += n;
  return 0;
}

/* ---- the bytes are text ---- */

/* Length (1-4) of the valid UTF-8 sequence starting with a byte >= 0x80 at
 * s, of the n bytes left; 0 when invalid (truncated, overlong, a surrogate,
 * above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  size_t len, i;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4;
  else
    return 0;
  if (n < len) return 0;
  /* The second byte's range rules out overlongs, surrogates and > U+10FFFF. */
  if (c == 0xE0) lo = 0xA0;
  if (c == 0xED) hi = 0x9F;
  if (c == 0xF0) lo = 0x90;
  if (c == 0xF4) hi = 0x8F;
  if (s[1] < lo || s[1] > hi) return 0;
  for (i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return len;
}

static int check_text(reader *r) {
  const unsigned char *s = r->p, *bol = s;
  unsigned long line = 1;
  while (s < r->end) {
    unsigned char c = *s;
    if (c >= 0x80) {
      size_t n = utf8_len(s, (size_t)(r->end - s));
      if (!n)
        return fail(r, "line %lu: invalid UTF-8 at byte %lu of the line", line,
                    (unsigned long)(s - bol) + 1);
      s += n;
      continue;
    }
    if (c == '\n') {
      line++;
      bol = s + 1;
    } else if (c == '\0') {
      return fail(r, "line %lu: a NUL byte at byte %lu of the line (a device file is text)", line,
                  (unsigned long)(s - bol) + 1);
    }
    s++;
  }
  return 0;
}

/* ---- the tokenizer (RFC 4180) ---- */

/* A comma, LF, or CR before LF or at the end ends an unquoted cell. */
static int is_end(const unsigned char *s, const unsigned char *end) {
  return *s == ',' || *s == '\n' || (*s == '\r' && (s + 1 == end || s[1] == '\n'));
}

typedef struct cell {
  size_t off;                         /* in the pool when kept and not empty, else NONE */
  const unsigned char *raw, *raw_end; /* what the file holds for it */
  int quoted, stray;                  /* stray: text after its closing quote */
} cell;

#define END_CELL 0
#define END_RECORD 1

/* Reads the cell at r->p, copying it NUL-terminated into the pool when keep
 * is set. Returns END_CELL (a comma followed), END_RECORD, -1 or NOMEM. */
static int read_cell(reader *r, int keep, cell *c) {
  const unsigned char *s = r->p, *end = r->end, *q;
  size_t start = r->pool_len;

  c->off = NONE;
  c->raw = s;
  c->quoted = c->stray = 0;
  if (s < end && *s == '"') {
    unsigned long open_line = r->line;
    c->quoted = 1;
    for (s++;; s = q + 2) {
      q = memchr(s, '"', (size_t)(end - s));
      if (!q) return fail(r, "line %lu: a quote opened here is never closed", open_line);
      if (keep && pool_add(r, s, (size_t)(q - s))) return NOMEM;
      for (; s < q; s++)
        if (*s == '\n') r->line++; /* a quoted newline is a line of the file */
      if (q + 1 == end || q[1] != '"') break;
      if (keep && pool_add(r, "\"", 1)) return NOMEM; /* "" inside quotes */
    }
    s = q + 1;
    /* Text after the closing quote is kept as it is, and rejects the row. */
    if (s < end && !is_end(s, end)) c->stray = 1;
  }
  for (q = s; q < end && !is_end(q, end); q++) {
  }
  if (keep && pool_add(r, s, (size_t)(q - s))) return NOMEM;
  c->raw_end = q;
  if (keep && r->pool_len > start) {
    if (pool_add(r, "", 1)) return NOMEM;
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
    end = read_cell(r, 1, &c);
    if (end < 0) return end;
    if (c.off != NONE) {
      char *name = r->pool + c.off, *last = r->pool + r->pool_len - 2;
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
    r->pool_len = 0; /* the names are not kept */
    r->n_cols++;
  } while (end == END_CELL);
  if (r->col[COL_EID] == NONE)
    return fail(r, "line 1: no \"eid\" column (the first line names the columns)");
  if (r->col[COL_ICCID] == NONE && r->col[COL_IMEI] == NONE)
    return fail(r, "line 1: no \"iccid\" or \"imei\" column (a device needs one besides its eid)");
  return 0;
}

/* ---- the set of valid eids ---- */

static size_t hash(const char *s) {
  uint64_t h = 14695981039346656037ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)(h ^ (h >> 29));
}

/* The position of eid in the set, or of the free entry where it belongs. */
static size_t set_find(const reader *r, const char *eid) {
  size_t i = hash(eid) & (r->set_cap - 1);
  while (r->set[i] && strcmp(r->pool + r->slots[r->set[i] - 1].at.cell[COL_EID], eid) != 0)
    i = (i + 1) & (r->set_cap - 1);
  return i;
}

/* Keeps the set at most half full, so that probes stay short. */
static int set_room(reader *r) {
  size_t cap = r->set_cap ? r->set_cap * 2 : 1024, i, old_cap = r->set_cap;
  uint32_t *old = r->set;
  if (r->set_n + 1 <= r->set_cap / 2) return 0;
  if (cap > (size_t)-1 / sizeof *old) return NOMEM;
  r->set = tsesim__malloc(cap * sizeof *old);
  if (!r->set) {
    r->set = old;
    return NOMEM;
  }
  memset(r->set, 0, cap * sizeof *old);
  r->set_cap = cap;
  for (i = 0; i < old_cap; i++)
    if (old[i]) r->set[set_find(r, r->pool + r->slots[old[i] - 1].at.cell[COL_EID])] = old[i];
  tsesim__free(old);
  return 0;
}

/* ---- rows ---- */

static int slot_room(reader *r) {
  size_t cap = r->cap ? r->cap + r->cap / 2 : 256;
  slot *s;
  if (r->n < r->cap) return 0;
  /* Row numbers live in the set as 32 bits. */
  if (r->n >= UINT32_MAX - 1)
    return fail(r, "line %lu: more than %lu data rows", r->line, (unsigned long)UINT32_MAX - 1);
  if (cap > (size_t)-1 / sizeof *s) return NOMEM;
  s = tsesim__realloc(r->slots, cap * sizeof *s);
  if (!s) return NOMEM;
  r->slots = s;
  r->cap = cap;
  return 0;
}

/* Rejects the row being added (the last slot) with the reason. */
static int reject(reader *r, const char *fmt, ...) TSESIM__PRINTF(2, 3);
static int reject(reader *r, const char *fmt, ...) {
  char why[TSESIM_ERRBUF_SIZE];
  va_list ap;
  size_t off = r->pool_len;
  va_start(ap, fmt);
  if (vsnprintf(why, sizeof why, fmt, ap) < 0) why[0] = '\0';
  va_end(ap);
  if (pool_add(r, why, strlen(why) + 1)) return NOMEM;
  r->slots[r->n - 1].at.error = off;
  r->rejected++;
  return 0;
}

/* Checks and adds the row just read (the last slot). */
static int judge(reader *r, size_t n_cells, size_t stray) {
  slot *s = &r->slots[r->n - 1];
  tsesim_device_id ids[N_COLS];
  size_t n = 0, k, pos = 0;
  tsesim_code rc;

  if (stray != NONE)
    return reject(r, "cell %lu: text after its closing quote", (unsigned long)stray + 1);
  if (n_cells != r->n_cols)
    return reject(r, "%lu cell%s, the header has %lu", (unsigned long)n_cells,
                  n_cells == 1 ? "" : "s", (unsigned long)r->n_cols);
  if (s->at.cell[COL_EID] != NONE) {
    if (set_room(r)) return NOMEM;
    pos = set_find(r, r->pool + s->at.cell[COL_EID]);
    if (r->set[pos]) return reject(r, "eid repeats line %lu", r->slots[r->set[pos] - 1].at.line);
  }
  for (k = 0; k < N_COLS; k++) {
    if (s->at.cell[k] == NONE) continue;
    ids[n].kind = col_kinds[k];
    ids[n].id = r->pool + s->at.cell[k];
    ids[n++].kind_name = NULL;
  }
  rc = tsesim_request_add_device(r->req, ids, n);
  if (rc == TSESIM_E_NOMEM) return NOMEM;
  if (rc != TSESIM_OK) {
    /* The request says "device N: why"; a row is named by its line. */
    const char *why = r->req->errmsg, *colon = strchr(why, ':');
    if (strncmp(why, "device ", 7) == 0 && colon && colon[1] == ' ') why = colon + 2;
    return reject(r, "%s", why);
  }
  r->set[pos] = (uint32_t)r->n; /* a valid row has an eid, so pos is its place */
  r->set_n++;
  return 0;
}

/* Reads the record at r->p: a data row, or nothing for a blank line. */
static int read_row(reader *r) {
  unsigned long line = r->line;
  size_t n_cells = 0, stray = NONE, k, mark = r->pool_len;
  slot *s;
  cell c;
  int end, rc;

  if ((rc = slot_room(r)) != 0) return rc;
  s = &r->slots[r->n];
  s->at.line = line;
  for (k = 0; k < N_COLS; k++) s->at.cell[k] = NONE;
  s->at.error = NONE;
  do {
    int keep = 0;
    for (k = 0; k < N_COLS; k++)
      if (r->col[k] == n_cells) keep = 1;
    end = read_cell(r, keep, &c);
    if (end < 0) return end;
    for (k = 0; k < N_COLS; k++)
      if (r->col[k] == n_cells) s->at.cell[k] = c.off;
    if (c.stray && stray == NONE) stray = n_cells;
    n_cells++;
  } while (end == END_CELL);
  if (n_cells == 1 && !c.quoted) {
    const unsigned char *b = c.raw;
    while (b < c.raw_end && (*b == ' ' || *b == '\t')) b++;
    if (b == c.raw_end) { /* a blank line */
      r->pool_len = mark;
      return 0;
    }
  }
  r->n++;
  return judge(r, n_cells, stray);
}

/* ---- the calls ---- */

static void reader_free(reader *r) {
  tsesim__free(r->pool);
  tsesim__free(r->slots);
  tsesim__free(r->set);
}

/* The blocks to their exact size, then offsets to pointers. */
static tsesim_rows *finish(reader *r) {
  tsesim_rows *rows = tsesim__malloc(sizeof *rows);
  size_t i;
  if (!rows) return NULL;
  if (r->pool_len < r->pool_cap) {
    char *p = tsesim__realloc(r->pool, r->pool_len ? r->pool_len : 1);
    if (!p) goto nomem;
    r->pool = p;
  }
  if (r->n < r->cap) {
    slot *s = tsesim__realloc(r->slots, r->n * sizeof *s);
    if (!s) goto nomem;
    r->slots = s;
  }
  for (i = 0; i < r->n; i++) {
    slot *s = &r->slots[i];
    unsigned long line = s->at.line;
    size_t error = s->at.error, k;
    const char *p[N_COLS];
    for (k = 0; k < N_COLS; k++) p[k] = s->at.cell[k] == NONE ? NULL : r->pool + s->at.cell[k];
    s->row.line = line;
    s->row.eid = p[COL_EID];
    s->row.iccid = p[COL_ICCID];
    s->row.imei = p[COL_IMEI];
    s->row.error = error == NONE ? NULL : r->pool + error;
    s->row.device = NONE;
  }
  rows->slots = r->slots;
  rows->n = r->n;
  rows->rejected = r->rejected;
  rows->pool = r->pool;
  return rows;
nomem:
  tsesim__free(rows);
  return NULL;
}

tsesim_code tsesim_rows_parse_csv(tsesim_rows **out, tsesim_request *req, const char *data,
                                  size_t len, char *errbuf) {
  reader r;
  size_t n0, i, dev;
  int rc;

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
  memset(&r, 0, sizeof r);
  r.req = req;
  r.p = (const unsigned char *)data;
  r.end = r.p + len;
  r.line = 1;
  n0 = req->n_devs;
  if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) r.p += 3; /* the BOM */

  rc = check_text(&r);
  if (!rc && r.p == r.end) rc = fail(&r, "line 1: no header (the file is empty)");
  if (!rc) rc = read_header(&r);
  while (!rc && r.p < r.end) rc = read_row(&r);
  if (!rc && r.n == 0) rc = fail(&r, "line 1: no data row after the header");
  if (!rc) {
    tsesim_rows *rows = finish(&r);
    if (rows) {
      /* The valid rows' devices, in file order. */
      for (i = 0, dev = n0; i < rows->n; i++)
        if (!rows->slots[i].row.error) rows->slots[i].row.device = dev++;
      tsesim__free(r.set);
      req->errmsg[0] = '\0';
      *out = rows;
      return TSESIM_OK;
    }
    rc = NOMEM;
  }
  if (rc == NOMEM) snprintf(r.msg, sizeof r.msg, "out of memory");
  reader_free(&r);
  tsesim__request_truncate(req, n0);
  tsesim__errbuf_set(errbuf, "%s", r.msg);
  tsesim__errbuf_set(req->errmsg, "%s", r.msg);
  return rc == NOMEM ? TSESIM_E_NOMEM : TSESIM_E_INVAL;
}

/* The system's reason for errno e, thread-safely. */
static void sys_reason(char *buf, size_t size, int e) {
  if (strerror_r(e, buf, size) != 0) snprintf(buf, size, "error %d", e);
}

tsesim_code tsesim_rows_read_csv(tsesim_rows **out, tsesim_request *req, const char *path,
                                 char *errbuf) {
  char why[128];
  char *buf = NULL, *nb;
  size_t len = 0, cap;
  struct stat st;
  tsesim_code rc;
  int fd, e = 0;

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
  /* A regular file is read in one block of its size (+1 to see its end);
   * anything else (a pipe) grows as it comes. */
  cap = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t)st.st_size < (size_t)-1 / 2
            ? (size_t)st.st_size + 1
            : 65536;
  for (;;) {
    ssize_t got;
    if (len == cap || !buf) {
      if (buf) {
        if (cap > (size_t)-1 / 3) {
          e = ENOMEM;
          break;
        }
        cap += cap / 2;
      }
      nb = tsesim__realloc(buf, cap);
      if (!nb) {
        e = ENOMEM;
        break;
      }
      buf = nb;
    }
    got = read(fd, buf + len, cap - len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      e = errno;
      break;
    }
    if (got == 0) break;
    len += (size_t)got;
  }
  close(fd);
  if (e == ENOMEM) {
    tsesim__free(buf);
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  if (e) {
    tsesim__free(buf);
    sys_reason(why, sizeof why, e);
    tsesim__errbuf_set(errbuf, "%s: %s", path, why);
    return TSESIM_E_INVAL;
  }
  rc = tsesim_rows_parse_csv(out, req, buf, len, errbuf);
  tsesim__free(buf);
  return rc;
}

size_t tsesim_rows_count(const tsesim_rows *rows) { return rows ? rows->n : 0; }

size_t tsesim_rows_rejected(const tsesim_rows *rows) { return rows ? rows->rejected : 0; }

const tsesim_row *tsesim_rows_get(const tsesim_rows *rows, size_t i) {
  return rows && i < rows->n ? &rows->slots[i].row : NULL;
}

void tsesim_rows_free(tsesim_rows *rows) {
  if (!rows) return;
  tsesim__free(rows->slots);
  tsesim__free(rows->pool);
  tsesim__free(rows);
}
