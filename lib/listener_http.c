/*
 * listener_http.c - what the callback listener answers to one request
 * (CLI.md, "The listener (HTTP)"), apart from the sockets and the journal:
 * the part the fuzz target drives. listener_mhd.c reads the request and
 * stores what this file lets through.
 */
#include <stdio.h>
#include <string.h>

#include "tsesim_int.h"

void tsesim__listener_answer(char *answer, int status, const char *message) {
  size_t o, i;
  int n = snprintf(answer, TSESIM__ANSWER_SIZE, "{\"status\":%d,\"message\":\"", status);
  o = n > 0 ? (size_t)n : 0;
  /* Room is kept for the longest escape (6 bytes) and the closing "}\0.
   * Every byte outside printable ASCII is escaped, so that the answer is
   * valid JSON whatever the message quotes from a peer's body. */
  for (i = 0; message[i] && o + 6 + 3 <= TSESIM__ANSWER_SIZE; i++) {
    unsigned char c = (unsigned char)message[i];
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      answer[o++] = (char)c;
    } else {
      snprintf(answer + o, TSESIM__ANSWER_SIZE - o, "\\u%04X", c);
      o += 6;
    }
  }
  memcpy(answer + o, "\"}", 3);
}

int tsesim__listener_judge(const tsesim__listener_rules *rules, const char *method, const char *url,
                           int body_state, const char *body, size_t len, tsesim_callback **cb,
                           char *answer) {
  char why[TSESIM_ERRBUF_SIZE], msg[TSESIM_ERRBUF_SIZE + 64];
  tsesim_code rc;
  int ok;

  *cb = NULL;
  /* The path first: a scanner probing other paths learns nothing else. */
  if (strcmp(url, rules->path) != 0) {
    if (strcmp(url, "/healthz") == 0 && strcmp(method, "GET") == 0) {
      tsesim__listener_answer(answer, 200, "ok");
      return 200;
    }
    tsesim__listener_answer(answer, 404, "no such path");
    return 404;
  }
  if (strcmp(method, "POST") != 0) {
    tsesim__listener_answer(answer, 405, "only POST is served on this path");
    return 405;
  }
  if (body_state == TSESIM__BODY_TOO_LARGE) {
    snprintf(msg, sizeof msg, "the body is larger than %lu bytes", (unsigned long)rules->max_body);
    tsesim__listener_answer(answer, 413, msg);
    return 413;
  }
  /* A body that could not be held: the listener itself is full, and the
   * callback is delivered again later. */
  if (body_state == TSESIM__BODY_OVER_BUDGET) {
    tsesim__listener_answer(answer, 503, "too many request bodies held at once; deliver it again");
    return 503;
  }
  if (body_state != TSESIM__BODY_OK) {
    tsesim__listener_answer(answer, 503, "out of memory; deliver it again");
    return 503;
  }
  rc = tsesim_callback_parse(cb, body ? body : "", len, why);
  if (rc == TSESIM_E_NOMEM) {
    tsesim__listener_answer(answer, 503, "out of memory; deliver it again");
    return 503;
  }
  if (rc != TSESIM_OK) {
    snprintf(msg, sizeof msg, "the callback cannot be read: %s", why);
    tsesim__listener_answer(answer, 400, msg);
    return 400;
  }
  /* Both compared, without an early exit: the time tells nothing of which
   * one differs, nor (tsesim__ct_streq) how much of it matched. */
  if (rules->username || rules->password) {
    ok = tsesim__ct_streq(rules->username, (*cb)->username);
    ok &= tsesim__ct_streq(rules->password, (*cb)->password);
    if (!ok) {
      tsesim_callback_free(*cb);
      *cb = NULL;
      tsesim__listener_answer(answer, 401, "the echoed credentials do not match");
      return 401;
    }
  }
  return 0;
}
