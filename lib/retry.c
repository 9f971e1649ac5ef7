/*
 * retry.c - the retry decision, pure: from an attempt's outcome it answers
 * "send again after N ms" or "stop, with this code". No sleeping, no I/O,
 * no clock, so a table can drive it. Also the back-off (full jitter over an
 * exponential ceiling, or the server's Retry-After, capped) and the
 * Retry-After header in both its forms.
 *
 * The rules: a request is sent again only when it certainly was not acted
 * on: it never left (a connection or TLS failure before sending; a time-out
 * before sending), or the server answered 429 or 503. At most max_attempts
 * tries in all. A request that may have been acted on is never sent again.
 */
#include <stdlib.h>
#include <time.h>

#define TSESIM__WITH_CURL
#include "tsesim_int.h"

unsigned long long tsesim__random_next(unsigned long long *state) {
  /* xorshift64*: jitter needs spread, not secrecy. */
  unsigned long long x = *state ? *state : 0x9E3779B97F4A7C15ULL;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 2685821657736338717ULL;
}

long tsesim__backoff_ms(long base_ms, long cap_ms, unsigned attempt, long retry_after_s,
                        unsigned long long random) {
  long ceiling = base_ms;
  unsigned i;
  if (retry_after_s >= 0) /* the server said when: honour it, within the cap */
    return retry_after_s > cap_ms / 1000 ? cap_ms : retry_after_s * 1000;
  for (i = 1; i < attempt && ceiling < cap_ms; i++) ceiling *= 2;
  if (ceiling > cap_ms) ceiling = cap_ms;
  return (long)(random % (unsigned long long)(ceiling + 1));
}

/* A code that reads as "nothing was sent": after an answer, such a code
 * would tell the caller to send the request again. */
int tsesim__reads_as_not_sent(tsesim_code rc) {
  return rc == TSESIM_E_NOMEM || rc == TSESIM_E_TRANSPORT || rc == TSESIM_E_TIMEOUT ||
         rc == TSESIM_E_TLS || rc == TSESIM_E_INVAL;
}

tsesim__retry tsesim__retry_decide(const tsesim__attempt *a, unsigned long long random) {
  tsesim__retry r;
  int busy = a->rc == TSESIM_OK && (a->status == 429 || a->status == 503);
  r.action = TSESIM__RETRY_FAIL;
  r.wait_ms = 0;
  r.code = a->rc;
  r.why = TSESIM__WHY_FAILED;
  if (a->rc == TSESIM_OK && !busy) {
    r.action = TSESIM__RETRY_ANSWER;
    return r;
  }
  if (a->rc != TSESIM_OK) {
    if (a->no_resend && a->answered && tsesim__reads_as_not_sent(a->rc)) {
      /* sent and answered (429/503) before this attempt failed to go out:
       * the answer decides */
      r.code = TSESIM_E_RATE_LIMITED;
      r.why = TSESIM__WHY_NEXT_NOT_SENT;
      return r;
    }
    if (!a->nothing_sent || (a->rc != TSESIM_E_TRANSPORT && a->rc != TSESIM_E_TIMEOUT))
      return r; /* it may have been sent, or asking again cannot help (TLS, cap, memory) */
  }
  if (a->attempt >= a->max_attempts) {
    if (busy) {
      r.code = TSESIM_E_RATE_LIMITED;
      r.why = TSESIM__WHY_STILL_BUSY;
    } else if (a->no_resend && a->answered) { /* nothing sent since the last 429/503 */
      r.code = TSESIM_E_RATE_LIMITED;
      r.why = TSESIM__WHY_LAST_NOT_SENT;
    }
    return r;
  }
  r.action = TSESIM__RETRY_AGAIN;
  r.code = a->rc;
  r.wait_ms =
      tsesim__backoff_ms(a->base_ms, a->cap_ms, a->attempt, busy ? a->retry_after_s : -1, random);
  return r;
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
