/*
 * parse_response.c - the synchronous answer of a download: {"requestId":"..."}.
 */
#include <string.h>

#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

tsesim_code tsesim_response_parse(char **out_request_id, const char *body, size_t len,
                                  char *errbuf) {
  json_t *root, *v;
  tsesim_code rc;

  if (!out_request_id) {
    tsesim__errbuf_set(errbuf, "out_request_id is NULL");
    return TSESIM_E_INVAL;
  }
  *out_request_id = NULL;
  rc = tsesim__json_load(&root, body, len, errbuf);
  if (rc) return rc;
  rc = TSESIM_E_PARSE;
  if (!json_is_object(root)) {
    tsesim__errbuf_set(errbuf, "top level: expected an object, got %s",
                       tsesim__json_type_name(root));
    goto done;
  }
  v = json_object_get(root, "requestId");
  if (!v) {
    tsesim__errbuf_set(errbuf, "requestId: missing");
    goto done;
  }
  if (!json_is_string(v)) {
    tsesim__errbuf_set(errbuf, "requestId: expected a string, got %s", tsesim__json_type_name(v));
    goto done;
  }
  if (json_string_length(v) == 0) {
    tsesim__errbuf_set(errbuf, "requestId: empty");
    goto done;
  }
  *out_request_id = tsesim__strndup(json_string_value(v), json_string_length(v));
  if (!*out_request_id) {
    tsesim__errbuf_set(errbuf, "out of memory");
    rc = TSESIM_E_NOMEM;
    goto done;
  }
  rc = TSESIM_OK;
done:
  json_decref(root);
  return rc;
}

tsesim_code tsesim__request_id_read(const char *body, size_t len,
                                    char id[TSESIM__REQUEST_ID_MAX + 1], char *err) {
  json_t *root = NULL, *v = NULL;
  const char *s;
  size_t n, bad;
  tsesim_code rc = tsesim__json_load(&root, body, len, err);
  if (rc == TSESIM_E_NOMEM) return rc;
  if (rc == TSESIM_OK) {
    if (!json_is_object(root))
      tsesim__errbuf_set(err, "top level: expected an object, got %s",
                         tsesim__json_type_name(root));
    else if (!(v = json_object_get(root, "requestId")))
      tsesim__errbuf_set(err, "requestId: missing");
    else if (!json_is_string(v))
      tsesim__errbuf_set(err, "requestId: expected a string, got %s", tsesim__json_type_name(v));
  }
  if (!json_is_string(v)) {
    json_decref(root);
    return TSESIM_E_PARSE;
  }
  s = json_string_value(v);
  n = json_string_length(v);
  bad = tsesim__first_bad_byte(s, n, 0x21);
  rc = TSESIM_E_INVAL;
  if (n == 0)
    tsesim__errbuf_set(err, "empty");
  else if (n > TSESIM__REQUEST_ID_MAX)
    tsesim__errbuf_set(err, "%lu bytes, at most %d", (unsigned long)n, TSESIM__REQUEST_ID_MAX);
  else if (bad < n)
    tsesim__errbuf_set(err, "%s 0x%02X at byte %lu (a requestId is printable ASCII)",
                       tsesim__byte_kind((unsigned char)s[bad]), (unsigned char)s[bad],
                       (unsigned long)bad + 1);
  else {
    memcpy(id, s, n + 1);
    rc = TSESIM_OK;
  }
  json_decref(root);
  return rc;
}
