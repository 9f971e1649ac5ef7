/*
 * auth.c - the client's credentials and tokens: the OAuth client and the
 * M2M user, the access token and the session token with their generation
 * numbers, remembered refusals, the header lines a request carries, and
 * taking a token out of an answer. No I/O: the client's flows fetch tokens
 * and hand them here.
 *
 * Generations: each token has a number that changes whenever the token is
 * dropped or replaced. A transfer records the numbers it was sent with; when
 * a 401 comes back for a token that is still current, the token is dropped
 * once, and every other transfer that was refused with the same token just
 * replays with the new one. One renewal serves every transfer in flight.
 */
#include <stdio.h>
#include <string.h>

#define TSESIM__WITH_CURL
#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

static void notify(tsesim__auth *a, tsesim_token_kind kind, const char *token, long expires) {
  if (a->token_fn) a->token_fn(kind, token, expires, a->token_payload);
}

void tsesim__auth_drop_access(tsesim__auth *a) {
  if (a->access_token) notify(a, TSESIM_TOKEN_ACCESS, NULL, -1);
  tsesim__free_secret(a->access_token);
  a->access_token = NULL;
  a->access_expires_ms = 0;
  a->access_gen++;
}

void tsesim__auth_drop_session(tsesim__auth *a) {
  if (a->session_token) notify(a, TSESIM_TOKEN_SESSION, NULL, -1);
  tsesim__free_secret(a->session_token);
  a->session_token = NULL;
  a->session_gen++;
}

void tsesim__auth_set_access(tsesim__auth *a, char *token, long expires_in, long long now_ms) {
  tsesim__auth_drop_access(a);
  a->access_token = token;
  a->token_fetched_ms = now_ms;
  a->access_expires_ms = expires_in > 0 ? now_ms + (long long)expires_in * 1000 : 0;
  notify(a, TSESIM_TOKEN_ACCESS, token, expires_in);
}

void tsesim__auth_set_session(tsesim__auth *a, char *token) {
  tsesim__auth_drop_session(a);
  a->session_token = token;
  notify(a, TSESIM_TOKEN_SESSION, token, -1);
}

int tsesim__auth_access_stale(const tsesim__auth *a, long long now_ms) {
  long long margin;
  if (!a->access_token) return 1;
  if (!a->access_expires_ms) return 0;
  margin = (a->access_expires_ms - a->token_fetched_ms) / 10;
  if (margin > 60000) margin = 60000;
  return now_ms >= a->access_expires_ms - margin;
}

void tsesim__auth_free(tsesim__auth *a) {
  tsesim__free(a->client_id);
  tsesim__free_secret(a->client_secret);
  tsesim__free_secret(a->access_token);
  tsesim__free(a->username);
  tsesim__free_secret(a->password);
  tsesim__free_secret(a->session_token);
  memset(a, 0, sizeof *a);
}

static char *base64(const char *in) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in), i, o = 0;
  char *out = tsesim__malloc(4 * ((n + 2) / 3) + 1);
  if (!out) return NULL;
  for (i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)in[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

/* "Name: value" in a new block, or NULL. */
static char *header_line(const char *name, const char *prefix, const char *value) {
  size_t n = strlen(name) + strlen(prefix) + strlen(value) + 3;
  char *line = tsesim__malloc(n);
  if (line) snprintf(line, n, "%s: %s%s", name, prefix, value);
  return line;
}

void tsesim__auth_headers_free(char **lines, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) tsesim__free_secret(lines[i]);
}

tsesim_code tsesim__auth_headers(const tsesim__auth *a, tsesim__auth_kind kind,
                                 char *lines[TSESIM__AUTH_LINES], size_t *n) {
  size_t k = 0;
  *n = 0;
  if (kind == TSESIM__AUTH_BASIC) {
    size_t len = strlen(a->client_id) + strlen(a->client_secret) + 2;
    char *pair = tsesim__malloc(len), *b64 = NULL;
    if (pair) {
      snprintf(pair, len, "%s:%s", a->client_id, a->client_secret);
      b64 = base64(pair);
      tsesim__free_secret(pair);
    }
    lines[k] = b64 ? header_line("Authorization", "Basic ", b64) : NULL;
    tsesim__free_secret(b64);
    if (!lines[k++]) goto fail;
    if (!(lines[k++] = header_line("Content-Type", "", "application/x-www-form-urlencoded")))
      goto fail;
  } else {
    if (!(lines[k++] = header_line("Authorization", "Bearer ", a->access_token))) goto fail;
    if (kind == TSESIM__AUTH_SESSION &&
        !(lines[k++] = header_line("VZ-M2M-Token", "", a->session_token)))
      goto fail;
    if (!(lines[k++] = header_line("Content-Type", "", "application/json"))) goto fail;
  }
  if (!(lines[k++] = header_line("Accept", "", "application/json"))) goto fail;
  *n = k;
  return TSESIM_OK;
fail: /* lines[k - 1] is the one that failed: NULL, which frees as nothing */
  tsesim__auth_headers_free(lines, k);
  return TSESIM_E_NOMEM;
}

/* Zeroes a string that jansson parsed out of an answer (a token) before the
 * tree is freed. Copies inside jansson's lexer are out of our reach. */
static void wipe_json_string(json_t *s) {
  if (json_is_string(s)) tsesim__memzero((char *)json_string_value(s), json_string_length(s));
}

tsesim_code tsesim__auth_take_token(tsesim__transfer *t, const char *what, const char *name,
                                    char **out, long *expires_in, char *errmsg) {
  json_t *root = NULL, *tok, *exp;
  size_t bad;
  long status = t->status;
  if (tsesim__json_load(&root, t->resp, t->resp_len, NULL) == TSESIM_E_NOMEM) {
    tsesim__errbuf_set(errmsg, "%s: out of memory", what);
    return TSESIM_E_NOMEM;
  }
  tok = json_object_get(root, name);
  if (!json_is_string(tok) || !json_string_length(tok)) {
    json_decref(root);
    tsesim__errbuf_set(errmsg, "%s: the %ld answer has no %s", what, status, name);
    return TSESIM_E_HTTP;
  }
  if (expires_in) {
    exp = json_object_get(root, "expires_in");
    *expires_in = -1;
    if (json_is_integer(exp) && json_integer_value(exp) > 0 && json_integer_value(exp) < 100000000)
      *expires_in = (long)json_integer_value(exp);
    else if (json_is_string(exp)) {
      const char *p = json_string_value(exp);
      long v = 0;
      for (; *p >= '0' && *p <= '9' && v < 100000000L; p++) v = v * 10 + (*p - '0');
      if (!*p && v > 0) *expires_in = v;
    }
  }
  /* a token goes into a header line, which it must not be able to end */
  bad = tsesim__first_bad_byte(json_string_value(tok), json_string_length(tok), 0x21);
  if (bad < json_string_length(tok)) { /* it would break the header it goes into */
    unsigned char b = (unsigned char)json_string_value(tok)[bad];
    wipe_json_string(tok);
    json_decref(root);
    tsesim__transfer_wipe(t);
    tsesim__errbuf_set(errmsg,
                       "%s: the %ld answer's %s is not usable: %s 0x%02X at byte %lu (a "
                       "token is printable ASCII); it was not kept",
                       what, status, name, tsesim__byte_kind(b), b, (unsigned long)bad + 1);
    return TSESIM_E_HTTP;
  }
  *out = tsesim__strndup(json_string_value(tok), json_string_length(tok));
  wipe_json_string(tok);
  json_decref(root);
  tsesim__transfer_wipe(t);
  if (!*out) {
    tsesim__errbuf_set(errmsg, "%s: out of memory", what);
    return TSESIM_E_NOMEM;
  }
  return TSESIM_OK;
}
