/*
 * check_retry.c - the retry decision (lib/retry.c) driven by a table: it is
 * pure, so every row states an attempt's outcome and the one answer it
 * must get. The rows are the safety rules: only what certainly was not
 * acted on is sent again.
 */
#define TSESIM__WITH_CURL
#include "tsesim_test.h"

enum { NO = 0, YES = 1 };

static const struct row {
  const char *what;
  unsigned attempt, max;
  tsesim_code rc;
  long status;
  int nothing_sent, no_resend;
  long answered, retry_after;
  int action;       /* expected */
  tsesim_code code; /* expected, FAIL */
  int why;          /* expected, FAIL */
  long wait;        /* expected wait for AGAIN with Retry-After; -1: any jittered wait */
} rows[] = {
    {"200 is an answer", 1, 3, TSESIM_OK, 200, NO, YES, 0, -1, TSESIM__RETRY_ANSWER, TSESIM_OK, 0,
     0},
    {"400 is an answer", 1, 3, TSESIM_OK, 400, NO, YES, 0, -1, TSESIM__RETRY_ANSWER, TSESIM_OK, 0,
     0},
    {"401 is an answer (renewal is the caller's)", 1, 3, TSESIM_OK, 401, NO, YES, 0, -1,
     TSESIM__RETRY_ANSWER, TSESIM_OK, 0, 0},
    {"500 is an answer, never retried", 1, 3, TSESIM_OK, 500, NO, YES, 0, -1, TSESIM__RETRY_ANSWER,
     TSESIM_OK, 0, 0},
    {"429 with Retry-After 2", 1, 3, TSESIM_OK, 429, NO, YES, 0, 2, TSESIM__RETRY_AGAIN, TSESIM_OK,
     0, 2000},
    {"503 with Retry-After 0", 2, 3, TSESIM_OK, 503, NO, YES, 429, 0, TSESIM__RETRY_AGAIN,
     TSESIM_OK, 0, 0},
    {"Retry-After above the cap is capped", 1, 3, TSESIM_OK, 429, NO, YES, 0, 3600,
     TSESIM__RETRY_AGAIN, TSESIM_OK, 0, 20000},
    {"429 without Retry-After: jitter", 1, 3, TSESIM_OK, 429, NO, YES, 0, -1, TSESIM__RETRY_AGAIN,
     TSESIM_OK, 0, -1},
    {"429 on the last try", 3, 3, TSESIM_OK, 429, NO, YES, 429, 1, TSESIM__RETRY_FAIL,
     TSESIM_E_RATE_LIMITED, TSESIM__WHY_STILL_BUSY, 0},
    {"connect failure, nothing sent", 1, 3, TSESIM_E_TRANSPORT, 0, YES, YES, 0, -1,
     TSESIM__RETRY_AGAIN, TSESIM_E_TRANSPORT, 0, -1},
    {"connect time-out, nothing sent", 2, 3, TSESIM_E_TIMEOUT, 0, YES, NO, 0, -1,
     TSESIM__RETRY_AGAIN, TSESIM_E_TIMEOUT, 0, -1},
    {"nothing sent on the last try", 3, 3, TSESIM_E_TRANSPORT, 0, YES, NO, 0, -1,
     TSESIM__RETRY_FAIL, TSESIM_E_TRANSPORT, TSESIM__WHY_FAILED, 0},
    {"sent, no answer: unknown, never again", 1, 3, TSESIM_E_UNKNOWN_OUTCOME, 0, NO, YES, 0, -1,
     TSESIM__RETRY_FAIL, TSESIM_E_UNKNOWN_OUTCOME, TSESIM__WHY_FAILED, 0},
    {"sent, transport failure, unguarded: not again", 1, 3, TSESIM_E_TRANSPORT, 0, NO, NO, 0, -1,
     TSESIM__RETRY_FAIL, TSESIM_E_TRANSPORT, TSESIM__WHY_FAILED, 0},
    {"TLS failure: asking again cannot help", 1, 3, TSESIM_E_TLS, 0, YES, YES, 0, -1,
     TSESIM__RETRY_FAIL, TSESIM_E_TLS, TSESIM__WHY_FAILED, 0},
    {"answer over the cap", 1, 3, TSESIM_E_HTTP, 0, NO, YES, 0, -1, TSESIM__RETRY_FAIL,
     TSESIM_E_HTTP, TSESIM__WHY_FAILED, 0},
    {"out of memory before sending", 1, 3, TSESIM_E_NOMEM, 0, YES, YES, 0, -1, TSESIM__RETRY_FAIL,
     TSESIM_E_NOMEM, TSESIM__WHY_FAILED, 0},
    {"429, then a guarded try not sent: the 429 decides", 2, 3, TSESIM_E_TRANSPORT, 0, YES, YES,
     429, -1, TSESIM__RETRY_FAIL, TSESIM_E_RATE_LIMITED, TSESIM__WHY_NEXT_NOT_SENT, 0},
    {"503, then out of memory: the 503 decides", 2, 3, TSESIM_E_NOMEM, 0, YES, YES, 503, -1,
     TSESIM__RETRY_FAIL, TSESIM_E_RATE_LIMITED, TSESIM__WHY_NEXT_NOT_SENT, 0},
    {"429, then unguarded not sent: retried", 2, 3, TSESIM_E_TRANSPORT, 0, YES, NO, 429, -1,
     TSESIM__RETRY_AGAIN, TSESIM_E_TRANSPORT, 0, -1},
    {"one try allowed: 503 stops", 1, 1, TSESIM_OK, 503, NO, YES, 0, 1, TSESIM__RETRY_FAIL,
     TSESIM_E_RATE_LIMITED, TSESIM__WHY_STILL_BUSY, 0},
};

START_TEST(test_table) {
  const struct row *w = &rows[_i];
  tsesim__attempt a;
  tsesim__retry r;
  unsigned long long seed = 12345 + (unsigned long long)_i;
  memset(&a, 0, sizeof a);
  a.attempt = w->attempt;
  a.max_attempts = w->max;
  a.rc = w->rc;
  a.status = w->status;
  a.nothing_sent = w->nothing_sent;
  a.no_resend = w->no_resend;
  a.answered = w->answered;
  a.retry_after_s = w->retry_after;
  a.base_ms = 500;
  a.cap_ms = 20000;
  r = tsesim__retry_decide(&a, tsesim__random_next(&seed));
  ck_assert_msg(r.action == w->action, "%s: action %d, expected %d", w->what, r.action, w->action);
  if (w->action == TSESIM__RETRY_FAIL) {
    ck_assert_msg(r.code == w->code, "%s: %s, expected %s", w->what, tsesim_code_name(r.code),
                  tsesim_code_name(w->code));
    ck_assert_msg(r.why == w->why, "%s: why %d, expected %d", w->what, r.why, w->why);
  }
  if (w->action == TSESIM__RETRY_AGAIN) {
    if (w->wait >= 0)
      ck_assert_msg(r.wait_ms == w->wait, "%s: wait %ld, expected %ld", w->what, r.wait_ms,
                    w->wait);
    else /* full jitter over base * 2^(attempt-1) */
      ck_assert_msg(r.wait_ms >= 0 && r.wait_ms <= 500L << (w->attempt - 1),
                    "%s: wait %ld outside 0..%ld", w->what, r.wait_ms, 500L << (w->attempt - 1));
  }
}
END_TEST

/* The jitter spreads: many draws for one attempt are not all the same, and
 * the ceiling doubles per attempt up to the cap. */
START_TEST(test_backoff_ceiling) {
  unsigned long long seed = 1;
  long hi[6] = {0, 0, 0, 0, 0, 0};
  unsigned attempt;
  int i;
  for (attempt = 1; attempt <= 6; attempt++)
    for (i = 0; i < 2000; i++) {
      long w = tsesim__backoff_ms(500, 8000, attempt, -1, tsesim__random_next(&seed));
      long ceiling = 500L << (attempt - 1);
      if (ceiling > 8000) ceiling = 8000;
      ck_assert_msg(w >= 0 && w <= ceiling, "attempt %u: %ld outside 0..%ld", attempt, w, ceiling);
      if (w > hi[attempt - 1]) hi[attempt - 1] = w;
    }
  for (attempt = 1; attempt <= 6; attempt++) {
    long ceiling = 500L << (attempt - 1);
    if (ceiling > 8000) ceiling = 8000;
    ck_assert_msg(hi[attempt - 1] > ceiling * 9 / 10,
                  "attempt %u: the largest of 2000 waits is %ld", attempt, hi[attempt - 1]);
  }
}
END_TEST

START_TEST(test_retry_after_forms) {
  ck_assert_int_eq(tsesim__retry_after_parse("7"), 7);
  ck_assert_int_eq(tsesim__retry_after_parse(" 12\r\n"), 12);
  ck_assert_int_eq(tsesim__retry_after_parse("1x"), -1);
  ck_assert_int_eq(tsesim__retry_after_parse(""), -1);
  ck_assert_int_eq(tsesim__retry_after_parse(NULL), -1);
  ck_assert_int_eq(tsesim__retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT"), 0); /* past */
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("retry");
  TCase *tc = tcase_create("decision");
  tcase_add_loop_test(tc, test_table, 0, (int)(sizeof rows / sizeof rows[0]));
  tcase_add_test(tc, test_backoff_ceiling);
  tcase_add_test(tc, test_retry_after_forms);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(suite)
