/*
 * sim_api.c - the /api endpoints: OAuth token, session login/logout,
 * callback listeners and the profile download, each check answering with
 * the error shape and code ThingSpace uses for it.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"
#include "tsesim.h"

#define P_TOKEN "/ts/v1/oauth2/token"
#define P_LOGIN "/m2m/v1/session/login"
#define P_LOGOUT "/m2m/v1/session/logout"
#define P_CALLBACKS "/m2m/v1/callbacks/"
#define P_DOWNLOAD "/m2m/v1/devices/profile/actions/download"

int sim_api_classify(const char *method, const char *path) {
  (void)method;
  if (!strcmp(path, P_TOKEN)) return SIM_EP_TOKEN;
  if (!strcmp(path, P_LOGIN)) return SIM_EP_LOGIN;
  if (!strcmp(path, P_LOGOUT)) return SIM_EP_LOGOUT;
  if (!strncmp(path, P_CALLBACKS, strlen(P_CALLBACKS)) && path[strlen(P_CALLBACKS)])
    return SIM_EP_CALLBACKS;
  if (!strcmp(path, P_DOWNLOAD)) return SIM_EP_DOWNLOAD;
  return SIM_EP_OTHER;
}

/* ---- small parsers ---- */
static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes base64 into a NUL-terminated string; NULL when malformed. */
static char *b64decode(const char *in) {
  size_t n = strlen(in);
  while (n && in[n - 1] == '=') n--;
  size_t cap = n * 3 / 4 + 2;
  char *out = sim_xcalloc(1, cap); /* zeroed: a secret freed half-decoded is NUL-ended */
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64val((unsigned char)in[i]);
    if (v < 0) {
      sim_free_secret(out);
      return NULL;
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)((acc >> bits) & 0xff);
    }
  }
  out[o] = '\0';
  if (strlen(out) != o) { /* an embedded NUL */
    sim_free_secret(out);
    return NULL;
  }
  return out;
}

/* The value after "Scheme " in an Authorization header, or NULL. */
static const char *auth_param(const char *header, const char *scheme) {
  size_t n = strlen(scheme);
  if (!header || strncasecmp(header, scheme, n) || header[n] != ' ') return NULL;
  header += n;
  while (*header == ' ') header++;
  return *header ? header : NULL;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The decoded value of one field of an x-www-form-urlencoded body, or NULL. */
static char *form_get(const char *body, size_t len, const char *name) {
  size_t nlen = strlen(name);
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *fe = amp ? amp : end;
    if ((size_t)(fe - p) > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
      const char *v = p + nlen + 1;
      char *out = sim_xmalloc((size_t)(fe - v) + 1), *o = out;
      for (; v < fe; v++) {
        if (*v == '+') {
          *o++ = ' ';
        } else if (*v == '%' && fe - v > 2 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
          *o++ = (char)(hexval(v[1]) * 16 + hexval(v[2]));
          v += 2;
        } else {
          *o++ = *v;
        }
      }
      *o = '\0';
      return out;
    }
    p = fe + 1;
  }
  return NULL;
}

/* Loads a JSON object body; on failure answers 400 with code. */
static json_t *load_body(const sim_rq *rq, sim_answer *a, const char *code) {
  json_error_t err;
  json_t *root = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &err);
  if (!root) {
    sim_answer_error(a, 400, code, "The body is not valid JSON: line %d, column %d: %s", err.line,
                     err.column, err.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    sim_answer_error(a, 400, code, "The body is not a JSON object.");
    json_decref(root);
    return NULL;
  }
  return root;
}

static const char *json_str(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- token ---- */
static void do_token(sim *s, const sim_rq *rq, sim_answer *a) {
  if (strcmp(rq->method, "POST")) {
    sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "Use POST on this path.");
    return;
  }
  const char *b64 = auth_param(rq->authorization, "Basic");
  char *cred = b64 ? b64decode(b64) : NULL;
  char *colon = cred ? strchr(cred, ':') : NULL;
  char token[SIM_UUID_LEN + 1];
  long expires_in = 0;
  int reused = 0;
  if (!colon || (*colon = '\0', sim_token_issue(s, cred, colon + 1, 0, NULL, NULL, NULL))) {
    sim_free_secret(cred);
    SIM_COUNT(s, tokens_refused, 1);
    sim_answer_oauth(a, 401, "invalid_client",
                     b64 ? "Client authentication failed." : "Client credentials are missing.");
    a->www_authenticate = 1;
    return;
  }
  char *grant = form_get(rq->body ? rq->body : "", rq->len, "grant_type");
  if (!grant || strcmp(grant, "client_credentials") ||
      sim_token_issue(s, cred, colon + 1, 1, token, &expires_in, &reused)) {
    sim_free_secret(cred);
    SIM_COUNT(s, tokens_refused, 1);
    if (!grant)
      sim_answer_oauth(a, 400, "invalid_request", "Missing parameter: grant_type.");
    else
      sim_answer_oauth(a, 400, "unsupported_grant_type",
                       "Only grant_type=client_credentials is supported.");
    free(grant);
    return;
  }
  sim_free_secret(cred);
  free(grant);
  SIM_COUNT(s, tokens_issued, !reused);
  SIM_COUNT(s, tokens_reused, reused);
  sim_buf b = {0};
  sim_buf_addf(&b,
               "{\"access_token\":\"%s\",\"token_type\":\"bearer\",\"expires_in\":%ld,"
               "\"scope\":\"ts.application.ro ts.mtas ts.m2m\"}",
               token, expires_in);
  sim_answer_json(a, 200, &b);
}

/* ---- gateway and session checks ---- */
static int check_bearer(sim *s, const sim_rq *rq, sim_answer *a) {
  const char *tok = auth_param(rq->authorization, "Bearer");
  if (!tok) {
    sim_answer_fault(a, "900902", "Missing Credentials",
                     "Required authentication header not found. Make sure your API invocation "
                     "call has a header: 'Authorization : Bearer ACCESS_TOKEN'");
    return -1;
  }
  if (sim_token_check(s, tok)) {
    sim_answer_fault(a, "900901", "Invalid Credentials",
                     "Access failure for API: /api/m2m/v1, version: v1 status: (900901) - Invalid "
                     "Credentials. Make sure you have given the correct access token");
    return -1;
  }
  return 0;
}

static sim_user *check_session(sim *s, const sim_rq *rq, sim_answer *a) {
  sim_user *u;
  const char *code = sim_session_use(s, rq->session_token, &u);
  if (!code) return u;
  const char *msg = !strcmp(code, "INPUT_INVALID.SessionToken.Missing")
                        ? "The VZ-M2M-Token header is missing."
                    : !strcmp(code, "INPUT_INVALID.SessionToken.Invalid")
                        ? "The session token is not valid."
                        : "The session token has expired. Log in again.";
  sim_answer_error(a, 400, code, "%s", msg);
  return NULL;
}

static sim_account *check_account(sim *s, sim_user *u, const char *name, sim_answer *a) {
  sim_account *acc = sim_config_account(&s->cfg, name);
  if (!acc) {
    sim_answer_error(a, 400, "REQUEST_FAILED.AccountNotFound", "Account %.200s was not found.",
                     name);
    return NULL;
  }
  if (!sim_user_may_use(u, name)) {
    sim_answer_error(a, 400, "REQUEST_FAILED.Account.NotAuthorized",
                     "User %.100s may not use account %.200s.", u->name, name);
    return NULL;
  }
  return acc;
}

/* ---- session ---- */
static void do_login(sim *s, const sim_rq *rq, sim_answer *a) {
  if (check_bearer(s, rq, a)) return;
  json_t *root = load_body(rq, a, "INPUT_INVALID.Body.Invalid");
  if (!root) return;
  const char *user = json_str(root, "username"), *pass = json_str(root, "password");
  if (!user || !pass) {
    sim_answer_error(a, 400, "INPUT_INVALID.Body.Invalid",
                     "username and password must be strings.");
    json_decref(root);
    return;
  }
  char session[SIM_UUID_LEN + 1];
  int rc = sim_login(s, user, pass, session);
  json_decref(root);
  if (rc == 2) {
    SIM_COUNT(s, logins_locked, 1);
    sim_answer_error(a, 400, "REQUEST_FAILED.User.Locked",
                     "The user is locked after too many failed logins.");
  } else if (rc == 1) {
    SIM_COUNT(s, logins_refused, 1);
    sim_answer_error(a, 400, "REQUEST_FAILED.Login.InvalidCredentials",
                     "The username or password is not correct.");
  } else {
    SIM_COUNT(s, logins_ok, 1);
    sim_buf b = {0};
    sim_buf_addf(&b, "{\"sessionToken\":\"%s\"}", session);
    sim_answer_json(a, 200, &b);
  }
}

static void do_logout(sim *s, const sim_rq *rq, sim_answer *a) {
  if (check_bearer(s, rq, a) || !check_session(s, rq, a)) return;
  sim_session_end(s, rq->session_token);
  sim_buf b = {0};
  sim_buf_adds(&b, "{\"sessionToken\":");
  sim_buf_json_str(&b, rq->session_token);
  sim_buf_adds(&b, "}");
  sim_answer_json(a, 200, &b);
}

/* ---- callback listeners ---- */
static int valid_service_name(const char *n) {
  if (!n || !*n || strlen(n) > 64) return 0;
  for (; *n; n++)
    if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9')))
      return 0;
  return 1;
}

static void answer_service(sim_answer *a, const char *account, const char *service) {
  sim_buf b = {0};
  sim_buf_adds(&b, "{\"accountName\":");
  sim_buf_json_str(&b, account);
  sim_buf_adds(&b, ",\"serviceName\":");
  sim_buf_json_str(&b, service);
  sim_buf_adds(&b, "}");
  sim_answer_json(a, 200, &b);
}

static void listener_free(sim_listener *l) {
  free(l->service);
  free(l->url);
  sim_free_secret(l->username);
  sim_free_secret(l->password);
  free(l);
}

static void do_callbacks(sim *s, const sim_rq *rq, sim_answer *a) {
  const char *rest = rq->path + strlen(P_CALLBACKS);
  const char *slash = strchr(rest, '/');
  char *account = sim_xstrndup(rest, slash ? (size_t)(slash - rest) : strlen(rest));
  const char *service = NULL;
  const char *method_error = NULL;
  if (slash) { /* only ".../name/{service}", and only DELETE there */
    if (strncmp(slash, "/name/", 6) == 0 && slash[6] && !strchr(slash + 6, '/'))
      service = slash + 6;
    if (service && strcmp(rq->method, "DELETE")) method_error = "Use DELETE on this path.";
  } else if (strcmp(rq->method, "POST") && strcmp(rq->method, "GET")) {
    method_error = "Use POST or GET on this path.";
  }
  if ((slash && !service) || method_error) {
    if (method_error)
      sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "%s", method_error);
    else
      sim_answer_error(a, 404, "REQUEST_FAILED.NotFound", "No such resource.");
    free(account);
    return;
  }
  sim_user *u;
  sim_account *acc;
  if (check_bearer(s, rq, a) || !(u = check_session(s, rq, a)) ||
      !(acc = check_account(s, u, account, a))) {
    free(account);
    return;
  }
  if (service) {
    pthread_mutex_lock(&s->mu);
    sim_listener **pp = &acc->listeners, *gone = NULL;
    for (; *pp; pp = &(*pp)->next)
      if (!strcmp((*pp)->service, service)) {
        gone = *pp;
        *pp = gone->next;
        break;
      }
    pthread_mutex_unlock(&s->mu);
    if (gone) {
      listener_free(gone);
      answer_service(a, account, service);
    } else {
      sim_answer_error(a, 404, "REQUEST_FAILED.Callback.NotFound",
                       "No %.64s listener is registered for account %.200s.", service, account);
    }
  } else if (!strcmp(rq->method, "GET")) {
    sim_buf b = {0};
    sim_buf_adds(&b, "[");
    pthread_mutex_lock(&s->mu);
    for (sim_listener *l = acc->listeners; l; l = l->next) {
      sim_buf_adds(&b, b.len > 1 ? ",{\"accountName\":" : "{\"accountName\":");
      sim_buf_json_str(&b, account);
      sim_buf_adds(&b, ",\"name\":");
      sim_buf_json_str(&b, l->service);
      sim_buf_adds(&b, ",\"url\":");
      sim_buf_json_str(&b, l->url);
      sim_buf_adds(&b, "}");
    }
    pthread_mutex_unlock(&s->mu);
    sim_buf_adds(&b, "]");
    sim_answer_json(a, 200, &b);
  } else {
    json_t *root = load_body(rq, a, "INPUT_INVALID.Callback.Invalid");
    if (root) {
      const char *name = json_str(root, "name"), *url = json_str(root, "url");
      json_t *user = json_object_get(root, "username"), *pass = json_object_get(root, "password");
      if (!valid_service_name(name)) {
        sim_answer_error(a, 400, "INPUT_INVALID.Callback.Invalid",
                         "name must be a service name such as DeviceProfileService.");
      } else if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) ||
                 strlen(url) > 2048) {
        sim_answer_error(a, 400, "INPUT_INVALID.Callback.Invalid",
                         "url must be an http:// or https:// URL.");
      } else if (!s->cfg.allow_remote_callbacks && !sim_url_is_loopback(url)) {
        sim_answer_error(a, 400, "INPUT_INVALID.Callback.Invalid",
                         "url must be on this machine (127.0.0.0/8, [::1] or localhost); "
                         "tsesim-sim --allow-remote-callbacks accepts other hosts.");
      } else if ((user && !json_is_string(user) && !json_is_null(user)) ||
                 (pass && !json_is_string(pass) && !json_is_null(pass))) {
        sim_answer_error(a, 400, "INPUT_INVALID.Callback.Invalid",
                         "username and password must be strings.");
      } else {
        sim_listener *l = sim_xcalloc(1, sizeof *l);
        l->service = sim_xstrdup(name);
        l->url = sim_xstrdup(url);
        l->username = sim_xstrdup(json_string_value(user));
        l->password = sim_xstrdup(json_string_value(pass));
        pthread_mutex_lock(&s->mu);
        sim_listener **pp = &acc->listeners, *old = NULL;
        for (; *pp; pp = &(*pp)->next)
          if (!strcmp((*pp)->service, name)) {
            old = *pp;
            l->next = old->next;
            break;
          }
        *pp = l;
        pthread_mutex_unlock(&s->mu);
        if (old) listener_free(old);
        answer_service(a, account, name);
      }
      json_decref(root);
    }
  }
  free(account);
}

/* ---- download ---- */
static int kind_of(const char *k) {
  if (!strcasecmp(k, "eid")) return SIM_KIND_EID;
  if (!strcasecmp(k, "iccid")) return SIM_KIND_ICCID;
  if (!strcasecmp(k, "imei")) return SIM_KIND_IMEI;
  return -1;
}

/* Checks devices[i] and copies it into d; 0, or -1 with the answer set. */
static int check_device(json_t *dev, size_t i, sim_dev *d, sim_answer *a) {
  static const tsesim_id_kind lib_kind[] = {TSESIM_ID_EID, TSESIM_ID_ICCID, TSESIM_ID_IMEI};
  json_t *ids = json_is_object(dev) ? json_object_get(dev, "deviceIds") : NULL;
  if (!json_is_array(ids) || json_array_size(ids) == 0) {
    sim_answer_error(a, 400, "INPUT_INVALID.Device.Invalid",
                     "devices[%zu]: expected an object with a non-empty deviceIds array", i);
    return -1;
  }
  int seen[3] = {0, 0, 0};
  memset(d, 0, sizeof *d);
  for (size_t j = 0; j < json_array_size(ids); j++) {
    json_t *e = json_array_get(ids, j);
    const char *kind = json_is_object(e) ? json_str(e, "kind") : NULL;
    const char *id = json_is_object(e) ? json_str(e, "id") : NULL;
    if (!kind || !id) {
      sim_answer_error(a, 400, "INPUT_INVALID.Device.Invalid",
                       "devices[%zu].deviceIds[%zu]: expected an object with string kind and id", i,
                       j);
      return -1;
    }
    int k = kind_of(kind);
    if (k < 0) {
      sim_answer_error(a, 400, "INPUT_INVALID.Device.Kind.Invalid",
                       "devices[%zu].deviceIds[%zu].kind: '%.32s' is not eid, iccid or imei", i, j,
                       kind);
      return -1;
    }
    if (seen[k]++) {
      sim_answer_error(a, 400, "INPUT_INVALID.Device.Kind.Duplicate",
                       "devices[%zu].deviceIds[%zu].kind: %s given twice", i, j, kind);
      return -1;
    }
    char why[TSESIM_ERRBUF_SIZE];
    if (tsesim_id_validate(lib_kind[k], id, why) != TSESIM_OK) {
      sim_answer_error(a, 400, "INPUT_INVALID.Device.Id.Invalid",
                       "devices[%zu].deviceIds[%zu].id: %s", i, j, why);
      return -1;
    }
    memcpy(d->id[d->n_ids], id, strlen(id) + 1);
    d->kind[d->n_ids++] = (unsigned char)k;
  }
  if (!seen[SIM_KIND_EID] || (!seen[SIM_KIND_ICCID] && !seen[SIM_KIND_IMEI])) {
    sim_answer_error(a, 400, "INPUT_INVALID.Device.Ids.Incomplete",
                     "devices[%zu]: needs an eid and an iccid or imei", i);
    return -1;
  }
  return 0;
}

static int media_type_is(const char *ct, const char *want) {
  if (!ct) return 0;
  while (*ct == ' ') ct++;
  size_t n = strlen(want);
  if (strncasecmp(ct, want, n)) return 0;
  ct += n;
  while (*ct == ' ') ct++;
  return *ct == '\0' || *ct == ';';
}

static void do_download(sim *s, const sim_rq *rq, sim_answer *a) {
  if (strcmp(rq->method, "POST")) {
    sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "Use POST on this path.");
    return;
  }
  sim_user *u;
  if (check_bearer(s, rq, a) || !(u = check_session(s, rq, a))) return;
  if (!media_type_is(rq->content_type, "application/json")) {
    sim_answer_error(a, 400, "INPUT_INVALID.ContentType.Invalid",
                     "Content-Type must be application/json.");
    return;
  }
  json_t *root = load_body(rq, a, "INPUT_INVALID.Body.Invalid");
  if (!root) return;
  sim_job *job = NULL;
  sim_eid_key *eids = NULL;
  const char *account = json_str(root, "accountName");
  json_t *devices = json_object_get(root, "devices");
  json_t *plan = json_object_get(root, "servicePlan");
  sim_account *acc;
  if (!account || !*account) {
    sim_answer_error(a, 400, "INPUT_INVALID.AccountName.Missing",
                     "accountName must be a non-empty string.");
    goto out;
  }
  if (!(acc = check_account(s, u, account, a))) goto out;
  if (!json_is_array(devices) || json_array_size(devices) == 0) {
    sim_answer_error(a, 400, "INPUT_INVALID.Devices.Missing", "devices must be a non-empty array.");
    goto out;
  }
  size_t n = json_array_size(devices);
  if (n > SIM_MAX_DEVICES) {
    sim_answer_error(a, 400, "INPUT_INVALID.MaxRequestsExceeded",
                     "%zu devices in one request; the limit is %d.", n, SIM_MAX_DEVICES);
    goto out;
  }
  /* With --no-callbacks nothing is kept per device but its packed EID:
   * each device is checked in one scratch sim_dev. */
  if (!s->cfg.no_callbacks) job = sim_job_new(n);
  eids = sim_xmalloc(n * sizeof *eids);
  size_t n_eids = 0;
  for (size_t i = 0; i < n; i++) {
    sim_dev one, *d = job ? &job->devs[i] : &one;
    if (check_device(json_array_get(devices, i), i, d, a)) goto out;
    for (unsigned k = 0; k < d->n_ids; k++) /* check_device made sure of one valid eid */
      if (d->kind[k] == SIM_KIND_EID && !sim_eid_pack(d->id[k], &eids[n_eids])) n_eids++;
  }
  if (plan) {
    size_t k = 0;
    if (json_is_string(plan))
      while (k < acc->n_plans && strcmp(acc->plans[k], json_string_value(plan))) k++;
    if (!json_is_string(plan) || k == acc->n_plans) {
      sim_answer_error(a, 400, "INPUT_INVALID.ServicePlan.Invalid",
                       "servicePlan %s%.100s%s is not a plan of account %.200s.",
                       json_is_string(plan) ? "'" : "",
                       json_is_string(plan) ? json_string_value(plan) : "(not a string)",
                       json_is_string(plan) ? "'" : "", account);
      goto out;
    }
  }
  char request_id[SIM_UUID_LEN + 1];
  sim_uuid4(request_id);
  if (job) {
    memcpy(job->request_id, request_id, sizeof request_id);
    pthread_mutex_lock(&s->mu);
    for (sim_listener *l = acc->listeners; l; l = l->next)
      if (!strcmp(l->service, "DeviceProfileService")) {
        job->url = sim_xstrdup(l->url);
        job->username = sim_xstrdup(l->username);
        job->password = sim_xstrdup(l->password);
      }
    pthread_mutex_unlock(&s->mu);
  }
  /* The EIDs before the counter: a test that sees the download accepted
   * sees its EIDs counted too. */
  sim_eids_add(s->eids, eids, n_eids);
  SIM_COUNT(s, downloads_accepted, 1);
  SIM_COUNT(s, devices_accepted, n);
  sim_buf b = {0};
  sim_buf_addf(&b, "{\"requestId\":\"%s\"}", request_id);
  sim_answer_json(a, 200, &b);
  if (job && job->url) {
    sim_deliver_submit(s->deliver, job);
    job = NULL;
  } else if (job) {
    SIM_COUNT(s, cb_no_listener, n);
  }
out:
  free(job);
  free(eids);
  json_decref(root);
}

void sim_api_handle(sim *s, int endpoint, const sim_rq *rq, sim_answer *a) {
  switch (endpoint) {
    case SIM_EP_TOKEN:
      do_token(s, rq, a);
      return;
    case SIM_EP_LOGIN:
    case SIM_EP_LOGOUT:
      if (strcmp(rq->method, "POST"))
        sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "Use POST on this path.");
      else if (endpoint == SIM_EP_LOGIN)
        do_login(s, rq, a);
      else
        do_logout(s, rq, a);
      return;
    case SIM_EP_CALLBACKS:
      do_callbacks(s, rq, a);
      return;
    case SIM_EP_DOWNLOAD:
      do_download(s, rq, a);
      return;
    default:
      sim_answer_error(a, 404, "REQUEST_FAILED.NotFound", "No such resource.");
      return;
  }
}
