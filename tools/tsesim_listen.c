/*
 * tsesim_listen.c - tsesim listen (only the callback listener, on the
 * journal's recorded port, until SIGINT or SIGTERM), and tsesim register /
 * unregister (the account's listener URL at ThingSpace).
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsesim_cli.h"

/* The listener credentials the journal keeps (run made them); when it has
 * none (a journal made through the API), the environment's. */
static int credentials(cli_journal *cj, char **user, char **password) {
  const char *eu = getenv("TSESIM_LISTENER_USERNAME"), *ep = getenv("TSESIM_LISTENER_PASSWORD");
  *user = *password = NULL;
  if (tsesim_journal_get(cj->j, SET_USERNAME, user) != TSESIM_OK ||
      tsesim_journal_get(cj->j, SET_PASSWORD, password) != TSESIM_OK) {
    cli_err("%s", tsesim_journal_errmsg(cj->j));
    return EXIT_USAGE;
  }
  if (*user && *password) return 0;
  tsesim_free(*user);
  tsesim_free(*password);
  *user = *password = NULL;
  if (!eu || !*eu || !ep || !*ep) {
    cli_err(
        "journal %s keeps no listener credentials, and %s is not set: run tsesim run "
        "first, or export TSESIM_LISTENER_USERNAME and TSESIM_LISTENER_PASSWORD",
        cj->path, !eu || !*eu ? "TSESIM_LISTENER_USERNAME" : "TSESIM_LISTENER_PASSWORD");
    return EXIT_USAGE;
  }
  if (tsesim_journal_set(cj->j, SET_USERNAME, eu) != TSESIM_OK ||
      tsesim_journal_set(cj->j, SET_PASSWORD, ep) != TSESIM_OK) {
    cli_err("%s", tsesim_journal_errmsg(cj->j));
    return EXIT_USAGE;
  }
  return tsesim_journal_get(cj->j, SET_USERNAME, user) != TSESIM_OK ||
                 tsesim_journal_get(cj->j, SET_PASSWORD, password) != TSESIM_OK
             ? EXIT_USAGE
             : 0;
}

int cmd_listen(int argc, char **argv) {
  const char *path = NULL, *listen = NULL, *cert = NULL, *key = NULL, *v;
  char *user = NULL, *password = NULL;
  cli_journal cj;
  cli_listener cl;
  sigset_t block, old;
  int i, m, rc;
  for (i = 1; i < argc; i++) {
    if ((m = cli_opt(argc, argv, &i, "--journal", &v)) != 0)
      path = v;
    else if ((m = cli_opt(argc, argv, &i, "--listen", &v)) != 0)
      listen = v;
    else if ((m = cli_opt(argc, argv, &i, "--tls-cert", &v)) != 0)
      cert = v;
    else if ((m = cli_opt(argc, argv, &i, "--tls-key", &v)) != 0)
      key = v;
    else {
      cli_err(
          "listen: unexpected %s (usage: tsesim listen --journal DB [--listen HOST:PORT] "
          "[--tls-cert FILE --tls-key FILE])",
          argv[i]);
      return EXIT_USAGE;
    }
    if (m < 0) return EXIT_USAGE;
  }
  if (!path) {
    cli_err("listen: --journal DB is missing");
    return EXIT_USAGE;
  }
  /* the signals are held until the listener serves, then awaited */
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  if ((rc = cli_journal_open(&cj, path, 1, 1)) != 0) return rc;
  if ((rc = credentials(&cj, &user, &password)) != 0) goto out;
  rc = cli_listener_start(&cl, &cj, listen, cert, key, user, password, NULL, NULL);
  if (rc) goto out;
  fprintf(stderr, "listening on %s\n", cl.local_url);
  {
    int sig = 0;
    sigwait(&block, &sig);
  }
  tsesim_listener_stop(cl.l); /* drains: every callback answered 200 is committed */
  rc = 0;
out:
  tsesim_free(user);
  tsesim_free(password);
  cli_journal_close(&cj);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return rc;
}

int cmd_register(int argc, char **argv) {
  const char *path = NULL, *account = NULL, *url = NULL, *v;
  char *user = NULL, *password = NULL, *rec_url = NULL;
  tsesim_client *client = NULL;
  cli_journal cj;
  tsesim_code trc;
  int i, m, rc;
  for (i = 1; i < argc; i++) {
    if ((m = cli_opt(argc, argv, &i, "--journal", &v)) != 0)
      path = v;
    else if ((m = cli_opt(argc, argv, &i, "--account", &v)) != 0)
      account = v;
    else if ((m = cli_opt(argc, argv, &i, "--public-url", &v)) != 0)
      url = v;
    else {
      cli_err(
          "register: unexpected %s (usage: tsesim register --journal DB --account NAME "
          "[--public-url URL])",
          argv[i]);
      return EXIT_USAGE;
    }
    if (m < 0) return EXIT_USAGE;
  }
  if (!path || !account) {
    cli_err("register: %s is missing", !path ? "--journal DB" : "--account NAME");
    return EXIT_USAGE;
  }
  if ((rc = cli_client(&client)) != 0) return rc;
  if ((rc = cli_journal_open(&cj, path, 1, 0)) != 0) goto out;
  if ((rc = credentials(&cj, &user, &password)) != 0) goto out;
  if (!url) {
    if (tsesim_journal_get(cj.j, SET_URL, &rec_url) != TSESIM_OK || !rec_url) {
      cli_err("journal %s records no listener URL: give --public-url", path);
      rc = EXIT_USAGE;
      goto out;
    }
    url = rec_url;
  }
  trc = tsesim_client_register_callback(client, account, NULL, url, user, password);
  if (trc != TSESIM_OK) {
    rc = cli_client_fail(client, trc, "register");
    goto out;
  }
  /* recorded once ThingSpace took it: the next run registers it again */
  if (url != rec_url && tsesim_journal_set(cj.j, SET_URL, url) != TSESIM_OK) {
    cli_err("%s", tsesim_journal_errmsg(cj.j));
    rc = EXIT_USAGE;
    goto out;
  }
  fprintf(stderr, "tsesim: registered %s for %s (DeviceProfileService)\n", url, account);
  rc = 0;
out:
  tsesim_free(user);
  tsesim_free(password);
  tsesim_free(rec_url);
  if (cj.j || cj.lock_fd >= 0) cli_journal_close(&cj);
  tsesim_client_free(client);
  return rc;
}

int cmd_unregister(int argc, char **argv) {
  const char *account = NULL, *v;
  tsesim_client *client = NULL;
  tsesim_code trc;
  int i, m, rc;
  for (i = 1; i < argc; i++) {
    if ((m = cli_opt(argc, argv, &i, "--account", &v)) != 0) {
      if (m < 0) return EXIT_USAGE;
      account = v;
    } else {
      cli_err("unregister: unexpected %s (usage: tsesim unregister --account NAME)", argv[i]);
      return EXIT_USAGE;
    }
  }
  if (!account) {
    cli_err("unregister: --account NAME is missing");
    return EXIT_USAGE;
  }
  if ((rc = cli_client(&client)) != 0) return rc;
  trc = tsesim_client_unregister_callback(client, account, NULL);
  rc = trc == TSESIM_OK ? 0 : cli_client_fail(client, trc, "unregister");
  if (!rc)
    fprintf(stderr, "tsesim: unregistered the DeviceProfileService listener of %s\n", account);
  tsesim_client_free(client);
  return rc;
}
