/*
 * fuzz_id_validate.c - tsesim_id_validate over every kind.
 *
 * Input: one byte, then the identifier. The byte's low three bits pick the
 * kind (0..7: unknown, eid, iccid, imei, mdn and three kinds that do not
 * exist); bit 3 passes a NULL errbuf; 0xff passes a NULL identifier. The
 * rest is the identifier, as a NUL-terminated copy (it ends at a NUL byte).
 *
 * Checks: the answer is TSESIM_OK exactly when fuzz_ids.h's reading of the
 * manual says the identifier is valid (digits only, the kind's length, the
 * check digits), else TSESIM_E_INVAL with a NUL-terminated reason in errbuf.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  char *id = NULL;
  int kind, use_errbuf;
  tsesim_code rc;

  if (size < 1) return 0;
  kind = data[0] & 7;
  use_errbuf = !(data[0] & 8);
  if (data[0] != 0xff) {
    id = malloc(size); /* size - 1 bytes and the NUL */
    if (!id) return 0;
    memcpy(id, data + 1, size - 1);
    id[size - 1] = '\0';
  }
  memset(errbuf, 0xAA, sizeof errbuf); /* no NUL anywhere until the call writes one */
  rc = tsesim_id_validate((tsesim_id_kind)kind, id, use_errbuf ? errbuf : NULL);
  if (fuzz_id_valid(kind, id, 1)) {
    FUZZ_CHECK(rc == TSESIM_OK);
  } else {
    FUZZ_CHECK(rc == TSESIM_E_INVAL);
    if (use_errbuf) FUZZ_CHECK(fuzz_errbuf_ok(errbuf));
  }
  free(id);
  return 0;
}
