/*
 * sim_faults.c - fault rules: "KIND[:key=value,...]" from the command line,
 * the same settings as JSON through /_sim/faults, and the decision, per
 * request, of which rule fires.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const kind_names[SIM_FAULT_KINDS] = {
    "429", "503", "500", "close", "truncate", "non-json", "redirect", "oversize"};
static const char *const endpoint_names[SIM_EP_COUNT] = {"token",    "login", "logout", "callbacks",
                                                         "download", "sim",   "other"};

const char *sim_fault_kind_name(sim_fault_kind k) {
  return (unsigned)k < SIM_FAULT_KINDS ? kind_names[k] : "?";
}

const char *sim_endpoint_name(int ep) {
  if (ep == SIM_EP_ANY) return "any";
  return ep >= 0 && ep < SIM_EP_COUNT ? endpoint_names[ep] : "?";
}

int sim_endpoint_parse(const char *name) {
  if (!strcmp(name, "any")) return SIM_EP_ANY;
  for (int i = 0; i < SIM_EP_DOWNLOAD + 1; i++)
    if (!strcmp(name, endpoint_names[i])) return i;
  return -2;
}

static int kind_parse(const char *name, size_t len) {
  for (int i = 0; i < SIM_FAULT_KINDS; i++)
    if (strlen(kind_names[i]) == len && !strncmp(kind_names[i], name, len)) return i;
  return -1;
}

static void rule_defaults(sim_fault_rule *r, sim_fault_kind kind) {
  memset(r, 0, sizeof *r);
  r->kind = kind;
  r->every = 1;
  r->endpoint = SIM_EP_ANY;
  r->processed =
      kind == SIM_FAULT_TRUNCATE || kind == SIM_FAULT_NON_JSON || kind == SIM_FAULT_OVERSIZE;
  if (kind == SIM_FAULT_429 || kind == SIM_FAULT_503) r->retry_after = sim_xstrdup("1");
  if (kind == SIM_FAULT_REDIRECT) r->to = sim_xstrdup("http://127.0.0.1:9/");
  if (kind == SIM_FAULT_OVERSIZE) r->bytes = 2097152;
}

void sim_fault_rule_clear(sim_fault_rule *r) {
  free(r->retry_after);
  free(r->to);
  r->retry_after = r->to = NULL;
}

static int valid_retry_after(const char *v) {
  if (!strncmp(v, "date:", 5)) v += 5;
  if (!*v) return 0;
  for (; *v; v++)
    if (*v < '0' || *v > '9') return 0;
  return 1;
}

static int ulong_value(const char *v, unsigned long *out) {
  char *end;
  errno = 0;
  if (*v < '0' || *v > '9') return -1;
  *out = strtoul(v, &end, 10);
  return errno || *end ? -1 : 0;
}

/* One key=value of a rule; the same names in the CLI and in JSON (with _). */
static int rule_set(sim_fault_rule *r, const char *key, const char *v, char *err, size_t errsize) {
  unsigned long n;
  if (!strcmp(key, "every") || !strcmp(key, "count") || !strcmp(key, "bytes")) {
    if (ulong_value(v, &n) || (!strcmp(key, "every") && n == 0)) {
      snprintf(err, errsize, "%s: '%s' is not a whole number%s", key, v,
               strcmp(key, "every") ? "" : " of at least 1");
      return -1;
    }
    if (!strcmp(key, "every"))
      r->every = n;
    else if (!strcmp(key, "count"))
      r->count = n;
    else
      r->bytes = n;
  } else if (!strcmp(key, "endpoint")) {
    int ep = sim_endpoint_parse(v);
    if (ep == -2) {
      snprintf(err, errsize,
               "endpoint: '%s' is not one of token, login, logout, callbacks, download, any", v);
      return -1;
    }
    r->endpoint = ep;
  } else if (!strcmp(key, "mode")) {
    if (strcmp(v, "processed") && strcmp(v, "dropped")) {
      snprintf(err, errsize, "mode: '%s' is neither processed nor dropped", v);
      return -1;
    }
    r->processed = !strcmp(v, "processed");
  } else if (!strcmp(key, "retry-after") || !strcmp(key, "retry_after")) {
    if (!valid_retry_after(v)) {
      snprintf(err, errsize, "retry-after: '%s' is neither seconds nor date:SECONDS", v);
      return -1;
    }
    free(r->retry_after);
    r->retry_after = sim_xstrdup(v);
  } else if (!strcmp(key, "to")) {
    if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
      snprintf(err, errsize, "to: '%s' is not an http:// or https:// URL", v);
      return -1;
    }
    free(r->to);
    r->to = sim_xstrdup(v);
  } else {
    snprintf(err, errsize, "unknown key '%s'", key);
    return -1;
  }
  return 0;
}

int sim_fault_rule_parse(sim_fault_rule *r, const char *spec, char *err, size_t errsize) {
  const char *colon = strchr(spec, ':');
  size_t klen = colon ? (size_t)(colon - spec) : strlen(spec);
  int kind = kind_parse(spec, klen);
  if (kind < 0) {
    snprintf(err, errsize,
             "'%.*s' is not a fault kind (429, 503, 500, close, truncate, non-json, redirect, "
             "oversize)",
             (int)klen, spec);
    return -1;
  }
  rule_defaults(r, (sim_fault_kind)kind);
  const char *p = colon ? colon + 1 : NULL;
  while (p && *p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char *kv = sim_xstrndup(p, len);
    char *eq = strchr(kv, '=');
    int rc;
    if (!eq) {
      snprintf(err, errsize, "'%s' is not key=value", kv);
      rc = -1;
    } else {
      *eq = '\0';
      rc = rule_set(r, kv, eq + 1, err, errsize);
    }
    free(kv);
    if (rc) {
      sim_fault_rule_clear(r);
      return -1;
    }
    p = comma ? comma + 1 : NULL;
  }
  return 0;
}

void sim_faults_free(sim_faults *f) {
  for (size_t i = 0; i < f->n_rules; i++) sim_fault_rule_clear(&f->rules[i]);
  free(f->rules);
  memset(f, 0, sizeof *f);
}

static int json_flag(json_t *root, const char *key, int *dst, char *err, size_t errsize) {
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) {
    snprintf(err, errsize, "%s: expected true or false", key);
    return -1;
  }
  *dst = json_is_true(v);
  return 0;
}

static int rule_from_json(sim_fault_rule *r, json_t *o, size_t idx, char *err, size_t errsize) {
  char why[256];
  if (!json_is_object(o)) {
    snprintf(err, errsize, "faults[%zu]: expected an object", idx);
    return -1;
  }
  json_t *kind = json_object_get(o, "kind");
  int k = json_is_string(kind)
              ? kind_parse(json_string_value(kind), strlen(json_string_value(kind)))
              : -1;
  if (k < 0) {
    snprintf(err, errsize,
             "faults[%zu].kind: expected one of 429, 503, 500, close, truncate, non-json, "
             "redirect, oversize",
             idx);
    return -1;
  }
  rule_defaults(r, (sim_fault_kind)k);
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    char text[64];
    const char *s;
    if (!strcmp(key, "kind") || !strcmp(key, "fired") || json_is_null(v)) continue;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
      snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
      s = text;
    } else if (json_is_string(v)) {
      s = json_string_value(v);
    } else {
      snprintf(err, errsize, "faults[%zu].%s: expected a string or a whole number", idx, key);
      sim_fault_rule_clear(r);
      return -1;
    }
    if (rule_set(r, key, s, why, sizeof why)) {
      snprintf(err, errsize, "faults[%zu].%s", idx, why);
      sim_fault_rule_clear(r);
      return -1;
    }
  }
  return 0;
}

int sim_faults_from_json(sim_faults *f, const char *body, size_t len, char *err, size_t errsize) {
  json_error_t jerr;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    snprintf(err, errsize, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
             jerr.text);
    return -1;
  }
  sim_faults nf = {0};
  int rc = -1;
  if (!json_is_object(root)) {
    snprintf(err, errsize, "(top level): expected an object");
    goto out;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, "latency_ms") && strcmp(key, "callback_duplicate") &&
        strcmp(key, "callback_reorder") && strcmp(key, "listener_down") && strcmp(key, "faults")) {
      snprintf(err, errsize, "%s: unknown member", key);
      goto out;
    }
  }
  v = json_object_get(root, "latency_ms");
  if (v && !json_is_null(v)) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 600000) {
      snprintf(err, errsize, "latency_ms: expected a whole number from 0 to 600000");
      goto out;
    }
    nf.latency_ms = (long)json_integer_value(v);
  }
  if (json_flag(root, "callback_duplicate", &nf.callback_duplicate, err, errsize) ||
      json_flag(root, "callback_reorder", &nf.callback_reorder, err, errsize) ||
      json_flag(root, "listener_down", &nf.listener_down, err, errsize))
    goto out;
  v = json_object_get(root, "faults");
  if (v && !json_is_null(v)) {
    if (!json_is_array(v)) {
      snprintf(err, errsize, "faults: expected an array");
      goto out;
    }
    nf.rules = sim_xcalloc(json_array_size(v), sizeof *nf.rules);
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (rule_from_json(&nf.rules[i], json_array_get(v, i), i, err, errsize)) goto out;
      nf.n_rules++;
    }
  }
  sim_faults_free(f);
  *f = nf;
  memset(&nf, 0, sizeof nf);
  rc = 0;
out:
  sim_faults_free(&nf);
  json_decref(root);
  return rc;
}

void sim_faults_to_json(const sim_faults *f, sim_buf *out) {
  sim_buf_addf(out,
               "{\"latency_ms\":%ld,\"callback_duplicate\":%s,\"callback_reorder\":%s,"
               "\"listener_down\":%s,\"faults\":[",
               f->latency_ms, f->callback_duplicate ? "true" : "false",
               f->callback_reorder ? "true" : "false", f->listener_down ? "true" : "false");
  for (size_t i = 0; i < f->n_rules; i++) {
    const sim_fault_rule *r = &f->rules[i];
    sim_buf_addf(out,
                 "%s{\"kind\":\"%s\",\"every\":%lu,\"count\":%lu,\"endpoint\":\"%s\","
                 "\"mode\":\"%s\",\"retry_after\":",
                 i ? "," : "", kind_names[r->kind], r->every, r->count,
                 sim_endpoint_name(r->endpoint), r->processed ? "processed" : "dropped");
    sim_buf_json_str(out, r->retry_after);
    sim_buf_adds(out, ",\"to\":");
    sim_buf_json_str(out, r->to);
    sim_buf_addf(out, ",\"bytes\":%zu,\"fired\":%lu}", r->bytes, r->fired);
  }
  sim_buf_adds(out, "]}");
}

int sim_faults_pick(sim_faults *f, int endpoint, sim_fault_rule *out) {
  int fired = 0;
  for (size_t i = 0; i < f->n_rules; i++) {
    sim_fault_rule *r = &f->rules[i];
    if (r->endpoint != SIM_EP_ANY && r->endpoint != endpoint) continue;
    r->matched++;
    if (fired || r->matched % r->every != 0 || (r->count && r->fired >= r->count)) continue;
    r->fired++;
    *out = *r;
    out->retry_after = sim_xstrdup(r->retry_after);
    out->to = sim_xstrdup(r->to);
    fired = 1;
  }
  return fired;
}
