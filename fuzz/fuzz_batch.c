/*
 * fuzz_batch.c - tsesim_request_add_devices, held to the call it batches.
 *
 * The input: a selector byte (bit 0: check digits off; bits 1-2: devices
 * already in the request, 0..3), then the buffer, as is.
 *
 * The same records are added one by one, here, through
 * tsesim_request_add_device into a second request: records split at '\n'
 * (a last one optional), fields at ','; a record of other than 3 fields, or
 * with a NUL byte (which a C string cannot carry), is refused without
 * asking; otherwise its non-empty fields are the device {eid, iccid, imei}.
 * The first refused record ends it. Checks:
 *   - the batch's code is that of the one-by-one run (TSESIM_OK, or
 *     TSESIM_E_INVAL at the first refused record);
 *   - accepted: the same devices (count and JSON body, byte for byte) and
 *     no message;
 *   - refused: the request as it was (count and body), a message in errbuf
 *     equal to tsesim_request_errmsg, starting "device N (record R): " for
 *     that record, and, when add_device judged it and the record holds no
 *     CR, ending with add_device's own reason.
 * Any mismatch traps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const pre[3][3] = {
    {"89049032123451234512345678901235", "89014103211118510720", "490154203237518"},
    {"89001012012341234012345678901224", NULL, "352099001761481"},
    {"89049032123451234512345678901235", "8944500102198304826", NULL},
};

static tsesim_request *new_request(int checksums, size_t k) {
  tsesim_request *req = NULL;
  size_t i;
  FUZZ_CHECK(tsesim_request_new(&req, "Acme") == TSESIM_OK);
  FUZZ_CHECK(tsesim_request_set_verify_checksums(req, checksums) == TSESIM_OK);
  for (i = 0; i < k; i++) {
    tsesim_device_id ids[3];
    size_t n = 0;
    int f;
    for (f = 0; f < 3; f++) {
      if (!pre[i][f]) continue;
      ids[n].kind = (tsesim_id_kind)(TSESIM_ID_EID + f);
      ids[n].id = pre[i][f];
      ids[n++].kind_name = NULL;
    }
    FUZZ_CHECK(tsesim_request_add_device(req, ids, n) == TSESIM_OK);
  }
  return req;
}

/* The body of req, or NULL with *rc set when it has none (no devices). */
static char *body(const tsesim_request *req, size_t *len, tsesim_code *rc) {
  char *out = NULL;
  *rc = tsesim_request_to_json(&out, len, req);
  FUZZ_CHECK((*rc == TSESIM_OK) == (out != NULL));
  return out;
}

static void same_body(const tsesim_request *a, const tsesim_request *b) {
  size_t la = 0, lb = 0;
  tsesim_code ra, rb;
  char *ja = body(a, &la, &ra), *jb = body(b, &lb, &rb);
  FUZZ_CHECK(ra == rb);
  FUZZ_CHECK(la == lb);
  FUZZ_CHECK(ra != TSESIM_OK || memcmp(ja, jb, la) == 0);
  tsesim_free(ja);
  tsesim_free(jb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf, *p, *end;
  size_t len, k;
  int checksums;
  tsesim_request *many, *one, *before;
  char errbuf[TSESIM_ERRBUF_SIZE], reason[TSESIM_ERRBUF_SIZE] = "", prefix[64] = "";
  tsesim_code rc, want = TSESIM_OK;
  unsigned long rec = 0;
  int judged = 0; /* add_device gave the reason, for a record without CR */

  if (size < 1) return 0;
  checksums = !(data[0] & 1);
  k = (size_t)(data[0] >> 1 & 3);
  buf = (const char *)data + 1;
  len = size - 1;

  many = new_request(checksums, k);
  before = new_request(checksums, k);
  one = new_request(checksums, k);
  memset(errbuf, 'Z', sizeof errbuf);
  rc = tsesim_request_add_devices(many, len ? buf : NULL, len, errbuf);
  FUZZ_CHECK(memchr(errbuf, '\0', sizeof errbuf) != NULL);
  FUZZ_CHECK(strcmp(errbuf, tsesim_request_errmsg(many)) == 0);

  /* One by one. */
  for (p = buf, end = buf + len; p < end && want == TSESIM_OK;) {
    const char *rend = memchr(p, '\n', (size_t)(end - p)), *s;
    char *field[3] = {NULL, NULL, NULL};
    size_t nf = 0, f;
    int nul = 0, cr = 0;
    if (!rend) rend = end;
    rec++;
    for (s = p;; nf++) {
      const char *c = memchr(s, ',', (size_t)(rend - s));
      const char *fe = c ? c : rend;
      if (nf < 3) {
        field[nf] = malloc((size_t)(fe - s) + 1);
        FUZZ_CHECK(field[nf] != NULL);
        memcpy(field[nf], s, (size_t)(fe - s));
        field[nf][fe - s] = '\0';
      }
      if (memchr(s, '\0', (size_t)(fe - s))) nul = 1;
      if (memchr(s, '\r', (size_t)(fe - s))) cr = 1;
      if (!c) break;
      s = c + 1;
    }
    nf++;
    snprintf(prefix, sizeof prefix, "device %lu (record %lu): ", (unsigned long)k + rec - 1, rec);
    if (nf != 3 || nul) {
      want = TSESIM_E_INVAL;
    } else {
      tsesim_device_id ids[3];
      size_t n = 0;
      for (f = 0; f < 3; f++) {
        if (!field[f][0]) continue;
        ids[n].kind = (tsesim_id_kind)(TSESIM_ID_EID + f);
        ids[n].id = field[f];
        ids[n++].kind_name = NULL;
      }
      want = tsesim_request_add_device(one, ids, n);
      FUZZ_CHECK(want == TSESIM_OK || want == TSESIM_E_INVAL);
      if (want != TSESIM_OK && !cr) {
        const char *m = tsesim_request_errmsg(one), *colon = strstr(m, ": ");
        FUZZ_CHECK(colon != NULL);
        snprintf(reason, sizeof reason, "%s", colon + 2);
        judged = 1;
      }
    }
    for (f = 0; f < 3; f++) free(field[f]);
    p = rend < end ? rend + 1 : end;
  }

  FUZZ_CHECK(rc == want);
  if (rc == TSESIM_OK) {
    FUZZ_CHECK(errbuf[0] == '\0');
    FUZZ_CHECK(tsesim_request_device_count(many) == tsesim_request_device_count(one));
    same_body(many, one);
  } else {
    size_t pl = strlen(prefix);
    FUZZ_CHECK(fuzz_errbuf_ok(errbuf));
    FUZZ_CHECK(tsesim_request_device_count(many) == k);
    same_body(many, before);
    FUZZ_CHECK(strncmp(errbuf, prefix, pl) == 0);
    /* errbuf may cut a long reason where add_device's shorter prefix did not */
    if (judged && strlen(errbuf) < TSESIM_ERRBUF_SIZE - 1)
      FUZZ_CHECK(strcmp(errbuf + pl, reason) == 0);
  }
  tsesim_request_free(many);
  tsesim_request_free(before);
  tsesim_request_free(one);
  return 0;
}
