/*
 * tt_sim.h - the harness of the simulator tests (check_sim_*.c): start and
 * stop tools/tsesim-sim in a temporary directory under the build directory,
 * a small libcurl client, ThingSpace helpers (token, login, listener
 * registration, downloads, /_sim/ stats and faults), and two callback listeners
 * on 127.0.0.1, port 0: tt_listener, the library's tsesim_listener recording each
 * callback it accepts, and tt_peer, a scripted peer that answers as the test says
 * and records every POST as received.
 *
 * Simulators, listeners and peers are heap objects kept on a list: tt_cleanup, the
 * checked teardown of every test case, stops whatever a failed test left
 * running under CK_FORK=no. Under CK_FORK a failed test's process ends at once:
 * its simulator dies with it, its directory stays for inspection (make clean
 * removes it).
 */
#ifndef TT_SIM_H
#define TT_SIM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tsesim_test.h"

#define TT_ACCOUNT "0000123456-00001"
#define TT_PLAN "M2M_4G"
#define TT_DOWNLOAD "/api/m2m/v1/devices/profile/actions/download"
#define TT_CALLBACKS "/api/m2m/v1/callbacks/"
#define TT_LOGIN "/api/m2m/v1/session/login"
#define TT_LOGOUT "/api/m2m/v1/session/logout"
#define TT_TOKEN "/api/ts/v1/oauth2/token"
#define TT_SERVICE "DeviceProfileService"

/* ---- time ---- */

static inline double tt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A wait's timeout: ten times longer when the simulator runs under valgrind
 * (TT_SIM_VALGRIND), where a TLS handshake alone can take a second. */
static inline double tt_slow(double timeout) {
  return getenv("TT_SIM_VALGRIND") ? timeout * 10 : timeout;
}

static inline void tt_sleep(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* ---- files ---- */

/* The whole file as a NUL-terminated malloc'd string, or NULL if it cannot be read. */
static inline char *tt_read_file(const char *path, size_t *out_len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0, n;
  if (!f) return NULL;
  do {
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 8192;
      buf = realloc(buf, cap);
      ck_assert_ptr_nonnull(buf);
    }
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
  } while (n > 0);
  fclose(f);
  buf[len] = '\0';
  if (out_len) *out_len = len;
  return buf;
}

static inline void tt_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
  ck_assert_int_eq(fputs(text, f) >= 0, 1);
  ck_assert_int_eq(fclose(f), 0);
}

/* A fresh mkdtemp directory under $top_builddir/tests (absolute path) in out. */
static inline void tt_mkdtemp(char out[PATH_MAX]) {
  const char *top = getenv("top_builddir");
  char tmpl[PATH_MAX];
  snprintf(tmpl, sizeof tmpl, "%s/tests/tmp-sim-XXXXXX", top && *top ? top : ".");
  ck_assert_msg(mkdtemp(tmpl) != NULL, "mkdtemp %s: %s", tmpl, strerror(errno));
  ck_assert_msg(realpath(tmpl, out) != NULL, "realpath %s: %s", tmpl, strerror(errno));
}

/* Removes dir and the files in it (it holds no subdirectories). */
static inline void tt_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[PATH_MAX];
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* Number of '\n' in text. */
static inline size_t tt_count_lines(const char *text) {
  size_t n = 0;
  for (; *text; text++) n += *text == '\n';
  return n;
}

/* Runs argv[0] (searched in PATH) with output to /dev/null; its wait status. */
static inline int tt_run_cmd(const char *const *argv) {
  int status = -1;
  pid_t pid = fork();
  ck_assert_int_ne(pid, -1);
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {
  }
  return status;
}

/* A self-signed certificate for 127.0.0.1 and localhost (openssl req), and its key. */
static inline void tt_make_cert(const char *cert_path, const char *key_path) {
  const char *argv[] = {"openssl",       "req",      "-x509",
                        "-newkey",       "rsa:2048", "-nodes",
                        "-days",         "2",        "-subj",
                        "/CN=localhost", "-addext",  "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout",       key_path,   "-out",
                        cert_path,       NULL};
  int status = tt_run_cmd(argv);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "openssl req failed (status %d): is openssl installed?", status);
}

/* ---- the simulator process ---- */

typedef struct tt_sim {
  pid_t pid; /* 0 when not running */
  int port;
  char dir[PATH_MAX];  /* its temporary directory: port file, stdout, stderr, ... */
  char base[64];       /* "http://127.0.0.1:PORT" */
  const char *cafile;  /* CA file for https requests to it */
  struct tt_sim *next; /* the live list */
} tt_sim;

static tt_sim *tt_sims;

static inline char *tt_sim_path(const tt_sim *s, const char *name, char out[PATH_MAX]) {
  int n = snprintf(out, PATH_MAX, "%s/%s", s->dir, name);
  ck_assert_msg(n > 0 && n < PATH_MAX, "path too long: %s/%s", s->dir, name);
  return out;
}

/* A simulator not yet running, with its fresh temporary directory. */
static inline tt_sim *tt_sim_new(void) {
  tt_sim *s = calloc(1, sizeof *s);
  ck_assert_ptr_nonnull(s);
  tt_mkdtemp(s->dir);
  s->next = tt_sims;
  tt_sims = s;
  return s;
}

/* Forks tools/tsesim-sim --port 0 --port-file DIR/port ARGS..., stdout and
 * stderr to DIR/stdout and DIR/stderr. */
static inline void tt_sim_spawn(tt_sim *s, const char *const *args) {
  const char *top = getenv("top_builddir");
  char prog[PATH_MAX], portfile[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
  const char *argv[64];
  size_t n = 0, i;
  snprintf(prog, sizeof prog, "%s/tools/tsesim-sim", top && *top ? top : ".");
  tt_sim_path(s, "port", portfile);
  tt_sim_path(s, "stdout", out);
  tt_sim_path(s, "stderr", err);
  if (getenv("TT_SIM_VALGRIND")) { /* the simulator itself under valgrind: leaks fail its exit */
    static char libtool[PATH_MAX];
    snprintf(libtool, sizeof libtool, "%s/libtool", top && *top ? top : ".");
    argv[n++] = libtool;
    argv[n++] = "--mode=execute";
    argv[n++] = "valgrind";
    argv[n++] = "--quiet";
    argv[n++] = "--error-exitcode=99";
    argv[n++] = "--leak-check=full";
    argv[n++] = "--errors-for-leak-kinds=definite,indirect";
  }
  argv[n++] = prog;
  argv[n++] = "--port";
  argv[n++] = "0";
  argv[n++] = "--port-file";
  argv[n++] = portfile;
  for (i = 0; args && args[i]; i++) {
    ck_assert_uint_lt(n, ARRAY_LEN(argv) - 1);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  ck_assert_msg(access(prog, X_OK) == 0 && access(argv[0], X_OK) == 0,
                "%s: %s (is the simulator built?)", argv[0], strerror(errno));
  fflush(NULL);
  s->pid = fork();
  ck_assert_int_ne(s->pid, -1);
  if (s->pid == 0) {
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
}

/* The last lines of the simulator's stderr, for failure messages (static buffer). */
static inline const char *tt_sim_stderr_tail(const tt_sim *s) {
  static char tail[600];
  char path[PATH_MAX];
  char *text = tt_read_file(tt_sim_path(s, "stderr", path), NULL);
  size_t len;
  tail[0] = '\0';
  if (!text) return tail;
  len = strlen(text);
  snprintf(tail, sizeof tail, "%s", text + (len > sizeof tail - 1 ? len - (sizeof tail - 1) : 0));
  free(text);
  return tail;
}

/* Waits up to timeout seconds for the child to exit: its wait status, or -1. */
static inline int tt_sim_wait_exit(tt_sim *s, double timeout) {
  double end = tt_now() + tt_slow(timeout);
  int status;
  for (;;) {
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid) {
      s->pid = 0;
      return status;
    }
    ck_assert_msg(r == 0, "waitpid: %s", strerror(errno));
    if (tt_now() > end) return -1;
    tt_sleep(0.005);
  }
}

/* Starts s with args (NULL-terminated, or NULL) and waits until its port file is complete. */
static inline void tt_sim_launch(tt_sim *s, const char *const *args) {
  char portfile[PATH_MAX];
  double end = tt_now() + tt_slow(10.0);
  tt_sim_path(s, "port", portfile);
  tt_sim_spawn(s, args);
  for (;;) {
    char *text = tt_read_file(portfile, NULL);
    int status;
    if (text) {
      char *e;
      long port = strtol(text, &e, 10);
      int ok = e != text && strcmp(e, "\n") == 0 && port > 0 && port < 65536;
      ck_assert_msg(ok, "port file %s holds \"%s\", not a port and a newline", portfile, text);
      free(text);
      s->port = (int)port;
      break;
    }
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      s->pid = 0;
      ck_abort_msg("tsesim-sim exited (status %d) before writing its port file; stderr: %s",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status),
                   tt_sim_stderr_tail(s));
    }
    ck_assert_msg(tt_now() < end, "tsesim-sim wrote no port file within 10 s; stderr: %s",
                  tt_sim_stderr_tail(s));
    tt_sleep(0.005);
  }
  snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
}

static inline tt_sim *tt_sim_start(const char *const *args) {
  tt_sim *s = tt_sim_new();
  tt_sim_launch(s, args);
  return s;
}

/* Runs the simulator with args expecting it to exit by itself within 5 s; its wait status. */
static inline int tt_sim_run_to_exit(tt_sim *s, const char *const *args) {
  int status;
  tt_sim_spawn(s, args);
  status = tt_sim_wait_exit(s, 5.0);
  if (status == -1) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    ck_abort_msg("tsesim-sim still running after 5 s (expected it to exit)");
  }
  return status;
}

/* Sends SIGTERM (if still running) and waits up to 10 s; the wait status (SIGKILL after that). */
static inline int tt_sim_term(tt_sim *s) {
  int status;
  if (!s->pid) return -1;
  kill(s->pid, SIGTERM);
  status = tt_sim_wait_exit(s, 10.0);
  if (status == -1) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    ck_abort_msg("tsesim-sim did not exit within 10 s of SIGTERM");
  }
  return status;
}

/* Forgets s: kills it if it still runs, removes its directory, frees it. */
static inline void tt_sim_free(tt_sim *s) {
  tt_sim **p;
  if (!s) return;
  if (s->pid) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
  }
  for (p = &tt_sims; *p; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
  tt_rmdir(s->dir);
  free(s);
}

/* Stops s with SIGTERM and frees it; returns its exit status (asserts a normal exit). */
static inline int tt_sim_stop(tt_sim *s) {
  int status = tt_sim_term(s);
  const char *tail = tt_sim_stderr_tail(s);
  ck_assert_msg(WIFEXITED(status), "tsesim-sim killed by signal %d; stderr: %s",
                WIFSIGNALED(status) ? WTERMSIG(status) : 0, tail);
  tt_sim_free(s);
  return WEXITSTATUS(status);
}

/* ---- HTTP client ---- */

static long tt_timeout_ms = 30000; /* of one tt_http exchange */

typedef struct tt_resp {
  CURLcode rc;
  long status;
  char *body; /* NUL-terminated, malloc'd (never NULL after tt_http) */
  size_t len;
  char content_type[128], location[512], retry_after[128], www_auth[128], transfer_encoding[64];
  long content_length; /* -1 when absent */
  double seconds;      /* wall time of the exchange */
} tt_resp;

static inline size_t tt_http_body_cb(char *p, size_t sz, size_t n, void *ud) {
  tt_resp *r = ud;
  size_t add = sz * n;
  char *nb = realloc(r->body, r->len + add + 1);
  if (!nb) return 0;
  memcpy(nb + r->len, p, add);
  r->body = nb;
  r->len += add;
  r->body[r->len] = '\0';
  return add;
}

static inline void tt_copy_header(char *dst, size_t cap, const char *v, size_t vlen) {
  while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ')) vlen--;
  while (vlen && *v == ' ') v++, vlen--;
  if (vlen >= cap) vlen = cap - 1;
  memcpy(dst, v, vlen);
  dst[vlen] = '\0';
}

static inline size_t tt_http_header_cb(char *p, size_t sz, size_t n, void *ud) {
  tt_resp *r = ud;
  size_t len = sz * n;
  static const struct {
    const char *name;
    size_t off, cap;
  } want[] = {
      {"content-type:", offsetof(tt_resp, content_type), sizeof((tt_resp *)0)->content_type},
      {"location:", offsetof(tt_resp, location), sizeof((tt_resp *)0)->location},
      {"retry-after:", offsetof(tt_resp, retry_after), sizeof((tt_resp *)0)->retry_after},
      {"www-authenticate:", offsetof(tt_resp, www_auth), sizeof((tt_resp *)0)->www_auth},
      {"transfer-encoding:", offsetof(tt_resp, transfer_encoding),
       sizeof((tt_resp *)0)->transfer_encoding},
  };
  size_t i;
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new answer (after a 100): forget the last */
    for (i = 0; i < ARRAY_LEN(want); i++) ((char *)r + want[i].off)[0] = '\0';
    r->content_length = -1;
    return len;
  }
  for (i = 0; i < ARRAY_LEN(want); i++) {
    size_t nl = strlen(want[i].name);
    if (len > nl && strncasecmp(p, want[i].name, nl) == 0)
      tt_copy_header((char *)r + want[i].off, want[i].cap, p + nl, len - nl);
  }
  if (len > 15 && strncasecmp(p, "content-length:", 15) == 0) r->content_length = atol(p + 15);
  return len;
}

/*
 * One request; never follows redirects, never uses a proxy. headers: extra
 * header lines (NULL-terminated, or NULL); body of len bytes or NULL; cafile
 * for https (NULL: the system's). Fills r (free with tt_resp_free).
 */
static inline void tt_http(tt_resp *r, const char *method, const char *url,
                           const char *const *headers, const char *body, size_t len,
                           const char *cafile) {
  static int inited;
  CURL *c;
  struct curl_slist *h = NULL;
  size_t i;
  double t0;
  if (!inited) {
    ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    inited = 1;
  }
  memset(r, 0, sizeof *r);
  r->content_length = -1;
  r->body = calloc(1, 1);
  ck_assert_ptr_nonnull(r->body);
  c = curl_easy_init();
  ck_assert_ptr_nonnull(c);
  h = curl_slist_append(h, "Expect:");
  for (i = 0; headers && headers[i]; i++) h = curl_slist_append(h, headers[i]);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tt_timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tt_http_body_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tt_http_header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  if (cafile) curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  t0 = tt_now();
  r->rc = curl_easy_perform(c);
  r->seconds = tt_now() - t0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
}

static inline void tt_resp_free(tt_resp *r) {
  free(r->body);
  r->body = NULL;
}

/* A request to the simulator at path (e.g. "/_sim/stats"). */
static inline void tt_req(const tt_sim *s, tt_resp *r, const char *method, const char *path,
                          const char *const *headers, const char *body) {
  char url[1024];
  snprintf(url, sizeof url, "%s%s", s->base, path);
  tt_http(r, method, url, headers, body, body ? strlen(body) : 0, s->cafile);
}

/* Asserts that the exchange completed with status. */
static inline void tt_expect_status(const char *ctx, const tt_resp *r, long status) {
  ck_assert_msg(r->rc == CURLE_OK, "%s: %s", ctx, curl_easy_strerror(r->rc));
  ck_assert_msg(r->status == status, "%s: HTTP %ld (expected %ld), body: %.300s", ctx, r->status,
                status, r->body);
}

/* The body as JSON (asserts valid JSON and Content-Type application/json). */
static inline json_t *tt_json(const char *ctx, const tt_resp *r) {
  json_error_t e;
  json_t *j;
  ck_assert_msg(strncasecmp(r->content_type, "application/json", 16) == 0,
                "%s: Content-Type \"%s\", expected application/json", ctx, r->content_type);
  j = json_loadb(r->body, r->len, 0, &e);
  ck_assert_msg(j != NULL, "%s: not JSON (%s): %.300s", ctx, e.text, r->body);
  return j;
}

/* A string member of an object, or NULL. */
static inline const char *tt_jstr(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

/* Asserts a ThingSpace error: status, {"errorCode":code,"errorMessage":"..."}. If
 * msg_has, errorMessage must contain it. */
static inline void tt_expect_error(const char *ctx, const tt_resp *r, long status, const char *code,
                                   const char *msg_has) {
  json_t *j;
  const char *msg;
  tt_expect_status(ctx, r, status);
  j = tt_json(ctx, r);
  tt_expect_str(ctx, "errorCode", tt_jstr(j, "errorCode"), code);
  msg = tt_jstr(j, "errorMessage");
  ck_assert_msg(msg && *msg, "%s: no errorMessage string in %s", ctx, r->body);
  if (msg_has)
    ck_assert_msg(strstr(msg, msg_has) != NULL, "%s: errorMessage \"%s\" does not contain \"%s\"",
                  ctx, msg, msg_has);
  json_decref(j);
}

/* Asserts a gateway fault: 401 {"fault":{"code":code,"message":message,"description":"..."}}. */
static inline void tt_expect_fault(const char *ctx, const tt_resp *r, const char *code,
                                   const char *message) {
  json_t *j, *f;
  tt_expect_status(ctx, r, 401);
  j = tt_json(ctx, r);
  f = json_object_get(j, "fault");
  ck_assert_msg(json_is_object(f), "%s: no fault object in %s", ctx, r->body);
  tt_expect_str(ctx, "fault.code", tt_jstr(f, "code"), code);
  tt_expect_str(ctx, "fault.message", tt_jstr(f, "message"), message);
  ck_assert_msg(tt_jstr(f, "description") != NULL, "%s: no fault.description", ctx);
  json_decref(j);
}

/* Asserts an OAuth error: status, {"error":error,"error_description":"..."}. */
static inline void tt_expect_oauth(const char *ctx, const tt_resp *r, long status,
                                   const char *error) {
  json_t *j;
  tt_expect_status(ctx, r, status);
  j = tt_json(ctx, r);
  tt_expect_str(ctx, "error", tt_jstr(j, "error"), error);
  ck_assert_msg(tt_jstr(j, "error_description") != NULL, "%s: no error_description in %s", ctx,
                r->body);
  json_decref(j);
}

/* A UUID in the 8-4-4-4-12 form, version 4, RFC 4122 variant. */
static inline int tt_is_uuid4(const char *s) {
  size_t i;
  if (!s || strlen(s) != 36) return 0;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return 0;
    } else if (!strchr("0123456789abcdefABCDEF", s[i])) {
      return 0;
    }
  }
  return s[14] == '4' && strchr("89abAB", s[19]) != NULL;
}

/* ---- ThingSpace helpers ---- */

/* A POST of the token endpoint with Basic key:secret (key NULL: no Authorization). */
static inline void tt_token_req(const tt_sim *s, tt_resp *r, const char *key, const char *secret,
                                const char *form) {
  char cred[256], auth[400];
  const char *hdrs[3] = {"Content-Type: application/x-www-form-urlencoded", NULL, NULL};
  if (key) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = (size_t)snprintf(cred, sizeof cred, "%s:%s", key, secret), i, o;
    o = (size_t)snprintf(auth, sizeof auth, "Authorization: Basic ");
    for (i = 0; i < n; i += 3) {
      unsigned v = (unsigned char)cred[i] << 16;
      if (i + 1 < n) v |= (unsigned char)cred[i + 1] << 8;
      if (i + 2 < n) v |= (unsigned char)cred[i + 2];
      auth[o++] = b64[v >> 18 & 63];
      auth[o++] = b64[v >> 12 & 63];
      auth[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
      auth[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    auth[o] = '\0';
    hdrs[1] = auth;
  }
  tt_req(s, r, "POST", TT_TOKEN, hdrs, form);
}

/* A fresh access token of sim-key:sim-secret (malloc'd). */
static inline char *tt_get_token(const tt_sim *s) {
  tt_resp r;
  json_t *j;
  char *tok;
  tt_token_req(s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_status("token", &r, 200);
  j = tt_json("token", &r);
  ck_assert_msg(tt_jstr(j, "access_token") != NULL, "token: no access_token in %s", r.body);
  tok = strdup(tt_jstr(j, "access_token"));
  json_decref(j);
  tt_resp_free(&r);
  return tok;
}

/* An /api/m2m request with Bearer token, VZ-M2M-Token session and Content-Type ctype (each
 * NULL: not sent). */
static inline void tt_m2m_ct(const tt_sim *s, tt_resp *r, const char *method, const char *path,
                             const char *token, const char *session, const char *ctype,
                             const char *body) {
  char bearer[300], sess[300], ct[200];
  const char *hdrs[4];
  size_t n = 0;
  if (token) {
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", token);
    hdrs[n++] = bearer;
  }
  if (session) {
    snprintf(sess, sizeof sess, "VZ-M2M-Token: %s", session);
    hdrs[n++] = sess;
  }
  if (ctype) {
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    hdrs[n++] = ct;
  }
  hdrs[n] = NULL;
  tt_req(s, r, method, path, hdrs, body);
}

/* As tt_m2m_ct, a body sent as application/json. */
static inline void tt_m2m(const tt_sim *s, tt_resp *r, const char *method, const char *path,
                          const char *token, const char *session, const char *body) {
  tt_m2m_ct(s, r, method, path, token, session, body ? "application/json" : NULL, body);
}

static inline void tt_login_req(const tt_sim *s, tt_resp *r, const char *token, const char *user,
                                const char *pass) {
  json_t *b = json_pack("{ssss}", "username", user, "password", pass);
  char *body = json_dumps(b, JSON_COMPACT);
  tt_m2m(s, r, "POST", TT_LOGIN, token, NULL, body);
  free(body);
  json_decref(b);
}

/* A session token of user (malloc'd); asserts success. */
static inline char *tt_login_as(const tt_sim *s, const char *token, const char *user,
                                const char *pass) {
  tt_resp r;
  json_t *j;
  char *sess;
  tt_login_req(s, &r, token, user, pass);
  tt_expect_status("login", &r, 200);
  j = tt_json("login", &r);
  ck_assert_msg(tt_is_uuid4(tt_jstr(j, "sessionToken")), "login: sessionToken not a uuid v4: %s",
                r.body);
  sess = strdup(tt_jstr(j, "sessionToken"));
  json_decref(j);
  tt_resp_free(&r);
  return sess;
}

typedef struct tt_auth {
  char *token, *session;
} tt_auth;

/* An access token, and a session of sim-user:sim-pass. */
static inline void tt_auth_get(const tt_sim *s, tt_auth *a) {
  a->token = tt_get_token(s);
  a->session = tt_login_as(s, a->token, "sim-user", "sim-pass");
}

static inline void tt_auth_free(tt_auth *a) {
  free(a->token);
  free(a->session);
}

/* Registers url as the DeviceProfileService listener of account (user/pass optional). */
static inline void tt_register(const tt_sim *s, const tt_auth *a, const char *account,
                               const char *url, const char *user, const char *pass) {
  json_t *b = json_pack("{ssss}", "name", TT_SERVICE, "url", url);
  char path[256], *body;
  tt_resp r;
  json_t *j;
  if (user) json_object_set_new(b, "username", json_string(user));
  if (pass) json_object_set_new(b, "password", json_string(pass));
  body = json_dumps(b, JSON_COMPACT);
  snprintf(path, sizeof path, TT_CALLBACKS "%s", account);
  tt_m2m(s, &r, "POST", path, a->token, a->session, body);
  tt_expect_status("register callback", &r, 200);
  j = tt_json("register callback", &r);
  tt_expect_str("register callback", "accountName", tt_jstr(j, "accountName"), account);
  tt_expect_str("register callback", "serviceName", tt_jstr(j, "serviceName"), TT_SERVICE);
  json_decref(j);
  tt_resp_free(&r);
  free(body);
  json_decref(b);
}

/* ---- devices and download bodies ---- */

static inline int tt_ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A device with a plain outcome (imei ending in neither 13 nor 77); distinct
 * seeds give distinct devices. */
static inline void tt_plain_device(tt_device *d, unsigned long seed) {
  unsigned long j;
  for (j = 0; j < 64; j++) {
    tt_device_make(d, seed * 64 + j);
    if (!tt_ends_with(d->imei, "13") && !tt_ends_with(d->imei, "77")) return;
  }
  ck_abort_msg("no plain device for seed %lu", seed);
}

/* A device whose imei ends in suffix (two digits), found by searching seeds. */
static inline void tt_device_ending(tt_device *d, unsigned long seed, const char *suffix) {
  unsigned long j;
  for (j = 0; j < 100000; j++) {
    tt_device_make(d, seed * 100000 + j);
    if (tt_ends_with(d->imei, suffix)) return;
  }
  ck_abort_msg("no imei ending in %s", suffix);
}

/* {"deviceIds":[{"kind":"eid","id":...},{"kind":"iccid",...},{"kind":"imei",...}]} */
static inline json_t *tt_device_json(const tt_device *d) {
  return json_pack("{s[{ssss}{ssss}{ssss}]}", "deviceIds", "kind", "eid", "id", d->eid, "kind",
                   "iccid", "id", d->iccid, "kind", "imei", "id", d->imei);
}

/* A download body for account with devices (stolen reference) and plan (NULL: none). */
static inline char *tt_download_body(const char *account, json_t *devices, const char *plan) {
  json_t *b = json_pack("{ssso}", "accountName", account, "devices", devices);
  char *body;
  if (plan) json_object_set_new(b, "servicePlan", json_string(plan));
  body = json_dumps(b, JSON_COMPACT);
  ck_assert_ptr_nonnull(body);
  json_decref(b);
  return body;
}

/* The n plain devices of seeds seed0 .. seed0+n-1, as a download body for TT_ACCOUNT. */
static inline char *tt_plain_body(size_t n, unsigned long seed0) {
  json_t *devs = json_array();
  tt_device d;
  size_t i;
  for (i = 0; i < n; i++) {
    tt_plain_device(&d, seed0 + i);
    json_array_append_new(devs, tt_device_json(&d));
  }
  return tt_download_body(TT_ACCOUNT, devs, NULL);
}

static inline void tt_download_req(const tt_sim *s, tt_resp *r, const tt_auth *a,
                                   const char *body) {
  tt_m2m(s, r, "POST", TT_DOWNLOAD, a->token, a->session, body);
}

/* Posts body; asserts 200 {"requestId":"<uuid v4>"}; returns the id (malloc'd). */
static inline char *tt_download_ok(const tt_sim *s, const tt_auth *a, const char *body) {
  tt_resp r;
  json_t *j;
  char *id;
  tt_download_req(s, &r, a, body);
  tt_expect_status("download", &r, 200);
  j = tt_json("download", &r);
  ck_assert_msg(tt_is_uuid4(tt_jstr(j, "requestId")), "download: requestId not a uuid v4: %s",
                r.body);
  ck_assert_uint_eq(json_object_size(j), 1);
  id = strdup(tt_jstr(j, "requestId"));
  json_decref(j);
  tt_resp_free(&r);
  return id;
}

/* ---- /_sim/ ---- */

/* GET an admin path (e.g. "/_sim/faults"): asserts 200, returns the JSON. */
static inline json_t *tt_sim_get_json(const tt_sim *s, const char *path) {
  tt_resp r;
  json_t *j;
  char what[128];
  snprintf(what, sizeof what, "GET %s", path);
  tt_req(s, &r, "GET", path, NULL, NULL);
  tt_expect_status(what, &r, 200);
  j = tt_json(what, &r);
  tt_resp_free(&r);
  return j;
}

static inline json_t *tt_stats(const tt_sim *s) { return tt_sim_get_json(s, "/_sim/stats"); }

/* The integer at a dotted path ("callbacks.delivered") of stats. */
static inline long tt_stat_of(const json_t *stats, const char *path) {
  char buf[128], *key, *save = NULL;
  const json_t *v = stats;
  snprintf(buf, sizeof buf, "%s", path);
  for (key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save))
    v = json_object_get(v, key);
  ck_assert_msg(json_is_integer(v), "stats: %s is not an integer", path);
  return (long)json_integer_value(v);
}

static inline long tt_stat(const tt_sim *s, const char *path) {
  json_t *j = tt_stats(s);
  long v = tt_stat_of(j, path);
  json_decref(j);
  return v;
}

/* Polls stats until path == want or timeout seconds pass; the last value. */
static inline long tt_stat_wait(const tt_sim *s, const char *path, long want, double timeout) {
  double end = tt_now() + tt_slow(timeout);
  long v;
  while ((v = tt_stat(s, path)) != want && tt_now() < end) tt_sleep(0.01);
  return v;
}

/* Asserts, in one snapshot, each TT_ST(path, want) pair; NULL ends the list. */
#define TT_ST(path, want) (const char *)(path), (long)(want)
static inline void tt_stats_expect(const tt_sim *s, const char *ctx, ...) {
  json_t *j = tt_stats(s);
  char msg[1024] = "";
  size_t off = 0;
  const char *path;
  va_list ap;
  va_start(ap, ctx);
  while ((path = va_arg(ap, const char *)) != NULL) {
    long want = va_arg(ap, long), got = tt_stat_of(j, path);
    if (got != want && off < sizeof msg)
      off +=
          (size_t)snprintf(msg + off, sizeof msg - off, " %s=%ld (expected %ld)", path, got, want);
  }
  va_end(ap);
  json_decref(j);
  ck_assert_msg(off == 0, "%s: stats:%s", ctx, msg);
}

/* Replaces the fault settings with json; asserts 200. */
static inline void tt_sim_faults(const tt_sim *s, const char *json) {
  tt_resp r;
  tt_req(s, &r, "POST", "/_sim/faults", (const char *[]){"Content-Type: application/json", NULL},
         json);
  tt_expect_status("POST /_sim/faults", &r, 200);
  tt_resp_free(&r);
}

/* ---- waiting on a recorder's count ---- */

/* The CLOCK_MONOTONIC instant timeout seconds (tt_slow) from now, for pthread_cond_timedwait
 * on a condition variable made with tt_cond_init. */
static inline struct timespec tt_deadline(double timeout) {
  struct timespec ts;
  timeout = tt_slow(timeout);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += (time_t)timeout;
  ts.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static inline void tt_cond_init(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* ---- the callback listener: the library's own ---- */

/*
 * tt_listener: tsesim_listener (no journal) on 127.0.0.1, a free port, path /cb, whose
 * on_callback records each callback it will answer 200. A callback is recorded as JSON
 * written back from the parsed tsesim_callback (ids with their kinds as received, the
 * profile, status, counts, fault, credentials), so tt_listener_cb hands the test a
 * tsesim_callback of its own, parsed again, that it frees with tsesim_callback_free.
 * What the listener answers and the bytes on the wire are the library's business: a test
 * that must see those, or script the answers, uses tt_peer below.
 */
typedef struct tt_listener {
  tsesim_listener *h;
  int port;
  char url[80]; /* http(s)://127.0.0.1:PORT/cb */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char **cbs; /* the callbacks as JSON, in the order on_callback saw them */
  size_t n, cap;
  size_t lost; /* callbacks on_callback could not record (out of memory) */
  struct tt_listener *next;
} tt_listener;

static tt_listener *tt_listeners;

/* ids as [{"kind":kind_name,"id":id}, ...]; NULL when out of memory. */
static inline json_t *tt_ids_json(const tsesim_device_id *ids, size_t n) {
  json_t *a = json_array();
  size_t i;
  for (i = 0; a && i < n; i++) {
    const char *kind = ids[i].kind_name ? ids[i].kind_name : "";
    if (json_array_append_new(a, json_pack("{ssss}", "kind", kind, "id", ids[i].id)) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* Adds key: s when s is not NULL; 0, or -1 when out of memory. */
static inline int tt_set_str(json_t *o, const char *key, const char *s) {
  return s ? json_object_set_new(o, key, json_string(s)) : 0;
}

/* The callback written back as ThingSpace's JSON (malloc'd), members absent when the
 * parsed callback had none; NULL when out of memory. No asserts: it runs on the
 * listener's writer thread. */
static inline char *tt_callback_json(const tsesim_callback *cb) {
  json_t *o = json_object(), *ids, *dpr, *fr;
  char *text = NULL;
  int bad = !o || tt_set_str(o, "requestId", cb->request_id);
  if (!bad && cb->n_device_ids) {
    ids = tt_ids_json(cb->device_ids, cb->n_device_ids);
    bad = !ids || json_object_set_new(o, "deviceIds", ids);
  }
  if (!bad && cb->profile) {
    dpr = json_object();
    ids = tt_ids_json(cb->profile->ids, cb->profile->n_ids);
    if (!dpr || !ids) json_decref(ids); /* json_object_set_new takes ids only below */
    bad = !dpr || !ids || json_object_set_new(dpr, "deviceIdentifierCollection", ids) ||
          tt_set_str(dpr, "state", cb->profile->state) ||
          tt_set_str(dpr, "profileStatus", cb->profile->profile_status) ||
          tt_set_str(dpr, "profileRole", cb->profile->profile_role) ||
          json_object_set_new(o, "deviceResponse", json_pack("{sO}", "deviceProfileResponse", dpr));
    json_decref(dpr);
  }
  if (!bad) bad = tt_set_str(o, "status", cb->status);
  if (!bad && cb->callback_count >= 0)
    bad = json_object_set_new(o, "callbackCount", json_integer(cb->callback_count));
  if (!bad && cb->max_callback_threshold >= 0)
    bad = json_object_set_new(o, "maxCallbackThreshold", json_integer(cb->max_callback_threshold));
  if (!bad && (cb->fault_code || cb->fault_string)) {
    fr = json_object();
    bad = !fr || tt_set_str(fr, "faultcode", cb->fault_code) ||
          tt_set_str(fr, "faultstring", cb->fault_string) ||
          json_object_set(o, "faultResponse", fr);
    json_decref(fr);
  }
  if (!bad)
    bad = tt_set_str(o, "username", cb->username) || tt_set_str(o, "password", cb->password);
  if (!bad) text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return text;
}

/* on_callback: runs on the listener's writer thread, so it never asserts; a callback it
 * cannot record is counted in lost, and tt_listener_wait fails the test on it. */
static inline void tt_listener_on_callback(const tsesim_callback *cb,
                                           const tsesim_callback_result *result, void *payload) {
  tt_listener *l = payload;
  char *text = tt_callback_json(cb);
  (void)result;
  pthread_mutex_lock(&l->mu);
  if (text && l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **nc = realloc(l->cbs, cap * sizeof *nc);
    if (nc) {
      l->cbs = nc;
      l->cap = cap;
    }
  }
  if (text && l->n < l->cap)
    l->cbs[l->n++] = text;
  else {
    free(text);
    l->lost++;
  }
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

/* The library's listener for callbacks that must echo username and password (both NULL:
 * not checked), over HTTPS with cert_file and key_file (PEM files; both NULL: HTTP). */
static inline tt_listener *tt_listener_start_tls(const char *username, const char *password,
                                                 const char *cert_file, const char *key_file) {
  tt_listener *l = calloc(1, sizeof *l);
  tsesim_listener_options o;
  char err[TSESIM_ERRBUF_SIZE] = "";
  tsesim_code rc;
  ck_assert_ptr_nonnull(l);
  pthread_mutex_init(&l->mu, NULL);
  tt_cond_init(&l->cv);
  ck_assert_int_eq(tsesim_listener_options_init(&o, TSESIM_LISTENER_OPTIONS_VERSION), TSESIM_OK);
  o.path = "/cb";
  o.username = username;
  o.password = password;
  o.tls_cert_file = cert_file;
  o.tls_key_file = key_file;
  o.on_callback = tt_listener_on_callback;
  o.callback_payload = l;
  rc = tsesim_listener_start(&l->h, &o, err);
  ck_assert_msg(rc == TSESIM_OK, "tsesim_listener_start: %s: %s", tsesim_code_name(rc), err);
  l->port = (int)tsesim_listener_port(l->h);
  ck_assert_int_gt(l->port, 0);
  snprintf(l->url, sizeof l->url, "%s://127.0.0.1:%d/cb", cert_file ? "https" : "http", l->port);
  l->next = tt_listeners;
  tt_listeners = l;
  return l;
}

static inline tt_listener *tt_listener_start(const char *username, const char *password) {
  return tt_listener_start_tls(username, password, NULL, NULL);
}

/* Stops the listener (it drains: every callback answered 200 was recorded) and frees it. */
static inline void tt_listener_stop(tt_listener *l) {
  tt_listener **p;
  size_t i;
  if (!l) return;
  for (p = &tt_listeners; *p; p = &(*p)->next)
    if (*p == l) {
      *p = l->next;
      break;
    }
  tsesim_listener_stop(l->h);
  for (i = 0; i < l->n; i++) free(l->cbs[i]);
  free(l->cbs);
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* Waits until n callbacks were recorded or timeout seconds passed; the number recorded. */
static inline size_t tt_listener_wait(tt_listener *l, size_t n, double timeout) {
  struct timespec ts = tt_deadline(timeout);
  size_t got, lost;
  pthread_mutex_lock(&l->mu);
  while (l->n < n && !l->lost)
    if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT) break;
  got = l->n;
  lost = l->lost;
  pthread_mutex_unlock(&l->mu);
  ck_assert_msg(lost == 0, "listener: %zu callbacks answered 200 but not recorded (out of memory)",
                lost);
  return got;
}

static inline size_t tt_listener_count(tt_listener *l) { return tt_listener_wait(l, 0, 0); }

/* Waits for exactly n callbacks: asserts n arrive within timeout and no more within settle s. */
static inline void tt_listener_expect(tt_listener *l, size_t n, double timeout, double settle) {
  size_t got = tt_listener_wait(l, n, timeout);
  ck_assert_msg(got >= n, "listener: %zu callbacks within %.1f s, expected %zu", got, timeout, n);
  got = tt_listener_wait(l, n + 1, settle);
  ck_assert_msg(got == n, "listener: %zu callbacks, expected exactly %zu", got, n);
}

/* Callback i, parsed again from its recorded JSON (free with tsesim_callback_free). */
static inline tsesim_callback *tt_listener_cb(tt_listener *l, size_t i) {
  char err[TSESIM_ERRBUF_SIZE] = "";
  tsesim_callback *cb = NULL;
  const char *text;
  tsesim_code rc;
  pthread_mutex_lock(&l->mu);
  ck_assert_uint_lt(i, l->n);
  text = l->cbs[i]; /* never freed nor moved before tt_listener_stop */
  pthread_mutex_unlock(&l->mu);
  rc = tsesim_callback_parse(&cb, text, strlen(text), err);
  ck_assert_msg(rc == TSESIM_OK, "callback %zu: %s: %s; recorded as %.300s", i,
                tsesim_code_name(rc), err, text);
  return cb;
}

/* ---- the scripted peer: a listener that misbehaves on demand ---- */

/*
 * tt_peer: a hand-written libmicrohttpd server on 127.0.0.1 (a free port, url .../cb) that
 * records every POST as received (raw body, Content-Type, arrival time, what it answered)
 * and answers as the test scripts it: 204 by default, 500 or 503 on demand, the first n
 * answers failed or delayed. It is a test instrument for the simulator's delivery
 * (retries, abandonment, timeouts, duplicates compared byte for byte, SIGTERM policies),
 * not the library's listener: tsesim_listener answers 200 only after a commit and must
 * never answer like this, nor does it hand out the raw bytes. Tests that only need the
 * callbacks received use tt_listener.
 */
typedef struct tt_peer_record {
  char *body; /* NUL-terminated */
  size_t len;
  unsigned status; /* what the peer answered */
  double at;       /* tt_now() on arrival */
  int json;        /* Content-Type was application/json */
} tt_peer_record;

typedef struct tt_peer {
  struct MHD_Daemon *d;
  int port;
  char url[64];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  tt_peer_record *recs;
  size_t n, cap;
  unsigned status;     /* answer, default 204 */
  unsigned fail_first; /* answer fail_status to the next fail_first POSTs */
  unsigned fail_status;
  unsigned delay_first; /* answer the next delay_first POSTs after delay seconds */
  double delay;
  struct tt_peer *next;
} tt_peer;

static tt_peer *tt_peers;

typedef struct tt_peer_conn {
  char *buf;
  size_t len, cap;
} tt_peer_conn;

static inline enum MHD_Result tt_peer_handler(void *cls, struct MHD_Connection *c, const char *url,
                                              const char *method, const char *version,
                                              const char *upload, size_t *upload_size, void **ptr) {
  tt_peer *l = cls;
  tt_peer_conn *lc = *ptr;
  struct MHD_Response *resp;
  enum MHD_Result ret;
  const char *ct;
  unsigned status;
  double delay = 0;
  tt_peer_record rec;
  (void)url;
  (void)version;
  if (!lc) {
    lc = calloc(1, sizeof *lc);
    if (!lc) return MHD_NO;
    *ptr = lc;
    return MHD_YES;
  }
  if (*upload_size) {
    if (lc->cap - lc->len < *upload_size + 1) {
      size_t cap = (lc->len + *upload_size + 1) * 2;
      char *nb = realloc(lc->buf, cap);
      if (!nb) return MHD_NO;
      lc->buf = nb;
      lc->cap = cap;
    }
    memcpy(lc->buf + lc->len, upload, *upload_size);
    lc->len += *upload_size;
    *upload_size = 0;
    return MHD_YES;
  }
  resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  if (strcmp(method, "POST") != 0) {
    ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    MHD_destroy_response(resp);
    return ret;
  }
  ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  rec.body = lc->buf ? lc->buf : calloc(1, 1);
  if (!rec.body) return MHD_NO;
  rec.body[lc->len] = '\0';
  rec.len = lc->len;
  rec.at = tt_now();
  rec.json = ct && strncasecmp(ct, "application/json", 16) == 0;
  lc->buf = NULL;
  lc->len = lc->cap = 0;
  pthread_mutex_lock(&l->mu);
  if (l->fail_first) {
    l->fail_first--;
    status = l->fail_status;
  } else {
    status = l->status;
  }
  rec.status = status;
  if (l->delay_first) {
    l->delay_first--;
    delay = l->delay;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    tt_peer_record *nr = realloc(l->recs, cap * sizeof *nr);
    if (!nr) {
      pthread_mutex_unlock(&l->mu);
      free(rec.body);
      MHD_destroy_response(resp);
      return MHD_NO;
    }
    l->recs = nr;
    l->cap = cap;
  }
  l->recs[l->n++] = rec;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  if (delay > 0) tt_sleep(delay);
  ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static inline void tt_peer_done(void *cls, struct MHD_Connection *c, void **ptr,
                                enum MHD_RequestTerminationCode toe) {
  tt_peer_conn *lc = *ptr;
  (void)cls;
  (void)c;
  (void)toe;
  if (lc) {
    free(lc->buf);
    free(lc);
    *ptr = NULL;
  }
}

/* The scripted peer on 127.0.0.1, a free port; url is http://127.0.0.1:PORT/cb. */
static inline tt_peer *tt_peer_start(void) {
  tt_peer *l = calloc(1, sizeof *l);
  struct sockaddr_in sa;
  const union MHD_DaemonInfo *info;
  ck_assert_ptr_nonnull(l);
  l->status = 204;
  pthread_mutex_init(&l->mu, NULL);
  tt_cond_init(&l->cv);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  l->d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                          tt_peer_handler, l, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                          MHD_OPTION_NOTIFY_COMPLETED, tt_peer_done, NULL,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)500, MHD_OPTION_END);
  ck_assert_msg(l->d != NULL, "the scripted peer did not start");
  info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
  ck_assert_msg(info && info->port, "the scripted peer has no port");
  l->port = info->port;
  snprintf(l->url, sizeof l->url, "http://127.0.0.1:%d/cb", l->port);
  l->next = tt_peers;
  tt_peers = l;
  return l;
}

static inline void tt_peer_stop(tt_peer *l) {
  tt_peer **p;
  size_t i;
  if (!l) return;
  for (p = &tt_peers; *p; p = &(*p)->next)
    if (*p == l) {
      *p = l->next;
      break;
    }
  MHD_stop_daemon(l->d);
  for (i = 0; i < l->n; i++) free(l->recs[i].body);
  free(l->recs);
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* Answers status from now on. */
static inline void tt_peer_answer(tt_peer *l, unsigned status) {
  pthread_mutex_lock(&l->mu);
  l->status = status;
  pthread_mutex_unlock(&l->mu);
}

/* Answers status to the next n POSTs, then the usual answer again. */
static inline void tt_peer_fail_first(tt_peer *l, unsigned n, unsigned status) {
  pthread_mutex_lock(&l->mu);
  l->fail_first = n;
  l->fail_status = status;
  pthread_mutex_unlock(&l->mu);
}

/* Answers the next n POSTs only after seconds (the listener does nothing meanwhile). */
static inline void tt_peer_delay(tt_peer *l, unsigned n, double seconds) {
  pthread_mutex_lock(&l->mu);
  l->delay_first = n;
  l->delay = seconds;
  pthread_mutex_unlock(&l->mu);
}

/* Waits until n bodies were received or timeout seconds passed; the number received. */
static inline size_t tt_peer_wait(tt_peer *l, size_t n, double timeout) {
  struct timespec ts = tt_deadline(timeout);
  size_t got;
  pthread_mutex_lock(&l->mu);
  while (l->n < n)
    if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT) break;
  got = l->n;
  pthread_mutex_unlock(&l->mu);
  return got;
}

static inline size_t tt_peer_count(tt_peer *l) { return tt_peer_wait(l, 0, 0); }

/* A copy of record i (its body lives until tt_peer_stop). */
static inline tt_peer_record tt_peer_rec(tt_peer *l, size_t i) {
  tt_peer_record r;
  pthread_mutex_lock(&l->mu);
  ck_assert_uint_lt(i, l->n);
  r = l->recs[i];
  pthread_mutex_unlock(&l->mu);
  return r;
}

/* Waits for exactly n bodies: asserts n arrive within timeout and no more within settle s. */
static inline void tt_peer_expect(tt_peer *l, size_t n, double timeout, double settle) {
  size_t got = tt_peer_wait(l, n, timeout);
  ck_assert_msg(got >= n, "scripted peer: %zu callbacks within %.1f s, expected %zu", got, timeout,
                n);
  got = tt_peer_wait(l, n + 1, settle);
  ck_assert_msg(got == n, "scripted peer: %zu callbacks, expected exactly %zu", got, n);
}

/* Parses record i with tsesim_callback_parse; asserts success and a JSON Content-Type. */
static inline tsesim_callback *tt_peer_cb(tt_peer *l, size_t i) {
  tt_peer_record r = tt_peer_rec(l, i);
  char err[TSESIM_ERRBUF_SIZE] = "";
  tsesim_callback *cb = NULL;
  tsesim_code rc = tsesim_callback_parse(&cb, r.body, r.len, err);
  ck_assert_msg(rc == TSESIM_OK, "callback %zu: %s: %s; body %.300s", i, tsesim_code_name(rc), err,
                r.body);
  ck_assert_msg(r.json, "callback %zu: Content-Type is not application/json", i);
  return cb;
}
/* Reserves a loopback port that nobody listens on: bound, never listening, so a
 * connection is refused. Close the returned socket when done. */
static inline int tt_dead_port(int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* ---- TCP connections, seen from outside a client ---- */

typedef struct tt_tcp_conn {
  unsigned local_port; /* the connecting side's port */
  unsigned state;      /* Linux TCP state: 1 ESTABLISHED, 6 TIME_WAIT, 8 CLOSE_WAIT, ... */
} tt_tcp_conn;

/* The TCP sockets of this network namespace (IPv4 and IPv6) whose remote port is port, that
 * is the connections made to a local server on that port, open or recently closed: up to max
 * of them in out; returns how many there are. Reads /proc/net/tcp and /proc/net/tcp6. */
static inline size_t tt_tcp_conns_to(int port, tt_tcp_conn *out, size_t max) {
  static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
  size_t n = 0, i;
  for (i = 0; i < ARRAY_LEN(tables); i++) {
    char *text = tt_read_file(tables[i], NULL), *line, *save = NULL;
    if (!text) { /* a kernel without IPv6 has no tcp6 */
      ck_assert_msg(i > 0, "cannot read %s: %s", tables[i], strerror(errno));
      continue;
    }
    line = strtok_r(text, "\n", &save); /* the column names */
    while (line && (line = strtok_r(NULL, "\n", &save)) != NULL) {
      unsigned lport, rport, st;
      if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%x %x", &lport, &rport, &st) != 3)
        continue;
      if ((int)rport != port) continue;
      if (n < max) {
        out[n].local_port = lport;
        out[n].state = st;
      }
      n++;
    }
    free(text);
  }
  return n;
}

/* The checked teardown of every simulator test: stops what a failed test left. */
static inline void tt_cleanup(void) {
  while (tt_sims) tt_sim_free(tt_sims);
  while (tt_listeners) tt_listener_stop(tt_listeners);
  while (tt_peers) tt_peer_stop(tt_peers);
}

/* A test case with the teardown and a timeout in seconds. */
static inline TCase *tt_tcase(Suite *s, const char *name, double timeout) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, NULL, tt_cleanup);
  tcase_set_timeout(tc, tt_slow(timeout));
  suite_add_tcase(s, tc);
  return tc;
}

/* ---- client options for a simulator ---- */

/* Options for the simulator's default OAuth client and M2M user, at s's /api
 * (the URL is kept in the struct itself). No asserts: usable from any thread. */
typedef struct tt_opts {
  tsesim_options o;
  char url[128];
} tt_opts;

static inline void tt_opts_for(tt_opts *t, const tt_sim *s) {
  memset(t, 0, sizeof *t);
  tsesim_options_init(&t->o, TSESIM_OPTIONS_VERSION);
  snprintf(t->url, sizeof t->url, "%s/api", s->base);
  t->o.base_url = t->url;
  t->o.client_id = "sim-key";
  t->o.client_secret = "sim-secret";
  t->o.username = "sim-user";
  t->o.password = "sim-pass";
}

/* ---- raw TCP to the simulator: half-sent requests, connection limits ---- */

#include <poll.h>

/* A connection to 127.0.0.1:port (asserts it connects). */
static inline int tt_tcp_connect(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect to port %d: %s", port,
                strerror(errno));
  return fd;
}

/* Sends all n bytes; 0, or -1 when the peer closed or reset the connection. */
static inline int tt_tcp_send(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads until the peer closes (EOF or reset) or timeout seconds pass. Returns
 * the seconds it took the peer to close, or -1 if it was still open; what was
 * read goes to *out (malloc'd, NUL-terminated) when out is not NULL. */
static inline double tt_tcp_wait_closed(int fd, double timeout, char **out) {
  double t0 = tt_now(), end = t0 + tt_slow(timeout), closed = -1;
  size_t len = 0;
  char *buf = calloc(1, 1);
  ck_assert_ptr_nonnull(buf);
  for (;;) {
    char chunk[4096];
    struct pollfd pfd;
    double left = end - tt_now();
    ssize_t r;
    if (left <= 0) break;
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0) continue;
    r = recv(fd, chunk, sizeof chunk, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      closed = tt_now() - t0;
      break;
    }
    buf = realloc(buf, len + (size_t)r + 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf + len, chunk, (size_t)r);
    len += (size_t)r;
    buf[len] = '\0';
  }
  if (out)
    *out = buf;
  else
    free(buf);
  return closed;
}

/* ---- a scripted server: answers tsesim-sim never gives ---- */

/* tt_stub: a libmicrohttpd server on 127.0.0.1 (port 0) that answers each
 * path with a fixed status and body (application/json) and records every
 * request it receives, headers included, for the client tests that need a
 * hostile or broken ThingSpace (a token with CR LF, a requestId with ESC). */
typedef struct tt_stub_route {
  char *path; /* exact, e.g. TT_TOKEN */
  unsigned status;
  char *body;
  size_t len;
  char *header; /* one extra "Name: value" header line, or NULL */
} tt_stub_route;

typedef struct tt_stub_rec {
  char method[16];
  char *path;
  char *headers; /* "Name: value\n" per header line, as received */
} tt_stub_rec;

typedef struct tt_stub {
  struct MHD_Daemon *d;
  int port;
  char base[64]; /* http://127.0.0.1:PORT */
  pthread_mutex_t mu;
  tt_stub_route routes[16];
  size_t n_routes;
  tt_stub_rec *recs;
  size_t n, cap;
} tt_stub;

static inline enum MHD_Result tt_stub_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                                const char *value) {
  char **acc = cls;
  size_t old = *acc ? strlen(*acc) : 0, add = strlen(key) + (value ? strlen(value) : 0) + 4;
  char *n = realloc(*acc, old + add);
  (void)kind;
  if (!n) return MHD_NO;
  snprintf(n + old, add, "%s: %s\n", key, value ? value : "");
  *acc = n;
  return MHD_YES;
}

static inline enum MHD_Result tt_stub_handler(void *cls, struct MHD_Connection *c, const char *url,
                                              const char *method, const char *version,
                                              const char *upload, size_t *upload_size, void **ptr) {
  static int first_call;
  tt_stub *st = cls;
  tt_stub_rec rec;
  struct MHD_Response *resp;
  enum MHD_Result ret;
  unsigned status = 404;
  size_t i;
  (void)version;
  (void)upload;
  if (*ptr != &first_call) { /* headers only: wait for the body */
    *ptr = &first_call;
    return MHD_YES;
  }
  if (*upload_size) { /* the body is not needed: consume it */
    *upload_size = 0;
    return MHD_YES;
  }
  memset(&rec, 0, sizeof rec);
  snprintf(rec.method, sizeof rec.method, "%s", method);
  rec.path = strdup(url);
  rec.headers = calloc(1, 1);
  if (!rec.path || !rec.headers) return MHD_NO;
  MHD_get_connection_values(c, MHD_HEADER_KIND, tt_stub_header_cb, &rec.headers);
  pthread_mutex_lock(&st->mu);
  if (st->n == st->cap) {
    size_t cap = st->cap ? st->cap * 2 : 16;
    tt_stub_rec *nr = realloc(st->recs, cap * sizeof *nr);
    if (!nr) {
      pthread_mutex_unlock(&st->mu);
      return MHD_NO;
    }
    st->recs = nr;
    st->cap = cap;
  }
  st->recs[st->n++] = rec;
  resp = NULL;
  for (i = 0; i < st->n_routes; i++)
    if (strcmp(st->routes[i].path, url) == 0) {
      tt_stub_route *r = &st->routes[i];
      status = r->status;
      resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_COPY);
      if (resp && r->header) {
        char name[128];
        const char *colon = strchr(r->header, ':');
        size_t k = colon ? (size_t)(colon - r->header) : 0;
        if (k >= sizeof name) k = sizeof name - 1;
        memcpy(name, r->header, k);
        name[k] = '\0';
        MHD_add_response_header(resp, name, colon ? colon + 2 : "");
      }
      break;
    }
  pthread_mutex_unlock(&st->mu);
  if (!resp) resp = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", "application/json");
  ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static inline tt_stub *tt_stub_start(void) {
  tt_stub *st = calloc(1, sizeof *st);
  struct sockaddr_in sa;
  const union MHD_DaemonInfo *info;
  ck_assert_ptr_nonnull(st);
  pthread_mutex_init(&st->mu, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  st->d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                           tt_stub_handler, st, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_END);
  ck_assert_msg(st->d != NULL, "the scripted server did not start");
  info = MHD_get_daemon_info(st->d, MHD_DAEMON_INFO_BIND_PORT);
  ck_assert_msg(info && info->port, "the scripted server has no port");
  st->port = info->port;
  snprintf(st->base, sizeof st->base, "http://127.0.0.1:%d", st->port);
  return st;
}

/* From now on, path is answered with status and body[0..len) (len 0: strlen),
 * and header ("Name: value", or NULL) when set. A path set again is replaced. */
static inline void tt_stub_answer(tt_stub *st, const char *path, unsigned status, const char *body,
                                  size_t len, const char *header) {
  size_t i;
  tt_stub_route *r = NULL;
  if (!len) len = strlen(body);
  pthread_mutex_lock(&st->mu);
  for (i = 0; i < st->n_routes && !r; i++)
    if (strcmp(st->routes[i].path, path) == 0) r = &st->routes[i];
  if (!r) {
    ck_assert_uint_lt(st->n_routes, ARRAY_LEN(st->routes));
    r = &st->routes[st->n_routes++];
    r->path = strdup(path);
  } else {
    free(r->body);
    free(r->header);
  }
  r->status = status;
  r->body = malloc(len + 1);
  ck_assert_ptr_nonnull(r->path);
  ck_assert_ptr_nonnull(r->body);
  memcpy(r->body, body, len);
  r->body[len] = '\0';
  r->len = len;
  r->header = header ? strdup(header) : NULL;
  pthread_mutex_unlock(&st->mu);
}

/* The number of requests received so far (path NULL), or of those to path. */
static inline size_t tt_stub_count(tt_stub *st, const char *path) {
  size_t i, n = 0;
  pthread_mutex_lock(&st->mu);
  for (i = 0; i < st->n; i++) n += !path || strcmp(st->recs[i].path, path) == 0;
  pthread_mutex_unlock(&st->mu);
  return n;
}

/* The number of received requests that carried a header called name (any case). */
static inline size_t tt_stub_with_header(tt_stub *st, const char *name) {
  size_t i, n = 0, k = strlen(name);
  pthread_mutex_lock(&st->mu);
  for (i = 0; i < st->n; i++) {
    const char *h = st->recs[i].headers;
    int found = 0;
    while (h && *h && !found) {
      found = strncasecmp(h, name, k) == 0 && h[k] == ':';
      h = strchr(h, '\n');
      if (h) h++;
    }
    n += found;
  }
  pthread_mutex_unlock(&st->mu);
  return n;
}

static inline void tt_stub_stop(tt_stub *st) {
  size_t i;
  if (!st) return;
  MHD_stop_daemon(st->d);
  for (i = 0; i < st->n_routes; i++) {
    free(st->routes[i].path);
    free(st->routes[i].body);
    free(st->routes[i].header);
  }
  for (i = 0; i < st->n; i++) {
    free(st->recs[i].path);
    free(st->recs[i].headers);
  }
  free(st->recs);
  pthread_mutex_destroy(&st->mu);
  free(st);
}

/* ---- per-EID counts (GET /_sim/eids/<EID>) ---- */

/* How many accepted downloads held eid; asserts 200 {"eid":eid,"downloads":K}. */
static inline long tt_eid_downloads(const tt_sim *s, const char *eid) {
  char path[128];
  json_t *j, *k;
  long n;
  snprintf(path, sizeof path, "/_sim/eids/%s", eid);
  j = tt_sim_get_json(s, path);
  tt_expect_str(path, "eid", tt_jstr(j, "eid"), eid);
  k = json_object_get(j, "downloads");
  ck_assert_msg(json_is_integer(k) && json_object_size(j) == 2, "GET %s: not {eid,downloads}",
                path);
  n = (long)json_integer_value(k);
  json_decref(j);
  return n;
}

/* A download body for TT_ACCOUNT of the plain devices of the n seeds in seeds. */
static inline char *tt_seeds_body(const unsigned long *seeds, size_t n) {
  json_t *devs = json_array();
  tt_device d;
  size_t i;
  for (i = 0; i < n; i++) {
    tt_plain_device(&d, seeds[i]);
    json_array_append_new(devs, tt_device_json(&d));
  }
  return tt_download_body(TT_ACCOUNT, devs, NULL);
}

/* The eid of the plain device of seed (static buffer: copy before the next call). */
static inline const char *tt_plain_eid(unsigned long seed) {
  static tt_device d;
  tt_plain_device(&d, seed);
  return d.eid;
}

#endif /* TT_SIM_H */
