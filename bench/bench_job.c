/*
 * bench_job.c - jobs (issue 10's bounds), against tsesim-sim started with
 * --no-callbacks on loopback, in one process:
 *   A. memory: the job's own peak RSS growth (VmHWM, reset just before the
 *      job, over VmRSS once its request is built: the request builder's
 *      pool is the baseline) for 1,000,000 devices against 100,000, a fresh
 *      journal each: at most 150 bytes per further device;
 *   B. devices per second of that 1,000,000-device job;
 *   C. journal overhead: a 100,000-device job (10 chunks of 10,000, 4 in
 *      flight), its journal created for the run and every row recorded,
 *      against the same 10 chunks as tsesim_client_download calls in a
 *      loop: at most 1.3x (medians of interleaved runs).
 * Memory comes first, in a process that has not yet held anything else.
 * Every device of every run has its own EID; at the end the simulator must
 * have accepted each exactly once (downloads.eids_repeated 0).
 * Linux only: it reads /proc/self/status and writes /proc/self/clear_refs.
 * Usage: bench_job PATH-TO-tsesim-sim
 */
#define _GNU_SOURCE /* mkdtemp, malloc_trim */
#include <curl/curl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_simproc.h"
#include "tsesim.h"
#include "tt_ids.h"

#define ACCOUNT "0000123456-00001"
#define IN_FLIGHT 4
/* -D can make them small, to run it once under valgrind */
#ifndef CHUNK
#define CHUNK 10000
#endif
#ifndef SMALL
#define SMALL 100000 /* devices of the overhead runs and of the smaller memory job */
#endif
#ifndef LARGE
#define LARGE 1000000 /* devices of the larger memory job */
#endif
#ifndef ROUNDS
#define ROUNDS 7 /* overhead runs of each kind */
#endif

static tsesim_client *client;
static char dir[64] = "bench-job.XXXXXX"; /* the journals, under the current directory */
static unsigned long next_seed = 1;       /* each device its own: distinct EIDs */
static unsigned long devices_sent;
static int journal_no;

/* Where a job's time goes: opening (creating) the journal; from the submit
 * to its first progress report, which comes once the job and its rows are
 * recorded; from there to the end of the submit (the chunks sent, each
 * state committed); closing the journal (its WAL checkpointed). */
typedef struct job_times {
  double open, record, send, close;
} job_times;
static double first_report;

static void on_progress(const tsesim_job_progress *p, void *payload) {
  (void)p, (void)payload;
  if (!first_report) first_report = bench_now();
}

/* A request of n devices never sent before. */
static tsesim_request *fresh_request(size_t n) {
  tsesim_request *req;
  size_t i;
  if (tsesim_request_new(&req, ACCOUNT)) die("tsesim_request_new");
  for (i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, next_seed++);
    if (tsesim_request_add_device(req, d.ids, 3)) die(tsesim_request_errmsg(req));
  }
  return req;
}

/* kB of a /proc/self/status field such as "VmHWM". */
static long self_kib(const char *field) {
  char line[256];
  long kib = -1;
  size_t n = strlen(field);
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) die("cannot read /proc/self/status");
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, field, n) && line[n] == ':') kib = atol(line + n + 1);
  fclose(f);
  if (kib < 0) die("no such field in /proc/self/status");
  return kib;
}

/* Resets VmHWM to the current RSS, and checks that it did: a kernel that
 * ignores the write would leave the memory figures meaningless. */
static void peak_reset(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f || fputs("5", f) < 0 || fclose(f) != 0) die("cannot write 5 to /proc/self/clear_refs");
  if (self_kib("VmHWM") > self_kib("VmRSS") + 256)
    die("writing 5 to /proc/self/clear_refs did not reset VmHWM");
}

static void journal_path(char *out, size_t cap, int no, const char *suffix) {
  snprintf(out, cap, "%s/journal-%d.db%s", dir, no, suffix);
}

static void journal_remove(int no) {
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
  char path[128];
  size_t i;
  for (i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
    journal_path(path, sizeof path, no, suffixes[i]);
    remove(path);
  }
}

/* Runs req as a new job in a new journal; returns the seconds from opening
 * the journal to closing it, and where they went in *jt (NULL: not wanted). */
static double job_run(const tsesim_request *req, job_times *jt) {
  tsesim_job_options o;
  tsesim_journal *j;
  char path[128], name[32], errbuf[TSESIM_ERRBUF_SIZE];
  double t0, t1, t2, t3;
  tsesim_code rc;
  int no = journal_no++;
  journal_path(path, sizeof path, no, "");
  snprintf(name, sizeof name, "bench-%d", no);
  tsesim_job_options_init(&o, TSESIM_JOB_OPTIONS_VERSION);
  o.chunk_size = CHUNK;
  o.in_flight = IN_FLIGHT;
  o.progress_fn = on_progress;
  first_report = 0;
  t0 = bench_now();
  if (tsesim_journal_open(&j, path, errbuf) != TSESIM_OK) die(errbuf);
  t1 = bench_now();
  rc = tsesim_job_submit(client, j, name, req, &o);
  t2 = bench_now();
  if (rc != TSESIM_OK) die(tsesim_client_errmsg(client));
  tsesim_journal_close(j);
  t3 = bench_now();
  if (jt) {
    jt->open = t1 - t0;
    jt->record = first_report - t1;
    jt->send = t2 - first_report;
    jt->close = t3 - t2;
  }
  journal_remove(no);
  devices_sent += tsesim_request_device_count(req);
  return t3 - t0;
}

/* The chunks of a job as plain downloads, one after the other. */
static double loop_run(tsesim_request *const *chunks, size_t n) {
  double t0 = bench_now(), t;
  size_t i;
  for (i = 0; i < n; i++) {
    char *rid;
    if (tsesim_client_download(&rid, client, chunks[i]) != TSESIM_OK)
      die(tsesim_client_errmsg(client));
    tsesim_free(rid);
  }
  t = bench_now() - t0;
  for (i = 0; i < n; i++) devices_sent += tsesim_request_device_count(chunks[i]);
  return t;
}

typedef struct mem_run {
  long before_kib;    /* RSS before the request was built */
  long request_kib;   /* RSS once it is built: the baseline */
  long build_hwm_kib; /* peak while building it */
  long job_hwm_kib;   /* peak while the job ran (journal open to close) */
  job_times t;
} mem_run;

static void mem_measure(mem_run *m, size_t n) {
  tsesim_request *req;
  malloc_trim(0); /* what an earlier run freed is not counted in the baseline */
  m->before_kib = self_kib("VmRSS");
  peak_reset();
  req = fresh_request(n);
  m->build_hwm_kib = self_kib("VmHWM");
  malloc_trim(0); /* nor what building it left free (the pool's and index's old copies) */
  m->request_kib = self_kib("VmRSS");
  peak_reset();
  job_run(req, &m->t);
  m->job_hwm_kib = self_kib("VmHWM");
  tsesim_request_free(req);
}

static void mem_print(const char *what, const mem_run *m, size_t n) {
  long whole = m->job_hwm_kib > m->build_hwm_kib ? m->job_hwm_kib : m->build_hwm_kib;
  printf("  %-9s %7d devices: request %7.1f MiB (%3.0f B/device), job peak +%6.1f MiB over it;\n",
         what, (int)n, (m->request_kib - m->before_kib) / 1024.0,
         (m->request_kib - m->before_kib) * 1024.0 / (double)n,
         (m->job_hwm_kib - m->request_kib) / 1024.0);
  printf("  %25s whole process: RSS %.1f MiB before, peak %.1f MiB\n", "", m->before_kib / 1024.0,
         whole / 1024.0);
}

/* At any exit, die() included: no simulator left running, no journal left. */
static void cleanup(void) {
  int no;
  if (sim_pid > 0) {
    kill(sim_pid, SIGTERM);
    waitpid(sim_pid, NULL, 0);
    sim_pid = 0;
  }
  for (no = 0; no < journal_no; no++) journal_remove(no);
  remove(dir);
}

/* A counter of the simulator's /_sim/stats, such as "eids_repeated". */
static long sim_stat(const char *stats, const char *key) {
  char pat[64];
  const char *p;
  snprintf(pat, sizeof pat, "\"%s\":", key);
  if (!(p = strstr(stats, pat))) die("/_sim/stats: a counter is missing");
  return atol(p + strlen(pat));
}

static void sim_stats(char out[4096]) {
  char url[128];
  long status = 0;
  CURL *e = curl_easy_init();
  out[0] = '\0';
  snprintf(url, sizeof url, "%s/_sim/stats", base);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sim_stats_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(e) != CURLE_OK) die("GET /_sim/stats failed");
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  if (status != 200) die("GET /_sim/stats: not 200");
}

int main(int argc, char **argv) {
  double tj[ROUNDS], tl[ROUNDS], topen[ROUNDS], trec[ROUNDS], tsend[ROUNDS], tclose[ROUNDS];
  job_times jt;
  tsesim_options o;
  tsesim_request *warm;
  mem_run small, large;
  char stats[4096];
  int r;
  if (argc != 2) die("usage: bench_job PATH-TO-tsesim-sim");
  signal(SIGPIPE, SIG_IGN);
  tsesim_global_init();
  if (!mkdtemp(dir)) die("cannot make a temporary directory here");
  atexit(cleanup);
  sim_start_opt(argv[1], ".", "--no-callbacks");
  tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  o.base_url = strcat(strcpy(malloc(80), base), "/api");
  o.client_id = "sim-key";
  o.client_secret = "sim-secret";
  o.username = "sim-user";
  o.password = "sim-pass";
  if (tsesim_client_new(&client, &o) || tsesim_client_login(client)) die("client login");
  warm = fresh_request(1); /* a connection up and the tokens held before any figure */
  {
    char *rid;
    if (tsesim_client_download(&rid, client, warm) != TSESIM_OK) die(tsesim_client_errmsg(client));
    tsesim_free(rid);
    devices_sent++;
  }
  tsesim_request_free(warm);

  /* A and B: memory, 100,000 then 1,000,000 devices */
  mem_measure(&small, SMALL);
  mem_measure(&large, LARGE);

  /* C: journal overhead, interleaved (the order alternates: no order bias) */
  for (r = 0; r < ROUNDS; r++) {
    tsesim_request *job_req = fresh_request(SMALL), *chunks[SMALL / CHUNK];
    size_t i;
    for (i = 0; i < SMALL / CHUNK; i++) chunks[i] = fresh_request(CHUNK);
    if (r % 2) tl[r] = loop_run(chunks, SMALL / CHUNK);
    tj[r] = job_run(job_req, &jt);
    topen[r] = jt.open, trec[r] = jt.record, tsend[r] = jt.send, tclose[r] = jt.close;
    if (!(r % 2)) tl[r] = loop_run(chunks, SMALL / CHUNK);
    for (i = 0; i < SMALL / CHUNK; i++) tsesim_request_free(chunks[i]);
    tsesim_request_free(job_req);
  }

  printf("jobs against tsesim-sim --no-callbacks (chunks of %d, %d in flight)\n", CHUNK, IN_FLIGHT);
  printf("peak RSS (VmHWM, reset before the job), a fresh journal each:\n");
  mem_print("small job", &small, SMALL);
  mem_print("large job", &large, LARGE);
  {
    double per = (double)((large.job_hwm_kib - large.request_kib) -
                          (small.job_hwm_kib - small.request_kib)) *
                 1024.0 / (LARGE - SMALL);
    int ok = per <= 150;
    printf("  %-44s %.1f bytes  (bound <= 150)  %s\n", "job's peak growth per further device", per,
           ok ? "ok" : "FAILED");
    if (!ok) bench_failures++;
  }
  {
    double submit = large.t.record + large.t.send;
    printf("%d-device job: tsesim_job_submit %.2f s = %.0f devices/s\n", LARGE, submit,
           LARGE / submit);
    printf(
        "  recording the job and its rows %.2f s, sending its %d chunks %.2f s; "
        "journal open %.0f ms, close %.0f ms\n",
        large.t.record, (LARGE + CHUNK - 1) / CHUNK, large.t.send, large.t.open * 1e3,
        large.t.close * 1e3);
  }
  {
    double mj = bench_median(tj, ROUNDS), ml = bench_median(tl, ROUNDS);
    printf("%d devices, %d interleaved runs each (medians):\n", SMALL, ROUNDS);
    printf(
        "  job          %7.1f ms  (journal created %.1f ms, job and its rows recorded %.1f ms,\n"
        "                          chunks sent %.1f ms, journal closed %.1f ms)\n",
        mj * 1e3, bench_median(topen, ROUNDS) * 1e3, bench_median(trec, ROUNDS) * 1e3,
        bench_median(tsend, ROUNDS) * 1e3, bench_median(tclose, ROUNDS) * 1e3);
    printf("  plain loop   %7.1f ms  (%d tsesim_client_download calls, one after the other)\n",
           ml * 1e3, SMALL / CHUNK);
    bench_ratio("job with journal / plain download loop", mj / ml, 1.3);
  }
  sim_stats(stats);
  {
    long eids = sim_stat(stats, "eids"), repeated = sim_stat(stats, "eids_repeated");
    int ok = repeated == 0 && eids == (long)devices_sent;
    printf("  simulator: %ld EIDs accepted, %ld more than once (sent %lu devices)  %s\n", eids,
           repeated, devices_sent, ok ? "ok" : "FAILED");
    if (!ok) bench_failures++;
  }
  tsesim_client_free(client);
  free((char *)o.base_url);
  tsesim_global_cleanup();
  return bench_failures ? 1 : 0;
}
