/*
 * sim_config.c - tsesim-sim's command line and config file. Both go through
 * one table of options, so a config file line "name = value" means exactly
 * "--name value".
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"
#include "tsesim.h"

typedef int (*opt_fn)(sim_config *cfg, const char *value, char *err, size_t errsize);

/* An option either has its own handler, or sets a field at off by kind. */
enum { OPT_FN, OPT_PATH, OPT_SECONDS, OPT_FLAG };

typedef struct opt {
  const char *name;
  int kind;   /* OPT_FLAG takes no value on the command line */
  opt_fn fn;  /* OPT_FN */
  size_t off; /* the field in sim_config, for the other kinds */
  const char *help;
} opt;

static char **split_list(const char *s, size_t *n) {
  char **v = NULL;
  *n = 0;
  while (s && *s) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len) {
      v = sim_xrealloc(v, (*n + 1) * sizeof *v);
      v[(*n)++] = sim_xstrndup(s, len);
    }
    s = e ? e + 1 : NULL;
  }
  return v;
}

static void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static int parse_seconds(const char *v, double *out, char *err, size_t errsize) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || d < 0 || d > 1e7) {
    snprintf(err, errsize, "'%s' is not a number of seconds (0 to 10000000)", v);
    return -1;
  }
  *out = d;
  return 0;
}

static int parse_uint(const char *v, unsigned long max, unsigned long *out, char *err,
                      size_t errsize) {
  char *end;
  errno = 0;
  if (*v < '0' || *v > '9') goto bad;
  unsigned long n = strtoul(v, &end, 10);
  if (errno || *end || n > max) goto bad;
  *out = n;
  return 0;
bad:
  snprintf(err, errsize, "'%s' is not a whole number from 0 to %lu", v, max);
  return -1;
}

static int set_str(char **dst, const char *v) {
  free(*dst);
  *dst = sim_xstrdup(v);
  return 0;
}

static int o_bind(sim_config *c, const char *v, char *err, size_t errsize) {
  if (strcmp(v, "localhost") && strcmp(v, "::1") && strncmp(v, "127.", 4)) {
    snprintf(err, errsize, "'%s' is not a loopback address (127.0.0.0/8, ::1, localhost)", v);
    return -1;
  }
  return set_str(&c->bind, strcmp(v, "localhost") ? v : "127.0.0.1");
}

static int o_port(sim_config *c, const char *v, char *err, size_t errsize) {
  unsigned long n;
  if (parse_uint(v, 65535, &n, err, errsize)) return -1;
  c->port = (unsigned)n;
  return 0;
}

static void clients_free(sim_config *c) {
  for (size_t i = 0; i < c->n_clients; i++) {
    free(c->clients[i].key);
    sim_free_secret(c->clients[i].secret);
  }
  free(c->clients);
  c->clients = NULL;
  c->n_clients = 0;
}

static void users_free(sim_config *c) {
  for (size_t i = 0; i < c->n_users; i++) {
    free(c->users[i].name);
    sim_free_secret(c->users[i].password);
    free_list(c->users[i].accounts, c->users[i].n_accounts);
  }
  free(c->users);
  c->users = NULL;
  c->n_users = 0;
}

static void accounts_free(sim_config *c) {
  for (size_t i = 0; i < c->n_accounts; i++) {
    sim_account *a = &c->accounts[i];
    free(a->name);
    free_list(a->plans, a->n_plans);
    while (a->listeners) {
      sim_listener *l = a->listeners;
      a->listeners = l->next;
      free(l->service);
      free(l->url);
      free(l->username);
      sim_free_secret(l->password);
      free(l);
    }
  }
  free(c->accounts);
  c->accounts = NULL;
  c->n_accounts = 0;
}

static int o_client(sim_config *c, const char *v, char *err, size_t errsize) {
  const char *colon = strchr(v, ':');
  if (!colon || colon == v || !colon[1]) { /* never the value: it may hold the secret */
    snprintf(err, errsize, "expected KEY:SECRET, both non-empty (the value is not shown)");
    return -1;
  }
  if (!c->clients_set) clients_free(c);
  c->clients_set = 1;
  c->clients = sim_xrealloc(c->clients, (c->n_clients + 1) * sizeof *c->clients);
  sim_client *cl = &c->clients[c->n_clients++];
  memset(cl, 0, sizeof *cl);
  cl->key = sim_xstrndup(v, (size_t)(colon - v));
  cl->secret = sim_xstrdup(colon + 1);
  return 0;
}

static int o_user(sim_config *c, const char *v, char *err, size_t errsize) {
  const char *c1 = strchr(v, ':');
  if (!c1 || c1 == v || !c1[1] || c1[1] == ':') {
    snprintf(err, errsize,
             "expected NAME:PASSWORD[:ACCOUNT[,ACCOUNT]...], both non-empty (the value is not "
             "shown)");
    return -1;
  }
  const char *c2 = strchr(c1 + 1, ':');
  if (!c->users_set) users_free(c);
  c->users_set = 1;
  c->users = sim_xrealloc(c->users, (c->n_users + 1) * sizeof *c->users);
  sim_user *u = &c->users[c->n_users++];
  memset(u, 0, sizeof *u);
  u->name = sim_xstrndup(v, (size_t)(c1 - v));
  u->password = c2 ? sim_xstrndup(c1 + 1, (size_t)(c2 - c1 - 1)) : sim_xstrdup(c1 + 1);
  if (c2) u->accounts = split_list(c2 + 1, &u->n_accounts);
  return 0;
}

static int o_account(sim_config *c, const char *v, char *err, size_t errsize) {
  const char *colon = strchr(v, ':');
  if (colon == v || !*v) {
    snprintf(err, errsize, "expected NAME[:PLAN[,PLAN]...]");
    return -1;
  }
  if (!c->accounts_set) accounts_free(c);
  c->accounts_set = 1;
  c->accounts = sim_xrealloc(c->accounts, (c->n_accounts + 1) * sizeof *c->accounts);
  sim_account *a = &c->accounts[c->n_accounts++];
  memset(a, 0, sizeof *a);
  a->name = colon ? sim_xstrndup(v, (size_t)(colon - v)) : sim_xstrdup(v);
  if (colon) a->plans = split_list(colon + 1, &a->n_plans);
  return 0;
}

static int o_cb_timeout(sim_config *c, const char *v, char *err, size_t es) {
  if (parse_seconds(v, &c->callback_timeout, err, es)) return -1;
  if (c->callback_timeout <= 0) {
    snprintf(err, es, "must be more than 0");
    return -1;
  }
  return 0;
}

static int o_lock_after(sim_config *c, const char *v, char *err, size_t es) {
  unsigned long n;
  if (parse_uint(v, 1000, &n, err, es)) return -1;
  if (!n) {
    snprintf(err, es, "must be at least 1");
    return -1;
  }
  c->lock_after = (unsigned)n;
  return 0;
}

static int o_workers(sim_config *c, const char *v, char *err, size_t es) {
  unsigned long n;
  if (parse_uint(v, 256, &n, err, es)) return -1;
  if (!n) {
    snprintf(err, es, "must be at least 1");
    return -1;
  }
  c->callback_workers = (unsigned)n;
  return 0;
}

static int o_on_term(sim_config *c, const char *v, char *err, size_t es) {
  if (!strcmp(v, "finish"))
    c->on_term_finish = 1;
  else if (!strcmp(v, "abandon"))
    c->on_term_finish = 0;
  else {
    snprintf(err, es, "'%s' is neither finish nor abandon", v);
    return -1;
  }
  return 0;
}

static int o_latency(sim_config *c, const char *v, char *err, size_t es) {
  unsigned long n;
  if (parse_uint(v, 600000, &n, err, es)) return -1;
  c->faults.latency_ms = (long)n;
  return 0;
}

/* Not a fault setting: /_sim/faults {} leaves it, so a test that changes
 * faults mid-run keeps the timing it started with. */
static int o_answer_latency(sim_config *c, const char *v, char *err, size_t es) {
  unsigned long n;
  if (parse_uint(v, 600000, &n, err, es)) return -1;
  c->answer_latency_ms = (long)n;
  return 0;
}

/* A size in bytes, with an optional K, M or G (KiB, MiB, GiB) suffix. */
static int o_body_budget(sim_config *c, const char *v, char *err, size_t es) {
  char *end;
  errno = 0;
  unsigned long long n = *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
  unsigned long long unit = 1;
  if (*v < '0' || *v > '9' || errno) goto bad;
  if (!strcasecmp(end, "k") || !strcasecmp(end, "kib"))
    unit = 1ull << 10;
  else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib"))
    unit = 1ull << 20;
  else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib"))
    unit = 1ull << 30;
  else if (*end)
    goto bad;
  if (n > (1ull << 40) / unit || n * unit < 1024) goto bad;
  c->body_budget = (size_t)(n * unit);
  return 0;
bad:
  snprintf(err, es, "'%s' is not a size from 1024 bytes to 1T (a number, then K, M or G)", v);
  return -1;
}

static int o_conn_timeout(sim_config *c, const char *v, char *err, size_t es) {
  unsigned long n;
  if (parse_uint(v, 86400, &n, err, es)) return -1;
  c->connection_timeout = (unsigned)n;
  return 0;
}

static int o_max_conns(sim_config *c, const char *v, char *err, size_t es) {
  unsigned long n;
  if (parse_uint(v, 100000, &n, err, es)) return -1;
  if (!n) {
    snprintf(err, es, "must be at least 1");
    return -1;
  }
  c->max_connections = (unsigned)n;
  return 0;
}

static int o_max_per_ip(sim_config *c, const char *v, char *err, size_t es) {
  unsigned long n;
  if (parse_uint(v, 100000, &n, err, es)) return -1;
  c->max_per_ip = (unsigned)n;
  return 0;
}

static int o_fault(sim_config *c, const char *v, char *err, size_t es) {
  sim_fault_rule r;
  if (sim_fault_rule_parse(&r, v, err, es)) return -1;
  sim_faults *f = &c->faults;
  f->rules = sim_xrealloc(f->rules, (f->n_rules + 1) * sizeof *f->rules);
  f->rules[f->n_rules++] = r;
  return 0;
}

/* Flags: "" on the command line, true/false in a config file. */
static int flag_value(const char *v, int *dst, char *err, size_t es) {
  if (!*v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
    *dst = 1;
  else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
    *dst = 0;
  else {
    snprintf(err, es, "'%s' is neither true nor false", v);
    return -1;
  }
  return 0;
}

static int o_config(sim_config *c, const char *v, char *err, size_t es);

#define FN(f) OPT_FN, f, 0
#define FIELD(kind, member) kind, NULL, offsetof(sim_config, member)
static const opt options[] = {
    {"bind", FN(o_bind), "ADDR   loopback address to listen on (127.0.0.1)"},
    {"port", FN(o_port), "N      TCP port, 0 picks a free one (0)"},
    {"port-file", FIELD(OPT_PATH, port_file), "F  write the port to F once ready"},
    {"config", FN(o_config), "F    read options from F (name = value lines)"},
    {"client", FN(o_client), "KEY:SECRET  OAuth client (sim-key:sim-secret)"},
    {"user", FN(o_user), "NAME:PASSWORD[:ACCOUNT,...]  M2M user (sim-user:sim-pass)"},
    {"account", FN(o_account), "NAME[:PLAN,...]  account (0000123456-00001:M2M_4G)"},
    {"token-lifetime", FIELD(OPT_SECONDS, token_lifetime), "S  access-token lifetime (3600)"},
    {"session-idle", FIELD(OPT_SECONDS, session_idle), "S  session idle timeout (1200)"},
    {"lock-after", FN(o_lock_after), "N  failed logins that lock a user (5)"},
    {"redelivery-interval", FIELD(OPT_SECONDS, redelivery_interval),
     "S  between callback attempts (300)"},
    {"callback-workers", FN(o_workers), "N  concurrent callback deliveries (8)"},
    {"callback-timeout", FN(o_cb_timeout), "S  timeout of one delivery (10)"},
    {"callback-cacert", FIELD(OPT_PATH, callback_cacert), "F  CA bundle for https listeners"},
    {"on-term", FN(o_on_term), "finish|abandon  pending callbacks on SIGTERM (abandon)"},
    {"no-callbacks", FIELD(OPT_FLAG, no_callbacks),
     "      accepted downloads queue no callback at all"},
    {"tls-cert", FIELD(OPT_PATH, tls_cert), "F  serve HTTPS with this PEM certificate"},
    {"tls-key", FIELD(OPT_PATH, tls_key), "F   ... and this PEM key"},
    {"allow-remote-callbacks", FIELD(OPT_FLAG, allow_remote_callbacks),
     "  accept listener URLs off this machine"},
    {"body-budget", FN(o_body_budget), "SIZE  request bodies held at once, in all (64M)"},
    {"connection-timeout", FN(o_conn_timeout), "S  close a connection silent for S s (10)"},
    {"max-connections", FN(o_max_conns), "N  open connections at most (1000)"},
    {"max-connections-per-ip", FN(o_max_per_ip), "N  from one address, 0: no limit (0)"},
    {"log", FIELD(OPT_PATH, log_path), "F         one line per request to F (- for stderr)"},
    {"latency-ms", FN(o_latency), "N  delay every /api request before it is processed (0)"},
    {"answer-latency-ms", FN(o_answer_latency),
     "N  hold every /api answer N ms after processing: callbacks go out first (0)"},
    {"fault", FN(o_fault), "SPEC    fault rule KIND[:key=value,...] (repeatable)"},
    {"callback-duplicate", FIELD(OPT_FLAG, faults.callback_duplicate),
     "  deliver every callback twice"},
    {"callback-reorder", FIELD(OPT_FLAG, faults.callback_reorder),
     "  deliver callbacks in reverse order"},
    {"listener-down", FIELD(OPT_FLAG, faults.listener_down),
     "     every delivery fails as if the listener were down"},
};
#undef FN
#undef FIELD

/* Applies one option's value to c; 0, or -1 with the reason in err. */
static int apply(const opt *o, sim_config *c, const char *v, char *err, size_t es) {
  void *field = (char *)c + o->off;
  switch (o->kind) {
    case OPT_PATH:
      return set_str(field, v);
    case OPT_SECONDS:
      return parse_seconds(v, field, err, es);
    case OPT_FLAG:
      return flag_value(v, field, err, es);
    default:
      return o->fn(c, v, err, es);
  }
}

static const opt *find_opt(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    if (strlen(options[i].name) == len && !strncmp(options[i].name, name, len)) return &options[i];
  return NULL;
}

/* Whether an unknown option's name may be shown: only when it is made of
 * what option names are made of, so a mistyped "--client:KEY:SECRET" or a
 * secret on a config line of its own is never repeated. */
static int showable_name(const char *name, size_t len) {
  if (!len || len > 40) return 0;
  for (size_t i = 0; i < len; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
          name[i] == '-'))
      return 0;
  return 1;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
    s[--n] = '\0';
  return s;
}

static int config_depth;

static int o_config(sim_config *c, const char *path, char *err, size_t es) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, es, "cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  if (config_depth > 4) {
    fclose(f);
    snprintf(err, es, "'%s': config files nested too deep", path);
    return -1;
  }
  config_depth++;
  char line[4096];
  unsigned lineno = 0;
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#') continue;
    char *eq = strchr(s, '=');
    char *name = s, *value = (char *)"";
    if (eq) {
      *eq = '\0';
      value = trim(eq + 1);
    }
    name = trim(name);
    const opt *o = find_opt(name, strlen(name));
    char why[256] = "";
    if (!o && showable_name(name, strlen(name))) {
      snprintf(err, es, "%s:%u: unknown option '%s'", path, lineno, name);
      rc = -1;
    } else if (!o) {
      snprintf(err, es, "%s:%u: unknown option (not shown: not an option name)", path, lineno);
      rc = -1;
    } else if (!eq && o->kind != OPT_FLAG) {
      snprintf(err, es, "%s:%u: '%s' needs '= value'", path, lineno, name);
      rc = -1;
    } else if (apply(o, c, value, why, sizeof why)) {
      snprintf(err, es, "%s:%u: %s: %s", path, lineno, name, why);
      rc = -1;
    }
    if (rc) break;
  }
  config_depth--;
  fclose(f);
  return rc;
}

static void usage(FILE *out) {
  fputs(
      "usage: tsesim-sim [OPTION]...\n"
      "A local ThingSpace simulator: http://127.0.0.1:PORT/api. See tsesim-sim(1).\n\n",
      out);
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    fprintf(out, "  --%s %s\n", options[i].name, options[i].help);
  fputs("  --help, --version\n", out);
  fputs(
      "\nusage: tsesim-sim --make-devices N [--bad-rows K] [--failing K] [--warning K] [--seed S]\n"
      "Writes N device rows (eid,iccid,imei) as CSV to stdout: K of them bad, K that fail,\n"
      "K that warn, the rest SUCCESS.\n",
      out);
}

static void defaults(sim_config *c) {
  memset(c, 0, sizeof *c);
  c->bind = sim_xstrdup("127.0.0.1");
  c->token_lifetime = 3600;
  c->session_idle = 1200;
  c->redelivery_interval = 300;
  c->callback_timeout = 10;
  c->lock_after = 5;
  c->callback_workers = 8;
  c->body_budget = SIM_BODY_BUDGET;
  c->connection_timeout = 10;
  c->max_connections = 1000;
  char err[64];
  o_client(c, "sim-key:sim-secret", err, sizeof err);
  o_user(c, "sim-user:sim-pass", err, sizeof err);
  o_account(c, "0000123456-00001:M2M_4G", err, sizeof err);
  c->clients_set = c->users_set = c->accounts_set = 0;
}

int sim_config_parse(sim_config *c, int argc, char **argv) {
  defaults(c);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 1;
    }
    if (!strcmp(a, "--version")) {
      printf("tsesim-sim (libtsesim) %s\n", TSESIM_VERSION_STR);
      return 1;
    }
    if (strncmp(a, "--", 2)) { /* not shown: a misplaced value may be a secret */
      fprintf(stderr, "tsesim-sim: argument %d is not an option (see --help)\n", i);
      return -1;
    }
    const char *eq = strchr(a + 2, '=');
    size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    const opt *o = find_opt(a + 2, nlen);
    if (!o) {
      if (sim_make_option(a + 2, nlen))
        fprintf(stderr, "tsesim-sim: --%.*s goes with --make-devices (see --help)\n", (int)nlen,
                a + 2);
      else if (showable_name(a + 2, nlen))
        fprintf(stderr, "tsesim-sim: unknown option '%.*s' (see --help)\n", (int)nlen + 2, a);
      else
        fprintf(stderr,
                "tsesim-sim: argument %d: unknown option (not shown: not an option name; "
                "see --help)\n",
                i);
      return -1;
    }
    const char *value = eq ? eq + 1 : "";
    if (!eq && o->kind != OPT_FLAG) {
      if (i + 1 >= argc) {
        fprintf(stderr, "tsesim-sim: --%s needs a value\n", o->name);
        return -1;
      }
      value = argv[++i];
    }
    char err[512];
    if (apply(o, c, value, err, sizeof err)) {
      fprintf(stderr, "tsesim-sim: --%s: %s\n", o->name, err);
      return -1;
    }
  }
  if (!c->tls_cert != !c->tls_key) {
    fprintf(stderr, "tsesim-sim: --tls-cert and --tls-key go together\n");
    return -1;
  }
  for (size_t i = 0; i < c->n_users; i++)
    for (size_t j = 0; j < c->users[i].n_accounts; j++)
      if (!sim_config_account(c, c->users[i].accounts[j])) {
        /* Not the account's name: with a ':' in the password, what reads as
         * an account is the end of the password. */
        fprintf(stderr,
                "tsesim-sim: --user %s: account %zu after the password is no --account (a "
                "password cannot hold ':')\n",
                c->users[i].name, j + 1);
        return -1;
      }
  return 0;
}

void sim_config_free(sim_config *c) {
  clients_free(c);
  users_free(c);
  accounts_free(c);
  free(c->bind);
  free(c->port_file);
  free(c->tls_cert);
  free(c->tls_key);
  free(c->log_path);
  free(c->callback_cacert);
  sim_faults_free(&c->faults);
}

sim_account *sim_config_account(sim_config *c, const char *name) {
  for (size_t i = 0; i < c->n_accounts; i++)
    if (!strcmp(c->accounts[i].name, name)) return &c->accounts[i];
  return NULL;
}

int sim_user_may_use(const sim_user *u, const char *account) {
  if (!u->accounts) return 1;
  for (size_t i = 0; i < u->n_accounts; i++)
    if (!strcmp(u->accounts[i], account)) return 1;
  return 0;
}
