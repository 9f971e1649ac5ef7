/*
 * sim_main.c - tsesim-sim: a local ThingSpace simulator. Start-up, the port
 * file, signals and a clean shutdown. See tsesim-sim(1).
 */
#include <curl/curl.h>
#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "tsesim_int.h"

/* Writes the port to path.tmp, then renames it, so a reader never sees a
 * half-written file. */
static int write_port_file(const char *path, unsigned port) {
  size_t n = strlen(path) + 5;
  char *tmp = sim_xmalloc(n);
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int ok = f && fprintf(f, "%u\n", port) > 0;
  if (f && fclose(f)) ok = 0;
  if (ok && rename(tmp, path)) ok = 0;
  if (!ok) {
    fprintf(stderr, "tsesim-sim: cannot write the port file '%s': %s\n", path, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  /* Request bodies of megabytes come and go on many threads. glibc raises
   * its mmap threshold after each large free, after which such bodies stay
   * in per-thread arenas and the resident size drifts up with the threads
   * that served them; a fixed threshold returns them to the system. */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
  /* The generator is a mode of its own: it serves nothing. */
  if (sim_make_requested(argc, argv)) return sim_make_main(argc, argv);
  static sim s;
  int rc = sim_config_parse(&s.cfg, argc, argv);
  if (rc) {
    sim_config_free(&s.cfg);
    return rc > 0 ? 0 : 2;
  }
  /* Every thread created from here on inherits this mask; main waits. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (s.cfg.log_path) {
    s.log = strcmp(s.cfg.log_path, "-") ? fopen(s.cfg.log_path, "a") : stderr;
    if (!s.log) {
      fprintf(stderr, "tsesim-sim: cannot open the log '%s': %s\n", s.cfg.log_path,
              strerror(errno));
      sim_config_free(&s.cfg);
      return 1;
    }
  }
  pthread_mutex_init(&s.mu, NULL);
  pthread_mutex_init(&s.log_mu, NULL);
  s.eids = sim_eids_new();
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(s.deliver = sim_deliver_start(&s))) {
    fprintf(stderr, "tsesim-sim: cannot start libcurl\n");
    return 1;
  }
  char err[512];
  unsigned port = 0;
  struct MHD_Daemon *d = sim_http_start(&s, &port, err, sizeof err);
  if (!d) {
    fprintf(stderr, "tsesim-sim: %s\n", err);
    sim_deliver_stop(s.deliver, 0);
    curl_global_cleanup();
    sim_eids_free(s.eids);
    sim_config_free(&s.cfg);
    return 1;
  }
  int v6 = strchr(s.cfg.bind, ':') != NULL;
  printf("tsesim-sim: serving %s://%s%s%s:%u/api\n", s.tls ? "https" : "http", v6 ? "[" : "",
         s.cfg.bind, v6 ? "]" : "", port);
  fflush(stdout);
  sim_log(&s, "start port=%u tls=%s", port, s.tls ? "yes" : "no");
  int status = 0;
  if (s.cfg.port_file && write_port_file(s.cfg.port_file, port)) {
    status = 1;
  } else {
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    sim_log(&s, "signal %d: stopping (%s pending callbacks)", sig,
            s.cfg.on_term_finish ? "finishing" : "abandoning");
  }
  sim_http_stop(d);
  sim_deliver_stop(s.deliver, status == 0 && s.cfg.on_term_finish);
  sim_buf b = {0};
  s.deliver = NULL;
  sim_stats_to_json(&s, &b);
  sim_log(&s, "stopped: %s", b.p);
  sim_buf_free(&b);
  curl_global_cleanup();
  for (size_t i = 0; i < s.n_sessions; i++)
    tsesim__memzero(s.sessions[i].token, sizeof s.sessions[i].token);
  free(s.sessions);
  sim_eids_free(s.eids);
  sim_config_free(&s.cfg);
  if (s.log && s.log != stderr) fclose(s.log);
  return status;
}
