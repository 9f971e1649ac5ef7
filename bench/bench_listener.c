/*
 * bench_listener.c - the callback listener (issue 11's bounds), in one
 * process, against tsesim-sim on loopback:
 *   A. durable ingest: callbacks per second POSTed over 64 concurrent
 *      keep-alive connections (curl multi, 64 easy handles reused) into the
 *      listener storing into a journal (every callback matches a device of a
 *      recorded job: a distinct SUCCESS each, none a repeat), against the
 *      same listener with no journal, answering 200 without storing: ratio of
 *      the rates at least 0.5 (medians of interleaved rounds). Both rates are
 *      printed, with the time of one write + fdatasync on the same disk.
 *      The goal beyond the bound is 10,000 durable callbacks per second.
 *   B. end to end: 25,000 devices submitted as a job to tsesim-sim and every
 *      callback received until each device is final: wall time with the
 *      listener storing into the journal against the listener with no
 *      journal, both timed to the last final callback seen by on_callback
 *      (tsesim_job_wait's return is printed too):
 *      at most 1.5x (the median of the ratios of interleaved runs), with
 *      the simulator delivering 64 callbacks at a time, as many as part A's connections.
 *      The same with 8 at a time (the simulator's default) is printed,
 *      unbounded: each delivery then waits for a flush to disk of its own
 *      small group, and the disk's flush time, not the work, sets the pace.
 * Journals go in a fresh directory under the current one, removed at exit.
 * Usage: bench_listener PATH-TO-tsesim-sim
 */
#define _GNU_SOURCE /* mkdtemp */
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "bench_simproc.h"
#include "tsesim.h"
#include "tt_ids.h"

#define ACCOUNT "0000123456-00001"
#define USER "listener"
#define PASS "bench-listener-secret"
/* -D can make them small, to run it once under valgrind */
#ifndef CONNS
#define CONNS 64 /* concurrent keep-alive connections of the ingest */
#endif
#ifndef PER_ROUND
#define PER_ROUND 20000 /* callbacks POSTed per ingest round */
#endif
#ifndef ROUNDS
#define ROUNDS 5 /* ingest rounds of each kind */
#endif
#ifndef E2E_DEVICES
#define E2E_DEVICES 25000
#endif
#ifndef E2E_ROUNDS
#define E2E_ROUNDS 7 /* end-to-end runs of each kind */
#endif
#define INGEST_DEVICES (PER_ROUND * ROUNDS) /* each durable round its own devices */

static char dir[64] = "bench-listener.XXXXXX";
static unsigned long next_seed = 1; /* each device its own: distinct EIDs */

/* At any exit, die() included: no simulator left running, no journal left. */
static void cleanup(void) { sim_cleanup(dir, "bench_listener"); }

static void path_in_dir(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
}

static tsesim_request *fresh_request(size_t n) {
  tsesim_request *req;
  if (tsesim_request_new(&req, ACCOUNT)) die("tsesim_request_new");
  for (size_t i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, next_seed++);
    if (tsesim_request_add_device(req, d.ids, 3)) die(tsesim_request_errmsg(req));
  }
  return req;
}

static tsesim_client *client_new(void) {
  tsesim_options o;
  tsesim_client *c;
  static char url[96];
  snprintf(url, sizeof url, "%s/api", base);
  tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  o.base_url = url;
  o.client_id = "sim-key";
  o.client_secret = "sim-secret";
  o.username = "sim-user";
  o.password = "sim-pass";
  if (tsesim_client_new(&c, &o) != TSESIM_OK) die("tsesim_client_new");
  return c;
}

static tsesim_listener *listener_start(const char *journal, tsesim_callback_fn fn, void *payload) {
  tsesim_listener_options lo = TSESIM_LISTENER_OPTIONS_INIT;
  tsesim_listener *l;
  char err[TSESIM_ERRBUF_SIZE] = "";
  lo.journal = journal;
  lo.username = USER;
  lo.password = PASS;
  lo.max_connections = 2 * CONNS;
  lo.on_callback = fn;
  lo.callback_payload = payload;
  if (tsesim_listener_start(&l, &lo, err) != TSESIM_OK) die(err);
  return l;
}

/* ---- fsync on this disk ---- */

/* Median seconds of one 4 KiB write + fdatasync of a file in dir. */
static double fsync_time(void) {
  char path[128], block[4096];
  double t[64];
  int fd;
  path_in_dir(path, sizeof path, "fsync-probe");
  memset(block, 'x', sizeof block);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) die("cannot create fsync-probe");
  for (int i = 0; i < 64; i++) {
    double t0 = bench_now();
    if (pwrite(fd, block, sizeof block, (off_t)(i % 16) * 4096) != (ssize_t)sizeof block ||
        fdatasync(fd) != 0)
      die("write + fdatasync failed");
    t[i] = bench_now() - t0;
  }
  close(fd);
  remove(path);
  return bench_median(t, 64);
}

/* ---- A. durable ingest ---- */

typedef struct ingest_dev {
  char eid[33], request_id[48];
} ingest_dev;
static ingest_dev *ingest; /* the recorded job's devices, in job order */
static size_t n_ingest;

static int keep_device(const tsesim_device_status *d, void *payload) {
  (void)payload;
  if (n_ingest == INGEST_DEVICES || !d->eid || !d->request_id) return 1;
  snprintf(ingest[n_ingest].eid, sizeof ingest->eid, "%s", d->eid);
  snprintf(ingest[n_ingest].request_id, sizeof ingest->request_id, "%s", d->request_id);
  n_ingest++;
  return 0;
}

typedef struct conn {
  CURL *e;
  char body[1024];
} conn;

/* The SUCCESS callback of device i, as ThingSpace sends it. */
static void callback_body(conn *c, size_t i) {
  const ingest_dev *d = &ingest[i];
  int n = snprintf(c->body, sizeof c->body,
                   "{\"requestId\":\"%s\",\"deviceIds\":[{\"id\":\"%s\",\"kind\":\"Eid\"}],"
                   "\"deviceResponse\":{\"deviceProfileResponse\":{\"deviceIdentifierCollection\":"
                   "[{\"id\":\"%s\",\"kind\":\"Eid\"}],\"state\":\"ACTIVE\",\"profileStatus\":"
                   "\"ENABLE\",\"profileRole\":\"LOCAL\"}},\"status\":\"SUCCESS\","
                   "\"callbackCount\":1,\"maxCallbackThreshold\":4,\"username\":\"" USER
                   "\",\"password\":\"" PASS "\"}",
                   d->request_id, d->eid, d->eid);
  if (n < 0 || (size_t)n >= sizeof c->body) die("callback body too long");
  curl_easy_setopt(c->e, CURLOPT_POSTFIELDSIZE, (long)n);
}

static size_t discard(char *p, size_t size, size_t n, void *u) {
  (void)p, (void)u;
  return size * n;
}

/* POSTs the callbacks of devices first..first+n-1 to port over CONNS
 * keep-alive connections; every answer must be 200. Returns the seconds. */
static double ingest_round(conn *conns, CURLM *m, unsigned port, size_t first, size_t n) {
  char url[64];
  size_t started = 0, done = 0;
  snprintf(url, sizeof url, "http://127.0.0.1:%u/callbacks", port);
  double t0 = bench_now();
  for (int i = 0; i < CONNS && started < n; i++) {
    curl_easy_setopt(conns[i].e, CURLOPT_URL, url);
    callback_body(&conns[i], first + started++);
    curl_multi_add_handle(m, conns[i].e);
  }
  while (done < n) {
    int running;
    CURLMsg *msg;
    curl_multi_perform(m, &running);
    while ((msg = curl_multi_info_read(m, &running))) {
      long status = 0;
      conn *c;
      if (msg->msg != CURLMSG_DONE) continue;
      if (msg->data.result != CURLE_OK) die(curl_easy_strerror(msg->data.result));
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
      if (status != 200) {
        fprintf(stderr, "bench_listener: a callback was answered %ld, not 200\n", status);
        exit(1);
      }
      done++;
      curl_multi_remove_handle(m, c->e);
      if (started < n) {
        callback_body(c, first + started++);
        curl_multi_add_handle(m, c->e);
      }
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  return bench_now() - t0;
}

static void bench_ingest(tsesim_client *client) {
  char jpath[128], err[TSESIM_ERRBUF_SIZE];
  tsesim_journal *j;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim_job_counts c;
  tsesim_request *req = fresh_request(INGEST_DEVICES);
  double t_durable[ROUNDS], t_none[ROUNDS];
  conn *conns = calloc(CONNS, sizeof *conns);
  CURLM *m = curl_multi_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");

  /* The recorded job: submitted while no listener is registered, so the
   * simulator sends no callback of its own. */
  path_in_dir(jpath, sizeof jpath, "ingest.db");
  if (tsesim_journal_open(&j, jpath, err) != TSESIM_OK) die(err);
  if (tsesim_job_submit(client, j, "ingest", req, &o) != TSESIM_OK)
    die(tsesim_client_errmsg(client));
  tsesim_request_free(req);
  if (!(ingest = calloc(INGEST_DEVICES, sizeof *ingest)) || !conns || !m) die("out of memory");
  if (tsesim_job_devices(j, "ingest", keep_device, NULL) != TSESIM_OK || n_ingest != INGEST_DEVICES)
    die("the ingest job's devices");

  tsesim_listener *durable = listener_start(jpath, NULL, NULL);
  tsesim_listener *none = listener_start(NULL, NULL, NULL);
  for (int i = 0; i < CONNS; i++) {
    if (!(conns[i].e = curl_easy_init())) die("curl_easy_init");
    curl_easy_setopt(conns[i].e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(conns[i].e, CURLOPT_POSTFIELDS, conns[i].body);
    curl_easy_setopt(conns[i].e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(conns[i].e, CURLOPT_PRIVATE, &conns[i]);
  }
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CONNS);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)CONNS);
  /* one warm-up round each way: connections open, pages cached */
  ingest_round(conns, m, tsesim_listener_port(none), 0, PER_ROUND / 4);
  for (int r = 0; r < ROUNDS; r++) { /* alternating order: neither always runs first */
    if (r % 2) t_none[r] = ingest_round(conns, m, tsesim_listener_port(none), 0, PER_ROUND);
    t_durable[r] =
        ingest_round(conns, m, tsesim_listener_port(durable), (size_t)r * PER_ROUND, PER_ROUND);
    if (!(r % 2)) t_none[r] = ingest_round(conns, m, tsesim_listener_port(none), 0, PER_ROUND);
  }
  for (int i = 0; i < CONNS; i++) curl_easy_cleanup(conns[i].e);
  curl_multi_cleanup(m);
  curl_slist_free_all(h);
  free(conns);
  tsesim_listener_stop(none);
  tsesim_listener_stop(durable);

  /* every callback stored once, each device final */
  if (tsesim_job_count(j, "ingest", &c) != TSESIM_OK) die(tsesim_journal_errmsg(j));
  printf("listener durable ingest: %d connections, %d rounds of %d callbacks each way\n", CONNS,
         ROUNDS, PER_ROUND);
  printf(
      "  journal: %lu callbacks stored, %lu duplicates, %lu unmatched, %lu of %lu devices "
      "success\n",
      c.callbacks, c.duplicates, c.unmatched, (unsigned long)c.success, (unsigned long)c.devices);
  if (c.callbacks != INGEST_DEVICES || c.duplicates || c.unmatched || c.success != INGEST_DEVICES)
    bench_failures++;
  tsesim_journal_close(j);
  free(ingest);

  double md = bench_median(t_durable, ROUNDS), mn = bench_median(t_none, ROUNDS);
  double rate_d = PER_ROUND / md, rate_n = PER_ROUND / mn, fs = fsync_time();
  printf("  durable (journal)  %8.0f callbacks/s  (goal 10000: %s)\n", rate_d,
         rate_d >= 10000 ? "met" : "not met");
  printf("  no journal         %8.0f callbacks/s\n", rate_n);
  printf("  write + fdatasync on this disk: %.3f ms (%.0f per second one at a time)\n", fs * 1e3,
         1 / fs);
  /* bench_ratio bounds from above: the inverse ratio of the times is rate_n/rate_d <= 2 */
  printf("  durable rate / no-journal rate %.3f (bound >= 0.50)\n", rate_d / rate_n);
  bench_ratio("no-journal rate / durable rate", rate_n / rate_d, 2.0);
}

/* ---- B. end to end ---- */

static unsigned long finals; /* final callbacks seen by the no-journal listener */

static void count_final(const tsesim_callback *cb, const tsesim_callback_result *result,
                        void *payload) {
  (void)result, (void)payload;
  if (cb->status_code == TSESIM_STATUS_SUCCESS || cb->status_code == TSESIM_STATUS_FAILED)
    __atomic_fetch_add(&finals, 1, __ATOMIC_RELEASE);
}

/* One job of E2E_DEVICES fresh devices, from submit until every device is
 * final; durable: the listener stores into the journal, and the journal is
 * waited on; else it stores nothing and final callbacks are counted. */
static double e2e_run(tsesim_client *client, int durable, int no, double *t_wait) {
  char jpath[128], name[32], url[64], err[TSESIM_ERRBUF_SIZE];
  tsesim_journal *j;
  tsesim_job_options o = TSESIM_JOB_OPTIONS_INIT;
  tsesim_job_counts c;
  tsesim_request *req = fresh_request(E2E_DEVICES);
  tsesim_listener *l;
  double t0, t;
  snprintf(name, sizeof name, "e2e-%d.db", no);
  path_in_dir(jpath, sizeof jpath, name);
  if (tsesim_journal_open(&j, jpath, err) != TSESIM_OK) die(err);
  __atomic_store_n(&finals, 0, __ATOMIC_RELEASE);
  l = listener_start(durable ? jpath : NULL, count_final, NULL);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/callbacks", tsesim_listener_port(l));
  if (tsesim_client_register_callback(client, ACCOUNT, NULL, url, USER, PASS) != TSESIM_OK)
    die(tsesim_client_errmsg(client));
  t0 = bench_now();
  if (tsesim_job_submit(client, j, "e2e", req, &o) != TSESIM_OK) die(tsesim_client_errmsg(client));
  /* The same clock on both sides: the last final callback seen by
   * on_callback, which runs after its group is committed. */
  while (__atomic_load_n(&finals, __ATOMIC_ACQUIRE) < E2E_DEVICES) {
    if (bench_now() - t0 > 120) die("end to end: not final in 120 s");
    usleep(2000);
  }
  t = bench_now() - t0;
  /* and what an application waiting on the journal sees (it polls) */
  if (durable) {
    if (tsesim_job_wait(j, "e2e", 120000, &c) != TSESIM_OK) die("end to end: not final in 120 s");
    *t_wait = bench_now() - t0;
  }
  tsesim_listener_stop(l);
  if (durable && (c.success + c.failed != E2E_DEVICES || c.unmatched)) {
    fprintf(stderr, "bench_listener: end to end: %lu success + %lu failed of %d, %lu unmatched\n",
            (unsigned long)c.success, (unsigned long)c.failed, E2E_DEVICES, c.unmatched);
    bench_failures++;
  }
  tsesim_journal_close(j);
  tsesim_request_free(req);
  return t;
}

static void bench_e2e(tsesim_client *client, int workers, int bounded) {
  int rounds = bounded ? E2E_ROUNDS : 3; /* the unbounded figure is for reading only */
  double t_durable[E2E_ROUNDS], t_none[E2E_ROUNDS], t_wait[E2E_ROUNDS], unused;
  static int no = 0; /* journals and job names stay distinct across calls */
  for (int r = 0; r < rounds; r++) {
    if (r % 2) t_none[r] = e2e_run(client, 0, no++, &unused);
    t_durable[r] = e2e_run(client, 1, no++, &t_wait[r]);
    if (!(r % 2)) t_none[r] = e2e_run(client, 0, no++, &unused);
  }
  double md = bench_median(t_durable, rounds), mn = bench_median(t_none, rounds);
  double mw = bench_median(t_wait, rounds), ratio[E2E_ROUNDS];
  /* the bound: the median of each round's ratio, its two runs back to back,
   * so that a busy spell of the machine weighs on both sides of one ratio */
  for (int r = 0; r < rounds; r++) ratio[r] = t_durable[r] / t_none[r];
  printf(
      "listener end to end: %d devices through tsesim-sim delivering %d at a time, %d runs "
      "each way\n",
      E2E_DEVICES, workers, rounds);
  printf("  durable journal %6.2f s (%.0f devices/s), no journal %6.2f s (%.0f devices/s)\n", md,
         E2E_DEVICES / md, mn, E2E_DEVICES / mn);
  printf("  tsesim_job_wait returned after %.2f s (it reads the journal a few times a second)\n",
         mw);
  if (bounded) {
    printf("  wall time durable / no journal, medians      ratio %.3f  (read only)\n", md / mn);
    bench_ratio("wall time durable / no journal, per round", bench_median(ratio, rounds), 1.5);
  } else
    printf("  wall time durable / no journal               ratio %.3f  (not bounded)\n", md / mn);
}

static void sim_stop(void) {
  int status;
  kill(sim_pid, SIGTERM);
  waitpid(sim_pid, &status, 0);
  sim_pid = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bench_failures++;
}

int main(int argc, char **argv) {
  tsesim_client *client;
  if (argc != 2) die("usage: bench_listener PATH-TO-tsesim-sim");
  signal(SIGPIPE, SIG_IGN);
  if (!mkdtemp(dir)) die("mkdtemp");
  atexit(cleanup);
  if (tsesim_global_init() != TSESIM_OK) die("tsesim_global_init");
  sim_start_workers(argv[1], dir, NULL, 64);
  client = client_new();
  bench_ingest(client);
  bench_e2e(client, 64, 1);
  tsesim_client_free(client);
  sim_stop();
  sim_start_workers(argv[1], dir, NULL, 8);
  client = client_new();
  bench_e2e(client, 8, 0);
  tsesim_client_free(client);
  sim_stop();
  tsesim_global_cleanup();
  return bench_failures ? 1 : 0;
}
