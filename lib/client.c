/*
 * client.c - the ThingSpace client as an object: its options checked (each
 * refusal names the option, never a secret's value), its parts made (the
 * multi handle all its transfers share, the transfer of the blocking calls,
 * the credentials), its log and its time. The flows are in client_call.c
 * (blocking) and job.c (many downloads at once).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TSESIM__WITH_CURL
#include "tsesim_int.h"

#define DEFAULT_BASE_URL "https://thingspace.verizon.com/api"

/* ---- small helpers ---- */
static char *dup_opt(const char *s, int *bad) {
  char *d;
  if (!s) return NULL;
  d = tsesim__strndup(s, strlen(s));
  if (!d) *bad = 1;
  return d;
}

static tsesim_code refuse(char *errbuf, const char *fmt, ...) TSESIM__PRINTF(2, 3);
static tsesim_code refuse(char *errbuf, const char *fmt, ...) {
  va_list ap;
  if (!errbuf) return TSESIM_E_INVAL;
  va_start(ap, fmt);
  if (vsnprintf(errbuf, TSESIM_ERRBUF_SIZE, fmt, ap) < 0) errbuf[0] = '\0';
  va_end(ap);
  return TSESIM_E_INVAL;
}

/* A value of an option that goes into a header: tokens are 1+ bytes of
 * 0x21-0x7E, the user agent may hold spaces too. */
static tsesim_code check_header_option(const char *name, const char *v, unsigned char lo,
                                       char *errbuf) {
  size_t len, bad;
  if (!v) return TSESIM_OK;
  len = strlen(v);
  if (!len && lo > 0x20) return refuse(errbuf, "%s: empty", name);
  bad = tsesim__first_bad_byte(v, len, lo);
  if (bad < len)
    return refuse(errbuf, "%s: %s 0x%02X at byte %lu; only printable ASCII is allowed", name,
                  tsesim__byte_kind((unsigned char)v[bad]), (unsigned char)v[bad],
                  (unsigned long)bad + 1);
  return TSESIM_OK;
}

/* base_url: https://, or http:// to a loopback host, compared after libcurl
 * has parsed the URL (it is libcurl that connects): the host it found must be
 * 127.x.x.x, [::1] or localhost, and must be written so in the URL itself,
 * for libcurl turns "127.1" and "0x7f.0.0.1" into 127.0.0.1. A URL with user
 * information ("http://127.0.0.1:1@example.com") is refused for any host. */
static tsesim_code check_base_url(const char *url, int any_host, char *errbuf) {
  CURLU *u;
  CURLUcode uc;
  char *host = NULL, *user = NULL, *pass = NULL, *zone = NULL;
  const char *raw, *end;
  size_t len = strlen(url), bad, n;
  int http, ok;
  tsesim_code rc = TSESIM_OK;
  bad = tsesim__first_bad_byte(url, len, 0x21);
  if (bad < len)
    return refuse(errbuf, "base_url: %s 0x%02X at byte %lu",
                  tsesim__byte_kind((unsigned char)url[bad]), (unsigned char)url[bad],
                  (unsigned long)bad + 1);
  http = tsesim__ascii_iprefix(url, len, "http://");
  if (!http && !tsesim__ascii_iprefix(url, len, "https://"))
    return refuse(errbuf, "base_url: must start with https:// (or http:// to a loopback host)");
  if (!(u = curl_url())) {
    tsesim__errbuf_set(errbuf, "base_url: out of memory");
    return TSESIM_E_NOMEM;
  }
  uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc == CURLUE_OUT_OF_MEMORY) {
    curl_url_cleanup(u);
    tsesim__errbuf_set(errbuf, "base_url: out of memory");
    return TSESIM_E_NOMEM;
  }
  if (uc != CURLUE_OK) {
    curl_url_cleanup(u);
    return refuse(errbuf, "base_url: not a valid URL (%s)", curl_url_strerror(uc));
  }
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
  curl_url_get(u, CURLUPART_ZONEID, &zone, 0);
  if (user || pass) {
    rc = refuse(errbuf, "base_url: user information (\"user@host\") is not allowed");
  } else if (!host) {
    rc = refuse(errbuf, "base_url: no host");
  } else if (http && !any_host) {
    /* the host as written: the authority up to the port */
    raw = url + 7;
    if (*raw == '[') {
      end = strchr(raw, ']');
      end = end ? end + 1 : raw;
    } else {
      for (end = raw; *end && *end != ':' && *end != '/' && *end != '?' && *end != '#'; end++) {
      }
    }
    n = (size_t)(end - raw);
    ok = !zone && strlen(host) == n && strncmp(raw, host, n) == 0 &&
         (strcmp(host, "[::1]") == 0 || tsesim__loopback_ipv4(host));
    if (!ok && !zone && n == 9 && strlen(host) == 9) { /* localhost, in any case */
      char written[10];
      memcpy(written, raw, 9);
      written[9] = '\0';
      ok = tsesim__ascii_ieq(written, "localhost") && tsesim__ascii_ieq(host, "localhost");
    }
    if (!ok)
      rc = refuse(errbuf,
                  "base_url: plain http is only for loopback hosts (127.0.0.0/8, [::1], "
                  "localhost); use https:// or set insecure_plain_http_any_host");
  }
  curl_free(host);
  curl_free(user);
  curl_free(pass);
  curl_free(zone);
  curl_url_cleanup(u);
  return rc;
}

/* ---- public API ---- */
/* Every refusal of tsesim_client_new, each naming the option and why; never
 * a secret's value. */
static tsesim_code check_options(const tsesim_options *o, const char *base, char *errbuf) {
  static const char *const utf8[] = {"username", "password"};
  const char *v[2];
  size_t i, at;
  tsesim_code rc;
  if ((rc = check_base_url(base, o->version >= 2 && o->insecure_plain_http_any_host, errbuf)))
    return rc;
  if (o->client_id && !o->client_secret)
    return refuse(errbuf, "client_id: set with no client_secret");
  if (o->client_secret && !o->client_id)
    return refuse(errbuf, "client_secret: set with no client_id");
  if (o->username && !o->password) return refuse(errbuf, "username: set with no password");
  if (o->password && !o->username) return refuse(errbuf, "password: set with no username");
  if (!o->client_id && !o->access_token)
    return refuse(errbuf,
                  "no OAuth credentials: set client_id and client_secret, or "
                  "access_token");
  if (!o->username && !o->session_token)
    return refuse(errbuf, "no M2M credentials: set username and password, or session_token");
  /* what goes into a header must not be able to end its line */
  if ((rc = check_header_option("access_token", o->access_token, 0x21, errbuf)) ||
      (rc = check_header_option("session_token", o->session_token, 0x21, errbuf)) ||
      (o->version >= 2 && (rc = check_header_option("user_agent", o->user_agent, 0x20, errbuf))))
    return rc;
  v[0] = o->username; /* they travel in a JSON body */
  v[1] = o->password;
  for (i = 0; i < 2; i++)
    if (v[i] && (at = tsesim__utf8_invalid_at(v[i])))
      return refuse(errbuf, "%s: invalid UTF-8 at byte %lu", utf8[i], (unsigned long)at);
  return TSESIM_OK;
}

tsesim_code tsesim_client_new(tsesim_client **out, const tsesim_options *o) {
  return tsesim_client_new_v2(out, o, NULL);
}

tsesim_code tsesim_client_new_v2(tsesim_client **out, const tsesim_options *o, char *errbuf) {
  tsesim_client *c;
  int bad = 0;
  const char *base;
  char agent[256];
  tsesim_code rc;
  if (!out) return refuse(errbuf, "out is NULL");
  *out = NULL;
  if (!o) return refuse(errbuf, "opts is NULL");
  if (o->version < 1 || o->version > TSESIM_OPTIONS_VERSION)
    return refuse(errbuf, "options version %u: this library knows 1..%d", o->version,
                  TSESIM_OPTIONS_VERSION);
  base = o->base_url ? o->base_url : DEFAULT_BASE_URL;
  if ((rc = check_options(o, base, errbuf)) != TSESIM_OK) return rc;
  if (!(c = tsesim__malloc(sizeof *c))) {
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  memset(c, 0, sizeof *c);
  c->base_url = dup_opt(base, &bad);
  if (c->base_url) { /* "…/api/" and "…/api" name the same base */
    size_t n = strlen(c->base_url);
    while (n > 8 && c->base_url[n - 1] == '/') c->base_url[--n] = '\0';
  }
  c->auth.client_id = dup_opt(o->client_id, &bad);
  c->auth.client_secret = dup_opt(o->client_secret, &bad);
  c->auth.access_token = dup_opt(o->access_token, &bad);
  c->auth.username = dup_opt(o->username, &bad);
  c->auth.password = dup_opt(o->password, &bad);
  c->auth.session_token = dup_opt(o->session_token, &bad);
  c->log.fn = o->log_fn;
  c->log.payload = o->log_payload;
  c->log.level = o->log_level;
  c->net.connect_timeout_ms = 10000;
  c->net.timeout_ms = 60000;
  c->max_attempts = 3;
  c->backoff_base_ms = 500;
  c->backoff_cap_ms = 20000;
  c->net.max_response = 1024 * 1024;
  snprintf(agent, sizeof agent, "libtsesim/%s", TSESIM_VERSION_STR);
  if (o->version >= 2) {
    if (o->connect_timeout_ms > 0) c->net.connect_timeout_ms = o->connect_timeout_ms;
    if (o->timeout_ms > 0) c->net.timeout_ms = o->timeout_ms;
    if (o->max_attempts) c->max_attempts = o->max_attempts;
    if (o->backoff_base_ms > 0) c->backoff_base_ms = o->backoff_base_ms;
    if (o->backoff_cap_ms > 0) c->backoff_cap_ms = o->backoff_cap_ms;
    if (o->max_response_bytes) c->net.max_response = o->max_response_bytes;
    if (o->user_agent)
      snprintf(agent, sizeof agent, "libtsesim/%s %s", TSESIM_VERSION_STR, o->user_agent);
    c->auth.token_fn = o->token_fn;
    c->auth.token_payload = o->token_payload;
    c->clock_fn = o->clock_fn;
    c->sleep_fn = o->sleep_fn;
    c->time_payload = o->time_payload;
    c->ca_file = dup_opt(o->ca_file, &bad);
    c->ca_path = dup_opt(o->ca_path, &bad);
    c->proxy = dup_opt(o->proxy, &bad);
  }
  c->user_agent = dup_opt(agent, &bad);
  c->net.user_agent = c->user_agent;
  c->net.ca_file = c->ca_file;
  c->net.ca_path = c->ca_path;
  c->net.proxy = c->proxy;
  c->net.log = c->log;
  c->net.clock_fn = c->clock_fn;
  c->net.time_payload = c->time_payload;
  c->rng = (unsigned long long)(size_t)c ^ 0x9E3779B97F4A7C15ULL;
  if (!c->rng) c->rng = 1;
  if (bad || tsesim__net_init(&c->net) != TSESIM_OK ||
      tsesim__transfer_init(&c->xfer, &c->net) != TSESIM_OK) {
    tsesim_client_free(c);
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  *out = c;
  return TSESIM_OK;
}

void tsesim_client_free(tsesim_client *c) {
  if (!c) return;
  tsesim__transfer_cleanup(&c->xfer);
  tsesim__net_cleanup(&c->net);
  tsesim__free(c->base_url);
  tsesim__auth_free(&c->auth);
  tsesim__free(c->user_agent);
  tsesim__free(c->ca_file);
  tsesim__free(c->ca_path);
  tsesim__free_secret(c->proxy); /* it may hold a proxy password */
  tsesim_api_error_free(c->last_error);
  tsesim__memzero(c, sizeof *c);
  tsesim__free(c);
}

const char *tsesim_client_errmsg(const tsesim_client *c) { return c ? c->errmsg : ""; }

const tsesim_api_error *tsesim_client_last_error(const tsesim_client *c) {
  return c ? c->last_error : NULL;
}

/* ---- log and time ---- */
void tsesim__client_log(tsesim_client *c, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__vlog(&c->log, level, fmt, ap);
  va_end(ap);
}

void tsesim__client_fail(tsesim_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__errbuf_vset(c->errmsg, fmt, ap);
  va_end(ap);
  tsesim__client_log(c, 0, "%s", c->errmsg);
}

void tsesim__client_attempt(const tsesim_client *c, const tsesim__transfer *t, unsigned attempt,
                            long answered, int no_resend, tsesim__attempt *a) {
  memset(a, 0, sizeof *a);
  a->attempt = attempt;
  a->max_attempts = c->max_attempts;
  a->no_resend = no_resend;
  a->answered = answered;
  a->base_ms = c->backoff_base_ms;
  a->cap_ms = c->backoff_cap_ms;
  a->rc = t ? t->rc : TSESIM_E_NOMEM;
  a->status = t ? t->status : 0;
  a->nothing_sent = t ? t->nothing_sent : 1;
  a->retry_after_s = t ? t->retry_after : -1;
}

long long tsesim__now_ms(tsesim_client *c) { return tsesim__net_now_ms(&c->net); }

void tsesim__client_wait(tsesim_client *c, long ms) {
  if (ms <= 0) return;
  if (c->sleep_fn) {
    c->sleep_fn(ms, c->time_payload);
    return;
  }
  tsesim__net_run(&c->net, NULL, ms); /* the other transfers go on meanwhile */
}
