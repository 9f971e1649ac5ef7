/*
 * json_load.c - strict loading of a body with jansson, shared by the parsers:
 * no NUL byte, no duplicate keys, errors with line, column and byte offset.
 *
 * jansson 2.14 does not report every failed allocation. Its lexer copies each
 * token into a growing buffer and ignores a failed growth (lex_save), so a
 * byte of a string, a key or a number is dropped and the load still succeeds
 * with a wrong value: "r-123" comes back as "r-13", 3600 as 360, a key loses
 * a letter and its member seems absent. errno tells only sometimes: malloc
 * sets ENOMEM, but the number lexer sets errno to 0 before strtoll/strtod.
 * So a tree is not trusted until tsesim__json_verify has checked it against
 * the source bytes; a difference can only be a lost byte, i.e. NOMEM.
 */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

/* ---- the check of a loaded tree against its source ---- */

typedef struct cursor {
  const unsigned char *s;
  size_t len, pos;
} cursor;

/* An object or array being read: the member or element that comes next. */
typedef struct frame {
  json_t *node;
  void *iter;   /* object: the current member */
  size_t index; /* array: the current element */
} frame;

static inline void skip_ws(cursor *c) {
  /* Every whitespace byte is <= ' ': one comparison in the common case. */
  while (
      c->pos < c->len && c->s[c->pos] <= ' ' &&
      (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' || c->s[c->pos] == '\r'))
    c->pos++;
}

/* Four hex digits at p, or -1. */
static long hex4(const cursor *c, size_t p) {
  long v = 0;
  size_t i;
  if (p > c->len || c->len - p < 4) return -1;
  for (i = p; i < p + 4; i++) {
    unsigned char h = c->s[i];
    v <<= 4;
    if (h >= '0' && h <= '9')
      v |= h - '0';
    else if (h >= 'a' && h <= 'f')
      v |= h - 'a' + 10;
    else if (h >= 'A' && h <= 'F')
      v |= h - 'A' + 10;
    else
      return -1;
  }
  return v;
}

static size_t utf8_put(unsigned char *b, unsigned long cp) {
  if (cp < 0x80) {
    b[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    b[0] = (unsigned char)(0xC0 | (cp >> 6));
    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | (cp >> 12));
    b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  b[0] = (unsigned char)(0xF0 | (cp >> 18));
  b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  b[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

#define ONES8 0x0101010101010101u
#define HIGHS8 0x8080808080808080u
/* Whether the 8 bytes a (read from a string) equal b and hold no '"' and no
 * '\\'. */
static inline int plain8(uint64_t a, uint64_t b) {
  uint64_t q = a ^ (ONES8 * '"'), e = a ^ (ONES8 * '\\');
  return a == b && !(((q - ONES8) & ~q & HIGHS8) | ((e - ONES8) & ~e & HIGHS8));
}

/* Whether s[0..n) is w[0..n) and holds no '"' and no '\\', so that it is a
 * string's bytes verbatim: eight bytes at a time, the last eight (or fewer)
 * read overlapping what came before rather than byte by byte. */
static inline int plain_equal(const unsigned char *s, const unsigned char *w, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i;
  if (n >= 8) {
    for (i = 0; i + 8 < n; i += 8) {
      memcpy(&a, s + i, 8);
      memcpy(&b, w + i, 8);
      if (!plain8(a, b)) return 0;
    }
    memcpy(&a, s + n - 8, 8);
    memcpy(&b, w + n - 8, 8);
    return plain8(a, b);
  }
  if (n >= 4) { /* two overlapping halves, as one word */
    memcpy(&a, s, 4);
    memcpy(&b, w, 4);
    memcpy(&c, s + n - 4, 4);
    memcpy(&d, w + n - 4, 4);
  } else if (n >= 2) {
    memcpy(&a, s, 2);
    memcpy(&b, w, 2);
    memcpy(&c, s + n - 2, 2);
    memcpy(&d, w + n - 2, 2);
  } else if (n == 1) {
    a = c = s[0];
    b = d = w[0];
  }
  /* the unused high bytes are NULs on both sides, which are neither */
  return plain8(a | c << 32, b | d << 32);
}

/* The string token at c->pos decodes to exactly want[0..n): 0 and c->pos
 * past the token, else -1. Runs without escapes are compared in one memcmp;
 * escapes are decoded one at a time, never into a buffer. */
static int same_escaped_string(cursor *c, const char *want, size_t n) {
  const unsigned char *s = c->s, *w = (const unsigned char *)want;
  size_t p = c->pos + 1, o = 0; /* after the opening quote */
  for (;;) {
    size_t run = p, k;
    unsigned char b[4];
    long cp;
    while (p < c->len && s[p] != '"' && s[p] != '\\') p++;
    if (p - run > n - o || memcmp(s + run, w + o, p - run) != 0) return -1;
    o += p - run;
    if (p >= c->len) return -1;
    if (s[p] == '"') break;
    if (++p >= c->len) return -1; /* the escaped character */
    k = 1;
    switch (s[p++]) {
      case '"':
        b[0] = '"';
        break;
      case '\\':
        b[0] = '\\';
        break;
      case '/':
        b[0] = '/';
        break;
      case 'b':
        b[0] = '\b';
        break;
      case 'f':
        b[0] = '\f';
        break;
      case 'n':
        b[0] = '\n';
        break;
      case 'r':
        b[0] = '\r';
        break;
      case 't':
        b[0] = '\t';
        break;
      case 'u':
        if ((cp = hex4(c, p)) < 0) return -1;
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair: one code point */
          long lo;
          if (p + 1 >= c->len || s[p] != '\\' || s[p + 1] != 'u') return -1;
          lo = hex4(c, p + 2);
          if (lo < 0xDC00 || lo > 0xDFFF) return -1;
          p += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return -1;
        }
        k = utf8_put(b, (unsigned long)cp);
        break;
      default:
        return -1;
    }
    if (k > n - o || memcmp(b, w + o, k) != 0) return -1;
    o += k;
  }
  if (o != n) return -1;
  c->pos = p + 1;
  return 0;
}

/* Most strings have no escape: then the token is want's bytes verbatim,
 * followed by the closing quote; anything else is decoded. */
static inline int same_string(cursor *c, const char *want, size_t n) {
  size_t p = c->pos + 1;
  if (n < c->len - p && c->s[p + n] == '"' &&
      plain_equal(c->s + p, (const unsigned char *)want, n)) {
    c->pos = p + n + 1;
    return 0;
  }
  return same_escaped_string(c, want, n);
}

/* The real number text[0..n) as jansson reads it: strtod in the current
 * locale, with '.' replaced by the locale's decimal point as jansson does. */
static int same_real(const unsigned char *text, size_t n, double want) {
  char small[64], *buf = small, point = localeconv()->decimal_point[0], *end;
  size_t i;
  double got;
  if (n >= sizeof small && !(buf = tsesim__malloc(n + 1))) return -1;
  for (i = 0; i < n; i++) buf[i] = text[i] == '.' && point ? point : (char)text[i];
  buf[n] = '\0';
  got = strtod(buf, &end);
  i = (size_t)(end - buf);
  if (buf != small) tsesim__free(buf);
  return i == n && got == want ? 0 : -1;
}

/* The number token at c->pos has the tree's type and exactly its value. */
static int same_number(cursor *c, const json_t *v) {
  const unsigned char *s = c->s;
  size_t start = c->pos, p = start, d0;
  int neg = 0, real = 0;
  if (p < c->len && s[p] == '-') neg = 1, p++;
  d0 = p;
  while (p < c->len && s[p] >= '0' && s[p] <= '9') p++;
  if (p == d0) return -1;
  if (p < c->len && s[p] == '.') {
    real = 1;
    if (++p >= c->len || s[p] < '0' || s[p] > '9') return -1;
    while (p < c->len && s[p] >= '0' && s[p] <= '9') p++;
  }
  if (p < c->len && (s[p] == 'e' || s[p] == 'E')) {
    real = 1;
    if (++p < c->len && (s[p] == '+' || s[p] == '-')) p++;
    if (p >= c->len || s[p] < '0' || s[p] > '9') return -1;
    while (p < c->len && s[p] >= '0' && s[p] <= '9') p++;
  }
  c->pos = p;
  if (real) return json_is_real(v) ? same_real(s + start, p - start, json_real_value(v)) : -1;
  {
    /* The magnitude, refused past json_int_t's range as jansson refuses it. */
    unsigned long long mag = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    json_int_t want;
    size_t i;
    for (i = d0; i < p; i++) {
      unsigned d = s[i] - '0';
      if (mag > (lim - d) / 10) return -1;
      mag = mag * 10 + d;
    }
    if (!json_is_integer(v)) return -1;
    /* -mag computed without overflow; "-0" is 0 */
    want = !neg ? (json_int_t)mag : mag ? -(json_int_t)(mag - 1) - 1 : 0;
    return json_integer_value(v) == want ? 0 : -1;
  }
}

static int same_literal(cursor *c, const char *word, size_t n) {
  if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n) != 0) return -1;
  c->pos += n;
  return 0;
}

/* The key at c->pos is the key of member iter; then the ':'. *value is the
 * member's value. */
static inline int same_member(cursor *c, void *iter, json_t **value) {
  if (!iter || c->pos >= c->len || c->s[c->pos] != '"' ||
      same_string(c, json_object_iter_key(iter), json_object_iter_key_len(iter)))
    return -1;
  skip_ws(c);
  if (c->pos >= c->len || c->s[c->pos] != ':') return -1;
  c->pos++;
  skip_ws(c);
  *value = json_object_iter_value(iter);
  return 0;
}

int tsesim__json_verify(const json_t *root, const char *body, size_t len) {
  frame inline_frames[32], *st = inline_frames, *heap = NULL;
  size_t depth = 0, cap = sizeof inline_frames / sizeof inline_frames[0];
  cursor c;
  json_t *node = (json_t *)root;
  frame *top;
  int rc = -1;

  c.s = (const unsigned char *)body;
  c.len = len;
  c.pos = 0;
  skip_ws(&c);
  for (;;) {
    /* A value at c.pos, node its counterpart in the tree. */
    if (!node || c.pos >= c.len) goto out;
    switch (c.s[c.pos]) {
      case '{':
      case '[': {
        int obj = c.s[c.pos] == '{';
        if (obj ? !json_is_object(node) : !json_is_array(node)) goto out;
        c.pos++;
        skip_ws(&c);
        if (c.pos < c.len && c.s[c.pos] == (obj ? '}' : ']')) {
          if ((obj ? json_object_size(node) : json_array_size(node)) != 0) goto out;
          c.pos++;
          break;
        }
        if (depth == cap) { /* deeper than the inline frames: on the heap */
          frame *more = tsesim__malloc(2 * cap * sizeof *more);
          if (!more) goto out;
          memcpy(more, st, depth * sizeof *st);
          tsesim__free(heap);
          st = heap = more;
          cap *= 2;
        }
        top = &st[depth++];
        top->node = node;
        top->index = 0;
        top->iter = NULL;
        if (obj) {
          top->iter = json_object_iter(node);
          if (same_member(&c, top->iter, &node)) goto out;
        } else {
          node = json_array_get(node, 0);
        }
        continue;
      }
      case '"':
        if (!json_is_string(node) ||
            same_string(&c, json_string_value(node), json_string_length(node)))
          goto out;
        break;
      case 't':
        if (!json_is_true(node) || same_literal(&c, "true", 4)) goto out;
        break;
      case 'f':
        if (!json_is_false(node) || same_literal(&c, "false", 5)) goto out;
        break;
      case 'n':
        if (!json_is_null(node) || same_literal(&c, "null", 4)) goto out;
        break;
      default:
        if (same_number(&c, node)) goto out;
        break;
    }
    /* After a value: close what ends here, then on to the next member or
     * element, checking that the tree holds no more than the source. */
    for (;;) {
      skip_ws(&c);
      if (depth == 0) {
        rc = c.pos == c.len ? 0 : -1;
        goto out;
      }
      top = &st[depth - 1];
      if (c.pos >= c.len) goto out;
      if (c.s[c.pos] == ',') {
        c.pos++;
        skip_ws(&c);
        if (json_is_object(top->node)) {
          top->iter = json_object_iter_next(top->node, top->iter);
          if (same_member(&c, top->iter, &node)) goto out;
        } else {
          node = json_array_get(top->node, ++top->index);
        }
        break;
      }
      if (json_is_object(top->node)
              ? c.s[c.pos] != '}' || json_object_iter_next(top->node, top->iter)
              : c.s[c.pos] != ']' || top->index + 1 != json_array_size(top->node))
        goto out;
      c.pos++;
      depth--;
    }
  }
out:
  tsesim__free(heap);
  return rc;
}

/* One json_loadb; *oom when jansson said, or errno shows, that memory ran
 * out. jansson does not report every failed allocation: its lexer drops a
 * failed append to its token buffer and a failed string copy surfaces as
 * "invalid token"; malloc's ENOMEM is seen unless a number came after it. */
static json_t *load(const char *body, size_t len, size_t flags, json_error_t *err, int *oom) {
  json_t *root;
  errno = 0;
  memset(err, 0, sizeof *err);
  root = json_loadb(body, len, flags | JSON_DECODE_ANY, err);
  *oom = errno == ENOMEM ||
         (!root && (json_error_code(err) == json_error_out_of_memory || err->text[0] == '\0'));
  return root;
}

tsesim_code tsesim__json_load(json_t **out, const char *body, size_t len, char *errbuf) {
  json_error_t err;
  const char *nul;
  json_t *root;
  int saved_errno, oom;

  *out = NULL;
  if (!body && len) {
    tsesim__errbuf_set(errbuf, "body is NULL");
    return TSESIM_E_INVAL;
  }
  if (len == 0) {
    tsesim__errbuf_set(errbuf, "invalid JSON: empty body");
    return TSESIM_E_PARSE;
  }
  nul = memchr(body, '\0', len);
  if (nul) {
    tsesim__errbuf_set(errbuf, "invalid JSON: NUL byte at byte offset %lu",
                       (unsigned long)(nul - body));
    return TSESIM_E_PARSE;
  }
  saved_errno = errno;
  /* The common case first, without JSON_REJECT_DUPLICATES: that flag costs
   * jansson a hash lookup per key, as much as the whole check against the
   * body, and the check finds duplicates anyway (it counts every member, and
   * jansson keeps one of two equal keys). A tree the check passes is the
   * body exactly; anything else (a duplicate key, invalid JSON, a lost byte)
   * is read again strictly, for the exact error. */
  root = load(body, len, 0, &err, &oom);
  if (!oom && !(root && tsesim__json_verify(root, body, len) == 0)) {
    json_decref(root);
    root = load(body, len, JSON_REJECT_DUPLICATES, &err, &oom);
    if (root && !oom && tsesim__json_verify(root, body, len)) oom = 1;
  }
  errno = saved_errno;
  if (oom) {
    json_decref(root);
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  if (!root) {
    tsesim__errbuf_set(
        errbuf, "%s at line %d, column %d (byte offset %d): %s",
        json_error_code(&err) == json_error_duplicate_key ? "duplicate key" : "invalid JSON",
        err.line, err.column, err.position, err.text);
    return TSESIM_E_PARSE;
  }
  *out = root;
  return TSESIM_OK;
}

const char *tsesim__json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT:
      return "an object";
    case JSON_ARRAY:
      return "an array";
    case JSON_STRING:
      return "a string";
    case JSON_INTEGER:
      return "an integer";
    case JSON_REAL:
      return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
      return "a boolean";
    case JSON_NULL:
      return "null";
  }
  return "a value";
}
