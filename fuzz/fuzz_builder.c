/*
 * fuzz_builder.c - the request builder and its serializer.
 *
 * The input is read as a program that builds one request:
 *   name length (byte, 0..79), account name bytes,
 *   then operations until the input ends, each one byte op:
 *     op % 8 in 0..5  add a device: n = byte % 5 identifiers (0..4), each
 *                      a byte k: kind = k % 6 (0 unknown, 1 eid, 2 iccid,
 *                      3 imei, 4 mdn, 5 no such kind) and how = k / 6 % 4:
 *                      0, 1 a valid identifier of the kind made from a 2-byte
 *                      seed (ICCID: 19 or 20 digits as k / 24 is even or odd),
 *                      2 the same with wrong check digits,
 *                      3 raw bytes (length byte % 40, then the bytes);
 *     op % 8 == 6     set the service plan: a length byte, 0 meaning NULL
 *                      (remove the plan), else (length - 1) % 80 bytes;
 *     op % 8 == 7     turn check-digit verification off (op & 8) or on.
 * Strings are NUL-terminated copies (they end at a NUL byte).
 *
 * Checks: each call's answer is the one the manual gives (an identifier is
 * judged by fuzz_ids.h's reading of tsesim_id_validate(3)); a failed call
 * changes nothing and says why; and tsesim_request_to_json gives compact
 * JSON that jansson loads back (duplicate keys refused) equal to a tree
 * built here from what was added successfully: accountName, servicePlan
 * when set, devices with deviceIds {kind in lower case, id} in order.
 * TSESIM_E_INVAL for a request without devices. Any mismatch traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 64 /* keeps one input fast; devices past it add nothing new */

typedef struct reader {
  const uint8_t *p;
  size_t n;
} reader;

static unsigned next(reader *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

/* n bytes (fewer at the end of the input) into out as a C string. */
static void take(reader *r, char *out, size_t n) {
  if (n > r->n) n = r->n;
  memcpy(out, r->p, n);
  out[n] = '\0';
  r->p += n;
  r->n -= n;
}

static const char *const kind_names[] = {NULL, "eid", "iccid", "imei", "mdn"};

/* Adds one device made from the input; expected device or NULL when the
 * manual says it is refused. Returns the device's tree (or NULL). */
static json_t *one_device(reader *r, tsesim_device_id *ids, char bufs[4][48], size_t *n_out,
                          int checksums) {
  size_t n = next(r) % 5, i, j;
  int valid = 1, seen[6] = {0, 0, 0, 0, 0, 0};
  json_t *dev, *arr;

  for (i = 0; i < n; i++) {
    unsigned k = next(r);
    int kind = (int)(k % 6), how = (int)(k / 6 % 4);
    if (how == 3) {
      take(r, bufs[i], next(r) % 40);
    } else {
      unsigned long seed = next(r);
      size_t len = kind == TSESIM_ID_EID     ? 32
                   : kind == TSESIM_ID_ICCID ? (k / 24 % 2 ? 20 : 19)
                   : kind == TSESIM_ID_MDN   ? 10
                                             : 15;
      seed = seed << 8 | next(r);
      fuzz_id_make(bufs[i], len, kind, seed, how == 2);
    }
    ids[i].kind = (tsesim_id_kind)kind;
    ids[i].id = bufs[i];
    ids[i].kind_name = NULL;
    if (kind < TSESIM_ID_EID || kind > TSESIM_ID_IMEI || seen[kind]++ ||
        !fuzz_id_valid(kind, bufs[i], checksums))
      valid = 0;
  }
  *n_out = n;
  if (!valid || !seen[TSESIM_ID_EID] || !(seen[TSESIM_ID_ICCID] || seen[TSESIM_ID_IMEI]))
    return NULL;
  dev = json_object();
  arr = json_array();
  FUZZ_CHECK(dev && arr);
  for (j = 0; j < n; j++) {
    json_t *id = json_pack("{s:s, s:s}", "kind", kind_names[ids[j].kind], "id", ids[j].id);
    FUZZ_CHECK(id && json_array_append_new(arr, id) == 0);
  }
  FUZZ_CHECK(json_object_set_new(dev, "deviceIds", arr) == 0);
  return dev;
}

/* 1 when s has no whitespace outside its strings (compact JSON). */
static int compact(const char *s, size_t len) {
  size_t i;
  int in_str = 0;
  for (i = 0; i < len; i++) {
    if (in_str) {
      if (s[i] == '\\')
        i++;
      else if (s[i] == '"')
        in_str = 0;
    } else if (s[i] == '"') {
      in_str = 1;
    } else if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
      return 0;
    }
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, size};
  char name[80], plan[80], bufs[4][48];
  tsesim_device_id ids[4];
  tsesim_request *req = (tsesim_request *)&r; /* must be replaced */
  json_t *want, *devices, *got;
  json_error_t jerr;
  char *out = (char *)&r;
  size_t out_len = 1, n_devs = 0, ops;
  int checksums = 1;
  tsesim_code rc;

  take(&r, name, next(&r) % 80);
  rc = tsesim_request_new(&req, name);
  if (rc != TSESIM_OK) {
    FUZZ_CHECK(rc == TSESIM_E_INVAL && req == NULL);
    return 0;
  }
  /* The library took the name: it must be 1..64 bytes of UTF-8 (json_string
   * refuses anything else, and the body would not be JSON). */
  FUZZ_CHECK(name[0] != '\0' && strlen(name) <= 64);
  want = json_object();
  devices = json_array();
  FUZZ_CHECK(want && devices);
  FUZZ_CHECK(json_object_set_new(want, "devices", devices) == 0);
  FUZZ_CHECK(json_object_set_new(want, "accountName", json_string(name)) == 0);

  for (ops = 0; r.n && ops < MAX_OPS; ops++) {
    unsigned op = next(&r);
    if (op % 8 <= 5) {
      size_t n;
      json_t *dev = one_device(&r, ids, bufs, &n, checksums);
      rc = tsesim_request_add_device(req, ids, n);
      if (dev) {
        FUZZ_CHECK(rc == TSESIM_OK);
        FUZZ_CHECK(tsesim_request_errmsg(req)[0] == '\0');
        FUZZ_CHECK(json_array_append_new(devices, dev) == 0);
        n_devs++;
      } else {
        FUZZ_CHECK(rc == TSESIM_E_INVAL);
        FUZZ_CHECK(tsesim_request_errmsg(req)[0] != '\0');
      }
      FUZZ_CHECK(tsesim_request_device_count(req) == n_devs);
    } else if (op % 8 == 6) {
      unsigned l = next(&r);
      if (l == 0) {
        FUZZ_CHECK(tsesim_request_set_service_plan(req, NULL) == TSESIM_OK);
        json_object_del(want, "servicePlan");
        continue;
      }
      take(&r, plan, (l - 1) % 80);
      rc = tsesim_request_set_service_plan(req, plan);
      if (rc == TSESIM_OK) {
        json_t *s = json_string(plan);
        FUZZ_CHECK(plan[0] != '\0' && strlen(plan) <= 64 && s);
        FUZZ_CHECK(json_object_set_new(want, "servicePlan", s) == 0);
      } else {
        FUZZ_CHECK(rc == TSESIM_E_INVAL && tsesim_request_errmsg(req)[0] != '\0');
      }
    } else {
      checksums = !(op & 8);
      FUZZ_CHECK(tsesim_request_set_verify_checksums(req, checksums) == TSESIM_OK);
    }
  }

  rc = tsesim_request_to_json(&out, &out_len, req);
  if (n_devs == 0) {
    FUZZ_CHECK(rc == TSESIM_E_INVAL && out == NULL && out_len == 0);
  } else {
    FUZZ_CHECK(rc == TSESIM_OK && out != NULL);
    FUZZ_CHECK(strlen(out) == out_len);
    FUZZ_CHECK(compact(out, out_len));
    got = json_loadb(out, out_len, JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_CHECK(got != NULL);
    FUZZ_CHECK(json_equal(got, want));
    json_decref(got);
    tsesim_free(out);
  }
  json_decref(want);
  tsesim_request_free(req);
  return 0;
}
