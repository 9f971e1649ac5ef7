/*
 * check_client.c - the HTTP client (tsesim_client_*) against tools/tsesim-sim
 * over loopback: options and base URL checks, lazy tokens and session, their
 * renewal and replays, remembered refusals, the token hook, the retries that
 * cannot duplicate a download (429/503 with Retry-After, nothing sent) and
 * the failures that must not be retried (500, close, truncate, timeout after
 * sending), secure defaults (no redirects, TLS verification, the response
 * cap), redacted logging, connection reuse, one client per thread, and the
 * request limits.
 *
 * Time is injected (clock_fn/sleep_fn): back-off waits are recorded, never
 * slept. What the client did on the wire is read from the simulator's
 * /_sim/stats; connection reuse from the kernel's table of TCP sockets.
 */
#define TSESIM__WITH_CURL /* the client struct: its curl handle, for CURLINFO_NUM_CONNECTS */
#include "tt_sim.h"

#define SIM_KEY "sim-key"
#define SIM_SECRET "sim-secret"
#define SIM_USER "sim-user"
#define SIM_PASS "sim-pass"
#define SIM_BASIC_B64 "c2ltLWtleTpzaW0tc2VjcmV0" /* base64("sim-key:sim-secret") */
#define T0_MS 1000000LL                          /* the injected clock's start */

/* ---- recorders: injected time, log lines, token_fn calls ---- */

typedef struct fake_time {
  long long now;   /* ms */
  long sleeps[64]; /* every sleep_fn call, in order */
  size_t n_sleeps;
} fake_time;

/* clock_fn is in seconds; the recorder keeps milliseconds. */
static double fake_clock(void *payload) { return (double)((fake_time *)payload)->now / 1000.0; }

static void fake_sleep(long ms, void *payload) {
  fake_time *t = payload;
  if (t->n_sleeps < ARRAY_LEN(t->sleeps)) t->sleeps[t->n_sleeps] = ms;
  t->n_sleeps++;
  t->now += ms;
}

/* Asserts the waits sleep_fn was asked for: exactly n, in ms, in order. */
static void expect_sleeps(const char *ctx, const fake_time *t, size_t n, ...) {
  va_list ap;
  size_t i;
  ck_assert_msg(t->n_sleeps == n, "%s: %zu sleeps, expected %zu", ctx, t->n_sleeps, n);
  va_start(ap, n);
  for (i = 0; i < n; i++) {
    long want = va_arg(ap, long);
    ck_assert_msg(t->sleeps[i] == want, "%s: sleep %zu was %ld ms, expected %ld", ctx, i,
                  t->sleeps[i], want);
  }
  va_end(ap);
}

typedef struct log_cap {
  int *levels;
  char **lines;
  size_t n, cap;
} log_cap;

static void log_record(int level, const char *line, void *payload) {
  log_cap *l = payload;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->lines = realloc(l->lines, l->cap * sizeof *l->lines);
    l->levels = realloc(l->levels, l->cap * sizeof *l->levels);
    if (!l->lines || !l->levels) abort();
  }
  l->levels[l->n] = level;
  l->lines[l->n] = strdup(line ? line : "(null)");
  if (!l->lines[l->n]) abort();
  l->n++;
}

static void log_free(log_cap *l) {
  size_t i;
  for (i = 0; i < l->n; i++) free(l->lines[i]);
  free(l->lines);
  free(l->levels);
  memset(l, 0, sizeof *l);
}

/* Log lines that contain every one of the (NULL-terminated) strings. */
static size_t log_count(const log_cap *l, ...) {
  size_t i, n = 0;
  for (i = 0; i < l->n; i++) {
    va_list ap;
    const char *s;
    int all = 1;
    va_start(ap, l);
    while ((s = va_arg(ap, const char *)) != NULL)
      if (!strstr(l->lines[i], s)) all = 0;
    va_end(ap);
    n += all;
  }
  return n;
}

/* Log lines of level that contain text. */
static size_t log_count_level(const log_cap *l, int level, const char *text) {
  size_t i, n = 0;
  for (i = 0; i < l->n; i++) n += l->levels[i] == level && strstr(l->lines[i], text) != NULL;
  return n;
}

typedef struct tok_rec {
  tsesim_token_kind kind;
  char *token; /* NULL: dropped */
  long expires_in;
} tok_rec;

typedef struct tok_log {
  tok_rec r[32];
  size_t n;
} tok_log;

/* While set, every token the client is given is added to the library's
 * secret watch (see test_secrets_zeroed). */
static int watch_tokens;

static void tok_record(tsesim_token_kind kind, const char *token, long expires_in, void *payload) {
  tok_log *t = payload;
  if (watch_tokens && token) tsesim__test_watch_secret(token);
  if (t->n < ARRAY_LEN(t->r)) {
    t->r[t->n].kind = kind;
    t->r[t->n].token = token ? strdup(token) : NULL;
    t->r[t->n].expires_in = expires_in;
  }
  t->n++;
}

static void tok_free(tok_log *t) {
  size_t i;
  for (i = 0; i < t->n && i < ARRAY_LEN(t->r); i++) free(t->r[i].token);
  t->n = 0;
}

/* ---- a client under test, with its recorders ---- */

typedef struct cl {
  tsesim_options o;
  char url[256];
  fake_time t;
  log_cap log;
  tok_log toks;
  tsesim_client *c;
} cl;

/* Options for the server at base (http://127.0.0.1:port) with the
 * simulator's default client and user, every hook recording, log level 3. */
static void cl_init_base(cl *k, const char *base) {
  memset(k, 0, sizeof *k);
  ck_assert_int_eq(tsesim_options_init(&k->o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  snprintf(k->url, sizeof k->url, "%s/api", base);
  k->o.base_url = k->url;
  k->o.client_id = SIM_KEY;
  k->o.client_secret = SIM_SECRET;
  k->o.username = SIM_USER;
  k->o.password = SIM_PASS;
  k->o.log_fn = log_record;
  k->o.log_payload = &k->log;
  k->o.log_level = 3;
  k->o.token_fn = tok_record;
  k->o.token_payload = &k->toks;
  k->o.clock_fn = fake_clock;
  k->o.sleep_fn = fake_sleep;
  k->o.time_payload = &k->t;
  k->t.now = T0_MS;
}

static void cl_init(cl *k, const tt_sim *s) { cl_init_base(k, s->base); }

static void cl_new(cl *k) {
  tsesim_code rc = tsesim_client_new(&k->c, &k->o);
  ck_assert_msg(rc == TSESIM_OK, "tsesim_client_new: %s", tsesim_code_name(rc));
  ck_assert_ptr_nonnull(k->c);
}

static void cl_start(cl *k, const tt_sim *s) {
  cl_init(k, s);
  cl_new(k);
}

static void cl_free(cl *k) {
  tsesim_client_free(k->c);
  k->c = NULL;
  log_free(&k->log);
  tok_free(&k->toks);
}

/* The end of most tests: the client, its request, and a clean simulator exit. */
static void cl_end(cl *k, tsesim_request *req, tt_sim *s) {
  cl_free(k);
  tsesim_request_free(req);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}

static void expect_rc(const char *ctx, tsesim_code got, tsesim_code want, const tsesim_client *c) {
  ck_assert_msg(got == want, "%s: %s, expected %s; errmsg \"%s\"", ctx, tsesim_code_name(got),
                tsesim_code_name(want), tsesim_client_errmsg(c));
}

/* A request for TT_ACCOUNT with n valid devices (tt_ids.h) from seed on. */
static tsesim_request *make_req(size_t n, unsigned long seed) {
  tsesim_request *r = NULL;
  tt_device d;
  size_t i;
  ck_assert_int_eq(tsesim_request_new(&r, TT_ACCOUNT), TSESIM_OK);
  for (i = 0; i < n; i++) {
    tt_plain_device(&d, seed + i);
    ck_assert_int_eq(tsesim_request_add_device(r, d.ids, 3), TSESIM_OK);
  }
  return r;
}

/* The start of most tests: a simulator started with args (NULL-terminated,
 * or NULL), a request of n devices from seed on, and a client for it. */
static tt_sim *cl_sim(cl *k, tsesim_request **req, const char *const *args, size_t n,
                      unsigned long seed) {
  tt_sim *s = tt_sim_start(args);
  *req = make_req(n, seed);
  cl_start(k, s);
  return s;
}

/* A download that must succeed with a UUID v4 requestId. (errmsg and
 * last_error may keep what a retried attempt or a renewal met on the way.) */
static void download_ok(const char *ctx, cl *k, const tsesim_request *req) {
  char *id = NULL;
  tsesim_code rc = tsesim_client_download(&id, k->c, req);
  expect_rc(ctx, rc, TSESIM_OK, k->c);
  ck_assert_msg(tt_is_uuid4(id), "%s: requestId \"%s\" is not a UUID v4", ctx, id);
  tsesim_free(id);
}

/* After a call that succeeded without any failed attempt: errmsg "", no last_error. */
static void expect_clean(const char *ctx, const tsesim_client *c) {
  tt_expect_str(ctx, "errmsg", tsesim_client_errmsg(c), "");
  ck_assert_msg(tsesim_client_last_error(c) == NULL, "%s: last_error set after a success", ctx);
}

static tsesim_code download(cl *k, const tsesim_request *req) {
  char *id = (char *)"sentinel";
  tsesim_code rc = tsesim_client_download(&id, k->c, req);
  if (rc != TSESIM_OK) ck_assert_msg(id == NULL, "a failed download left *out set");
  tsesim_free(id);
  return rc;
}

/* Asserts that no /api request reached s. */
static void expect_no_api(const tt_sim *s, const char *ctx) {
  tt_stats_expect(s, ctx, TT_ST("requests.token", 0), TT_ST("requests.login", 0),
                  TT_ST("requests.logout", 0), TT_ST("requests.callbacks", 0),
                  TT_ST("requests.download", 0), TT_ST("requests.other", 0), NULL);
}

static void sim_revoke_all(const tt_sim *s, const char *body) {
  tt_resp r;
  tt_req(s, &r, "POST", "/_sim/revoke", (const char *[]){"Content-Type: application/json", NULL},
         body);
  tt_expect_status("POST /_sim/revoke", &r, 200);
  tt_resp_free(&r);
}

static void expect_last_error(const char *ctx, const tsesim_client *c, long status,
                              const char *code, long retry_after) {
  const tsesim_api_error *e = tsesim_client_last_error(c);
  ck_assert_msg(e != NULL, "%s: no last_error (errmsg \"%s\")", ctx, tsesim_client_errmsg(c));
  ck_assert_msg(e->http_status == status, "%s: last_error http_status %ld, expected %ld", ctx,
                e->http_status, status);
  tt_expect_str(ctx, "last_error.code", e->code, code);
  ck_assert_msg(e->retry_after == retry_after, "%s: last_error retry_after %ld, expected %ld", ctx,
                e->retry_after, retry_after);
  ck_assert_msg(e->body != NULL, "%s: last_error without body", ctx);
}

static const tok_rec *tok_nth(const tok_log *t, size_t i) {
  ck_assert_msg(i < t->n && i < ARRAY_LEN(t->r), "token_fn called %zu times, no call %zu", t->n, i);
  return &t->r[i];
}

/* The i-th token of kind that token_fn was given (drops, token NULL, skipped), or NULL. */
static const char *tok_given(const tok_log *t, tsesim_token_kind kind, size_t i) {
  size_t j;
  ck_assert_uint_le(t->n, ARRAY_LEN(t->r));
  for (j = 0; j < t->n; j++)
    if (t->r[j].kind == kind && t->r[j].token && i-- == 0) return t->r[j].token;
  return NULL;
}

/* How many tokens of kind token_fn was given (drops not counted). */
static size_t tok_count(const tok_log *t, tsesim_token_kind kind) {
  size_t n = 0;
  while (tok_given(t, kind, n)) n++;
  return n;
}

/* Asserts that the last token_fn call dropped the session. */
static void expect_session_dropped(const char *ctx, const tok_log *t) {
  const tok_rec *r;
  ck_assert_msg(t->n > 0, "%s: token_fn never called", ctx);
  r = tok_nth(t, t->n - 1);
  ck_assert_msg(r->kind == TSESIM_TOKEN_SESSION && r->token == NULL,
                "%s: the last token_fn call was kind %d, token %s, not the session's drop", ctx,
                (int)r->kind, r->token ? r->token : "NULL");
}

/* ---- tsesim_client_new ---- */

START_TEST(test_new_args) {
  tsesim_options o;
  tsesim_client *c = (tsesim_client *)&o;
  ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  o.client_id = SIM_KEY;
  o.client_secret = SIM_SECRET;
  o.username = SIM_USER;
  o.password = SIM_PASS;
  ck_assert_int_eq(tsesim_client_new(NULL, &o), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_client_new(&c, NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(c);
  o.version = 0;
  c = (tsesim_client *)&o;
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_E_INVAL);
  ck_assert_ptr_null(c);
  o.version = TSESIM_OPTIONS_VERSION + 1;
  c = (tsesim_client *)&o;
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_E_INVAL);
  ck_assert_ptr_null(c);
  o.version = 1; /* the version-1 prefix alone is fine */
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_OK);
  ck_assert_ptr_nonnull(c);
  tsesim_client_free(c);
  o.version = TSESIM_OPTIONS_VERSION;
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_OK); /* base_url NULL: the https default */
  tsesim_client_free(c);
  tsesim_client_free(NULL);
  /* NULL arguments of the other calls */
  ck_assert_int_eq(tsesim_client_login(NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_client_logout(NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(tsesim_client_last_error(NULL));
  ck_assert_ptr_nonnull(tsesim_client_errmsg(NULL));
}
END_TEST

/* base_url: https, or http:// to loopback only. */
static const char *const ok_urls[] = {"https://thingspace.verizon.com/api",
                                      "https://example.com:8443/api/",
                                      "http://127.0.0.1/api",
                                      "http://127.0.0.1:1/api",
                                      "http://127.1.2.3:8080/api",
                                      "http://127.255.255.254/api",
                                      "http://localhost/api",
                                      "http://localhost:8080/api",
                                      "http://LocalHost:1/api",
                                      "http://[::1]/api",
                                      "http://[::1]:8080/api",
                                      "http://127.0.0.1",
                                      "http://127.0.0.0/api",
                                      "http://127.255.255.255:1/api",
                                      "http://127.10.200.1/api",
                                      "http://LOCALHOST/api",
                                      "http://127.0.0.1/api?x=@example.com",
                                      "http://127.0.0.1/api#@example.com"};
static const char *const bad_urls[] = {
    "", "thingspace.verizon.com/api", "ftp://127.0.0.1/api", "file:///etc/passwd",
    "http://example.com/api", "http://10.0.0.1/api", "http://128.0.0.1/api", "http://126.0.0.1/api",
    "http://0.0.0.0/api", "http://[::2]/api", "http://127.0.0.1.example.com/api",
    "http://localhost.example.com/api", "http://localhostx/api", "http://127.0.0.1x/api",
    "http://[::1].example.com/api", "HTTP://example.com/api", "Http://10.0.0.1/api",
    /* host names that look like loopback addresses go through DNS */
    "http://127.0.0.1.1.1/api", "http://localhost.evil.com/", "http://127.0.0.1./api",
    "http://localhost./api",
    /* forms of 127.0.0.1 that some parsers accept: not four decimal parts of 0-255 */
    "http://127.1/", "http://127.0.1/", "http://127.0.0.256/", "http://0x7f.0.0.1/",
    "http://0177.0.0.1/", "http://127.0.0.01/", "http://2130706433/", "http://127.0.0.1000/",
    /* [::1] only as written, without a zone */
    "http://[0:0:0:0:0:0:0:1]/api", "http://[::1%25lo]/api", "http://[::ffff:127.0.0.1]/api",
    /* what libcurl would not parse, or would parse as another host */
    "http://127.0.0.1:99999/api", "http://127.0.0.1\\@example.com/api", "http://@127.0.0.1/api",
    "https://user:pw@example.com/api", "http://127.0.0.1/a\tb", "http://127.0.0.1/\r\nX: y"};

START_TEST(test_new_urls) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_options o;
  tsesim_client *c;
  size_t i;
  char live[128];
  ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  o.client_id = SIM_KEY;
  o.client_secret = SIM_SECRET;
  o.username = SIM_USER;
  o.password = SIM_PASS;
  for (i = 0; i < ARRAY_LEN(ok_urls); i++) {
    o.base_url = ok_urls[i];
    c = NULL;
    ck_assert_msg(tsesim_client_new(&c, &o) == TSESIM_OK && c, "refused %s", ok_urls[i]);
    tsesim_client_free(c);
  }
  for (i = 0; i < ARRAY_LEN(bad_urls); i++) {
    tsesim_code rc;
    o.base_url = bad_urls[i];
    c = (tsesim_client *)&o;
    rc = tsesim_client_new(&c, &o);
    ck_assert_msg(rc == TSESIM_E_INVAL, "\"%s\": %s, expected TSESIM_E_INVAL", bad_urls[i],
                  tsesim_code_name(rc));
    ck_assert_ptr_null(c);
  }
  /* the opt-in allows http:// to any host, not other schemes */
  o.insecure_plain_http_any_host = 1;
  o.base_url = "http://example.com/api";
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_OK);
  tsesim_client_free(c);
  o.base_url = "http://10.0.0.1:8080/api";
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_OK);
  tsesim_client_free(c);
  o.base_url = "ftp://example.com/api";
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_E_INVAL);
  /* a version-1 struct has no such field: not honoured */
  o.version = 1;
  o.base_url = "http://example.com/api";
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_E_INVAL);
  ck_assert_ptr_null(c);
  /* clients for the live simulator: still no network */
  o.version = TSESIM_OPTIONS_VERSION;
  o.insecure_plain_http_any_host = 0;
  snprintf(live, sizeof live, "http://localhost:%d/api", s->port);
  o.base_url = live;
  ck_assert_int_eq(tsesim_client_new(&c, &o), TSESIM_OK);
  tsesim_client_free(c);
  expect_no_api(s, "clients made and freed");
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* A URL whose authority has userinfo ("localhost:80@" before the real host)
 * names a host that is not loopback: curl connects to example.com. */
static const char *const userinfo_urls[] = {
    "http://localhost:80@example.com/api", "http://127.0.0.1:1@example.com/api",
    "http://[::1]:1@example.com/api", "http://127.0.0.1@example.com/api",
    "http://user:pw@example.com/api"};

START_TEST(test_new_url_userinfo) {
  tsesim_options o;
  tsesim_client *c = NULL;
  tsesim_code rc;
  ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  o.client_id = SIM_KEY;
  o.client_secret = SIM_SECRET;
  o.username = SIM_USER;
  o.password = SIM_PASS;
  o.base_url = userinfo_urls[_i];
  rc = tsesim_client_new(&c, &o);
  tsesim_client_free(c);
  ck_assert_msg(rc == TSESIM_E_INVAL,
                "\"%s\" (host example.com, not loopback): %s, expected TSESIM_E_INVAL",
                userinfo_urls[_i], tsesim_code_name(rc));
}
END_TEST

START_TEST(test_new_credentials) {
  static const struct {
    const char *id, *secret, *access, *user, *pass, *session;
    tsesim_code want;
  } cases[] = {
      {SIM_KEY, SIM_SECRET, NULL, SIM_USER, SIM_PASS, NULL, TSESIM_OK},
      {NULL, NULL, "tok", NULL, NULL, "sess", TSESIM_OK},
      {SIM_KEY, SIM_SECRET, NULL, NULL, NULL, "sess", TSESIM_OK},
      {NULL, NULL, "tok", SIM_USER, SIM_PASS, NULL, TSESIM_OK},
      {NULL, NULL, NULL, SIM_USER, SIM_PASS, NULL, TSESIM_E_INVAL},       /* no OAuth at all */
      {SIM_KEY, NULL, NULL, SIM_USER, SIM_PASS, NULL, TSESIM_E_INVAL},    /* key without secret */
      {NULL, SIM_SECRET, NULL, SIM_USER, SIM_PASS, NULL, TSESIM_E_INVAL}, /* secret without key */
      {SIM_KEY, SIM_SECRET, NULL, NULL, NULL, NULL, TSESIM_E_INVAL},      /* no M2M at all */
      {SIM_KEY, SIM_SECRET, NULL, SIM_USER, NULL, NULL, TSESIM_E_INVAL}, /* user without password */
      {SIM_KEY, SIM_SECRET, NULL, NULL, SIM_PASS, NULL, TSESIM_E_INVAL}, /* password without user */
      {NULL, NULL, NULL, NULL, NULL, NULL, TSESIM_E_INVAL},
      /* user and password travel in a JSON body: UTF-8 only */
      {SIM_KEY, SIM_SECRET, NULL, "us\xC3(er", SIM_PASS, NULL, TSESIM_E_INVAL},
      {SIM_KEY, SIM_SECRET, NULL, SIM_USER, "pa\xFFss", NULL, TSESIM_E_INVAL},
  };
  size_t i;
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    tsesim_options o;
    tsesim_client *c = (tsesim_client *)&o;
    tsesim_code rc;
    ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
    o.base_url = "http://127.0.0.1:1/api";
    o.client_id = cases[i].id;
    o.client_secret = cases[i].secret;
    o.access_token = cases[i].access;
    o.username = cases[i].user;
    o.password = cases[i].pass;
    o.session_token = cases[i].session;
    rc = tsesim_client_new(&c, &o);
    ck_assert_msg(rc == cases[i].want, "case %zu: %s, expected %s", i, tsesim_code_name(rc),
                  tsesim_code_name(cases[i].want));
    if (rc == TSESIM_OK)
      ck_assert_ptr_nonnull(c);
    else
      ck_assert_ptr_null(c);
    tsesim_client_free(c);
  }
}
END_TEST

/* ---- tsesim_client_new_v2: which option, and why ---- */

/* One option changed from a valid set (OAuth client and M2M user), and the
 * reason tsesim_client_new_v2 must give. */
typedef struct opt_case {
  const char *field; /* the option set to value ("base_url", ...) */
  const char *value;
  const char *want; /* the whole errbuf */
} opt_case;

static const opt_case opt_cases[] = {
    {"base_url", "http://example.com/api",
     "base_url: plain http is only for loopback hosts (127.0.0.0/8, [::1], localhost); use "
     "https:// or set insecure_plain_http_any_host"},
    {"base_url", "http://127.0.0.1.1.1/api",
     "base_url: plain http is only for loopback hosts (127.0.0.0/8, [::1], localhost); use "
     "https:// or set insecure_plain_http_any_host"},
    {"base_url", "http://127.1/",
     "base_url: plain http is only for loopback hosts (127.0.0.0/8, [::1], localhost); use "
     "https:// or set insecure_plain_http_any_host"},
    {"base_url", "ftp://127.0.0.1/api",
     "base_url: must start with https:// (or http:// to a loopback host)"},
    {"base_url", "http://127.0.0.1:1@example.com/api",
     "base_url: user information (\"user@host\") is not allowed"},
    {"base_url", "https://127.0.0.1/a\r\nb", "base_url: control character 0x0D at byte 20"},
    {"base_url", "http://127.0.0.1:99999/api",
     "base_url: not a valid URL (Port number was not a decimal number between 0 and 65535)"},
    {"client_id", NULL, "client_secret: set with no client_id"},
    {"client_secret", NULL, "client_id: set with no client_secret"},
    {"username", NULL, "password: set with no username"},
    {"password", NULL, "username: set with no password"},
    {"username", "us\xC3(er", "username: invalid UTF-8 at byte 3"},
    {"password", "pa\xFFss", "password: invalid UTF-8 at byte 3"},
    {"access_token", "at\r\nX-Injected: at",
     "access_token: control character 0x0D at byte 3; only printable ASCII is allowed"},
    {"access_token", "a b", "access_token: space 0x20 at byte 2; only printable ASCII is allowed"},
    {"access_token", "", "access_token: empty"},
    {"access_token", "tok\xC3\xA9",
     "access_token: non-ASCII byte 0xC3 at byte 4; only printable ASCII is allowed"},
    {"session_token", "st\nX-Injected: st",
     "session_token: control character 0x0A at byte 3; only printable ASCII is allowed"},
    {"session_token", "st\x7f",
     "session_token: control character 0x7F at byte 3; only printable "
     "ASCII is allowed"},
    {"user_agent", "app/1.0\r\nX-Injected: ua",
     "user_agent: control character 0x0D at byte 8; only printable ASCII is allowed"},
    {"user_agent", "app\x1b[2J",
     "user_agent: control character 0x1B at byte 4; only printable "
     "ASCII is allowed"},
    {"user_agent", "app\t1",
     "user_agent: control character 0x09 at byte 4; only printable ASCII "
     "is allowed"},
};

static void set_opt(tsesim_options *o, const char *field, const char *value) {
  if (!strcmp(field, "base_url"))
    o->base_url = value;
  else if (!strcmp(field, "client_id"))
    o->client_id = value;
  else if (!strcmp(field, "client_secret"))
    o->client_secret = value;
  else if (!strcmp(field, "access_token"))
    o->access_token = value;
  else if (!strcmp(field, "username"))
    o->username = value;
  else if (!strcmp(field, "password"))
    o->password = value;
  else if (!strcmp(field, "session_token"))
    o->session_token = value;
  else if (!strcmp(field, "user_agent"))
    o->user_agent = value;
  else
    ck_abort_msg("no option %s", field);
}

START_TEST(test_new_v2_messages) {
  const opt_case *t = &opt_cases[_i];
  tsesim_options o;
  tsesim_client *c = (tsesim_client *)&o, *c1 = (tsesim_client *)&o;
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_code rc;
  ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  o.base_url = "http://127.0.0.1:1/api";
  o.client_id = SIM_KEY;
  o.client_secret = SIM_SECRET;
  o.username = SIM_USER;
  o.password = SIM_PASS;
  set_opt(&o, t->field, t->value);
  memset(errbuf, 'x', sizeof errbuf);
  rc = tsesim_client_new_v2(&c, &o, errbuf);
  ck_assert_msg(rc == TSESIM_E_INVAL, "%s: %s, expected TSESIM_E_INVAL", t->want,
                tsesim_code_name(rc));
  ck_assert_ptr_null(c);
  ck_assert_msg(memchr(errbuf, '\0', sizeof errbuf) != NULL, "errbuf not terminated");
  tt_expect_str(t->field, "errbuf", errbuf, t->want);
  /* never the value of a secret, nor what would forge a header */
  ck_assert_msg(!strstr(errbuf, "X-Injected"), "errbuf echoes the value: %s", errbuf);
  /* tsesim_client_new refuses the same, with the same code */
  ck_assert_int_eq(tsesim_client_new(&c1, &o), TSESIM_E_INVAL);
  ck_assert_ptr_null(c1);
}
END_TEST

/* The refusals that are not about one option's value; errbuf NULL is fine. */
START_TEST(test_new_v2_args) {
  tsesim_options o;
  tsesim_client *c = (tsesim_client *)&o;
  char errbuf[TSESIM_ERRBUF_SIZE] = "unchanged";
  ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  o.base_url = "http://127.0.0.1:1/api";
  o.access_token = "at-ready";
  o.session_token = "st-ready";
  ck_assert_int_eq(tsesim_client_new_v2(&c, &o, errbuf), TSESIM_OK);
  tt_expect_str("success", "errbuf", errbuf, "unchanged");
  tsesim_client_free(c);
  ck_assert_int_eq(tsesim_client_new_v2(NULL, &o, errbuf), TSESIM_E_INVAL);
  tt_expect_str("out NULL", "errbuf", errbuf, "out is NULL");
  c = (tsesim_client *)&o;
  ck_assert_int_eq(tsesim_client_new_v2(&c, NULL, errbuf), TSESIM_E_INVAL);
  ck_assert_ptr_null(c);
  tt_expect_str("opts NULL", "errbuf", errbuf, "opts is NULL");
  o.version = 7;
  ck_assert_int_eq(tsesim_client_new_v2(&c, &o, errbuf), TSESIM_E_INVAL);
  tt_expect_str("version 7", "errbuf", errbuf, "options version 7: this library knows 1..2");
  o.version = 0;
  ck_assert_int_eq(tsesim_client_new_v2(&c, &o, NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(c);
  o.version = TSESIM_OPTIONS_VERSION;
  o.access_token = NULL;
  ck_assert_int_eq(tsesim_client_new_v2(&c, &o, errbuf), TSESIM_E_INVAL);
  tt_expect_str("no OAuth", "errbuf", errbuf,
                "no OAuth credentials: set client_id and client_secret, or access_token");
  o.access_token = "at-ready";
  o.session_token = NULL;
  ck_assert_int_eq(tsesim_client_new_v2(&c, &o, errbuf), TSESIM_E_INVAL);
  tt_expect_str("no M2M", "errbuf", errbuf,
                "no M2M credentials: set username and password, or session_token");
  /* what a header may hold: every printable byte in a token, spaces in the user agent */
  {
    static char tok[0x7F - 0x21 + 1]; /* static: o keeps pointing at it after this block */
    int b;
    for (b = 0x21; b < 0x7F; b++) tok[b - 0x21] = (char)b;
    tok[sizeof tok - 1] = '\0';
    o.access_token = tok;
    o.session_token = tok;
    o.user_agent = "my app/1.0 (test; +https://example.com) ~!";
    ck_assert_int_eq(tsesim_client_new_v2(&c, &o, errbuf), TSESIM_OK);
    tsesim_client_free(c);
    o.user_agent = "";
    ck_assert_int_eq(tsesim_client_new_v2(&c, &o, errbuf), TSESIM_OK);
    tsesim_client_free(c);
  }
  /* a version-1 struct has no user_agent: not read */
  o.version = 1;
  o.user_agent = "bad\r\nagent";
  ck_assert_int_eq(tsesim_client_new_v2(&c, &o, errbuf), TSESIM_OK);
  tsesim_client_free(c);
}
END_TEST

/* ---- login, logout, download ---- */

/* Credentials with JSON's special characters and non-ASCII text reach the
 * server intact: the login body is written by the library, not jansson. */
START_TEST(test_login_escaped) {
  static const char user[] = "q\"u\\ser", pass[] = "p\"a\\ss w\xC3\xB6rd/\xE2\x82\xAC";
  char arg[64];
  tt_sim *s;
  cl k;
  snprintf(arg, sizeof arg, "%s:%s", user, pass);
  s = tt_sim_start((const char *[]){"--user", arg, NULL});
  cl_init(&k, s);
  k.o.username = user;
  k.o.password = pass;
  cl_new(&k);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "escaped credentials", TT_ST("logins.ok", 1), TT_ST("logins.refused", 0),
                  NULL);
  /* the listener's credentials: checked before anything is sent */
  expect_rc("register, password not UTF-8",
            tsesim_client_register_callback(k.c, TT_ACCOUNT, NULL, "http://127.0.0.1:9/cb", "u",
                                            "ok\xC0\xAF"),
            TSESIM_E_INVAL, k.c);
  tt_expect_str("register", "errmsg", tsesim_client_errmsg(k.c),
                "register callback: password: invalid UTF-8 at byte 3");
  expect_rc(
      "register, escaped",
      tsesim_client_register_callback(k.c, TT_ACCOUNT, "Svc1", "http://127.0.0.1:9/cb", user, pass),
      TSESIM_OK, k.c);
  tt_stats_expect(s, "one registration", TT_ST("requests.callbacks", 1), NULL);
  cl_end(&k, NULL, s);
}
END_TEST

START_TEST(test_lazy) {
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, NULL, 3, 100);
  expect_no_api(s, "after tsesim_client_new");
  ck_assert_uint_eq(k.toks.n, 0);
  /* a download alone gets the token, logs in and downloads */
  download_ok("first download", &k, req);
  expect_clean("first download", k.c);
  tt_stats_expect(s, "first download", TT_ST("requests.token", 1), TT_ST("tokens.issued", 1),
                  TT_ST("requests.login", 1), TT_ST("logins.ok", 1), TT_ST("requests.download", 1),
                  TT_ST("downloads.accepted", 1), TT_ST("downloads.devices_accepted", 3),
                  TT_ST("requests.other", 0), NULL);
  ck_assert_ptr_null(tsesim_client_last_error(k.c));
  expect_sleeps("no waits", &k.t, 0);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_login_logout) {
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, NULL, 2, 200);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_expect_str("login", "errmsg", tsesim_client_errmsg(k.c), "");
  ck_assert_ptr_null(tsesim_client_last_error(k.c));
  tt_stats_expect(s, "login", TT_ST("requests.token", 1), TT_ST("requests.login", 1),
                  TT_ST("logins.ok", 1), NULL);
  expect_rc("login again", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "login again: nothing to do", TT_ST("requests.token", 1),
                  TT_ST("requests.login", 1), NULL);
  download_ok("download", &k, req);
  expect_clean("download", k.c);
  download_ok("download 2", &k, req);
  tt_stats_expect(s, "downloads", TT_ST("requests.token", 1), TT_ST("requests.login", 1),
                  TT_ST("requests.download", 2), TT_ST("downloads.accepted", 2), NULL);
  expect_rc("logout", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "logout", TT_ST("requests.logout", 1), NULL);
  expect_rc("logout again", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "logout again: no session, no request", TT_ST("requests.logout", 1), NULL);
  /* logged out: the next download logs in again, with the same access token */
  download_ok("download after logout", &k, req);
  tt_stats_expect(s, "download after logout", TT_ST("requests.token", 1),
                  TT_ST("requests.login", 2), TT_ST("logins.ok", 2), TT_ST("requests.download", 3),
                  TT_ST("downloads.accepted", 3), TT_ST("requests.other", 0), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* "…/api/" names the same base as "…/api". */
START_TEST(test_base_url_slash) {
  tt_sim *s = tt_sim_start(NULL);
  cl k;
  cl_init(&k, s);
  snprintf(k.url, sizeof k.url, "%s/api/", s->base);
  cl_new(&k);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "login", TT_ST("requests.token", 1), TT_ST("requests.login", 1),
                  TT_ST("logins.ok", 1), TT_ST("requests.other", 0), NULL);
  cl_free(&k);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* errmsg and last_error for an API error; both cleared by the next success. */
START_TEST(test_api_error) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *good = make_req(1, 300), *bad = NULL;
  tt_device d;
  const tsesim_api_error *e;
  cl k;
  tt_plain_device(&d, 301);
  ck_assert_int_eq(tsesim_request_new(&bad, "0000999999-00001"), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_add_device(bad, d.ids, 3), TSESIM_OK);
  cl_start(&k, s);
  expect_rc("unknown account", download(&k, bad), TSESIM_E_API, k.c);
  expect_last_error("unknown account", k.c, 400, "REQUEST_FAILED.AccountNotFound", -1);
  e = tsesim_client_last_error(k.c);
  ck_assert_ptr_nonnull(e->message);
  ck_assert_msg(strstr(e->body, "REQUEST_FAILED.AccountNotFound") != NULL, "body %s", e->body);
  ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "REQUEST_FAILED.AccountNotFound") != NULL,
                "errmsg \"%s\" does not name the code", tsesim_client_errmsg(k.c));
  tt_stats_expect(s, "unknown account: not retried", TT_ST("requests.download", 1), NULL);
  expect_sleeps("no waits", &k.t, 0);
  download_ok("then a good one", &k, good);
  expect_clean("then a good one", k.c);
  cl_free(&k);
  tsesim_request_free(good);
  tsesim_request_free(bad);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* Ready tokens given in the options are used as they are; an unusable session
 * token that is not "expired" is an API error, not a reason to log in. */
START_TEST(test_ready_tokens) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *req = make_req(1, 400);
  tt_auth a;
  cl k;
  tt_auth_get(s, &a);
  cl_init(&k, s);
  k.o.client_id = k.o.client_secret = NULL;
  k.o.username = k.o.password = NULL;
  k.o.access_token = a.token;
  k.o.session_token = a.session;
  cl_new(&k);
  download_ok("ready tokens", &k, req);
  tt_stats_expect(s, "ready tokens", TT_ST("requests.token", 1), TT_ST("requests.login", 1),
                  TT_ST("requests.download", 1), TT_ST("downloads.accepted", 1), NULL);
  ck_assert_uint_eq(k.toks.n, 0);
  cl_free(&k);
  /* a session token that is not valid: TSESIM_E_API, no login; logout drops it */
  cl_init(&k, s);
  k.o.session_token = "00000000-0000-4000-8000-000000000000";
  cl_new(&k);
  expect_rc("unknown session token", download(&k, req), TSESIM_E_API, k.c);
  expect_last_error("unknown session token", k.c, 400, "INPUT_INVALID.SessionToken.Invalid", -1);
  tt_stats_expect(s, "unknown session token: no login", TT_ST("requests.login", 1),
                  TT_ST("requests.download", 2), TT_ST("downloads.accepted", 1), NULL);
  expect_rc("logout of a session that is not valid", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  expect_session_dropped("logout of a session that is not valid", &k.toks);
  download_ok("then a download logs in", &k, req);
  tt_stats_expect(s, "then", TT_ST("requests.logout", 1), TT_ST("requests.login", 2),
                  TT_ST("requests.download", 3), TT_ST("downloads.accepted", 2), NULL);
  cl_free(&k);
  /* a refused ready access token and no OAuth client to get another: TSESIM_E_AUTH */
  cl_init(&k, s);
  k.o.client_id = k.o.client_secret = NULL;
  k.o.access_token = "00000000-0000-4000-8000-000000000000";
  k.o.session_token = a.session;
  cl_new(&k);
  expect_rc("refused ready access token", download(&k, req), TSESIM_E_AUTH, k.c);
  tt_stats_expect(s, "refused ready access token", TT_ST("requests.token", 2),
                  TT_ST("requests.download", 4), TT_ST("downloads.accepted", 2), NULL);
  cl_free(&k);
  /* an expired ready session token and no user to log in with: TSESIM_E_AUTH */
  sim_revoke_all(s, "{\"sessions\":true}");
  cl_init(&k, s);
  k.o.username = k.o.password = NULL;
  k.o.session_token = a.session;
  cl_new(&k);
  expect_rc("expired ready session token", download(&k, req), TSESIM_E_AUTH, k.c);
  tt_stats_expect(s, "expired ready session token", TT_ST("requests.login", 2),
                  TT_ST("requests.download", 5), TT_ST("downloads.accepted", 2), NULL);
  cl_free(&k);
  tt_auth_free(&a);
  tsesim_request_free(req);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- one connection ---- */

static int conn_known(const tt_tcp_conn *list, size_t n, unsigned port) {
  size_t i;
  for (i = 0; i < n; i++)
    if (list[i].local_port == port) return 1;
  return 0;
}

/* The connections to the simulator's port that are not in before[0..nb). */
static size_t new_conns(const tt_sim *s, const tt_tcp_conn *before, size_t nb, tt_tcp_conn *out,
                        size_t max) {
  tt_tcp_conn now[256];
  size_t n = tt_tcp_conns_to(s->port, now, ARRAY_LEN(now)), i, k = 0;
  ck_assert_uint_le(n, ARRAY_LEN(now));
  for (i = 0; i < n; i++)
    if (!conn_known(before, nb, now[i].local_port)) {
      if (k < max) out[k] = now[i];
      k++;
    }
  return k;
}

START_TEST(test_connection_reuse) {
  tt_tcp_conn before[256], fresh[16], later[16];
  size_t nb, nf, nl, i;
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, NULL, 1, 500);
  nb = tt_tcp_conns_to(s->port, before, ARRAY_LEN(before));
  ck_assert_uint_le(nb, ARRAY_LEN(before));
  /* the first exchanges open one connection, and keep it */
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  nf = new_conns(s, before, nb, fresh, ARRAY_LEN(fresh));
  ck_assert_msg(nf == 1, "token + login: %zu connections to the simulator, expected 1", nf);
  ck_assert_msg(fresh[0].state == 1, "the connection is in TCP state %u, not ESTABLISHED",
                fresh[0].state);
  /* later requests reuse it (no stats request in between: those connect too) */
  for (i = 0; i < 3; i++) {
    long connects = -1;
    download_ok("download", &k, req);
    curl_easy_getinfo(k.c->xfer.easy, CURLINFO_NUM_CONNECTS, &connects);
    ck_assert_msg(connects == 0, "download %zu: CURLINFO_NUM_CONNECTS %ld, expected 0", i,
                  connects);
  }
  expect_rc("logout", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  nl = new_conns(s, before, nb, later, ARRAY_LEN(later));
  ck_assert_msg(nl == 1, "after 6 requests: %zu connections to the simulator, expected 1", nl);
  ck_assert_msg(later[0].local_port == fresh[0].local_port && later[0].state == 1,
                "the connection changed: port %u state %u, was port %u", later[0].local_port,
                later[0].state, fresh[0].local_port);
  tt_stats_expect(s, "six requests", TT_ST("requests.token", 1), TT_ST("requests.login", 1),
                  TT_ST("requests.download", 3), TT_ST("requests.logout", 1), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* ---- tokens ---- */

START_TEST(test_token_refresh) {
  const tok_rec *r;
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, (const char *[]){"--token-lifetime", "2", NULL}, 1, 600);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  r = tok_nth(&k.toks, 0);
  ck_assert_int_eq(r->kind, TSESIM_TOKEN_ACCESS);
  ck_assert_int_eq(r->expires_in, 2);
  /* half its life later: still good */
  k.t.now = T0_MS + 1000;
  download_ok("at 1.0 s", &k, req);
  tt_stats_expect(s, "at 1.0 s", TT_ST("requests.token", 1), TT_ST("tokens.issued", 1),
                  TT_ST("requests.download", 1), NULL);
  /* the simulator's token really expires; the client's clock says 10 ms are left */
  tt_sleep(2.2);
  k.t.now = T0_MS + 1990;
  download_ok("at 1.99 s", &k, req);
  tt_stats_expect(s, "at 1.99 s: renewed before the download, not after a 401",
                  TT_ST("requests.token", 2), TT_ST("tokens.issued", 2),
                  TT_ST("requests.download", 2), TT_ST("downloads.accepted", 2),
                  TT_ST("requests.login", 1), NULL);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_ACCESS), 2);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_SESSION), 1);
  ck_assert_str_ne(tok_given(&k.toks, TSESIM_TOKEN_ACCESS, 1),
                   tok_given(&k.toks, TSESIM_TOKEN_ACCESS, 0));
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_token_401_replay) {
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, NULL, 2, 700);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  sim_revoke_all(s, "{\"access_tokens\":true}");
  download_ok("after revoking the access token", &k, req);
  tt_stats_expect(s, "401 fault: one new token, one replay", TT_ST("requests.token", 2),
                  TT_ST("tokens.issued", 2), TT_ST("requests.login", 1),
                  TT_ST("requests.download", 2), TT_ST("downloads.received", 2),
                  TT_ST("downloads.accepted", 1), NULL);
  expect_sleeps("no waits", &k.t, 0);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_ACCESS), 2);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_SESSION), 1);
  ck_assert_str_ne(tok_given(&k.toks, TSESIM_TOKEN_ACCESS, 1),
                   tok_given(&k.toks, TSESIM_TOKEN_ACCESS, 0));
  cl_end(&k, req, s);
}
END_TEST

/* A 401 gateway fault from the login is a stale access token, not a refusal. */
START_TEST(test_login_401_replay) {
  tt_sim *s = tt_sim_start(NULL);
  char *token = tt_get_token(s);
  tsesim_request *req = make_req(1, 750);
  cl k;
  cl_init(&k, s);
  k.o.access_token = token;
  cl_new(&k);
  sim_revoke_all(s, "{\"access_tokens\":true}");
  expect_rc("login with a revoked access token", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "login 401: new token, one replay", TT_ST("requests.token", 2),
                  TT_ST("tokens.issued", 2), TT_ST("requests.login", 2), TT_ST("logins.ok", 1),
                  TT_ST("logins.refused", 0), NULL);
  download_ok("then a download", &k, req);
  cl_free(&k);
  free(token);
  tsesim_request_free(req);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_session_revoked) {
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, NULL, 1, 800);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  sim_revoke_all(s, "{\"sessions\":true}");
  download_ok("after revoking the session", &k, req);
  tt_stats_expect(s, "SessionToken.Expired: one login, one replay", TT_ST("requests.token", 1),
                  TT_ST("requests.login", 2), TT_ST("logins.ok", 2), TT_ST("requests.download", 2),
                  TT_ST("downloads.accepted", 1), NULL);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_ACCESS), 1);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_SESSION), 2);
  ck_assert_str_ne(tok_given(&k.toks, TSESIM_TOKEN_SESSION, 1),
                   tok_given(&k.toks, TSESIM_TOKEN_SESSION, 0));
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_session_idle) {
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, (const char *[]){"--session-idle", "0.2", NULL}, 1, 850);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_sleep(0.35);
  download_ok("after the idle timeout", &k, req);
  tt_stats_expect(s, "idle session: one login, one replay", TT_ST("requests.token", 1),
                  TT_ST("requests.login", 2), TT_ST("logins.ok", 2), TT_ST("requests.download", 2),
                  TT_ST("downloads.accepted", 1), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* A second 401 after the new token is not replayed again: with 400 ms of
 * latency on every request and tokens living 0.3 s (ten times both under
 * valgrind), every token has expired by the time the request using it is
 * handled. */
START_TEST(test_token_401_once) {
  char life[32], faults[64];
  tt_sim *s;
  tsesim_request *req = make_req(1, 760);
  tt_auth a;
  cl k;
  snprintf(life, sizeof life, "%g", tt_slow(0.3));
  snprintf(faults, sizeof faults, "{\"latency_ms\":%ld}", (long)(tt_slow(0.4) * 1000));
  s = tt_sim_start((const char *[]){"--token-lifetime", life, NULL});
  tt_auth_get(s, &a); /* a session, made before the latency */
  tt_sim_faults(s, faults);
  cl_init(&k, s);
  k.o.username = k.o.password = NULL;
  k.o.session_token = a.session;
  cl_new(&k);
  expect_rc("401, new token, 401", download(&k, req), TSESIM_E_API, k.c);
  expect_last_error("401, new token, 401", k.c, 401, "900901", -1);
  tt_stats_expect(s, "401 twice: one replay only", TT_ST("requests.token", 3),
                  TT_ST("requests.download", 2), TT_ST("downloads.accepted", 0), NULL);
  cl_free(&k);
  tt_auth_free(&a);
  tsesim_request_free(req);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* The same at the login: a 401 gateway fault there is not a refusal of the
 * user's credentials, so it is neither remembered nor counted as one. */
START_TEST(test_login_401_twice_not_refusal) {
  tt_sim *s =
      tt_sim_start((const char *[]){"--token-lifetime", "0.05", "--latency-ms", "100", NULL});
  cl k;
  cl_start(&k, s);
  expect_rc("login: 401, new token, 401", tsesim_client_login(k.c), TSESIM_E_API, k.c);
  expect_last_error("login: 401 twice", k.c, 401, "900901", -1);
  tt_stats_expect(s, "login 401 twice", TT_ST("requests.token", 2), TT_ST("requests.login", 2),
                  TT_ST("logins.refused", 0), NULL);
  /* tried again: the last token (not known to be stale), 401, a new one, 401 */
  expect_rc("login again: tried again", tsesim_client_login(k.c), TSESIM_E_API, k.c);
  tt_stats_expect(s, "login again", TT_ST("requests.token", 3), TT_ST("requests.login", 4),
                  TT_ST("logins.refused", 0), NULL);
  cl_free(&k);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* SessionToken.Expired after the new login: no second login. With 20 ms of
 * latency and a 5 ms idle timeout, every session has expired when used. */
START_TEST(test_session_expired_once) {
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(
      &k, &req, (const char *[]){"--session-idle", "0.005", "--latency-ms", "20", NULL}, 1, 870);
  expect_rc("expired, login, expired", download(&k, req), TSESIM_E_API, k.c);
  expect_last_error("expired twice", k.c, 400, "REQUEST_FAILED.SessionToken.Expired", -1);
  tt_stats_expect(s, "expired twice: one new login only", TT_ST("requests.token", 1),
                  TT_ST("requests.login", 2), TT_ST("logins.ok", 2), TT_ST("requests.download", 2),
                  TT_ST("downloads.accepted", 0), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* Logout: a stale access token is renewed once; a session that is gone already is logged out. */
START_TEST(test_logout_cases) {
  tt_sim *s = tt_sim_start(NULL);
  cl k;
  cl_start(&k, s);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  sim_revoke_all(s, "{\"access_tokens\":true}");
  expect_rc("logout with a revoked access token", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "logout 401: new token, one replay", TT_ST("requests.token", 2),
                  TT_ST("requests.logout", 2), NULL);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_ACCESS), 2);
  expect_session_dropped("logout", &k.toks);
  expect_rc("login again", tsesim_client_login(k.c), TSESIM_OK, k.c);
  sim_revoke_all(s, "{\"sessions\":true}");
  expect_rc("logout of an expired session", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "logout of an expired session", TT_ST("requests.logout", 3),
                  TT_ST("requests.login", 2), NULL);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_SESSION), 2);
  expect_session_dropped("logout of an expired session", &k.toks);
  expect_rc("logout again: nothing to do", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "logout again", TT_ST("requests.logout", 3), NULL);
  cl_free(&k);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- refusals are remembered ---- */

START_TEST(test_wrong_password) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *req = make_req(1, 900);
  char *token, *sess;
  int i;
  cl k;
  cl_init(&k, s);
  k.o.password = "not-the-password";
  cl_new(&k);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_E_AUTH, k.c);
  expect_last_error("login", k.c, 400, "REQUEST_FAILED.Login.InvalidCredentials", -1);
  ck_assert_str_ne(tsesim_client_errmsg(k.c), "");
  for (i = 0; i < 10; i++) {
    tsesim_code rc = i % 2 ? tsesim_client_login(k.c) : download(&k, req);
    expect_rc(i % 2 ? "login again" : "download", rc, TSESIM_E_AUTH, k.c);
    ck_assert_str_ne(tsesim_client_errmsg(k.c), "");
  }
  tt_stats_expect(s, "11 calls after a refused login", TT_ST("requests.login", 1),
                  TT_ST("logins.refused", 1), TT_ST("logins.locked", 0), TT_ST("requests.token", 1),
                  TT_ST("requests.download", 0), NULL);
  expect_sleeps("no waits", &k.t, 0);
  /* the user is not locked */
  token = tt_get_token(s);
  sess = tt_login_as(s, token, SIM_USER, SIM_PASS);
  free(sess);
  free(token);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_wrong_secret) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *req = make_req(1, 950);
  int i;
  cl k;
  cl_init(&k, s);
  k.o.client_secret = "not-the-secret";
  cl_new(&k);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_E_AUTH, k.c);
  expect_last_error("login", k.c, 401, "invalid_client", -1);
  for (i = 0; i < 10; i++) {
    tsesim_code rc = i % 2 ? tsesim_client_login(k.c) : download(&k, req);
    expect_rc(i % 2 ? "login again" : "download", rc, TSESIM_E_AUTH, k.c);
  }
  tt_stats_expect(s, "11 calls after a refused OAuth client", TT_ST("requests.token", 1),
                  TT_ST("tokens.refused", 1), TT_ST("requests.login", 0),
                  TT_ST("requests.download", 0), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* ---- token_fn ---- */

START_TEST(test_token_fn) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *req = make_req(1, 1000);
  const tok_rec *acc, *ses, *drop;
  tt_auth a;
  tt_resp r;
  char *body = tt_plain_body(1, 1001);
  cl k;
  cl_start(&k, s);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  ck_assert_uint_eq(k.toks.n, 2);
  acc = tok_nth(&k.toks, 0);
  ses = tok_nth(&k.toks, 1);
  ck_assert_int_eq(acc->kind, TSESIM_TOKEN_ACCESS);
  ck_assert_msg(tt_is_uuid4(acc->token), "access token \"%s\"", acc->token);
  ck_assert_int_eq(acc->expires_in, 3600);
  ck_assert_int_eq(ses->kind, TSESIM_TOKEN_SESSION);
  ck_assert_msg(tt_is_uuid4(ses->token), "session token \"%s\"", ses->token);
  ck_assert_int_eq(ses->expires_in, -1);
  /* they are the real ones: the harness downloads with them */
  a.token = acc->token;
  a.session = ses->token;
  free(tt_download_ok(s, &a, body));
  download_ok("download", &k, req);
  ck_assert_uint_eq(k.toks.n, 2);
  expect_rc("logout", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  ck_assert_uint_eq(k.toks.n, 3);
  drop = tok_nth(&k.toks, 2);
  ck_assert_int_eq(drop->kind, TSESIM_TOKEN_SESSION);
  ck_assert_ptr_null(drop->token);
  tt_download_req(s, &r, &a, body);
  tt_expect_error("download with the logged-out session", &r, 400,
                  "INPUT_INVALID.SessionToken.Invalid", NULL);
  tt_resp_free(&r);
  free(body);
  cl_end(&k, req, s);
}
END_TEST

/* ---- retries that cannot duplicate a download ---- */

START_TEST(test_429_retry_after_seconds) {
  double t0;
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(
      &k, &req, (const char *[]){"--fault", "429:count=2,retry-after=2,endpoint=download", NULL}, 1,
      1100);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  t0 = tt_now();
  download_ok("429, 429, 200", &k, req);
  ck_assert_msg(tt_now() - t0 < 1.5, "the client slept for real: %.1f s", tt_now() - t0);
  expect_sleeps("waits", &k.t, 2, 2000L, 2000L);
  tt_stats_expect(s, "429 twice", TT_ST("requests.download", 3), TT_ST("downloads.received", 3),
                  TT_ST("downloads.accepted", 1), TT_ST("faults.injected", 2), NULL);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_429_retry_after_date) {
  size_t i;
  tsesim_request *req;
  cl k;
  tt_sim *s =
      cl_sim(&k, &req,
             (const char *[]){"--fault", "429:count=2,retry-after=date:3,endpoint=download", NULL},
             1, 1200);
  download_ok("429 (date), 429 (date), 200", &k, req);
  ck_assert_uint_eq(k.t.n_sleeps, 2);
  for (i = 0; i < 2; i++) /* an HTTP-date 3 s ahead, whole seconds: 2 or 3 s from now */
    ck_assert_msg(k.t.sleeps[i] == 2000 || k.t.sleeps[i] == 3000, "sleep %zu: %ld ms", i,
                  k.t.sleeps[i]);
  tt_stats_expect(s, "429 twice", TT_ST("requests.download", 3), TT_ST("downloads.accepted", 1),
                  NULL);
  cl_end(&k, req, s);
}
END_TEST

/* Retry-After is honoured up to backoff_cap_ms. */
START_TEST(test_retry_after_cap) {
  tt_sim *s = tt_sim_start(
      (const char *[]){"--fault", "429:count=1,retry-after=30,endpoint=download", "--fault",
                       "503:count=1,retry-after=1,endpoint=download", "--fault",
                       "429:count=1,retry-after=date:30,endpoint=download", NULL});
  tsesim_request *req = make_req(1, 1300);
  cl k;
  cl_init(&k, s);
  k.o.max_attempts = 4;
  k.o.backoff_cap_ms = 1500;
  cl_new(&k);
  download_ok("429 (30 s), 503 (1 s), 429 (date 30 s), 200", &k, req);
  expect_sleeps("waits", &k.t, 3, 1500L, 1000L, 1500L);
  tt_stats_expect(s, "three faults", TT_ST("requests.download", 4), TT_ST("downloads.accepted", 1),
                  NULL);
  cl_end(&k, req, s);
}
END_TEST

/* A Retry-After too long to count waits the cap; an HTTP-date now waits nothing. */
START_TEST(test_retry_after_edges) {
  size_t i;
  tsesim_request *req;
  cl k;
  tt_sim *s =
      cl_sim(&k, &req,
             (const char *[]){"--fault", "429:count=1,retry-after=99999999999,endpoint=download",
                              "--fault", "429:count=1,retry-after=date:0,endpoint=download", NULL},
             1, 1350);
  download_ok("429 (99999999999 s), 429 (date now), 200", &k, req);
  ck_assert_msg(k.t.n_sleeps == 1 || k.t.n_sleeps == 2, "%zu sleeps", k.t.n_sleeps);
  ck_assert_int_eq(k.t.sleeps[0], 20000); /* the default cap */
  for (i = 1; i < k.t.n_sleeps; i++) ck_assert_int_eq(k.t.sleeps[i], 0);
  tt_stats_expect(s, "two 429", TT_ST("requests.download", 3), TT_ST("downloads.accepted", 1),
                  NULL);
  tt_sim_faults(s,
                "{\"faults\":[{\"kind\":\"429\",\"endpoint\":\"download\","
                "\"retry_after\":\"date:0\"}]}");
  expect_rc("429 (date now) x 3", download(&k, req), TSESIM_E_RATE_LIMITED, k.c);
  expect_last_error("429 (date now) x 3", k.c, 429, "REQUEST_FAILED.RateLimited", 0);
  for (i = 1; i < k.t.n_sleeps && i < ARRAY_LEN(k.t.sleeps); i++)
    ck_assert_int_eq(k.t.sleeps[i], 0);
  tt_stats_expect(s, "429 x 3", TT_ST("requests.download", 6), TT_ST("downloads.accepted", 1),
                  NULL);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_503_retried) {
  tsesim_request *req;
  cl k;
  tt_sim *s =
      cl_sim(&k, &req, (const char *[]){"--fault", "503:count=2,endpoint=download", NULL}, 1, 1400);
  download_ok("503, 503, 200", &k, req);
  expect_sleeps("waits", &k.t, 2, 1000L, 1000L);
  tt_stats_expect(s, "503 twice", TT_ST("requests.download", 3), TT_ST("downloads.accepted", 1),
                  NULL);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_429_exhausted) {
  tsesim_request *req;
  cl k;
  tt_sim *s =
      cl_sim(&k, &req, (const char *[]){"--fault", "429:count=5,endpoint=download", NULL}, 1, 1500);
  expect_rc("429 x 3", download(&k, req), TSESIM_E_RATE_LIMITED, k.c);
  expect_last_error("429 x 3", k.c, 429, "REQUEST_FAILED.RateLimited", 1);
  ck_assert_str_ne(tsesim_client_errmsg(k.c), "");
  expect_sleeps("waits", &k.t, 2, 1000L, 1000L);
  tt_stats_expect(s, "default: 3 attempts", TT_ST("requests.download", 3),
                  TT_ST("downloads.received", 3), TT_ST("downloads.accepted", 0), NULL);
  /* two 429 left, then the third attempt gets through */
  download_ok("429 x 2, 200", &k, req);
  tt_stats_expect(s, "then", TT_ST("requests.download", 6), TT_ST("downloads.accepted", 1), NULL);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_503_exhausted_max_attempts) {
  tt_sim *s = tt_sim_start((const char *[]){"--fault", "503:count=5,endpoint=download", NULL});
  tsesim_request *req = make_req(1, 1600);
  cl k;
  cl_init(&k, s);
  k.o.max_attempts = 5;
  cl_new(&k);
  expect_rc("503 x 5", download(&k, req), TSESIM_E_RATE_LIMITED, k.c);
  expect_last_error("503 x 5", k.c, 503, "REQUEST_FAILED.ServiceUnavailable", 1);
  ck_assert_uint_eq(k.t.n_sleeps, 4);
  tt_stats_expect(s, "max_attempts 5", TT_ST("requests.download", 5),
                  TT_ST("downloads.accepted", 0), NULL);
  cl_free(&k);
  /* max_attempts 1: no retry at all */
  tt_sim_faults(s, "{\"faults\":[{\"kind\":\"503\",\"endpoint\":\"download\",\"count\":1}]}");
  cl_init(&k, s);
  k.o.max_attempts = 1;
  cl_new(&k);
  expect_rc("503, max_attempts 1", download(&k, req), TSESIM_E_RATE_LIMITED, k.c);
  expect_sleeps("no waits", &k.t, 0);
  tt_stats_expect(s, "max_attempts 1", TT_ST("requests.download", 6),
                  TT_ST("downloads.accepted", 0), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* A 429 from the token endpoint is not a refusal of the credentials. */
START_TEST(test_429_token_not_refusal) {
  tt_sim *s = tt_sim_start((const char *[]){"--fault", "429:count=3,endpoint=token", NULL});
  cl k;
  cl_start(&k, s);
  expect_rc("token 429 x 3", tsesim_client_login(k.c), TSESIM_E_RATE_LIMITED, k.c);
  tt_stats_expect(s, "token 429 x 3", TT_ST("requests.token", 3), TT_ST("tokens.issued", 0),
                  TT_ST("requests.login", 0), NULL);
  expect_rc("then", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "then", TT_ST("requests.token", 4), TT_ST("tokens.issued", 1),
                  TT_ST("logins.ok", 1), NULL);
  cl_free(&k);
  /* nor is a 429 from the login */
  tt_sim_faults(s, "{\"faults\":[{\"kind\":\"429\",\"endpoint\":\"login\",\"count\":3}]}");
  cl_start(&k, s);
  expect_rc("login 429 x 3", tsesim_client_login(k.c), TSESIM_E_RATE_LIMITED, k.c);
  expect_last_error("login 429 x 3", k.c, 429, "REQUEST_FAILED.RateLimited", 1);
  tt_stats_expect(s, "login 429 x 3", TT_ST("requests.login", 4), TT_ST("logins.refused", 0), NULL);
  expect_rc("login then", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "login then", TT_ST("requests.login", 5), TT_ST("logins.ok", 2), NULL);
  cl_free(&k);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_500_not_retried) {
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, (const char *[]){"--fault", "500:endpoint=download", NULL}, 1, 1700);
  expect_rc("500", download(&k, req), TSESIM_E_API, k.c);
  expect_last_error("500", k.c, 500, "REQUEST_FAILED.UnexpectedError", -1);
  expect_sleeps("no waits", &k.t, 0);
  tt_stats_expect(s, "500: one POST", TT_ST("requests.download", 1), TT_ST("downloads.received", 1),
                  NULL);
  cl_free(&k);
  /* a 500 from the login is no refusal either */
  tt_sim_faults(s, "{\"faults\":[{\"kind\":\"500\",\"endpoint\":\"login\",\"count\":1}]}");
  cl_start(&k, s);
  expect_rc("login: 500", tsesim_client_login(k.c), TSESIM_E_API, k.c);
  expect_last_error("login: 500", k.c, 500, "REQUEST_FAILED.UnexpectedError", -1);
  expect_rc("login again", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_stats_expect(s, "login after a 500", TT_ST("requests.login", 3), TT_ST("logins.ok", 2), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* The connection closes after the download was read, on a warm connection:
 * never re-sent, whether the simulator acted on it (processed) or not. */
START_TEST(test_close_unknown_outcome) {
  static const char *const mode[] = {"processed", "dropped"};
  char faults[200];
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req, NULL, 3, 1800);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  snprintf(faults, sizeof faults,
           "{\"faults\":[{\"kind\":\"close\",\"endpoint\":\"download\",\"mode\":\"%s\"}]}",
           mode[_i]);
  tt_sim_faults(s, faults);
  expect_rc(mode[_i], download(&k, req), TSESIM_E_UNKNOWN_OUTCOME, k.c);
  ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "3 devices") != NULL,
                "errmsg \"%s\" does not name the 3 devices", tsesim_client_errmsg(k.c));
  ck_assert_ptr_null(tsesim_client_last_error(k.c));
  expect_sleeps("no waits", &k.t, 0);
  tt_stats_expect(s, mode[_i], TT_ST("requests.download", 1), TT_ST("downloads.received", 1),
                  TT_ST("downloads.accepted", _i == 0 ? 1 : 0), TT_ST("faults.injected", 1), NULL);
  /* the client goes on working */
  tt_sim_faults(s, "{}");
  download_ok("after the close", &k, req);
  tt_stats_expect(s, "after the close", TT_ST("requests.download", 2), TT_ST("requests.login", 1),
                  NULL);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_truncate_unknown_outcome) {
  tsesim_request *req;
  cl k;
  tt_sim *s =
      cl_sim(&k, &req, (const char *[]){"--fault", "truncate:endpoint=download", NULL}, 2, 1900);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  expect_rc("truncated", download(&k, req), TSESIM_E_UNKNOWN_OUTCOME, k.c);
  ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "2 devices") != NULL, "errmsg \"%s\"",
                tsesim_client_errmsg(k.c));
  expect_sleeps("no waits", &k.t, 0);
  tt_stats_expect(s, "truncated: one POST", TT_ST("requests.download", 1),
                  TT_ST("downloads.received", 1), TT_ST("downloads.accepted", 1), NULL);
  cl_end(&k, req, s);
}
END_TEST

/* Timed out after sending: an unknown outcome too, not a retry. */
START_TEST(test_timeout_after_send) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *req = make_req(1, 2000);
  long timeout_ms = (long)(tt_slow(0.15) * 1000);
  char faults[64];
  cl k;
  snprintf(faults, sizeof faults, "{\"latency_ms\":%ld}", (long)(tt_slow(0.5) * 1000));
  cl_init(&k, s);
  k.o.timeout_ms = timeout_ms;
  cl_new(&k);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  tt_sim_faults(s, faults);
  expect_rc("slow answer", download(&k, req), TSESIM_E_UNKNOWN_OUTCOME, k.c);
  expect_sleeps("no waits", &k.t, 0);
  ck_assert_int_eq(tt_stat_wait(s, "downloads.accepted", 1, 3.0), 1);
  tt_sleep(tt_slow(0.3));
  tt_stats_expect(s, "timed out: one POST", TT_ST("requests.download", 1),
                  TT_ST("downloads.accepted", 1), NULL);
  cl_free(&k);
  /* the token request: a timeout after sending is TSESIM_E_TIMEOUT, not retried */
  cl_init(&k, s);
  k.o.timeout_ms = timeout_ms;
  cl_new(&k);
  expect_rc("slow token", tsesim_client_login(k.c), TSESIM_E_TIMEOUT, k.c);
  expect_sleeps("no waits", &k.t, 0);
  ck_assert_int_eq(tt_stat_wait(s, "requests.token", 2, 3.0), 2);
  tt_sleep(tt_slow(0.3));
  tt_stats_expect(s, "slow token: one POST", TT_ST("requests.token", 2), TT_ST("requests.login", 1),
                  NULL);
  cl_end(&k, req, s);
}
END_TEST

/* Nothing was sent (connection refused): retried after jittered back-off. */
/* The waits the client announced at level 1 ("...; retrying in N ms (attempt k of n)"). */
static size_t logged_waits(const log_cap *l, long *out, size_t max) {
  size_t i, n = 0;
  for (i = 0; i < l->n; i++) {
    const char *p = strstr(l->lines[i], "retrying in ");
    long ms;
    if (!p || l->levels[i] != 1) continue;
    ck_assert_msg(sscanf(p, "retrying in %ld ms", &ms) == 1, "log line: %s", l->lines[i]);
    if (n < max) out[n] = ms;
    n++;
  }
  return n;
}

/* Each wait before attempt i+2 is at most min(base * 2^i, cap); sleep_fn got every wait
 * that was not 0, in order. Returns the number of waits. */
static size_t check_jitter(const cl *k, long base, long cap) {
  long waits[64], ceiling = base;
  size_t nw = logged_waits(&k->log, waits, ARRAY_LEN(waits)), i, j = 0;
  ck_assert_uint_le(nw, ARRAY_LEN(waits));
  for (i = 0; i < nw; i++, ceiling = ceiling < cap ? ceiling * 2 : cap) {
    long c = ceiling < cap ? ceiling : cap;
    ck_assert_msg(waits[i] >= 0 && waits[i] <= c, "wait %zu: %ld ms, above %ld", i, waits[i], c);
    if (waits[i] == 0) continue; /* a wait of 0 needs no sleep */
    ck_assert_msg(j < k->t.n_sleeps && k->t.sleeps[j] == waits[i],
                  "wait %zu of %ld ms announced, sleep_fn got %ld", i, waits[i],
                  j < k->t.n_sleeps ? k->t.sleeps[j] : -1L);
    j++;
  }
  ck_assert_msg(j == k->t.n_sleeps, "sleep_fn called %zu times, %zu waits announced", k->t.n_sleeps,
                j);
  return nw;
}

START_TEST(test_refused_retried) {
  static const unsigned attempts[] = {0, 5};
  static const long base[] = {10000, 4000}, cap[] = {0, 10000};
  tsesim_request *req = make_req(1, 2100);
  int port, fd = tt_dead_port(&port);
  unsigned n = attempts[_i] ? attempts[_i] : 3;
  long want_cap = cap[_i] ? cap[_i] : 20000;
  size_t nw;
  tt_sim dead;
  cl k;
  memset(&dead, 0, sizeof dead);
  snprintf(dead.base, sizeof dead.base, "http://127.0.0.1:%d", port);
  cl_init(&k, &dead);
  k.o.client_id = k.o.client_secret = NULL;
  k.o.username = k.o.password = NULL;
  k.o.access_token = "00000000-0000-4000-8000-000000000001";
  k.o.session_token = "00000000-0000-4000-8000-000000000002";
  k.o.max_attempts = attempts[_i];
  k.o.backoff_base_ms = base[_i];
  k.o.backoff_cap_ms = cap[_i];
  cl_new(&k);
  expect_rc("connection refused", download(&k, req), TSESIM_E_TRANSPORT, k.c);
  ck_assert_ptr_null(tsesim_client_last_error(k.c));
  ck_assert_str_ne(tsesim_client_errmsg(k.c), "");
  /* n attempts: n - 1 waits, each through sleep_fn (unless the random wait was 0 ms, which
   * needs no sleep: with these bases, odds below 1 in 1000) */
  nw = check_jitter(&k, base[_i], want_cap);
  ck_assert_msg(nw == n - 1, "%zu retries announced for %u attempts", nw, n);
  /* level 2 has a line per exchange */
  ck_assert_uint_eq(log_count_level(&k.log, 2, "/m2m/v1/devices/profile/actions/download"), n);
  /* the login, likewise */
  cl_free(&k);
  cl_init(&k, &dead);
  k.o.max_attempts = attempts[_i];
  k.o.backoff_base_ms = base[_i];
  k.o.backoff_cap_ms = cap[_i];
  cl_new(&k);
  expect_rc("login, connection refused", tsesim_client_login(k.c), TSESIM_E_TRANSPORT, k.c);
  ck_assert_uint_eq(check_jitter(&k, base[_i], want_cap), n - 1);
  cl_free(&k);
  close(fd);
  tsesim_request_free(req);
}
END_TEST

START_TEST(test_non_json) {
  tsesim_request *req;
  cl k;
  tt_sim *s =
      cl_sim(&k, &req, (const char *[]){"--fault", "non-json:endpoint=download", NULL}, 1, 2200);
  expect_rc("download: 200 text/html", download(&k, req), TSESIM_E_HTTP, k.c);
  expect_sleeps("no waits", &k.t, 0);
  tt_stats_expect(s, "non-json download", TT_ST("requests.download", 1),
                  TT_ST("downloads.accepted", 1), NULL);
  cl_free(&k);
  tt_sim_faults(s, "{\"faults\":[{\"kind\":\"non-json\",\"endpoint\":\"token\"}]}");
  cl_start(&k, s);
  expect_rc("token: 200 text/html", tsesim_client_login(k.c), TSESIM_E_HTTP, k.c);
  tt_stats_expect(s, "non-json token", TT_ST("requests.token", 2), TT_ST("requests.login", 1),
                  NULL);
  cl_end(&k, req, s);
}
END_TEST

/* ---- what a hostile or broken server sends ---- */

/* A client of the scripted server st, with the usual recorders. */
static void cl_stub(cl *k, const tt_stub *st) {
  cl_init_base(k, st->base);
  cl_new(k);
}

#define GOOD_TOKEN "{\"access_token\":\"at-good\",\"expires_in\":3600}"
#define GOOD_SESSION "{\"sessionToken\":\"st-good\"}"

/* Unusable tokens, as JSON string bodies: each would break the header it goes into. */
static const char *const bad_tokens[] = {
    "at\\r\\nX-Injected: at", "at\\nX-Injected: at", "at\\rX-Injected: at", "a t",
    "at\\u001b[2J",           "at\\u007f",           "at\\u00e9",           "\\tat"};

/* A token from the token endpoint that is not printable ASCII: TSESIM_E_HTTP,
 * never sent, never kept, never handed to token_fn. */
START_TEST(test_hostile_access_token) {
  tt_stub *st = tt_stub_start();
  tsesim_request *req = make_req(1, 3000);
  char body[256];
  int which;
  cl k;
  snprintf(body, sizeof body, "{\"access_token\":\"%s\",\"expires_in\":3600}", bad_tokens[_i]);
  tt_stub_answer(st, TT_TOKEN, 200, body, 0, NULL);
  tt_stub_answer(st, TT_LOGIN, 200, GOOD_SESSION, 0, NULL);
  tt_stub_answer(st, TT_DOWNLOAD, 200, "{\"requestId\":\"r-1\"}", 0, NULL);
  tt_stub_answer(st, TT_LOGOUT, 200, "{}", 0, NULL);
  for (which = 0; which < 2; which++) { /* by a login, by a download */
    cl_stub(&k, st);
    expect_rc(which ? "download" : "login", which ? download(&k, req) : tsesim_client_login(k.c),
              TSESIM_E_HTTP, k.c);
    ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "access_token is not usable") != NULL,
                  "errmsg \"%s\"", tsesim_client_errmsg(k.c));
    ck_assert_msg(!strstr(tsesim_client_errmsg(k.c), "X-Injected"), "errmsg \"%s\" echoes it",
                  tsesim_client_errmsg(k.c));
    ck_assert_uint_eq(k.toks.n, 0);
    expect_rc("logout: no session", tsesim_client_logout(k.c), TSESIM_OK, k.c);
    cl_free(&k);
  }
  /* nothing after the token requests, and no header of the server's making */
  ck_assert_uint_eq(tt_stub_count(st, NULL), 2);
  ck_assert_uint_eq(tt_stub_count(st, TT_TOKEN), 2);
  ck_assert_uint_eq(tt_stub_with_header(st, "X-Injected"), 0);
  tt_stub_stop(st);
  tsesim_request_free(req);
}
END_TEST

/* The same for a sessionToken from the login. */
START_TEST(test_hostile_session_token) {
  tt_stub *st = tt_stub_start();
  tsesim_request *req = make_req(1, 3100);
  char body[256];
  int which;
  cl k;
  snprintf(body, sizeof body, "{\"sessionToken\":\"%s\"}", bad_tokens[_i]);
  tt_stub_answer(st, TT_TOKEN, 200, GOOD_TOKEN, 0, NULL);
  tt_stub_answer(st, TT_LOGIN, 200, body, 0, NULL);
  tt_stub_answer(st, TT_DOWNLOAD, 200, "{\"requestId\":\"r-1\"}", 0, NULL);
  tt_stub_answer(st, TT_LOGOUT, 200, "{}", 0, NULL);
  for (which = 0; which < 2; which++) {
    cl_stub(&k, st);
    expect_rc(which ? "download" : "login", which ? download(&k, req) : tsesim_client_login(k.c),
              TSESIM_E_HTTP, k.c);
    ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "sessionToken is not usable") != NULL,
                  "errmsg \"%s\"", tsesim_client_errmsg(k.c));
    ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_ACCESS), 1);
    ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_SESSION), 0);
    expect_rc("logout: no session", tsesim_client_logout(k.c), TSESIM_OK, k.c);
    cl_free(&k);
  }
  ck_assert_uint_eq(tt_stub_count(st, NULL), 4);
  ck_assert_uint_eq(tt_stub_count(st, TT_LOGIN), 2);
  ck_assert_uint_eq(tt_stub_with_header(st, "X-Injected"), 0);
  tt_stub_stop(st);
  tsesim_request_free(req);
}
END_TEST

/* requestIds of an accepted download: 1-128 bytes of 0x21-0x7E, else TSESIM_E_HTTP. */
START_TEST(test_request_id_checked) {
  static const struct {
    const char *json; /* the requestId as a JSON string's content, or NULL: n bytes of 'a' */
    size_t n;
    tsesim_code want;
    const char *why;
  } cases[] = {
      {"ab\\rcd", 0, TSESIM_E_HTTP, "control character 0x0D at byte 3"},
      {"ab\\ncd", 0, TSESIM_E_HTTP, "control character 0x0A at byte 3"},
      {"ab\\u001b[31mcd", 0, TSESIM_E_HTTP, "control character 0x1B at byte 3"},
      {"a b", 0, TSESIM_E_HTTP, "space 0x20 at byte 2"},
      {"\\u00e9t\\u00e9", 0, TSESIM_E_HTTP, "non-ASCII byte 0xC3 at byte 1"},
      {"", 0, TSESIM_E_HTTP, "empty"},
      {NULL, 129, TSESIM_E_HTTP, "129 bytes, at most 128"},
      {NULL, 1000000, TSESIM_E_HTTP, "1000000 bytes, at most 128"},
      {NULL, 128, TSESIM_OK, NULL},
      {"!~\\\"\\\\/{}", 0, TSESIM_OK, NULL},
  };
  tt_stub *st = tt_stub_start();
  tsesim_request *req = make_req(1, 3200);
  size_t i;
  cl k;
  tt_stub_answer(st, TT_TOKEN, 200, GOOD_TOKEN, 0, NULL);
  tt_stub_answer(st, TT_LOGIN, 200, GOOD_SESSION, 0, NULL);
  cl_stub(&k, st);
  for (i = 0; i < ARRAY_LEN(cases); i++) {
    size_t n = cases[i].json ? strlen(cases[i].json) : cases[i].n;
    char *body = malloc(n + 32), *id = (char *)"sentinel";
    tsesim_code rc;
    ck_assert_ptr_nonnull(body);
    strcpy(body, "{\"requestId\":\"");
    if (cases[i].json)
      strcat(body, cases[i].json);
    else
      memset(body + strlen(body), 'a', n), body[14 + n] = '\0';
    strcat(body, "\"}");
    tt_stub_answer(st, TT_DOWNLOAD, 200, body, 0, NULL);
    rc = tsesim_client_download(&id, k.c, req);
    ck_assert_msg(rc == cases[i].want, "case %zu: %s, expected %s; errmsg \"%s\"", i,
                  tsesim_code_name(rc), tsesim_code_name(cases[i].want), tsesim_client_errmsg(k.c));
    if (rc == TSESIM_OK) {
      ck_assert_ptr_nonnull(id);
      ck_assert_uint_eq(strlen(id), cases[i].json ? strlen("!~\"\\/{}") : cases[i].n);
      tsesim_free(id);
    } else {
      const tsesim_api_error *e = tsesim_client_last_error(k.c);
      ck_assert_ptr_null(id);
      ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "accepted (HTTP 200)") &&
                        strstr(tsesim_client_errmsg(k.c), cases[i].why),
                    "case %zu: errmsg \"%s\"", i, tsesim_client_errmsg(k.c));
      ck_assert_msg(e && e->http_status == 200 && strcmp(e->body, body) == 0,
                    "case %zu: last_error does not keep the raw answer", i);
    }
    free(body);
  }
  ck_assert_uint_eq(tt_stub_count(st, TT_DOWNLOAD), ARRAY_LEN(cases));
  cl_free(&k);
  tt_stub_stop(st);
  tsesim_request_free(req);
}
END_TEST

/* Server text in errmsg and in the log: control characters escaped, each
 * field cut at 100 bytes; last_error keeps the raw bytes. */
START_TEST(test_server_text_escaped) {
  tt_stub *st = tt_stub_start();
  tsesim_request *req = make_req(1, 3300);
  const tsesim_api_error *e;
  const char *m;
  char body[1024], longmsg[301];
  size_t i;
  cl k;
  tt_stub_answer(st, TT_TOKEN, 200, GOOD_TOKEN, 0, NULL);
  tt_stub_answer(st, TT_LOGIN, 200, GOOD_SESSION, 0, NULL);
  tt_stub_answer(st, TT_DOWNLOAD, 400,
                 "{\"errorCode\":\"E.Bad\\r\\nX-Forged: 1\","
                 "\"errorMessage\":\"line one\\r\\n0 [error] forged line\\u001b[2J\"}",
                 0, "X-Note: a\x1b[31mred");
  cl_stub(&k, st);
  expect_rc("400 with control characters", download(&k, req), TSESIM_E_API, k.c);
  m = tsesim_client_errmsg(k.c);
  for (i = 0; m[i]; i++)
    ck_assert_msg((unsigned char)m[i] >= 0x20 && (unsigned char)m[i] < 0x7F,
                  "errmsg byte %zu is 0x%02X: \"%s\"", i, (unsigned char)m[i], m);
  tt_expect_str("errmsg", "errmsg", m,
                "download: 400 \"E.Bad\\x0D\\x0AX-Forged: 1\": \"line one\\x0D\\x0A0 [error] "
                "forged line\\x1B[2J\"");
  e = tsesim_client_last_error(k.c);
  ck_assert_ptr_nonnull(e);
  tt_expect_str("last_error", "code", e->code, "E.Bad\r\nX-Forged: 1");
  tt_expect_str("last_error", "message", e->message, "line one\r\n0 [error] forged line\x1b[2J");
  /* every log line: no control character; the error line and the header escaped */
  for (i = 0; i < k.log.n; i++) {
    size_t j;
    for (j = 0; k.log.lines[i][j]; j++)
      ck_assert_msg((unsigned char)k.log.lines[i][j] >= 0x20, "log line %zu has byte 0x%02X: %s", i,
                    (unsigned char)k.log.lines[i][j], k.log.lines[i]);
  }
  ck_assert_uint_eq(log_count_level(&k.log, 0, "\"line one\\x0D\\x0A0 [error] forged"), 1);
  ck_assert_uint_eq(log_count(&k.log, "< X-Note: a\\x1B[31mred", NULL), 1);
  cl_free(&k);
  /* a long message: 100 bytes of it, then "..." */
  memset(longmsg, 'm', 300);
  longmsg[300] = '\0';
  snprintf(body, sizeof body, "{\"errorCode\":\"E.Long\",\"errorMessage\":\"%s\"}", longmsg);
  tt_stub_answer(st, TT_DOWNLOAD, 400, body, 0, NULL);
  cl_stub(&k, st);
  expect_rc("400 with a long message", download(&k, req), TSESIM_E_API, k.c);
  {
    char want[200];
    snprintf(want, sizeof want, "download: 400 \"E.Long\": \"%.100s...\"", longmsg);
    tt_expect_str("long message", "errmsg", tsesim_client_errmsg(k.c), want);
  }
  tt_expect_str("long message", "last_error.message", tsesim_client_last_error(k.c)->message,
                longmsg);
  cl_free(&k);
  tt_stub_stop(st);
  tsesim_request_free(req);
}
END_TEST

/* A registration is guarded like the download: a connection closed after
 * it was sent is an unknown outcome, and it is not sent again. */
START_TEST(test_register_unknown_outcome) {
  tt_sim *s = tt_sim_start((const char *[]){"--fault", "close:endpoint=callbacks", NULL});
  cl k;
  cl_start(&k, s);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  expect_rc(
      "register, connection closed",
      tsesim_client_register_callback(k.c, TT_ACCOUNT, NULL, "http://127.0.0.1:9/cb", NULL, NULL),
      TSESIM_E_UNKNOWN_OUTCOME, k.c);
  ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "register callback: sent") != NULL,
                "errmsg \"%s\"", tsesim_client_errmsg(k.c));
  expect_sleeps("not retried", &k.t, 0);
  tt_stats_expect(s, "sent once", TT_ST("requests.callbacks", 1), NULL);
  cl_end(&k, NULL, s);
}
END_TEST

/* ---- secure defaults ---- */

START_TEST(test_redirect_not_followed) {
  tt_sim *s2 = tt_sim_start(NULL), *s;
  char to[200], rule[300];
  tsesim_request *req = make_req(1, 2300);
  cl k;
  snprintf(to, sizeof to, "%s" TT_DOWNLOAD, s2->base);
  snprintf(rule, sizeof rule, "redirect:endpoint=download,to=%s", to);
  s = tt_sim_start((const char *[]){"--fault", rule, NULL});
  cl_start(&k, s);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  expect_rc("download: 302", download(&k, req), TSESIM_E_HTTP, k.c);
  ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "redirect") != NULL, "errmsg \"%s\"",
                tsesim_client_errmsg(k.c));
  ck_assert_ptr_nonnull(tsesim_client_last_error(k.c));
  ck_assert_int_eq(tsesim_client_last_error(k.c)->http_status, 302);
  expect_sleeps("no waits", &k.t, 0);
  tt_stats_expect(s, "302", TT_ST("requests.download", 1), TT_ST("downloads.accepted", 0), NULL);
  cl_free(&k);
  /* and on the token request */
  snprintf(to, sizeof to, "%s" TT_TOKEN, s2->base);
  snprintf(rule, sizeof rule,
           "{\"faults\":[{\"kind\":\"redirect\",\"endpoint\":\"token\",\"to\":\"%s\"}]}", to);
  tt_sim_faults(s, rule);
  cl_start(&k, s);
  expect_rc("token: 302", tsesim_client_login(k.c), TSESIM_E_HTTP, k.c);
  cl_free(&k);
  expect_no_api(s2, "the redirect target");
  ck_assert_int_eq(tt_sim_stop(s), 0);
  ck_assert_int_eq(tt_sim_stop(s2), 0);
  tsesim_request_free(req);
}
END_TEST

START_TEST(test_tls) {
  tt_sim *s = tt_sim_new();
  char cert[PATH_MAX], key[PATH_MAX], other[PATH_MAX], okey[PATH_MAX];
  tsesim_request *req = make_req(1, 2400);
  cl k;
  tt_make_cert(tt_sim_path(s, "cert.pem", cert), tt_sim_path(s, "key.pem", key));
  tt_make_cert(tt_sim_path(s, "other.pem", other), tt_sim_path(s, "other-key.pem", okey));
  tt_sim_launch(s, (const char *[]){"--tls-cert", cert, "--tls-key", key, NULL});
  snprintf(s->base, sizeof s->base, "https://127.0.0.1:%d", s->port);
  s->cafile = cert;
  /* the system's CAs: refused */
  cl_start(&k, s);
  expect_rc("no ca_file", tsesim_client_login(k.c), TSESIM_E_TLS, k.c);
  expect_sleeps("no waits", &k.t, 0);
  cl_free(&k);
  /* another CA: refused */
  cl_init(&k, s);
  k.o.ca_file = other;
  cl_new(&k);
  expect_rc("another CA", tsesim_client_login(k.c), TSESIM_E_TLS, k.c);
  cl_free(&k);
  expect_no_api(s, "TLS refused");
  /* the right CA */
  cl_init(&k, s);
  k.o.ca_file = cert;
  cl_new(&k);
  expect_rc("ca_file = the certificate", tsesim_client_login(k.c), TSESIM_OK, k.c);
  download_ok("download over TLS", &k, req);
  tt_stats_expect(s, "TLS", TT_ST("tokens.issued", 1), TT_ST("logins.ok", 1),
                  TT_ST("downloads.accepted", 1), NULL);
  cl_end(&k, req, s);
}
END_TEST

START_TEST(test_response_cap) {
  char capped[TSESIM_ERRBUF_SIZE * 2], read_whole[TSESIM_ERRBUF_SIZE * 2];
  tsesim_request *req;
  cl k;
  tt_sim *s = cl_sim(&k, &req,
                     (const char *[]){"--fault", "oversize:bytes=2000000,endpoint=download", NULL},
                     1, 2500);
  expect_rc("2,000,000 bytes, default cap", download(&k, req), TSESIM_E_HTTP, k.c);
  snprintf(capped, sizeof capped, "%s", tsesim_client_errmsg(k.c));
  expect_sleeps("no waits", &k.t, 0);
  cl_free(&k);
  cl_init(&k, s);
  k.o.max_response_bytes = 4 * 1024 * 1024;
  cl_new(&k);
  expect_rc("2,000,000 bytes, cap 4 MiB", download(&k, req), TSESIM_E_HTTP, k.c);
  snprintf(read_whole, sizeof read_whole, "%s", tsesim_client_errmsg(k.c));
  cl_free(&k);
  ck_assert_msg(strstr(capped, "1048576") != NULL, "capped: errmsg \"%s\" names no cap", capped);
  ck_assert_msg(strcmp(capped, read_whole) != 0, "the same errmsg: \"%s\"", capped);
  ck_assert_msg(strstr(read_whole, "1048576") == NULL && strstr(read_whole, "4194304") == NULL,
                "read whole: errmsg \"%s\" blames the cap", read_whole);
  ck_assert_msg(strstr(read_whole, "requestId") != NULL, "read whole: errmsg \"%s\"", read_whole);
  tt_stats_expect(s, "oversize", TT_ST("requests.download", 2), TT_ST("downloads.accepted", 2),
                  NULL);
  /* the token answer too */
  tt_sim_faults(s, "{\"faults\":[{\"kind\":\"oversize\",\"endpoint\":\"token\"}]}");
  cl_start(&k, s);
  expect_rc("oversized token answer", tsesim_client_login(k.c), TSESIM_E_HTTP, k.c);
  ck_assert_msg(strstr(tsesim_client_errmsg(k.c), "1048576") != NULL, "errmsg \"%s\"",
                tsesim_client_errmsg(k.c));
  expect_sleeps("no waits", &k.t, 0);
  cl_free(&k);
  tt_stats_expect(s, "oversized token", TT_ST("requests.token", 3), TT_ST("requests.login", 2),
                  NULL);
  tsesim_request_free(req);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- logging ---- */

START_TEST(test_log_redacted) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *req = make_req(1, 2600);
  const char *access, *session;
  size_t i, n3 = 0;
  cl k;
  cl_init(&k, s);
  k.o.user_agent = "check-client/1";
  cl_new(&k);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  download_ok("download", &k, req);
  expect_rc("logout", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  ck_assert_uint_eq(k.toks.n, 3);
  access = tok_nth(&k.toks, 0)->token;
  session = tok_nth(&k.toks, 1)->token;
  ck_assert_ptr_nonnull(access);
  ck_assert_ptr_nonnull(session);
  for (i = 0; i < k.log.n; i++) {
    const char *l = k.log.lines[i];
    static const char *const secret[] = {SIM_PASS, SIM_SECRET, SIM_BASIC_B64};
    size_t j;
    ck_assert_msg(k.log.levels[i] >= 0 && k.log.levels[i] <= 3, "level %d", k.log.levels[i]);
    n3 += k.log.levels[i] == 3;
    ck_assert_msg(!strstr(l, access), "log line %zu has the access token: %s", i, l);
    ck_assert_msg(!strstr(l, session), "log line %zu has the session token: %s", i, l);
    for (j = 0; j < ARRAY_LEN(secret); j++)
      ck_assert_msg(!strstr(l, secret[j]), "log line %zu has \"%s\": %s", i, secret[j], l);
    if (strcasestr(l, "Authorization:") || strcasestr(l, "VZ-M2M-Token:"))
      ck_assert_msg(strstr(l, "[redacted]") != NULL, "log line %zu not redacted: %s", i, l);
  }
  ck_assert_msg(n3 > 0, "no debug lines at log level 3");
  /* 4 requests (token, login, download, logout), each with Authorization; 2 with the session */
  ck_assert_uint_eq(log_count(&k.log, "Authorization:", "[redacted]", NULL), 4);
  ck_assert_uint_eq(log_count(&k.log, "VZ-M2M-Token:", "[redacted]", NULL), 2);
  ck_assert_uint_eq(
      log_count(&k.log, "User-Agent: libtsesim/" TSESIM_VERSION_STR " check-client/1", NULL), 4);
  cl_free(&k);
  /* log_level is the highest level passed */
  cl_init(&k, s);
  k.o.log_level = 2;
  cl_new(&k);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  ck_assert_msg(k.log.n > 0, "no line at log level 2");
  for (i = 0; i < k.log.n; i++)
    ck_assert_msg(k.log.levels[i] <= 2, "level %d at log_level 2: %s", k.log.levels[i],
                  k.log.lines[i]);
  cl_end(&k, req, s);
}
END_TEST

/* ---- secrets are zeroed before their memory is freed ---- */

#define CB_PASS "listener-pass-7d1"

/* Every block the library frees (through its allocator, which the test build
 * watches) is searched for the credentials and for every token the client
 * was given. A full session with both renewals, a callback registration with
 * a password, a client made from ready tokens, and the frees at the end. */
START_TEST(test_secrets_zeroed) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *req = make_req(1, 2700);
  tsesim_client *ready = NULL;
  tsesim_options o;
  cl k;
  tsesim__test_watch_secret(NULL);
  tsesim__test_watch_secret(SIM_PASS);
  tsesim__test_watch_secret(SIM_SECRET);
  tsesim__test_watch_secret(SIM_BASIC_B64);
  tsesim__test_watch_secret(CB_PASS);
  watch_tokens = 1;
  cl_start(&k, s);
  expect_rc("login", tsesim_client_login(k.c), TSESIM_OK, k.c);
  expect_rc("register",
            tsesim_client_register_callback(k.c, TT_ACCOUNT, NULL, "http://127.0.0.1:9/cb",
                                            "listener", CB_PASS),
            TSESIM_OK, k.c);
  download_ok("download", &k, req);
  sim_revoke_all(s, "{\"access_tokens\":true,\"sessions\":true}");
  download_ok("download after revoking both tokens", &k, req);
  tt_stats_expect(s, "both tokens renewed", TT_ST("requests.token", 2), TT_ST("requests.login", 2),
                  NULL);
  /* a second client from the live tokens, given as ready tokens */
  tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  o.base_url = k.url;
  o.access_token = tok_given(&k.toks, TSESIM_TOKEN_ACCESS, 1);
  o.session_token = tok_given(&k.toks, TSESIM_TOKEN_SESSION, 1);
  ck_assert_ptr_nonnull(o.session_token);
  expect_rc("new from ready tokens", tsesim_client_new(&ready, &o), TSESIM_OK, NULL);
  {
    char *id = NULL;
    expect_rc("download with ready tokens", tsesim_client_download(&id, ready, req), TSESIM_OK,
              ready);
    tsesim_free(id);
  }
  tsesim_client_free(ready);
  expect_rc("logout", tsesim_client_logout(k.c), TSESIM_OK, k.c);
  tsesim_client_free(k.c);
  k.c = NULL;
  watch_tokens = 0;
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_ACCESS), 2);
  ck_assert_uint_eq(tok_count(&k.toks, TSESIM_TOKEN_SESSION), 2);
  ck_assert_msg(tsesim__test_secret_leaks() == 0,
                "%lu freed blocks still held a credential or a token", tsesim__test_secret_leaks());
  tsesim__test_watch_secret(NULL);
  cl_end(&k, req, s);
}
END_TEST

/* ---- threads ---- */

#define N_THREADS 4
#define N_DOWNLOADS 5

typedef struct worker {
  const char *url;
  tsesim_request *req[N_DOWNLOADS];
  tsesim_code new_rc, login_rc, dl_rc[N_DOWNLOADS];
  int uuid_ok[N_DOWNLOADS];
  char errmsg[TSESIM_ERRBUF_SIZE];
} worker;

static void *worker_run(void *arg) {
  worker *w = arg;
  tsesim_options o;
  tsesim_client *c = NULL;
  int i;
  tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  o.base_url = w->url;
  o.client_id = SIM_KEY;
  o.client_secret = SIM_SECRET;
  o.username = SIM_USER;
  o.password = SIM_PASS;
  w->new_rc = tsesim_client_new(&c, &o);
  if (w->new_rc != TSESIM_OK) return NULL;
  w->login_rc = tsesim_client_login(c);
  for (i = 0; i < N_DOWNLOADS; i++) {
    char *id = NULL;
    w->dl_rc[i] = tsesim_client_download(&id, c, w->req[i]);
    w->uuid_ok[i] = tt_is_uuid4(id);
    if (w->dl_rc[i] != TSESIM_OK && !w->errmsg[0])
      snprintf(w->errmsg, sizeof w->errmsg, "%s", tsesim_client_errmsg(c));
    tsesim_free(id);
  }
  tsesim_client_free(c);
  return NULL;
}

START_TEST(test_threads) {
  tt_sim *s = tt_sim_start(NULL);
  worker w[N_THREADS];
  pthread_t th[N_THREADS];
  char url[128];
  int t, i;
  snprintf(url, sizeof url, "%s/api", s->base);
  memset(w, 0, sizeof w);
  for (t = 0; t < N_THREADS; t++) {
    w[t].url = url;
    for (i = 0; i < N_DOWNLOADS; i++)
      w[t].req[i] = make_req(2, 3000 + (unsigned long)(t * N_DOWNLOADS + i) * 2);
  }
  for (t = 0; t < N_THREADS; t++)
    ck_assert_int_eq(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
  for (t = 0; t < N_THREADS; t++) ck_assert_int_eq(pthread_join(th[t], NULL), 0);
  for (t = 0; t < N_THREADS; t++) {
    ck_assert_msg(w[t].new_rc == TSESIM_OK, "thread %d: new %s", t, tsesim_code_name(w[t].new_rc));
    ck_assert_msg(w[t].login_rc == TSESIM_OK, "thread %d: login %s", t,
                  tsesim_code_name(w[t].login_rc));
    for (i = 0; i < N_DOWNLOADS; i++) {
      ck_assert_msg(w[t].dl_rc[i] == TSESIM_OK && w[t].uuid_ok[i], "thread %d download %d: %s (%s)",
                    t, i, tsesim_code_name(w[t].dl_rc[i]), w[t].errmsg);
      tsesim_request_free(w[t].req[i]);
    }
  }
  tt_stats_expect(s, "4 threads", TT_ST("requests.token", N_THREADS),
                  TT_ST("requests.login", N_THREADS), TT_ST("logins.ok", N_THREADS),
                  TT_ST("requests.download", N_THREADS * N_DOWNLOADS),
                  TT_ST("downloads.accepted", N_THREADS * N_DOWNLOADS),
                  TT_ST("downloads.devices_accepted", N_THREADS * N_DOWNLOADS * 2), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- the request's limits, checked before any network ---- */

START_TEST(test_request_limits) {
  tt_sim *s = tt_sim_start(NULL);
  tsesim_request *none = NULL, *big = NULL, *one = make_req(1, 4000);
  tt_device d;
  char *id = (char *)"sentinel";
  unsigned long i;
  cl k;
  ck_assert_int_eq(tsesim_request_new(&none, TT_ACCOUNT), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_new(&big, TT_ACCOUNT), TSESIM_OK);
  for (i = 0; i < TSESIM_MAX_DEVICES_PER_REQUEST + 1; i++) {
    tt_device_make(&d, 100000 + i);
    ck_assert_int_eq(tsesim_request_add_device(big, d.ids, 3), TSESIM_OK);
  }
  ck_assert_uint_eq(tsesim_request_device_count(big), 10001);
  cl_start(&k, s);
  expect_rc("0 devices", download(&k, none), TSESIM_E_INVAL, k.c);
  ck_assert_str_ne(tsesim_client_errmsg(k.c), "");
  expect_rc("10,001 devices", download(&k, big), TSESIM_E_LIMIT, k.c);
  ck_assert_str_ne(tsesim_client_errmsg(k.c), "");
  ck_assert_ptr_null(tsesim_client_last_error(k.c));
  ck_assert_int_eq(tsesim_client_download(&id, k.c, NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(id);
  id = (char *)"sentinel";
  ck_assert_int_eq(tsesim_client_download(&id, NULL, one), TSESIM_E_INVAL);
  ck_assert_ptr_null(id);
  ck_assert_int_eq(tsesim_client_download(NULL, k.c, one), TSESIM_E_INVAL);
  expect_no_api(s, "requests refused before sending");
  cl_free(&k);
  tsesim_request_free(none);
  tsesim_request_free(big);
  tsesim_request_free(one);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* The proxy comes from the options only: http_proxy in the environment is ignored,
 * the proxy option is used (for loopback too). */
START_TEST(test_env_proxy_ignored) {
  tt_sim *s = tt_sim_start(NULL);
  int port, fd = tt_dead_port(&port);
  char proxy[64];
  cl k;
  snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
  setenv("http_proxy", proxy, 1);
  setenv("HTTPS_PROXY", proxy, 1);
  setenv("ALL_PROXY", proxy, 1);
  unsetenv("NO_PROXY");
  unsetenv("no_proxy");
  cl_start(&k, s);
  expect_rc("login with http_proxy set", tsesim_client_login(k.c), TSESIM_OK, k.c);
  cl_free(&k);
  unsetenv("http_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("ALL_PROXY");
  tt_stats_expect(s, "no proxy", TT_ST("logins.ok", 1), NULL);
  /* the option is used: a proxy nobody listens on */
  cl_init(&k, s);
  k.o.proxy = proxy;
  cl_new(&k);
  expect_rc("login through a dead proxy", tsesim_client_login(k.c), TSESIM_E_TRANSPORT, k.c);
  ck_assert_uint_eq(k.t.n_sleeps, 2); /* nothing was sent: retried */
  cl_free(&k);
  close(fd);
  tt_stats_expect(s, "dead proxy", TT_ST("requests.token", 1), TT_ST("logins.ok", 1), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("client");
  TCase *tc = tt_tcase(s, "new", 20);
  tcase_add_test(tc, test_new_args);
  tcase_add_test(tc, test_new_urls);
  tcase_add_loop_test(tc, test_new_url_userinfo, 0, (int)ARRAY_LEN(userinfo_urls));
  tcase_add_test(tc, test_new_credentials);
  tcase_add_loop_test(tc, test_new_v2_messages, 0, (int)ARRAY_LEN(opt_cases));
  tcase_add_test(tc, test_new_v2_args);
  tc = tt_tcase(s, "session", 20);
  tcase_add_test(tc, test_login_escaped);
  tcase_add_test(tc, test_lazy);
  tcase_add_test(tc, test_login_logout);
  tcase_add_test(tc, test_base_url_slash);
  tcase_add_test(tc, test_api_error);
  tcase_add_test(tc, test_ready_tokens);
  tcase_add_test(tc, test_connection_reuse);
  tcase_add_test(tc, test_token_refresh);
  tcase_add_test(tc, test_token_401_replay);
  tcase_add_test(tc, test_login_401_replay);
  tcase_add_test(tc, test_session_revoked);
  tcase_add_test(tc, test_session_idle);
  tcase_add_test(tc, test_token_401_once);
  tcase_add_test(tc, test_login_401_twice_not_refusal);
  tcase_add_test(tc, test_session_expired_once);
  tcase_add_test(tc, test_logout_cases);
  tcase_add_test(tc, test_wrong_password);
  tcase_add_test(tc, test_wrong_secret);
  tcase_add_test(tc, test_token_fn);
  tc = tt_tcase(s, "retries", 20);
  tcase_add_test(tc, test_429_retry_after_seconds);
  tcase_add_test(tc, test_429_retry_after_date);
  tcase_add_test(tc, test_retry_after_cap);
  tcase_add_test(tc, test_retry_after_edges);
  tcase_add_test(tc, test_503_retried);
  tcase_add_test(tc, test_429_exhausted);
  tcase_add_test(tc, test_503_exhausted_max_attempts);
  tcase_add_test(tc, test_429_token_not_refusal);
  tcase_add_test(tc, test_500_not_retried);
  tcase_add_loop_test(tc, test_close_unknown_outcome, 0, 2);
  tcase_add_test(tc, test_truncate_unknown_outcome);
  tcase_add_test(tc, test_timeout_after_send);
  tcase_add_loop_test(tc, test_refused_retried, 0, 2);
  tcase_add_test(tc, test_non_json);
  tc = tt_tcase(s, "secure", 30);
  tcase_add_test(tc, test_redirect_not_followed);
  tcase_add_test(tc, test_tls);
  tcase_add_test(tc, test_response_cap);
  tcase_add_test(tc, test_log_redacted);
  tcase_add_test(tc, test_secrets_zeroed);
  tc = tt_tcase(s, "hostile", 30);
  tcase_add_loop_test(tc, test_hostile_access_token, 0, (int)ARRAY_LEN(bad_tokens));
  tcase_add_loop_test(tc, test_hostile_session_token, 0, (int)ARRAY_LEN(bad_tokens));
  tcase_add_test(tc, test_request_id_checked);
  tcase_add_test(tc, test_server_text_escaped);
  tcase_add_test(tc, test_register_unknown_outcome);
  tc = tt_tcase(s, "threads", 30);
  tcase_add_test(tc, test_threads);
  tcase_add_test(tc, test_request_limits);
  tcase_add_test(tc, test_env_proxy_ignored);
  return s;
}

TT_MAIN_GLOBAL(suite)
