/*
 * credentials.h - the examples' client options: the base URL given, and the
 * credentials from the environment (TSESIM_CLIENT_ID, TSESIM_CLIENT_SECRET,
 * TSESIM_USERNAME, TSESIM_PASSWORD), each defaulting to the local
 * simulator's (sim-key, sim-secret, sim-user, sim-pass).
 */
#ifndef EXAMPLES_CREDENTIALS_H
#define EXAMPLES_CREDENTIALS_H

#include <stdlib.h>
#include <tsesim.h>

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

static void options_from_env(tsesim_options *opts, const char *base_url) {
  tsesim_options_init(opts, TSESIM_OPTIONS_VERSION);
  opts->base_url = base_url;
  opts->client_id = env_or("TSESIM_CLIENT_ID", "sim-key");
  opts->client_secret = env_or("TSESIM_CLIENT_SECRET", "sim-secret");
  opts->username = env_or("TSESIM_USERNAME", "sim-user");
  opts->password = env_or("TSESIM_PASSWORD", "sim-pass");
}

#endif /* EXAMPLES_CREDENTIALS_H */
