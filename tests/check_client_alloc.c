/*
 * check_client_alloc.c - every allocation of the client failed in turn, over
 * whole calls against tools/tsesim-sim: tsesim_client_new, login, download,
 * callback registration and removal, logout.
 *
 * Each run makes a fresh client (outside the failing window), makes the n-th
 * allocation of libtsesim from then on fail, runs the call, and checks its
 * code against what the simulator saw (its /_sim/stats and its listeners):
 *   - nothing of the call reached the server: TSESIM_E_NOMEM;
 *   - a download or registration reached it: never a code that reads as
 *     "nothing was sent" (NOMEM, TRANSPORT, TIMEOUT, TLS, INVAL), and when
 *     the server acted on it (a download accepted, a listener registered)
 *     only TSESIM_OK or TSESIM_E_UNKNOWN_OUTCOME;
 *   - nothing leaks (tsesim__test_alloc_live is back where it started).
 * The loop ends at the first run in which no allocation failed, which must
 * succeed. Only libtsesim's own allocations fail: jansson's and libcurl's
 * allocators are never replaced.
 */
#include "tt_sim.h"

#define MAX_RUNS 2000 /* far more than any call makes */

static void no_sleep(long ms, void *payload) {
  (void)ms;
  (void)payload;
}

/* Options for s: the simulator's client and user, waits not slept. */
static void opts_for(tt_opts *t, const tt_sim *s) {
  tt_opts_for(t, s);
  t->o.sleep_fn = no_sleep;
}

static tsesim_client *client_for(const tt_sim *s) {
  tt_opts t;
  tsesim_client *c = NULL;
  opts_for(&t, s);
  ck_assert_int_eq(tsesim_client_new(&c, &t.o), TSESIM_OK);
  return c;
}

static int reads_as_not_sent(tsesim_code rc) {
  return rc == TSESIM_E_NOMEM || rc == TSESIM_E_TRANSPORT || rc == TSESIM_E_TIMEOUT ||
         rc == TSESIM_E_TLS || rc == TSESIM_E_INVAL;
}

/* The rule for a call that must not be repeated once sent (a download, a
 * registration): sent = requests of it that reached the server in this run,
 * acted = whether the server acted on it. */
static void expect_sent_rule(const char *what, unsigned long n, int failed, tsesim_code rc,
                             long sent, int acted, const tsesim_client *c) {
  const char *msg = tsesim_client_errmsg(c);
  if (!failed) {
    ck_assert_msg(rc == TSESIM_OK, "%s, run %lu: no allocation failed but %s (%s)", what, n,
                  tsesim_code_name(rc), msg);
    return;
  }
  ck_assert_msg(rc != TSESIM_OK || acted, "%s, run %lu: TSESIM_OK but the server did not act", what,
                n);
  if (acted)
    ck_assert_msg(rc == TSESIM_OK || rc == TSESIM_E_UNKNOWN_OUTCOME,
                  "%s, run %lu: the server acted, but the call returned %s (%s)", what, n,
                  tsesim_code_name(rc), msg);
  else if (sent)
    ck_assert_msg(!reads_as_not_sent(rc),
                  "%s, run %lu: sent and answered, but the call returned %s (%s)", what, n,
                  tsesim_code_name(rc), msg);
  else
    ck_assert_msg(rc == TSESIM_E_NOMEM, "%s, run %lu: nothing sent, %s, expected NOMEM (%s)", what,
                  n, tsesim_code_name(rc), msg);
  if (rc != TSESIM_OK)
    ck_assert_msg(msg[0] != '\0', "%s, run %lu: %s without errmsg", what, n, tsesim_code_name(rc));
}

static void expect_no_leak(const char *what, unsigned long n, size_t live0) {
  size_t live = tsesim__test_alloc_live();
  ck_assert_msg(live == live0, "%s, run %lu: %ld bytes leaked", what, n, (long)(live - live0));
}

static void sim_post(const tt_sim *s, const char *path, const char *body) {
  tt_resp r;
  tt_req(s, &r, "POST", path, (const char *[]){"Content-Type: application/json", NULL}, body);
  tt_expect_status(path, &r, 200);
  tt_resp_free(&r);
}

/* ---- tsesim_client_new ---- */

START_TEST(test_new_alloc) {
  tt_sim *s = tt_sim_start(NULL);
  tt_opts t;
  tsesim_client *c = NULL;
  char errbuf[TSESIM_ERRBUF_SIZE];
  opts_for(&t, s);
  t.o.access_token = "at-ready"; /* every string option copied */
  t.o.session_token = "st-ready";
  t.o.user_agent = "check-client-alloc/1";
  TT_FAIL_EACH_ALLOC(rc = tsesim_client_new(&c, &t.o), c == NULL, tsesim_client_free(c));
  /* the same with errbuf: it says so */
  TT_FAIL_EACH_ALLOC(
      {
        errbuf[0] = '\0';
        rc = tsesim_client_new_v2(&c, &t.o, errbuf);
        if (rc == TSESIM_E_NOMEM) tt_expect_str("new_v2", "errbuf", errbuf, "out of memory");
      },
      c == NULL, tsesim_client_free(c));
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- login and logout ---- */

/* call over a fresh client each run, the n-th allocation failing (after a
 * login first when logged_in): OK, or NOMEM when an allocation failed; then
 * the same call again succeeds, for a failure leaves the client usable (and
 * after a failed logout the session is still the client's to end). */
static void session_call_loop(const tt_sim *s, const char *what,
                              tsesim_code (*call)(tsesim_client *), int logged_in) {
  unsigned long n;
  for (n = 1; n < MAX_RUNS; n++) {
    size_t live0 = tsesim__test_alloc_live();
    tsesim_client *c = client_for(s);
    tsesim_code rc;
    int failed;
    if (logged_in) ck_assert_int_eq(tsesim_client_login(c), TSESIM_OK);
    tt_alloc_arm(n);
    rc = call(c);
    failed = tt_alloc_disarm();
    ck_assert_msg(rc == TSESIM_OK || (failed && rc == TSESIM_E_NOMEM), "%s, run %lu: %s (%s)", what,
                  n, tsesim_code_name(rc), tsesim_client_errmsg(c));
    if (rc != TSESIM_OK) ck_assert_int_eq(call(c), TSESIM_OK);
    tsesim_client_free(c);
    expect_no_leak(what, n, live0);
    if (!failed) break;
  }
  ck_assert_uint_gt(n, 1);
}

START_TEST(test_login_alloc) {
  tt_sim *s = tt_sim_start(NULL);
  session_call_loop(s, "login", tsesim_client_login, 0);
  tt_stats_expect(s, "login loop", TT_ST("logins.refused", 0), TT_ST("tokens.refused", 0), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_logout_alloc) {
  tt_sim *s = tt_sim_start(NULL);
  session_call_loop(s, "logout", tsesim_client_logout, 1);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- the download ---- */

/* What happens before the download in each variant, after the client logged in. */
static const char *const download_setups[] = {
    NULL,                       /* a fresh client: token, login, download */
    "{\"access_tokens\":true}", /* a 401 fault, a new access token, a replay */
    "{\"sessions\":true}",      /* SessionToken.Expired, a new login, a replay */
    "{\"faults\":[{\"kind\":\"429\",\"endpoint\":\"download\",\"count\":1}]}", /* 429, retry */
};

START_TEST(test_download_alloc) {
  tt_sim *s = tt_sim_start(NULL);
  const char *setup = download_setups[_i];
  tsesim_request *req = NULL;
  tt_device d;
  unsigned long n, answered_runs = 0;
  char what[32];
  snprintf(what, sizeof what, "download %d", _i);
  ck_assert_int_eq(tsesim_request_new(&req, TT_ACCOUNT), TSESIM_OK);
  tt_plain_device(&d, 4000 + (unsigned long)_i);
  ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  for (n = 1; n < MAX_RUNS; n++) {
    size_t live0 = tsesim__test_alloc_live();
    tsesim_client *c = client_for(s);
    char *id = (char *)"sentinel";
    json_t *before, *after;
    long sent, accepted;
    tsesim_code rc;
    int failed;
    if (_i == 1 || _i == 2) {
      ck_assert_int_eq(tsesim_client_login(c), TSESIM_OK);
      sim_post(s, "/_sim/revoke", setup);
    } else if (_i == 3) {
      tt_sim_faults(s, setup);
    }
    before = tt_stats(s);
    tt_alloc_arm(n);
    rc = tsesim_client_download(&id, c, req);
    failed = tt_alloc_disarm();
    after = tt_stats(s);
    sent = tt_stat_of(after, "requests.download") - tt_stat_of(before, "requests.download");
    accepted = tt_stat_of(after, "downloads.accepted") - tt_stat_of(before, "downloads.accepted");
    json_decref(before);
    json_decref(after);
    ck_assert_msg(accepted <= 1, "%s, run %lu: %ld downloads accepted", what, n, accepted);
    expect_sent_rule(what, n, failed, rc, sent, accepted == 1, c);
    if (rc == TSESIM_OK) {
      ck_assert_msg(tt_is_uuid4(id), "%s, run %lu: requestId \"%s\"", what, n, id);
      tsesim_free(id);
    } else {
      ck_assert_ptr_null(id);
    }
    if (failed && sent && !accepted && rc == TSESIM_E_API) { /* the answer it had stands */
      const tsesim_api_error *e = tsesim_client_last_error(c);
      ck_assert_msg(e && e->http_status >= 400, "%s, run %lu: TSESIM_E_API without last_error",
                    what, n);
    }
    answered_runs += failed && sent;
    tsesim_client_free(c);
    expect_no_leak(what, n, live0);
    if (!failed) break;
  }
  ck_assert_uint_gt(n, 1);
  /* A fresh client allocates nothing once the download is sent; in the other
   * variants the renewal or the retry after the first answer does. */
  if (_i == 0)
    ck_assert_msg(answered_runs == 0, "%s: %lu failing runs after the download was sent", what,
                  answered_runs);
  else
    ck_assert_msg(answered_runs > 0, "%s: no failing run after the first answer (%lu runs)", what,
                  n);
  tt_sim_faults(s, "{\"faults\":[]}");
  tsesim_request_free(req);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- callback registration ---- */

/* 1 when account TT_ACCOUNT has a listener named service. */
static int registered(const tt_sim *s, const tt_auth *a, const char *service) {
  tt_resp r;
  json_t *list, *item;
  size_t i;
  int found = 0;
  tt_m2m(s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, a->token, a->session, NULL);
  tt_expect_status("list listeners", &r, 200);
  list = tt_json("list listeners", &r);
  json_array_foreach(list, i, item) found |= !strcmp(tt_jstr(item, "name"), service);
  json_decref(list);
  tt_resp_free(&r);
  return found;
}

/* _i 0: a fresh client; 1: a logged-in client whose access token was revoked
 * (a 401 fault, a new token, a replay). */
START_TEST(test_register_alloc) {
  tt_sim *s = tt_sim_start(NULL);
  unsigned long n, answered_runs = 0;
  tt_auth a;
  tt_auth_get(s, &a);
  for (n = 1; n < MAX_RUNS; n++) {
    size_t live0 = tsesim__test_alloc_live();
    tsesim_client *c = client_for(s);
    char service[32];
    long before, sent;
    int failed, acted;
    tsesim_code rc;
    snprintf(service, sizeof service, "Reg%lu", n);
    if (_i == 1) {
      ck_assert_int_eq(tsesim_client_login(c), TSESIM_OK);
      sim_post(s, "/_sim/revoke", "{\"access_tokens\":true}");
      tt_auth_free(&a); /* the harness's token went too */
      tt_auth_get(s, &a);
    }
    before = tt_stat(s, "requests.callbacks");
    tt_alloc_arm(n);
    rc = tsesim_client_register_callback(c, TT_ACCOUNT, service, "http://127.0.0.1:9/cb", "u",
                                         "listener-pass");
    failed = tt_alloc_disarm();
    acted = registered(s, &a, service);
    sent = tt_stat(s, "requests.callbacks") - before - 1; /* not the listing */
    expect_sent_rule("register", n, failed, rc, sent, acted, c);
    answered_runs += failed && sent;
    tsesim_client_free(c);
    expect_no_leak("register", n, live0);
    if (!failed) break;
  }
  ck_assert_uint_gt(n, 1);
  if (_i == 1)
    ck_assert_msg(answered_runs > 0, "no failing run after the first answer (%lu runs)", n);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_unregister_alloc) {
  tt_sim *s = tt_sim_start(NULL);
  unsigned long n;
  tt_auth a;
  tt_auth_get(s, &a);
  for (n = 1; n < MAX_RUNS; n++) {
    size_t live0 = tsesim__test_alloc_live();
    tsesim_client *c = client_for(s);
    char service[32], body[128];
    tt_resp r;
    int failed, gone;
    tsesim_code rc;
    snprintf(service, sizeof service, "Unreg%lu", n);
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"url\":\"http://127.0.0.1:9/cb\"}", service);
    tt_m2m(s, &r, "POST", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, body);
    tt_expect_status("register", &r, 200);
    tt_resp_free(&r);
    tt_alloc_arm(n);
    rc = tsesim_client_unregister_callback(c, TT_ACCOUNT, service);
    failed = tt_alloc_disarm();
    gone = !registered(s, &a, service);
    if (!failed || gone)
      ck_assert_msg(rc == TSESIM_OK, "unregister, run %lu: %s, listener %s (%s)", n,
                    tsesim_code_name(rc), gone ? "removed" : "still there",
                    tsesim_client_errmsg(c));
    else
      ck_assert_msg(rc == TSESIM_E_NOMEM, "unregister, run %lu: not removed, %s (%s)", n,
                    tsesim_code_name(rc), tsesim_client_errmsg(c));
    tsesim_client_free(c);
    expect_no_leak("unregister", n, live0);
    if (!failed) break;
  }
  ck_assert_uint_gt(n, 1);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("client_alloc");
  TCase *tc = tt_tcase(s, "alloc", 240);
  tcase_add_test(tc, test_new_alloc);
  tcase_add_test(tc, test_login_alloc);
  tcase_add_test(tc, test_logout_alloc);
  tcase_add_loop_test(tc, test_download_alloc, 0, (int)ARRAY_LEN(download_setups));
  tcase_add_loop_test(tc, test_register_alloc, 0, 2);
  tcase_add_test(tc, test_unregister_alloc);
  return s;
}

TT_MAIN_GLOBAL(suite)
