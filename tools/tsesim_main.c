/*
 * tsesim_main.c - the tsesim command: which command, and what the commands
 * share (options, the device file, the journal and its lock, the client
 * from the environment, the summary). tsesim(1); ../shared/CLI.md is the
 * contract.
 */
#define _GNU_SOURCE /* flock */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "tsesim_cli.h"

volatile sig_atomic_t cli_stop;

static void on_signal(int sig) {
  cli_stop = sig;
  signal(sig, SIG_DFL); /* a second one ends the process at once */
}

void cli_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: a wait returns early */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

void cli_err(const char *fmt, ...) {
  va_list ap;
  fputs("tsesim: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int cli_opt(int argc, char **argv, int *i, const char *name, const char **val) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (a[n] != '\0') return 0;
  if (*i + 1 >= argc) {
    cli_err("%s needs a value", name);
    return -1;
  }
  *val = argv[++*i];
  return 1;
}

int cli_flag(char **argv, int i, const char *name) { return strcmp(argv[i], name) == 0; }

int cli_number(const char *name, const char *s, long lo, long hi, long *out) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi) {
    cli_err("%s \"%s\": a whole number from %ld to %ld", name, s, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

int cli_read_devices(const char *file, const char *account, const char *plan, tsesim_request **req,
                     tsesim_rows **rows) {
  char err[TSESIM_ERRBUF_SIZE];
  size_t i;
  tsesim_code rc;
  *req = NULL;
  *rows = NULL;
  if (tsesim_request_new_v2(req, account, err) != TSESIM_OK) {
    cli_err("--account: %s", err);
    return EXIT_USAGE;
  }
  if (plan && tsesim_request_set_service_plan(*req, plan) != TSESIM_OK) {
    cli_err("--plan: %s", tsesim_request_errmsg(*req));
    goto fail;
  }
  if (strcmp(file, "-") == 0)
    rc = tsesim_rows_read_csv_fd(rows, *req, 0, "-", err);
  else
    rc = tsesim_rows_read_csv(rows, *req, file, err);
  if (rc != TSESIM_OK) {
    /* the reader names the path itself when it cannot read it */
    if (strncmp(err, file, strlen(file)) == 0)
      cli_err("%s", err);
    else
      cli_err("%s: %s", file, err);
    goto fail;
  }
  for (i = 0; i < tsesim_rows_count(*rows); i++) {
    const tsesim_row *r = tsesim_rows_get(*rows, i);
    if (r->error) fprintf(stderr, "%s:%lu: %s\n", file, r->line, r->error);
  }
  return 0;
fail:
  tsesim_request_free(*req);
  *req = NULL;
  return EXIT_USAGE;
}

int cli_journal_open(cli_journal *cj, const char *path, int must_exist, int lock) {
  char err[TSESIM_ERRBUF_SIZE];
  cj->j = NULL;
  cj->lock_fd = -1;
  cj->path = path;
  if (must_exist && access(path, F_OK) != 0) {
    cli_err("journal %s: %s (tsesim run makes it)", path, strerror(errno));
    return EXIT_USAGE;
  }
  if (lock) {
    /* flock, not fcntl: SQLite's own POSIX locks on the file are another
     * kind, and closing this descriptor (at the end) cannot drop them. */
    cj->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (cj->lock_fd < 0) {
      cli_err("journal %s: %s", path, strerror(errno));
      return EXIT_USAGE;
    }
    if (flock(cj->lock_fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        cli_err(
            "journal %s is in use by another tsesim run or listen: wait for it to end, "
            "or stop it (SIGTERM)",
            path);
      else
        cli_err("journal %s: cannot lock it: %s", path, strerror(errno));
      close(cj->lock_fd);
      cj->lock_fd = -1;
      return EXIT_USAGE;
    }
  }
  if (tsesim_journal_open(&cj->j, path, err) != TSESIM_OK) {
    cli_err("%s", err);
    cli_journal_close(cj);
    return EXIT_USAGE;
  }
  return 0;
}

void cli_journal_close(cli_journal *cj) {
  tsesim_journal_close(cj->j);
  cj->j = NULL;
  if (cj->lock_fd >= 0) close(cj->lock_fd);
  cj->lock_fd = -1;
}

/* HOST:PORT or [IPv6]:PORT. */
int cli_hostport(const char *s, char *host, size_t cap, unsigned *port) {
  const char *colon;
  size_t n;
  long p;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') goto bad;
    n = (size_t)(close - s - 1);
    colon = close + 1;
    s++;
  } else {
    colon = strrchr(s, ':');
    if (!colon || strchr(s, ':') != colon) goto bad;
    n = (size_t)(colon - s);
  }
  if (!n || n >= cap) goto bad;
  memcpy(host, s, n);
  host[n] = '\0';
  if (cli_number("--listen port", colon + 1, 0, 65535, &p)) return -1;
  *port = (unsigned)p;
  return 0;
bad:
  cli_err("--listen \"%s\": HOST:PORT, or [IPv6]:PORT", s);
  return -1;
}

static char *setting(cli_journal *cj, const char *key, int *failed) {
  char *v = NULL;
  if (tsesim_journal_get(cj->j, key, &v) != TSESIM_OK) {
    cli_err("%s", tsesim_journal_errmsg(cj->j));
    *failed = 1;
  }
  return v;
}

int cli_listener_start(cli_listener *cl, cli_journal *cj, const char *listen, const char *cert,
                       const char *key, const char *user, const char *password,
                       tsesim_callback_fn on_callback, void *payload) {
  tsesim_listener_options lo = TSESIM_LISTENER_OPTIONS_INIT;
  char err[TSESIM_ERRBUF_SIZE], num[16];
  int failed = 0;
  tsesim_code rc;
  memset(cl, 0, sizeof *cl);
  if ((cert == NULL) != (key == NULL)) {
    cli_err("%s is given without %s: HTTPS needs both", cert ? "--tls-cert" : "--tls-key",
            cert ? "--tls-key" : "--tls-cert");
    return EXIT_USAGE;
  }
  if (listen) {
    if (cli_hostport(listen, cl->host, sizeof cl->host, &cl->port)) return EXIT_USAGE;
  } else {
    char *a = setting(cj, SET_ADDRESS, &failed), *p = setting(cj, SET_PORT, &failed);
    long port = 0;
    snprintf(cl->host, sizeof cl->host, "%s", a ? a : "127.0.0.1");
    if (p && cli_number("the journal's listener port", p, 0, 65535, &port)) failed = 1;
    cl->port = (unsigned)port;
    tsesim_free(a);
    tsesim_free(p);
    if (failed) return EXIT_USAGE;
  }
  lo.journal = cj->path;
  lo.address = cl->host;
  lo.port = cl->port;
  lo.username = user;
  lo.password = password;
  lo.tls_cert_file = cert;
  lo.tls_key_file = key;
  lo.on_callback = on_callback;
  lo.callback_payload = payload;
  rc = tsesim_listener_start(&cl->l, &lo, err);
  if (rc != TSESIM_OK) {
    cli_err("cannot listen on %s%s%s:%u: %s", strchr(cl->host, ':') ? "[" : "", cl->host,
            strchr(cl->host, ':') ? "]" : "", cl->port, err);
    return EXIT_USAGE;
  }
  cl->port = tsesim_listener_port(cl->l);
  snprintf(cl->local_url, sizeof cl->local_url, "%s://%s%s%s:%u/callbacks", cert ? "https" : "http",
           strchr(cl->host, ':') ? "[" : "", cl->host, strchr(cl->host, ':') ? "]" : "", cl->port);
  /* A listener restarted after a crash binds this port again: ThingSpace
   * keeps delivering to the URL it was given. */
  snprintf(num, sizeof num, "%u", cl->port);
  if (tsesim_journal_set(cj->j, SET_ADDRESS, cl->host) != TSESIM_OK ||
      tsesim_journal_set(cj->j, SET_PORT, num) != TSESIM_OK) {
    cli_err("%s", tsesim_journal_errmsg(cj->j));
    tsesim_listener_stop(cl->l);
    cl->l = NULL;
    return EXIT_USAGE;
  }
  return 0;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

int cli_client(tsesim_client **out) {
  static const char *const need[] = {"TSESIM_CLIENT_ID", "TSESIM_CLIENT_SECRET", "TSESIM_USERNAME",
                                     "TSESIM_PASSWORD"};
  static const char *const why[] = {"the OAuth client key", "the OAuth client secret",
                                    "the M2M user", "the M2M user's password"};
  tsesim_options o = TSESIM_OPTIONS_INIT;
  char err[TSESIM_ERRBUF_SIZE];
  size_t i;
  *out = NULL;
  for (i = 0; i < sizeof need / sizeof need[0]; i++)
    if (!env(need[i])) {
      cli_err("%s is not set: export it (%s; see tsesim(1), ENVIRONMENT)", need[i], why[i]);
      return EXIT_USAGE;
    }
  o.base_url = env("TSESIM_BASE_URL");
  o.client_id = env("TSESIM_CLIENT_ID");
  o.client_secret = env("TSESIM_CLIENT_SECRET");
  o.username = env("TSESIM_USERNAME");
  o.password = env("TSESIM_PASSWORD");
  o.ca_file = env("TSESIM_CA_FILE");
  o.proxy = env("TSESIM_PROXY");
  o.user_agent = "tsesim";
  if (tsesim_client_new_v2(out, &o, err) != TSESIM_OK) {
    /* err names the option; say which variable set it */
    static const struct {
      const char *opt, *var;
    } map[] = {{"base_url", "TSESIM_BASE_URL"},
               {"client_id", "TSESIM_CLIENT_ID"},
               {"client_secret", "TSESIM_CLIENT_SECRET"},
               {"username", "TSESIM_USERNAME"},
               {"password", "TSESIM_PASSWORD"},
               {"ca_file", "TSESIM_CA_FILE"},
               {"proxy", "TSESIM_PROXY"}};
    const char *var = NULL;
    for (i = 0; i < sizeof map / sizeof map[0]; i++)
      if (strncmp(err, map[i].opt, strlen(map[i].opt)) == 0 && err[strlen(map[i].opt)] == ':')
        var = map[i].var;
    if (var)
      cli_err("%s: %s", var, err + strcspn(err, ":") + 2);
    else
      cli_err("%s", err);
    return EXIT_USAGE;
  }
  return 0;
}

int cli_client_fail(tsesim_client *c, tsesim_code rc, const char *what) {
  const tsesim_api_error *e = tsesim_client_last_error(c);
  if (rc == TSESIM_E_AUTH) {
    cli_err(
        "%s: credentials refused: %s; check TSESIM_CLIENT_ID, TSESIM_CLIENT_SECRET, "
        "TSESIM_USERNAME and TSESIM_PASSWORD (ThingSpace locks a user after 5 failed "
        "logins: no further attempt was made)",
        what, tsesim_client_errmsg(c));
    return EXIT_AUTH;
  }
  /* A 4xx answer other than 429 is a request ThingSpace will not take:
   * the configuration (account, URL) is at fault. The rest may pass later. */
  if ((rc == TSESIM_E_API && e && e->http_status >= 400 && e->http_status < 500 &&
       e->http_status != 429) ||
      rc == TSESIM_E_INVAL || rc == TSESIM_E_NOMEM) {
    cli_err("%s: %s: %s; check --account, --public-url and TSESIM_BASE_URL", what,
            tsesim_code_name(rc), tsesim_client_errmsg(c));
    return EXIT_USAGE;
  }
  cli_err(
      "%s: %s: %s; ThingSpace could not be reached or did not answer: run the same command "
      "again later",
      what, tsesim_code_name(rc), tsesim_client_errmsg(c));
  return EXIT_UNFINISHED;
}

void cli_summary(const tsesim_job_counts *c) {
  printf("devices %lu success %lu failed %lu unknown %lu refused %lu pending %lu invalid %lu\n",
         (unsigned long)c->devices, (unsigned long)c->success, (unsigned long)c->failed,
         (unsigned long)c->unknown, (unsigned long)c->refused,
         (unsigned long)(c->queued + c->submitted + c->warning), (unsigned long)c->invalid);
  fflush(stdout);
}

int cli_counts_status(const tsesim_job_counts *c) {
  if (c->queued + c->submitted + c->warning + c->unknown) return EXIT_UNFINISHED;
  if (c->invalid + c->failed + c->refused) return EXIT_SOME_BAD;
  return EXIT_ALL_SUCCESS;
}

static void usage(FILE *f) {
  fputs(
      "usage: tsesim validate FILE\n"
      "       tsesim run --journal DB --account NAME [--plan PLAN] [--listen HOST:PORT]\n"
      "                  [--public-url URL] [--tls-cert FILE --tls-key FILE]\n"
      "                  [--chunk-size N] [--in-flight K] [--wait SECONDS]\n"
      "                  [--resend-unknown] [--no-register] [--quiet] FILE\n"
      "       tsesim listen --journal DB [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]\n"
      "       tsesim status --journal DB [--json] [--failed]\n"
      "       tsesim register --journal DB --account NAME [--public-url URL]\n"
      "       tsesim unregister --account NAME\n"
      "       tsesim --version | --help\n"
      "Configuration comes from the environment only (TSESIM_CLIENT_ID, ...): see tsesim(1).\n",
      f);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } cmds[] = {{"validate", cmd_validate}, {"run", cmd_run},
              {"listen", cmd_listen},     {"status", cmd_status},
              {"register", cmd_register}, {"unregister", cmd_unregister}};
  size_t i;
  int rc;
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    unsigned v = tsesim_version();
    printf("tsesim %s (libtsesim %u.%u.%u)\n", TSESIM_VERSION_STR, v >> 16, (v >> 8) & 0xff,
           v & 0xff);
    return 0;
  }
  for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(argv[1], cmds[i].name)) {
      if (tsesim_global_init() != TSESIM_OK) {
        cli_err("cannot initialise the library (libcurl)");
        return EXIT_USAGE;
      }
      rc = cmds[i].fn(argc - 1, argv + 1);
      tsesim_global_cleanup();
      return rc;
    }
  cli_err("unknown command \"%s\"", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
