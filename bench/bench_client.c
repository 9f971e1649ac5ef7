/*
 * bench_client.c - the client's cost over a bare libcurl POST, both against
 * tsesim-sim on loopback, interleaved in one process (issue 4's bounds):
 *   A. a single-device download with a warm client against a bare POST of
 *      the same bytes and headers on a reused handle, each round's pair
 *      back to back: at most 1.5x (the median of the rounds' ratios; the
 *      medians and p95 printed);
 *   B. a 10,000-device download against the serialize floor plus a bare
 *      POST of the pre-serialized body, each round's pair back to back: at
 *      most 1.1x (the median of the rounds' ratios).
 * Usage: bench_client PATH-TO-tsesim-sim
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_simproc.h"
#include "tsesim.h"
#include "tt_ids.h"

#define ROUNDS_A 301
#define ROUNDS_B 41

static char access_token[128], session_token[128];

static void on_token(tsesim_token_kind kind, const char *token, long expires, void *u) {
  (void)expires, (void)u;
  snprintf(kind == TSESIM_TOKEN_ACCESS ? access_token : session_token, 128, "%s",
           token ? token : "");
}

static size_t sink(char *p, size_t size, size_t n, void *u) {
  (void)p, (void)u;
  return size * n;
}

static tsesim_request *request_of(size_t n) {
  tsesim_request *req;
  size_t i;
  if (tsesim_request_new(&req, "0000123456-00001")) die("tsesim_request_new");
  for (i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, i + 1);
    if (tsesim_request_add_device(req, d.ids, 3)) die(tsesim_request_errmsg(req));
  }
  return req;
}

/* The same request line, headers and body as the client sends. */
static CURL *bare_handle(struct curl_slist **h) {
  char url[128], auth[160], session[160];
  CURL *e = curl_easy_init();
  snprintf(url, sizeof url, "%s/api/m2m/v1/devices/profile/actions/download", base);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", access_token);
  snprintf(session, sizeof session, "VZ-M2M-Token: %s", session_token);
  *h = curl_slist_append(NULL, auth);
  *h = curl_slist_append(*h, session);
  *h = curl_slist_append(*h, "Content-Type: application/json");
  *h = curl_slist_append(*h, "Accept: application/json");
  *h = curl_slist_append(*h, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, *h);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "libtsesim/" TSESIM_VERSION_STR);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  return e;
}

static double bare_post(CURL *e, const char *body, size_t len) {
  long status = 0;
  double t0 = bench_now();
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  if (curl_easy_perform(e) != CURLE_OK) die("bare POST failed");
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) die("bare POST not accepted");
  return bench_now() - t0;
}

static double client_download(tsesim_client *c, const tsesim_request *req) {
  char *rid;
  double t0 = bench_now(), t;
  if (tsesim_client_download(&rid, c, req) != TSESIM_OK) die(tsesim_client_errmsg(c));
  t = bench_now() - t0;
  tsesim_free(rid);
  return t;
}

static double p95(double *v, int n) { /* v sorted by bench_median */
  return v[(int)(0.95 * (n - 1))];
}

int main(int argc, char **argv) {
  static double tc[ROUNDS_A], tb[ROUNDS_A], pair_a[ROUNDS_A];
  double tcb[ROUNDS_B], tser[ROUNDS_B], tpost[ROUNDS_B], pair[ROUNDS_B];
  tsesim_options o;
  tsesim_client *c;
  tsesim_request *one, *many;
  struct curl_slist *h;
  CURL *bare;
  char *body1, *body_many;
  size_t len1, len_many;
  int r;
  if (argc != 2) die("usage: bench_client PATH-TO-tsesim-sim");
  signal(SIGPIPE, SIG_IGN);
  tsesim_global_init();
  sim_start(argv[1], ".");
  tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  o.base_url = strcat(strcpy(malloc(80), base), "/api");
  o.client_id = "sim-key";
  o.client_secret = "sim-secret";
  o.username = "sim-user";
  o.password = "sim-pass";
  o.token_fn = on_token;
  if (tsesim_client_new(&c, &o) || tsesim_client_login(c)) die("client login");
  one = request_of(1);
  many = request_of(10000);
  if (tsesim_request_to_json(&body1, &len1, one) ||
      tsesim_request_to_json(&body_many, &len_many, many))
    die("serialize");
  bare = bare_handle(&h);
  client_download(c, one); /* warm both: connection up, caches filled */
  bare_post(bare, body1, len1);

  for (r = 0; r < ROUNDS_A; r++) {
    if (r % 2) tb[r] = bare_post(bare, body1, len1);
    tc[r] = client_download(c, one);
    if (!(r % 2)) tb[r] = bare_post(bare, body1, len1);
  }
  for (r = 0; r < ROUNDS_B; r++) {
    char *tmp;
    size_t tmp_len;
    double t0;
    if (r % 2) tpost[r] = bare_post(bare, body_many, len_many); /* no order bias */
    tcb[r] = client_download(c, many);
    t0 = bench_now();
    if (tsesim_request_to_json(&tmp, &tmp_len, many)) die("serialize");
    tser[r] = bench_now() - t0;
    tsesim_free(tmp);
    if (!(r % 2)) tpost[r] = bare_post(bare, body_many, len_many);
  }
  for (r = 0; r < ROUNDS_A; r++) pair_a[r] = tc[r] / tb[r]; /* before any sort */
  for (r = 0; r < ROUNDS_B; r++) pair[r] = tcb[r] / (tser[r] + tpost[r]);
  {
    double mc = bench_median(tc, ROUNDS_A), mb = bench_median(tb, ROUNDS_A);
    double mcb = bench_median(tcb, ROUNDS_B), ms = bench_median(tser, ROUNDS_B),
           mp = bench_median(tpost, ROUNDS_B);
    printf("client download against tsesim-sim, %d interleaved rounds\n", ROUNDS_A);
    printf("  1 device, warm client   median %7.1f us  p95 %7.1f us\n", mc * 1e6,
           p95(tc, ROUNDS_A) * 1e6);
    printf("  bare libcurl POST        median %7.1f us  p95 %7.1f us  (%lu-byte body)\n", mb * 1e6,
           p95(tb, ROUNDS_A) * 1e6, (unsigned long)len1);
    printf("  ratio of medians %.3f\n", mc / mb);
    bench_ratio("1-device download / bare POST (median of rounds)", bench_median(pair_a, ROUNDS_A),
                1.5);
    printf("10,000-device download, %d interleaved rounds (%lu-byte body)\n", ROUNDS_B,
           (unsigned long)len_many);
    printf("  client download          median %7.2f ms  p95 %7.2f ms\n", mcb * 1e3,
           p95(tcb, ROUNDS_B) * 1e3);
    printf("  serialize %.2f ms + bare POST %.2f ms = floor %.2f ms\n", ms * 1e3, mp * 1e3,
           (ms + mp) * 1e3);
    /* Each round's download and its floor run back to back, so the ratio
     * of the two in each round, and the median of those, holds still when
     * the machine slows down for a few rounds (medians of the two sides
     * alone read 1.00-1.03 on a quiet machine and up to 1.18 on a busy one) */
    printf("  ratio of medians %.3f\n", mcb / (ms + mp));
    bench_ratio("10,000-device download / floor (median of rounds)", bench_median(pair, ROUNDS_B),
                1.1);
  }
  curl_easy_cleanup(bare);
  curl_slist_free_all(h);
  tsesim_free(body1);
  tsesim_free(body_many);
  tsesim_request_free(one);
  tsesim_request_free(many);
  tsesim_client_free(c);
  free((char *)o.base_url);
  tsesim_global_cleanup();
  kill(sim_pid, SIGTERM);
  waitpid(sim_pid, NULL, 0);
  return bench_failures ? 1 : 0;
}
