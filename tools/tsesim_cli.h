/*
 * tsesim_cli.h - the tsesim command (tsesim(1), ../shared/CLI.md): what its
 * files share. The command is a thin layer over the library: it reads the
 * environment and the options, and prints; the jobs, the journal, the
 * listener and the tracker do the work.
 */
#ifndef TSESIM_CLI_H
#define TSESIM_CLI_H

#include <signal.h>
#include <stddef.h>

#include "tsesim.h"

/* Exit statuses (CLI.md): the first that applies. */
enum {
  EXIT_ALL_SUCCESS = 0,
  EXIT_SOME_BAD = 1,
  EXIT_USAGE = 2,
  EXIT_UNFINISHED = 3,
  EXIT_AUTH = 4
};

#define JOB_NAME "tsesim" /* the one job of a journal the command makes */

/* The journal's settings the command keeps (tsesim-journal(5)). */
#define SET_ADDRESS "listener.address"
#define SET_PORT "listener.port"
#define SET_URL "listener.url"
#define SET_USERNAME "listener.username"
#define SET_PASSWORD "listener.password"

/* Set by SIGINT and SIGTERM while a command runs (cli_signals). */
extern volatile sig_atomic_t cli_stop;
void cli_signals(void);

/* "tsesim: " and the message on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Options: argv[*i] is "--name" or "--name=value"; the value goes to *val
 * (the next argument when there is no '='). 1: it matched; 0: not this
 * option; -1: the value is missing (reported). */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **val);
int cli_flag(char **argv, int i, const char *name);
/* A number in lo..hi for option name; -1 (reported) when it is not. */
int cli_number(const char *name, const char *s, long lo, long hi, long *out);
/* --listen's HOST:PORT or [IPv6]:PORT; -1 (reported) when it is neither. */
int cli_hostport(const char *s, char *host, size_t cap, unsigned *port);

/* The device file: every data row into req and *rows, the bad rows named
 * on stderr as FILE:LINE: reason. "-" is standard input. EXIT_USAGE for a
 * file that cannot be read or is not a device file (reported), else 0. */
int cli_read_devices(const char *file, const char *account, const char *plan, tsesim_request **req,
                     tsesim_rows **rows);

/* The journal: opens path (created by run only: must_exist 0), and with
 * lock takes the lock that keeps a second run or listen off it. The lock's
 * descriptor stays open until cli_journal_close. EXIT_USAGE (reported). */
typedef struct cli_journal {
  tsesim_journal *j;
  int lock_fd;
  const char *path;
} cli_journal;
int cli_journal_open(cli_journal *cj, const char *path, int must_exist, int lock);
void cli_journal_close(cli_journal *cj);

/* The listener, as run and listen start it: HOST:PORT from listen (NULL:
 * the journal's recorded address and port, else 127.0.0.1:0), credentials
 * from the journal, TLS files. Records the address and port it bound.
 * EXIT_USAGE (reported). */
typedef struct cli_listener {
  tsesim_listener *l;
  char host[256];
  unsigned port;
  char local_url[320]; /* http(s)://HOST:PORT/callbacks */
} cli_listener;
int cli_listener_start(cli_listener *cl, cli_journal *cj, const char *listen, const char *cert,
                       const char *key, const char *user, const char *password,
                       tsesim_callback_fn on_callback, void *payload);

/* The client from the environment; EXIT_USAGE naming the variable that is
 * missing or wrong (reported). */
int cli_client(tsesim_client **out);
/* The exit status for a client call that failed (reported with what). */
int cli_client_fail(tsesim_client *c, tsesim_code rc, const char *what);

/* The summary line on stdout, and the exit status the counts give. */
void cli_summary(const tsesim_job_counts *c);
int cli_counts_status(const tsesim_job_counts *c);

/* Progress on stderr (tsesim_progress.c). */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_new(const char *journal_path, int quiet, size_t devices);
tsesim_progress_fn cli_progress_fn(void);
void cli_progress_tick(cli_progress *p, int force); /* the periodic line */
void cli_progress_done(cli_progress *p);            /* ends the terminal line */
void cli_progress_free(cli_progress *p);

int cmd_validate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_register(int argc, char **argv);
int cmd_unregister(int argc, char **argv);

#endif
