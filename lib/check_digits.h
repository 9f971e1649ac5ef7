/*
 * check_digits.h - the check-digit arithmetic of device identifiers: Luhn
 * (ICCID, IMEI) and ISO 7064 MOD 97-10 (EID). One copy for the library's
 * checks (ids.c) and tsesim-sim's device generator (tools/sim_make.c);
 * static inline, since the simulator sees only the library's exports.
 */
#ifndef TSESIM_CHECK_DIGITS_H
#define TSESIM_CHECK_DIGITS_H

#include <stddef.h>

/* The Luhn check digit for the n digits at s. */
static inline int tsesim__luhn_digit(const char *s, size_t n) {
  unsigned sum = 0;
  size_t i;
  int dbl = 1; /* the rightmost payload digit is doubled */
  for (i = n; i-- > 0;) {
    unsigned d = (unsigned)(s[i] - '0');
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return (int)((10 - sum % 10) % 10);
}

/* The two ISO 7064 MOD 97-10 check digits (00..98) for the n digits at s. */
static inline int tsesim__mod97_digits(const char *s, size_t n) {
  unsigned r = 0;
  size_t i;
  for (i = 0; i < n; i++) r = (r * 10 + (unsigned)(s[i] - '0')) % 97;
  r = (r * 100) % 97;
  return (int)(98 - r);
}

#endif
