/*
 * fuzz_api_error_parse.c - tsesim_api_error_parse over any body and status.
 *
 * Input: one byte that picks the HTTP status (its low four bits index a
 * table of usual and odd ones), then the body (not NUL-terminated).
 *
 * Checks: the call succeeds for every body (the manual: it never returns
 * TSESIM_E_PARSE); the status is stored as given and retry_after is -1; body
 * is a NUL-terminated copy of every byte; and code, message and description
 * are what tsesim_api_error_parse(3) says for the three error shapes, found
 * here by a strict jansson load of the same body (NULL for any other body).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[16] = {400, 401, 403, 404, 409, 429, 500,      502,
                                  503, 504, 200, 0,   -1,  999, LONG_MAX, LONG_MIN};

/* 1 when got is the text the manual gives for v: a string as is, an
 * integer as its decimal text (when ints is 1), NULL for anything else. */
static int same_text(const char *got, const json_t *v, int ints) {
  char num[32];
  const char *want = NULL;
  if (json_is_string(v)) {
    want = json_string_value(v);
  } else if (ints && json_is_integer(v)) {
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    want = num;
  }
  if (!want || !got) return want == got;
  return strcmp(want, got) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tsesim_api_error *e = (tsesim_api_error *)&statuses; /* must be replaced */
  const char *body;
  size_t len;
  long status;
  json_t *root = NULL, *fault;
  json_error_t jerr;
  tsesim_code rc;

  if (size < 1) return 0;
  status = statuses[data[0] & 15];
  body = (const char *)data + 1;
  len = size - 1;
  rc = tsesim_api_error_parse(&e, status, body, len);
  if (rc == TSESIM_E_NOMEM) {
    FUZZ_CHECK(e == NULL);
    return 0;
  }
  FUZZ_CHECK(rc == TSESIM_OK && e != NULL);
  FUZZ_CHECK(e->http_status == status);
  FUZZ_CHECK(e->retry_after == -1);
  FUZZ_CHECK(e->body != NULL && memcmp(e->body, body, len) == 0 && e->body[len] == '\0');

  /* The reference: the same strict reading (no NUL byte, no duplicate key). */
  if (len && !memchr(body, '\0', len))
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (json_is_object(root) &&
      (json_object_get(root, "errorCode") || json_object_get(root, "errorMessage"))) {
    FUZZ_CHECK(same_text(e->code, json_object_get(root, "errorCode"), 1));
    FUZZ_CHECK(same_text(e->message, json_object_get(root, "errorMessage"), 0));
    FUZZ_CHECK(e->description == NULL);
  } else if (json_is_object(root) && json_is_object(fault = json_object_get(root, "fault"))) {
    FUZZ_CHECK(same_text(e->code, json_object_get(fault, "code"), 1));
    FUZZ_CHECK(same_text(e->message, json_object_get(fault, "message"), 0));
    FUZZ_CHECK(same_text(e->description, json_object_get(fault, "description"), 0));
  } else if (json_is_object(root) && json_is_string(json_object_get(root, "error"))) {
    FUZZ_CHECK(same_text(e->code, json_object_get(root, "error"), 0));
    FUZZ_CHECK(same_text(e->message, json_object_get(root, "error_description"), 0));
    FUZZ_CHECK(e->description == NULL);
  } else {
    FUZZ_CHECK(e->code == NULL && e->message == NULL && e->description == NULL);
  }
  json_decref(root);
  tsesim_api_error_free(e);
  return 0;
}
