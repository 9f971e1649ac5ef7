/*
 * parse_response.c - the synchronous answer of a download: {"requestId":"..."}.
 */
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
