/*
 * sim_state.c - the simulator's shared state: access tokens, sessions,
 * login failures and locks, counters, identifiers. Everything here takes
 * s->mu itself; counters use atomics.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "tsesim_int.h"

void sim_uuid4(char out[SIM_UUID_LEN + 1]) {
  unsigned char r[16];
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = getrandom(r + got, sizeof r - got, 0);
    if (n > 0) got += (size_t)n;
  }
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  snprintf(out, SIM_UUID_LEN + 1,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
           r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

void sim_log(sim *s, const char *fmt, ...) {
  if (!s->log) return;
  char stamp[32], small[512];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  /* The whole line is escaped here, at the one place lines are written, so
   * every field is, whatever a later call site passes (a decoded path, a
   * method, a libmicrohttpd message quoting a peer's bytes). */
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  char *raw = small;
  if (n < 0) return;
  if ((size_t)n >= sizeof small) {
    raw = sim_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(raw, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  sim_buf line = {0};
  sim_buf_addf(&line, "%s.%03ldZ ", stamp, ts.tv_nsec / 1000000);
  sim_buf_add_escaped(&line, raw, (size_t)n);
  sim_buf_add(&line, "\n", 1);
  if (raw != small) free(raw);
  pthread_mutex_lock(&s->log_mu);
  fwrite(line.p, 1, line.len, s->log);
  fflush(s->log);
  pthread_mutex_unlock(&s->log_mu);
  sim_buf_free(&line);
}

int sim_token_issue(sim *s, const char *key, const char *secret, int issue, char *token,
                    long *expires_in, int *reused) {
  int rc = -1;
  pthread_mutex_lock(&s->mu);
  sim_client *c = NULL;
  /* Every client is compared, key and secret both, in constant time: how
   * long a refusal takes says nothing about which part, or how much, was right. */
  for (size_t i = 0; i < s->cfg.n_clients; i++) {
    sim_client *ci = &s->cfg.clients[i];
    int match = tsesim__ct_streq(ci->key, key) & tsesim__ct_streq(ci->secret, secret);
    if (match && !c) c = ci;
  }
  if (c) rc = 0;
  if (c && issue) {
    double now = sim_now();
    *reused = c->token[0] && c->token_expires > now;
    if (!*reused) {
      sim_uuid4(c->token);
      c->token_expires = now + s->cfg.token_lifetime;
    }
    double left = c->token_expires - now - 1e-6; /* whole seconds left, rounded up */
    *expires_in = (long)left + ((double)(long)left < left);
    memcpy(token, c->token, SIM_UUID_LEN + 1);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int sim_token_check(sim *s, const char *token) {
  int rc = -1;
  pthread_mutex_lock(&s->mu);
  double now = sim_now();
  for (size_t i = 0; i < s->cfg.n_clients; i++) {
    sim_client *c = &s->cfg.clients[i];
    int match = tsesim__ct_streq(c->token, token);
    if (c->token[0] && match && c->token_expires > now) rc = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int sim_login(sim *s, const char *name, const char *password, char *session_out) {
  int rc = 1;
  pthread_mutex_lock(&s->mu);
  sim_user *u = NULL;
  for (size_t i = 0; i < s->cfg.n_users; i++)
    if (tsesim__ct_streq(s->cfg.users[i].name, name)) u = &s->cfg.users[i];
  /* The password is compared even for an unknown or locked user, so the time
   * of a refusal does not tell which users exist. */
  int pw_ok = tsesim__ct_streq(u ? u->password : "-", password);
  if (u && u->locked) {
    rc = 2;
  } else if (u && pw_ok) {
    u->failures = 0;
    if (s->n_sessions == s->cap_sessions) {
      /* Forget sessions ended, or idle for twice the timeout, before growing:
       * a long run keeps only what can still be told apart usefully. */
      double now = sim_now();
      size_t keep = 0;
      for (size_t i = 0; i < s->n_sessions; i++) {
        sim_session *ss = &s->sessions[i];
        if (ss->state != SIM_SESSION_ENDED && now - ss->last_used <= 2 * s->cfg.session_idle)
          s->sessions[keep++] = *ss;
      }
      s->n_sessions = keep;
      if (keep * 2 >= s->cap_sessions) {
        s->cap_sessions = s->cap_sessions ? s->cap_sessions * 2 : 16;
        s->sessions = sim_xrealloc(s->sessions, s->cap_sessions * sizeof *s->sessions);
      }
    }
    sim_session *ss = &s->sessions[s->n_sessions++];
    sim_uuid4(ss->token);
    ss->user = u;
    ss->last_used = sim_now();
    ss->state = SIM_SESSION_LIVE;
    memcpy(session_out, ss->token, SIM_UUID_LEN + 1);
    rc = 0;
  } else if (u) {
    if ((unsigned)++u->failures >= s->cfg.lock_after) u->locked = 1;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static sim_session *session_find(sim *s, const char *token) {
  sim_session *found = NULL;
  for (size_t i = s->n_sessions; i-- > 0;) /* all of them: no early exit to time */
    if (tsesim__ct_streq(s->sessions[i].token, token) && !found) found = &s->sessions[i];
  return found;
}

const char *sim_session_use(sim *s, const char *token, sim_user **user) {
  const char *code = NULL;
  *user = NULL;
  if (!token || !*token) return "INPUT_INVALID.SessionToken.Missing";
  pthread_mutex_lock(&s->mu);
  sim_session *ss = session_find(s, token);
  double now = sim_now();
  if (!ss || ss->state == SIM_SESSION_ENDED) {
    code = "INPUT_INVALID.SessionToken.Invalid";
  } else if (ss->state == SIM_SESSION_REVOKED || now - ss->last_used > s->cfg.session_idle) {
    ss->state = SIM_SESSION_REVOKED;
    code = "REQUEST_FAILED.SessionToken.Expired";
  } else {
    ss->last_used = now;
    *user = ss->user;
  }
  pthread_mutex_unlock(&s->mu);
  return code;
}

void sim_session_end(sim *s, const char *token) {
  pthread_mutex_lock(&s->mu);
  sim_session *ss = session_find(s, token);
  if (ss) ss->state = SIM_SESSION_ENDED;
  pthread_mutex_unlock(&s->mu);
}

void sim_revoke(sim *s, int tokens, int sessions, unsigned long *n_tokens,
                unsigned long *n_sessions) {
  *n_tokens = *n_sessions = 0;
  pthread_mutex_lock(&s->mu);
  double now = sim_now();
  for (size_t i = 0; tokens && i < s->cfg.n_clients; i++) {
    sim_client *c = &s->cfg.clients[i];
    if (c->token[0] && c->token_expires > now) ++*n_tokens;
    c->token[0] = '\0';
  }
  for (size_t i = 0; sessions && i < s->n_sessions; i++) {
    sim_session *ss = &s->sessions[i];
    if (ss->state == SIM_SESSION_LIVE && now - ss->last_used <= s->cfg.session_idle) {
      ss->state = SIM_SESSION_REVOKED;
      ++*n_sessions;
    }
  }
  pthread_mutex_unlock(&s->mu);
}

#define LOAD(f) __atomic_load_n(&s->stats.f, __ATOMIC_RELAXED)

void sim_stats_to_json(sim *s, sim_buf *out) {
  unsigned long eids = 0, eids_repeated = 0;
  if (s->eids) sim_eids_totals(s->eids, &eids, &eids_repeated);
  sim_buf_adds(out, "{\"requests\":{");
  for (int i = 0; i < SIM_EP_COUNT; i++)
    sim_buf_addf(out, "%s\"%s\":%lu", i ? "," : "", sim_endpoint_name(i), LOAD(requests[i]));
  sim_buf_addf(out,
               "},\"downloads\":{\"received\":%lu,\"accepted\":%lu,\"devices_accepted\":%lu,"
               "\"eids\":%lu,\"eids_repeated\":%lu},"
               "\"tokens\":{\"issued\":%lu,\"reused\":%lu,\"refused\":%lu},"
               "\"logins\":{\"ok\":%lu,\"refused\":%lu,\"locked\":%lu},",
               LOAD(downloads_received), LOAD(downloads_accepted), LOAD(devices_accepted), eids,
               eids_repeated, LOAD(tokens_issued), LOAD(tokens_reused), LOAD(tokens_refused),
               LOAD(logins_ok), LOAD(logins_refused), LOAD(logins_locked));
  sim_buf_addf(out,
               "\"callbacks\":{\"queued\":%lu,\"attempted\":%lu,\"delivered\":%lu,\"failed\":%lu,"
               "\"abandoned\":%lu,\"pending\":%lu,\"no_listener\":%lu,\"duplicates\":%lu},"
               "\"faults\":{\"injected\":%lu,\"latency\":%lu},",
               LOAD(cb_queued), LOAD(cb_attempted), LOAD(cb_delivered), LOAD(cb_failed),
               LOAD(cb_abandoned), sim_deliver_pending(s->deliver), LOAD(cb_no_listener),
               LOAD(cb_duplicates), LOAD(faults_injected), LOAD(faults_latency));
  sim_buf_addf(out, "\"bodies\":{\"held_bytes\":%zu,\"refused\":%lu}}",
               __atomic_load_n(&s->body_bytes, __ATOMIC_RELAXED), LOAD(bodies_refused));
}

void sim_stats_reset(sim *s) {
  unsigned long *p = (unsigned long *)&s->stats;
  for (size_t i = 0; i < sizeof s->stats / sizeof *p; i++)
    __atomic_store_n(&p[i], 0, __ATOMIC_RELAXED);
  sim_eids_clear(s->eids);
}
