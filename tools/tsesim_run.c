/*
 * tsesim_run.c - tsesim run: the whole job, resumable (CLI.md, "run").
 * 1. the journal records the job (or must hold the same one);
 * 2. the listener starts on the recorded port, and its URL is registered;
 * 3. the job submits the queued chunks (tsesim_job_submit);
 * 4. callbacks are awaited until every sent device is final, or --wait.
 * SIGINT/SIGTERM: no new chunk starts, the listener drains, exit 3.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tsesim_cli.h"

typedef struct run_opts {
  const char *journal, *account, *plan, *listen, *public_url, *cert, *key, *file;
  long chunk_size, in_flight, wait_s;
  int resend_unknown, quiet, no_register;
} run_opts;

static int parse(int argc, char **argv, run_opts *o) {
  int i, m;
  const char *v;
  memset(o, 0, sizeof *o);
  o->in_flight = 4;
  o->wait_s = 3600;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || !strcmp(a, "-")) {
      if (o->file) {
        cli_err("run: one FILE only (got \"%s\" and \"%s\")", o->file, a);
        return -1;
      }
      o->file = a;
      continue;
    }
    if ((m = cli_opt(argc, argv, &i, "--journal", &o->journal)) ||
        (m = cli_opt(argc, argv, &i, "--account", &o->account)) ||
        (m = cli_opt(argc, argv, &i, "--plan", &o->plan)) ||
        (m = cli_opt(argc, argv, &i, "--listen", &o->listen)) ||
        (m = cli_opt(argc, argv, &i, "--public-url", &o->public_url)) ||
        (m = cli_opt(argc, argv, &i, "--tls-cert", &o->cert)) ||
        (m = cli_opt(argc, argv, &i, "--tls-key", &o->key))) {
      if (m < 0) return -1;
    } else if ((m = cli_opt(argc, argv, &i, "--chunk-size", &v)) != 0) {
      if (m < 0 || cli_number("--chunk-size", v, 1, TSESIM_MAX_DEVICES_PER_REQUEST, &o->chunk_size))
        return -1;
    } else if ((m = cli_opt(argc, argv, &i, "--in-flight", &v)) != 0) {
      if (m < 0 || cli_number("--in-flight", v, 1, 64, &o->in_flight)) return -1;
    } else if ((m = cli_opt(argc, argv, &i, "--wait", &v)) != 0) {
      if (m < 0 || cli_number("--wait", v, 0, 365L * 86400, &o->wait_s)) return -1;
    } else if (cli_flag(argv, i, "--resend-unknown")) {
      o->resend_unknown = 1;
    } else if (cli_flag(argv, i, "--quiet") || cli_flag(argv, i, "-q")) {
      o->quiet = 1;
    } else if (cli_flag(argv, i, "--no-register")) {
      o->no_register = 1;
    } else {
      cli_err("run: unknown option %s (see tsesim --help)", a);
      return -1;
    }
  }
  if (o->listen) { /* checked before anything is made */
    char host[256];
    unsigned port;
    if (cli_hostport(o->listen, host, sizeof host, &port)) return -1;
    if (!o->public_url && (!strcmp(host, "0.0.0.0") || !strcmp(host, "::"))) {
      cli_err(
          "--listen %s: ThingSpace cannot reach a wildcard address: give --public-url, the "
          "URL it reaches this listener at",
          o->listen);
      return -1;
    }
  }
  if (!o->journal || !o->account || !o->file) {
    cli_err("run: %s is missing (usage: tsesim run --journal DB --account NAME [options] FILE)",
            !o->journal   ? "--journal DB"
            : !o->account ? "--account NAME"
                          : "FILE");
    return -1;
  }
  return 0;
}

/* At least 128 bits from the kernel, as hex. */
static int random_hex(char *out, size_t bytes) {
  unsigned char b[32];
  size_t i, got = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || bytes > sizeof b) return -1;
  while (got < bytes) {
    ssize_t n = read(fd, b + got, bytes - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    got += (size_t)n;
  }
  close(fd);
  for (i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
  return 0;
}

/* The listener credentials: the journal's (ThingSpace still echoes those),
 * else the environment's, else random ones; kept in the journal before the
 * listener starts. */
static int credentials(cli_journal *cj, char **user, char **password) {
  const char *eu = getenv("TSESIM_LISTENER_USERNAME"), *ep = getenv("TSESIM_LISTENER_PASSWORD");
  char ru[64], rp[64];
  if (eu && !*eu) eu = NULL;
  if (ep && !*ep) ep = NULL;
  if (tsesim_journal_get(cj->j, SET_USERNAME, user) != TSESIM_OK ||
      tsesim_journal_get(cj->j, SET_PASSWORD, password) != TSESIM_OK) {
    cli_err("%s", tsesim_journal_errmsg(cj->j));
    return EXIT_USAGE;
  }
  if (*user && *password) {
    /* never the values: they are secrets */
    if ((eu && strcmp(eu, *user) != 0) || (ep && strcmp(ep, *password) != 0)) {
      cli_err(
          "%s differs from the listener credentials journal %s keeps, and ThingSpace still "
          "echoes those: unset it to resume this job, or use a new journal",
          eu && strcmp(eu, *user) != 0 ? "TSESIM_LISTENER_USERNAME" : "TSESIM_LISTENER_PASSWORD",
          cj->path);
      return EXIT_USAGE;
    }
    return 0;
  }
  tsesim_free(*user);
  tsesim_free(*password);
  *user = *password = NULL;
  if ((eu != NULL) != (ep != NULL)) {
    cli_err("%s is set without %s: set both, or neither for random ones",
            eu ? "TSESIM_LISTENER_USERNAME" : "TSESIM_LISTENER_PASSWORD",
            eu ? "TSESIM_LISTENER_PASSWORD" : "TSESIM_LISTENER_USERNAME");
    return EXIT_USAGE;
  }
  if (!eu) {
    strcpy(ru, "tsesim-");
    if (random_hex(ru + 7, 8) || random_hex(rp, 24)) {
      cli_err("cannot read /dev/urandom for the listener credentials");
      return EXIT_USAGE;
    }
    eu = ru;
    ep = rp;
  }
  if (tsesim_journal_set(cj->j, SET_USERNAME, eu) != TSESIM_OK ||
      tsesim_journal_set(cj->j, SET_PASSWORD, ep) != TSESIM_OK ||
      tsesim_journal_get(cj->j, SET_USERNAME, user) != TSESIM_OK ||
      tsesim_journal_get(cj->j, SET_PASSWORD, password) != TSESIM_OK) {
    cli_err("%s", tsesim_journal_errmsg(cj->j));
    return EXIT_USAGE;
  }
  memset(rp, 0, sizeof rp);
  return 0;
}

static int stop_asked(void *payload) {
  (void)payload;
  return cli_stop != 0;
}

int cmd_run(int argc, char **argv) {
  run_opts o;
  tsesim_request *req = NULL;
  tsesim_rows *rows = NULL;
  tsesim_client *client = NULL;
  tsesim_job_options jo = TSESIM_JOB_OPTIONS_INIT;
  tsesim_job_counts c;
  cli_journal cj = {NULL, -1, NULL};
  cli_listener cl;
  cli_progress *prog = NULL;
  char *user = NULL, *password = NULL, *url = NULL;
  int rc, auth = 0, unreachable = 0;
  tsesim_code trc;
  struct timespec t0, t1;

  clock_gettime(CLOCK_MONOTONIC, &t0);
  memset(&cl, 0, sizeof cl);
  if (parse(argc, argv, &o)) return EXIT_USAGE;
  if ((o.cert == NULL) != (o.key == NULL)) {
    cli_err("%s is given without %s: HTTPS needs both", o.cert ? "--tls-cert" : "--tls-key",
            o.cert ? "--tls-key" : "--tls-cert");
    return EXIT_USAGE;
  }
  cli_signals();
  /* the configuration first: nothing is read or made before it holds */
  if ((rc = cli_client(&client)) != 0) goto out;
  if ((rc = cli_read_devices(o.file, o.account, o.plan, &req, &rows)) != 0) goto out;

  /* 1. The journal: this job, or the same one again. */
  if ((rc = cli_journal_open(&cj, o.journal, 0, 1)) != 0) goto out;
  if (tsesim_job_count(cj.j, JOB_NAME, &c) != TSESIM_OK &&
      tsesim_job_count(cj.j, NULL, &c) == TSESIM_OK) {
    cli_err("journal %s holds a job that tsesim run did not make: use a new journal", o.journal);
    rc = EXIT_USAGE;
    goto out;
  }
  jo.chunk_size = (size_t)o.chunk_size;
  jo.rows = rows;
  if (tsesim_job_record(cj.j, JOB_NAME, req, &jo) != TSESIM_OK) {
    cli_err(
        "journal %s: %s: it holds another job (other devices, account, plan or chunk size "
        "than these): run the same command as the one that made it, or use a new journal",
        o.journal, tsesim_journal_errmsg(cj.j));
    rc = EXIT_USAGE;
    goto out;
  }
  if (o.chunk_size && o.chunk_size < TSESIM_MAX_DEVICES_PER_REQUEST &&
      tsesim_request_device_count(req) > (size_t)o.chunk_size * 10) {
    size_t n = tsesim_request_device_count(req);
    fprintf(stderr,
            "tsesim: advice: --chunk-size %ld makes %lu download calls for %lu devices; the "
            "default, 10000, would make %lu (ThingSpace limits the rate of calls, not their "
            "size)\n",
            o.chunk_size, (unsigned long)((n + (size_t)o.chunk_size - 1) / (size_t)o.chunk_size),
            (unsigned long)n, (unsigned long)((n + 9999) / 10000));
  }

  /* 2. The listener, and its URL registered. */
  if ((rc = credentials(&cj, &user, &password)) != 0) goto out;
  if ((rc = cli_listener_start(&cl, &cj, o.listen, o.cert, o.key, user, password, NULL, NULL)))
    goto out;
  if (o.public_url) {
    url = strdup(o.public_url);
  } else if (!o.listen) { /* the URL ThingSpace was given before, if any */
    char *rec = NULL;
    if (tsesim_journal_get(cj.j, SET_URL, &rec) == TSESIM_OK && rec) url = strdup(rec);
    tsesim_free(rec);
  }
  if (!url) url = strdup(cl.local_url);
  if (!url || tsesim_journal_set(cj.j, SET_URL, url) != TSESIM_OK) {
    cli_err("%s", url ? tsesim_journal_errmsg(cj.j) : "out of memory");
    rc = EXIT_USAGE;
    goto out;
  }
  if (!o.quiet) fprintf(stderr, "tsesim: listening on %s, callbacks to %s\n", cl.local_url, url);
  if (!o.no_register) {
    trc = tsesim_client_register_callback(client, o.account, NULL, url, user, password);
    if (trc != TSESIM_OK) {
      rc = cli_client_fail(client, trc, "registering the listener");
      goto drain;
    }
  }

  /* 3. Submission. */
  prog = cli_progress_new(o.journal, o.quiet, tsesim_request_device_count(req));
  jo.in_flight = (unsigned)o.in_flight;
  jo.resend_unknown = o.resend_unknown;
  jo.progress_fn = cli_progress_fn();
  jo.progress_payload = prog;
  jo.stop_fn = stop_asked;
  trc = cli_stop ? TSESIM_E_CANCELLED : tsesim_job_submit(client, cj.j, JOB_NAME, req, &jo);
  switch (trc) {
    case TSESIM_OK:
    case TSESIM_E_API:             /* refused chunks: the counts say */
    case TSESIM_E_UNKNOWN_OUTCOME: /* the callbacks may still resolve them */
      break;
    case TSESIM_E_AUTH:
      auth = 1;
      cli_progress_done(prog);
      cli_client_fail(client, trc, "submitting");
      break;
    case TSESIM_E_INVAL:
    case TSESIM_E_NOMEM:
    case TSESIM_E_JOURNAL:
      cli_progress_done(prog);
      cli_err("%s", tsesim_client_errmsg(client));
      rc = EXIT_USAGE;
      goto drain;
    case TSESIM_E_CANCELLED:
      break;
    default: /* chunks left queued: ThingSpace could not be reached, or kept refusing (429/503) */
      unreachable = 1;
      cli_progress_done(prog);
      cli_err("%s: %s; run the same command again to continue", tsesim_code_name(trc),
              tsesim_client_errmsg(client));
      break;
  }

  /* 4. The callbacks, until every device sent is final or --wait passes. */
  if (!auth && !cli_stop) {
    long long left_ms = o.wait_s * 1000LL;
    for (;;) {
      long slice = prog && !o.quiet && isatty(2) ? 200 : 1000;
      struct timespec a, b;
      if (slice > left_ms) slice = (long)left_ms;
      clock_gettime(CLOCK_MONOTONIC, &a);
      trc = tsesim_job_wait(cj.j, JOB_NAME, slice, NULL);
      clock_gettime(CLOCK_MONOTONIC, &b);
      if (trc != TSESIM_OK && trc != TSESIM_E_TIMEOUT) {
        cli_err("%s", tsesim_journal_errmsg(cj.j));
        rc = EXIT_USAGE;
        goto drain;
      }
      cli_progress_tick(prog, 0);
      if (trc == TSESIM_OK || cli_stop) break;
      left_ms -= (b.tv_sec - a.tv_sec) * 1000LL + (b.tv_nsec - a.tv_nsec) / 1000000;
      if (left_ms <= 0) break;
    }
  }
  cli_progress_done(prog);
  rc = -1;

drain:
  tsesim_listener_stop(cl.l); /* every callback answered 200 is committed */
  cl.l = NULL;
  if (rc == -1 || rc == EXIT_AUTH || rc == EXIT_UNFINISHED) {
    if (tsesim_job_count(cj.j, JOB_NAME, &c) != TSESIM_OK) {
      cli_err("%s", tsesim_journal_errmsg(cj.j));
      rc = EXIT_USAGE;
      goto out;
    }
    if (rc == -1 && !o.quiet) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      fprintf(stderr, "tsesim: %s after %.1f s%s\n", cli_stop ? "stopped by a signal" : "done",
              (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
              cli_stop ? ": run the same command again to continue" : "");
    }
    cli_summary(&c);
    if (rc == -1) {
      rc = cli_counts_status(&c);
      if (auth)
        rc = EXIT_AUTH;
      else if ((unreachable || cli_stop) && rc != EXIT_UNFINISHED)
        rc = EXIT_UNFINISHED;
    }
  }
out:
  tsesim_listener_stop(cl.l);
  cli_progress_free(prog);
  cli_journal_close(&cj);
  if (password) memset(password, 0, strlen(password));
  tsesim_free(user);
  tsesim_free(password);
  free(url);
  tsesim_client_free(client);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  return rc;
}
