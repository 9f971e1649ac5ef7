/*
 * sim_json.c - memory helpers, the JSON output buffer and the three error
 * shapes of ThingSpace answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"
#include "tsesim_int.h"

static void oom(void) {
  fputs("tsesim-sim: out of memory\n", stderr);
  abort();
}

void *sim_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom();
  return p;
}

void *sim_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom();
  return p;
}

void *sim_xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) oom();
  return p;
}

char *sim_xstrndup(const char *s, size_t n) {
  char *d = sim_xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *sim_xstrdup(const char *s) { return s ? sim_xstrndup(s, strlen(s)) : NULL; }

void sim_free_secret(char *s) {
  if (!s) return;
  tsesim__memzero(s, strlen(s));
  free(s);
}

static void buf_grow(sim_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap += cap / 2 + 64;
  b->p = sim_xrealloc(b->p, cap);
  b->cap = cap;
}

void sim_buf_add(sim_buf *b, const char *s, size_t n) {
  buf_grow(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void sim_buf_adds(sim_buf *b, const char *s) { sim_buf_add(b, s, strlen(s)); }

void sim_buf_add_escaped(sim_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_grow(b, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    /* Controls (CR, LF, ESC...), DEL, the escape character itself, and
     * bytes past ASCII: UTF-8's C1 controls (U+009B is a CSI) act on some
     * terminals, and a peer's bytes need not be UTF-8 at all. */
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
      sim_buf_add(b, e, 4);
    } else {
      buf_grow(b, 1);
      b->p[b->len++] = (char)c;
      b->p[b->len] = '\0';
    }
  }
}

void sim_buf_addf(sim_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  buf_grow(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void sim_buf_json_str(sim_buf *b, const char *s) {
  if (!s) {
    sim_buf_add(b, "null", 4);
    return;
  }
  buf_grow(b, strlen(s) + 2);
  sim_buf_add(b, "\"", 1);
  const char *run = s;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    sim_buf_add(b, run, (size_t)(s - run));
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      sim_buf_add(b, esc, 2);
    } else {
      sim_buf_addf(b, "\\u%04x", c);
    }
    run = s + 1;
  }
  sim_buf_add(b, run, (size_t)(s - run));
  sim_buf_add(b, "\"", 1);
}

void sim_buf_free(sim_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

double sim_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sim_sleep(double seconds) {
  if (seconds <= 0) return;
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- answers ---- */
void sim_answer_json(sim_answer *a, int status, sim_buf *body) {
  sim_buf_free(&a->body);
  a->status = status;
  a->body = *body;
  a->content_type = "application/json";
  body->p = NULL;
  body->len = body->cap = 0;
}

void sim_answer_error(sim_answer *a, int status, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sim_buf b = {0};
  sim_buf_adds(&b, "{\"errorCode\":");
  sim_buf_json_str(&b, code);
  sim_buf_adds(&b, ",\"errorMessage\":");
  sim_buf_json_str(&b, msg);
  sim_buf_adds(&b, "}");
  sim_answer_json(a, status, &b);
}

void sim_answer_fault(sim_answer *a, const char *code, const char *message,
                      const char *description) {
  sim_buf b = {0};
  sim_buf_adds(&b, "{\"fault\":{\"code\":");
  sim_buf_json_str(&b, code);
  sim_buf_adds(&b, ",\"message\":");
  sim_buf_json_str(&b, message);
  sim_buf_adds(&b, ",\"description\":");
  sim_buf_json_str(&b, description);
  sim_buf_adds(&b, "}}");
  sim_answer_json(a, 401, &b);
}

void sim_answer_oauth(sim_answer *a, int status, const char *error, const char *description) {
  sim_buf b = {0};
  sim_buf_adds(&b, "{\"error\":");
  sim_buf_json_str(&b, error);
  sim_buf_adds(&b, ",\"error_description\":");
  sim_buf_json_str(&b, description);
  sim_buf_adds(&b, "}");
  sim_answer_json(a, status, &b);
}

void sim_answer_clear(sim_answer *a) {
  sim_buf_free(&a->body);
  free(a->location);
  free(a->retry_after);
  memset(a, 0, sizeof *a);
}
