/*
 * check_listener.c - the callback listener over real HTTP on loopback
 * (libcurl as the client): every answer of CLI.md's table, group commit,
 * draining on stop, HTTPS, on_callback's thread, the limits, and an
 * allocation-failure loop over the callback path.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsesim_test.h"

#define NDEV 128
#define USER "lsn-user"
#define PASS "lsn-pass-0123456789abcdef"
#define REQ_ID "5c0a9f4e-0000-4000-8000-000000000001"

static char dir[64], db[128];
static tt_device devs[NDEV];

/* ---- a journal holding one job of NDEV devices, its chunk being sent ---- */

static void journal_make(void) {
  tsesim_journal *j = NULL;
  tsesim_request *req = NULL;
  tsesim__job_rec rec;
  tsesim__chunk_change ch = {0, TSESIM__CHUNK_SENDING, NULL, 0, NULL};
  char err[TSESIM_ERRBUF_SIZE];
  size_t i;

  strcpy(dir, "tests/tmp-journal-XXXXXX");
  if (!mkdtemp(dir)) {
    strcpy(dir, "tmp-journal-XXXXXX");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
  }
  snprintf(db, sizeof db, "%s/j.db", dir);
  ck_assert_int_eq(tsesim_request_new(&req, "acct"), TSESIM_OK);
  for (i = 0; i < NDEV; i++) {
    tt_device_make(&devs[i], 1000 + i);
    ck_assert_int_eq(tsesim_request_add_device(req, devs[i].ids, 3), TSESIM_OK);
  }
  ck_assert_msg(tsesim_journal_open(&j, db, err) == TSESIM_OK, "%s", err);
  ck_assert_msg(tsesim__journal_job_begin(j, "job", req, NULL, NDEV, &rec) == TSESIM_OK, "%s",
                tsesim_journal_errmsg(j));
  /* Sent and not answered yet: the callbacks give the chunk its requestId. */
  ck_assert_msg(tsesim__journal_chunks_set(j, &rec, &ch, 1) == TSESIM_OK, "%s",
                tsesim_journal_errmsg(j));
  tsesim_journal_close(j);
  tsesim_request_free(req);
}

static void journal_remove(void) {
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[160];
  size_t i;
  for (i = 0; i < ARRAY_LEN(sfx); i++) {
    snprintf(p, sizeof p, "%s%s", db, sfx[i]);
    unlink(p);
  }
  rmdir(dir);
}

static tsesim_job_counts counts(void) {
  tsesim_journal *j = NULL;
  tsesim_job_counts c;
  char err[TSESIM_ERRBUF_SIZE];
  ck_assert_msg(tsesim_journal_open(&j, db, err) == TSESIM_OK, "%s", err);
  ck_assert_msg(tsesim_job_count(j, NULL, &c) == TSESIM_OK, "%s", tsesim_journal_errmsg(j));
  tsesim_journal_close(j);
  return c;
}

/* ---- the HTTP client ---- */

typedef struct answer {
  long status;
  char body[1024];
  size_t len;
  char allow[64];
  CURLcode cc;
} answer;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  answer *a = ud;
  size_t k = sz * n, room = sizeof a->body - 1 - a->len;
  memcpy(a->body + a->len, p, k < room ? k : room);
  a->len += k < room ? k : room;
  a->body[a->len] = '\0';
  return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  answer *a = ud;
  size_t k = sz * n;
  if (k > 6 && !strncasecmp(p, "Allow:", 6)) {
    size_t m = k - 6 < sizeof a->allow - 1 ? k - 6 : sizeof a->allow - 1;
    memcpy(a->allow, p + 6, m);
    a->allow[m] = '\0';
    while (m && (a->allow[m - 1] == '\r' || a->allow[m - 1] == '\n')) a->allow[--m] = '\0';
  }
  return k;
}

typedef struct chunked_src {
  const char *p;
  size_t len, pos;
} chunked_src;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud) {
  chunked_src *s = ud;
  size_t k = sz * n < s->len - s->pos ? sz * n : s->len - s->pos;
  memcpy(buf, s->p + s->pos, k);
  s->pos += k;
  return k;
}

/* method NULL: POST body; chunked: no Content-Length. */
static answer http(const char *scheme, unsigned port, const char *method, const char *path,
                   const char *body, size_t len, int chunked, const char *cafile) {
  answer a;
  char url[256];
  CURL *e = curl_easy_init();
  struct curl_slist *h = NULL;
  chunked_src src = {body, len, 0};
  memset(&a, 0, sizeof a);
  ck_assert_ptr_nonnull(e);
  snprintf(url, sizeof url, "%s://127.0.0.1:%u%s", scheme, port, path);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &a);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (cafile) curl_easy_setopt(e, CURLOPT_CAINFO, cafile);
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  if (chunked) {
    h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, &src);
  } else if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
  }
  if (method) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  a.cc = curl_easy_perform(e);
  if (a.cc == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  return a;
}

/* A callback for device i: SUCCESS, with the echoed credentials (user or
 * pass NULL: left out). */
static char *cb_body(size_t i, const char *rid, const char *status, const char *user,
                     const char *pass) {
  static __thread char b[1024];
  char cred[256] = "";
  if (user) snprintf(cred, sizeof cred, ",\"username\":\"%s\",\"password\":\"%s\"", user, pass);
  snprintf(b, sizeof b,
           "{\"requestId\":\"%s\",\"deviceIds\":[{\"id\":\"%s\",\"kind\":\"eid\"},"
           "{\"id\":\"%s\",\"kind\":\"iccid\"}],\"status\":\"%s\",\"callbackCount\":1,"
           "\"maxCallbackThreshold\":4%s}",
           rid, devs[i].eid, devs[i].iccid, status, cred);
  return b;
}

static answer post_cb(unsigned port, size_t i) {
  const char *b = cb_body(i, REQ_ID, "SUCCESS", USER, PASS);
  return http("http", port, NULL, "/callbacks", b, strlen(b), 0, NULL);
}

static tsesim_listener *start(tsesim_listener_options *o) {
  tsesim_listener *l = NULL;
  char err[TSESIM_ERRBUF_SIZE] = "";
  tsesim_code rc = tsesim_listener_start(&l, o, err);
  ck_assert_msg(rc == TSESIM_OK, "start: %s: %s", tsesim_code_name(rc), err);
  ck_assert_uint_ne(tsesim_listener_port(l), 0);
  return l;
}

static tsesim_listener_options opts_default(void) {
  tsesim_listener_options o;
  ck_assert_int_eq(tsesim_listener_options_init(&o, TSESIM_LISTENER_OPTIONS_VERSION), TSESIM_OK);
  o.journal = db;
  o.username = USER;
  o.password = PASS;
  return o;
}

/* ---- every answer of the table ---- */

START_TEST(test_answers) {
  tsesim_listener_options o = opts_default();
  tsesim_listener *l;
  unsigned port;
  answer a;
  tsesim_job_counts c;
  const char *b;
  char big[4096];

  journal_make();
  o.max_body_bytes = 2048;
  l = start(&o);
  port = tsesim_listener_port(l);

  a = http("http", port, "GET", "/other", NULL, 0, 0, NULL);
  ck_assert_int_eq(a.status, 404);
  b = cb_body(0, REQ_ID, "SUCCESS", USER, PASS);
  a = http("http", port, NULL, "/other", b, strlen(b), 0, NULL);
  ck_assert_int_eq(a.status, 404); /* the path before the method and the body */
  a = http("http", port, "GET", "/healthz", NULL, 0, 0, NULL);
  ck_assert_int_eq(a.status, 200);
  a = http("http", port, "POST", "/healthz", "{}", 2, 0, NULL);
  ck_assert_int_eq(a.status, 404);
  a = http("http", port, "GET", "/callbacks", NULL, 0, 0, NULL);
  ck_assert_int_eq(a.status, 405);
  ck_assert_msg(strstr(a.allow, "POST") != NULL, "Allow: '%s'", a.allow);
  a = http("http", port, "PUT", "/callbacks", b, strlen(b), 0, NULL);
  ck_assert_int_eq(a.status, 405);

  memset(big, ' ', sizeof big);
  memcpy(big, "{}", 2);
  a = http("http", port, NULL, "/callbacks", big, sizeof big, 0, NULL);
  ck_assert_int_eq(a.status, 413);
  a = http("http", port, NULL, "/callbacks", big, sizeof big, 1, NULL);
  ck_assert_int_eq(a.status, 413);
  ck_assert_msg(strstr(a.body, "2048") != NULL, "413 body: %s", a.body);

  a = http("http", port, NULL, "/callbacks", "{\"requestId\":\x01", 15, 0, NULL);
  ck_assert_int_eq(a.status, 400);
  ck_assert_msg(strstr(a.body, "\\u0001") == NULL || strchr(a.body, '\x01') == NULL,
                "control char raw");
  ck_assert_ptr_null(strchr(a.body, '\x01'));
  a = http("http", port, NULL, "/callbacks", "{\"status\":\"SUCCESS\"}", 20, 0, NULL);
  ck_assert_int_eq(a.status, 400);
  ck_assert_msg(strstr(a.body, "requestId") != NULL, "400 names the field: %s", a.body);

  b = cb_body(1, REQ_ID, "SUCCESS", USER, "wrong-password");
  a = http("http", port, NULL, "/callbacks", b, strlen(b), 0, NULL);
  ck_assert_int_eq(a.status, 401);
  ck_assert_ptr_null(strstr(a.body, "wrong-password"));
  b = cb_body(1, REQ_ID, "SUCCESS", NULL, NULL);
  a = http("http", port, NULL, "/callbacks", b, strlen(b), 0, NULL);
  ck_assert_int_eq(a.status, 401);

  a = post_cb(port, 0);
  ck_assert_msg(a.status == 200, "status %ld: %s", a.status, a.body);
  a = post_cb(port, 0); /* a repeat: 200, stored once */
  ck_assert_int_eq(a.status, 200);
  b = cb_body(2, REQ_ID, "SUCCESS", USER, PASS); /* chunked, within the cap */
  a = http("http", port, NULL, "/callbacks", b, strlen(b), 1, NULL);
  ck_assert_int_eq(a.status, 200);
  tsesim_listener_stop(l);

  c = counts();
  ck_assert_uint_eq(c.success, 2); /* nothing from the 401s */
  ck_assert_uint_eq(c.callbacks, 2);
  ck_assert_uint_eq(c.duplicates, 1);
  ck_assert_uint_eq(c.unmatched, 0);
  journal_remove();
}
END_TEST

/* A journal that cannot grow: 503, and nothing stored. */
START_TEST(test_full_journal_503) {
  tsesim_listener_options o = opts_default();
  tsesim_listener *l;
  answer a;
  size_t i;
  int n503 = 0;
  char big[600];

  journal_make();
  tsesim__test_journal_open_sql = "PRAGMA max_page_count = 1";
  l = start(&o);
  for (i = 0; i < 4; i++) {
    /* A large requestId per callback, so that it needs pages. */
    memset(big, 'a' + (int)i, sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *b = cb_body(i, big, "SUCCESS", USER, PASS);
    a = http("http", tsesim_listener_port(l), NULL, "/callbacks", b, strlen(b), 0, NULL);
    ck_assert_msg(a.status == 503 || a.status == 200, "status %ld", a.status);
    n503 += a.status == 503;
  }
  tsesim_listener_stop(l);
  tsesim__test_journal_open_sql = NULL;
  ck_assert_int_gt(n503, 0);
  journal_remove();
}
END_TEST

/* ---- concurrency: group commit, draining, on_callback's thread ---- */

typedef struct poster {
  pthread_t t;
  unsigned port;
  size_t first, n;
  int ok; /* answered 200 */
  int other;
} poster;

static void *post_main(void *arg) {
  poster *p = arg;
  size_t i;
  for (i = p->first; i < p->first + p->n; i++) {
    answer a = post_cb(p->port, i);
    if (a.status == 200)
      p->ok++;
    else
      p->other++;
  }
  return NULL;
}

typedef struct seen {
  pthread_mutex_t mu;
  pthread_t thread;
  int threads; /* distinct threads seen (1 or 2: more is wrong) */
  int calls;
  int on_main;
  pthread_t main;
} seen;

static void on_cb(const tsesim_callback *cb, const tsesim_callback_result *r, void *payload) {
  seen *s = payload;
  (void)cb, (void)r;
  pthread_mutex_lock(&s->mu);
  if (!s->calls)
    s->thread = pthread_self();
  else if (!pthread_equal(s->thread, pthread_self()))
    s->threads++;
  if (pthread_equal(s->main, pthread_self())) s->on_main = 1;
  s->calls++;
  pthread_mutex_unlock(&s->mu);
}

START_TEST(test_group_commit) {
  tsesim_listener_options o = opts_default();
  tsesim_listener *l;
  poster p[64];
  seen s;
  size_t i;
  int ok = 0;
  unsigned long commits;
  tsesim_job_counts c;

  journal_make();
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  s.main = pthread_self();
  o.on_callback = on_cb;
  o.callback_payload = &s;
  l = start(&o);
  for (i = 0; i < 64; i++) {
    p[i] = (poster){0};
    p[i].port = tsesim_listener_port(l);
    p[i].first = i * 2;
    p[i].n = 2;
    ck_assert_int_eq(pthread_create(&p[i].t, NULL, post_main, &p[i]), 0);
  }
  for (i = 0; i < 64; i++) {
    pthread_join(p[i].t, NULL);
    ok += p[i].ok;
  }
  commits = tsesim__test_listener_commits(l);
  tsesim_listener_stop(l);
  ck_assert_int_eq(ok, 128);
  ck_assert_msg(commits < 128, "%lu commits for 128 callbacks: nothing grouped", commits);
  ck_assert_int_eq(s.calls, 128); /* once per 200 */
  ck_assert_int_eq(s.threads, 0); /* one thread */
  ck_assert_int_eq(s.on_main, 0); /* not the caller's */
  c = counts();
  ck_assert_uint_eq(c.success, 128);
  pthread_mutex_destroy(&s.mu);
  journal_remove();
}
END_TEST

START_TEST(test_stop_drains) {
  tsesim_listener_options o = opts_default();
  tsesim_listener *l;
  poster p[16];
  size_t i;
  int ok = 0;
  tsesim_job_counts c;

  journal_make();
  l = start(&o);
  for (i = 0; i < 16; i++) {
    p[i] = (poster){0};
    p[i].port = tsesim_listener_port(l);
    p[i].first = i * 8;
    p[i].n = 8;
    ck_assert_int_eq(pthread_create(&p[i].t, NULL, post_main, &p[i]), 0);
  }
  usleep(20 * 1000);
  tsesim_listener_stop(l); /* while posts are in flight */
  for (i = 0; i < 16; i++) {
    pthread_join(p[i].t, NULL);
    ok += p[i].ok;
  }
  c = counts();
  /* Every 200 is in the journal (maybe a few more: stored, then cut off). */
  ck_assert_msg(c.success >= (size_t)ok, "%lu stored, %d answered 200", (unsigned long)c.success,
                ok);
  journal_remove();
}
END_TEST

START_TEST(test_no_journal) {
  tsesim_listener_options o;
  tsesim_listener *l;
  seen s;
  answer a;
  ck_assert_int_eq(tsesim_listener_options_init(&o, 1), TSESIM_OK);
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  s.main = pthread_self();
  o.on_callback = on_cb;
  o.callback_payload = &s;
  tt_device_make(&devs[0], 1000);
  l = start(&o);
  a = http("http", tsesim_listener_port(l), NULL, "/callbacks",
           cb_body(0, REQ_ID, "SUCCESS", "any", "thing"),
           strlen(cb_body(0, REQ_ID, "SUCCESS", "any", "thing")), 0, NULL);
  ck_assert_int_eq(a.status, 200); /* no credentials configured: not checked */
  tsesim_listener_stop(l);
  ck_assert_int_eq(s.calls, 1);
  pthread_mutex_destroy(&s.mu);
}
END_TEST

/* ---- log lines: the peer's bytes escaped, never a secret ---- */

typedef struct loglines {
  pthread_mutex_t mu;
  char text[16384];
  size_t len;
  int lines;
} loglines;

static void on_log(int level, const char *line, void *payload) {
  loglines *g = payload;
  size_t n = strlen(line);
  (void)level;
  pthread_mutex_lock(&g->mu);
  if (g->len + n + 2 < sizeof g->text) {
    memcpy(g->text + g->len, line, n);
    g->len += n;
    g->text[g->len++] = '\n';
    g->text[g->len] = '\0';
  }
  g->lines++;
  pthread_mutex_unlock(&g->mu);
}

START_TEST(test_log_escaped) {
  tsesim_listener_options o = opts_default();
  tsesim_listener *l;
  loglines g;
  answer a;
  size_t i;
  const char *body;
  memset(&g, 0, sizeof g);
  pthread_mutex_init(&g.mu, NULL);
  journal_make();
  o.log_fn = on_log;
  o.log_payload = &g;
  o.log_level = 3;
  l = start(&o);
  /* a path with a newline and an escape sequence in it (libmicrohttpd
   * decodes %XX before the listener sees the path) */
  a = http("http", tsesim_listener_port(l), "GET", "/x%0Aforged%1B[31m", NULL, 0, 0, NULL);
  ck_assert_int_eq(a.status, 404);
  body = cb_body(0, REQ_ID, "SUCCESS", USER, PASS);
  a = http("http", tsesim_listener_port(l), NULL, "/callbacks", body, strlen(body), 0, NULL);
  ck_assert_int_eq(a.status, 200);
  body = cb_body(1, REQ_ID, "SUCCESS", USER, "not-" PASS);
  a = http("http", tsesim_listener_port(l), NULL, "/callbacks", body, strlen(body), 0, NULL);
  ck_assert_int_eq(a.status, 401);
  tsesim_listener_stop(l);
  journal_remove();
  ck_assert_int_ge(g.lines, 3);
  /* every line is printable ASCII: the path's control bytes are escaped */
  for (i = 0; i < g.len; i++)
    ck_assert_msg(g.text[i] == '\n' || (g.text[i] >= 0x20 && g.text[i] < 0x7f),
                  "log byte 0x%02x at %lu:\n%s", (unsigned char)g.text[i], (unsigned long)i,
                  g.text);
  ck_assert_msg(strstr(g.text, "\\x0Aforged\\x1B[31m") != NULL, "path not escaped:\n%s", g.text);
  ck_assert_msg(strstr(g.text, PASS) == NULL, "a password in the log:\n%s", g.text);
  pthread_mutex_destroy(&g.mu);
}
END_TEST

/* ---- HTTPS with a certificate made here ---- */

START_TEST(test_https) {
  tsesim_listener_options o = opts_default();
  tsesim_listener *l;
  char cmd[1024], cert[160], key[160];
  answer a;
  const char *b;

  journal_make();
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout %s -out %s -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
           ">/dev/null 2>&1",
           key, cert);
  ck_assert_msg(system(cmd) == 0, "openssl failed: %s", cmd);
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  l = start(&o);
  b = cb_body(3, REQ_ID, "SUCCESS", USER, PASS);
  a = http("https", tsesim_listener_port(l), NULL, "/callbacks", b, strlen(b), 0, cert);
  ck_assert_msg(a.status == 200, "https: curl %d status %ld", (int)a.cc, a.status);
  a = http("http", tsesim_listener_port(l), NULL, "/callbacks", b, strlen(b), 0, NULL);
  ck_assert_int_ne(a.status, 200); /* plain HTTP is not served */
  tsesim_listener_stop(l);
  ck_assert_uint_eq(counts().success, 1);
  unlink(cert);
  unlink(key);
  journal_remove();
}
END_TEST

/* ---- limits ---- */

static int connect_raw(unsigned port) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* 1 when the server closed fd within ms milliseconds. */
static int closed_within(int fd, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  char c;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return recv(fd, &c, 1, 0) == 0;
}

START_TEST(test_limits) {
  tsesim_listener_options o;
  tsesim_listener *l;
  int a, b, c;
  answer an;
  ck_assert_int_eq(tsesim_listener_options_init(&o, 1), TSESIM_OK);
  o.max_connections = 2;
  o.timeout_s = 1;
  l = start(&o);
  a = connect_raw(tsesim_listener_port(l));
  b = connect_raw(tsesim_listener_port(l));
  ck_assert_int_gt(send(a, "POST /callbacks HTTP/1.1\r\nHost: x\r\n", 35, 0), 0);
  usleep(100 * 1000);
  c = connect_raw(tsesim_listener_port(l)); /* the third: refused at once */
  ck_assert_msg(closed_within(c, 500), "a third connection was served with max_connections 2");
  close(c);
  /* The unfinished request and the idle connection: cut after timeout_s. */
  ck_assert_msg(closed_within(a, 3000), "an unfinished request outlived timeout_s");
  ck_assert_msg(closed_within(b, 3000), "an idle connection outlived timeout_s");
  close(a);
  close(b);
  /* The slots come back once libmicrohttpd has reaped the two threads. */
  for (int i = 0; i < 50; i++) {
    an = http("http", tsesim_listener_port(l), "GET", "/healthz", NULL, 0, 0, NULL);
    if (an.status == 200) break;
    usleep(50 * 1000);
  }
  ck_assert_int_eq(an.status, 200);
  tsesim_listener_stop(l);
}
END_TEST

/* per_ip_connections: off by default (ThingSpace, or a reverse proxy,
 * sends from a few addresses), enforced when set. */
START_TEST(test_per_ip_limit) {
  tsesim_listener_options o;
  tsesim_listener *l;
  int fd[3], i;
  ck_assert_int_eq(tsesim_listener_options_init(&o, 1), TSESIM_OK);
  l = start(&o);
  for (i = 0; i < 3; i++) fd[i] = connect_raw(tsesim_listener_port(l));
  usleep(100 * 1000);
  for (i = 0; i < 3; i++) {
    ck_assert_msg(!closed_within(fd[i], 200), "connection %d closed with no per-address limit", i);
    close(fd[i]);
  }
  tsesim_listener_stop(l);

  o.per_ip_connections = 2;
  l = start(&o);
  fd[0] = connect_raw(tsesim_listener_port(l));
  fd[1] = connect_raw(tsesim_listener_port(l));
  usleep(100 * 1000);
  fd[2] = connect_raw(tsesim_listener_port(l));
  ck_assert_msg(closed_within(fd[2], 500), "a third connection from 127.0.0.1 was served");
  ck_assert_msg(!closed_within(fd[0], 200), "the first connection was closed");
  for (i = 0; i < 3; i++) close(fd[i]);
  tsesim_listener_stop(l);
}
END_TEST

START_TEST(test_options) {
  tsesim_listener_options o;
  tsesim_listener *l = (tsesim_listener *)1;
  char err[TSESIM_ERRBUF_SIZE];
  ck_assert_int_eq(tsesim_listener_options_init(NULL, 1), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_listener_options_init(&o, 0), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_listener_options_init(&o, 2), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_listener_options_init(&o, 1), TSESIM_OK);
  ck_assert_int_eq(tsesim_listener_start(&l, NULL, err), TSESIM_E_INVAL);
  ck_assert_ptr_null(l);
  o.username = "u";
  ck_assert_int_eq(tsesim_listener_start(&l, &o, err), TSESIM_E_INVAL);
  ck_assert_msg(strstr(err, "password") != NULL, "%s", err);
  o.username = NULL;
  o.tls_cert_file = "/nonexistent/cert.pem";
  ck_assert_int_eq(tsesim_listener_start(&l, &o, err), TSESIM_E_INVAL);
  ck_assert_msg(strstr(err, "tls_key_file") != NULL, "%s", err);
  o.tls_key_file = "/nonexistent/key.pem";
  ck_assert_int_eq(tsesim_listener_start(&l, &o, err), TSESIM_E_TLS);
  ck_assert_msg(strstr(err, "/nonexistent/cert.pem") != NULL, "%s", err);
  o.tls_cert_file = o.tls_key_file = NULL;
  o.path = "callbacks";
  ck_assert_int_eq(tsesim_listener_start(&l, &o, err), TSESIM_E_INVAL);
  ck_assert_msg(strstr(err, "path") != NULL, "%s", err);
  o.path = NULL;
  o.address = "localhost";
  ck_assert_int_eq(tsesim_listener_start(&l, &o, err), TSESIM_E_INVAL);
  ck_assert_msg(strstr(err, "address") != NULL, "%s", err);
  o.address = NULL;
  o.journal = "/nonexistent/typo.db";
  ck_assert_int_eq(tsesim_listener_start(&l, &o, err), TSESIM_E_JOURNAL);
  ck_assert_msg(strstr(err, "typo.db") != NULL, "%s", err);
  o.journal = NULL;
  /* A port in use: TRANSPORT naming address and port. */
  {
    tsesim_listener *a = start(&o);
    char want[32];
    o.port = tsesim_listener_port(a);
    ck_assert_int_eq(tsesim_listener_start(&l, &o, err), TSESIM_E_TRANSPORT);
    snprintf(want, sizeof want, "port %u", o.port);
    ck_assert_msg(strstr(err, want) && strstr(err, "127.0.0.1"), "%s", err);
    tsesim_listener_stop(a);
    /* Stopped: the same port binds again at once (SO_REUSEADDR). */
    a = start(&o);
    ck_assert_uint_eq(tsesim_listener_port(a), o.port);
    tsesim_listener_stop(a);
  }
  tsesim_listener_stop(NULL);
  ck_assert_uint_eq(tsesim_listener_port(NULL), 0);
}
END_TEST

/* ---- the allocation-failure loop over the callback path ---- */

START_TEST(test_alloc_loop) {
  tsesim_listener_options o = opts_default();
  tsesim_listener *l;
  unsigned long n;
  size_t live0;
  int failed = 1;
  answer a;
  tsesim_job_counts c;

  journal_make();
  l = start(&o);
  /* A first callback, so that what the journal keeps between calls is made. */
  a = post_cb(tsesim_listener_port(l), 0);
  ck_assert_int_eq(a.status, 200);
  usleep(100 * 1000); /* its connection's request record is freed */
  live0 = tsesim__test_alloc_live();
  for (n = 1; failed && n < 5000; n++) {
    tt_alloc_arm(n);
    a = post_cb(tsesim_listener_port(l), n % NDEV);
    failed = tt_alloc_disarm();
    ck_assert_msg(a.status == 200 || (failed && a.status == 503),
                  "allocation %lu: status %ld (curl %d)", n, a.status, (int)a.cc);
  }
  ck_assert_msg(!failed, "still failing after %lu allocations", n);
  /* Each request frees its own once its connection ends, which may be a
   * moment after the client has its answer. */
  for (int i = 0; i < 100 && tsesim__test_alloc_live() != live0; i++) usleep(20 * 1000);
  ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
  a = post_cb(tsesim_listener_port(l), NDEV - 1);
  ck_assert_int_eq(a.status, 200);
  tsesim_listener_stop(l);
  c = counts();
  ck_assert_uint_ge(c.success, 1);
  journal_remove();
}
END_TEST

static Suite *listener_suite(void) {
  Suite *s = suite_create("listener");
  TCase *tc = tcase_create("http");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_answers);
  tcase_add_test(tc, test_full_journal_503);
  tcase_add_test(tc, test_group_commit);
  tcase_add_test(tc, test_stop_drains);
  tcase_add_test(tc, test_no_journal);
  tcase_add_test(tc, test_log_escaped);
  tcase_add_test(tc, test_https);
  tcase_add_test(tc, test_limits);
  tcase_add_test(tc, test_per_ip_limit);
  tcase_add_test(tc, test_options);
  tcase_add_test(tc, test_alloc_loop);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN_GLOBAL(listener_suite)
