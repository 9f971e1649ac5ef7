/*
 * transport_curl.c - the transport: one HTTP exchange as a transfer object
 * (its libcurl easy handle, header lines, answer buffer and resend guard),
 * every transfer driven on one curl multi handle, and the outcome of each
 * mapped to a tsesim_code. It knows nothing of tokens, retries or the API:
 * the client hands it header lines and reads the outcome.
 *
 * libcurl re-sends a request on a fresh connection when a reused one dies
 * before answering. For the download that would be a second download, so a
 * transfer marked no_resend is guarded twice: its body is given through a
 * read callback whose seek callback refuses to rewind once the request has
 * gone out (a re-send must rewind the body, on whichever connection it
 * would use), and the open-socket callback refuses any new connection for
 * it after that point. The transfer then ends as an unknown outcome.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define TSESIM__WITH_CURL
#include "tsesim_int.h"

/* The answer buffer made before each transfer is sent. */
#define RESP_MIN 4096
/* The longest part of a header line that the debug log shows. */
#define HEADER_LINE_MAX 200

static long long real_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long tsesim__net_now_ms(const tsesim__net *net) {
  if (net->clock_fn) return (long long)(net->clock_fn(net->time_payload) * 1000.0);
  return real_ms();
}

static void fail(tsesim__transfer *t, const char *fmt, ...) TSESIM__PRINTF(2, 3);
static void fail(tsesim__transfer *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__errbuf_vset(t->errmsg, fmt, ap);
  va_end(ap);
}

static size_t on_body(char *p, size_t size, size_t n, void *u) {
  tsesim__transfer *t = u;
  size_t len = size * n;
  if (t->resp_len + len > t->net->max_response) {
    t->resp_over = 1;
    return 0; /* libcurl stops the transfer: CURLE_WRITE_ERROR */
  }
  if (t->resp_len + len + 1 > t->resp_cap) {
    size_t cap = t->resp_cap ? t->resp_cap : RESP_MIN;
    char *grown;
    while (cap < t->resp_len + len + 1) cap *= 2;
    /* not realloc: the old block may hold a token, and is zeroed first */
    if (!(grown = tsesim__malloc(cap))) return 0;
    if (t->resp) {
      memcpy(grown, t->resp, t->resp_len);
      tsesim__memzero(t->resp, t->resp_cap);
      tsesim__free(t->resp);
    }
    t->resp = grown;
    t->resp_cap = cap;
  }
  memcpy(t->resp + t->resp_len, p, len);
  t->resp_len += len;
  t->resp[t->resp_len] = '\0';
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *u) {
  tsesim__transfer *t = u;
  size_t len = size * n;
  if (tsesim__ascii_iprefix(p, len, "retry-after:")) {
    char v[128];
    size_t k = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
    memcpy(v, p + 12, k);
    v[k] = '\0';
    t->retry_after = tsesim__retry_after_parse(v);
  }
  return len;
}

/* The request body, handed to libcurl piece by piece. */
static size_t on_read(char *dst, size_t size, size_t n, void *u) {
  tsesim__transfer *t = u;
  size_t room = size * n, left = t->body_len - t->body_pos;
  if (room > left) room = left;
  if (room) memcpy(dst, t->body + t->body_pos, room);
  t->body_pos += room;
  return room;
}

/* libcurl asks to rewind the body before sending it again. */
static int on_seek(void *u, curl_off_t offset, int origin) {
  tsesim__transfer *t = u;
  if (t->guard_resend && t->request_sent) {
    t->resend_refused = 1;
    tsesim__log(&t->net->log, 1,
                "refusing libcurl's re-send of a request that may have been acted on");
    return CURL_SEEKFUNC_FAIL;
  }
  if (origin != SEEK_SET || offset < 0 || (size_t)offset > t->body_len)
    return CURL_SEEKFUNC_CANTSEEK;
  t->body_pos = (size_t)offset;
  return CURL_SEEKFUNC_OK;
}

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
  tsesim__transfer *t = u;
  const tsesim__logger *lg = &t->net->log;
  size_t start = 0;
  (void)h;
  if (type == CURLINFO_HEADER_OUT) t->request_sent = 1;
  if ((type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN) || !lg->fn || lg->level < 3)
    return 0;
  while (start < size) {
    size_t end = start, k, shown;
    const char *line = data + start;
    while (end < size && data[end] != '\n') end++;
    shown = end - start;
    if (shown && line[shown - 1] == '\r') shown--;
    for (k = 0; k < sizeof secret / sizeof *secret; k++)
      if (tsesim__ascii_iprefix(line, shown, secret[k])) break;
    if (shown) {
      char text[HEADER_LINE_MAX * 4 + 4];
      if (k < sizeof secret / sizeof *secret)
        tsesim__log(lg, 3, "%s %.*s [redacted]", type == CURLINFO_HEADER_OUT ? ">" : "<",
                    (int)(strchr(secret[k], ':') - secret[k] + 1), line);
      else {
        escape_line(text, sizeof text, line, shown);
        tsesim__log(lg, 3, "%s %s", type == CURLINFO_HEADER_OUT ? ">" : "<", text);
      }
    }
    start = end + 1;
  }
  return 0;
}

static curl_socket_t on_open(void *u, curlsocktype purpose, struct curl_sockaddr *a) {
  tsesim__transfer *t = u;
  (void)purpose;
  if (t->guard_resend && t->request_sent) {
    t->resend_refused = 1;
    tsesim__log(&t->net->log, 1,
                "refusing libcurl's re-send of a request that may have been acted on");
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype, a->protocol);
}

/* The header list holds credentials: zeroed before it is freed. */
static void free_headers(struct curl_slist *h) {
  struct curl_slist *i;
  for (i = h; i; i = i->next) tsesim__memzero(i->data, strlen(i->data));
  curl_slist_free_all(h);
}

tsesim_code tsesim__net_init(tsesim__net *net) {
  if (!(net->multi = curl_multi_init())) return TSESIM_E_NOMEM;
  return TSESIM_OK;
}

void tsesim__net_cleanup(tsesim__net *net) {
  if (net->multi) curl_multi_cleanup(net->multi);
  net->multi = NULL;
}

tsesim_code tsesim__transfer_init(tsesim__transfer *t, tsesim__net *net) {
  CURL *e;
  memset(t, 0, sizeof *t);
  t->net = net;
  t->retry_after = -1;
  /* The answer's buffer exists before anything is sent: an answer of up to
   * RESP_MIN bytes then needs no allocation once the server has acted. */
  if (!(t->resp = tsesim__malloc(RESP_MIN))) return TSESIM_E_NOMEM;
  t->resp_cap = RESP_MIN;
  t->resp[0] = '\0';
  if (!(e = t->easy = curl_easy_init())) {
    tsesim__transfer_cleanup(t);
    return TSESIM_E_NOMEM;
  }
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, net->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, net->timeout_ms);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, net->user_agent);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, net->proxy ? net->proxy : "");
  curl_easy_setopt(e, CURLOPT_NOPROXY, ""); /* no_proxy from the environment neither */
  if (net->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, net->ca_file);
  if (net->ca_path) curl_easy_setopt(e, CURLOPT_CAPATH, net->ca_path);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(e, CURLOPT_READDATA, t);
  curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
  curl_easy_setopt(e, CURLOPT_SEEKDATA, t);
  /* Always on: the debug callback tells when a request has gone out. */
  curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
  curl_easy_setopt(e, CURLOPT_DEBUGDATA, t);
  curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  return TSESIM_OK;
}

static void end_exchange(tsesim__transfer *t) {
  if (t->running) curl_multi_remove_handle(t->net->multi, t->easy);
  t->running = 0;
  t->guard_resend = 0;
  free_headers(t->headers);
  t->headers = NULL;
  tsesim__free(t->url);
  t->url = NULL;
  t->body = NULL;
}

void tsesim__transfer_cleanup(tsesim__transfer *t) {
  if (t->net) end_exchange(t);
  if (t->easy) curl_easy_cleanup(t->easy);
  if (t->resp) tsesim__memzero(t->resp, t->resp_cap); /* answers carry tokens */
  tsesim__free(t->resp);
  memset(t, 0, sizeof *t);
}

void tsesim__transfer_wipe(tsesim__transfer *t) {
  if (t->resp) tsesim__memzero(t->resp, t->resp_len);
  t->resp_len = 0;
}

tsesim_code tsesim__transfer_start(tsesim__transfer *t, const char *method, const char *base_url,
                                   const char *path, char *const *lines, size_t n_lines,
                                   const char *body, size_t len, int no_resend) {
  size_t n = strlen(base_url) + strlen(path) + 1, i;
  CURL *e = t->easy;
  end_exchange(t);
  t->method = method;
  t->path = path;
  t->done = 0;
  t->rc = TSESIM_OK;
  t->status = 0;
  t->nothing_sent = 1;
  t->errmsg[0] = '\0';
  t->resp_len = 0;
  t->resp_over = 0;
  t->retry_after = -1;
  t->resp[0] = '\0';
  t->body = body;
  t->body_len = len;
  t->body_pos = 0;
  t->guard_resend = no_resend;
  t->request_sent = 0;
  t->resend_refused = 0;
  t->t0 = tsesim__net_now_ms(t->net);
  if (!(t->url = tsesim__malloc(n))) goto nomem;
  snprintf(t->url, n, "%s%s", base_url, path);
  for (i = 0; i < n_lines; i++) {
    struct curl_slist *l = curl_slist_append(t->headers, lines[i]);
    if (!l) goto nomem;
    t->headers = l;
  }
  { /* no "Expect: 100-continue" round trip before large bodies */
    struct curl_slist *l = curl_slist_append(t->headers, "Expect:");
    if (!l) goto nomem;
    t->headers = l;
  }
  curl_easy_setopt(e, CURLOPT_URL, t->url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
  if (curl_multi_add_handle(t->net->multi, e) != CURLM_OK) goto nomem;
  t->running = 1;
  return TSESIM_OK;
nomem:
  end_exchange(t);
  t->done = 1;
  t->rc = TSESIM_E_NOMEM;
  fail(t, "%s %s: out of memory", method, path);
  return TSESIM_E_NOMEM;
}

/* How far did a failed transfer get? */
static tsesim_code classify(tsesim__transfer *t, CURLcode cc) {
  long request_size = 0;
  const char *what = curl_easy_strerror(cc), *method = t->method, *path = t->path;
  curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_size);
  t->nothing_sent = request_size == 0 && !t->request_sent && !t->resend_refused;
  if (cc == CURLE_WRITE_ERROR && t->resp_over) {
    fail(t, "%s %s: the answer is larger than %lu bytes", method, path,
         (unsigned long)t->net->max_response);
    return TSESIM_E_HTTP;
  }
  if (!t->nothing_sent && t->guard_resend) {
    if (t->resend_refused) /* libcurl's own error then tells of the refused re-send */
      what = "the connection closed with no answer, and libcurl's re-send was refused";
    fail(t, "%s %s: sent, but no complete answer came (%s)", method, path, what);
    return TSESIM_E_UNKNOWN_OUTCOME;
  }
  if (cc == CURLE_OUT_OF_MEMORY || (cc == CURLE_WRITE_ERROR && !t->resp_over)) {
    fail(t, "%s %s: out of memory", method, path);
    return TSESIM_E_NOMEM;
  }
  if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR ||
      cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CIPHER ||
      cc == CURLE_SSL_ISSUER_ERROR || cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
    t->nothing_sent = 1;
    fail(t, "%s %s: TLS: %s", method, path, what);
    return TSESIM_E_TLS;
  }
  if (cc == CURLE_OPERATION_TIMEDOUT) {
    fail(t, "%s %s: timed out (%s)", method, path, what);
    return TSESIM_E_TIMEOUT;
  }
  fail(t, "%s %s: %s", method, path, what);
  return TSESIM_E_TRANSPORT;
}

/* A transfer libcurl has finished: its outcome. */
static void finish(tsesim__transfer *t, CURLcode cc) {
  long long ms;
  curl_off_t up = 0;
  curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &up);
  t->bytes_sent = up > 0 ? (unsigned long long)up : 0;
  if (cc != CURLE_OK) {
    t->rc = classify(t, cc);
  } else {
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
    t->nothing_sent = 0;
    t->rc = TSESIM_OK;
  }
  end_exchange(t);
  t->done = 1;
  ms = tsesim__net_now_ms(t->net) - t->t0;
  if (t->rc == TSESIM_OK)
    tsesim__log(&t->net->log, 2, "%s %s -> %ld in %lld ms", t->method, t->path, t->status, ms);
  else
    tsesim__log(&t->net->log, 2, "%s %s: no answer after %lld ms (%s)", t->method, t->path, ms,
                tsesim_code_name(t->rc));
}

static void run(tsesim__net *net, tsesim__transfer *until, long timeout_ms, int any) {
  /* the real clock: an application's clock need not move while we wait */
  long long end = timeout_ms >= 0 ? real_ms() + timeout_ms : -1;
  int running = 0, ended = 0;
  for (;;) {
    CURLMsg *m;
    int left;
    long wait = 1000;
    if (curl_multi_perform(net->multi, &running) != CURLM_OK) running = 0;
    while ((m = curl_multi_info_read(net->multi, &left))) {
      tsesim__transfer *t = NULL;
      if (m->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
      if (t) {
        finish(t, m->data.result);
        ended++;
      }
    }
    if ((until && until->done) || (any && ended)) return;
    if (end >= 0) {
      long long now = real_ms();
      if (now >= end) return;
      if (end - now < wait) wait = (long)(end - now);
    }
    if (!running && !until && !any) {
      /* nothing on the wire: just wait out the time */
      struct timespec ts;
      ts.tv_sec = wait / 1000;
      ts.tv_nsec = (wait % 1000) * 1000000L;
      nanosleep(&ts, NULL);
      continue;
    }
    curl_multi_poll(net->multi, NULL, 0, (int)wait, NULL);
  }
}

void tsesim__net_run(tsesim__net *net, tsesim__transfer *until, long timeout_ms) {
  run(net, until, timeout_ms, 0);
}

void tsesim__net_run_any(tsesim__net *net, long timeout_ms) { run(net, NULL, timeout_ms, 1); }
