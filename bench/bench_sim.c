/*
 * bench_sim.c - tsesim-sim's callback delivery rate and memory.
 *
 * The library's listener (tsesim_listener, no journal: it counts each
 * callback in on_callback and answers 200) runs in this process. The floor
 * is a bare libcurl multi loop POSTing callbacks of the same size to that
 * listener with the simulator's concurrency (8): what any sender could do.
 * Then the simulator delivers the callbacks of real downloads to it:
 *   A. capacity: 100,000 devices in 10 requests sent at once; every callback
 *      is counted per device (none lost, none twice) and the simulator's
 *      peak memory (VmHWM) is read;
 *   B. 10 rounds of one 10,000-device download each, interleaved with floor
 *      rounds of 10,000 POSTs: medians and their ratio, and the simulator's
 *      resident memory after each round, which must not grow with what it
 *      has delivered.
 * Usage: bench_sim PATH-TO-tsesim-sim
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "bench_simproc.h"
#include "tsesim.h"
#include "tt_ids.h"

#define WORKERS 8
#define PER_REQUEST 10000
#define CAPACITY_REQUESTS 10
#define ROUNDS 10
#define MAX_DEVICES (PER_REQUEST * (CAPACITY_REQUESTS + ROUNDS))

static unsigned long received;            /* callbacks answered by the listener */
static unsigned char seen[MAX_DEVICES];   /* callbacks per device number */
static unsigned char expect[MAX_DEVICES]; /* 2 for a device whose imei ends in 77 */

/* An EID that carries a device number: digits 13..29 hold n, then the
 * MOD 97-10 check digits. */
static void eid_for(char out[33], unsigned long n) {
  unsigned r = 0;
  snprintf(out, 33, "8904903200000%017lu", n);
  for (int i = 0; i < 30; i++) r = (r * 10 + (unsigned)(out[i] - '0')) % 97;
  int c = 98 - (int)((r * 100) % 97);
  out[30] = (char)('0' + c / 10);
  out[31] = (char)('0' + c % 10);
  out[32] = '\0';
}

/* ---- the listener: the library's, storing nothing ---- */
typedef struct body {
  char buf[2048];
  size_t len;
} body;

/* Runs on the listener's writer thread for every callback it answers 200:
 * counts it against the device number its EID carries. */
static void note_callback(const tsesim_callback *cb, const tsesim_callback_result *result,
                          void *payload) {
  unsigned long n = MAX_DEVICES;
  (void)result, (void)payload;
  for (size_t i = 0; i < cb->n_device_ids; i++) {
    const char *id = cb->device_ids[i].id;
    if (cb->device_ids[i].kind != TSESIM_ID_EID || strlen(id) != 32) continue;
    n = 0;
    for (int k = 13; k < 30; k++) n = n * 10 + (unsigned long)(id[k] - '0');
    break;
  }
  if (n < MAX_DEVICES) __atomic_fetch_add(&seen[n], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&received, 1, __ATOMIC_RELEASE);
}

/* ---- a blocking JSON request to the simulator ---- */
static size_t collect(char *p, size_t size, size_t n, void *u) {
  body *b = u;
  size_t k = size * n < sizeof b->buf - 1 - b->len ? size * n : sizeof b->buf - 1 - b->len;
  memcpy(b->buf + b->len, p, k);
  b->len += k;
  b->buf[b->len] = '\0';
  return size * n;
}

/* POSTs data; copies the string member `member` of the 200 answer into out. */
static void post(const char *url, const char *const *headers, const char *data, size_t len,
                 const char *userpwd, const char *member, char *out, size_t outsize) {
  CURL *e = curl_easy_init();
  struct curl_slist *h = NULL;
  body answer = {{0}, 0};
  long status = 0;
  for (; headers && *headers; headers++) h = curl_slist_append(h, *headers);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
  if (userpwd) curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
  if (curl_easy_perform(e) != CURLE_OK) die(url);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  if (status != 200) {
    fprintf(stderr, "bench_sim: %s answered %ld: %s\n", url, status, answer.buf);
    exit(2);
  }
  if (!member) return;
  char key[64];
  snprintf(key, sizeof key, "\"%s\":\"", member);
  const char *p = strstr(answer.buf, key), *end;
  if (!p || !(end = strchr(p += strlen(key), '"')) || (size_t)(end - p) >= outsize)
    die("answer without the expected member");
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = '\0';
}

/* ---- the simulator process ---- */
static char hdr_auth[96], hdr_session[96];

static void sim_login(unsigned listener_port) {
  char url[256], token[64], session[64], data[256];
  const char *json[] = {"Content-Type: application/json", NULL, NULL, NULL};
  snprintf(url, sizeof url, "%s/api/ts/v1/oauth2/token", base);
  post(url, NULL, "grant_type=client_credentials", 29, "sim-key:sim-secret", "access_token", token,
       sizeof token);
  snprintf(hdr_auth, sizeof hdr_auth, "Authorization: Bearer %s", token);
  json[1] = hdr_auth;
  snprintf(url, sizeof url, "%s/api/m2m/v1/session/login", base);
  snprintf(data, sizeof data, "{\"username\":\"sim-user\",\"password\":\"sim-pass\"}");
  post(url, json, data, strlen(data), NULL, "sessionToken", session, sizeof session);
  snprintf(hdr_session, sizeof hdr_session, "VZ-M2M-Token: %s", session);
  json[2] = hdr_session;
  snprintf(url, sizeof url, "%s/api/m2m/v1/callbacks/0000123456-00001", base);
  snprintf(data, sizeof data,
           "{\"name\":\"DeviceProfileService\",\"url\":\"http://127.0.0.1:%u/cb\","
           "\"username\":\"listener\",\"password\":\"s3cret\"}",
           listener_port);
  post(url, json, data, strlen(data), NULL, NULL, NULL, 0);
}

/* A download body for devices first..first+n-1 (plan M2M_4G). Devices whose
 * imei ends in 77 get two callbacks; *callbacks counts them all. */
static char *download_body(unsigned long first, size_t n, size_t *len, unsigned long *callbacks) {
  tsesim_request *req;
  char *out;
  if (tsesim_request_new(&req, "0000123456-00001") ||
      tsesim_request_set_service_plan(req, "M2M_4G"))
    die("tsesim_request_new");
  *callbacks = 0;
  for (unsigned long i = first; i < first + n; i++) {
    tt_device d;
    tt_device_make(&d, i + 1);
    eid_for(d.eid, i);
    if (tsesim_request_add_device(req, d.ids, 3)) die(tsesim_request_errmsg(req));
    expect[i] = strcmp(d.imei + 13, "77") ? 1 : 2;
    *callbacks += expect[i];
  }
  if (tsesim_request_to_json(&out, len, req)) die("tsesim_request_to_json");
  tsesim_request_free(req);
  return out;
}

static void submit(const char *data, size_t len) {
  char url[256], request_id[64];
  const char *h[] = {"Content-Type: application/json", hdr_auth, hdr_session, NULL};
  snprintf(url, sizeof url, "%s/api/m2m/v1/devices/profile/actions/download", base);
  post(url, h, data, len, NULL, "requestId", request_id, sizeof request_id);
}

static void wait_received(unsigned long target, double timeout) {
  double end = bench_now() + timeout;
  while (__atomic_load_n(&received, __ATOMIC_ACQUIRE) < target) {
    if (bench_now() > end) {
      fprintf(stderr, "bench_sim: %lu of %lu callbacks after %.0f s\n",
              __atomic_load_n(&received, __ATOMIC_ACQUIRE), target, timeout);
      exit(1);
    }
    usleep(200);
  }
}

/* ---- the floor: bare libcurl, same concurrency, same body size ---- */

static size_t discard(char *p, size_t size, size_t n, void *u) {
  (void)p, (void)u;
  return size * n;
}

/* A valid callback of len bytes (padded with spaces) for a device number
 * out of range, so that it is counted as received but for no device. */
static void floor_body(char *data, size_t len) {
  char eid[33];
  eid_for(eid, 99999999999UL);
  int n = snprintf(data, len,
                   "{\"requestId\":\"00000000-0000-4000-8000-000000000000\",\"deviceIds\":"
                   "[{\"id\":\"%s\",\"kind\":\"Eid\"}],\"status\":\"SUCCESS\","
                   "\"callbackCount\":1,\"maxCallbackThreshold\":4,\"username\":\"listener\","
                   "\"password\":\"s3cret\"}",
                   eid);
  if (n < 0 || (size_t)n >= len) die("floor body too long");
  memset(data + n, ' ', len - (size_t)n);
}

static double floor_round(unsigned port, unsigned long n, size_t body_len) {
  char url[64], *data = malloc(body_len);
  CURLM *m = curl_multi_init();
  CURL *e[WORKERS];
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  unsigned long started = 0, done = 0;
  if (!data || !m) die("out of memory");
  floor_body(data, body_len);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/cb", port);
  unsigned long before = __atomic_load_n(&received, __ATOMIC_ACQUIRE);
  double t0 = bench_now();
  for (int i = 0; i < WORKERS; i++) {
    e[i] = curl_easy_init();
    curl_easy_setopt(e[i], CURLOPT_URL, url);
    curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(e[i], CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, discard); /* the listener's JSON answer */
    curl_multi_add_handle(m, e[i]);
    started++;
  }
  while (done < n) {
    int running;
    CURLMsg *msg;
    curl_multi_perform(m, &running);
    while ((msg = curl_multi_info_read(m, &running))) {
      if (msg->msg != CURLMSG_DONE) continue;
      if (msg->data.result != CURLE_OK) die("floor POST failed");
      done++;
      curl_multi_remove_handle(m, msg->easy_handle);
      if (started < n) {
        curl_multi_add_handle(m, msg->easy_handle);
        started++;
      }
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double t = bench_now() - t0;
  for (int i = 0; i < WORKERS; i++) curl_easy_cleanup(e[i]);
  curl_multi_cleanup(m);
  curl_slist_free_all(h);
  free(data);
  if (__atomic_load_n(&received, __ATOMIC_ACQUIRE) - before != n) die("floor count");
  return t;
}

int main(int argc, char **argv) {
  if (argc != 2) die("usage: bench_sim PATH-TO-tsesim-sim");
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  tsesim_listener_options lo = TSESIM_LISTENER_OPTIONS_INIT;
  tsesim_listener *listener;
  char err[TSESIM_ERRBUF_SIZE] = "";
  lo.path = "/cb";
  lo.username = "listener";
  lo.password = "s3cret";
  lo.on_callback = note_callback; /* journal NULL: nothing stored, 200 once it returns */
  if (tsesim_listener_start(&listener, &lo, err) != TSESIM_OK) die(err);
  unsigned port = tsesim_listener_port(listener);
  sim_start(argv[1], ".");
  sim_login(port);

  /* A. capacity: 10 requests of 10,000 at once */
  size_t len[CAPACITY_REQUESTS];
  unsigned long want[CAPACITY_REQUESTS], total = 0;
  char *bodies[CAPACITY_REQUESTS];
  for (int r = 0; r < CAPACITY_REQUESTS; r++) {
    bodies[r] = download_body((unsigned long)r * PER_REQUEST, PER_REQUEST, &len[r], &want[r]);
    total += want[r];
  }
  long rss0 = sim_kib("VmRSS:");
  double t0 = bench_now();
  for (int r = 0; r < CAPACITY_REQUESTS; r++) submit(bodies[r], len[r]);
  wait_received(total, 120);
  double t_cap = bench_now() - t0;
  usleep(200000); /* anything sent twice would arrive now */
  unsigned long missing = 0, twice = 0;
  for (unsigned long i = 0; i < (unsigned long)CAPACITY_REQUESTS * PER_REQUEST; i++) {
    if (seen[i] < expect[i]) missing++;
    if (seen[i] > expect[i]) twice++;
  }
  long hwm_cap = sim_kib("VmHWM:");
  for (int r = 0; r < CAPACITY_REQUESTS; r++) tsesim_free(bodies[r]);
  printf("tsesim-sim capacity: %d requests x %d devices sent at once\n", CAPACITY_REQUESTS,
         PER_REQUEST);
  printf("  %lu callbacks delivered in %.2f s: %.0f callbacks/s\n", received, t_cap,
         (double)received / t_cap);
  printf("  devices with a callback missing %lu, with one too many %lu\n", missing, twice);
  printf("  simulator memory: VmRSS before %ld KiB, peak VmHWM %ld KiB\n", rss0, hwm_cap);
  if (missing || twice || received != total) bench_failures++;

  /* B. rounds of one download, interleaved with floor rounds */
  double t_sim[ROUNDS], t_floor[ROUNDS];
  long rss[ROUNDS];
  size_t body_len = 0;
  for (int r = 0; r < ROUNDS; r++) {
    /* The same devices every round: the simulator keeps a count per EID it
     * accepted (a record that grows with distinct EIDs, by design), and
     * this measures what delivery itself keeps. */
    unsigned long first = (unsigned long)CAPACITY_REQUESTS * PER_REQUEST, n_cb;
    size_t blen;
    char *b = download_body(first, PER_REQUEST, &blen, &n_cb);
    unsigned long target = __atomic_load_n(&received, __ATOMIC_ACQUIRE) + n_cb;
    t0 = bench_now();
    submit(b, blen);
    wait_received(target, 60);
    t_sim[r] = (bench_now() - t0) / (double)n_cb;
    tsesim_free(b);
    rss[r] = sim_kib("VmRSS:");
    if (!body_len) body_len = 700; /* a callback body with listener credentials */
    t_floor[r] = floor_round(port, PER_REQUEST, body_len) / PER_REQUEST;
  }
  long rss_first = rss[0], rss_last = rss[ROUNDS - 1];
  double ms = bench_median(t_sim, ROUNDS), mf = bench_median(t_floor, ROUNDS);
  printf("tsesim-sim delivery, %d rounds of one %d-device download, %d workers\n", ROUNDS,
         PER_REQUEST, WORKERS);
  printf("  simulator median %8.1f us per callback (%.0f callbacks/s)\n", ms * 1e6, 1 / ms);
  printf("  bare libcurl median %6.1f us per POST (%.0f POSTs/s)\n", mf * 1e6, 1 / mf);
  bench_ratio("simulator time per callback / bare POST", ms / mf, 2.0);
  printf(
      "  simulator VmRSS after round 1 %ld KiB, after round %d %ld KiB (%lu callbacks "
      "delivered in all)\n",
      rss_first, ROUNDS, rss_last, received);
  bench_ratio("VmRSS growth over rounds 1..10", (double)rss_last / (double)rss_first, 1.05);

  kill(sim_pid, SIGTERM);
  int status;
  waitpid(sim_pid, &status, 0);
  tsesim_listener_stop(listener);
  curl_global_cleanup();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bench_failures++;
  return bench_failures ? 1 : 0;
}
