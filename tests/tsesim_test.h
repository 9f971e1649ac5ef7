/*
 * tsesim_test.h - helpers shared by the check_<layer> programs: valid
 * identifiers on demand, a Check main, and the allocation-failure loop.
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

/* Fills out[0..n-1) with digits from seed and sets the Luhn check digit at
 * out[n-1]; out gets n digits and a NUL. */
static inline void tt_luhn_id(char *out, size_t n, unsigned long seed, const char *prefix) {
  size_t i, plen = strlen(prefix);
  unsigned sum = 0;
  int dbl = 1;
  for (i = 0; i + 1 < n; i++) {
    if (i < plen) {
      out[i] = prefix[i];
    } else {
      seed = seed * 6364136223846793005UL + 1442695040888963407UL;
      out[i] = (char)('0' + (seed >> 33) % 10);
    }
  }
  for (i = n - 1; i-- > 0;) {
    unsigned d = (unsigned)(out[i] - '0');
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  out[n - 1] = (char)('0' + (10 - sum % 10) % 10);
  out[n] = '\0';
}

/* A valid 32-digit EID: "89" prefix, 28 digits from seed, MOD 97-10 digits. */
static inline void tt_eid(char out[33], unsigned long seed) {
  unsigned r = 0;
  int i, c;
  out[0] = '8';
  out[1] = '9';
  for (i = 2; i < 30; i++) {
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    out[i] = (char)('0' + (seed >> 33) % 10);
  }
  for (i = 0; i < 30; i++) r = (r * 10 + (unsigned)(out[i] - '0')) % 97;
  c = 98 - (int)((r * 100) % 97);
  out[30] = (char)('0' + c / 10);
  out[31] = (char)('0' + c % 10);
  out[32] = '\0';
}
static inline void tt_iccid(char out[21], unsigned long seed, size_t len) {
  tt_luhn_id(out, len, seed, "8901");
}
static inline void tt_imei(char out[16], unsigned long seed) { tt_luhn_id(out, 15, seed, "35"); }

/* One device's three valid identifiers, owned by the caller's struct. */
typedef struct tt_device {
  char eid[33], iccid[21], imei[16];
  tsesim_device_id ids[3];
} tt_device;

static inline void tt_device_make(tt_device *d, unsigned long seed) {
  tt_eid(d->eid, seed);
  tt_iccid(d->iccid, seed, 20);
  tt_imei(d->imei, seed);
  d->ids[0].kind = TSESIM_ID_EID;
  d->ids[0].id = d->eid;
  d->ids[0].kind_name = NULL;
  d->ids[1].kind = TSESIM_ID_ICCID;
  d->ids[1].id = d->iccid;
  d->ids[1].kind_name = NULL;
  d->ids[2].kind = TSESIM_ID_IMEI;
  d->ids[2].id = d->imei;
  d->ids[2].kind_name = NULL;
}

/*
 * The allocation-failure loop. BODY runs once per n = 1, 2, ... with the
 * n-th allocation made to fail; it must set `rc` and must leave every
 * output it owns freed or NULL when rc != TSESIM_OK. The loop asserts that
 * each failing run returned TSESIM_E_NOMEM and leaked nothing, and stops at
 * the first run in which no allocation failed (which must be TSESIM_OK).
 * OUTCHECK is evaluated in failing runs and must hold (e.g. out == NULL).
 * CLEANUP runs after the successful run.
 */
#define TT_FAIL_EACH_ALLOC(BODY, OUTCHECK, CLEANUP)                                   \
  do {                                                                                \
    unsigned long tt_n;                                                               \
    for (tt_n = 1; tt_n < 100000; tt_n++) {                                           \
      size_t tt_live0 = tsesim__test_alloc_live();                                    \
      unsigned long tt_failed;                                                        \
      tsesim_code rc;                                                                 \
      tsesim__test_alloc_reset();                                                     \
      tsesim__test_alloc_fail_at(tt_n);                                               \
      BODY;                                                                           \
      tt_failed = tsesim__test_alloc_failed();                                        \
      tsesim__test_alloc_fail_at(0);                                                  \
      if (!tt_failed) {                                                               \
        ck_assert_msg(rc == TSESIM_OK, "run %lu: no failure injected but rc=%s", tt_n, \
                      tsesim_code_name(rc));                                          \
        CLEANUP;                                                                      \
        ck_assert_uint_eq(tsesim__test_alloc_live(), tt_live0);                       \
        break;                                                                        \
      }                                                                               \
      ck_assert_msg(rc == TSESIM_E_NOMEM, "allocation %lu failed but rc=%s", tt_n,    \
                    tsesim_code_name(rc));                                            \
      ck_assert_msg(OUTCHECK, "allocation %lu failed: outputs not NULL", tt_n);       \
      ck_assert_msg(tsesim__test_alloc_live() == tt_live0,                            \
                    "allocation %lu failed: %lu bytes leaked", tt_n,                  \
                    (unsigned long)(tsesim__test_alloc_live() - tt_live0));           \
    }                                                                                 \
    ck_assert_msg(tt_n > 1, "the call made no allocation at all");                    \
  } while (0)

/* A main for one suite: exits 0 only if every test passed. */
#define TT_MAIN(suite_fn)                                   \
  int main(void) {                                          \
    SRunner *sr = srunner_create(suite_fn());               \
    int failed;                                             \
    srunner_run_all(sr, CK_NORMAL);                         \
    failed = srunner_ntests_failed(sr);                     \
    srunner_free(sr);                                       \
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;            \
  }

#endif /* TSESIM_TEST_H */
