/*
 * bench_download.c - the C client's side of bench_python.py's latency
 * figure: one warm client, driven over a pipe so that its downloads and
 * the Python package's interleave against the same tsesim-sim.
 *
 * Usage: bench_download BASE_URL   (e.g. http://127.0.0.1:PORT/api)
 * Logs in as the simulator's default client and user, then reads lines
 * from standard input: a number N makes N single-device downloads of the
 * same request and prints their times in seconds on one line; end of
 * input ends it. Any failure exits 2 with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tsesim.h"
#include "tt_ids.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *why) {
  fprintf(stderr, "bench_download: %s: %s\n", what, why ? why : "");
  exit(2);
}

int main(int argc, char **argv) {
  tsesim_options o;
  tsesim_client *c;
  tsesim_request *req;
  tt_device d;
  char line[64];

  if (argc != 2) fail("usage", "bench_download BASE_URL");
  if (tsesim_global_init()) fail("tsesim_global_init", NULL);
  tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  o.base_url = argv[1];
  o.client_id = "sim-key";
  o.client_secret = "sim-secret";
  o.username = "sim-user";
  o.password = "sim-pass";
  if (tsesim_client_new(&c, &o)) fail("tsesim_client_new", NULL);
  if (tsesim_client_login(c)) fail("login", tsesim_client_errmsg(c));
  if (tsesim_request_new(&req, "0000123456-00001")) fail("tsesim_request_new", NULL);
  tt_device_make(&d, 1);
  if (tsesim_request_add_device(req, d.ids, 3)) fail("add_device", tsesim_request_errmsg(req));

  while (fgets(line, sizeof line, stdin)) {
    long n = strtol(line, NULL, 10), i;
    for (i = 0; i < n; i++) {
      char *rid;
      double t0 = now();
      if (tsesim_client_download(&rid, c, req)) fail("download", tsesim_client_errmsg(c));
      printf("%s%.9f", i ? " " : "", now() - t0);
      tsesim_free(rid);
    }
    printf("\n");
    fflush(stdout);
  }
  tsesim_request_free(req);
  tsesim_client_free(c);
  tsesim_global_cleanup();
  return 0;
}
