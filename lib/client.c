/*
 * client.c - the ThingSpace client: options, the access token and the M2M
 * session (lazy, renewed, refusals remembered), and the download with the
 * only retries that cannot duplicate it.
 *
 * Retry rules, in one place (send_with_retries): a request is sent again
 * only when it never left (connect/TLS failure before sending) or when the
 * server answered 429 or 503, at most max_attempts times in all, after a
 * full-jitter back-off or the server's Retry-After. Token renewal replays
 * (a 401 gateway fault, SessionToken.Expired) happen once each, on top.
 */
#include <stdio.h>
#include <string.h>

#define TSESIM__WITH_CURL
#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

#define DEFAULT_BASE_URL "https://thingspace.verizon.com/api"
#define P_TOKEN "/ts/v1/oauth2/token"
#define P_LOGIN "/m2m/v1/session/login"
#define P_LOGOUT "/m2m/v1/session/logout"
#define P_DOWNLOAD "/m2m/v1/devices/profile/actions/download"

/* ---- small helpers ---- */
static char *dup_opt(const char *s, int *bad) {
  char *d;
  if (!s) return NULL;
  d = tsesim__strndup(s, strlen(s));
  if (!d) *bad = 1;
  return d;
}

static int ends_with(const char *s, const char *tail) {
  size_t n, t;
  if (!s) return 0;
  n = strlen(s);
  t = strlen(tail);
  return n >= t && strcmp(s + n - t, tail) == 0;
}

static int prefix_ieq(const char *s, const char *prefix) {
  size_t i;
  for (i = 0; prefix[i]; i++) {
    char a = s[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (a != prefix[i]) return 0;
  }
  return 1;
}

/* http:// is for loopback only: 127.0.0.0/8, ::1, localhost. The authority
 * must be a bare host[:port]: "http://127.0.0.1:x@example.com" names
 * example.com, so user information is refused outright. */
static int loopback_url(const char *url) {
  const char *h = url + 7, *e, *p;
  size_t n;
  for (p = h; *p && *p != '/' && *p != '?' && *p != '#'; p++)
    if (*p == '@') return 0;
  if (*h == '[') return strncmp(h, "[::1]", 5) == 0 && (h[5] == ':' || h[5] == '/' || !h[5]);
  for (e = h; *e && *e != ':' && *e != '/' && *e != '?' && *e != '#'; e++) {
  }
  n = (size_t)(e - h);
  if (n == 9) {
    char host[10];
    memcpy(host, h, 9);
    host[9] = '\0';
    if (tsesim__ascii_ieq(host, "localhost")) return 1;
  }
  if (n < 4 || strncmp(h, "127.", 4) != 0) return 0;
  for (; h < e; h++)
    if (!((*h >= '0' && *h <= '9') || *h == '.')) return 0;
  return 1;
}

static void set_last_error(tsesim_client *c, long status) {
  tsesim_api_error *e = NULL;
  tsesim_api_error_free(c->last_error);
  c->last_error = NULL;
  if (tsesim_api_error_parse(&e, status, c->resp, c->resp_len) == TSESIM_OK) {
    e->retry_after = c->retry_after;
    c->last_error = e;
  }
}

/* A 401 from the API gateway: {"fault":{...}}. */
static int gateway_fault(const tsesim_client *c, long status) {
  const tsesim_api_error *e = c->last_error;
  return status == 401 && e && e->body && strstr(e->body, "\"fault\"") != NULL && e->code;
}

/* Zeroes a string that jansson parsed out of an answer (a token) before the
 * tree is freed. Copies inside jansson's lexer are out of our reach. */
static void wipe_json_string(json_t *s) {
  volatile char *v;
  size_t n;
  if (!json_is_string(s)) return;
  v = (volatile char *)json_string_value(s);
  for (n = json_string_length(s); n; n--) *v++ = '\0';
}

/* The answer that carried a token is zeroed once the token is copied out. */
static void wipe_resp(tsesim_client *c) {
  if (c->resp) memset(c->resp, 0, c->resp_len);
  c->resp_len = 0;
}

static void notify(tsesim_client *c, tsesim_token_kind kind, const char *token, long expires) {
  if (c->token_fn) c->token_fn(kind, token, expires, c->token_payload);
}

static void drop_access(tsesim_client *c) {
  if (c->access_token) notify(c, TSESIM_TOKEN_ACCESS, NULL, -1);
  tsesim__free_secret(c->access_token);
  c->access_token = NULL;
  c->access_expires_ms = 0;
}

static void drop_session(tsesim_client *c) {
  if (c->session_token) notify(c, TSESIM_TOKEN_SESSION, NULL, -1);
  tsesim__free_secret(c->session_token);
  c->session_token = NULL;
}

/* ---- one request with the safe retries ---- */
static tsesim_code send_with_retries(tsesim_client *c, const char *method, const char *path,
                                     const char *body, size_t len, tsesim__auth auth,
                                     int no_resend, long *status) {
  unsigned attempt;
  tsesim_code rc = TSESIM_OK;
  tsesim__exchange x;
  *status = 0;
  for (attempt = 1;; attempt++) {
    long wait;
    rc = tsesim__http_send(c, method, path, body, len, auth, no_resend, &x);
    if (rc == TSESIM_OK) {
      if (x.status != 429 && x.status != 503) {
        *status = x.status;
        return TSESIM_OK;
      }
      set_last_error(c, x.status);
    } else {
      tsesim_api_error_free(c->last_error); /* this failure had no HTTP answer */
      c->last_error = NULL;
      if (!x.nothing_sent || (rc != TSESIM_E_TRANSPORT && rc != TSESIM_E_TIMEOUT))
        return rc; /* it may have been sent, or asking again cannot help (TLS, cap, memory) */
    }
    if (attempt >= c->max_attempts) break;
    wait = tsesim__backoff_ms(c, attempt, rc == TSESIM_OK ? c->retry_after : -1);
    tsesim__client_log(c, 1, "%s %s: %s; retrying in %ld ms (attempt %u of %u)", method, path,
                       rc == TSESIM_OK ? (x.status == 429 ? "429" : "503") : "nothing was sent",
                       wait, attempt + 1, c->max_attempts);
    tsesim__sleep_ms(c, wait);
  }
  if (rc == TSESIM_OK) {
    tsesim__client_fail(c, "%s %s: still %ld after %u attempts", method, path, x.status,
                        c->max_attempts);
    return TSESIM_E_RATE_LIMITED;
  }
  return rc;
}

/* A non-2xx answer that is not handled by the caller. */
static tsesim_code api_failure(tsesim_client *c, const char *what, long status) {
  const tsesim_api_error *e;
  set_last_error(c, status);
  e = c->last_error;
  if (status >= 300 && status < 400) {
    tsesim__client_fail(c, "%s: redirected (%ld); redirects are never followed", what, status);
    return TSESIM_E_HTTP;
  }
  tsesim__client_fail(c, "%s: %ld %s%s%s", what, status, e && e->code ? e->code : "(no code)",
                      e && e->message ? ": " : "", e && e->message ? e->message : "");
  return TSESIM_E_API;
}

/* Takes the string member name out of a 2xx answer into *out (allocated),
 * zeroing jansson's copy and the answer's. With expires_in, also reads
 * "expires_in": a number, or digits in a string; anything else is -1, "not
 * known". */
static tsesim_code take_token(tsesim_client *c, const char *what, const char *name, long status,
                              char **out, long *expires_in) {
  json_t *root = NULL, *tok, *exp;
  if (tsesim__json_load(&root, c->resp, c->resp_len, NULL) == TSESIM_E_NOMEM) {
    tsesim__client_fail(c, "%s: out of memory", what);
    return TSESIM_E_NOMEM;
  }
  tok = json_object_get(root, name);
  if (!json_is_string(tok) || !json_string_length(tok)) {
    json_decref(root);
    tsesim__client_fail(c, "%s: the %ld answer has no %s", what, status, name);
    return TSESIM_E_HTTP;
  }
  if (expires_in) {
    exp = json_object_get(root, "expires_in");
    *expires_in = -1;
    if (json_is_integer(exp) && json_integer_value(exp) > 0 &&
        json_integer_value(exp) < 100000000)
      *expires_in = (long)json_integer_value(exp);
    else if (json_is_string(exp)) {
      const char *p = json_string_value(exp);
      long v = 0;
      for (; *p >= '0' && *p <= '9' && v < 100000000L; p++) v = v * 10 + (*p - '0');
      if (!*p && v > 0) *expires_in = v;
    }
  }
  *out = tsesim__strndup(json_string_value(tok), json_string_length(tok));
  wipe_json_string(tok);
  json_decref(root);
  wipe_resp(c);
  if (!*out) {
    tsesim__client_fail(c, "%s: out of memory", what);
    return TSESIM_E_NOMEM;
  }
  return TSESIM_OK;
}

/* ---- the access token ---- */
static int access_stale(tsesim_client *c) {
  long long margin;
  if (!c->access_token) return 1;
  if (!c->access_expires_ms) return 0;
  margin = (c->access_expires_ms - c->token_fetched_ms) / 10;
  if (margin > 60000) margin = 60000;
  return tsesim__now_ms(c) >= c->access_expires_ms - margin;
}

static tsesim_code fetch_access(tsesim_client *c) {
  static const char form[] = "grant_type=client_credentials";
  long status;
  char *tok;
  long expires_in;
  tsesim_code rc;
  if (c->oauth_refused) {
    tsesim__client_fail(c, "the OAuth client was refused earlier: not asking again");
    return TSESIM_E_AUTH;
  }
  if (!c->client_id) {
    tsesim__client_fail(c, "the access token is not usable and no OAuth client is set");
    return TSESIM_E_AUTH;
  }
  rc = send_with_retries(c, "POST", P_TOKEN, form, sizeof form - 1, TSESIM__AUTH_BASIC, 0, &status);
  if (rc != TSESIM_OK) return rc;
  if (status >= 400 && status < 500) {
    api_failure(c, "token", status);
    c->oauth_refused = 1;
    return TSESIM_E_AUTH;
  }
  if (status < 200 || status >= 300) return api_failure(c, "token", status);
  if ((rc = take_token(c, "token", "access_token", status, &tok, &expires_in)) != TSESIM_OK)
    return rc;
  drop_access(c);
  c->access_token = tok;
  c->token_fetched_ms = tsesim__now_ms(c);
  c->access_expires_ms = expires_in > 0 ? c->token_fetched_ms + (long long)expires_in * 1000 : 0;
  notify(c, TSESIM_TOKEN_ACCESS, c->access_token, expires_in);
  return TSESIM_OK;
}

static tsesim_code ensure_access(tsesim_client *c) {
  return access_stale(c) ? fetch_access(c) : TSESIM_OK;
}

/* ---- the session ---- */
static tsesim_code fetch_session(tsesim_client *c) {
  const char *creds[4];
  char *body, *tok;
  long status;
  int replayed = 0;
  tsesim_code rc;
  if (c->login_refused) {
    tsesim__client_fail(c, "the M2M login was refused earlier: not trying again (a user is "
                           "locked after 5 failures)");
    return TSESIM_E_AUTH;
  }
  if (!c->username) {
    tsesim__client_fail(c, "the session token is not usable and no M2M user is set");
    return TSESIM_E_AUTH;
  }
  creds[0] = "username";
  creds[1] = c->username;
  creds[2] = "password";
  creds[3] = c->password;
  if (!(body = tsesim__json_strings(creds, 2))) {
    tsesim__client_fail(c, "login: out of memory");
    return TSESIM_E_NOMEM;
  }
  for (;;) {
    if ((rc = ensure_access(c)) != TSESIM_OK) break;
    rc = send_with_retries(c, "POST", P_LOGIN, body, strlen(body), TSESIM__AUTH_BEARER, 0, &status);
    if (rc != TSESIM_OK) break;
    if (status >= 200 && status < 300) break;
    set_last_error(c, status);
    if (gateway_fault(c, status) && !replayed) { /* the access token went stale */
      replayed = 1;
      drop_access(c);
      continue;
    }
    if (status >= 400 && status < 500 && !gateway_fault(c, status)) {
      api_failure(c, "login", status);
      c->login_refused = 1;
      rc = TSESIM_E_AUTH;
    } else {
      rc = api_failure(c, "login", status);
    }
    break;
  }
  tsesim__free_secret(body); /* it holds the password */
  if (rc != TSESIM_OK) return rc;
  if ((rc = take_token(c, "login", "sessionToken", status, &tok, NULL)) != TSESIM_OK) return rc;
  drop_session(c);
  c->session_token = tok;
  notify(c, TSESIM_TOKEN_SESSION, c->session_token, -1);
  return TSESIM_OK;
}

/* ---- public API ---- */
tsesim_code tsesim_client_new(tsesim_client **out, const tsesim_options *o) {
  tsesim_client *c;
  int bad = 0;
  const char *base;
  char agent[256];
  if (!out) return TSESIM_E_INVAL;
  *out = NULL;
  if (!o || o->version < 1 || o->version > TSESIM_OPTIONS_VERSION) return TSESIM_E_INVAL;
  base = o->base_url ? o->base_url : DEFAULT_BASE_URL;
  if (!prefix_ieq(base, "https://") &&
      !(prefix_ieq(base, "http://") &&
        (loopback_url(base) || (o->version >= 2 && o->insecure_plain_http_any_host))))
    return TSESIM_E_INVAL;
  if (!((o->client_id && o->client_secret) || o->access_token) ||
      !((o->username && o->password) || o->session_token))
    return TSESIM_E_INVAL;
  if ((o->username && tsesim__utf8_invalid_at(o->username)) ||
      (o->password && tsesim__utf8_invalid_at(o->password)))
    return TSESIM_E_INVAL; /* they travel in a JSON body */
  if (!(c = tsesim__malloc(sizeof *c))) return TSESIM_E_NOMEM;
  memset(c, 0, sizeof *c);
  c->base_url = dup_opt(base, &bad);
  if (c->base_url) { /* "…/api/" and "…/api" name the same base */
    size_t n = strlen(c->base_url);
    while (n > 8 && c->base_url[n - 1] == '/') c->base_url[--n] = '\0';
  }
  c->client_id = dup_opt(o->client_id, &bad);
  c->client_secret = dup_opt(o->client_secret, &bad);
  c->access_token = dup_opt(o->access_token, &bad);
  c->username = dup_opt(o->username, &bad);
  c->password = dup_opt(o->password, &bad);
  c->session_token = dup_opt(o->session_token, &bad);
  c->log_fn = o->log_fn;
  c->log_payload = o->log_payload;
  c->log_level = o->log_level;
  c->connect_timeout_ms = 10000;
  c->timeout_ms = 60000;
  c->max_attempts = 3;
  c->backoff_base_ms = 500;
  c->backoff_cap_ms = 20000;
  c->max_response = 1024 * 1024;
  snprintf(agent, sizeof agent, "libtsesim/%s", TSESIM_VERSION_STR);
  if (o->version >= 2) {
    if (o->connect_timeout_ms > 0) c->connect_timeout_ms = o->connect_timeout_ms;
    if (o->timeout_ms > 0) c->timeout_ms = o->timeout_ms;
    if (o->max_attempts) c->max_attempts = o->max_attempts;
    if (o->backoff_base_ms > 0) c->backoff_base_ms = o->backoff_base_ms;
    if (o->backoff_cap_ms > 0) c->backoff_cap_ms = o->backoff_cap_ms;
    if (o->max_response_bytes) c->max_response = o->max_response_bytes;
    if (o->user_agent) snprintf(agent, sizeof agent, "libtsesim/%s %s", TSESIM_VERSION_STR,
                                o->user_agent);
    c->token_fn = o->token_fn;
    c->token_payload = o->token_payload;
    c->clock_fn = o->clock_fn;
    c->sleep_fn = o->sleep_fn;
    c->time_payload = o->time_payload;
  }
  c->user_agent = dup_opt(agent, &bad);
  c->retry_after = -1;
  c->rng = (unsigned long long)(size_t)c ^ 0x9E3779B97F4A7C15ULL;
  if (!c->rng) c->rng = 1;
  if (bad || !(c->easy = curl_easy_init())) {
    tsesim_client_free(c);
    return TSESIM_E_NOMEM;
  }
  curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c->easy, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c->easy, CURLOPT_PROXY, o->version >= 2 && o->proxy ? o->proxy : "");
  curl_easy_setopt(c->easy, CURLOPT_NOPROXY, ""); /* no_proxy from the environment neither */
  if (o->version >= 2 && o->ca_file) curl_easy_setopt(c->easy, CURLOPT_CAINFO, o->ca_file);
  if (o->version >= 2 && o->ca_path) curl_easy_setopt(c->easy, CURLOPT_CAPATH, o->ca_path);
  tsesim__http_setup(c);
  *out = c;
  return TSESIM_OK;
}

void tsesim_client_free(tsesim_client *c) {
  if (!c) return;
  if (c->easy) curl_easy_cleanup(c->easy);
  tsesim__free(c->base_url);
  tsesim__free(c->client_id);
  tsesim__free_secret(c->client_secret);
  tsesim__free_secret(c->access_token);
  tsesim__free(c->username);
  tsesim__free_secret(c->password);
  tsesim__free_secret(c->session_token);
  tsesim__free(c->user_agent);
  if (c->resp) memset(c->resp, 0, c->resp_cap); /* answers carry tokens */
  tsesim__free(c->resp);
  tsesim_api_error_free(c->last_error);
  memset(c, 0, sizeof *c);
  tsesim__free(c);
}

static void begin_call(tsesim_client *c) {
  c->errmsg[0] = '\0';
  tsesim_api_error_free(c->last_error);
  c->last_error = NULL;
}

/* A call's result: after a success, nothing of its retried attempts remains
 * in errmsg or last_error. */
static tsesim_code done(tsesim_client *c, tsesim_code rc) {
  if (rc == TSESIM_OK) begin_call(c);
  return rc;
}

tsesim_code tsesim_client_login(tsesim_client *c) {
  tsesim_code rc;
  if (!c) return TSESIM_E_INVAL;
  begin_call(c);
  if ((rc = ensure_access(c)) != TSESIM_OK) return done(c, rc);
  return done(c, c->session_token ? TSESIM_OK : fetch_session(c));
}

tsesim_code tsesim_client_logout(tsesim_client *c) {
  long status;
  int replayed = 0;
  tsesim_code rc;
  if (!c) return TSESIM_E_INVAL;
  begin_call(c);
  if (!c->session_token) return TSESIM_OK;
  for (;;) {
    if ((rc = ensure_access(c)) != TSESIM_OK) return done(c, rc);
    rc = send_with_retries(c, "POST", P_LOGOUT, "", 0, TSESIM__AUTH_SESSION, 0, &status);
    if (rc != TSESIM_OK) return done(c, rc);
    if (status < 300) break;
    set_last_error(c, status);
    if (gateway_fault(c, status) && !replayed) { /* a stale access token: once more */
      replayed = 1;
      drop_access(c);
      continue;
    }
    if (c->last_error && (ends_with(c->last_error->code, "SessionToken.Expired") ||
                          ends_with(c->last_error->code, "SessionToken.Invalid")))
      break; /* the session is gone already: that is what logout wanted */
    return api_failure(c, "logout", status);
  }
  drop_session(c);
  return TSESIM_OK;
}

/* A call on an /m2m path with the session: tokens obtained as needed, one
 * new access token and replay on a 401 gateway fault, one new login and
 * replay on SessionToken.Expired. TSESIM_OK with a 2xx *status, else the
 * failure (last_error and errmsg set). */
static tsesim_code m2m_call(tsesim_client *c, const char *method, const char *path,
                            const char *body, size_t len, int no_resend, const char *what,
                            long *status) {
  int new_access = 0, new_session = 0;
  tsesim_code rc;
  for (;;) {
    if ((rc = ensure_access(c)) != TSESIM_OK) return rc;
    if (!c->session_token && (rc = fetch_session(c)) != TSESIM_OK) return rc;
    rc = send_with_retries(c, method, path, body, len, TSESIM__AUTH_SESSION, no_resend, status);
    if (rc != TSESIM_OK) return rc;
    if (*status >= 200 && *status < 300) return TSESIM_OK;
    set_last_error(c, *status);
    if (gateway_fault(c, *status) && !new_access) {
      new_access = 1;
      tsesim__client_log(c, 1, "%s: access token refused; fetching a new one, once", what);
      drop_access(c);
      continue;
    }
    if (c->last_error && ends_with(c->last_error->code, "SessionToken.Expired") && !new_session) {
      new_session = 1;
      tsesim__client_log(c, 1, "%s: session expired; logging in again, once", what);
      drop_session(c);
      continue;
    }
    return api_failure(c, what, *status);
  }
}

tsesim_code tsesim_client_download(char **out_request_id, tsesim_client *c,
                                   const tsesim_request *req) {
  char *body = NULL;
  size_t len = 0, n;
  long status;
  tsesim_code rc;
  char errbuf[TSESIM_ERRBUF_SIZE];
  if (out_request_id) *out_request_id = NULL;
  if (c) begin_call(c);
  if (!out_request_id || !c || !req) {
    if (c) tsesim__client_fail(c, "download: %s is NULL", !req ? "req" : "out_request_id");
    return TSESIM_E_INVAL;
  }
  n = tsesim_request_device_count(req);
  rc = tsesim_request_to_json(&body, &len, req);
  if (rc != TSESIM_OK) {
    tsesim__client_fail(c, "download: the request %s",
                        rc == TSESIM_E_LIMIT   ? "holds more than 10000 devices"
                        : rc == TSESIM_E_INVAL ? "holds no device"
                                               : "cannot be serialized");
    return done(c, rc);
  }
  rc = m2m_call(c, "POST", P_DOWNLOAD, body, len, 1, "download", &status);
  if (rc == TSESIM_E_UNKNOWN_OUTCOME) {
    tsesim__client_fail(c, "download of %lu device%s: sent, but no complete answer came; it "
                           "may have been acted on, so it was not sent again",
                        (unsigned long)n, n == 1 ? "" : "s");
  } else if (rc == TSESIM_OK) {
    rc = tsesim_response_parse(out_request_id, c->resp, c->resp_len, errbuf);
    if (rc == TSESIM_E_PARSE) {
      set_last_error(c, status);
      tsesim__client_fail(c, "download: %ld answer without a requestId: %s", status, errbuf);
      rc = TSESIM_E_HTTP;
    }
  }
  tsesim_free(body);
  return done(c, rc);
}

/* "/m2m/v1/callbacks/<account>[/name/<service>]", path parts escaped. */
static char *callbacks_path(tsesim_client *c, const char *account, const char *service) {
  char *a = curl_easy_escape(c->easy, account, 0), *s = NULL, *path = NULL;
  if (a && (!service || (s = curl_easy_escape(c->easy, service, 0)))) {
    size_t n = strlen(a) + (s ? strlen(s) + 6 : 0) + 20;
    if ((path = tsesim__malloc(n)))
      snprintf(path, n, "/m2m/v1/callbacks/%s%s%s", a, s ? "/name/" : "", s ? s : "");
  }
  curl_free(a);
  curl_free(s);
  return path;
}

tsesim_code tsesim_client_register_callback(tsesim_client *c, const char *account_name,
                                            const char *service_name, const char *url,
                                            const char *username, const char *password) {
  const char *f[8];
  size_t i;
  char *body = NULL, *path;
  long status;
  tsesim_code rc;
  if (!c) return TSESIM_E_INVAL;
  begin_call(c);
  if (!account_name || !*account_name || !url ||
      (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
    tsesim__client_fail(c, "register callback: %s",
                        !account_name || !*account_name ? "account_name is empty"
                                                        : "url must be http:// or https://");
    return TSESIM_E_INVAL;
  }
  f[0] = "name";
  f[1] = service_name ? service_name : "DeviceProfileService";
  f[2] = "url";
  f[3] = url;
  f[4] = "username";
  f[5] = username;
  f[6] = "password";
  f[7] = password;
  for (i = 1; i < 8; i += 2) {
    size_t bad = f[i] ? tsesim__utf8_invalid_at(f[i]) : 0;
    if (bad) {
      tsesim__client_fail(c, "register callback: %s: invalid UTF-8 at byte %lu", f[i - 1],
                          (unsigned long)bad);
      return TSESIM_E_INVAL;
    }
  }
  body = tsesim__json_strings(f, 4);
  path = callbacks_path(c, account_name, NULL);
  if (!body || !path) {
    rc = TSESIM_E_NOMEM;
    tsesim__client_fail(c, "register callback: out of memory");
  } else {
    rc = m2m_call(c, "POST", path, body, strlen(body), 0, "register callback", &status);
  }
  tsesim__free_secret(body); /* it holds the listener's password */
  tsesim__free(path);
  return done(c, rc);
}

tsesim_code tsesim_client_unregister_callback(tsesim_client *c, const char *account_name,
                                              const char *service_name) {
  char *path;
  long status;
  tsesim_code rc;
  if (!c) return TSESIM_E_INVAL;
  begin_call(c);
  if (!account_name || !*account_name) {
    tsesim__client_fail(c, "unregister callback: account_name is empty");
    return TSESIM_E_INVAL;
  }
  path = callbacks_path(c, account_name, service_name ? service_name : "DeviceProfileService");
  if (!path) {
    tsesim__client_fail(c, "unregister callback: out of memory");
    return TSESIM_E_NOMEM;
  }
  rc = m2m_call(c, "DELETE", path, "", 0, 0, "unregister callback", &status);
  tsesim__free(path);
  return done(c, rc);
}

const char *tsesim_client_errmsg(const tsesim_client *c) { return c ? c->errmsg : ""; }

const tsesim_api_error *tsesim_client_last_error(const tsesim_client *c) {
  return c ? c->last_error : NULL;
}
