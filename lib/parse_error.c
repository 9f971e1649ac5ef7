/*
 * parse_error.c - an error answer in any of its three shapes:
 *   ThingSpace   {"errorCode":"...","errorMessage":"..."}
 *   API gateway  {"fault":{"code":"...","message":"...","description":"..."}}
 *   OAuth        {"error":"...","error_description":"..."}
 * Anything else (HTML, empty, other JSON) is kept as the raw body.
 */
#include <stdio.h>
#include <string.h>

#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

/* A code may come as a string or, in some answers, as a number. */
static const char *text_of(const json_t *v, char *num, size_t numsize) {
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_integer(v)) {
    snprintf(num, numsize, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return num;
  }
  return NULL;
}

static const char *str_of(const json_t *v) {
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static size_t size_of(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *put(char **pool, const char *s) {
  char *p = *pool;
  size_t n;
  if (!s) return NULL;
  n = strlen(s) + 1;
  memcpy(p, s, n);
  *pool += n;
  return p;
}

tsesim_code tsesim_api_error_parse(tsesim_api_error **out, long http_status, const char *body,
                                   size_t len) {
  const char *code = NULL, *message = NULL, *description = NULL;
  char num[32];
  json_t *root = NULL, *fault;
  tsesim_api_error *e;
  char *pool;
  size_t size;

  if (!out) return TSESIM_E_INVAL;
  *out = NULL;
  if (!body && len) return TSESIM_E_INVAL;
  if (len && tsesim__json_load(&root, body, len, NULL) == TSESIM_E_NOMEM) return TSESIM_E_NOMEM;
  if (json_is_object(root)) {
    if (json_object_get(root, "errorCode") || json_object_get(root, "errorMessage")) {
      code = text_of(json_object_get(root, "errorCode"), num, sizeof num);
      message = str_of(json_object_get(root, "errorMessage"));
    } else if (json_is_object(fault = json_object_get(root, "fault"))) {
      code = text_of(json_object_get(fault, "code"), num, sizeof num);
      message = str_of(json_object_get(fault, "message"));
      description = str_of(json_object_get(fault, "description"));
    } else if (json_is_string(json_object_get(root, "error"))) {
      code = str_of(json_object_get(root, "error"));
      message = str_of(json_object_get(root, "error_description"));
    }
  }
  if (len > ((size_t)-1 - sizeof *e) / 5) { /* body plus three strings from it */
    json_decref(root);
    return TSESIM_E_NOMEM;
  }
  size = sizeof *e + len + 1 + size_of(code) + size_of(message) + size_of(description);
  e = tsesim__malloc(size);
  if (!e) {
    json_decref(root);
    return TSESIM_E_NOMEM;
  }
  pool = (char *)(e + 1);
  e->http_status = http_status;
  e->retry_after = -1;
  e->body = pool;
  if (len) memcpy(pool, body, len);
  pool[len] = '\0';
  pool += len + 1;
  e->code = put(&pool, code);
  e->message = put(&pool, message);
  e->description = put(&pool, description);
  json_decref(root);
  *out = e;
  return TSESIM_OK;
}

void tsesim_api_error_free(tsesim_api_error *err) { tsesim__free(err); }
