/*
 * client_call.c - the client's blocking flows: one request with the safe
 * retries, the tokens (lazy, renewed, refusals remembered), the calls on
 * /m2m paths with their one renewal and replay, and the public calls made
 * of them: login, logout, download, callback registration.
 *
 * Each exchange is one transfer (transport_curl.c) driven to its end on the
 * client's multi handle; retry.c decides whether to send it again; auth.c
 * holds the tokens. The renewal replays (a 401 gateway fault: a new access
 * token; SessionToken.Expired: a new login) happen once each, on top of the
 * retries, in one place: call().
 */
#include <stdio.h>
#include <string.h>

#define TSESIM__WITH_CURL
#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

#define P_TOKEN "/ts/v1/oauth2/token"
#define P_LOGIN "/m2m/v1/session/login"
#define P_LOGOUT "/m2m/v1/session/logout"
#define P_DOWNLOAD "/m2m/v1/devices/profile/actions/download"

/* The server's own text that reaches errmsg and the log: at most this many
 * of its bytes per field, control characters and the rest escaped as \xNN
 * (tsesim__quote), "..." when cut. last_error.body keeps the raw answer. */
#define SERVER_TEXT_MAX 100

static int ends_with(const char *s, const char *tail) {
  size_t n, t;
  if (!s) return 0;
  n = strlen(s);
  t = strlen(tail);
  return n >= t && strcmp(s + n - t, tail) == 0;
}

tsesim_code tsesim__client_set_last_error(tsesim_client *c, const tsesim__transfer *t,
                                          long status) {
  tsesim_api_error *e = NULL;
  tsesim_code rc;
  tsesim_api_error_free(c->last_error);
  c->last_error = NULL;
  rc = tsesim_api_error_parse(&e, status, t->resp, t->resp_len);
  if (rc == TSESIM_OK) {
    e->retry_after = t->retry_after;
    c->last_error = e;
  }
  return rc;
}

int tsesim__client_gateway_fault(const tsesim_client *c, long status) {
  const tsesim_api_error *e = c->last_error;
  return status == 401 && e && e->body && strstr(e->body, "\"fault\"") != NULL && e->code;
}

int tsesim__client_session_expired(const tsesim_client *c) {
  return c->last_error && ends_with(c->last_error->code, "SessionToken.Expired");
}

void tsesim__client_describe_into(const tsesim_client *c, char *dst, const char *what, long status,
                                  const char *tail) {
  const tsesim_api_error *e = c->last_error;
  char code[SERVER_TEXT_MAX * 4 + 8] = "(no code)", msg[SERVER_TEXT_MAX * 4 + 8] = "";
  if (e && e->code) tsesim__quote(code, sizeof code, e->code, SERVER_TEXT_MAX);
  if (e && e->message) tsesim__quote(msg, sizeof msg, e->message, SERVER_TEXT_MAX);
  tsesim__errbuf_set(dst, "%s: %ld %s%s%s%s", what, status, code, msg[0] ? ": " : "", msg, tail);
}

void tsesim__client_describe(tsesim_client *c, const char *what, long status, const char *tail) {
  tsesim__client_describe_into(c, c->errmsg, what, status, tail);
  tsesim__client_log(c, 0, "%s", c->errmsg);
}

/* A non-2xx answer that is not handled by the caller. */
static tsesim_code api_failure(tsesim_client *c, const char *what, long status) {
  tsesim__client_set_last_error(c, &c->xfer, status);
  if (status >= 300 && status < 400) {
    tsesim__client_fail(c, "%s: redirected (%ld); redirects are never followed", what, status);
    return TSESIM_E_HTTP;
  }
  tsesim__client_describe(c, what, status, "");
  return TSESIM_E_API;
}

/* ---- one request with the safe retries ---- */
static tsesim_code send_with_retries(tsesim_client *c, const char *method, const char *path,
                                     const char *body, size_t len, tsesim__auth_kind kind,
                                     int no_resend, long *status) {
  tsesim__transfer *t = &c->xfer;
  long answered = 0; /* the status of an earlier 429 or 503 answer */
  unsigned attempt;
  *status = 0;
  for (attempt = 1;; attempt++) {
    char *lines[TSESIM__AUTH_LINES], why[TSESIM_ERRBUF_SIZE];
    size_t n = 0;
    tsesim__attempt a;
    tsesim__retry r;
    if (tsesim__auth_headers(&c->auth, kind, lines, &n) == TSESIM_OK) {
      /* a failure to start is recorded in t as an outcome: NOMEM, nothing sent */
      if (tsesim__transfer_start(t, method, c->base_url, path, lines, n, body, len, no_resend) ==
          TSESIM_OK)
        tsesim__net_run(&c->net, t, -1);
      tsesim__auth_headers_free(lines, n);
      tsesim__client_attempt(c, t, attempt, answered, no_resend, &a);
      if (a.rc != TSESIM_OK) tsesim__client_fail(c, "%s", t->errmsg);
    } else {
      tsesim__client_attempt(c, NULL, attempt, answered, no_resend, &a);
      tsesim__client_fail(c, "%s %s: out of memory", method, path);
    }
    r = tsesim__retry_decide(&a, tsesim__random_next(&c->rng));
    if (r.action == TSESIM__RETRY_ANSWER) {
      *status = a.status;
      return TSESIM_OK;
    }
    if (a.rc == TSESIM_OK) { /* 429 or 503 */
      answered = a.status;
      tsesim__client_set_last_error(c, t, a.status);
    } else if (r.why != TSESIM__WHY_NEXT_NOT_SENT) {
      tsesim_api_error_free(c->last_error); /* this failure had no HTTP answer */
      c->last_error = NULL;
    }
    if (r.action == TSESIM__RETRY_FAIL) {
      snprintf(why, sizeof why, "%s", c->errmsg);
      if (r.why == TSESIM__WHY_NEXT_NOT_SENT)
        tsesim__client_fail(c,
                            "%s %s: %ld on attempt %u, then the next attempt was not sent "
                            "(%s)",
                            method, path, answered, attempt - 1, why);
      else if (r.why == TSESIM__WHY_LAST_NOT_SENT)
        tsesim__client_fail(c, "%s %s: %ld, then the last attempt was not sent (%s)", method, path,
                            answered, why);
      else if (r.why == TSESIM__WHY_STILL_BUSY)
        tsesim__client_fail(c, "%s %s: still %ld after %u attempts", method, path, a.status,
                            c->max_attempts);
      return r.code;
    }
    tsesim__client_log(c, 1, "%s %s: %s; retrying in %ld ms (attempt %u of %u)", method, path,
                       a.rc == TSESIM_OK ? (a.status == 429 ? "429" : "503") : "nothing was sent",
                       r.wait_ms, attempt + 1, c->max_attempts);
    tsesim__client_wait(c, r.wait_ms);
  }
}

/* A token out of the answer: errmsg (and the log) say why when it fails. */
static tsesim_code take_token(tsesim_client *c, const char *what, const char *name, char **out,
                              long *expires_in) {
  char err[TSESIM_ERRBUF_SIZE];
  tsesim_code rc = tsesim__auth_take_token(&c->xfer, what, name, out, expires_in, err);
  if (rc != TSESIM_OK) tsesim__client_fail(c, "%s", err);
  return rc;
}

static tsesim_code call(tsesim_client *c, const char *method, const char *path, const char *body,
                        size_t len, tsesim__auth_kind kind, int flags, const char *what,
                        long *status);
#define CALL_NO_RESEND 1     /* never sent twice; a failure after sending is UNKNOWN_OUTCOME */
#define CALL_RENEW_SESSION 2 /* SessionToken.Expired: log in again, once, and replay */

/* ---- the access token ---- */
static tsesim_code fetch_access(tsesim_client *c) {
  static const char form[] = "grant_type=client_credentials";
  long status, expires_in;
  char *tok;
  tsesim_code rc;
  if (c->auth.oauth_refused) {
    tsesim__client_fail(c, "the OAuth client was refused earlier: not asking again");
    return TSESIM_E_AUTH;
  }
  if (!c->auth.client_id) {
    tsesim__client_fail(c, "the access token is not usable and no OAuth client is set");
    return TSESIM_E_AUTH;
  }
  rc = send_with_retries(c, "POST", P_TOKEN, form, sizeof form - 1, TSESIM__AUTH_BASIC, 0, &status);
  if (rc != TSESIM_OK) return rc;
  if (status >= 400 && status < 500) {
    api_failure(c, "token", status);
    c->auth.oauth_refused = 1;
    return TSESIM_E_AUTH;
  }
  if (status < 200 || status >= 300) return api_failure(c, "token", status);
  if ((rc = take_token(c, "token", "access_token", &tok, &expires_in)) != TSESIM_OK) return rc;
  tsesim__auth_set_access(&c->auth, tok, expires_in, tsesim__now_ms(c));
  return TSESIM_OK;
}

/* ---- the session ---- */
static tsesim_code fetch_session(tsesim_client *c) {
  const char *creds[4];
  char *body, *tok;
  long status;
  tsesim_code rc;
  if (c->auth.login_refused) {
    tsesim__client_fail(c,
                        "the M2M login was refused earlier: not trying again (a user is "
                        "locked after 5 failures)");
    return TSESIM_E_AUTH;
  }
  if (!c->auth.username) {
    tsesim__client_fail(c, "the session token is not usable and no M2M user is set");
    return TSESIM_E_AUTH;
  }
  creds[0] = "username";
  creds[1] = c->auth.username;
  creds[2] = "password";
  creds[3] = c->auth.password;
  if (!(body = tsesim__json_strings(creds, 2))) {
    tsesim__client_fail(c, "login: out of memory");
    return TSESIM_E_NOMEM;
  }
  rc = call(c, "POST", P_LOGIN, body, strlen(body), TSESIM__AUTH_BEARER, 0, "login", &status);
  tsesim__free_secret(body); /* it holds the password */
  if (rc == TSESIM_E_API && status >= 400 && status < 500 &&
      !tsesim__client_gateway_fault(c, status)) {
    c->auth.login_refused = 1;
    return TSESIM_E_AUTH;
  }
  if (rc != TSESIM_OK) return rc;
  if ((rc = take_token(c, "login", "sessionToken", &tok, NULL)) != TSESIM_OK) return rc;
  tsesim__auth_set_session(&c->auth, tok);
  return TSESIM_OK;
}

tsesim_code tsesim__client_tokens(tsesim_client *c, tsesim__auth_kind kind) {
  tsesim_code rc = TSESIM_OK;
  if (kind == TSESIM__AUTH_BASIC) return TSESIM_OK;
  if (tsesim__auth_access_stale(&c->auth, tsesim__now_ms(c))) rc = fetch_access(c);
  if (rc == TSESIM_OK && kind == TSESIM__AUTH_SESSION && !c->auth.session_token)
    rc = fetch_session(c);
  return rc;
}

/* The renewal that followed an answer (a 401 fault, SessionToken.Expired)
 * failed with a code that reads as "nothing was sent", or the replay was not
 * sent: the call was sent and answered, so the answer decides. last_error
 * becomes that answer again, and errmsg says both. */
static tsesim_code answer_stands(tsesim_client *c, const char *what, tsesim_api_error *answer,
                                 const char *step, long *status) {
  char why[TSESIM_ERRBUF_SIZE], tail[TSESIM_ERRBUF_SIZE];
  snprintf(why, sizeof why, "%s", c->errmsg);
  tsesim_api_error_free(c->last_error);
  c->last_error = answer;
  *status = answer->http_status;
  snprintf(tail, sizeof tail, "; then %s failed: %.200s", step, why);
  tsesim__client_describe(c, what, answer->http_status, tail);
  return TSESIM_E_API;
}

/* A call with the tokens its kind needs, obtained as needed: one new access
 * token and replay on a 401 gateway fault, and (CALL_RENEW_SESSION) one new
 * login and replay on SessionToken.Expired. TSESIM_OK with a 2xx *status;
 * else the failure, with last_error, errmsg and *status (0 when no answer)
 * set. Once the call has an answer, a later failure that reads as "not
 * sent" gives the answer's code instead. */
static tsesim_code call(tsesim_client *c, const char *method, const char *path, const char *body,
                        size_t len, tsesim__auth_kind kind, int flags, const char *what,
                        long *status) {
  int new_access = 0, new_session = 0;
  tsesim_api_error *answer = NULL; /* the answer a renewal and replay follow */
  const char *step = NULL;
  tsesim_code rc;
  for (;;) {
    *status = 0;
    rc = tsesim__client_tokens(c, kind);
    if (rc == TSESIM_OK)
      rc = send_with_retries(c, method, path, body, len, kind, flags & CALL_NO_RESEND, status);
    else if (answer)
      step = new_session ? "logging in again" : "fetching a new access token";
    if (rc != TSESIM_OK) {
      if (answer && tsesim__reads_as_not_sent(rc))
        return answer_stands(c, what, answer, step ? step : "the replay", status);
      tsesim_api_error_free(answer);
      return rc;
    }
    tsesim_api_error_free(answer);
    answer = NULL;
    if (*status >= 200 && *status < 300) return TSESIM_OK;
    tsesim__client_set_last_error(c, &c->xfer, *status);
    if (tsesim__client_gateway_fault(c, *status) && !new_access) {
      new_access = 1;
      tsesim__client_log(c, 1, "%s: access token refused; fetching a new one, once", what);
      tsesim__auth_drop_access(&c->auth);
    } else if ((flags & CALL_RENEW_SESSION) && tsesim__client_session_expired(c) && !new_session) {
      new_session = 1;
      tsesim__client_log(c, 1, "%s: session expired; logging in again, once", what);
      tsesim__auth_drop_session(&c->auth);
    } else {
      return api_failure(c, what, *status);
    }
    answer = c->last_error;
    c->last_error = NULL;
  }
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
  if (!c) return TSESIM_E_INVAL;
  begin_call(c);
  return done(c, tsesim__client_tokens(c, TSESIM__AUTH_SESSION));
}

tsesim_code tsesim_client_logout(tsesim_client *c) {
  long status;
  tsesim_code rc;
  if (!c) return TSESIM_E_INVAL;
  begin_call(c);
  if (!c->auth.session_token) return TSESIM_OK;
  rc = call(c, "POST", P_LOGOUT, "", 0, TSESIM__AUTH_SESSION, 0, "logout", &status);
  if (rc == TSESIM_E_API && c->last_error &&
      (ends_with(c->last_error->code, "SessionToken.Expired") ||
       ends_with(c->last_error->code, "SessionToken.Invalid")))
    rc = TSESIM_OK; /* the session is gone already: that is what logout wanted */
  if (rc != TSESIM_OK) return done(c, rc);
  tsesim__auth_drop_session(&c->auth);
  return done(c, TSESIM_OK);
}

/* Reads the requestId of a 2xx download answer into id (allocated before
 * the download was sent). The download has been accepted, so a failure to
 * read it is never "nothing happened": an unusable answer is TSESIM_E_HTTP,
 * a lack of memory TSESIM_E_UNKNOWN_OUTCOME. */
static tsesim_code read_request_id(tsesim_client *c, long status, size_t n, char *id) {
  char err[TSESIM_ERRBUF_SIZE], shown[SERVER_TEXT_MAX * 4 + 8];
  tsesim_code rc = tsesim__request_id_read(c->xfer.resp, c->xfer.resp_len, id, err);
  if (rc == TSESIM_OK) return rc;
  if (rc == TSESIM_E_NOMEM) {
    tsesim__client_fail(c,
                        "download of %lu device%s: accepted (HTTP %ld), but the requestId "
                        "could not be read: out of memory; do not send it again",
                        (unsigned long)n, n == 1 ? "" : "s", status);
    return TSESIM_E_UNKNOWN_OUTCOME;
  }
  tsesim__client_set_last_error(c, &c->xfer, status);
  if (rc == TSESIM_E_PARSE) { /* jansson's message may quote the answer: escaped */
    tsesim__quote(shown, sizeof shown, err, SERVER_TEXT_MAX * 2);
    tsesim__client_fail(c, "download: %ld answer without a requestId: %s", status, shown);
  } else {
    tsesim__client_fail(c,
                        "download of %lu device%s: accepted (HTTP %ld), but its requestId is "
                        "not usable: %s",
                        (unsigned long)n, n == 1 ? "" : "s", status, err);
  }
  return TSESIM_E_HTTP;
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
  if (!(id = tsesim__malloc(TSESIM__REQUEST_ID_MAX + 1))) {
    tsesim_free(body);
    tsesim__client_fail(c, "download: out of memory");
    return done(c, TSESIM_E_NOMEM);
  }
  rc = call(c, "POST", P_DOWNLOAD, body, len, TSESIM__AUTH_SESSION,
            CALL_NO_RESEND | CALL_RENEW_SESSION, "download", &status);
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
  char *a = curl_easy_escape(c->xfer.easy, account, 0), *s = NULL, *path = NULL;
  if (a && (!service || (s = curl_easy_escape(c->xfer.easy, service, 0)))) {
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
    rc = call(c, "POST", path, body, strlen(body), TSESIM__AUTH_SESSION,
              CALL_NO_RESEND | CALL_RENEW_SESSION, "register callback", &status);
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
  rc = call(c, "DELETE", path, "", 0, TSESIM__AUTH_SESSION, CALL_RENEW_SESSION,
            "unregister callback", &status);
  tsesim__free(path);
  return done(c, rc);
}
