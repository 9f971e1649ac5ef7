/*
 * json_load.c - strict loading of a body with jansson, shared by the parsers:
 * no NUL byte, no duplicate keys, errors with line, column and byte offset.
 */
#include <errno.h>
#include <string.h>

#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

tsesim_code tsesim__json_load(json_t **out, const char *body, size_t len, char *errbuf) {
  json_error_t err;
  const char *nul;
  json_t *root;
  int saved_errno, oom;

  *out = NULL;
  if (!body && len) {
    tsesim__errbuf_set(errbuf, "body is NULL");
    return TSESIM_E_INVAL;
  }
  if (len == 0) {
    tsesim__errbuf_set(errbuf, "invalid JSON: empty body");
    return TSESIM_E_PARSE;
  }
  nul = memchr(body, '\0', len);
  if (nul) {
    tsesim__errbuf_set(errbuf, "invalid JSON: NUL byte at byte offset %lu",
                       (unsigned long)(nul - body));
    return TSESIM_E_PARSE;
  }
  /* jansson does not report every failed allocation: its lexer drops a
   * failed append to its token buffer (a string can come back with a byte
   * missing) and a failed string copy surfaces as "invalid token". malloc
   * sets errno to ENOMEM when it fails, so that is what decides; errno is
   * restored for the caller. */
  saved_errno = errno;
  errno = 0;
  memset(&err, 0, sizeof err);
  root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
  oom = errno == ENOMEM || (!root && (json_error_code(&err) == json_error_out_of_memory ||
                                      err.text[0] == '\0'));
  errno = saved_errno;
  if (oom) {
    json_decref(root);
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  if (!root) {
    tsesim__errbuf_set(errbuf, "%s at line %d, column %d (byte offset %d): %s",
                       json_error_code(&err) == json_error_duplicate_key ? "duplicate key"
                                                                        : "invalid JSON",
                       err.line, err.column, err.position, err.text);
    return TSESIM_E_PARSE;
  }
  *out = root;
  return TSESIM_OK;
}

const char *tsesim__json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "a value";
}
