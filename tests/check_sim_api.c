/*
 * check_sim_api.c - tsesim-sim's endpoints and rules against /work/sim-spec.md:
 * error shapes, OAuth tokens, login and sessions, callback registrations, every
 * download validation rule in its order, the /_sim/ admin endpoints, options
 * and config files, exit statuses, the request log and TLS.
 */
#include "tt_sim.h"

#define ACCT2 "0000999999-00002"
#define ACCT3 "0000555555-00003"
#define PLAN_SPACE "M2M 5G Plan"

/* sim-user may use TT_ACCOUNT only, other:other-pass ACCT2 only, free:free-pass every account. */
static const char *const users_accounts[] = {"--user",    "sim-user:sim-pass:" TT_ACCOUNT,
                                             "--user",    "other:other-pass:" ACCT2,
                                             "--user",    "free:free-pass",
                                             "--account", TT_ACCOUNT ":" TT_PLAN "," PLAN_SPACE,
                                             "--account", ACCT2 ":OTHER_PLAN",
                                             "--account", ACCT3 ":" TT_PLAN,
                                             NULL};

/* ------------------------------------------------------------------------ */
/* Paths and methods */

START_TEST(test_not_found_and_method) {
  tt_sim *s = tt_sim_start(NULL);
  tt_resp r;
  tt_req(s, &r, "GET", "/api/nope", NULL, NULL);
  tt_expect_error("GET /api/nope", &r, 404, "REQUEST_FAILED.NotFound", NULL);
  tt_resp_free(&r);
  tt_req(s, &r, "POST", "/api/ts/v1/nope", NULL, "x");
  tt_expect_error("POST /api/ts/v1/nope", &r, 404, "REQUEST_FAILED.NotFound", NULL);
  tt_resp_free(&r);
  tt_stats_expect(s, "after 404s", TT_ST("requests.other", 2), NULL);
  tt_req(s, &r, "GET", TT_TOKEN, NULL, NULL);
  tt_expect_error("GET token", &r, 405, "REQUEST_FAILED.MethodNotAllowed", NULL);
  tt_resp_free(&r);
  tt_req(s, &r, "PUT", TT_DOWNLOAD, NULL, "{}");
  tt_expect_error("PUT download", &r, 405, "REQUEST_FAILED.MethodNotAllowed", NULL);
  tt_resp_free(&r);
  tt_req(s, &r, "DELETE", TT_LOGIN, NULL, NULL);
  tt_expect_error("DELETE login", &r, 405, "REQUEST_FAILED.MethodNotAllowed", NULL);
  tt_resp_free(&r);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_body_too_large) {
  tt_sim *s = tt_sim_start(NULL);
  size_t n = 32u * 1024 * 1024 + 1;
  char *big = malloc(n + 1);
  tt_auth a;
  tt_resp r;
  tt_auth_get(s, &a);
  ck_assert_ptr_nonnull(big);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  big[n] = '\0';
  tt_download_req(s, &r, &a, big);
  tt_expect_error("32 MiB + 1 body", &r, 413, "INPUT_INVALID.Body.TooLarge", NULL);
  tt_resp_free(&r);
  tt_stats_expect(s, "after 413", TT_ST("downloads.accepted", 0), NULL);
  free(big);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* OAuth token */

START_TEST(test_token_bad_client) {
  static const struct {
    const char *name, *auth;
  } cases[] = {
      {"no Authorization", NULL},
      {"Basic without credentials", "Authorization: Basic"},
      {"Basic not base64", "Authorization: Basic %%%not-base64%%%"},
      /* the credentials: sim-keysim-secret, sim-key:sim-secret, no-key:sim-secret,
       * sim-key:sim-secrex */
      {"Basic without colon", "Authorization: Basic c2ltLWtleXNpbS1zZWNyZXQ="},
      {"Bearer instead of Basic", "Authorization: Bearer c2ltLWtleTpzaW0tc2VjcmV0"},
      {"unknown key", "Authorization: Basic bm8ta2V5OnNpbS1zZWNyZXQ="},
      {"wrong secret", "Authorization: Basic c2ltLWtleTpzaW0tc2VjcmV4"},
  };
  tt_sim *s = tt_sim_start(NULL);
  size_t i;
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", cases[i].auth, NULL};
    tt_resp r;
    tt_req(s, &r, "POST", TT_TOKEN, h, "grant_type=client_credentials");
    tt_expect_oauth(cases[i].name, &r, 401, "invalid_client");
    ck_assert_msg(strcmp(r.www_auth, "Basic realm=\"ThingSpace\"") == 0,
                  "%s: WWW-Authenticate \"%s\"", cases[i].name, r.www_auth);
    tt_resp_free(&r);
  }
  tt_stats_expect(s, "bad clients", TT_ST("requests.token", ARRAY_LEN(cases)),
                  TT_ST("tokens.refused", ARRAY_LEN(cases)), TT_ST("tokens.issued", 0), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static char *token_of(const tt_sim *s, const char *key, const char *secret) {
  tt_resp r;
  json_t *j;
  char *tok;
  tt_token_req(s, &r, key, secret, "grant_type=client_credentials");
  tt_expect_status(key, &r, 200);
  j = tt_json(key, &r);
  tok = strdup(tt_jstr(j, "access_token"));
  json_decref(j);
  tt_resp_free(&r);
  return tok;
}

START_TEST(test_token_grant) {
  tt_sim *s = tt_sim_start((const char *[]){"--client", "k2:s2", "--client", "k3:s3", NULL});
  char *t2, *t3;
  tt_resp r;
  tt_token_req(s, &r, "k2", "s2", "");
  tt_expect_oauth("empty form", &r, 400, "invalid_request");
  tt_resp_free(&r);
  tt_token_req(s, &r, "k2", "s2", "scope=x");
  tt_expect_oauth("no grant_type", &r, 400, "invalid_request");
  tt_resp_free(&r);
  tt_token_req(s, &r, "k2", "s2", "grant_type=password");
  tt_expect_oauth("grant_type=password", &r, 400, "unsupported_grant_type");
  tt_resp_free(&r);
  /* --client replaced the default client */
  tt_token_req(s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_oauth("default client replaced", &r, 401, "invalid_client");
  tt_resp_free(&r);
  tt_token_req(s, &r, "k2", "s2", "grant_type=client_credentials");
  tt_expect_status("k2 token", &r, 200);
  tt_resp_free(&r);
  tt_stats_expect(s, "grants", TT_ST("tokens.issued", 1), TT_ST("tokens.reused", 0),
                  TT_ST("tokens.refused", 4), TT_ST("requests.token", 5), NULL);
  /* each client has its own token */
  t2 = token_of(s, "k2", "s2");
  t3 = token_of(s, "k3", "s3");
  ck_assert_str_ne(t2, t3);
  free(t2);
  free(t3);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_token_reuse) {
  tt_sim *s = tt_sim_start(NULL);
  tt_resp r;
  json_t *j1, *j2;
  json_int_t e2;
  tt_token_req(s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_status("first token", &r, 200);
  j1 = tt_json("first token", &r);
  tt_resp_free(&r);
  ck_assert_msg(tt_is_uuid4(tt_jstr(j1, "access_token")), "access_token not a uuid v4");
  tt_expect_str("first token", "token_type", tt_jstr(j1, "token_type"), "bearer");
  ck_assert_msg(json_is_integer(json_object_get(j1, "expires_in")), "expires_in not an integer");
  ck_assert_int_eq(json_integer_value(json_object_get(j1, "expires_in")), 3600);
  ck_assert_msg(json_is_string(json_object_get(j1, "scope")), "scope not a string");
  ck_assert_uint_eq(json_object_size(j1), 4);

  tt_token_req(s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_status("second token", &r, 200);
  j2 = tt_json("second token", &r);
  tt_resp_free(&r);
  tt_expect_str("second token", "access_token", tt_jstr(j2, "access_token"),
                tt_jstr(j1, "access_token"));
  e2 = json_integer_value(json_object_get(j2, "expires_in"));
  ck_assert_msg(e2 <= 3600 && e2 >= 3595, "second expires_in %lld", (long long)e2);
  tt_stats_expect(s, "reuse", TT_ST("tokens.issued", 1), TT_ST("tokens.reused", 1),
                  TT_ST("tokens.refused", 0), TT_ST("requests.token", 2), NULL);
  json_decref(j1);
  json_decref(j2);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_token_expiry) {
  tt_sim *s = tt_sim_start((const char *[]){"--token-lifetime", "0.3", NULL});
  tt_resp r;
  json_t *j;
  char *old, *fresh, *sess;
  tt_token_req(s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_status("token", &r, 200);
  j = tt_json("token", &r);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "expires_in")), 1); /* 0.3 rounded up */
  old = strdup(tt_jstr(j, "access_token"));
  json_decref(j);
  tt_resp_free(&r);
  tt_sleep(0.5);
  fresh = tt_get_token(s);
  ck_assert_str_ne(old, fresh);
  tt_login_req(s, &r, old, "sim-user", "sim-pass");
  tt_expect_fault("login with expired token", &r, "900901", "Invalid Credentials");
  tt_resp_free(&r);
  sess = tt_login_as(s, fresh, "sim-user", "sim-pass");
  tt_stats_expect(s, "expiry", TT_ST("tokens.issued", 2), TT_ST("tokens.reused", 0), NULL);
  free(old);
  free(fresh);
  free(sess);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bearer and session checks, login, logout */

#define LOGIN_BODY "{\"username\":\"sim-user\",\"password\":\"sim-pass\"}"
#define REG_BODY "{\"name\":\"DeviceProfileService\",\"url\":\"http://127.0.0.1:9/\"}"

static const struct {
  const char *method, *path, *body;
} m2m_paths[] = {
    {"POST", TT_LOGIN, LOGIN_BODY},
    {"POST", TT_LOGOUT, NULL},
    {"GET", TT_CALLBACKS TT_ACCOUNT, NULL},
    {"POST", TT_CALLBACKS TT_ACCOUNT, REG_BODY},
    {"DELETE", TT_CALLBACKS TT_ACCOUNT "/name/" TT_SERVICE, NULL},
    {"POST", TT_DOWNLOAD, "{}"},
};

START_TEST(test_bearer_checks) {
  tt_sim *s = tt_sim_start(NULL);
  size_t i;
  for (i = 0; i < ARRAY_LEN(m2m_paths); i++) {
    const char *m = m2m_paths[i].method, *p = m2m_paths[i].path, *b = m2m_paths[i].body;
    char ctx[200];
    tt_resp r;
    snprintf(ctx, sizeof ctx, "%s %s without Authorization", m, p);
    tt_m2m(s, &r, m, p, NULL, NULL, b);
    tt_expect_fault(ctx, &r, "900902", "Missing Credentials");
    tt_resp_free(&r);
    snprintf(ctx, sizeof ctx, "%s %s with Basic", m, p);
    tt_req(s, &r, m, p, (const char *[]){"Authorization: Basic c2ltLWtleTpzaW0tc2VjcmV0", NULL}, b);
    tt_expect_fault(ctx, &r, "900902", "Missing Credentials");
    tt_resp_free(&r);
    snprintf(ctx, sizeof ctx, "%s %s with an unknown token", m, p);
    tt_m2m(s, &r, m, p, "6f1c7a52-95a3-4c8e-9d0e-1b2c3d4e5f60", NULL, b);
    tt_expect_fault(ctx, &r, "900901", "Invalid Credentials");
    tt_resp_free(&r);
  }
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_session_checks) {
  tt_sim *s = tt_sim_start(NULL);
  char *tok = tt_get_token(s);
  size_t i;
  for (i = 1; i < ARRAY_LEN(m2m_paths); i++) { /* all but login */
    const char *m = m2m_paths[i].method, *p = m2m_paths[i].path, *b = m2m_paths[i].body;
    char ctx[200];
    tt_resp r;
    snprintf(ctx, sizeof ctx, "%s %s without session", m, p);
    tt_m2m(s, &r, m, p, tok, NULL, b);
    tt_expect_error(ctx, &r, 400, "INPUT_INVALID.SessionToken.Missing", NULL);
    tt_resp_free(&r);
    snprintf(ctx, sizeof ctx, "%s %s with an unknown session", m, p);
    tt_m2m(s, &r, m, p, tok, "0b8e5d52-95a3-4c8e-9d0e-1b2c3d4e5f60", b);
    tt_expect_error(ctx, &r, 400, "INPUT_INVALID.SessionToken.Invalid", NULL);
    tt_resp_free(&r);
  }
  free(tok);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_login_body) {
  static const char *const bodies[] = {
      "not json",
      "[]",
      "{\"username\":\"sim-user\"}",
      "{\"password\":\"sim-pass\"}",
      "{\"username\":5,\"password\":\"sim-pass\"}",
      "{\"username\":\"sim-user\",\"password\":null}",
  };
  tt_sim *s = tt_sim_start(NULL);
  char *tok = tt_get_token(s);
  size_t i;
  for (i = 0; i < ARRAY_LEN(bodies); i++) {
    tt_resp r;
    tt_m2m(s, &r, "POST", TT_LOGIN, tok, NULL, bodies[i]);
    tt_expect_error(bodies[i], &r, 400, "INPUT_INVALID.Body.Invalid", NULL);
    tt_resp_free(&r);
  }
  tt_stats_expect(s, "bad login bodies", TT_ST("logins.ok", 0),
                  TT_ST("requests.login", ARRAY_LEN(bodies)), NULL);
  free(tok);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static void login_expect(const tt_sim *s, const char *tok, const char *user, const char *pass,
                         const char *code, int attempt) {
  char ctx[160];
  tt_resp r;
  snprintf(ctx, sizeof ctx, "login %d as %s/%s", attempt, user, pass);
  tt_login_req(s, &r, tok, user, pass);
  if (code) {
    tt_expect_error(ctx, &r, 400, code, NULL);
  } else {
    tt_expect_status(ctx, &r, 200);
  }
  tt_resp_free(&r);
}

START_TEST(test_login_lockout) {
  tt_sim *s = tt_sim_start(users_accounts);
  char *tok = tt_get_token(s);
  const char *bad = "REQUEST_FAILED.Login.InvalidCredentials";
  int i, n = 0;
  for (i = 0; i < 4; i++) login_expect(s, tok, "sim-user", "wrong", bad, ++n);
  login_expect(s, tok, "sim-user", "sim-pass", NULL, ++n); /* resets the count */
  for (i = 0; i < 5; i++) login_expect(s, tok, "sim-user", "wrong", bad, ++n);
  login_expect(s, tok, "sim-user", "sim-pass", "REQUEST_FAILED.User.Locked", ++n);
  login_expect(s, tok, "sim-user", "wrong", "REQUEST_FAILED.User.Locked", ++n);
  login_expect(s, tok, "nobody", "x", bad, ++n);
  login_expect(s, tok, "other", "other-pass", NULL, ++n); /* another user is not locked */
  tt_stats_expect(s, "lockout", TT_ST("logins.ok", 2), TT_ST("logins.refused", 10),
                  TT_ST("logins.locked", 2), TT_ST("requests.login", n), NULL);
  free(tok);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_lock_after_option) {
  tt_sim *s = tt_sim_start((const char *[]){"--lock-after", "2", NULL});
  char *tok = tt_get_token(s);
  const char *bad = "REQUEST_FAILED.Login.InvalidCredentials";
  login_expect(s, tok, "sim-user", "wrong", bad, 1);
  login_expect(s, tok, "sim-user", "wrong", bad, 2);
  login_expect(s, tok, "sim-user", "sim-pass", "REQUEST_FAILED.User.Locked", 3);
  free(tok);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_session_idle) {
  tt_sim *s = tt_sim_start((const char *[]){"--session-idle", "0.4", NULL});
  tt_auth a;
  tt_resp r;
  int i;
  tt_auth_get(s, &a);
  for (i = 0; i < 6; i++) { /* 0.72 s of use, longer than the idle timeout */
    tt_sleep(0.12);
    tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, NULL);
    tt_expect_status("use within the idle time", &r, 200);
    tt_resp_free(&r);
  }
  tt_sleep(0.6);
  tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, NULL);
  tt_expect_error("use after idling", &r, 400, "REQUEST_FAILED.SessionToken.Expired", NULL);
  tt_resp_free(&r);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_logout) {
  tt_sim *s = tt_sim_start(NULL);
  tt_auth a;
  tt_resp r;
  json_t *j;
  char *other;
  tt_auth_get(s, &a);
  other = tt_login_as(s, a.token, "sim-user", "sim-pass");
  ck_assert_str_ne(other, a.session);
  tt_m2m(s, &r, "POST", TT_LOGOUT, a.token, a.session, NULL);
  tt_expect_status("logout", &r, 200);
  j = tt_json("logout", &r);
  tt_expect_str("logout", "sessionToken", tt_jstr(j, "sessionToken"), a.session);
  ck_assert_uint_eq(json_object_size(j), 1);
  json_decref(j);
  tt_resp_free(&r);
  tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, NULL);
  tt_expect_error("use after logout", &r, 400, "INPUT_INVALID.SessionToken.Invalid", NULL);
  tt_resp_free(&r);
  tt_m2m(s, &r, "POST", TT_LOGOUT, a.token, a.session, NULL);
  tt_expect_error("logout twice", &r, 400, "INPUT_INVALID.SessionToken.Invalid", NULL);
  tt_resp_free(&r);
  tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, a.token, other, NULL);
  tt_expect_status("the other session lives", &r, 200);
  tt_resp_free(&r);
  tt_stats_expect(s, "logout", TT_ST("requests.logout", 2), TT_ST("logins.ok", 2), NULL);
  free(other);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Callback registrations */

static json_t *callbacks_list(const tt_sim *s, const tt_auth *a, const char *account) {
  char path[200];
  tt_resp r;
  json_t *j;
  snprintf(path, sizeof path, TT_CALLBACKS "%s", account);
  tt_m2m(s, &r, "GET", path, a->token, a->session, NULL);
  tt_expect_status("list callbacks", &r, 200);
  j = tt_json("list callbacks", &r);
  ck_assert_msg(json_is_array(j), "callbacks list not an array: %s", r.body);
  tt_resp_free(&r);
  return j;
}

START_TEST(test_callbacks_crud) {
  tt_sim *s = tt_sim_start(NULL);
  tt_auth a;
  tt_resp r;
  json_t *l, *want;
  tt_auth_get(s, &a);
  l = callbacks_list(s, &a, TT_ACCOUNT);
  ck_assert_uint_eq(json_array_size(l), 0);
  json_decref(l);
  tt_register(s, &a, TT_ACCOUNT, "http://127.0.0.1:9/one", "u", "p");
  tt_register(s, &a, TT_ACCOUNT, "https://localhost:9/two", NULL, NULL); /* replaces */
  l = callbacks_list(s, &a, TT_ACCOUNT);
  want = json_pack("[{ssssss}]", "accountName", TT_ACCOUNT, "name", TT_SERVICE, "url",
                   "https://localhost:9/two");
  ck_assert_msg(json_equal(l, want), "list after replace: %s", json_dumps(l, JSON_COMPACT));
  json_decref(l);
  json_decref(want);
  tt_register(s, &a, TT_ACCOUNT, "http://127.0.0.1:9/three", "user", "secret-pw");
  l = callbacks_list(s, &a, TT_ACCOUNT);
  want = json_pack("[{ssssss}]", "accountName", TT_ACCOUNT, "name", TT_SERVICE, "url",
                   "http://127.0.0.1:9/three");
  ck_assert_msg(json_equal(l, want), "list shows credentials or is wrong: %s",
                json_dumps(l, JSON_COMPACT));
  json_decref(l);
  json_decref(want);

  tt_m2m(s, &r, "DELETE", TT_CALLBACKS TT_ACCOUNT "/name/" TT_SERVICE, a.token, a.session, NULL);
  tt_expect_status("delete", &r, 200);
  want = json_pack("{ssss}", "accountName", TT_ACCOUNT, "serviceName", TT_SERVICE);
  l = tt_json("delete", &r);
  ck_assert_msg(json_equal(l, want), "delete answer: %s", r.body);
  json_decref(l);
  json_decref(want);
  tt_resp_free(&r);
  l = callbacks_list(s, &a, TT_ACCOUNT);
  ck_assert_uint_eq(json_array_size(l), 0);
  json_decref(l);
  tt_m2m(s, &r, "DELETE", TT_CALLBACKS TT_ACCOUNT "/name/" TT_SERVICE, a.token, a.session, NULL);
  tt_expect_error("delete again", &r, 404, "REQUEST_FAILED.Callback.NotFound", NULL);
  tt_resp_free(&r);
  tt_m2m(s, &r, "DELETE", TT_CALLBACKS TT_ACCOUNT "/name/OtherService", a.token, a.session, NULL);
  tt_expect_error("delete unknown service", &r, 404, "REQUEST_FAILED.Callback.NotFound", NULL);
  tt_resp_free(&r);
  tt_stats_expect(s, "callbacks", TT_ST("requests.callbacks", 10), NULL);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_callbacks_accounts) {
  static const struct {
    const char *method, *path, *code;
  } cases[] = {
      {"GET", TT_CALLBACKS "0000000000-00000", "REQUEST_FAILED.AccountNotFound"},
      {"POST", TT_CALLBACKS "0000000000-00000", "REQUEST_FAILED.AccountNotFound"},
      {"DELETE", TT_CALLBACKS "0000000000-00000/name/" TT_SERVICE,
       "REQUEST_FAILED.AccountNotFound"},
      {"GET", TT_CALLBACKS ACCT2, "REQUEST_FAILED.Account.NotAuthorized"},
      {"POST", TT_CALLBACKS ACCT3, "REQUEST_FAILED.Account.NotAuthorized"},
      {"DELETE", TT_CALLBACKS ACCT2 "/name/" TT_SERVICE, "REQUEST_FAILED.Account.NotAuthorized"},
  };
  tt_sim *s = tt_sim_start(users_accounts);
  tt_auth a, o;
  size_t i;
  json_t *l;
  tt_auth_get(s, &a);
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    tt_resp r;
    const char *body = strcmp(cases[i].method, "POST") == 0 ? REG_BODY : NULL;
    tt_m2m(s, &r, cases[i].method, cases[i].path, a.token, a.session, body);
    tt_expect_error(cases[i].path, &r, 400, cases[i].code, NULL);
    tt_resp_free(&r);
  }
  /* the other user may use ACCT2, and registrations are per account */
  o.token = strdup(a.token);
  o.session = tt_login_as(s, o.token, "other", "other-pass");
  tt_register(s, &o, ACCT2, "http://127.0.0.1:9/acct2", NULL, NULL);
  l = callbacks_list(s, &a, TT_ACCOUNT);
  ck_assert_uint_eq(json_array_size(l), 0);
  json_decref(l);
  tt_auth_free(&o);
  o.token = strdup(a.token);
  o.session = tt_login_as(s, o.token, "free", "free-pass");
  tt_register(s, &o, ACCT3, "http://127.0.0.1:9/acct3", NULL, NULL);
  tt_register(s, &o, TT_ACCOUNT, "http://127.0.0.1:9/acct1", NULL, NULL);
  tt_auth_free(&o);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static const char *const bad_registrations[] = {
    "not json",
    "[]",
    "{}",
    "{\"url\":\"http://127.0.0.1:9/\"}",
    "{\"name\":\"\",\"url\":\"http://127.0.0.1:9/\"}",
    "{\"name\":5,\"url\":\"http://127.0.0.1:9/\"}",
    "{\"name\":\"DeviceProfileService\"}",
    "{\"name\":\"DeviceProfileService\",\"url\":5}",
    "{\"name\":\"DeviceProfileService\",\"url\":\"ftp://127.0.0.1/x\"}",
    "{\"name\":\"DeviceProfileService\",\"url\":\"not a url\"}",
    "{\"name\":\"DeviceProfileService\",\"url\":\"http://127.0.0.1:9/\",\"username\":5}",
    "{\"name\":\"DeviceProfileService\",\"url\":\"http://127.0.0.1:9/\",\"password\":[]}",
};

START_TEST(test_callbacks_invalid) {
  tt_sim *s = tt_sim_start(NULL);
  tt_auth a;
  tt_resp r;
  json_t *l;
  tt_auth_get(s, &a);
  tt_m2m(s, &r, "POST", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, bad_registrations[_i]);
  tt_expect_error(bad_registrations[_i], &r, 400, "INPUT_INVALID.Callback.Invalid", NULL);
  tt_resp_free(&r);
  l = callbacks_list(s, &a, TT_ACCOUNT);
  ck_assert_uint_eq(json_array_size(l), 0);
  json_decref(l);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Download validation */

#define VALID_DEV                                                                             \
  "{\"deviceIds\":[{\"kind\":\"eid\",\"id\":\"" EID "\"},{\"kind\":\"iccid\",\"id\":\"" ICCID \
  "\"},{\"kind\":\"imei\",\"id\":\"" IMEI "\"}]}"

START_TEST(test_download_order) {
  static const struct {
    int token, session;
    const char *ctype, *body, *code, *msg_has;
  } cases[] = {
      /* 1. bearer before everything else */
      {0, 0, "text/plain", "{", NULL, NULL},
      /* 2. session before content type and body */
      {1, 0, "text/plain", "{", "INPUT_INVALID.SessionToken.Missing", NULL},
      /* 3. content type before the body */
      {1, 1, "text/plain", "{", "INPUT_INVALID.ContentType.Invalid", NULL},
      {1, 1, NULL, "{}", "INPUT_INVALID.ContentType.Invalid", NULL},
      {1, 1, "application/xml", "{}", "INPUT_INVALID.ContentType.Invalid", NULL},
      /* 4. the body is a JSON object */
      {1, 1, "application/json", "{\n  \"accountName\": }", "INPUT_INVALID.Body.Invalid", "line 2"},
      {1, 1, "application/json", "", "INPUT_INVALID.Body.Invalid", NULL},
      {1, 1, "application/json", "[{}]", "INPUT_INVALID.Body.Invalid", NULL},
      {1, 1, "application/json", "\"text\"", "INPUT_INVALID.Body.Invalid", NULL},
      /* 5. the account before the devices */
      {1, 1, "application/json", "{\"devices\":[]}", "INPUT_INVALID.AccountName.Missing", NULL},
      {1, 1, "application/json", "{\"accountName\":\"\",\"devices\":[]}",
       "INPUT_INVALID.AccountName.Missing", NULL},
      {1, 1, "application/json", "{\"accountName\":7}", "INPUT_INVALID.AccountName.Missing", NULL},
      {1, 1, "application/json", "{\"accountName\":null}", "INPUT_INVALID.AccountName.Missing",
       NULL},
      {1, 1, "application/json", "{\"accountName\":\"0000000000-00000\",\"devices\":[]}",
       "REQUEST_FAILED.AccountNotFound", NULL},
      {1, 1, "application/json", "{\"accountName\":\"" ACCT2 "\",\"devices\":[]}",
       "REQUEST_FAILED.Account.NotAuthorized", NULL},
      {1, 1, "application/json", "{\"accountName\":\"" ACCT3 "\"}",
       "REQUEST_FAILED.Account.NotAuthorized", NULL},
      /* 6. the device list */
      {1, 1, "application/json", "{\"accountName\":\"" TT_ACCOUNT "\"}",
       "INPUT_INVALID.Devices.Missing", NULL},
      {1, 1, "application/json", "{\"accountName\":\"" TT_ACCOUNT "\",\"devices\":[]}",
       "INPUT_INVALID.Devices.Missing", NULL},
      {1, 1, "application/json", "{\"accountName\":\"" TT_ACCOUNT "\",\"devices\":{}}",
       "INPUT_INVALID.Devices.Missing", NULL},
      {1, 1, "application/json", "{\"accountName\":\"" TT_ACCOUNT "\",\"devices\":null}",
       "INPUT_INVALID.Devices.Missing", NULL},
      /* 7. devices in order, each fully before the next */
      {1, 1, "application/json",
       "{\"accountName\":\"" TT_ACCOUNT "\",\"devices\":[{\"deviceIds\":[{\"kind\":\"eid\","
       "\"id\":\"" EID "\"}]},\"x\"]}",
       "INPUT_INVALID.Device.Ids.Incomplete", "devices[0]"},
      /* 8. the service plan last */
      {1, 1, "application/json",
       "{\"accountName\":\"" TT_ACCOUNT "\",\"servicePlan\":5,\"devices\":[" VALID_DEV ",{}]}",
       "INPUT_INVALID.Device.Invalid", "devices[1]"},
      {1, 1, "application/json",
       "{\"accountName\":\"" TT_ACCOUNT "\",\"servicePlan\":5,\"devices\":[" VALID_DEV "]}",
       "INPUT_INVALID.ServicePlan.Invalid", NULL},
  };
  tt_sim *s = tt_sim_start(users_accounts);
  tt_auth a;
  size_t i;
  tt_auth_get(s, &a);
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    char ctx[100];
    tt_resp r;
    snprintf(ctx, sizeof ctx, "download case %zu", i);
    tt_m2m_ct(s, &r, "POST", TT_DOWNLOAD, cases[i].token ? a.token : NULL,
              cases[i].session ? a.session : NULL, cases[i].ctype, cases[i].body);
    if (!cases[i].code) {
      tt_expect_fault(ctx, &r, "900902", "Missing Credentials");
    } else {
      tt_expect_error(ctx, &r, 400, cases[i].code, cases[i].msg_has);
      if (strcmp(cases[i].code, "INPUT_INVALID.Body.Invalid") == 0 && cases[i].msg_has) {
        json_t *j = tt_json(ctx, &r);
        ck_assert_msg(strstr(tt_jstr(j, "errorMessage"), "column") != NULL,
                      "%s: no column in \"%s\"", ctx, tt_jstr(j, "errorMessage"));
        json_decref(j);
      }
    }
    tt_resp_free(&r);
  }
  tt_stats_expect(s, "refused downloads", TT_ST("downloads.accepted", 0),
                  TT_ST("downloads.devices_accepted", 0), TT_ST("callbacks.queued", 0),
                  TT_ST("requests.download", ARRAY_LEN(cases)), NULL);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

#define K(kind, id) "{\"kind\":\"" kind "\",\"id\":\"" id "\"}"
#define DEV(ids) "{\"deviceIds\":[" ids "]}"

static const struct {
  const char *name, *dev, *code; /* code NULL: accepted */
} dev_cases[] = {
    {"a string", "\"x\"", "INPUT_INVALID.Device.Invalid"},
    {"a number", "5", "INPUT_INVALID.Device.Invalid"},
    {"null", "null", "INPUT_INVALID.Device.Invalid"},
    {"no deviceIds", "{}", "INPUT_INVALID.Device.Invalid"},
    {"deviceIds an object", "{\"deviceIds\":{}}", "INPUT_INVALID.Device.Invalid"},
    {"deviceIds of numbers", DEV("5"), "INPUT_INVALID.Device.Invalid"},
    {"id missing", DEV("{\"kind\":\"eid\"}"), "INPUT_INVALID.Device.Invalid"},
    {"kind missing", DEV("{\"id\":\"" EID "\"}"), "INPUT_INVALID.Device.Invalid"},
    {"id a number", DEV("{\"kind\":\"imei\",\"id\":490154203237518}"),
     "INPUT_INVALID.Device.Invalid"},
    {"kind a number", DEV("{\"kind\":1,\"id\":\"" EID "\"}"), "INPUT_INVALID.Device.Invalid"},
    {"kind msisdn", DEV(K("eid", EID) "," K("msisdn", MDN)), "INPUT_INVALID.Device.Kind.Invalid"},
    {"kind mdn", DEV(K("eid", EID) "," K("imei", IMEI) "," K("mdn", MDN)),
     "INPUT_INVALID.Device.Kind.Invalid"},
    {"kind empty", DEV(K("", EID)), "INPUT_INVALID.Device.Kind.Invalid"},
    {"two eids", DEV(K("eid", EID) "," K("imei", IMEI) "," K("eid", EID2)),
     "INPUT_INVALID.Device.Kind.Duplicate"},
    {"EID and eid", DEV(K("EID", EID) "," K("eid", EID2) "," K("imei", IMEI)),
     "INPUT_INVALID.Device.Kind.Duplicate"},
    {"two imeis", DEV(K("eid", EID) "," K("imei", IMEI) "," K("Imei", IMEI2)),
     "INPUT_INVALID.Device.Kind.Duplicate"},
    {"eid check digits", DEV(K("eid", "89049032123451234512345678901234") "," K("imei", IMEI)),
     "INPUT_INVALID.Device.Id.Invalid"},
    {"iccid check digit", DEV(K("eid", EID) "," K("iccid", "89014103211118510721")),
     "INPUT_INVALID.Device.Id.Invalid"},
    {"imei check digit", DEV(K("eid", EID) "," K("imei", "490154203237519")),
     "INPUT_INVALID.Device.Id.Invalid"},
    {"imei letter", DEV(K("eid", EID) "," K("imei", "49015420323751X")),
     "INPUT_INVALID.Device.Id.Invalid"},
    {"iccid 18 digits", DEV(K("eid", EID) "," K("iccid", "890141032111185107")),
     "INPUT_INVALID.Device.Id.Invalid"},
    {"eid 31 digits", DEV(K("eid", "8904903212345123451234567890123") "," K("imei", IMEI)),
     "INPUT_INVALID.Device.Id.Invalid"},
    {"imei empty", DEV(K("eid", EID) "," K("imei", "")), "INPUT_INVALID.Device.Id.Invalid"},
    {"eid only", DEV(K("eid", EID)), "INPUT_INVALID.Device.Ids.Incomplete"},
    {"no eid", DEV(K("iccid", ICCID) "," K("imei", IMEI)), "INPUT_INVALID.Device.Ids.Incomplete"},
    {"imei only", DEV(K("imei", IMEI)), "INPUT_INVALID.Device.Ids.Incomplete"},
    /* accepted */
    {"upper-case kinds", DEV(K("EID", EID) "," K("ICCID", ICCID) "," K("IMEI", IMEI)), NULL},
    {"mixed-case kinds, any order", DEV(K("Imei", IMEI) "," K("Eid", EID) "," K("iCcId", ICCID)),
     NULL},
    {"eid and imei", DEV(K("eid", EID) "," K("imei", IMEI)), NULL},
    {"eid and a 19-digit iccid", DEV(K("eid", EID) "," K("iccid", ICCID19)), NULL},
};

START_TEST(test_download_device_rule) {
  tt_sim *s = tt_sim_start(NULL);
  const char *code = dev_cases[_i].code;
  char body[2048];
  tt_auth a;
  tt_resp r;
  tt_auth_get(s, &a);
  snprintf(body, sizeof body, "{\"accountName\":\"" TT_ACCOUNT "\",\"devices\":[" VALID_DEV ",%s]}",
           dev_cases[_i].dev);
  tt_download_req(s, &r, &a, body);
  if (code) {
    tt_expect_error(dev_cases[_i].name, &r, 400, code, "devices[1]");
    tt_stats_expect(s, dev_cases[_i].name, TT_ST("downloads.accepted", 0), NULL);
  } else {
    tt_expect_status(dev_cases[_i].name, &r, 200);
    tt_stats_expect(s, dev_cases[_i].name, TT_ST("downloads.accepted", 1),
                    TT_ST("downloads.devices_accepted", 2), NULL);
  }
  tt_resp_free(&r);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_download_limits) {
  tt_sim *s = tt_sim_start(NULL);
  json_t *devs = json_array();
  char *body, *id;
  tt_auth a;
  tt_resp r;
  size_t i;
  tt_auth_get(s, &a);
  /* the count is checked before any device: devices[0] is invalid */
  json_array_append_new(devs, json_object());
  for (i = 1; i < 10001; i++) {
    tt_device d;
    tt_plain_device(&d, i);
    json_array_append_new(devs, tt_device_json(&d));
  }
  body = tt_download_body(TT_ACCOUNT, devs, NULL);
  tt_download_req(s, &r, &a, body);
  tt_expect_error("10,001 devices", &r, 400, "INPUT_INVALID.MaxRequestsExceeded", NULL);
  tt_resp_free(&r);
  free(body);
  body = tt_plain_body(10000, 1);
  id = tt_download_ok(s, &a, body);
  tt_stats_expect(s, "10,000 devices", TT_ST("downloads.received", 2),
                  TT_ST("downloads.accepted", 1), TT_ST("downloads.devices_accepted", 10000),
                  TT_ST("callbacks.no_listener", 10000), TT_ST("callbacks.attempted", 0), NULL);
  free(id);
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_download_plan) {
  static const struct {
    const char *plan_json, *code;
  } cases[] = {
      {"\"" TT_PLAN "\"", NULL},
      {"\"" PLAN_SPACE "\"", NULL},
      {"\"OTHER_PLAN\"", "INPUT_INVALID.ServicePlan.Invalid"}, /* ACCT2's */
      {"\"NO_SUCH_PLAN\"", "INPUT_INVALID.ServicePlan.Invalid"},
      {"\"\"", "INPUT_INVALID.ServicePlan.Invalid"},
      {"5", "INPUT_INVALID.ServicePlan.Invalid"},
      {"null", "INPUT_INVALID.ServicePlan.Invalid"},
      {"[\"" TT_PLAN "\"]", "INPUT_INVALID.ServicePlan.Invalid"},
  };
  tt_sim *s = tt_sim_start(users_accounts);
  tt_auth a;
  size_t i, ok = 0;
  tt_auth_get(s, &a);
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    char body[1024];
    tt_resp r;
    snprintf(body, sizeof body,
             "{\"accountName\":\"" TT_ACCOUNT "\",\"servicePlan\":%s,\"devices\":[" VALID_DEV "]}",
             cases[i].plan_json);
    tt_download_req(s, &r, &a, body);
    if (cases[i].code) {
      tt_expect_error(cases[i].plan_json, &r, 400, cases[i].code, NULL);
    } else {
      tt_expect_status(cases[i].plan_json, &r, 200);
      ok++;
    }
    tt_resp_free(&r);
  }
  tt_stats_expect(s, "plans", TT_ST("downloads.accepted", ok), NULL);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_download_ok) {
  tt_sim *s = tt_sim_start(NULL);
  tt_auth a;
  tt_resp r;
  char *id1, *id2, *body;
  tt_auth_get(s, &a);
  id1 = tt_download_ok(s, &a,
                       "{\"accountName\":\"" TT_ACCOUNT
                       "\",\"extra\":{\"x\":[1,2]},\"devices\":[" VALID_DEV
                       "],\"servicePlan\":\"" TT_PLAN "\",\"more\":null}");
  body = tt_plain_body(2, 7);
  tt_m2m_ct(s, &r, "POST", TT_DOWNLOAD, a.token, a.session, "application/json; charset=utf-8",
            body);
  tt_expect_status("Content-Type with a parameter", &r, 200);
  {
    json_t *j = tt_json("download", &r);
    ck_assert_msg(tt_is_uuid4(tt_jstr(j, "requestId")), "requestId %s", r.body);
    id2 = strdup(tt_jstr(j, "requestId"));
    json_decref(j);
  }
  tt_resp_free(&r);
  ck_assert_str_ne(id1, id2);
  tt_stats_expect(s, "two downloads", TT_ST("requests.download", 2), TT_ST("downloads.received", 2),
                  TT_ST("downloads.accepted", 2), TT_ST("downloads.devices_accepted", 3),
                  TT_ST("callbacks.no_listener", 3), TT_ST("callbacks.pending", 0), NULL);
  free(body);
  free(id1);
  free(id2);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Admin endpoints */

static json_t *zero_stats(void) {
  json_error_t e;
  json_t *j = json_loads(
      "{\"requests\":{\"token\":0,\"login\":0,\"logout\":0,\"callbacks\":0,\"download\":0,"
      "\"sim\":0,\"other\":0},"
      "\"downloads\":{\"received\":0,\"accepted\":0,\"devices_accepted\":0,\"eids\":0,"
      "\"eids_repeated\":0},"
      "\"tokens\":{\"issued\":0,\"reused\":0,\"refused\":0},"
      "\"logins\":{\"ok\":0,\"refused\":0,\"locked\":0},"
      "\"callbacks\":{\"queued\":0,\"attempted\":0,\"delivered\":0,\"failed\":0,\"abandoned\":0,"
      "\"pending\":0,\"no_listener\":0,\"duplicates\":0},"
      "\"faults\":{\"injected\":0,\"latency\":0},"
      "\"bodies\":{\"held_bytes\":0,\"refused\":0}}",
      0, &e);
  ck_assert_ptr_nonnull(j);
  return j;
}

/* Asserts got equals want but for requests.sim, which must be sim_min or sim_min + 1
 * (whether an answer counts its own request is not specified). */
static void expect_stats_equal(const char *ctx, json_t *got, json_t *want, long sim_min) {
  long sim = tt_stat_of(got, "requests.sim");
  char *g;
  ck_assert_msg(sim == sim_min || sim == sim_min + 1, "%s: requests.sim %ld", ctx, sim);
  json_object_set_new(json_object_get(want, "requests"), "sim", json_integer(sim));
  g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
  ck_assert_msg(json_equal(got, want), "%s: stats %s", ctx, g);
  free(g);
}

START_TEST(test_stats_shape_and_reset) {
  tt_sim *s = tt_sim_start(NULL);
  json_t *got, *want = zero_stats();
  long sim0;
  tt_resp r;
  got = tt_stats(s);
  expect_stats_equal("fresh", got, want, 0);
  sim0 = tt_stat_of(got, "requests.sim");
  json_decref(got);
  ck_assert_int_eq(tt_stat(s, "requests.sim"), sim0 + 1);

  free(tt_get_token(s));
  tt_req(s, &r, "GET", "/api/x", NULL, NULL);
  tt_resp_free(&r);
  tt_stats_expect(s, "some requests", TT_ST("requests.token", 1), TT_ST("tokens.issued", 1),
                  TT_ST("requests.other", 1), NULL);
  tt_req(s, &r, "DELETE", "/_sim/stats", NULL, NULL);
  tt_expect_status("DELETE /_sim/stats", &r, 200);
  got = tt_json("DELETE /_sim/stats", &r);
  tt_resp_free(&r);
  expect_stats_equal("after reset", got, want, 0);
  json_decref(got);
  free(tt_get_token(s)); /* reused now */
  tt_stats_expect(s, "after reset", TT_ST("requests.token", 1), TT_ST("tokens.issued", 0),
                  TT_ST("tokens.reused", 1), NULL);
  json_decref(want);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_stats_reset_keeps_pending) {
  tt_sim *s =
      tt_sim_start((const char *[]){"--listener-down", "--redelivery-interval", "60", NULL});
  tt_auth a;
  char *body, *id;
  tt_resp r;
  json_t *got;
  tt_auth_get(s, &a);
  tt_register(s, &a, TT_ACCOUNT, "http://127.0.0.1:9/", NULL, NULL);
  body = tt_plain_body(2, 3);
  id = tt_download_ok(s, &a, body);
  ck_assert_int_eq(tt_stat_wait(s, "callbacks.attempted", 2, 5.0), 2);
  tt_req(s, &r, "DELETE", "/_sim/stats", NULL, NULL);
  tt_expect_status("DELETE /_sim/stats", &r, 200);
  got = tt_json("DELETE /_sim/stats", &r);
  ck_assert_int_eq(tt_stat_of(got, "callbacks.pending"), 2);
  ck_assert_int_eq(tt_stat_of(got, "callbacks.queued"), 0);
  ck_assert_int_eq(tt_stat_of(got, "callbacks.attempted"), 0);
  ck_assert_int_eq(tt_stat_of(got, "downloads.accepted"), 0);
  json_decref(got);
  tt_resp_free(&r);
  tt_stats_expect(s, "after reset", TT_ST("callbacks.pending", 2), TT_ST("callbacks.failed", 0),
                  NULL);
  free(body);
  free(id);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static json_t *get_faults(const tt_sim *s) { return tt_sim_get_json(s, "/_sim/faults"); }

static void expect_json(const char *ctx, json_t *got, const char *want_text) {
  json_error_t e;
  json_t *want = json_loads(want_text, 0, &e);
  char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
  ck_assert_msg(want != NULL, "%s: bad expected JSON: %s", ctx, e.text);
  ck_assert_msg(json_equal(got, want), "%s: got %s\nexpected %s", ctx, g, want_text);
  free(g);
  json_decref(want);
}

#define NO_FAULTS                                                              \
  "{\"latency_ms\":0,\"callback_duplicate\":false,\"callback_reorder\":false," \
  "\"listener_down\":false,\"faults\":[]}"

START_TEST(test_faults_from_options) {
  tt_sim *s = tt_sim_start(
      (const char *[]){"--fault", "429:count=2,endpoint=download", "--fault", "redirect:every=3",
                       "--fault", "oversize:endpoint=token,mode=dropped", "--fault", "truncate",
                       "--latency-ms", "4", "--callback-reorder", NULL});
  json_t *j = get_faults(s);
  expect_json(
      "faults from options", j,
      "{\"latency_ms\":4,\"callback_duplicate\":false,\"callback_reorder\":true,"
      "\"listener_down\":false,\"faults\":["
      "{\"kind\":\"429\",\"every\":1,\"count\":2,\"endpoint\":\"download\",\"mode\":\"dropped\","
      "\"retry_after\":\"1\",\"to\":null,\"bytes\":0,\"fired\":0},"
      "{\"kind\":\"redirect\",\"every\":3,\"count\":0,\"endpoint\":\"any\",\"mode\":\"dropped\","
      "\"retry_after\":null,\"to\":\"http://127.0.0.1:9/\",\"bytes\":0,\"fired\":0},"
      "{\"kind\":\"oversize\",\"every\":1,\"count\":0,\"endpoint\":\"token\",\"mode\":\"dropped\","
      "\"retry_after\":null,\"to\":null,\"bytes\":2097152,\"fired\":0},"
      "{\"kind\":\"truncate\",\"every\":1,\"count\":0,\"endpoint\":\"any\",\"mode\":\"processed\","
      "\"retry_after\":null,\"to\":null,\"bytes\":0,\"fired\":0}]}");
  json_decref(j);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_faults_round_trip) {
  static const char *const set =
      "{\"latency_ms\":5,\"callback_duplicate\":true,\"faults\":["
      "{\"kind\":\"503\",\"every\":2,\"endpoint\":\"login\",\"retry_after\":\"date:30\"},"
      "{\"kind\":\"close\",\"mode\":\"processed\",\"count\":3}]}";
  static const char *const want =
      "{\"latency_ms\":5,\"callback_duplicate\":true,\"callback_reorder\":false,"
      "\"listener_down\":false,\"faults\":["
      "{\"kind\":\"503\",\"every\":2,\"count\":0,\"endpoint\":\"login\",\"mode\":\"dropped\","
      "\"retry_after\":\"date:30\",\"to\":null,\"bytes\":0,\"fired\":0},"
      "{\"kind\":\"close\",\"every\":1,\"count\":3,\"endpoint\":\"any\",\"mode\":\"processed\","
      "\"retry_after\":null,\"to\":null,\"bytes\":0,\"fired\":0}]}";
  tt_sim *s = tt_sim_start(NULL);
  tt_resp r;
  json_t *j = get_faults(s);
  expect_json("default faults", j, NO_FAULTS);
  json_decref(j);
  tt_req(s, &r, "POST", "/_sim/faults", (const char *[]){"Content-Type: application/json", NULL},
         set);
  tt_expect_status("POST /_sim/faults", &r, 200);
  j = tt_json("POST /_sim/faults", &r);
  expect_json("POST answer", j, want);
  json_decref(j);
  tt_resp_free(&r);
  j = get_faults(s);
  expect_json("GET after POST", j, want);
  json_decref(j);
  tt_sim_faults(s, "{}");
  j = get_faults(s);
  expect_json("after POST {}", j, NO_FAULTS);
  json_decref(j);
  tt_stats_expect(s, "faults", TT_ST("faults.injected", 0), TT_ST("requests.token", 0), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_faults_bad_body) {
  static const struct {
    const char *body, *path;
  } cases[] = {
      {"{\"faults\":[{\"kind\":\"429\",\"every\":\"x\"}]}", "faults[0].every"},
      {"{\"faults\":[{\"kind\":\"500\"},{\"kind\":\"teapot\"}]}", "faults[1].kind"},
      {"{\"faults\":[{\"kind\":\"500\",\"endpoint\":\"nowhere\"}]}", "faults[0].endpoint"},
      {"{\"faults\":[{\"kind\":\"500\",\"mode\":\"sometimes\"}]}", "faults[0].mode"},
      {"{\"faults\":[{\"kind\":\"500\",\"count\":-1}]}", "faults[0].count"},
      {"{\"faults\":[{\"every\":2}]}", "faults[0].kind"},
      {"{\"latency_ms\":\"x\"}", "latency_ms"},
      {"{\"callback_duplicate\":1}", "callback_duplicate"},
      {"{\"faults\":{}}", "faults"},
  };
  static const char *const kept =
      "{\"latency_ms\":0,\"callback_duplicate\":false,\"callback_reorder\":false,"
      "\"listener_down\":false,\"faults\":["
      "{\"kind\":\"500\",\"every\":1,\"count\":0,\"endpoint\":\"download\",\"mode\":\"dropped\","
      "\"retry_after\":null,\"to\":null,\"bytes\":0,\"fired\":0}]}";
  tt_sim *s = tt_sim_start((const char *[]){"--fault", "500:endpoint=download", NULL});
  size_t i;
  json_t *j;
  tt_resp r;
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    tt_req(s, &r, "POST", "/_sim/faults", (const char *[]){"Content-Type: application/json", NULL},
           cases[i].body);
    tt_expect_error(cases[i].body, &r, 400, "INPUT_INVALID.Body.Invalid", cases[i].path);
    tt_resp_free(&r);
  }
  tt_req(s, &r, "POST", "/_sim/faults", (const char *[]){"Content-Type: application/json", NULL},
         "not json");
  tt_expect_error("not json", &r, 400, "INPUT_INVALID.Body.Invalid", NULL);
  tt_resp_free(&r);
  j = get_faults(s); /* a refused body changes nothing */
  expect_json("after bad bodies", j, kept);
  json_decref(j);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_revoke) {
  tt_sim *s = tt_sim_start(NULL);
  tt_auth a;
  tt_resp r;
  json_t *j;
  char *tok2, *sess2, *sess3;
  tt_auth_get(s, &a);
  sess2 = tt_login_as(s, a.token, "sim-user", "sim-pass");
  tt_req(s, &r, "POST", "/_sim/revoke", (const char *[]){"Content-Type: application/json", NULL},
         "{\"access_tokens\":true,\"sessions\":true}");
  tt_expect_status("revoke", &r, 200);
  j = tt_json("revoke", &r);
  expect_json("revoke answer", j, "{\"access_tokens\":1,\"sessions\":2}");
  json_decref(j);
  tt_resp_free(&r);
  tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, NULL);
  tt_expect_fault("revoked token", &r, "900901", "Invalid Credentials");
  tt_resp_free(&r);
  tok2 = tt_get_token(s);
  ck_assert_str_ne(tok2, a.token);
  tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, tok2, a.session, NULL);
  tt_expect_error("revoked session", &r, 400, "REQUEST_FAILED.SessionToken.Expired", NULL);
  tt_resp_free(&r);
  sess3 = tt_login_as(s, tok2, "sim-user", "sim-pass");
  tt_req(s, &r, "POST", "/_sim/revoke", (const char *[]){"Content-Type: application/json", NULL},
         "{\"sessions\":true}");
  tt_expect_status("revoke sessions", &r, 200);
  j = tt_json("revoke sessions", &r);
  expect_json("revoke sessions answer", j, "{\"access_tokens\":0,\"sessions\":1}");
  json_decref(j);
  tt_resp_free(&r);
  tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, tok2, sess3, NULL);
  tt_expect_error("revoked session 3", &r, 400, "REQUEST_FAILED.SessionToken.Expired", NULL);
  tt_resp_free(&r);
  tt_m2m(s, &r, "POST", TT_LOGIN, tok2, NULL, LOGIN_BODY);
  tt_expect_status("token 2 lives", &r, 200);
  tt_resp_free(&r);
  free(tok2);
  free(sess2);
  free(sess3);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_sim_never_faulted) {
  tt_sim *s = tt_sim_start((const char *[]){"--fault", "500", "--latency-ms", "300", NULL});
  json_t *j;
  tt_resp r;
  double t0 = tt_now();
  j = tt_stats(s);
  json_decref(j);
  j = get_faults(s);
  json_decref(j);
  ck_assert_msg(tt_now() - t0 < 0.3, "/_sim/ requests were delayed");
  tt_token_req(s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_error("faulted token", &r, 500, "REQUEST_FAILED.UnexpectedError", NULL);
  tt_resp_free(&r);
  tt_stats_expect(s, "one /api request", TT_ST("faults.injected", 1), TT_ST("faults.latency", 1),
                  TT_ST("requests.token", 1), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The process: options, config files, signals, log, TLS */

START_TEST(test_startup_and_sigterm) {
  tt_sim *s = tt_sim_start(NULL);
  char path[PATH_MAX], want[128], *out;
  int status;
  free(tt_get_token(s));
  status = tt_sim_term(s);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM: wait status %d", status);
  out = tt_read_file(tt_sim_path(s, "stdout", path), NULL);
  snprintf(want, sizeof want, "tsesim-sim: serving http://127.0.0.1:%d/api\n", s->port);
  ck_assert_msg(out && strstr(out, want) != NULL, "stdout \"%s\" lacks \"%s\"", out, want);
  free(out);
  tt_sim_free(s);
}
END_TEST

START_TEST(test_sigint) {
  tt_sim *s = tt_sim_start(NULL);
  int status;
  kill(s->pid, SIGINT);
  status = tt_sim_wait_exit(s, 10.0);
  ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "SIGINT: wait status %d", status);
  tt_sim_free(s);
}
END_TEST

static const struct {
  const char *a1, *a2, *names;
} bad_opts[] = {
    {"--no-such-option", NULL, "no-such-option"},
    {"--port", "abc", "port"},
    {"--port", "70000", "port"},
    {"--bind", "10.1.2.3", "bind"},
    {"--bind", "0.0.0.0", "bind"},
    {"--on-term", "later", "on-term"},
    {"--fault", "teapot", "fault"},
    {"--fault", "429:nokey=1", "fault"},
    {"--fault", "429:every=x", "fault"},
    {"--fault", "500:endpoint=nowhere", "fault"},
    {"--token-lifetime", "abc", "token-lifetime"},
    {"--session-idle", "x", "session-idle"},
    {"--lock-after", "x", "lock-after"},
    {"--latency-ms", "x", "latency-ms"},
    {"--callback-workers", "0", "callback-workers"},
    {"--user", "nocolon", "user"},
    {"--client", "nocolon", "client"},
    {"--tls-cert", "cert.pem", "tls-"}, /* without --tls-key */
    {"--log", NULL, "log"},             /* missing argument */
};

START_TEST(test_bad_option) {
  tt_sim *s = tt_sim_new();
  const char *args[] = {bad_opts[_i].a1, bad_opts[_i].a2, NULL};
  char path[PATH_MAX], *err;
  int status = tt_sim_run_to_exit(s, args);
  err = tt_read_file(tt_sim_path(s, "stderr", path), NULL);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s %s: wait status %d, stderr %s",
                bad_opts[_i].a1, bad_opts[_i].a2 ? bad_opts[_i].a2 : "", status, err);
  ck_assert_msg(err && strstr(err, bad_opts[_i].names) != NULL,
                "%s: stderr \"%s\" does not name the option", bad_opts[_i].a1, err);
  ck_assert_msg(access(tt_sim_path(s, "port", path), F_OK) != 0, "%s: port file written",
                bad_opts[_i].a1);
  free(err);
  tt_sim_free(s);
}
END_TEST

START_TEST(test_help_version) {
  static const char *const opts[] = {"--help", "--version"};
  size_t i;
  for (i = 0; i < ARRAY_LEN(opts); i++) {
    tt_sim *s = tt_sim_new();
    char path[PATH_MAX], *out;
    int status = tt_sim_run_to_exit(s, (const char *[]){opts[i], NULL});
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: wait status %d", opts[i],
                  status);
    out = tt_read_file(tt_sim_path(s, "stdout", path), NULL);
    ck_assert_msg(out && *out, "%s printed nothing on stdout", opts[i]);
    free(out);
    tt_sim_free(s);
  }
}
END_TEST

#define CONF_ACCOUNT "0000777777-00007"

static void write_conf(const tt_sim *s, char conf[PATH_MAX]) {
  tt_sim_path(s, "sim.conf", conf);
  tt_write_file(conf,
                "# the simulator's settings\n"
                "user = cfg-user:cfg-pass\n"
                "account = " CONF_ACCOUNT
                ":PLAN A,PLAN_B\n"
                "\n"
                "latency-ms = 7\n"
                "callback-duplicate = true\n"
                "callback-reorder = false\n");
}

static void expect_conf_applied(const tt_sim *s, long latency_ms) {
  json_t *j = get_faults(s);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "latency_ms")), latency_ms);
  ck_assert_msg(json_is_true(json_object_get(j, "callback_duplicate")), "callback_duplicate");
  ck_assert_msg(json_is_false(json_object_get(j, "callback_reorder")), "callback_reorder");
  json_decref(j);
}

START_TEST(test_config_file) {
  tt_sim *s = tt_sim_new();
  char conf[PATH_MAX], *body;
  json_t *devs = json_array();
  tt_device d;
  tt_auth a;
  tt_resp r;
  /* options apply in order: the later one wins */
  write_conf(s, conf);
  tt_sim_launch(s, (const char *[]){"--config", conf, "--latency-ms", "3", NULL});
  expect_conf_applied(s, 3);
  ck_assert_int_eq(tt_sim_stop(s), 0);
  s = tt_sim_new();
  write_conf(s, conf);
  tt_sim_launch(s, (const char *[]){"--latency-ms", "3", "--config", conf, NULL});
  expect_conf_applied(s, 7);

  a.token = tt_get_token(s);
  tt_login_req(s, &r, a.token, "sim-user", "sim-pass");
  tt_expect_error("default user replaced", &r, 400, "REQUEST_FAILED.Login.InvalidCredentials",
                  NULL);
  tt_resp_free(&r);
  a.session = tt_login_as(s, a.token, "cfg-user", "cfg-pass");
  tt_plain_device(&d, 5);
  json_array_append_new(devs, tt_device_json(&d));
  body = tt_download_body(CONF_ACCOUNT, devs, "PLAN A");
  free(tt_download_ok(s, &a, body));
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_config_errors) {
  static const struct {
    const char *text, *where;
  } cases[] = {
      {"# x\nport = 0\nbogus = 1\n", ":3: unknown option 'bogus'"},
      {"latency-ms = 1\nlatency-ms = x\n", ":2:"},
      {"callback-duplicate = maybe\n", ":1:"},
  };
  size_t i;
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    tt_sim *s = tt_sim_new();
    char conf[PATH_MAX], want[PATH_MAX + 64], path[PATH_MAX], *err;
    int status;
    tt_sim_path(s, "bad.conf", conf);
    tt_write_file(conf, cases[i].text);
    status = tt_sim_run_to_exit(s, (const char *[]){"--config", conf, NULL});
    err = tt_read_file(tt_sim_path(s, "stderr", path), NULL);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "config %zu: status %d", i,
                  status);
    snprintf(want, sizeof want, "%s%s", conf, cases[i].where);
    ck_assert_msg(err && strstr(err, want), "config %zu: stderr \"%s\" lacks \"%s\"", i, err, want);
    free(err);
    tt_sim_free(s);
  }
}
END_TEST

/* Waits (up to 2 s) until the log has want more lines than before, then asserts exactly that. */
static size_t log_grew(const char *logf, size_t before, size_t want, const char *what) {
  double end = tt_now() + 2.0;
  size_t n;
  for (;;) {
    char *text = tt_read_file(logf, NULL);
    n = text ? tt_count_lines(text) : 0;
    free(text);
    if (n >= before + want || tt_now() > end) break;
    tt_sleep(0.01);
  }
  tt_sleep(0.05);
  {
    char *text = tt_read_file(logf, NULL);
    n = text ? tt_count_lines(text) : 0;
    ck_assert_msg(n == before + want, "%s: the log grew by %zu lines, expected %zu:\n%s", what,
                  n - before, want, text);
    free(text);
  }
  return n;
}

/* Lines written at start and stop are outside the contract; each request and each
 * callback attempt must add exactly one line. */
START_TEST(test_log) {
  tt_sim *s = tt_sim_new();
  tt_listener *l = tt_listener_start("cb-user", "cb-pass-xyz");
  char logf[PATH_MAX], *text, *body, *id;
  const char *secrets[10];
  size_t i, n = 0, lines;
  tt_auth a;
  tt_resp r;
  int status;
  tt_sim_path(s, "sim.log", logf);
  tt_sim_launch(s, (const char *[]){"--log", logf, "--on-term", "finish", NULL});
  text = tt_read_file(logf, NULL);
  lines = text ? tt_count_lines(text) : 0;
  free(text);
  a.token = tt_get_token(s);
  lines = log_grew(logf, lines, 1, "token");
  tt_login_req(s, &r, a.token, "sim-user", "wrong-pw-123");
  tt_resp_free(&r);
  lines = log_grew(logf, lines, 1, "refused login");
  a.session = tt_login_as(s, a.token, "sim-user", "sim-pass");
  lines = log_grew(logf, lines, 1, "login");
  tt_register(s, &a, TT_ACCOUNT, l->url, "cb-user", "cb-pass-xyz");
  lines = log_grew(logf, lines, 1, "register");
  body = tt_plain_body(1, 11);
  id = tt_download_ok(s, &a, body);
  ck_assert_uint_eq(tt_listener_wait(l, 1, 5.0), 1);
  lines = log_grew(logf, lines, 2, "download and its callback attempt");
  tt_m2m(s, &r, "POST", TT_LOGOUT, a.token, a.session, NULL);
  tt_expect_status("logout", &r, 200);
  tt_resp_free(&r);
  log_grew(logf, lines, 1, "logout");
  status = tt_sim_term(s);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
  text = tt_read_file(logf, NULL);
  ck_assert_msg(text != NULL, "no log file %s", logf);
  secrets[n++] = a.token;
  secrets[n++] = a.session;
  secrets[n++] = "sim-secret";
  secrets[n++] = "c2ltLWtleTpzaW0tc2VjcmV0"; /* base64 of sim-key:sim-secret */
  secrets[n++] = "sim-pass";
  secrets[n++] = "wrong-pw-123";
  secrets[n++] = "cb-pass-xyz";
  for (i = 0; i < n; i++)
    ck_assert_msg(strstr(text, secrets[i]) == NULL, "the log contains \"%s\":\n%s", secrets[i],
                  text);
  free(text);
  free(body);
  free(id);
  tt_auth_free(&a);
  tt_sim_free(s);
  tt_listener_stop(l);
}
END_TEST

START_TEST(test_log_stderr) {
  tt_sim *s = tt_sim_start((const char *[]){"--log", "-", NULL});
  char err[PATH_MAX], *text;
  size_t lines;
  tt_sim_path(s, "stderr", err);
  tt_sleep(0.05);
  text = tt_read_file(err, NULL);
  lines = text ? tt_count_lines(text) : 0;
  free(text);
  free(tt_get_token(s));
  log_grew(err, lines, 1, "token, logged to stderr");
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static void make_cert(const tt_sim *s, const char *cert, const char *key) {
  char c[PATH_MAX], k[PATH_MAX];
  tt_make_cert(tt_sim_path(s, cert, c), tt_sim_path(s, key, k));
}

START_TEST(test_tls) {
  tt_sim *s = tt_sim_new();
  char cert[PATH_MAX], key[PATH_MAX], other[PATH_MAX], path[PATH_MAX], want[128], *out;
  tt_resp r;
  make_cert(s, "cert.pem", "key.pem");
  make_cert(s, "other.pem", "other-key.pem");
  tt_sim_launch(s, (const char *[]){"--tls-cert", tt_sim_path(s, "cert.pem", cert), "--tls-key",
                                    tt_sim_path(s, "key.pem", key), NULL});
  snprintf(s->base, sizeof s->base, "https://127.0.0.1:%d", s->port);
  s->cafile = tt_sim_path(s, "other.pem", other);
  tt_req(s, &r, "GET", "/_sim/stats", NULL, NULL);
  ck_assert_msg(r.rc == CURLE_PEER_FAILED_VERIFICATION, "another CA: %s", curl_easy_strerror(r.rc));
  tt_resp_free(&r);
  s->cafile = NULL;
  tt_req(s, &r, "GET", "/_sim/stats", NULL, NULL);
  ck_assert_msg(r.rc != CURLE_OK && r.status == 0, "system CAs: %s, HTTP %ld",
                curl_easy_strerror(r.rc), r.status);
  tt_resp_free(&r);
  s->cafile = cert;
  tt_req(s, &r, "GET", "/_sim/stats", NULL, NULL);
  tt_expect_status("with the CA", &r, 200);
  tt_resp_free(&r);
  free(tt_get_token(s));
  tt_stats_expect(s, "https", TT_ST("tokens.issued", 1), NULL);
  {
    char url[80];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_sim/stats", s->port);
    tt_http(&r, "GET", url, NULL, NULL, 0, NULL);
    ck_assert_msg(r.status != 200, "plain http answered 200 on the TLS port");
    tt_resp_free(&r);
  }
  ck_assert_int_eq(tt_sim_term(s), 0);
  out = tt_read_file(tt_sim_path(s, "stdout", path), NULL);
  snprintf(want, sizeof want, "tsesim-sim: serving https://127.0.0.1:%d/api\n", s->port);
  ck_assert_msg(out && strstr(out, want) != NULL, "stdout \"%s\" lacks \"%s\"", out, want);
  free(out);
  tt_sim_free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Hardening: the body budget, slow and too many connections, remote listeners,
 * log escapes, secrets in option errors, credential comparisons */

#define BUDGET_BODY 700000

/* A POST download without credentials (answered 401) of len bytes, via curl. */
static void budget_post(const tt_sim *s, tt_resp *r, const char *body, size_t len,
                        const char *const *headers) {
  char url[256];
  snprintf(url, sizeof url, "%s" TT_DOWNLOAD, s->base);
  tt_http(r, "POST", url, headers, body, len, NULL);
}

/* A raw connection that declares a body of len bytes and sends the first part of them. */
static int budget_hold(const tt_sim *s, const char *body, size_t len, size_t part) {
  char head[256];
  int fd = tt_tcp_connect(s->port);
  snprintf(head, sizeof head,
           "POST " TT_DOWNLOAD
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
           len);
  ck_assert_int_eq(tt_tcp_send(fd, head, strlen(head)), 0);
  ck_assert_int_eq(tt_tcp_send(fd, body, part), 0);
  return fd;
}

START_TEST(test_body_budget) {
  tt_sim *s = tt_sim_start((const char *[]){"--body-budget", "1M", NULL});
  char *body = malloc(BUDGET_BODY), *got;
  tt_resp r;
  int a, d;
  ck_assert_ptr_nonnull(body);
  memset(body, ' ', BUDGET_BODY);
  /* A declares 700000 bytes and sends all but 1000 of them: it holds them */
  a = budget_hold(s, body, BUDGET_BODY, BUDGET_BODY - 1000);
  ck_assert_int_eq(tt_stat_wait(s, "bodies.held_bytes", BUDGET_BODY, 5.0), BUDGET_BODY);
  /* meanwhile, 700000 more would go over 1 MiB: 503, with a Content-Length or chunked */
  budget_post(s, &r, body, BUDGET_BODY, NULL);
  tt_expect_error("a second body over the budget", &r, 503, "REQUEST_FAILED.ServiceUnavailable",
                  NULL);
  ck_assert_str_eq(r.retry_after, "1");
  tt_resp_free(&r);
  budget_post(s, &r, body, BUDGET_BODY, (const char *[]){"Transfer-Encoding: chunked", NULL});
  tt_expect_error("a chunked body over the budget", &r, 503, "REQUEST_FAILED.ServiceUnavailable",
                  NULL);
  ck_assert_str_eq(r.retry_after, "1");
  tt_resp_free(&r);
  /* a small one still fits */
  budget_post(s, &r, "{}", 2, NULL);
  tt_expect_status("a small body beside the held one", &r, 401);
  tt_resp_free(&r);
  /* A ends and is answered; its bytes come back */
  ck_assert_int_eq(tt_tcp_send(a, body, 1000), 0);
  ck_assert_msg(tt_tcp_wait_closed(a, 5.0, &got) >= 0, "the held request was never answered");
  ck_assert_msg(strncmp(got, "HTTP/1.1 401", 12) == 0, "the held request got: %.200s", got);
  free(got);
  close(a);
  ck_assert_int_eq(tt_stat_wait(s, "bodies.held_bytes", 0, 5.0), 0);
  budget_post(s, &r, body, BUDGET_BODY, NULL);
  tt_expect_status("after the held body ended", &r, 401);
  tt_resp_free(&r);
  /* a peer gone mid-body gives its bytes back too */
  d = budget_hold(s, body, BUDGET_BODY, 300000);
  ck_assert_int_eq(tt_stat_wait(s, "bodies.held_bytes", BUDGET_BODY, 5.0), BUDGET_BODY);
  close(d);
  ck_assert_int_eq(tt_stat_wait(s, "bodies.held_bytes", 0, 5.0), 0);
  budget_post(s, &r, body, BUDGET_BODY, NULL);
  tt_expect_status("after a peer left mid-body", &r, 401);
  tt_resp_free(&r);
  tt_stats_expect(s, "two refused", TT_ST("bodies.refused", 2), TT_ST("bodies.held_bytes", 0),
                  NULL);
  free(body);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* A body larger than the whole budget could never fit: 413, not 503. */
START_TEST(test_body_budget_whole) {
  tt_sim *s = tt_sim_start((const char *[]){"--body-budget", "64K", NULL});
  size_t n = 64 * 1024 + 1;
  char *body = malloc(n);
  tt_resp r;
  ck_assert_ptr_nonnull(body);
  memset(body, ' ', n);
  budget_post(s, &r, body, n, NULL);
  tt_expect_error("a body over the whole budget", &r, 413, "INPUT_INVALID.Body.TooLarge", NULL);
  tt_resp_free(&r);
  budget_post(s, &r, body, n - 1, NULL);
  tt_expect_status("a body of the whole budget", &r, 401);
  tt_resp_free(&r);
  free(body);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* A request left half-sent is closed by the server after --connection-timeout seconds. */
START_TEST(test_connection_timeout) {
  static const char *const halves[] = {
      "POST " TT_DOWNLOAD " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
      "POST " TT_DOWNLOAD " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"a\":", ""};
  tt_sim *s = tt_sim_start((const char *[]){"--connection-timeout", "1", NULL});
  size_t i;
  tt_resp r;
  for (i = 0; i < ARRAY_LEN(halves); i++) {
    int fd = tt_tcp_connect(s->port);
    double t;
    ck_assert_int_eq(tt_tcp_send(fd, halves[i], strlen(halves[i])), 0);
    t = tt_tcp_wait_closed(fd, 5.0, NULL);
    ck_assert_msg(t >= 0.5 && t <= tt_slow(2.5), "half-sent request %zu: closed after %.2f s", i,
                  t);
    close(fd);
  }
  tt_req(s, &r, "GET", "/_sim/stats", NULL, NULL);
  tt_expect_status("after the timeouts", &r, 200);
  tt_resp_free(&r);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* With a limit of 2 (per address, or in all), a third connection is closed unanswered while
 * two are open; once they go, a client is served again. */
static const char *const conn_limits[] = {"--max-connections-per-ip", "--max-connections"};

START_TEST(test_connection_limit) {
  static const char req[] =
      "GET /_sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  tt_sim *s = tt_sim_start((const char *[]){conn_limits[_i], "2", NULL});
  int c1 = tt_tcp_connect(s->port), c2 = tt_tcp_connect(s->port), c3;
  double t, end;
  char *got;
  tt_resp r;
  ck_assert_int_eq(tt_tcp_send(c1, "GET /_sim/stats HTTP/1.1\r\n", 26), 0);
  ck_assert_int_eq(tt_tcp_send(c2, "GET /_sim/stats HTTP/1.1\r\n", 26), 0);
  tt_sleep(tt_slow(0.3)); /* both accepted */
  c3 = tt_tcp_connect(s->port);
  tt_tcp_send(c3, req, strlen(req)); /* may fail: the server may have closed it already */
  t = tt_tcp_wait_closed(c3, 3.0, &got);
  ck_assert_msg(t >= 0, "%s 2: the third connection stayed open", conn_limits[_i]);
  ck_assert_msg(*got == '\0', "%s 2: the third connection was answered: %.200s", conn_limits[_i],
                got);
  free(got);
  close(c3);
  close(c1);
  close(c2);
  end = tt_now() + tt_slow(5.0);
  for (;;) {
    tt_req(s, &r, "GET", "/_sim/stats", NULL, NULL);
    if (r.rc == CURLE_OK && r.status == 200) break;
    tt_resp_free(&r);
    ck_assert_msg(tt_now() < end, "%s 2: not served after the two connections closed",
                  conn_limits[_i]);
    tt_sleep(0.05);
  }
  tt_resp_free(&r);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static const struct {
  const char *url;
  int ok;
} cb_hosts[] = {
    {"http://127.0.0.1:9/cb", 1},
    {"http://127.1.2.3:9/cb", 1},
    {"https://127.255.255.254/cb", 1},
    {"http://localhost:9/cb", 1},
    {"http://[::1]:9/cb", 1},
    {"http://203.0.113.7:8080/cb", 0},
    {"http://127.0.0.1.1.1/cb", 0},
    {"http://127.0.0.1.example.com/cb", 0},
    {"http://localhost.example.com/cb", 0},
    {"http://127.0.0.1@203.0.113.7/cb", 0},
    {"http://203.0.113.7/127.0.0.1", 0},
    {"https://10.0.0.1/cb", 0},
    {"http://[::2]:9/cb", 0},
    {"http://[::ffff:203.0.113.7]:9/cb", 0},
    {"http://128.0.0.1/cb", 0},
};

/* Listeners must be on this machine, unless --allow-remote-callbacks. */
START_TEST(test_callbacks_loopback_only) {
  int allow;
  for (allow = 0; allow < 2; allow++) {
    tt_sim *s = tt_sim_start(allow ? (const char *[]){"--allow-remote-callbacks", NULL} : NULL);
    char reg[256];
    tt_auth a;
    tt_resp r;
    json_t *l;
    tt_auth_get(s, &a);
    snprintf(reg, sizeof reg, "{\"name\":\"" TT_SERVICE "\",\"url\":\"%s\"}", cb_hosts[_i].url);
    tt_m2m(s, &r, "POST", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, reg);
    if (cb_hosts[_i].ok || allow) {
      tt_expect_status(cb_hosts[_i].url, &r, 200);
    } else {
      tt_expect_error(cb_hosts[_i].url, &r, 400, "INPUT_INVALID.Callback.Invalid", NULL);
      ck_assert_msg(strstr(r.body, "allow-remote-callbacks") != NULL, "%s: %s", cb_hosts[_i].url,
                    r.body);
    }
    tt_resp_free(&r);
    l = callbacks_list(s, &a, TT_ACCOUNT);
    ck_assert_uint_eq(json_array_size(l), cb_hosts[_i].ok || allow ? 1 : 0);
    json_decref(l);
    tt_auth_free(&a);
    ck_assert_int_eq(tt_sim_stop(s), 0);
  }
}
END_TEST

/* Control characters and backslashes of a decoded path are escaped: one line, no raw CR,
 * LF or ESC. */
START_TEST(test_log_escapes) {
  tt_sim *s = tt_sim_new();
  char logf[PATH_MAX], *text, *line, *eol;
  size_t n = 0;
  tt_resp r;
  tt_sim_path(s, "sim.log", logf);
  tt_sim_launch(s, (const char *[]){"--log", logf, NULL});
  tt_req(s, &r, "GET", "/api/x%0d%0aFORGED%20127.0.0.1%20GET%20/ok%20200%1b[31m%5c%7f%c2%9b/end",
         NULL, NULL);
  tt_expect_status("a path with controls", &r, 404);
  tt_resp_free(&r);
  json_decref(tt_stats(s)); /* a later line, so the one above is complete */
  ck_assert_int_ge(tt_stat(s, "requests.other"), 1);
  text = tt_read_file(logf, NULL);
  ck_assert_ptr_nonnull(text);
  ck_assert_msg(
      strchr(text, '\r') == NULL && strchr(text, '\x1b') == NULL && strchr(text, '\x7f') == NULL,
      "a raw control character in the log:\n%s", text);
  for (line = text; (eol = strchr(line, '\n')) != NULL; line = eol + 1) {
    *eol = '\0';
    if (strstr(line, "FORGED")) {
      n++;
      ck_assert_msg(strstr(line,
                           "/api/x\\x0d\\x0aFORGED 127.0.0.1 GET /ok 200\\x1b[31m\\x5c\\x7f"
                           "\\xc2\\x9b/end") != NULL,
                    "not escaped: %s", line);
    }
  }
  ck_assert_msg(n == 1, "%zu log lines hold the forged text", n);
  free(text);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* An option error never repeats a value that may hold a secret. */
static const char *const secret_opts[][3] = {
    {"--client", ":SECRETX", "client"},
    {"--client", "SECRETX", "client"},
    {"--client", "SECRETX:", "client"},
    {"--client=:SECRETX", NULL, "client"},
    {"--user", ":SECRETX", "user"},
    {"--user", "SECRETX", "user"},
    {"--user", "bob:pa:SECRETX", "user"}, /* the password's end reads as an account */
    {"--client:key:SECRETX", NULL, "unknown option"},
    {"--listener-down", "SECRETX", "argument"},
    {"--config", "CONF", "client"},
};

START_TEST(test_option_errors_hide_secrets) {
  tt_sim *s = tt_sim_new();
  char path[PATH_MAX], conf[PATH_MAX], *out, *err;
  const char *args[3] = {secret_opts[_i][0], secret_opts[_i][1], NULL};
  int status;
  tt_write_file(tt_sim_path(s, "sim.conf", conf), "# a secret on a bad line\nclient = :SECRETX\n");
  if (args[1] && !strcmp(args[1], "CONF")) args[1] = conf;
  status = tt_sim_run_to_exit(s, args);
  out = tt_read_file(tt_sim_path(s, "stdout", path), NULL);
  err = tt_read_file(tt_sim_path(s, "stderr", path), NULL);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s %s: wait status %d", args[0],
                args[1] ? args[1] : "", status);
  ck_assert_msg(err && strstr(err, secret_opts[_i][2]), "%s: stderr \"%s\" does not say \"%s\"",
                args[0], err, secret_opts[_i][2]);
  ck_assert_msg(!strstr(err, "SECRETX") && (!out || !strstr(out, "SECRETX")),
                "%s %s: the value is repeated: stdout \"%s\", stderr \"%s\"", args[0],
                args[1] ? args[1] : "", out ? out : "", err);
  free(out);
  free(err);
  tt_sim_free(s);
}
END_TEST

/* The constant-time comparisons still accept exactly the right credentials: not a prefix,
 * not an extension, not one byte off. */
START_TEST(test_credential_compare) {
  static const char *const near_secrets[] = {"sim-secre", "sim-secretX", "sim-secreu",
                                             "",          "SIM-SECRET",  "sim-secret\x01"};
  static const char *const near_passwords[] = {"sim-pas", "sim-passs", "sim-pasT", ""};
  tt_sim *s = tt_sim_start((const char *[]){"--lock-after", "100", NULL});
  char *tok, bad[64], *sess;
  size_t i;
  tt_resp r;
  for (i = 0; i < ARRAY_LEN(near_secrets); i++) {
    tt_token_req(s, &r, "sim-key", near_secrets[i], "grant_type=client_credentials");
    tt_expect_oauth(near_secrets[i], &r, 401, "invalid_client");
    tt_resp_free(&r);
  }
  tt_token_req(s, &r, "sim-ke", "sim-secret", "grant_type=client_credentials");
  tt_expect_oauth("key prefix", &r, 401, "invalid_client");
  tt_resp_free(&r);
  tok = tt_get_token(s);
  for (i = 0; i < 3; i++) { /* the token shortened, lengthened, last byte changed */
    snprintf(bad, sizeof bad, "%s", tok);
    if (i == 0) bad[strlen(bad) - 1] = '\0';
    if (i == 1) strcat(bad, "0");
    if (i == 2) bad[strlen(bad) - 1] ^= 1;
    tt_login_req(s, &r, bad, "sim-user", "sim-pass");
    tt_expect_fault(bad, &r, "900901", "Invalid Credentials");
    tt_resp_free(&r);
  }
  for (i = 0; i < ARRAY_LEN(near_passwords); i++) {
    tt_login_req(s, &r, tok, "sim-user", near_passwords[i]);
    tt_expect_error(near_passwords[i], &r, 400, "REQUEST_FAILED.Login.InvalidCredentials", NULL);
    tt_resp_free(&r);
  }
  tt_login_req(s, &r, tok, "sim-use", "sim-pass");
  tt_expect_error("user prefix", &r, 400, "REQUEST_FAILED.Login.InvalidCredentials", NULL);
  tt_resp_free(&r);
  sess = tt_login_as(s, tok, "sim-user", "sim-pass");
  for (i = 0; i < 3; i++) { /* the session token shortened, lengthened, last byte changed */
    snprintf(bad, sizeof bad, "%s", sess);
    if (i == 0) bad[strlen(bad) - 1] = '\0';
    if (i == 1) strcat(bad, "0");
    if (i == 2) bad[strlen(bad) - 1] ^= 1;
    tt_m2m(s, &r, "POST", TT_LOGOUT, tok, bad, NULL);
    tt_expect_error(bad, &r, 400, "INPUT_INVALID.SessionToken.Invalid", NULL);
    tt_resp_free(&r);
  }
  tt_m2m(s, &r, "POST", TT_LOGOUT, tok, sess, NULL);
  tt_expect_status("logout with the right session", &r, 200);
  tt_resp_free(&r);
  tt_stats_expect(s, "exactly the right ones", TT_ST("tokens.issued", 1),
                  TT_ST("tokens.refused", (long)ARRAY_LEN(near_secrets) + 1), TT_ST("logins.ok", 1),
                  TT_ST("logins.refused", (long)ARRAY_LEN(near_passwords) + 1), NULL);
  free(tok);
  free(sess);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Per-EID counts and --no-callbacks */

/* Posts the plain devices of seeds and asserts the download is accepted. */
static void download_seeds(const tt_sim *s, const tt_auth *a, const unsigned long *seeds,
                           size_t n) {
  char *body = tt_seeds_body(seeds, n);
  free(tt_download_ok(s, a, body));
  free(body);
}

START_TEST(test_eids_repeated) {
  tt_sim *s = tt_sim_start(NULL);
  tt_auth a;
  char eid[33];
  tt_auth_get(s, &a);
  download_seeds(s, &a, (const unsigned long[]){1, 2}, 2);
  tt_stats_expect(s, "one download", TT_ST("downloads.eids", 2),
                  TT_ST("downloads.eids_repeated", 0), NULL);
  download_seeds(s, &a, (const unsigned long[]){2, 3}, 2);
  tt_stats_expect(s, "device 2 twice", TT_ST("downloads.accepted", 2), TT_ST("downloads.eids", 3),
                  TT_ST("downloads.eids_repeated", 1), NULL);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(1)), 1);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(2)), 2);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(3)), 1);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(4)), 0);
  /* a third download of it: still one EID repeated, held by 3 downloads */
  download_seeds(s, &a, (const unsigned long[]){2}, 1);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(2)), 3);
  tt_stats_expect(s, "device 2 thrice", TT_ST("downloads.eids", 3),
                  TT_ST("downloads.eids_repeated", 1), NULL);
  /* the same device twice in one download counts that download once */
  download_seeds(s, &a, (const unsigned long[]){5, 5, 6}, 3);
  snprintf(eid, sizeof eid, "%s", tt_plain_eid(5));
  ck_assert_int_eq(tt_eid_downloads(s, eid), 1);
  tt_stats_expect(s, "device 5 twice in one download", TT_ST("downloads.devices_accepted", 8),
                  TT_ST("downloads.eids", 5), TT_ST("downloads.eids_repeated", 1), NULL);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_eids_refused_count_nothing) {
  tt_sim *s = tt_sim_start(users_accounts);
  tt_auth a;
  tt_resp r;
  tt_device d;
  char *body;
  json_t *devs;
  tt_auth_get(s, &a); /* sim-user, who may use TT_ACCOUNT only */
  tt_plain_device(&d, 11);
  /* an unknown account, an account not the user's, a bad plan, a bad second device */
  devs = json_array();
  json_array_append_new(devs, tt_device_json(&d));
  body = tt_download_body("0000000000-00000", devs, NULL);
  tt_download_req(s, &r, &a, body);
  tt_expect_error("unknown account", &r, 400, "REQUEST_FAILED.AccountNotFound", NULL);
  tt_resp_free(&r);
  free(body);
  devs = json_array();
  json_array_append_new(devs, tt_device_json(&d));
  body = tt_download_body(ACCT2, devs, NULL);
  tt_download_req(s, &r, &a, body);
  tt_expect_error("account not the user's", &r, 400, "REQUEST_FAILED.Account.NotAuthorized", NULL);
  tt_resp_free(&r);
  free(body);
  devs = json_array();
  json_array_append_new(devs, tt_device_json(&d));
  body = tt_download_body(TT_ACCOUNT, devs, "NO_SUCH_PLAN");
  tt_download_req(s, &r, &a, body);
  tt_expect_error("bad plan (checked after the devices)", &r, 400,
                  "INPUT_INVALID.ServicePlan.Invalid", NULL);
  tt_resp_free(&r);
  free(body);
  devs = json_array();
  json_array_append_new(devs, tt_device_json(&d));
  json_array_append_new(devs, json_pack("{s[{ssss}]}", "deviceIds", "kind", "eid", "id", "1"));
  body = tt_download_body(TT_ACCOUNT, devs, NULL);
  tt_download_req(s, &r, &a, body);
  tt_expect_error("bad second device", &r, 400, "INPUT_INVALID.Device.Id.Invalid", NULL);
  tt_resp_free(&r);
  free(body);
  /* a 429 that drops the request */
  tt_sim_faults(s, "{\"faults\":[{\"kind\":\"429\",\"count\":1,\"endpoint\":\"download\"}]}");
  body = tt_seeds_body((const unsigned long[]){11}, 1);
  tt_download_req(s, &r, &a, body);
  tt_expect_status("429", &r, 429);
  tt_resp_free(&r);
  tt_stats_expect(s, "refused", TT_ST("downloads.received", 5), TT_ST("downloads.accepted", 0),
                  TT_ST("downloads.eids", 0), TT_ST("downloads.eids_repeated", 0), NULL);
  ck_assert_int_eq(tt_eid_downloads(s, d.eid), 0);
  /* the same device accepted now is held by exactly one download */
  free(tt_download_ok(s, &a, body));
  ck_assert_int_eq(tt_eid_downloads(s, d.eid), 1);
  tt_stats_expect(s, "accepted once", TT_ST("downloads.eids", 1),
                  TT_ST("downloads.eids_repeated", 0), NULL);
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* Enough EIDs to grow the table several times: the counts survive each growth. */
START_TEST(test_eids_distinct) {
  enum { N = 5000 };
  tt_sim *s = tt_sim_start(NULL);
  static unsigned long first[N], second[N];
  unsigned long i;
  tt_auth a;
  tt_auth_get(s, &a);
  for (i = 0; i < N; i++) {
    first[i] = 1000 + i;
    second[i] = 1000 + N + i;
  }
  download_seeds(s, &a, first, N);
  download_seeds(s, &a, second, N);
  tt_stats_expect(s, "two distinct downloads", TT_ST("downloads.devices_accepted", 2 * N),
                  TT_ST("downloads.eids", 2 * N), TT_ST("downloads.eids_repeated", 0), NULL);
  download_seeds(s, &a, first, N);
  tt_stats_expect(s, "the first again", TT_ST("downloads.eids", 2 * N),
                  TT_ST("downloads.eids_repeated", N), NULL);
  for (i = 0; i < N; i += 997) {
    ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(first[i])), 2);
    ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(second[i])), 1);
  }
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_eids_reset) {
  tt_sim *s = tt_sim_start(NULL);
  tt_auth a;
  tt_resp r;
  json_t *got;
  tt_auth_get(s, &a);
  download_seeds(s, &a, (const unsigned long[]){21, 22}, 2);
  download_seeds(s, &a, (const unsigned long[]){21}, 1);
  tt_stats_expect(s, "before reset", TT_ST("downloads.eids", 2),
                  TT_ST("downloads.eids_repeated", 1), NULL);
  tt_req(s, &r, "DELETE", "/_sim/stats", NULL, NULL);
  tt_expect_status("DELETE /_sim/stats", &r, 200);
  got = tt_json("DELETE /_sim/stats", &r);
  ck_assert_int_eq(tt_stat_of(got, "downloads.eids"), 0);
  ck_assert_int_eq(tt_stat_of(got, "downloads.eids_repeated"), 0);
  json_decref(got);
  tt_resp_free(&r);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(21)), 0);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(22)), 0);
  /* forgotten, not only the totals: one more download of it is its first */
  download_seeds(s, &a, (const unsigned long[]){21}, 1);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(21)), 1);
  tt_stats_expect(s, "after reset", TT_ST("downloads.eids", 1), TT_ST("downloads.eids_repeated", 0),
                  NULL);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_eids_bad_path) {
  static const char *const bad[] = {
      "/_sim/eids/",
      "/_sim/eids/8904903200001000000000000123456",   /* 31 digits */
      "/_sim/eids/890490320000100000000000012345680", /* 33 digits */
      "/_sim/eids/8904903200001000000000000123456x",
      "/_sim/eids/89049032000010000000000001234568/x",
  };
  tt_sim *s = tt_sim_start(NULL);
  tt_resp r;
  size_t i;
  for (i = 0; i < ARRAY_LEN(bad); i++) {
    tt_req(s, &r, "GET", bad[i], NULL, NULL);
    tt_expect_error(bad[i], &r, 400, "INPUT_INVALID.Device.Id.Invalid", "32 decimal digits");
    tt_resp_free(&r);
  }
  tt_req(s, &r, "DELETE", "/_sim/eids/89049032000010000000000001234568", NULL, NULL);
  tt_expect_error("DELETE an EID", &r, 405, "REQUEST_FAILED.MethodNotAllowed", NULL);
  tt_resp_free(&r);
  /* 32 digits without a valid check is simply never seen */
  ck_assert_int_eq(tt_eid_downloads(s, "00000000000000000000000000000000"), 0);
  ck_assert_int_eq(tt_eid_downloads(s, "99999999999999999999999999999999"), 0);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* One download of 2 devices with a listener registered; waits `wait` seconds
 * (or, when wait is 0, for the 2 callbacks) and returns the callbacks heard. */
static size_t callbacks_heard(tt_sim *s, double wait) {
  tt_listener *l = tt_listener_start(NULL, NULL);
  tt_auth a;
  size_t n;
  tt_auth_get(s, &a);
  tt_register(s, &a, TT_ACCOUNT, l->url, NULL, NULL);
  download_seeds(s, &a, (const unsigned long[]){31, 32}, 2);
  n = wait > 0 ? (tt_sleep(wait), tt_listener_count(l)) : tt_listener_wait(l, 2, 10.0);
  tt_stats_expect(s, "accepted", TT_ST("downloads.accepted", 1), TT_ST("downloads.eids", 2), NULL);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
  tt_listener_stop(l);
  return n;
}

START_TEST(test_no_callbacks) {
  tt_sim *s;
  char conf[PATH_MAX];
  double t0 = tt_now(), took, wait;
  size_t n;
  /* with callbacks on, the same setup delivers both, and how long that takes... */
  s = tt_sim_start(NULL);
  ck_assert_uint_eq(callbacks_heard(s, 0), 2);
  took = tt_now() - t0;
  /* ...is what the runs below wait, several times over */
  wait = 5 * took > 0.5 ? 5 * took : 0.5;
  s = tt_sim_start((const char *[]){"--no-callbacks", NULL});
  n = callbacks_heard(s, wait);
  ck_assert_msg(n == 0, "--no-callbacks: %zu callbacks within %.2f s", n, wait);
  /* the counters, on a simulator still running */
  {
    tt_auth a;
    s = tt_sim_new();
    tt_sim_path(s, "sim.conf", conf);
    tt_write_file(conf, "no-callbacks = true\n");
    tt_sim_launch(s, (const char *[]){"--config", conf, NULL});
    tt_auth_get(s, &a);
    tt_register(s, &a, TT_ACCOUNT, "http://127.0.0.1:9/", NULL, NULL);
    download_seeds(s, &a, (const unsigned long[]){33, 34}, 2);
    tt_sleep(wait);
    tt_stats_expect(s, "no-callbacks = true", TT_ST("downloads.accepted", 1),
                    TT_ST("downloads.devices_accepted", 2), TT_ST("callbacks.queued", 0),
                    TT_ST("callbacks.attempted", 0), TT_ST("callbacks.delivered", 0),
                    TT_ST("callbacks.failed", 0), TT_ST("callbacks.pending", 0),
                    TT_ST("callbacks.no_listener", 0), NULL);
    tt_auth_free(&a);
    ck_assert_int_eq(tt_sim_stop(s), 0);
  }
  /* and "= false" in a config file leaves them on */
  s = tt_sim_new();
  tt_sim_path(s, "sim.conf", conf);
  tt_write_file(conf, "no-callbacks = false\n");
  tt_sim_launch(s, (const char *[]){"--config", conf, NULL});
  ck_assert_uint_eq(callbacks_heard(s, 0), 2);
}
END_TEST

/* The crash tests' contract: a download is counted received before the
 * latency, and accepted (its EIDs too) only after it. */
START_TEST(test_received_before_latency) {
  tt_sim *s = tt_sim_start((const char *[]){"--latency-ms", "1500", "--no-callbacks", NULL});
  tt_auth a;
  tt_resp r;
  char *body = tt_seeds_body((const unsigned long[]){41}, 1);
  pid_t child;
  int status;
  tt_auth_get(s, &a);
  fflush(NULL);
  child = fork();
  ck_assert_int_ne(child, -1);
  if (child == 0) {
    tt_download_req(s, &r, &a, body);
    _exit(0);
  }
  ck_assert_int_eq(tt_stat_wait(s, "downloads.received", 1, 5.0), 1);
  tt_stats_expect(s, "while the latency runs", TT_ST("downloads.accepted", 0),
                  TT_ST("downloads.eids", 0), NULL);
  kill(child, SIGKILL);
  ck_assert_int_eq(waitpid(child, &status, 0), child);
  /* the simulator goes on: the download takes effect although nobody hears it */
  ck_assert_int_eq(tt_stat_wait(s, "downloads.accepted", 1, 5.0), 1);
  ck_assert_int_eq(tt_eid_downloads(s, tt_plain_eid(41)), 1);
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("sim_api");
  TCase *tc = tt_tcase(s, "paths", 30);
  tcase_add_test(tc, test_not_found_and_method);
  tcase_add_test(tc, test_body_too_large);
  tc = tt_tcase(s, "token", 20);
  tcase_add_test(tc, test_token_bad_client);
  tcase_add_test(tc, test_token_grant);
  tcase_add_test(tc, test_token_reuse);
  tcase_add_test(tc, test_token_expiry);
  tc = tt_tcase(s, "session", 20);
  tcase_add_test(tc, test_bearer_checks);
  tcase_add_test(tc, test_session_checks);
  tcase_add_test(tc, test_login_body);
  tcase_add_test(tc, test_login_lockout);
  tcase_add_test(tc, test_lock_after_option);
  tcase_add_test(tc, test_session_idle);
  tcase_add_test(tc, test_logout);
  tc = tt_tcase(s, "callbacks", 20);
  tcase_add_test(tc, test_callbacks_crud);
  tcase_add_test(tc, test_callbacks_accounts);
  tcase_add_loop_test(tc, test_callbacks_invalid, 0, (int)ARRAY_LEN(bad_registrations));
  tc = tt_tcase(s, "download", 30);
  tcase_add_test(tc, test_download_order);
  tcase_add_loop_test(tc, test_download_device_rule, 0, (int)ARRAY_LEN(dev_cases));
  tcase_add_test(tc, test_download_limits);
  tcase_add_test(tc, test_download_plan);
  tcase_add_test(tc, test_download_ok);
  tc = tt_tcase(s, "admin", 20);
  tcase_add_test(tc, test_stats_shape_and_reset);
  tcase_add_test(tc, test_stats_reset_keeps_pending);
  tcase_add_test(tc, test_faults_from_options);
  tcase_add_test(tc, test_faults_round_trip);
  tcase_add_test(tc, test_faults_bad_body);
  tcase_add_test(tc, test_revoke);
  tcase_add_test(tc, test_sim_never_faulted);
  tc = tt_tcase(s, "process", 30);
  tcase_add_test(tc, test_startup_and_sigterm);
  tcase_add_test(tc, test_sigint);
  tcase_add_loop_test(tc, test_bad_option, 0, (int)ARRAY_LEN(bad_opts));
  tcase_add_test(tc, test_help_version);
  tcase_add_test(tc, test_config_file);
  tcase_add_test(tc, test_config_errors);
  tcase_add_test(tc, test_log);
  tcase_add_test(tc, test_log_stderr);
  tcase_add_test(tc, test_tls);
  tc = tt_tcase(s, "hardening", 30);
  tcase_add_test(tc, test_body_budget);
  tcase_add_test(tc, test_body_budget_whole);
  tcase_add_test(tc, test_connection_timeout);
  tcase_add_loop_test(tc, test_connection_limit, 0, (int)ARRAY_LEN(conn_limits));
  tcase_add_loop_test(tc, test_callbacks_loopback_only, 0, (int)ARRAY_LEN(cb_hosts));
  tcase_add_test(tc, test_log_escapes);
  tcase_add_loop_test(tc, test_option_errors_hide_secrets, 0, (int)ARRAY_LEN(secret_opts));
  tcase_add_test(tc, test_credential_compare);
  tc = tt_tcase(s, "eids", 60);
  tcase_add_test(tc, test_eids_repeated);
  tcase_add_test(tc, test_eids_refused_count_nothing);
  tcase_add_test(tc, test_eids_distinct);
  tcase_add_test(tc, test_eids_reset);
  tcase_add_test(tc, test_eids_bad_path);
  tcase_add_test(tc, test_no_callbacks);
  tcase_add_test(tc, test_received_before_latency);
  return s;
}

TT_MAIN(suite)
