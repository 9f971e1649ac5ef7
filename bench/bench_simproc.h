/*
 * bench_simproc.h - a tsesim-sim process for the benchmarks that talk HTTP:
 * started on a free port (read from its port file), its memory read from
 * /proc.
 */
#ifndef BENCH_SIMPROC_H
#define BENCH_SIMPROC_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t sim_pid;
static char base[64]; /* "http://127.0.0.1:PORT" */

static inline void die(const char *what) {
  fprintf(stderr, "bench_sim: %s\n", what);
  exit(2);
}

/* Starts prog on a free port, with one more option opt (NULL: none, such
 * as "--no-callbacks") and workers concurrent callback deliveries, and
 * waits for its port file; sets base. */
static inline void sim_start_workers(const char *prog, const char *dir, const char *opt,
                                     int workers) {
  char portfile[4096], port[16] = "";
  snprintf(portfile, sizeof portfile, "%s/bench-sim-port.%ld", dir, (long)getpid());
  remove(portfile);
  sim_pid = fork();
  if (sim_pid == 0) {
    char w[16];
    snprintf(w, sizeof w, "%d", workers);
    execl(prog, prog, "--port", "0", "--port-file", portfile, "--callback-workers", w, opt,
          (char *)NULL); /* opt NULL ends the list there */
    _exit(127);
  }
  for (int i = 0; i < 2000; i++) {
    FILE *f = fopen(portfile, "r");
    if (f) {
      if (!fgets(port, sizeof port, f)) port[0] = '\0';
      fclose(f);
      break;
    }
    if (waitpid(sim_pid, NULL, WNOHANG) == sim_pid) die("tsesim-sim exited at start");
    usleep(5000);
  }
  remove(portfile);
  if (!port[0]) die("tsesim-sim wrote no port file");
  port[strcspn(port, "\n")] = '\0';
  snprintf(base, sizeof base, "http://127.0.0.1:%s", port);
}

/* As sim_start_workers, with 8 deliveries at a time. */
/* At exit: the simulator stopped, and the scratch directory dir (a mkdtemp
 * template: left alone while it still ends in XXXXXX, not made yet) removed
 * with all it holds. who names the bench in a message. */
static inline void sim_cleanup(const char *dir, const char *who) {
  char cmd[160];
  size_t n = strlen(dir);
  if (sim_pid > 0) {
    kill(sim_pid, SIGTERM);
    waitpid(sim_pid, NULL, 0);
    sim_pid = 0;
  }
  if (n >= 6 && strcmp(dir + n - 6, "XXXXXX") != 0) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "%s: cannot remove %s\n", who, dir);
  }
}

/* A libcurl write function that appends an answer to a 4096-byte,
 * NUL-terminated buffer (the simulator's /_sim/stats), cutting the rest. */
static inline size_t sim_stats_write(char *p, size_t size, size_t n, void *u) {
  char *buf = u;
  size_t have = strlen(buf), add = size * n;
  if (have + add >= 4096) add = 4095 - have;
  memcpy(buf + have, p, add);
  buf[have + add] = '\0';
  return size * n;
}

static inline void sim_start_opt(const char *prog, const char *dir, const char *opt) {
  sim_start_workers(prog, dir, opt, 8);
}

/* Starts prog on a free port and waits for its port file; sets base. */
static inline void sim_start(const char *prog, const char *dir) { sim_start_opt(prog, dir, NULL); }

static inline long sim_kib(const char *field) {
  char path[64], line[256];
  long kib = -1;
  snprintf(path, sizeof path, "/proc/%ld/status", (long)sim_pid);
  FILE *f = fopen(path, "r");
  if (!f) die("cannot read the simulator's /proc status");
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, field, strlen(field))) kib = atol(line + strlen(field) + 1);
  fclose(f);
  return kib;
}

#endif /* BENCH_SIMPROC_H */
