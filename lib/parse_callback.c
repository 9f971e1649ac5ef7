/*
 * parse_callback.c - one DeviceProfileService callback body into a
 * tsesim_callback.
 *
 * An optional field that is JSON null counts as absent: generated serializers
 * emit nulls, and refusing the whole callback for one would lose it.
 *
 * The body is loaded strictly with jansson, then walked twice by the same
 * code: the first walk checks every known field and measures, the second
 * copies into one allocation that holds the callback, its arrays and its
 * strings, so that tsesim_callback_free is a single free and a failure can
 * leave nothing half-built.
 */
#include <limits.h>
#include <string.h>

#define TSESIM__WITH_JANSSON
#include "tsesim_int.h"

typedef struct block {
  tsesim_callback cb;
  tsesim_profile_response profile;
  /* then the device id arrays, then the strings */
} block;

/* The path to the field being read, kept as segments and only rendered into
 * text when there is an error to report (formatting on every step would
 * cost more than the walk itself). */
typedef struct segment {
  const char *key; /* NULL: an array index */
  size_t index;
} segment;

#define SEEN_MAX 64

typedef struct walker {
  int fill; /* 0: check and measure, 1: copy */
  /* The members the measuring walk looked up, in order, so that the copying
   * walk (the same code over the same tree) does not hash every key again. */
  const json_t *seen[SEEN_MAX];
  size_t n_lookups;
  size_t n_ids;          /* device ids, both arrays */
  size_t n_bytes;        /* string bytes with their NULs */
  tsesim_device_id *ids; /* fill: next free id */
  char *pool;            /* fill: next free byte */
  char *errbuf;
  segment path[8]; /* deep enough for every known field */
  size_t depth;
} walker;

/* json_object_get(obj, key), the copying walk's answered from the measuring
 * walk's: the n-th lookup of one walk is the n-th of the other. */
static const json_t *member(walker *w, const json_t *obj, const char *key) {
  size_t n = w->n_lookups++;
  const json_t *v;
  if (w->fill && n < SEEN_MAX) return w->seen[n];
  v = json_object_get(obj, key);
  if (!w->fill && n < SEEN_MAX) w->seen[n] = v;
  return v;
}

static size_t push_key(walker *w, const char *key) {
  size_t old = w->depth;
  if (w->depth < sizeof w->path / sizeof w->path[0]) {
    w->path[w->depth].key = key;
    w->depth++;
  }
  return old;
}

static size_t push_index(walker *w, size_t i) {
  size_t old = w->depth;
  if (w->depth < sizeof w->path / sizeof w->path[0]) {
    w->path[w->depth].key = NULL;
    w->path[w->depth].index = i;
    w->depth++;
  }
  return old;
}

static void pop(walker *w, size_t old) { w->depth = old; }

/* Reports "<path>: <what>", e.g. "deviceIds[2].id: expected a string, got an integer". */
static int fail(walker *w, const char *what) {
  char path[160];
  size_t i, o = 0;
  int n;
  path[0] = '\0';
  for (i = 0; i < w->depth && o < sizeof path; i++) {
    if (w->path[i].key)
      n = snprintf(path + o, sizeof path - o, "%s%s", o ? "." : "", w->path[i].key);
    else
      n = snprintf(path + o, sizeof path - o, "[%lu]", (unsigned long)w->path[i].index);
    if (n < 0) break;
    o += (size_t)n;
  }
  tsesim__errbuf_set(w->errbuf, "%s: %s", path, what);
  return -1;
}

static int wrong_type(walker *w, const char *want, const json_t *got) {
  char what[128];
  snprintf(what, sizeof what, "expected %s, got %s", want, tsesim__json_type_name(got));
  return fail(w, what);
}

static const char *copy_str(walker *w, const json_t *v) {
  size_t n = json_string_length(v) + 1;
  char *p;
  if (!w->fill) {
    w->n_bytes += n;
    return NULL;
  }
  p = w->pool;
  memcpy(p, json_string_value(v), n);
  w->pool += n;
  return p;
}

/* An optional string member: absent leaves *dst NULL. */
static int opt_string(walker *w, const json_t *obj, const char *key, const char **dst) {
  const json_t *v = member(w, obj, key);
  size_t old;
  int rc = 0;
  if (!v || json_is_null(v)) return 0; /* null: absent */
  old = push_key(w, key);
  if (!json_is_string(v))
    rc = wrong_type(w, "a string", v);
  else
    *dst = copy_str(w, v);
  pop(w, old);
  return rc;
}

/* A count: a non-negative integer or a string of digits; -1 when absent. */
static int opt_count(walker *w, const json_t *obj, const char *key, long *dst) {
  const json_t *v = member(w, obj, key);
  size_t old;
  int rc = 0;
  *dst = -1;
  if (!v || json_is_null(v)) return 0; /* null: absent */
  old = push_key(w, key);
  if (json_is_integer(v) && json_integer_value(v) >= 0 &&
      (unsigned long long)json_integer_value(v) <= (unsigned long long)LONG_MAX) {
    *dst = (long)json_integer_value(v);
  } else if (json_is_string(v) && json_string_length(v) > 0) {
    const char *s = json_string_value(v);
    unsigned long val = 0;
    size_t i, n = json_string_length(v);
    for (i = 0; i < n; i++) {
      if (s[i] < '0' || s[i] > '9' ||
          val > ((unsigned long)LONG_MAX - (unsigned long)(s[i] - '0')) / 10)
        break;
      val = val * 10 + (unsigned long)(s[i] - '0');
    }
    if (i < n) {
      char shown[64], what[160];
      tsesim__quote(shown, sizeof shown, s, 40);
      snprintf(what, sizeof what, "expected a non-negative integer or digit string, got %s", shown);
      rc = fail(w, what);
    } else {
      *dst = (long)val;
    }
  } else if (json_is_integer(v) && json_integer_value(v) < 0) {
    rc = fail(w, "expected a non-negative integer or digit string, got a negative integer");
  } else if (json_is_string(v)) {
    rc = fail(w, "expected a non-negative integer or digit string, got an empty string");
  } else {
    rc = wrong_type(w, "a non-negative integer or digit string", v);
  }
  pop(w, old);
  return rc;
}

/* An optional array of {"kind","id"} objects. */
static int opt_ids(walker *w, const json_t *obj, const char *key, const tsesim_device_id **dst,
                   size_t *n_dst) {
  const json_t *arr = member(w, obj, key);
  size_t old, i, n;
  tsesim_device_id *out = w->ids;
  int rc = 0;
  *dst = NULL;
  *n_dst = 0;
  if (!arr || json_is_null(arr)) return 0; /* null: absent */
  old = push_key(w, key);
  if (!json_is_array(arr)) {
    rc = wrong_type(w, "an array", arr);
    goto done;
  }
  n = json_array_size(arr);
  for (i = 0; i < n && rc == 0; i++) {
    const json_t *el = json_array_get(arr, i);
    const json_t *kind, *id;
    size_t at = push_index(w, i);
    if (!json_is_object(el)) {
      rc = wrong_type(w, "an object", el);
    } else if (!(kind = member(w, el, "kind")) || !(id = member(w, el, "id"))) {
      push_key(w, json_object_get(el, "kind") ? "id" : "kind");
      rc = fail(w, "missing");
    } else if (!json_is_string(kind)) {
      size_t k = push_key(w, "kind");
      rc = wrong_type(w, "a string", kind);
      pop(w, k);
    } else if (!json_is_string(id)) {
      size_t k = push_key(w, "id");
      rc = wrong_type(w, "a string", id);
      pop(w, k);
    } else if (w->fill) {
      tsesim_device_id *d = w->ids++;
      d->kind_name = copy_str(w, kind);
      d->kind = tsesim__id_kind_parse(d->kind_name);
      d->id = copy_str(w, id);
    } else {
      w->n_ids++;
      copy_str(w, kind);
      copy_str(w, id);
    }
    pop(w, at);
  }
  if (rc == 0 && w->fill && n) {
    *dst = out;
    *n_dst = n;
  }
done:
  pop(w, old);
  return rc;
}

static int opt_object(walker *w, const json_t *obj, const char *key, const json_t **dst) {
  const json_t *v = member(w, obj, key);
  *dst = NULL;
  if (!v || json_is_null(v)) return 0; /* null: absent */
  if (!json_is_object(v)) {
    size_t old = push_key(w, key);
    int rc = wrong_type(w, "an object", v);
    pop(w, old);
    return rc;
  }
  *dst = v;
  return 0;
}

static tsesim_status status_of(const char *s) {
  if (!s) return TSESIM_STATUS_OTHER;
  if (tsesim__ascii_ieq(s, "SUCCESS")) return TSESIM_STATUS_SUCCESS;
  if (tsesim__ascii_ieq(s, "FAILED")) return TSESIM_STATUS_FAILED;
  if (tsesim__ascii_ieq(s, "WARNING")) return TSESIM_STATUS_WARNING;
  return TSESIM_STATUS_OTHER;
}

static tsesim_profile_role role_of(const char *s) {
  if (!s) return TSESIM_ROLE_OTHER;
  if (tsesim__ascii_ieq(s, "LEAD")) return TSESIM_ROLE_LEAD;
  if (tsesim__ascii_ieq(s, "LOCAL")) return TSESIM_ROLE_LOCAL;
  if (tsesim__ascii_ieq(s, "DEFAULT")) return TSESIM_ROLE_DEFAULT;
  return TSESIM_ROLE_OTHER;
}

/* One walk over the whole callback; b is scratch in the measuring walk. */
static int walk(walker *w, const json_t *root, block *b) {
  const json_t *rid, *dr = NULL, *dpr = NULL, *fr = NULL;
  tsesim_callback *cb = &b->cb;
  size_t old;

  rid = member(w, root, "requestId");
  if (!rid) {
    tsesim__errbuf_set(w->errbuf, "requestId: missing");
    return -1;
  }
  if (!json_is_string(rid)) {
    push_key(w, "requestId");
    return wrong_type(w, "a string", rid);
  }
  if (json_string_length(rid) == 0) {
    tsesim__errbuf_set(w->errbuf, "requestId: empty");
    return -1;
  }
  cb->request_id = copy_str(w, rid);
  if (opt_ids(w, root, "deviceIds", &cb->device_ids, &cb->n_device_ids)) return -1;
  if (opt_object(w, root, "deviceResponse", &dr)) return -1;
  if (dr) {
    old = push_key(w, "deviceResponse");
    if (opt_object(w, dr, "deviceProfileResponse", &dpr)) return -1;
    if (dpr) {
      tsesim_profile_response *p = &b->profile;
      push_key(w, "deviceProfileResponse");
      if (opt_ids(w, dpr, "deviceIdentifierCollection", &p->ids, &p->n_ids) ||
          opt_string(w, dpr, "state", &p->state) ||
          opt_string(w, dpr, "profileStatus", &p->profile_status) ||
          opt_string(w, dpr, "profileRole", &p->profile_role))
        return -1;
      p->role = role_of(p->profile_role);
      cb->profile = p;
    }
    pop(w, old);
  }
  if (opt_string(w, root, "status", &cb->status) ||
      opt_count(w, root, "callbackCount", &cb->callback_count) ||
      opt_count(w, root, "maxCallbackThreshold", &cb->max_callback_threshold) ||
      opt_object(w, root, "faultResponse", &fr))
    return -1;
  cb->status_code = status_of(cb->status);
  if (fr) {
    old = push_key(w, "faultResponse");
    if (opt_string(w, fr, "faultcode", &cb->fault_code) ||
        opt_string(w, fr, "faultstring", &cb->fault_string))
      return -1;
    pop(w, old);
  }
  if (opt_string(w, root, "username", &cb->username) ||
      opt_string(w, root, "password", &cb->password))
    return -1;
  return 0;
}

tsesim_code tsesim_callback_parse(tsesim_callback **out, const char *body, size_t len,
                                  char *errbuf) {
  json_t *root;
  walker w;
  block scratch, *b;
  size_t size;
  tsesim_code rc;

  if (!out) {
    tsesim__errbuf_set(errbuf, "out is NULL");
    return TSESIM_E_INVAL;
  }
  *out = NULL;
  rc = tsesim__json_load(&root, body, len, errbuf);
  if (rc) return rc;
  if (!json_is_object(root)) {
    tsesim__errbuf_set(errbuf, "top level: expected an object, got %s",
                       tsesim__json_type_name(root));
    json_decref(root);
    return TSESIM_E_PARSE;
  }
  memset(&w, 0, sizeof w);
  memset(&scratch, 0, sizeof scratch);
  w.errbuf = errbuf;
  if (walk(&w, root, &scratch)) {
    json_decref(root);
    return TSESIM_E_PARSE;
  }
  /* Every count is bounded by len, so the sum cannot overflow. */
  size = sizeof *b + w.n_ids * sizeof(tsesim_device_id) + w.n_bytes;
  b = tsesim__malloc(size);
  if (!b) {
    json_decref(root);
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  memset(b, 0, sizeof *b);
  w.fill = 1;
  w.n_lookups = 0;
  w.ids = (tsesim_device_id *)(b + 1);
  w.pool = (char *)(w.ids + w.n_ids);
  walk(&w, root, b); /* cannot fail: the same tree passed above */
  json_decref(root);
  *out = &b->cb;
  return TSESIM_OK;
}

void tsesim_callback_free(tsesim_callback *cb) {
  if (!cb) return;
  /* The echoed listener credentials do not outlive the callback. */
  if (cb->username) tsesim__memzero((char *)cb->username, strlen(cb->username));
  if (cb->password) tsesim__memzero((char *)cb->password, strlen(cb->password));
  tsesim__free(cb);
}
