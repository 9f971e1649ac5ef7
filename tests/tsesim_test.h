/*
 * tsesim_test.h - helpers shared by the check_<layer> programs: valid
 * identifiers (tt_ids.h), a Check main, and the allocation-failure loop.
 * Tests link libtsesim_test.la, built with TSESIM_TEST_HOOKS.
 */
#ifndef TSESIM_TEST_H
#define TSESIM_TEST_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsesim.h"
#include "tsesim_int.h"
#include "tt_ids.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Valid identifiers, checked by hand in check_ids.c. */
#define EID "89049032123451234512345678901235"
#define EID2 "89001012012341234012345678901224"
#define ICCID "89014103211118510720"
#define ICCID19 "8944500102198304826"
#define IMEI "490154203237518"
#define IMEI2 "352099001761481"
#define MDN "9085551234"

/* Asserts that a string field is want, or NULL when want is NULL; ctx and
 * field name it in the failure message. */
static inline void tt_expect_str(const char *ctx, const char *field, const char *got,
                                 const char *want) {
  if (!want) {
    ck_assert_msg(got == NULL, "%s: %s: expected NULL, got \"%s\"", ctx, field, got);
    return;
  }
  ck_assert_msg(got != NULL, "%s: %s: expected \"%s\", got NULL", ctx, field, want);
  ck_assert_msg(strcmp(got, want) == 0, "%s: %s: expected \"%s\", got \"%s\"", ctx, field, want,
                got);
}

/*
 * The rule: every public call gets an allocation-failure loop in the change
 * that adds it (a call that never allocates gets a test that counts none).
 * Calls that talk HTTP have theirs in check_client_alloc.c, against the
 * simulator, where the code a failure may give depends on what was sent.
 *
 * The allocation-failure loop. BODY runs once per n = 1, 2, ... with the
 * n-th allocation made to fail; it must set `rc` and must leave every
 * output it owns freed or NULL when rc != TSESIM_OK. The loop asserts that
 * each failing run returned TSESIM_E_NOMEM and leaked nothing, and stops at
 * the first run in which no allocation failed (which must be TSESIM_OK).
 * OUTCHECK is evaluated in failing runs and must hold (e.g. out == NULL).
 * CLEANUP runs after the successful run.
 */
#define TT_FAIL_EACH_ALLOC(BODY, OUTCHECK, CLEANUP)                                    \
  do {                                                                                 \
    unsigned long tt_n;                                                                \
    for (tt_n = 1; tt_n < 100000; tt_n++) {                                            \
      size_t tt_live0 = tsesim__test_alloc_live();                                     \
      unsigned long tt_failed;                                                         \
      tsesim_code rc;                                                                  \
      tsesim__test_alloc_reset();                                                      \
      tsesim__test_alloc_fail_at(tt_n);                                                \
      BODY;                                                                            \
      tt_failed = tsesim__test_alloc_failed();                                         \
      tsesim__test_alloc_fail_at(0);                                                   \
      if (!tt_failed) {                                                                \
        ck_assert_msg(rc == TSESIM_OK, "run %lu: no failure injected but rc=%s", tt_n, \
                      tsesim_code_name(rc));                                           \
        CLEANUP;                                                                       \
        ck_assert_uint_eq(tsesim__test_alloc_live(), tt_live0);                        \
        break;                                                                         \
      }                                                                                \
      ck_assert_msg(rc == TSESIM_E_NOMEM, "allocation %lu failed but rc=%s", tt_n,     \
                    tsesim_code_name(rc));                                             \
      ck_assert_msg(OUTCHECK, "allocation %lu failed: outputs not NULL", tt_n);        \
      ck_assert_msg(tsesim__test_alloc_live() == tt_live0,                             \
                    "allocation %lu failed: %lu bytes leaked", tt_n,                   \
                    (unsigned long)(tsesim__test_alloc_live() - tt_live0));            \
    }                                                                                  \
    ck_assert_msg(tt_n > 1, "the call made no allocation at all");                     \
  } while (0)

/* Arms the n-th allocation from now to fail (for loops that cannot use
 * TT_FAIL_EACH_ALLOC: a call whose outcome may be more than NOMEM). */
static inline void tt_alloc_arm(unsigned long n) {
  tsesim__test_alloc_reset();
  tsesim__test_alloc_fail_at(n);
}

/* Disarms; 1 when an allocation was made to fail since tt_alloc_arm(). */
static inline int tt_alloc_disarm(void) {
  int failed = tsesim__test_alloc_failed() != 0;
  tsesim__test_alloc_fail_at(0);
  return failed;
}

/* A main for one suite: exits 0 only if every test passed. */
#define TT_MAIN(suite_fn)                        \
  int main(void) {                               \
    SRunner *sr = srunner_create(suite_fn());    \
    int failed;                                  \
    srunner_run_all(sr, CK_NORMAL);              \
    failed = srunner_ntests_failed(sr);          \
    srunner_free(sr);                            \
    return failed ? EXIT_FAILURE : EXIT_SUCCESS; \
  }

/* The same, between tsesim_global_init and tsesim_global_cleanup: for the
 * suites whose clients talk HTTP. */
#define TT_MAIN_GLOBAL(suite_fn)                      \
  int main(void) {                                    \
    SRunner *sr;                                      \
    int failed;                                       \
    if (tsesim_global_init() != TSESIM_OK) {          \
      fprintf(stderr, "tsesim_global_init failed\n"); \
      return EXIT_FAILURE;                            \
    }                                                 \
    sr = srunner_create(suite_fn());                  \
    srunner_run_all(sr, CK_NORMAL);                   \
    failed = srunner_ntests_failed(sr);               \
    srunner_free(sr);                                 \
    tsesim_global_cleanup();                          \
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;      \
  }

#endif /* TSESIM_TEST_H */
