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
#include <stdarg.h>
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

/* What is wrong with byte b of a value that must be printable ASCII, for a
 * message: never the value itself, which may be a secret. */
static const char *byte_kind(unsigned char b) {
  if (b < 0x20 || b == 0x7F) return "control character";
  if (b == 0x20) return "space";
  return "non-ASCII byte";
}

/* The first byte of s[0..len) outside lo..0x7E, or len when there is none. A
 * value that goes into a header line must not be able to end it (CR, LF) or
 * carry anything a terminal or a log would act on. */
static size_t first_bad_byte(const char *s, size_t len, unsigned char lo) {
  size_t i;
  for (i = 0; i < len; i++)
    if ((unsigned char)s[i] < lo || (unsigned char)s[i] > 0x7E) break;
  return i;
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
  bad = first_bad_byte(v, len, lo);
  if (bad < len)
    return refuse(errbuf, "%s: %s 0x%02X at byte %lu; only printable ASCII is allowed", name,
                  byte_kind((unsigned char)v[bad]), (unsigned char)v[bad], (unsigned long)bad + 1);
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
  bad = first_bad_byte(url, len, 0x21);
  if (bad < len)
    return refuse(errbuf, "base_url: %s 0x%02X at byte %lu", byte_kind((unsigned char)url[bad]),
                  (unsigned char)url[bad], (unsigned long)bad + 1);
  http = prefix_ieq(url, "http://");
  if (!http && !prefix_ieq(url, "https://"))
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

/* A code that reads as "nothing was sent": after an answer to a download
 * or a registration, such a code would tell the caller to send it again. */
static int reads_as_not_sent(tsesim_code rc) {
  return rc == TSESIM_E_NOMEM || rc == TSESIM_E_TRANSPORT || rc == TSESIM_E_TIMEOUT ||
         rc == TSESIM_E_TLS || rc == TSESIM_E_INVAL;
}

/* ---- one request with the safe retries ---- */
static tsesim_code send_with_retries(tsesim_client *c, const char *method, const char *path,
                                     const char *body, size_t len, tsesim__auth auth, int no_resend,
                                     long *status) {
  unsigned attempt;
  tsesim_code rc = TSESIM_OK;
  tsesim__exchange x;
  long answered = 0; /* the status of an earlier 429 or 503 answer */
  *status = 0;
  for (attempt = 1;; attempt++) {
    long wait;
    rc = tsesim__http_send(c, method, path, body, len, auth, no_resend, &x);
    if (rc == TSESIM_OK) {
      if (x.status != 429 && x.status != 503) {
        *status = x.status;
        return TSESIM_OK;
      }
      answered = x.status;
      set_last_error(c, x.status);
    } else {
      if (no_resend && answered && reads_as_not_sent(rc)) {
        /* It was sent and answered (429/503) before this attempt failed:
         * the answer decides, and last_error keeps it. */
        char why[TSESIM_ERRBUF_SIZE];
        snprintf(why, sizeof why, "%s", c->errmsg);
        tsesim__client_fail(c,
                            "%s %s: %ld on attempt %u, then the next attempt was not sent "
                            "(%s)",
                            method, path, answered, attempt - 1, why);
        return TSESIM_E_RATE_LIMITED;
      }
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
  if (rc != TSESIM_OK && no_resend && answered) { /* nothing sent since the last 429/503 */
    char why[TSESIM_ERRBUF_SIZE];
    snprintf(why, sizeof why, "%s", c->errmsg);
    tsesim__client_fail(c, "%s %s: %ld, then the last attempt was not sent (%s)", method, path,
                        answered, why);
    return TSESIM_E_RATE_LIMITED;
  }
  if (rc == TSESIM_OK) {
    tsesim__client_fail(c, "%s %s: still %ld after %u attempts", method, path, x.status,
                        c->max_attempts);
    return TSESIM_E_RATE_LIMITED;
  }
  return rc;
}

/* The server's own text that reaches errmsg and the log: at most this many
 * of its bytes per field, control characters and the rest escaped as \xNN
 * (tsesim__quote), "..." when cut. last_error.body keeps the raw answer. */
#define SERVER_TEXT_MAX 100

/* errmsg: "what: status "code": "message"" and then tail. */
static void describe_answer(tsesim_client *c, const char *what, long status, const char *tail) {
  const tsesim_api_error *e = c->last_error;
  char code[SERVER_TEXT_MAX * 4 + 8] = "(no code)", msg[SERVER_TEXT_MAX * 4 + 8] = "";
  if (e && e->code) tsesim__quote(code, sizeof code, e->code, SERVER_TEXT_MAX);
  if (e && e->message) tsesim__quote(msg, sizeof msg, e->message, SERVER_TEXT_MAX);
  tsesim__client_fail(c, "%s: %ld %s%s%s%s", what, status, code, msg[0] ? ": " : "", msg, tail);
}

/* A non-2xx answer that is not handled by the caller. */
static tsesim_code api_failure(tsesim_client *c, const char *what, long status) {
  set_last_error(c, status);
  if (status >= 300 && status < 400) {
    tsesim__client_fail(c, "%s: redirected (%ld); redirects are never followed", what, status);
    return TSESIM_E_HTTP;
  }
  describe_answer(c, what, status, "");
  return TSESIM_E_API;
}

/* Takes the string member name out of a 2xx answer into *out (allocated),
 * zeroing jansson's copy and the answer's. With expires_in, also reads
 * "expires_in": a number, or digits in a string; anything else is -1, "not
 * known". */
static tsesim_code take_token(tsesim_client *c, const char *what, const char *name, long status,
                              char **out, long *expires_in) {
  json_t *root = NULL, *tok, *exp;
  size_t bad;
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
    if (json_is_integer(exp) && json_integer_value(exp) > 0 && json_integer_value(exp) < 100000000)
      *expires_in = (long)json_integer_value(exp);
    else if (json_is_string(exp)) {
      const char *p = json_string_value(exp);
      long v = 0;
      for (; *p >= '0' && *p <= '9' && v < 100000000L; p++) v = v * 10 + (*p - '0');
      if (!*p && v > 0) *expires_in = v;
    }
  }
  bad = first_bad_byte(json_string_value(tok), json_string_length(tok), 0x21);
  if (bad < json_string_length(tok)) { /* it would break the header it goes into */
    unsigned char b = (unsigned char)json_string_value(tok)[bad];
    wipe_json_string(tok);
    json_decref(root);
    wipe_resp(c);
    tsesim__client_fail(c,
                        "%s: the %ld answer's %s is not usable: %s 0x%02X at byte %lu (a "
                        "token is printable ASCII); it was not kept",
                        what, status, name, byte_kind(b), b, (unsigned long)bad + 1);
    return TSESIM_E_HTTP;
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
    tsesim__client_fail(c,
                        "the M2M login was refused earlier: not trying again (a user is "
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
    if (o->user_agent)
      snprintf(agent, sizeof agent, "libtsesim/%s %s", TSESIM_VERSION_STR, o->user_agent);
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
    tsesim__errbuf_set(errbuf, "out of memory");
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

/* The renewal that followed an answer (a 401 fault, SessionToken.Expired)
 * failed with a code that reads as "nothing was sent", or the replay was not
 * sent: the call was sent and answered, so the answer decides. last_error
 * becomes that answer again, and errmsg says both. */
static tsesim_code answer_stands(tsesim_client *c, const char *what, tsesim_api_error *answer,
                                 const char *step) {
  char why[TSESIM_ERRBUF_SIZE], tail[TSESIM_ERRBUF_SIZE];
  snprintf(why, sizeof why, "%s", c->errmsg);
  tsesim_api_error_free(c->last_error);
  c->last_error = answer;
  snprintf(tail, sizeof tail, "; then %s failed: %.200s", step, why);
  describe_answer(c, what, answer->http_status, tail);
  return TSESIM_E_API;
}

/* A call on an /m2m path with the session: tokens obtained as needed, one
 * new access token and replay on a 401 gateway fault, one new login and
 * replay on SessionToken.Expired. TSESIM_OK with a 2xx *status, else the
 * failure (last_error and errmsg set). Once the call has an answer, a later
 * failure that reads as "not sent" gives the answer's code instead. */
static tsesim_code m2m_call(tsesim_client *c, const char *method, const char *path,
                            const char *body, size_t len, int no_resend, const char *what,
                            long *status) {
  int new_access = 0, new_session = 0;
  tsesim_api_error *answer = NULL; /* the answer a renewal and replay follow */
  const char *step = NULL;
  tsesim_code rc;
  for (;;) {
    if ((rc = ensure_access(c)) == TSESIM_OK && !c->session_token) rc = fetch_session(c);
    if (rc == TSESIM_OK)
      rc = send_with_retries(c, method, path, body, len, TSESIM__AUTH_SESSION, no_resend, status);
    else if (answer)
      step = new_session ? "logging in again" : "fetching a new access token";
    if (rc != TSESIM_OK) {
      if (answer && reads_as_not_sent(rc))
        return answer_stands(c, what, answer, step ? step : "the replay");
      tsesim_api_error_free(answer);
      return rc;
    }
    tsesim_api_error_free(answer);
    answer = NULL;
    if (*status >= 200 && *status < 300) return TSESIM_OK;
    set_last_error(c, *status);
    if (gateway_fault(c, *status) && !new_access) {
      new_access = 1;
      tsesim__client_log(c, 1, "%s: access token refused; fetching a new one, once", what);
      drop_access(c);
      answer = c->last_error;
      c->last_error = NULL;
      continue;
    }
    if (c->last_error && ends_with(c->last_error->code, "SessionToken.Expired") && !new_session) {
      new_session = 1;
      tsesim__client_log(c, 1, "%s: session expired; logging in again, once", what);
      drop_session(c);
      answer = c->last_error;
      c->last_error = NULL;
      continue;
    }
    return api_failure(c, what, *status);
  }
}

/* The longest requestId accepted from the download's answer. */
#define REQUEST_ID_MAX 128

/* Reads the requestId of a 2xx download answer into id (REQUEST_ID_MAX + 1
 * bytes, allocated before the download was sent). The download has been
 * accepted, so a failure to read it is never "nothing happened": an
 * unusable answer is TSESIM_E_HTTP, a lack of memory
 * TSESIM_E_UNKNOWN_OUTCOME. */
static tsesim_code read_request_id(tsesim_client *c, long status, size_t n, char *id) {
  json_t *root = NULL, *v = NULL;
  char err[TSESIM_ERRBUF_SIZE], shown[SERVER_TEXT_MAX * 4 + 8];
  const char *s;
  size_t len, bad;
  tsesim_code rc = tsesim__json_load(&root, c->resp, c->resp_len, err);
  if (rc == TSESIM_E_NOMEM) {
    tsesim__client_fail(c,
                        "download of %lu device%s: accepted (HTTP %ld), but the requestId "
                        "could not be read: out of memory; do not send it again",
                        (unsigned long)n, n == 1 ? "" : "s", status);
    return TSESIM_E_UNKNOWN_OUTCOME;
  }
  if (rc == TSESIM_OK) {
    if (!json_is_object(root))
      snprintf(err, sizeof err, "top level: expected an object, got %s",
               tsesim__json_type_name(root));
    else if (!(v = json_object_get(root, "requestId")))
      snprintf(err, sizeof err, "requestId: missing");
    else if (!json_is_string(v))
      snprintf(err, sizeof err, "requestId: expected a string, got %s", tsesim__json_type_name(v));
  }
  if (!json_is_string(v)) { /* jansson's message may quote the answer: escaped */
    json_decref(root);
    set_last_error(c, status);
    tsesim__quote(shown, sizeof shown, err, SERVER_TEXT_MAX * 2);
    tsesim__client_fail(c, "download: %ld answer without a requestId: %s", status, shown);
    return TSESIM_E_HTTP;
  }
  s = json_string_value(v);
  len = json_string_length(v);
  bad = first_bad_byte(s, len, 0x21);
  if (len == 0)
    snprintf(err, sizeof err, "empty");
  else if (len > REQUEST_ID_MAX)
    snprintf(err, sizeof err, "%lu bytes, at most %d", (unsigned long)len, REQUEST_ID_MAX);
  else if (bad < len)
    snprintf(err, sizeof err, "%s 0x%02X at byte %lu (a requestId is printable ASCII)",
             byte_kind((unsigned char)s[bad]), (unsigned char)s[bad], (unsigned long)bad + 1);
  else
    memcpy(id, s, len + 1);
  json_decref(root);
  if (len == 0 || len > REQUEST_ID_MAX || bad < len) {
    set_last_error(c, status);
    tsesim__client_fail(c,
                        "download of %lu device%s: accepted (HTTP %ld), but its requestId is "
                        "not usable: %s",
                        (unsigned long)n, n == 1 ? "" : "s", status, err);
    return TSESIM_E_HTTP;
  }
  return TSESIM_OK;
}

tsesim_code tsesim_client_download(char **out_request_id, tsesim_client *c,
                                   const tsesim_request *req) {
  char *body = NULL, *id;
  size_t len = 0, n;
  long status;
  tsesim_code rc;
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
  /* Whatever the answer needs is allocated before anything is sent: once the
   * download has gone out, a lack of memory must not read as "not sent". */
  if (!(id = tsesim__malloc(REQUEST_ID_MAX + 1))) {
    tsesim_free(body);
    tsesim__client_fail(c, "download: out of memory");
    return done(c, TSESIM_E_NOMEM);
  }
  rc = m2m_call(c, "POST", P_DOWNLOAD, body, len, 1, "download", &status);
  if (rc == TSESIM_E_UNKNOWN_OUTCOME) {
    tsesim__client_fail(c,
                        "download of %lu device%s: sent, but no complete answer came; it "
                        "may have been acted on, so it was not sent again",
                        (unsigned long)n, n == 1 ? "" : "s");
  } else if (rc == TSESIM_OK) {
    rc = read_request_id(c, status, n, id);
  }
  tsesim_free(body);
  if (rc == TSESIM_OK)
    *out_request_id = id;
  else
    tsesim__free(id);
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
    /* guarded like the download: once sent, never re-sent, and a failure after
     * sending is an unknown outcome */
    rc = m2m_call(c, "POST", path, body, strlen(body), 1, "register callback", &status);
    if (rc == TSESIM_E_UNKNOWN_OUTCOME)
      tsesim__client_fail(c,
                          "register callback: sent, but no complete answer came; it may "
                          "have been acted on, so it was not sent again");
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
