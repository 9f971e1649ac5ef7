/*
 * fuzz_ids.h - what the fuzz targets know about identifiers, written here
 * from tsesim_id_validate(3) and independently of lib/ids.c, so that the
 * targets can check the library against it: the rules (digits only, the
 * kind's length, the check digits) and valid identifiers made from a seed.
 */
#ifndef FUZZ_IDS_H
#define FUZZ_IDS_H

#include <stddef.h>
#include <string.h>

#include "tsesim.h"

/* Stops the fuzzer on a broken promise; libFuzzer reports it as a crash with
 * the input that caused it. */
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

/* 1 when errbuf (TSESIM_ERRBUF_SIZE bytes) holds a non-empty NUL-terminated text. */
static inline int fuzz_errbuf_ok(const char *errbuf) {
  return errbuf[0] != '\0' && memchr(errbuf, '\0', TSESIM_ERRBUF_SIZE) != NULL;
}

/* The Luhn sum of all n digits at s, check digit included: 0 mod 10 when valid. */
static inline unsigned fuzz_luhn_sum(const char *s, size_t n) {
  unsigned sum = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned d = (unsigned)(s[n - 1 - i] - '0');
    if (i % 2) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10;
}

/* The n-digit number at s modulo 97: 1 for a valid EID. */
static inline unsigned fuzz_mod97(const char *s, size_t n) {
  unsigned r = 0;
  size_t i;
  for (i = 0; i < n; i++) r = (r * 10 + (unsigned)(s[i] - '0')) % 97;
  return r;
}

/* 1 when id is a valid identifier of kind, as tsesim_id_validate(3) states it;
 * checksums 0 leaves out the check digits (tsesim_request_set_verify_checksums(3)). */
static inline int fuzz_id_valid(int kind, const char *id, int checksums) {
  size_t n, i;
  if (!id) return 0;
  n = strlen(id);
  for (i = 0; i < n; i++)
    if (id[i] < '0' || id[i] > '9') return 0;
  switch (kind) {
    case TSESIM_ID_EID:
      /* ISO 7064 check digits are 02..98: 00, 01 and 99 are refused even
       * where the number is 1 modulo 97. */
      return n == 32 && (!checksums || (fuzz_mod97(id, n) == 1 && strncmp(id + 30, "02", 2) >= 0 &&
                                        strncmp(id + 30, "98", 2) <= 0));
    case TSESIM_ID_ICCID:
      return (n == 19 || n == 20) && (!checksums || fuzz_luhn_sum(id, n) == 0);
    case TSESIM_ID_IMEI:
      return n == 15 && (!checksums || fuzz_luhn_sum(id, n) == 0);
    case TSESIM_ID_MDN:
      return n == 10;
    default:
      return 0;
  }
}

/* Writes into out (at least 33 bytes) an identifier of n digits (1..32) made
 * from seed, whose check digits are right for kind (EID: the last two, ICCID
 * and IMEI: the last one, others: none); wrong 1 makes them wrong instead. */
static inline void fuzz_id_make(char *out, size_t n, int kind, unsigned long seed, int wrong) {
  size_t i;
  for (i = 0; i < n; i++) {
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    out[i] = (char)('0' + (seed >> 33) % 10);
  }
  out[n] = '\0';
  if (kind == TSESIM_ID_EID && n >= 3) {
    unsigned c;
    out[n - 2] = out[n - 1] = '0';
    c = 98 - fuzz_mod97(out, n); /* 2..98: the whole number is 1 modulo 97 */
    if (wrong) c = (c + 1 + (unsigned)(seed % 96)) % 97 + 2 * (seed % 2);
    out[n - 2] = (char)('0' + c / 10);
    out[n - 1] = (char)('0' + c % 10);
  } else if ((kind == TSESIM_ID_ICCID || kind == TSESIM_ID_IMEI) && n >= 2) {
    unsigned c;
    out[n - 1] = '0';
    c = (10 - fuzz_luhn_sum(out, n)) % 10;
    if (wrong) c = (c + 1 + (unsigned)(seed % 9)) % 10;
    out[n - 1] = (char)('0' + c);
  }
}

#endif
