/*
 * sim_http.c - the libmicrohttpd side: reads each request body, routes it,
 * applies latency and fault rules, turns a sim_answer into a response
 * (including the broken ones: no answer, half an answer, an endless one) and
 * logs one line per request, never with a header value or a body.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sim.h"

typedef struct conn_req {
  sim_buf body;
  int too_large, over_budget;
  size_t reserved; /* bytes of s->body_bytes this request holds */
  double t0;
} conn_req;

/* ---- the body budget: raw body bytes held by all requests at once ---- */

/* Takes n more bytes of the budget; 0, or -1 (nothing taken) when they do not fit. */
static int budget_take(sim *s, size_t n) {
  size_t cur = __atomic_load_n(&s->body_bytes, __ATOMIC_RELAXED);
  do {
    if (n > s->cfg.body_budget || cur > s->cfg.body_budget - n) return -1;
  } while (!__atomic_compare_exchange_n(&s->body_bytes, &cur, cur + n, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED));
  return 0;
}

/* Gives back what r holds and drops its body. */
static void budget_release(sim *s, conn_req *r) {
  if (r->reserved) __atomic_fetch_sub(&s->body_bytes, r->reserved, __ATOMIC_RELAXED);
  r->reserved = 0;
  sim_buf_free(&r->body);
}

/* The largest body one request may send: the per-request cap, or the whole
 * budget when that is smaller (such a body could never fit: 413, not 503). */
static size_t body_cap(const sim *s) {
  return s->cfg.body_budget < SIM_MAX_BODY ? s->cfg.body_budget : SIM_MAX_BODY;
}

static int peer_is_loopback(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return 0;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
  }
  return 0;
}

static void peer_name(struct MHD_Connection *c, char *out, size_t n) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(out, n, "?");
  if (!ci || !ci->client_addr) return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* ---- responses that break on purpose ---- */
typedef struct partial {
  char *p;
  size_t limit; /* bytes sent before the connection is cut */
} partial;

static ssize_t partial_read(void *cls, uint64_t pos, char *buf, size_t max) {
  partial *pp = cls;
  if (pos >= pp->limit) return MHD_CONTENT_READER_END_WITH_ERROR;
  size_t n = pp->limit - (size_t)pos;
  if (n > max) n = max;
  memcpy(buf, pp->p + pos, n);
  return (ssize_t)n;
}

static void partial_free(void *cls) {
  partial *pp = cls;
  free(pp->p);
  free(pp);
}

static ssize_t oversize_read(void *cls, uint64_t pos, char *buf, size_t max) {
  size_t total = *(size_t *)cls, n = 0;
  if (pos >= total) return MHD_CONTENT_READER_END_OF_STREAM;
  for (; n < max && pos + n < total; n++) {
    uint64_t at = pos + n;
    buf[n] = at < 8 ? "{\"pad\":\""[at] : at == total - 2 ? '"' : at == total - 1 ? '}' : 'x';
  }
  return (ssize_t)n;
}

static void http_date(char *out, size_t n, double from_now) {
  time_t t = time(NULL) + (time_t)from_now;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Replaces the answer by the fault's own (the kinds that answer normally). */
static void fault_answer(const sim_fault_rule *f, sim_answer *a) {
  char date[64];
  switch (f->kind) {
    case SIM_FAULT_429:
    case SIM_FAULT_503:
      if (f->kind == SIM_FAULT_429)
        sim_answer_error(a, 429, "REQUEST_FAILED.RateLimited",
                         "Too many requests. Retry after the time given in Retry-After.");
      else
        sim_answer_error(a, 503, "REQUEST_FAILED.ServiceUnavailable",
                         "The service is temporarily unavailable.");
      free(a->retry_after);
      if (!strncmp(f->retry_after, "date:", 5)) {
        http_date(date, sizeof date, atof(f->retry_after + 5));
        a->retry_after = sim_xstrdup(date);
      } else {
        a->retry_after = sim_xstrdup(f->retry_after);
      }
      break;
    case SIM_FAULT_500:
      sim_answer_error(a, 500, "REQUEST_FAILED.UnexpectedError",
                       "An unexpected error occurred. Try again later.");
      break;
    case SIM_FAULT_NON_JSON:
      sim_buf_free(&a->body);
      a->status = 200;
      sim_buf_adds(&a->body,
                   "<html><head><title>Service</title></head><body>Maintenance "
                   "window</body></html>\n");
      a->content_type = "text/html";
      break;
    case SIM_FAULT_REDIRECT:
      sim_answer_error(a, 302, "REQUEST_FAILED.Moved", "Moved.");
      free(a->location);
      a->location = sim_xstrdup(f->to);
      break;
    default:
      break;
  }
}

static enum MHD_Result send_answer(struct MHD_Connection *c, sim_answer *a,
                                   const sim_fault_rule *f) {
  struct MHD_Response *resp;
  if (f && f->kind == SIM_FAULT_TRUNCATE) {
    if (!a->body.len) { /* dropped: nothing real to cut, so cut a made-up answer */
      a->status = 200;
      sim_buf_adds(&a->body, "{\"requestId\":\"00000000-0000-4000-8000-000000000000\"}");
      a->content_type = "application/json";
    }
    partial *pp = sim_xmalloc(sizeof *pp);
    pp->p = a->body.p;
    pp->limit = a->body.len / 2;
    resp = MHD_create_response_from_callback(a->body.len, 4096, partial_read, pp, partial_free);
    a->body.p = NULL;
    a->body.len = a->body.cap = 0;
  } else if (f && f->kind == SIM_FAULT_OVERSIZE) {
    size_t *total = sim_xmalloc(sizeof *total);
    *total = f->bytes < 16 ? 16 : f->bytes;
    a->status = 200;
    a->content_type = "application/json";
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, oversize_read, total, free);
  } else {
    resp = MHD_create_response_from_buffer(a->body.len, a->body.p, MHD_RESPMEM_MUST_FREE);
    a->body.p = NULL;
    a->body.len = a->body.cap = 0;
  }
  if (!resp) return MHD_NO;
  if (a->content_type) MHD_add_response_header(resp, "Content-Type", a->content_type);
  if (a->retry_after) MHD_add_response_header(resp, "Retry-After", a->retry_after);
  if (a->location) MHD_add_response_header(resp, "Location", a->location);
  if (a->www_authenticate)
    MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"ThingSpace\"");
  enum MHD_Result rc = MHD_queue_response(c, (unsigned)a->status, resp);
  MHD_destroy_response(resp);
  return rc;
}

static enum MHD_Result dispatch(sim *s, struct MHD_Connection *c, const char *url,
                                const char *method, conn_req *r) {
  int is_sim = !strncmp(url, "/_sim/", 6), is_api = !strncmp(url, "/api/", 5);
  int ep = is_sim ? SIM_EP_SIM : is_api ? sim_api_classify(method, url + 4) : SIM_EP_OTHER;
  SIM_COUNT(s, requests[ep], 1);
  if (ep == SIM_EP_DOWNLOAD && !strcmp(method, "POST")) SIM_COUNT(s, downloads_received, 1);
  sim_rq rq = {method,
               is_api ? url + 4 : url,
               MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
               MHD_lookup_connection_value(c, MHD_HEADER_KIND, "VZ-M2M-Token"),
               MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
               r->body.p ? r->body.p : "",
               r->body.len};
  sim_answer a = {0};
  sim_fault_rule f;
  int fired = 0;
  if (r->over_budget) { /* before faults and latency: the server itself is full */
    sim_answer_error(&a, 503, "REQUEST_FAILED.ServiceUnavailable",
                     "The server holds too many request bodies at once (--body-budget %zu bytes). "
                     "Retry after the time given in Retry-After.",
                     s->cfg.body_budget);
    a.retry_after = sim_xstrdup("1");
    SIM_COUNT(s, bodies_refused, 1);
  } else if (is_sim) {
    if (!peer_is_loopback(c))
      sim_answer_error(&a, 403, "REQUEST_FAILED.Forbidden", "/_sim/ answers loopback peers only.");
    else if (r->too_large)
      sim_answer_error(&a, 413, "INPUT_INVALID.Body.TooLarge", "The body is too large.");
    else
      sim_admin_handle(s, &rq, &a);
  } else {
    pthread_mutex_lock(&s->mu);
    long latency = s->cfg.faults.latency_ms;
    if (is_api) fired = sim_faults_pick(&s->cfg.faults, ep, &f);
    pthread_mutex_unlock(&s->mu);
    if (latency > 0 && is_api) {
      SIM_COUNT(s, faults_latency, 1);
      sim_sleep((double)latency / 1000.0);
    }
    if (fired) SIM_COUNT(s, faults_injected, 1);
    if (!fired || f.processed) {
      if (r->too_large)
        sim_answer_error(&a, 413, "INPUT_INVALID.Body.TooLarge",
                         "The body is larger than %zu bytes.", body_cap(s));
      else if (is_api)
        sim_api_handle(s, ep, &rq, &a);
      else
        sim_answer_error(&a, 404, "REQUEST_FAILED.NotFound", "No such resource.");
    }
    if (fired) fault_answer(&f, &a);
  }
  /* The body is done with: its bytes go back before the answer leaves, so a
   * client that has its answer can count on them (its next body fits). */
  budget_release(s, r);
  /* --answer-latency-ms: the request is processed (an accepted download's
   * callbacks are queued and going out), only its answer waits, as when
   * ThingSpace's answer is slower than its first callbacks. */
  if (is_api && !r->over_budget && (!fired || f.processed) && s->cfg.answer_latency_ms > 0)
    sim_sleep((double)s->cfg.answer_latency_ms / 1000.0);
  char peer[64];
  peer_name(c, peer, sizeof peer);
  double ms = (sim_now() - r->t0) * 1000.0;
  enum MHD_Result rc;
  if (fired && f.kind == SIM_FAULT_CLOSE) {
    sim_log(s, "%s %s %s closed %.1fms fault=close", peer, method, url, ms);
    rc = MHD_NO; /* libmicrohttpd closes the connection without an answer */
  } else {
    sim_log(s, "%s %s %s %d %.1fms fault=%s", peer, method, url,
            fired && f.kind == SIM_FAULT_OVERSIZE ? 200 : a.status, ms,
            fired ? sim_fault_kind_name(f.kind) : "-");
    rc = send_answer(c, &a, fired ? &f : NULL);
  }
  if (fired) sim_fault_rule_clear(&f);
  sim_answer_clear(&a);
  return rc;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
  (void)version;
  sim *s = cls;
  conn_req *r = *con_cls;
  if (!r) {
    r = sim_xcalloc(1, sizeof *r);
    r->t0 = sim_now();
    *con_cls = r;
    /* A declared length is taken from the budget whole, before any byte
     * arrives: of two bodies that cannot both fit, the first one declared
     * gets through and the other is refused, never both half-way. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    char *end;
    unsigned long long n = cl && *cl >= '0' && *cl <= '9' ? strtoull(cl, &end, 10) : 0;
    if (n && !*end) {
      if (n > body_cap(s))
        r->too_large = 1;
      else if (budget_take(s, (size_t)n))
        r->over_budget = 1;
      else
        r->reserved = (size_t)n;
    }
    /* A declared body is held in one block of its size, not grown to it:
     * a 10,000-device download is 1.5 MB. */
    if (r->reserved) {
      r->body.p = sim_xmalloc(r->reserved + 1);
      r->body.cap = r->reserved + 1;
      r->body.p[0] = '\0';
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (r->too_large || r->over_budget) return MHD_YES; /* read and dropped */
    if (r->body.len + n > body_cap(s)) {
      r->too_large = 1;
      budget_release(s, r);
      return MHD_YES;
    }
    /* Without a Content-Length (chunked), the budget is taken as bytes come. */
    if (r->body.len + n > r->reserved) {
      size_t more = r->body.len + n - r->reserved;
      if (budget_take(s, more)) {
        r->over_budget = 1;
        budget_release(s, r);
        return MHD_YES;
      }
      r->reserved += more;
    }
    sim_buf_add(&r->body, upload_data, n);
    return MHD_YES;
  }
  return dispatch(cls, c, url, method, r);
}

/* Every request ends here, answered or not: a peer gone mid-body or a
 * timeout gives its budget back here (an answered one did in dispatch). */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)c, (void)toe;
  conn_req *r = *con_cls;
  if (r) {
    budget_release(cls, r);
    free(r);
  }
  *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  sim *s = cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && line[n - 1] == '\n') line[--n] = '\0';
  sim_log(s, "server: %s", line);
}

static char *read_file(const char *path, char *err, size_t errsize) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errsize, "cannot read '%s'", path);
    return NULL;
  }
  sim_buf b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sim_buf_add(&b, chunk, n);
  fclose(f);
  if (!b.p) sim_buf_adds(&b, "");
  return b.p;
}

static char *tls_cert, *tls_key; /* libmicrohttpd keeps pointers to these until it stops */

void sim_http_stop(struct MHD_Daemon *d) {
  if (d) MHD_stop_daemon(d);
  sim_free_secret(tls_key);
  free(tls_cert);
  tls_key = tls_cert = NULL;
}

struct MHD_Daemon *sim_http_start(sim *s, unsigned *port_out, char *err, size_t errsize) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  /* A thread per connection, so that latency or a slow body never holds up
   * another client; poll(), so no FD_SETSIZE limit. */
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_USE_ERROR_LOG;
  if (strchr(s->cfg.bind, ':')) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((unsigned short)s->cfg.port);
    if (inet_pton(AF_INET6, s->cfg.bind, &in6->sin6_addr) != 1) goto bad_addr;
    flags |= MHD_USE_IPv6;
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((unsigned short)s->cfg.port);
    if (inet_pton(AF_INET, s->cfg.bind, &in->sin_addr) != 1) goto bad_addr;
  }
  struct MHD_OptionItem opts[12];
  size_t n = 0;
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, s};
  /* A silent connection, half-sent or idle between requests, is closed after
   * seconds: idle half-sent requests cannot hold the connection slots. */
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                      (intptr_t)s->cfg.connection_timeout, NULL};
  opts[n++] =
      (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)s->cfg.max_connections, NULL};
  if (s->cfg.max_per_ip)
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                        (intptr_t)s->cfg.max_per_ip, NULL};
  if (s->cfg.tls_cert) {
    if (!(tls_cert = read_file(s->cfg.tls_cert, err, errsize)) ||
        !(tls_key = read_file(s->cfg.tls_key, err, errsize))) {
      sim_http_stop(NULL);
      return NULL;
    }
    flags |= MHD_USE_TLS;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key};
    s->tls = 1;
  }
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, handler, s,
                                          MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (!d) {
    snprintf(err, errsize, "cannot serve on %s port %u (in use, or bad TLS files?)", s->cfg.bind,
             s->cfg.port);
    sim_http_stop(NULL);
    return NULL;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  *port_out = di ? di->port : s->cfg.port;
  return d;
bad_addr:
  snprintf(err, errsize, "'%s' is not a numeric address", s->cfg.bind);
  return NULL;
}
