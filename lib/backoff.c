/*
 * backoff.c - the client's time: a clock and a sleep (injectable, so tests
 * never really wait), exponential back-off with full jitter, and the
 * Retry-After header in both its forms.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define TSESIM__WITH_CURL
#include "tsesim_int.h"

long long tsesim__now_ms(tsesim_client *c) {
  struct timespec ts;
  if (c->clock_fn) return (long long)(c->clock_fn(c->time_payload) * 1000.0);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tsesim__sleep_ms(tsesim_client *c, long ms) {
  struct timespec ts;
  if (ms <= 0) return;
  if (c->sleep_fn) {
    c->sleep_fn(ms, c->time_payload);
    return;
  }
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* xorshift64*: jitter needs spread, not secrecy. */
static unsigned long long next_random(tsesim_client *c) {
  unsigned long long x = c->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  c->rng = x;
  return x * 2685821657736338717ULL;
}

long tsesim__backoff_ms(tsesim_client *c, unsigned attempt, long retry_after_s) {
  long cap = c->backoff_cap_ms, ceiling = c->backoff_base_ms;
  unsigned i;
  if (retry_after_s >= 0) /* the server said when: honour it, within the cap */
    return retry_after_s > cap / 1000 ? cap : retry_after_s * 1000;
  for (i = 1; i < attempt && ceiling < cap; i++) ceiling *= 2;
  if (ceiling > cap) ceiling = cap;
  return (long)(next_random(c) % (unsigned long long)(ceiling + 1));
}

long tsesim__retry_after_parse(const char *v) {
  const char *p = v;
  long n = 0;
  time_t when, now;
  if (!v) return -1;
  while (*p == ' ') p++;
  if (*p >= '0' && *p <= '9') {
    for (; *p >= '0' && *p <= '9'; p++)
      if (n < 100000000L) n = n * 10 + (*p - '0'); /* longer than any cap: keep it long */
    while (*p == ' ' || *p == '\r' || *p == '\n') p++;
    return *p ? -1 : n;
  }
  when = curl_getdate(v, NULL);
  if (when == (time_t)-1) return -1;
  now = time(NULL);
  return when > now ? (long)(when - now) : 0;
}
