/*
 * fuzz_response_parse.c - tsesim_response_parse over any body.
 *
 * Input: the body of a download's answer (not NUL-terminated).
 *
 * Checks: on TSESIM_OK a non-empty, NUL-terminated requestId that is read to
 * its end and freed; on failure *out_request_id is NULL, the code is
 * TSESIM_E_PARSE (or TSESIM_E_NOMEM) and errbuf holds a NUL-terminated reason.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  char *request_id = (char *)&sink; /* must be set to NULL on failure */
  tsesim_code rc;

  memset(errbuf, 0xAA, sizeof errbuf);
  rc = tsesim_response_parse(&request_id, (const char *)data, size, errbuf);
  if (rc == TSESIM_OK) {
    FUZZ_CHECK(request_id != NULL);
    sink += strlen(request_id);
    FUZZ_CHECK(request_id[0] != '\0');
    tsesim_free(request_id);
  } else {
    FUZZ_CHECK(rc == TSESIM_E_PARSE || rc == TSESIM_E_NOMEM);
    FUZZ_CHECK(request_id == NULL);
    FUZZ_CHECK(fuzz_errbuf_ok(errbuf));
  }
  return 0;
}
