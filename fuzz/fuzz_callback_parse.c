/*
 * fuzz_callback_parse.c - tsesim_callback_parse over any body.
 *
 * Input: the body, as it would come from ThingSpace (not NUL-terminated: the
 * fuzzer's buffer ends where the body ends, so AddressSanitizer sees any read
 * past it).
 *
 * Checks, on TSESIM_OK: every field is walked and every string read to its
 * NUL, so that a pointer outside the callback's block shows; the fields keep
 * the promises of tsesim_callback_parse(3) (a non-empty requestId, arrays that
 * are there when they have elements, kinds, status and role that match their
 * text case-insensitively, counts of -1 or more). On failure: *out is NULL,
 * the code is TSESIM_E_PARSE (or TSESIM_E_NOMEM) and errbuf holds a
 * NUL-terminated reason.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink; /* keeps the reads from being optimised away */

/* Reads s to its NUL and returns its length. */
static size_t touch(const char *s) {
  size_t n;
  if (!s) return 0;
  n = strlen(s);
  sink += n;
  return n;
}

static void walk_ids(const tsesim_device_id *ids, size_t n) {
  static const char *const names[] = {NULL, "eid", "iccid", "imei", "mdn"};
  size_t i;
  FUZZ_CHECK((ids != NULL) == (n > 0));
  for (i = 0; i < n; i++) {
    touch(ids[i].id);
    touch(ids[i].kind_name);
    FUZZ_CHECK(ids[i].id && ids[i].kind_name);
    FUZZ_CHECK((int)ids[i].kind >= TSESIM_ID_UNKNOWN && (int)ids[i].kind <= TSESIM_ID_MDN);
    if (ids[i].kind == TSESIM_ID_UNKNOWN) {
      int k;
      for (k = 1; k <= 4; k++) FUZZ_CHECK(strcasecmp(ids[i].kind_name, names[k]) != 0);
    } else {
      FUZZ_CHECK(strcasecmp(ids[i].kind_name, names[ids[i].kind]) == 0);
    }
  }
}

static void walk(const tsesim_callback *cb) {
  FUZZ_CHECK(touch(cb->request_id) > 0);
  walk_ids(cb->device_ids, cb->n_device_ids);
  if (cb->profile) {
    const tsesim_profile_response *p = cb->profile;
    tsesim_profile_role role = TSESIM_ROLE_OTHER;
    walk_ids(p->ids, p->n_ids);
    touch(p->state);
    touch(p->profile_status);
    touch(p->profile_role);
    if (p->profile_role && !strcasecmp(p->profile_role, "LEAD")) role = TSESIM_ROLE_LEAD;
    if (p->profile_role && !strcasecmp(p->profile_role, "LOCAL")) role = TSESIM_ROLE_LOCAL;
    if (p->profile_role && !strcasecmp(p->profile_role, "DEFAULT")) role = TSESIM_ROLE_DEFAULT;
    FUZZ_CHECK(p->role == role);
  }
  {
    tsesim_status st = TSESIM_STATUS_OTHER;
    touch(cb->status);
    if (cb->status && !strcasecmp(cb->status, "SUCCESS")) st = TSESIM_STATUS_SUCCESS;
    if (cb->status && !strcasecmp(cb->status, "FAILED")) st = TSESIM_STATUS_FAILED;
    if (cb->status && !strcasecmp(cb->status, "WARNING")) st = TSESIM_STATUS_WARNING;
    FUZZ_CHECK(cb->status_code == st);
  }
  FUZZ_CHECK(cb->callback_count >= -1);
  FUZZ_CHECK(cb->max_callback_threshold >= -1);
  touch(cb->fault_code);
  touch(cb->fault_string);
  touch(cb->username);
  touch(cb->password);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_callback *cb = (tsesim_callback *)&sink; /* must be set to NULL on failure */
  tsesim_code rc;

  memset(errbuf, 0xAA, sizeof errbuf);
  rc = tsesim_callback_parse(&cb, (const char *)data, size, errbuf);
  if (rc == TSESIM_OK) {
    FUZZ_CHECK(cb != NULL);
    walk(cb);
    tsesim_callback_free(cb);
  } else {
    FUZZ_CHECK(rc == TSESIM_E_PARSE || rc == TSESIM_E_NOMEM);
    FUZZ_CHECK(cb == NULL);
    FUZZ_CHECK(fuzz_errbuf_ok(errbuf));
  }
  return 0;
}
