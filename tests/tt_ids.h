/*
 * tt_ids.h - valid identifiers on demand, for tests, examples of data and
 * benchmarks: deterministic from a seed, check digits computed here
 * independently of the library.
 */
#ifndef TT_IDS_H
#define TT_IDS_H

#include <string.h>

#include "tsesim.h"

static inline unsigned long tt_next(unsigned long *seed) {
  *seed = *seed * 6364136223846793005UL + 1442695040888963407UL;
  return *seed >> 33;
}

/* Fills out[0..n-1) with prefix then digits from seed, and sets the Luhn
 * check digit at out[n-1]; out gets n digits and a NUL. */
static inline void tt_luhn_id(char *out, size_t n, unsigned long seed, const char *prefix) {
  size_t i, plen = strlen(prefix);
  unsigned sum = 0;
  int dbl = 1;
  for (i = 0; i + 1 < n; i++) out[i] = i < plen ? prefix[i] : (char)('0' + tt_next(&seed) % 10);
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
  for (i = 2; i < 30; i++) out[i] = (char)('0' + tt_next(&seed) % 10);
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

#endif /* TT_IDS_H */
