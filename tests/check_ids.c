/*
 * check_ids.c - tsesim_id_validate: digits, lengths and check digits of
 * EID (32, ISO 7064 MOD 97-10), ICCID (19/20, Luhn), IMEI (15, Luhn) and
 * MDN (10, no check digit), and the exact reasons written to errbuf.
 *
 * Expected check digits are computed here independently of lib/ids.c: Luhn
 * by trying each digit until the whole number sums to 0 mod 10, MOD 97-10 by
 * trying each pair until the whole number is 1 mod 97.
 */
#include "tsesim_test.h"

/* ---- an independent oracle ---- */

/* The whole string (check digit included) passes Luhn: every second digit
 * from the right, starting with the one left of the check digit, doubled. */
static int oracle_luhn_ok(const char *s) {
  size_t n = strlen(s), i;
  unsigned sum = 0;
  for (i = 0; i < n; i++) {
    unsigned d = (unsigned)(s[n - 1 - i] - '0');
    if (i % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 == 0;
}

/* The Luhn digit that completes payload (found by trial). */
static int oracle_luhn_digit(const char *payload) {
  char buf[64];
  size_t n = strlen(payload);
  int d;
  memcpy(buf, payload, n);
  buf[n + 1] = '\0';
  for (d = 0; d < 10; d++) {
    buf[n] = (char)('0' + d);
    if (oracle_luhn_ok(buf)) return d;
  }
  ck_abort_msg("no Luhn digit for %s", payload);
  return -1;
}

/* The decimal number s mod 97. */
static unsigned oracle_mod97(const char *s) {
  unsigned r = 0;
  for (; *s; s++) r = (r * 10 + (unsigned)(*s - '0')) % 97;
  return r;
}

/* The two check digits (2..98) that make payload||cc == 1 mod 97. */
static int oracle_eid_digits(const char *payload) {
  char buf[64];
  size_t n = strlen(payload);
  int cc;
  memcpy(buf, payload, n);
  buf[n + 2] = '\0';
  for (cc = 2; cc <= 98; cc++) {
    buf[n] = (char)('0' + cc / 10);
    buf[n + 1] = (char)('0' + cc % 10);
    if (oracle_mod97(buf) == 1) return cc;
  }
  ck_abort_msg("no MOD 97-10 digits for %s", payload);
  return -1;
}

static int oracle_valid(tsesim_id_kind kind, const char *id) {
  switch (kind) {
    case TSESIM_ID_EID:
      return strlen(id) == 32 && oracle_mod97(id) == 1;
    case TSESIM_ID_ICCID:
      return (strlen(id) == 19 || strlen(id) == 20) && oracle_luhn_ok(id);
    case TSESIM_ID_IMEI:
      return strlen(id) == 15 && oracle_luhn_ok(id);
    case TSESIM_ID_MDN:
      return strlen(id) == 10;
    default:
      return 0;
  }
}

/* Validates and asserts TSESIM_E_INVAL with exactly `want` in errbuf. */
static void expect_reject(tsesim_id_kind kind, const char *id, const char *want) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  memset(errbuf, '#', sizeof errbuf);
  ck_assert_int_eq(tsesim_id_validate(kind, id, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, want);
  /* and the same without an errbuf */
  ck_assert_int_eq(tsesim_id_validate(kind, id, NULL), TSESIM_E_INVAL);
}

/* ---- valid identifiers ---- */

/* Real-world-shaped literals, each checked against the oracle first (and by
 * hand: see the comments). */
static const struct {
  tsesim_id_kind kind;
  const char *id;
} valid_literals[] = {
    /* GSMA SGP.22 example EIDs: the whole number mod 97 is 1 */
    {TSESIM_ID_EID, "89049032123451234512345678901235"},
    {TSESIM_ID_EID, "89001012012341234012345678901224"},
    {TSESIM_ID_EID, "89044045116727494800000004479366"},
    /* ICCIDs: 89 (telecom) 01 (US) ..., 20 and 19 digits with a Luhn digit */
    {TSESIM_ID_ICCID, "89014103211118510720"},
    {TSESIM_ID_ICCID, "8944500102198304826"},
    {TSESIM_ID_ICCID, "8901260882310465379"},
    /* IMEIs: 490154203237518 is the textbook example; 35209900176148 + 1
     * (Luhn sum of the payload is 49, so the check digit is 1) */
    {TSESIM_ID_IMEI, "490154203237518"},
    {TSESIM_ID_IMEI, "352099001761481"},
    {TSESIM_ID_IMEI, "356938035643809"},
    /* MDNs: ten digits, no check digit, anything goes */
    {TSESIM_ID_MDN, "9085551234"},
    {TSESIM_ID_MDN, "0000000000"},
    {TSESIM_ID_MDN, "9999999999"},
};

START_TEST(test_valid_literal) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_id_kind kind = valid_literals[_i].kind;
  const char *id = valid_literals[_i].id;
  ck_assert_msg(oracle_valid(kind, id), "the literal %s itself is wrong", id);
  ck_assert_int_eq(tsesim_id_validate(kind, id, errbuf), TSESIM_OK);
  ck_assert_int_eq(tsesim_id_validate(kind, id, NULL), TSESIM_OK);
}
END_TEST

/* Many generated identifiers of every kind and length, checked against the
 * oracle as well. */
START_TEST(test_valid_generated) {
  unsigned long seed;
  char errbuf[TSESIM_ERRBUF_SIZE];
  for (seed = 1; seed <= 500; seed++) {
    char eid[33], iccid19[21], iccid20[21], imei[16], mdn[11];
    tt_eid(eid, seed);
    tt_iccid(iccid19, seed, 19);
    tt_iccid(iccid20, seed, 20);
    tt_imei(imei, seed);
    snprintf(mdn, sizeof mdn, "%010lu", seed * 7919UL);
    ck_assert(oracle_valid(TSESIM_ID_EID, eid));
    ck_assert(oracle_valid(TSESIM_ID_ICCID, iccid19));
    ck_assert(oracle_valid(TSESIM_ID_ICCID, iccid20));
    ck_assert(oracle_valid(TSESIM_ID_IMEI, imei));
    ck_assert_msg(tsesim_id_validate(TSESIM_ID_EID, eid, errbuf) == TSESIM_OK, "%s: %s", eid,
                  errbuf);
    ck_assert_msg(tsesim_id_validate(TSESIM_ID_ICCID, iccid19, errbuf) == TSESIM_OK, "%s: %s",
                  iccid19, errbuf);
    ck_assert_msg(tsesim_id_validate(TSESIM_ID_ICCID, iccid20, errbuf) == TSESIM_OK, "%s: %s",
                  iccid20, errbuf);
    ck_assert_msg(tsesim_id_validate(TSESIM_ID_IMEI, imei, errbuf) == TSESIM_OK, "%s: %s", imei,
                  errbuf);
    ck_assert_msg(tsesim_id_validate(TSESIM_ID_MDN, mdn, errbuf) == TSESIM_OK, "%s: %s", mdn,
                  errbuf);
  }
}
END_TEST

/* ---- lengths ---- */

static const struct {
  tsesim_id_kind kind;
  const char *name;
  const char *valid;    /* a valid identifier of the kind */
  const char *expected; /* the allowed lengths as the message says them */
} length_cases[] = {
    {TSESIM_ID_EID, "eid", "89049032123451234512345678901235", "32"},
    {TSESIM_ID_ICCID, "iccid", "8944500102198304826", "19 or 20"},
    {TSESIM_ID_ICCID, "iccid", "89014103211118510720", "19 or 20"},
    {TSESIM_ID_IMEI, "imei", "490154203237518", "15"},
    {TSESIM_ID_MDN, "mdn", "9085551234", "10"},
};

START_TEST(test_length_off_by_one) {
  const char *valid = length_cases[_i].valid;
  size_t n = strlen(valid);
  char shorter[40], longer[40], want[TSESIM_ERRBUF_SIZE];

  /* one digit fewer, and one more (a 19-digit ICCID minus one is 18, a
   * 20-digit one plus one is 21; the others stay valid lengths) */
  memcpy(shorter, valid, n - 1);
  shorter[n - 1] = '\0';
  memcpy(longer, valid, n);
  longer[n] = '7';
  longer[n + 1] = '\0';

  if (!(length_cases[_i].kind == TSESIM_ID_ICCID && n == 20)) {
    snprintf(want, sizeof want, "%s \"%s\": %lu digits, expected %s", length_cases[_i].name,
             shorter, (unsigned long)(n - 1), length_cases[_i].expected);
    expect_reject(length_cases[_i].kind, shorter, want);
  }
  if (!(length_cases[_i].kind == TSESIM_ID_ICCID && n == 19)) {
    snprintf(want, sizeof want, "%s \"%s\": %lu digits, expected %s", length_cases[_i].name, longer,
             (unsigned long)(n + 1), length_cases[_i].expected);
    expect_reject(length_cases[_i].kind, longer, want);
  }
}
END_TEST

/* A much shorter and a single-digit identifier are length errors too. */
START_TEST(test_length_far_off) {
  expect_reject(TSESIM_ID_EID, "8", "eid \"8\": 1 digits, expected 32");
  expect_reject(TSESIM_ID_ICCID, "8901410321",
                "iccid \"8901410321\": 10 digits, expected 19 or 20");
  expect_reject(TSESIM_ID_IMEI, "4901542032375180000",
                "imei \"4901542032375180000\": 19 digits, expected 15");
  expect_reject(TSESIM_ID_MDN, "908555123", "mdn \"908555123\": 9 digits, expected 10");
}
END_TEST

/* ---- check digits ---- */

/* The two examples of the issue, literally. */
START_TEST(test_bad_check_digits_literal) {
  expect_reject(TSESIM_ID_EID, "89049032123451234512345678904213",
                "eid: check digits 13 do not match (expected 42)");
  expect_reject(TSESIM_ID_IMEI, "352099001761482",
                "imei: check digit 2 does not match (expected 1)");
  expect_reject(TSESIM_ID_ICCID, "89014103211118510721",
                "iccid: check digit 1 does not match (expected 0)");
  /* a leading zero of the pair is shown */
  expect_reject(TSESIM_ID_EID, "89049032123451234512345678901205",
                "eid: check digits 05 do not match (expected 35)");
}
END_TEST

/* Every wrong check digit (pair) of a valid identifier of each Luhn/MOD 97
 * kind, with the expected value from the oracle. */
static const struct {
  tsesim_id_kind kind;
  const char *id;
} check_cases[] = {
    {TSESIM_ID_EID, "89049032123451234512345678901235"},
    {TSESIM_ID_EID, "89001012012341234012345678901224"},
    {TSESIM_ID_ICCID, "89014103211118510720"},
    {TSESIM_ID_ICCID, "8944500102198304826"},
    {TSESIM_ID_IMEI, "490154203237518"},
    {TSESIM_ID_IMEI, "352099001761481"},
};

START_TEST(test_every_wrong_check_digit) {
  tsesim_id_kind kind = check_cases[_i].kind;
  const char *id = check_cases[_i].id;
  size_t n = strlen(id);
  char bad[40], payload[40], want[TSESIM_ERRBUF_SIZE];
  int got, expected;

  memcpy(bad, id, n + 1);
  if (kind == TSESIM_ID_EID) {
    memcpy(payload, id, n - 2);
    payload[n - 2] = '\0';
    expected = oracle_eid_digits(payload);
    for (got = 0; got < 100; got++) {
      if (got == expected) continue;
      bad[n - 2] = (char)('0' + got / 10);
      bad[n - 1] = (char)('0' + got % 10);
      snprintf(want, sizeof want, "eid: check digits %02d do not match (expected %02d)", got,
               expected);
      expect_reject(kind, bad, want);
    }
  } else {
    memcpy(payload, id, n - 1);
    payload[n - 1] = '\0';
    expected = oracle_luhn_digit(payload);
    for (got = 0; got < 10; got++) {
      if (got == expected) continue;
      bad[n - 1] = (char)('0' + got);
      snprintf(want, sizeof want, "%s: check digit %d does not match (expected %d)",
               kind == TSESIM_ID_IMEI ? "imei" : "iccid", got, expected);
      expect_reject(kind, bad, want);
    }
  }
}
END_TEST

/* A single changed payload digit anywhere is caught by both algorithms, and
 * the expected value reported is that of the changed payload. */
START_TEST(test_changed_payload_digit) {
  tsesim_id_kind kind = check_cases[_i].kind;
  const char *id = check_cases[_i].id;
  size_t n = strlen(id), pos, ncheck = kind == TSESIM_ID_EID ? 2 : 1;
  char bad[40], payload[40], want[TSESIM_ERRBUF_SIZE];

  for (pos = 0; pos + ncheck < n; pos++) {
    memcpy(bad, id, n + 1);
    bad[pos] = (char)('0' + (bad[pos] - '0' + 3) % 10);
    memcpy(payload, bad, n - ncheck);
    payload[n - ncheck] = '\0';
    if (kind == TSESIM_ID_EID)
      snprintf(want, sizeof want, "eid: check digits %.2s do not match (expected %02d)",
               bad + n - 2, oracle_eid_digits(payload));
    else
      snprintf(want, sizeof want, "%s: check digit %c does not match (expected %d)",
               kind == TSESIM_ID_IMEI ? "imei" : "iccid", bad[n - 1], oracle_luhn_digit(payload));
    expect_reject(kind, bad, want);
  }
}
END_TEST

/* ---- characters ---- */

static const struct {
  tsesim_id_kind kind;
  const char *id;
  const char *want;
} non_digit_cases[] = {
    {TSESIM_ID_IMEI, "35209900176148X", "imei \"35209900176148X\": not a digit at position 15"},
    {TSESIM_ID_IMEI, "X52099001761481", "imei \"X52099001761481\": not a digit at position 1"},
    {TSESIM_ID_EID, "8904903212345123451234567890123 ",
     "eid \"8904903212345123451234567890123 \": not a digit at position 32"},
    {TSESIM_ID_EID, " 89049032123451234512345678901235",
     "eid \" 89049032123451234512345678901235\": not a digit at position 1"},
    {TSESIM_ID_ICCID, "8901-4103211118510720",
     "iccid \"8901-4103211118510720\": not a digit at position 5"},
    {TSESIM_ID_ICCID, "89014103211118510720\n",
     "iccid \"89014103211118510720\\x0A\": not a digit at position 21"},
    {TSESIM_ID_MDN, "908-555-1234", "mdn \"908-555-1234\": not a digit at position 4"},
    {TSESIM_ID_MDN, "+19085551234", "mdn \"+19085551234\": not a digit at position 1"},
    /* a non-ASCII byte and a quote are shown escaped, the position is a byte */
    {TSESIM_ID_MDN,
     "908\xC3\xA9"
     "551234",
     "mdn \"908\\xC3\\xA9551234\": not a digit at position 4"},
    {TSESIM_ID_IMEI, "4901\"4203237518", "imei \"4901\\x224203237518\": not a digit at position 5"},
    /* letters are reported before the length */
    {TSESIM_ID_EID, "1a", "eid \"1a\": not a digit at position 2"},
    /* fullwidth digit one (U+FF11) is not a digit */
    {TSESIM_ID_MDN,
     "\xEF\xBC\x91"
     "23456789",
     "mdn \"\\xEF\\xBC\\x9123456789\": not a digit at position 1"},
};

START_TEST(test_non_digit) {
  expect_reject(non_digit_cases[_i].kind, non_digit_cases[_i].id, non_digit_cases[_i].want);
}
END_TEST

static const struct {
  tsesim_id_kind kind;
  const char *name;
} kinds[] = {
    {TSESIM_ID_EID, "eid"},
    {TSESIM_ID_ICCID, "iccid"},
    {TSESIM_ID_IMEI, "imei"},
    {TSESIM_ID_MDN, "mdn"},
};

START_TEST(test_empty_and_null) {
  char want[64];
  snprintf(want, sizeof want, "%s: empty", kinds[_i].name);
  expect_reject(kinds[_i].kind, "", want);
  snprintf(want, sizeof want, "%s: NULL", kinds[_i].name);
  expect_reject(kinds[_i].kind, NULL, want);
}
END_TEST

/* ---- kinds ---- */

static const struct {
  int kind;
  const char *want;
} unknown_kinds[] = {
    {0, "kind 0: unknown identifier kind"},
    {5, "kind 5: unknown identifier kind"},
    {-1, "kind -1: unknown identifier kind"},
};

START_TEST(test_unknown_kind) {
  tsesim_id_kind kind = (tsesim_id_kind)unknown_kinds[_i].kind;
  /* whatever the identifier, valid for some kind or not, even NULL */
  expect_reject(kind, "89049032123451234512345678901235", unknown_kinds[_i].want);
  expect_reject(kind, "9085551234", unknown_kinds[_i].want);
  expect_reject(kind, "", unknown_kinds[_i].want);
  expect_reject(kind, NULL, unknown_kinds[_i].want);
}
END_TEST

/* ---- errbuf ---- */

/* Every kind of failure with errbuf NULL: a result, no crash. */
START_TEST(test_errbuf_null) {
  ck_assert_int_eq(tsesim_id_validate(kinds[_i].kind, NULL, NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_id_validate(kinds[_i].kind, "", NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_id_validate(kinds[_i].kind, "12x", NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_id_validate(kinds[_i].kind, "123", NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_id_validate((tsesim_id_kind)9, "123", NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_id_validate(kinds[_i].kind, valid_literals[3 * _i].id, NULL), TSESIM_OK);
}
END_TEST

#define CANARY 0xA5

/* Asserts a NUL inside the first TSESIM_ERRBUF_SIZE bytes and the canary
 * untouched everywhere after it. */
static void check_canary(const unsigned char *buf, size_t size) {
  size_t i;
  ck_assert_ptr_nonnull(memchr(buf, '\0', TSESIM_ERRBUF_SIZE));
  for (i = TSESIM_ERRBUF_SIZE; i < size; i++)
    ck_assert_msg(buf[i] == CANARY, "errbuf overflow at byte %lu", (unsigned long)i);
}

/* 300-character identifiers (letters; digits with a letter at the end; all
 * digits) never write past TSESIM_ERRBUF_SIZE bytes, and the identifier is
 * shown truncated to its first 40 characters. */
START_TEST(test_errbuf_bounded) {
  unsigned char buf[TSESIM_ERRBUF_SIZE + 256];
  char id[301], want[TSESIM_ERRBUF_SIZE], first40[41];
  const char *name = kinds[_i].name;
  tsesim_id_kind kind = kinds[_i].kind;

  /* all non-digits */
  memset(id, 'x', 300);
  id[300] = '\0';
  memset(first40, 'x', 40);
  first40[40] = '\0';
  memset(buf, CANARY, sizeof buf);
  ck_assert_int_eq(tsesim_id_validate(kind, id, (char *)buf), TSESIM_E_INVAL);
  check_canary(buf, sizeof buf);
  snprintf(want, sizeof want, "%s \"%s...\": not a digit at position 1", name, first40);
  ck_assert_str_eq((char *)buf, want);

  /* non-digit bytes that expand to \xHH when shown */
  memset(id, '\xFF', 300);
  memset(buf, CANARY, sizeof buf);
  ck_assert_int_eq(tsesim_id_validate(kind, id, (char *)buf), TSESIM_E_INVAL);
  check_canary(buf, sizeof buf);
  ck_assert_msg(strstr((char *)buf, "not a digit at position 1") != NULL, "%s", (char *)buf);
  ck_assert_msg(strncmp((char *)buf, name, strlen(name)) == 0, "%s", (char *)buf);

  /* digits up to a letter at position 300 */
  memset(id, '1', 299);
  id[299] = 'Z';
  memset(first40, '1', 40);
  memset(buf, CANARY, sizeof buf);
  ck_assert_int_eq(tsesim_id_validate(kind, id, (char *)buf), TSESIM_E_INVAL);
  check_canary(buf, sizeof buf);
  snprintf(want, sizeof want, "%s \"%s...\": not a digit at position 300", name, first40);
  ck_assert_str_eq((char *)buf, want);

  /* 300 digits: a length error */
  id[299] = '1';
  memset(buf, CANARY, sizeof buf);
  ck_assert_int_eq(tsesim_id_validate(kind, id, (char *)buf), TSESIM_E_INVAL);
  check_canary(buf, sizeof buf);
  ck_assert_msg(strstr((char *)buf, ": 300 digits, expected ") != NULL, "%s", (char *)buf);
  snprintf(want, sizeof want, "%s \"%s...\": 300 digits", name, first40);
  ck_assert_msg(strncmp((char *)buf, want, strlen(want)) == 0, "%s", (char *)buf);
}
END_TEST

/* ---- the internal check without check digits (used by the builder) ---- */

START_TEST(test_check_without_checksums) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  ck_assert_int_eq(tsesim__id_check(TSESIM_ID_EID, "89049032123451234512345678904213", 0, errbuf),
                   TSESIM_OK);
  ck_assert_int_eq(tsesim__id_check(TSESIM_ID_IMEI, "352099001761482", 0, errbuf), TSESIM_OK);
  ck_assert_int_eq(tsesim__id_check(TSESIM_ID_ICCID, "89014103211118510721", 0, errbuf), TSESIM_OK);
  /* lengths and digits are still checked */
  ck_assert_int_eq(tsesim__id_check(TSESIM_ID_IMEI, "35209900176148", 0, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "imei \"35209900176148\": 14 digits, expected 15");
  ck_assert_int_eq(tsesim__id_check(TSESIM_ID_IMEI, "35209900176148X", 0, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "imei \"35209900176148X\": not a digit at position 15");
  ck_assert_int_eq(tsesim__id_check(TSESIM_ID_EID, "8904903212345123451234567890421", 0, errbuf),
                   TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "eid \"8904903212345123451234567890421\": 31 digits, expected 32");
}
END_TEST

/* ---- allocation: tsesim_id_validate makes none ---- */

/*
 * The rule is an allocation-failure loop for every public call. The one
 * call of this suite allocates nothing, so its loop is this: each case runs
 * with the first allocation set to fail, and must give the same answer and
 * count no allocation at all. A future version that allocates fails here, and
 * then needs a TT_FAIL_EACH_ALLOC loop (tsesim_test.h) instead.
 */
static const struct {
  tsesim_id_kind kind;
  const char *id;
  tsesim_code want;
} alloc_cases[] = {
    {TSESIM_ID_EID, "89049032123451234512345678901235", TSESIM_OK},
    {TSESIM_ID_ICCID, "89014103211118510720", TSESIM_OK},
    {TSESIM_ID_ICCID, "8944500102198304826", TSESIM_OK},
    {TSESIM_ID_IMEI, "490154203237518", TSESIM_OK},
    {TSESIM_ID_MDN, "9085551234", TSESIM_OK},
    {TSESIM_ID_EID, "89049032123451234512345678904213", TSESIM_E_INVAL}, /* check digits */
    {TSESIM_ID_IMEI, "352099001761482", TSESIM_E_INVAL},                 /* check digit */
    {TSESIM_ID_IMEI, "35209900176148", TSESIM_E_INVAL},                  /* length */
    {TSESIM_ID_MDN,
     "908\xC3\xA9"
     "551234",
     TSESIM_E_INVAL}, /* escaped byte */
    {TSESIM_ID_ICCID, "", TSESIM_E_INVAL},
    {TSESIM_ID_ICCID, NULL, TSESIM_E_INVAL},
    {(tsesim_id_kind)9, "123", TSESIM_E_INVAL},
};

START_TEST(test_validate_no_alloc) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  int with_errbuf;
  for (with_errbuf = 0; with_errbuf < 2; with_errbuf++) {
    size_t live0 = tsesim__test_alloc_live();
    unsigned long made, failed;
    tsesim_code rc;
    errbuf[0] = '\0';
    tsesim__test_alloc_reset();
    tsesim__test_alloc_fail_at(1); /* the first allocation, if the call made one, fails */
    rc = tsesim_id_validate(alloc_cases[_i].kind, alloc_cases[_i].id, with_errbuf ? errbuf : NULL);
    made = tsesim__test_alloc_count();
    failed = tsesim__test_alloc_failed();
    tsesim__test_alloc_fail_at(0);
    ck_assert_msg(made == 0 && failed == 0,
                  "case %d: tsesim_id_validate made %lu allocations (%lu failed): it needs a "
                  "TT_FAIL_EACH_ALLOC loop",
                  _i, made, failed);
    ck_assert_msg(rc == alloc_cases[_i].want, "case %d: %s, expected %s (%s)", _i,
                  tsesim_code_name(rc), tsesim_code_name(alloc_cases[_i].want), errbuf);
    if (with_errbuf && rc != TSESIM_OK) ck_assert_str_ne(errbuf, "");
    ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
  }
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("ids");
  TCase *tc;

  tc = tcase_create("valid");
  tcase_add_loop_test(tc, test_valid_literal, 0, (int)ARRAY_LEN(valid_literals));
  tcase_add_test(tc, test_valid_generated);
  suite_add_tcase(s, tc);

  tc = tcase_create("length");
  tcase_add_loop_test(tc, test_length_off_by_one, 0, (int)ARRAY_LEN(length_cases));
  tcase_add_test(tc, test_length_far_off);
  suite_add_tcase(s, tc);

  tc = tcase_create("check_digits");
  tcase_add_test(tc, test_bad_check_digits_literal);
  tcase_add_loop_test(tc, test_every_wrong_check_digit, 0, (int)ARRAY_LEN(check_cases));
  tcase_add_loop_test(tc, test_changed_payload_digit, 0, (int)ARRAY_LEN(check_cases));
  tcase_add_test(tc, test_check_without_checksums);
  suite_add_tcase(s, tc);

  tc = tcase_create("characters");
  tcase_add_loop_test(tc, test_non_digit, 0, (int)ARRAY_LEN(non_digit_cases));
  tcase_add_loop_test(tc, test_empty_and_null, 0, (int)ARRAY_LEN(kinds));
  tcase_add_loop_test(tc, test_unknown_kind, 0, (int)ARRAY_LEN(unknown_kinds));
  suite_add_tcase(s, tc);

  tc = tcase_create("errbuf");
  tcase_add_loop_test(tc, test_errbuf_null, 0, (int)ARRAY_LEN(kinds));
  tcase_add_loop_test(tc, test_errbuf_bounded, 0, (int)ARRAY_LEN(kinds));
  suite_add_tcase(s, tc);

  tc = tcase_create("alloc");
  tcase_add_loop_test(tc, test_validate_no_alloc, 0, (int)ARRAY_LEN(alloc_cases));
  suite_add_tcase(s, tc);

  return s;
}

TT_MAIN(suite)
