/*
 * secret.c - handling of secrets and credentials: zeroing memory the
 * compiler may not drop, and comparing credentials in constant time.
 * Compiled into the library and into the tools that serve HTTP (tsesim-sim,
 * the coming listener), which check credentials sent by a peer.
 */
#include <string.h>

#include "tsesim_int.h"

/* Through a volatile pointer the stores cannot be removed as dead, even
 * when the block is freed right after (the reason memset is not enough). */
void tsesim__memzero(void *p, size_t n) {
  volatile unsigned char *v = p;
  if (!p) return;
  while (n--) *v++ = 0;
}

int tsesim__ct_equal(const void *a, size_t alen, const void *b, size_t blen) {
  const volatile unsigned char *x = a, *y = b;
  size_t i;
  unsigned char diff = 0;
  size_t lendiff = alen ^ blen;
  /* Time depends on the expected length (alen) only, never on where the
   * first difference is or on how long the guess is. */
  for (i = 0; i < alen; i++)
    diff |= (unsigned char)(x[i] ^ (i < blen ? y[i] : (unsigned char)~x[i]));
  return (diff | (lendiff != 0)) == 0;
}

int tsesim__ct_streq(const char *expected, const char *given) {
  if (!expected || !given) return expected == given;
  return tsesim__ct_equal(expected, strlen(expected), given, strlen(given));
}
