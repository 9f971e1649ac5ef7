/*
 * tsesim_progress.c - run's progress on stderr. On a terminal: one line
 * rewritten in place (submitted of the total, callbacks, final, rate,
 * ETA), a few times a second. Otherwise: one line per chunk outcome and a
 * line every 10 s, for logs. The counts come from the tracker, through a
 * connection of their own to the journal, so they are those the journal
 * holds whoever stores the callbacks.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tsesim_cli.h"

struct cli_progress {
  tsesim_journal *j; /* NULL: no counts (the line shows what the job says) */
  int quiet, tty, shown;
  size_t devices, submitted;
  double start, last;
};

static cli_progress *current; /* the job's progress_fn has one payload: this */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

cli_progress *cli_progress_new(const char *journal_path, int quiet, size_t devices) {
  cli_progress *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->quiet = quiet;
  p->tty = isatty(2);
  p->devices = devices;
  p->start = p->last = now_s();
  if (!quiet && tsesim_journal_open(&p->j, journal_path, NULL) != TSESIM_OK) p->j = NULL;
  current = p;
  return p;
}

void cli_progress_tick(cli_progress *p, int force) {
  tsesim_job_counts c;
  double t = now_s(), rate;
  size_t fin, left;
  char eta[32];
  if (!p || p->quiet) return;
  if (!force && t - p->last < (p->tty ? 0.2 : 10.0)) return;
  p->last = t;
  memset(&c, 0, sizeof c);
  if (p->j) tsesim_job_count(p->j, JOB_NAME, &c);
  fin = c.success + c.failed;
  /* the devices the job sent (submitted and beyond), as the tracker sees them */
  if (c.devices) p->submitted = c.submitted + c.warning + c.success + c.failed + c.unknown;
  rate = t > p->start ? (double)fin / (t - p->start) : 0;
  left = p->devices > fin ? p->devices - fin : 0;
  if (rate > 0 && left)
    snprintf(eta, sizeof eta, "%.0fs", (double)left / rate);
  else
    snprintf(eta, sizeof eta, "%s", left ? "--" : "0s");
  if (p->tty) {
    fprintf(stderr,
            "\rsubmitted %lu/%lu devices  callbacks %lu  final %lu  %.0f dev/s  ETA %s\033[K",
            (unsigned long)p->submitted, (unsigned long)p->devices, c.callbacks, (unsigned long)fin,
            rate, eta);
    p->shown = 1;
  } else {
    fprintf(stderr,
            "tsesim: progress: submitted %lu/%lu devices, callbacks %lu, final %lu, %.0f "
            "devices/s, ETA %s\n",
            (unsigned long)p->submitted, (unsigned long)p->devices, c.callbacks, (unsigned long)fin,
            rate, eta);
  }
  fflush(stderr);
}

/* The job's progress function: a chunk changed, or a periodic report. */
static void on_progress(const tsesim_job_progress *jp, void *payload) {
  cli_progress *p = payload ? payload : current;
  if (!p || p->quiet) return;
  if (jp->accepted + jp->unknown + jp->refused > p->submitted)
    p->submitted = jp->accepted + jp->unknown + jp->refused;
  if (jp->chunk >= 0 && strcmp(jp->state, "sending") != 0 && !p->tty) {
    if (jp->request_id)
      fprintf(stderr, "tsesim: chunk %ld/%lu %s: requestId %s\n", jp->chunk + 1,
              (unsigned long)jp->chunks, jp->state, jp->request_id);
    else
      fprintf(stderr, "tsesim: chunk %ld/%lu %s: %s\n", jp->chunk + 1, (unsigned long)jp->chunks,
              jp->state, jp->error ? jp->error : "-");
    fflush(stderr);
  }
  cli_progress_tick(p, 0);
}

tsesim_progress_fn cli_progress_fn(void) { return on_progress; }

void cli_progress_done(cli_progress *p) {
  if (!p || p->quiet) return;
  cli_progress_tick(p, 1);
  if (p->tty && p->shown) fputc('\n', stderr);
  p->shown = 0;
  fflush(stderr);
}

void cli_progress_free(cli_progress *p) {
  if (!p) return;
  if (current == p) current = NULL;
  tsesim_journal_close(p->j);
  free(p);
}
