/*
 * ids.c - identifier checks: digits only, length per kind, and check digits
 * (Luhn for ICCID and IMEI, ISO 7064 MOD 97-10 for EID).
 */
#include <string.h>

#include "check_digits.h"
#include "tsesim_int.h"

static const char *const kind_names[] = {NULL, "eid", "iccid", "imei", "mdn"};

const char *tsesim__id_kind_name(tsesim_id_kind kind) {
  if (kind >= TSESIM_ID_EID && kind <= TSESIM_ID_MDN) return kind_names[kind];
  return NULL;
}

tsesim_id_kind tsesim__id_kind_parse(const char *name) {
  int k;
  for (k = TSESIM_ID_EID; k <= TSESIM_ID_MDN; k++)
    if (tsesim__ascii_ieq(name, kind_names[k])) return (tsesim_id_kind)k;
  return TSESIM_ID_UNKNOWN;
}

tsesim_code tsesim__id_check(tsesim_id_kind kind, const char *id, int verify_checksums,
                             char *errbuf) {
  const char *name = tsesim__id_kind_name(kind);
  char shown[64];
  size_t len, lo, hi;

  if (!name) {
    tsesim__errbuf_set(errbuf, "kind %d: unknown identifier kind", (int)kind);
    return TSESIM_E_INVAL;
  }
  if (!id) {
    tsesim__errbuf_set(errbuf, "%s: NULL", name);
    return TSESIM_E_INVAL;
  }
  if (!id[0]) {
    tsesim__errbuf_set(errbuf, "%s: empty", name);
    return TSESIM_E_INVAL;
  }
  for (len = 0; id[len]; len++) {
    if (id[len] < '0' || id[len] > '9') {
      tsesim__quote(shown, sizeof shown, id, 40);
      tsesim__errbuf_set(errbuf, "%s %s: not a digit at position %lu", name, shown,
                         (unsigned long)len + 1);
      return TSESIM_E_INVAL;
    }
  }
  switch (kind) {
    case TSESIM_ID_EID:
      lo = hi = 32;
      break;
    case TSESIM_ID_ICCID:
      lo = 19;
      hi = 20;
      break;
    case TSESIM_ID_IMEI:
      lo = hi = 15;
      break;
    default:
      lo = hi = 10;
      break;
  }
  if (len < lo || len > hi) {
    tsesim__quote(shown, sizeof shown, id, 40);
    if (lo == hi)
      tsesim__errbuf_set(errbuf, "%s %s: %lu digits, expected %lu", name, shown, (unsigned long)len,
                         (unsigned long)lo);
    else
      tsesim__errbuf_set(errbuf, "%s %s: %lu digits, expected %lu or %lu", name, shown,
                         (unsigned long)len, (unsigned long)lo, (unsigned long)hi);
    return TSESIM_E_INVAL;
  }
  if (!verify_checksums) return TSESIM_OK;
  if (kind == TSESIM_ID_EID) {
    int want = tsesim__mod97_digits(id, len - 2);
    int got = (id[len - 2] - '0') * 10 + (id[len - 1] - '0');
    if (got != want) {
      tsesim__errbuf_set(errbuf, "%s: check digits %02d do not match (expected %02d)", name, got,
                         want);
      return TSESIM_E_INVAL;
    }
  } else if (kind == TSESIM_ID_ICCID || kind == TSESIM_ID_IMEI) {
    int want = tsesim__luhn_digit(id, len - 1);
    int got = id[len - 1] - '0';
    if (got != want) {
      tsesim__errbuf_set(errbuf, "%s: check digit %d does not match (expected %d)", name, got,
                         want);
      return TSESIM_E_INVAL;
    }
  }
  return TSESIM_OK;
}

tsesim_code tsesim_id_validate(tsesim_id_kind kind, const char *id, char *errbuf) {
  return tsesim__id_check(kind, id, 1, errbuf);
}
