/*
 * serialize.c - the request as its compact JSON body, written directly: one
 * pass measures, one allocation, one pass writes. No JSON tree, no I/O.
 */
#include <string.h>

#include "tsesim_int.h"

static const char hex[] = "0123456789abcdef";

/* Bytes s takes inside a JSON string. */
static size_t escaped_len(const char *s) {
  size_t n = 0;
  const unsigned char *p;
  for (p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\' || *p == '\b' || *p == '\f' || *p == '\n' || *p == '\r' ||
        *p == '\t')
      n += 2;
    else if (*p < 0x20)
      n += 6;
    else
      n += 1;
  }
  return n;
}

static char *put_escaped(char *o, const char *s) {
  const unsigned char *p;
  for (p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if (c >= 0x20 && c != '"' && c != '\\') {
      *o++ = (char)c;
      continue;
    }
    *o++ = '\\';
    switch (c) {
      case '"':
        *o++ = '"';
        break;
      case '\\':
        *o++ = '\\';
        break;
      case '\b':
        *o++ = 'b';
        break;
      case '\f':
        *o++ = 'f';
        break;
      case '\n':
        *o++ = 'n';
        break;
      case '\r':
        *o++ = 'r';
        break;
      case '\t':
        *o++ = 't';
        break;
      default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 15];
    }
  }
  return o;
}

#define PUT(lit)                     \
  do {                               \
    memcpy(o, lit, sizeof(lit) - 1); \
    o += sizeof(lit) - 1;            \
  } while (0)

tsesim_code tsesim_request_to_json(char **out, size_t *out_len, const tsesim_request *req) {
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (!out || !out_len || !req) return TSESIM_E_INVAL;
  if (req->n_devs == 0) return TSESIM_E_INVAL;
  if (req->n_devs > TSESIM_MAX_DEVICES_PER_REQUEST) return TSESIM_E_LIMIT;
  return tsesim__request_json_range(out, out_len, req, 0, req->n_devs);
}

tsesim_code tsesim__request_json_range(char **out, size_t *out_len, const tsesim_request *req,
                                       size_t first, size_t count) {
  /* {"kind":"<k>","id":"<digits>"} without the kind and the digits */
  static const size_t per_id = sizeof("{\"kind\":\"\",\"id\":\"\"}") - 1;
  static const size_t per_dev = sizeof("{\"deviceIds\":[]}") - 1;
  size_t size, i, j, end = first + count, pool_len;
  const tsesim__device *last;
  const char *pool;
  char *buf, *o;

  *out = NULL;
  *out_len = 0;
  if (count == 0 || count > TSESIM_MAX_DEVICES_PER_REQUEST || first > req->n_devs ||
      count > req->n_devs - first)
    return TSESIM_E_INVAL;
  last = &req->devs[end - 1];
  pool_len = last->off - req->devs[first].off;
  for (j = 0; j < last->n_ids; j++) pool_len += last->len[j];

  /* Bounded by the limit above, so none of these sums can overflow. */
  size = sizeof("{\"devices\":[],\"accountName\":\"\"}") - 1 + escaped_len(req->account_name);
  if (req->service_plan)
    size += sizeof(",\"servicePlan\":\"\"") - 1 + escaped_len(req->service_plan);
  size += count * per_dev + (count - 1) + pool_len;
  for (i = first; i < end; i++) {
    const tsesim__device *d = &req->devs[i];
    size += d->n_ids * per_id + (d->n_ids - 1u);
    for (j = 0; j < d->n_ids; j++) size += strlen(tsesim__id_kind_name((tsesim_id_kind)d->kind[j]));
  }

  buf = tsesim__malloc(size + 1);
  if (!buf) return TSESIM_E_NOMEM;
  o = buf;
  pool = req->pool;
  PUT("{\"devices\":[");
  for (i = first; i < end; i++) {
    const tsesim__device *d = &req->devs[i];
    const char *p = pool + d->off;
    if (i > first) *o++ = ',';
    PUT("{\"deviceIds\":[");
    for (j = 0; j < d->n_ids; j++) {
      const char *k = tsesim__id_kind_name((tsesim_id_kind)d->kind[j]);
      size_t kl = strlen(k);
      if (j) *o++ = ',';
      PUT("{\"kind\":\"");
      memcpy(o, k, kl);
      o += kl;
      PUT("\",\"id\":\"");
      memcpy(o, p, d->len[j]);
      o += d->len[j];
      p += d->len[j];
      PUT("\"}");
    }
    PUT("]}");
  }
  PUT("],\"accountName\":\"");
  o = put_escaped(o, req->account_name);
  *o++ = '"';
  if (req->service_plan) {
    PUT(",\"servicePlan\":\"");
    o = put_escaped(o, req->service_plan);
    *o++ = '"';
  }
  *o++ = '}';
  *o = '\0';
  *out = buf;
  *out_len = (size_t)(o - buf);
  return TSESIM_OK;
}

char *tsesim__json_strings(const char *const *pairs, size_t n) {
  size_t i, len = 3;
  char *buf, *o;
  for (i = 0; i < n; i++)
    if (pairs[2 * i + 1]) len += escaped_len(pairs[2 * i]) + escaped_len(pairs[2 * i + 1]) + 6;
  if (!(buf = o = tsesim__malloc(len))) return NULL;
  *o++ = '{';
  for (i = 0; i < n; i++) {
    if (!pairs[2 * i + 1]) continue;
    if (o > buf + 1) *o++ = ',';
    *o++ = '"';
    o = put_escaped(o, pairs[2 * i]);
    PUT("\":\"");
    o = put_escaped(o, pairs[2 * i + 1]);
    *o++ = '"';
  }
  *o++ = '}';
  *o = '\0';
  return buf;
}
