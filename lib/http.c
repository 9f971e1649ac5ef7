/*
 * http.c - one HTTP exchange on the client's libcurl handle: headers with
 * the right credentials, the answer captured up to the cap, Retry-After read,
 * the failure classified by how far the request got, and log lines with
 * every secret redacted.
 *
 * libcurl re-sends a request on a fresh connection when a reused one dies
 * before answering. For the download that would be a second download, so a
 * request marked no_resend is guarded: once its headers have gone out (the
 * debug callback sees them), the open-socket callback refuses any new
 * connection for it, and the cache holds a single connection, so the re-send
 * cannot happen; the call ends as an unknown outcome instead.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define TSESIM__WITH_CURL
#include "tsesim_int.h"

void tsesim__free_secret(char *s) {
  volatile char *v = s;
  if (!s) return;
  while (*v) *v++ = '\0';
  tsesim__free(s);
}

void tsesim__client_log(tsesim_client *c, int level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  if (!c->log_fn || level > c->log_level) return;
  va_start(ap, fmt);
  if (vsnprintf(line, sizeof line, fmt, ap) < 0) line[0] = '\0';
  va_end(ap);
  c->log_fn(level, line, c->log_payload);
}

void tsesim__client_fail(tsesim_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap) < 0) c->errmsg[0] = '\0';
  va_end(ap);
  tsesim__client_log(c, 0, "%s", c->errmsg);
}

/* The answer buffer made before each request is sent. */
#define RESP_MIN 4096

static size_t on_body(char *p, size_t size, size_t n, void *u) {
  tsesim_client *c = u;
  size_t len = size * n;
  if (c->resp_len + len > c->max_response) {
    c->resp_over = 1;
    return 0; /* libcurl stops the transfer: CURLE_WRITE_ERROR */
  }
  if (c->resp_len + len + 1 > c->resp_cap) {
    size_t cap = c->resp_cap ? c->resp_cap : RESP_MIN;
    char *grown;
    while (cap < c->resp_len + len + 1) cap *= 2;
    /* not realloc: the old block may hold a token, and is zeroed first */
    if (!(grown = tsesim__malloc(cap))) return 0;
    if (c->resp) {
      memcpy(grown, c->resp, c->resp_len);
      memset(c->resp, 0, c->resp_cap);
      tsesim__free(c->resp);
    }
    c->resp = grown;
    c->resp_cap = cap;
  }
  memcpy(c->resp + c->resp_len, p, len);
  c->resp_len += len;
  c->resp[c->resp_len] = '\0';
  return len;
}

static int ieq_prefix(const char *s, size_t n, const char *name) {
  size_t i, k = strlen(name);
  if (n < k) return 0;
  for (i = 0; i < k; i++) {
    char a = s[i], b = name[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (a != b) return 0;
  }
  return 1;
}

static size_t on_header(char *p, size_t size, size_t n, void *u) {
  tsesim_client *c = u;
  size_t len = size * n;
  if (ieq_prefix(p, len, "retry-after:")) {
    char v[128];
    size_t k = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
    memcpy(v, p + 12, k);
    v[k] = '\0';
    c->retry_after = tsesim__retry_after_parse(v);
  }
  return len;
}

/* The longest part of a header line that the debug log shows. */
#define HEADER_LINE_MAX 200

/* line[0..len) for the log: printable ASCII as is, every other byte and the
 * backslash as \xNN (so a server cannot forge a line or reach the terminal
 * of whoever reads the log), cut at HEADER_LINE_MAX bytes with "...". */
static void escape_line(char *dst, size_t dstsize, const char *line, size_t len) {
  size_t o = 0, i;
  for (i = 0; i < len && i < HEADER_LINE_MAX && o + 4 + 3 + 1 <= dstsize; i++) {
    unsigned char b = (unsigned char)line[i];
    if (b >= 0x20 && b < 0x7F && b != '\\') {
      dst[o++] = (char)b;
    } else {
      snprintf(dst + o, dstsize - o, "\\x%02X", b);
      o += 4;
    }
  }
  if (i < len) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o] = '\0';
}

/* Debug log of header lines, values of credential headers replaced. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *u) {
  static const char *const secret[] = {
      "authorization:", "vz-m2m-token:", "proxy-authorization:", "cookie:", "set-cookie:"};
  tsesim_client *c = u;
  size_t start = 0;
  (void)h;
  if (type == CURLINFO_HEADER_OUT) c->request_sent = 1;
  if ((type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN) || !c->log_fn || c->log_level < 3)
    return 0;
  while (start < size) {
    size_t end = start, k, shown;
    const char *line = data + start;
    while (end < size && data[end] != '\n') end++;
    shown = end - start;
    if (shown && line[shown - 1] == '\r') shown--;
    for (k = 0; k < sizeof secret / sizeof *secret; k++)
      if (ieq_prefix(line, shown, secret[k])) break;
    if (shown) {
      char text[HEADER_LINE_MAX * 4 + 4];
      if (k < sizeof secret / sizeof *secret)
        tsesim__client_log(c, 3, "%s %.*s [redacted]", type == CURLINFO_HEADER_OUT ? ">" : "<",
                           (int)(strchr(secret[k], ':') - secret[k] + 1), line);
      else {
        escape_line(text, sizeof text, line, shown);
        tsesim__client_log(c, 3, "%s %s", type == CURLINFO_HEADER_OUT ? ">" : "<", text);
      }
    }
    start = end + 1;
  }
  return 0;
}

static curl_socket_t on_open(void *u, curlsocktype purpose, struct curl_sockaddr *a) {
  tsesim_client *c = u;
  (void)purpose;
  if (c->guard_resend && c->request_sent) {
    c->resend_refused = 1;
    tsesim__client_log(c, 1, "refusing libcurl's re-send of a request that may have been acted on");
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype, a->protocol);
}

static void free_headers(struct curl_slist *h) {
  struct curl_slist *i;
  for (i = h; i; i = i->next) { /* they hold credentials */
    volatile char *v = i->data;
    while (*v) *v++ = '\0';
  }
  curl_slist_free_all(h);
}

/* Appends "Name: value" to *list; 0 or -1 (out of memory). The temporary
 * copy is zeroed: it may hold a credential. */
static int add_header(struct curl_slist **list, const char *name, const char *value) {
  size_t n = strlen(name) + strlen(value) + 3;
  char *line = tsesim__malloc(n);
  struct curl_slist *l;
  if (!line) return -1;
  snprintf(line, n, "%s: %s", name, value);
  l = curl_slist_append(*list, line);
  memset(line, 0, n);
  tsesim__free(line);
  if (!l) return -1;
  *list = l;
  return 0;
}

static char *base64(const char *in) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in), i, o = 0;
  char *out = tsesim__malloc(4 * ((n + 2) / 3) + 1);
  if (!out) return NULL;
  for (i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)in[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

static struct curl_slist *build_headers(tsesim_client *c, tsesim__auth auth) {
  struct curl_slist *h = NULL;
  int bad = 0;
  if (auth == TSESIM__AUTH_BASIC) {
    size_t n = strlen(c->client_id) + strlen(c->client_secret) + 2;
    char *pair = tsesim__malloc(n), *b64 = NULL;
    if (pair) {
      snprintf(pair, n, "%s:%s", c->client_id, c->client_secret);
      b64 = base64(pair);
      tsesim__free_secret(pair);
    }
    if (b64) {
      char *v = tsesim__malloc(strlen(b64) + 7);
      if (v) {
        memcpy(v, "Basic ", 6);
        memcpy(v + 6, b64, strlen(b64) + 1);
        bad |= add_header(&h, "Authorization", v);
        tsesim__free_secret(v);
      } else {
        bad = 1;
      }
      tsesim__free_secret(b64);
    } else {
      bad = 1;
    }
    bad |= add_header(&h, "Content-Type", "application/x-www-form-urlencoded");
  } else {
    size_t n = strlen(c->access_token) + 8;
    char *v = tsesim__malloc(n);
    if (v) {
      snprintf(v, n, "Bearer %s", c->access_token);
      bad |= add_header(&h, "Authorization", v);
      tsesim__free_secret(v);
    } else {
      bad = 1;
    }
    if (auth == TSESIM__AUTH_SESSION) bad |= add_header(&h, "VZ-M2M-Token", c->session_token);
    bad |= add_header(&h, "Content-Type", "application/json");
  }
  bad |= add_header(&h, "Accept", "application/json");
  { /* no "Expect: 100-continue" round trip before large bodies */
    struct curl_slist *l = curl_slist_append(h, "Expect:");
    if (l)
      h = l;
    else
      bad = 1;
  }
  if (bad) {
    free_headers(h);
    return NULL;
  }
  return h;
}

/* How far did a failed transfer get? */
static tsesim_code classify(tsesim_client *c, CURLcode cc, const char *method, const char *path,
                            int no_resend, tsesim__exchange *x) {
  long request_size = 0;
  const char *what = curl_easy_strerror(cc);
  curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &request_size);
  x->nothing_sent = request_size == 0 && !c->request_sent && !c->resend_refused;
  if (cc == CURLE_WRITE_ERROR && c->resp_over) {
    tsesim__client_fail(c, "%s %s: the answer is larger than %lu bytes", method, path,
                        (unsigned long)c->max_response);
    return TSESIM_E_HTTP;
  }
  if (!x->nothing_sent && no_resend) {
    tsesim__client_fail(c, "%s %s: sent, but no complete answer came (%s)", method, path, what);
    return TSESIM_E_UNKNOWN_OUTCOME;
  }
  if (cc == CURLE_OUT_OF_MEMORY || (cc == CURLE_WRITE_ERROR && !c->resp_over)) {
    tsesim__client_fail(c, "%s %s: out of memory", method, path);
    return TSESIM_E_NOMEM;
  }
  if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR ||
      cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CIPHER ||
      cc == CURLE_SSL_ISSUER_ERROR || cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
    x->nothing_sent = 1;
    tsesim__client_fail(c, "%s %s: TLS: %s", method, path, what);
    return TSESIM_E_TLS;
  }
  if (cc == CURLE_OPERATION_TIMEDOUT) {
    tsesim__client_fail(c, "%s %s: timed out (%s)", method, path, what);
    return TSESIM_E_TIMEOUT;
  }
  tsesim__client_fail(c, "%s %s: %s", method, path, what);
  return TSESIM_E_TRANSPORT;
}

void tsesim__http_setup(tsesim_client *c) {
  curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
  /* Always on: the debug callback tells when a request has gone out. */
  curl_easy_setopt(c->easy, CURLOPT_DEBUGFUNCTION, on_debug);
  curl_easy_setopt(c->easy, CURLOPT_DEBUGDATA, c);
  curl_easy_setopt(c->easy, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETFUNCTION, on_open);
  curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETDATA, c);
  curl_easy_setopt(c->easy, CURLOPT_MAXCONNECTS, 1L);
}

tsesim_code tsesim__http_send(tsesim_client *c, const char *method, const char *path,
                              const char *body, size_t len, tsesim__auth auth, int no_resend,
                              tsesim__exchange *x) {
  struct curl_slist *h;
  char *url;
  size_t n = strlen(c->base_url) + strlen(path) + 1;
  CURLcode cc;
  long long t0 = tsesim__now_ms(c);
  x->status = 0;
  x->nothing_sent = 1;
  c->resp_len = 0;
  c->resp_over = 0;
  c->retry_after = -1;
  if (c->resp) c->resp[0] = '\0';
  /* The answer's buffer exists before anything is sent: an answer of up to
   * RESP_MIN bytes then needs no allocation once the server has acted. */
  if (!c->resp) {
    if (!(c->resp = tsesim__malloc(RESP_MIN))) {
      tsesim__client_fail(c, "%s %s: out of memory", method, path);
      return TSESIM_E_NOMEM;
    }
    c->resp_cap = RESP_MIN;
    c->resp[0] = '\0';
  }
  if (!(url = tsesim__malloc(n))) {
    tsesim__client_fail(c, "%s %s: out of memory", method, path);
    return TSESIM_E_NOMEM;
  }
  snprintf(url, n, "%s%s", c->base_url, path);
  if (!(h = build_headers(c, auth))) {
    tsesim__free(url);
    tsesim__client_fail(c, "%s %s: out of memory", method, path);
    return TSESIM_E_NOMEM;
  }
  curl_easy_setopt(c->easy, CURLOPT_URL, url);
  curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, h);
  c->guard_resend = no_resend;
  c->request_sent = 0;
  c->resend_refused = 0;
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
  cc = curl_easy_perform(c->easy);
  curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, (char *)NULL);
  curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, (char *)NULL);
  c->guard_resend = 0;
  free_headers(h);
  tsesim__free(url);
  if (cc != CURLE_OK) {
    tsesim_code rc = classify(c, cc, method, path, no_resend, x);
    tsesim__client_log(c, 2, "%s %s: no answer after %lld ms (%s)", method, path,
                       tsesim__now_ms(c) - t0, tsesim_code_name(rc));
    return rc;
  }
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &x->status);
  x->nothing_sent = 0;
  tsesim__client_log(c, 2, "%s %s -> %ld in %lld ms", method, path, x->status,
                     tsesim__now_ms(c) - t0);
  return TSESIM_OK;
}
