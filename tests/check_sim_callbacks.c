/*
 * check_sim_callbacks.c - tsesim-sim's callback delivery to a listener run by
 * the test (bodies, outcome rules, retries, abandonment, duplicate and reorder
 * switches), every request fault, latency, SIGTERM policies, and the capacity
 * test: 100,000 callbacks from 10 downloads, each received exactly once.
 *
 * The listener is the library's own (tt_listener) wherever it only has to
 * receive; tests that script failed or late answers, or read the raw requests,
 * use the scripted peer (tt_peer) and say why above them.
 */
#include "tt_sim.h"

/* A simulator, a session, and registered for TT_ACCOUNT either the library's
 * listener (l) or the scripted peer (p), the other NULL. */
typedef struct env {
  tt_sim *s;
  tt_listener *l;
  tt_peer *p;
  tt_auth a;
} env;

static void env_register(env *e, const char *const *args, const char *url, const char *user,
                         const char *pass) {
  e->s = tt_sim_start(args);
  tt_auth_get(e->s, &e->a);
  tt_register(e->s, &e->a, TT_ACCOUNT, url, user, pass);
}

/* The library's listener, expecting user and pass echoed: for the tests that only need the
 * callbacks the simulator sends. */
static void env_start(env *e, const char *const *args, const char *user, const char *pass) {
  e->p = NULL;
  e->l = tt_listener_start(user, pass);
  env_register(e, args, e->l->url, user, pass);
}

/* The scripted peer: for the tests that script its answers or read the raw requests. */
static void env_start_peer(env *e, const char *const *args, const char *user, const char *pass) {
  e->l = NULL;
  e->p = tt_peer_start();
  env_register(e, args, e->p->url, user, pass);
}

static void env_stop(env *e) {
  tt_auth_free(&e->a);
  ck_assert_int_eq(tt_sim_stop(e->s), 0);
  tt_listener_stop(e->l);
  tt_peer_stop(e->p);
}

/* ---- expected identifiers ---- */

typedef struct xids {
  size_t n;
  tsesim_id_kind kind[4];
  const char *name[4], *id[4];
  char mdn[11];
} xids;

/* The device's ids in the order of the letters e (eid), c (iccid), i (imei), then its mdn. */
static void xids_make(xids *x, const tt_device *d, const char *order) {
  x->n = 0;
  for (; *order; order++) {
    size_t k = x->n++;
    switch (*order) {
      case 'e':
        x->kind[k] = TSESIM_ID_EID, x->name[k] = "Eid", x->id[k] = d->eid;
        break;
      case 'c':
        x->kind[k] = TSESIM_ID_ICCID, x->name[k] = "Iccid", x->id[k] = d->iccid;
        break;
      default:
        x->kind[k] = TSESIM_ID_IMEI, x->name[k] = "Imei", x->id[k] = d->imei;
        break;
    }
  }
  snprintf(x->mdn, sizeof x->mdn, "555%s", d->eid + 25);
  x->kind[x->n] = TSESIM_ID_MDN;
  x->name[x->n] = "mdn";
  x->id[x->n++] = x->mdn;
}

/* The device as request JSON, ids in order; kinds in upper case if upper. */
static json_t *dev_json(const tt_device *d, const char *order, int upper) {
  json_t *ids = json_array();
  for (; *order; order++) {
    const char *kind = *order == 'e' ? "eid" : *order == 'c' ? "iccid" : "imei";
    const char *id = *order == 'e' ? d->eid : *order == 'c' ? d->iccid : d->imei;
    const char *ukind = *order == 'e' ? "EID" : *order == 'c' ? "ICCID" : "IMEI";
    json_array_append_new(ids, json_pack("{ssss}", "kind", upper ? ukind : kind, "id", id));
  }
  return json_pack("{so}", "deviceIds", ids);
}

/* A device without imei whose iccid ends in suffix (NULL: in neither 13 nor 77). */
static void iccid_device(tt_device *d, unsigned long seed, const char *suffix) {
  unsigned long j;
  for (j = 0; j < 100000; j++) {
    tt_device_make(d, seed * 100000 + j);
    if (suffix ? tt_ends_with(d->iccid, suffix)
               : !tt_ends_with(d->iccid, "13") && !tt_ends_with(d->iccid, "77"))
      return;
  }
  ck_abort_msg("no iccid ending in %s", suffix);
}

static void check_ids(const char *ctx, const char *what, const tsesim_device_id *ids, size_t n,
                      const xids *x) {
  size_t i;
  ck_assert_msg(n == x->n, "%s: %s has %zu ids, expected %zu", ctx, what, n, x->n);
  for (i = 0; i < n; i++) {
    ck_assert_msg(ids[i].kind == x->kind[i], "%s: %s[%zu] kind %d, expected %d", ctx, what, i,
                  ids[i].kind, x->kind[i]);
    tt_expect_str(ctx, "kind name", ids[i].kind_name, x->name[i]);
    tt_expect_str(ctx, "id", ids[i].id, x->id[i]);
  }
}

static const char *cb_eid(const tsesim_callback *cb) {
  size_t i;
  for (i = 0; i < cb->n_device_ids; i++)
    if (cb->device_ids[i].kind == TSESIM_ID_EID) return cb->device_ids[i].id;
  return "";
}

/* A SUCCESS callback of the device: ids, ACTIVE/ENABLE/LOCAL, counts, credentials. */
static void check_success(const char *ctx, const tsesim_callback *cb, const char *rid,
                          const xids *x, const char *user, const char *pass, long count) {
  tt_expect_str(ctx, "requestId", cb->request_id, rid);
  check_ids(ctx, "deviceIds", cb->device_ids, cb->n_device_ids, x);
  tt_expect_str(ctx, "status", cb->status, "SUCCESS");
  ck_assert_int_eq(cb->status_code, TSESIM_STATUS_SUCCESS);
  ck_assert_msg(cb->profile != NULL, "%s: no deviceProfileResponse", ctx);
  check_ids(ctx, "deviceIdentifierCollection", cb->profile->ids, cb->profile->n_ids, x);
  tt_expect_str(ctx, "state", cb->profile->state, "ACTIVE");
  tt_expect_str(ctx, "profileStatus", cb->profile->profile_status, "ENABLE");
  tt_expect_str(ctx, "profileRole", cb->profile->profile_role, "LOCAL");
  ck_assert_int_eq(cb->profile->role, TSESIM_ROLE_LOCAL);
  ck_assert_int_eq(cb->callback_count, count);
  ck_assert_int_eq(cb->max_callback_threshold, 4);
  tt_expect_str(ctx, "faultcode", cb->fault_code, NULL);
  tt_expect_str(ctx, "username", cb->username, user);
  tt_expect_str(ctx, "password", cb->password, pass);
}

/* A Failed or Warning callback: status, faultResponse, no deviceResponse. */
static void check_fault_cb(const char *ctx, const tsesim_callback *cb, const char *rid,
                           const xids *x, const char *status, tsesim_status code,
                           const char *faultcode, long count) {
  tt_expect_str(ctx, "requestId", cb->request_id, rid);
  check_ids(ctx, "deviceIds", cb->device_ids, cb->n_device_ids, x);
  tt_expect_str(ctx, "status", cb->status, status);
  ck_assert_int_eq(cb->status_code, code);
  ck_assert_msg(cb->profile == NULL, "%s: a %s callback with a deviceResponse", ctx, status);
  tt_expect_str(ctx, "faultcode", cb->fault_code, faultcode);
  ck_assert_msg(cb->fault_string && *cb->fault_string, "%s: no faultstring", ctx);
  ck_assert_int_eq(cb->callback_count, count);
  ck_assert_int_eq(cb->max_callback_threshold, 4);
}

/* All n callbacks of the listener parsed (free with cbs_free). */
static tsesim_callback **cbs_load(tt_listener *l, size_t n) {
  tsesim_callback **cbs = calloc(n ? n : 1, sizeof *cbs);
  size_t i;
  ck_assert_ptr_nonnull(cbs);
  for (i = 0; i < n; i++) cbs[i] = tt_listener_cb(l, i);
  return cbs;
}

/* All n records of the scripted peer parsed (free with cbs_free). */
static tsesim_callback **cbs_load_peer(tt_peer *p, size_t n) {
  tsesim_callback **cbs = calloc(n ? n : 1, sizeof *cbs);
  size_t i;
  ck_assert_ptr_nonnull(cbs);
  for (i = 0; i < n; i++) cbs[i] = tt_peer_cb(p, i);
  return cbs;
}

static void cbs_free(tsesim_callback **cbs, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) tsesim_callback_free(cbs[i]);
  free(cbs);
}

/* The index of the k-th (0-based) callback of eid with status_code, or n. */
static size_t cbs_find(tsesim_callback **cbs, size_t n, const char *eid, tsesim_status code,
                       int k) {
  size_t i;
  for (i = 0; i < n; i++)
    if (strcmp(cb_eid(cbs[i]), eid) == 0 && cbs[i]->status_code == code && k-- == 0) return i;
  return n;
}

/* A download of the devices (stolen reference); the requestId. */
static char *download_devs(const env *e, json_t *devs) {
  char *body = tt_download_body(TT_ACCOUNT, devs, NULL);
  char *id = tt_download_ok(e->s, &e->a, body);
  free(body);
  return id;
}

static char *download_plain(const env *e, size_t n, unsigned long seed0) {
  char *body = tt_plain_body(n, seed0);
  char *id = tt_download_ok(e->s, &e->a, body);
  free(body);
  return id;
}

/* Waits until nothing is pending, then asserts the callback counters. */
static void expect_callbacks(const env *e, const char *ctx, long queued, long attempted,
                             long delivered, long failed, long abandoned) {
  ck_assert_int_eq(tt_stat_wait(e->s, "callbacks.pending", 0, 10.0), 0);
  tt_stats_expect(e->s, ctx, TT_ST("callbacks.queued", queued),
                  TT_ST("callbacks.attempted", attempted), TT_ST("callbacks.delivered", delivered),
                  TT_ST("callbacks.failed", failed), TT_ST("callbacks.abandoned", abandoned),
                  TT_ST("callbacks.pending", 0), NULL);
}

/* ------------------------------------------------------------------------ */
/* Bodies and outcomes */

/* On the scripted peer: the wire (each body is application/json; a 204 is delivered). */
START_TEST(test_callback_bodies) {
  env e;
  tt_device d[3];
  xids x[3];
  json_t *devs = json_array();
  tsesim_callback **cbs;
  char *rid;
  size_t i;
  env_start_peer(&e, NULL, "cb-user", "cb-pass");
  tt_plain_device(&d[0], 101);
  tt_plain_device(&d[1], 102);
  iccid_device(&d[2], 103, NULL);
  xids_make(&x[0], &d[0], "eci");
  xids_make(&x[1], &d[1], "iec");
  xids_make(&x[2], &d[2], "ec");
  json_array_append_new(devs, dev_json(&d[0], "eci", 0));
  json_array_append_new(devs, dev_json(&d[1], "iec", 1));
  json_array_append_new(devs, dev_json(&d[2], "ec", 0));
  rid = download_devs(&e, devs);
  tt_peer_expect(e.p, 3, 10.0, 0.3);
  cbs = cbs_load_peer(e.p, 3);
  for (i = 0; i < 3; i++) {
    char ctx[40];
    size_t k = cbs_find(cbs, 3, d[i].eid, TSESIM_STATUS_SUCCESS, 0);
    snprintf(ctx, sizeof ctx, "device %zu", i);
    ck_assert_msg(k < 3, "%s: no SUCCESS callback for eid %s", ctx, d[i].eid);
    check_success(ctx, cbs[k], rid, &x[i], "cb-user", "cb-pass", 1);
    ck_assert_uint_eq(tt_peer_rec(e.p, k).status, 204);
  }
  cbs_free(cbs, 3);
  expect_callbacks(&e, "3 devices", 3, 3, 3, 0, 0);
  tt_stats_expect(e.s, "3 devices", TT_ST("downloads.accepted", 1),
                  TT_ST("downloads.devices_accepted", 3), TT_ST("callbacks.no_listener", 0),
                  TT_ST("callbacks.duplicates", 0), NULL);
  free(rid);
  env_stop(&e);
}
END_TEST

/* On the scripted peer: the first listener fails the first attempt (500); the second is the
 * library's. */
START_TEST(test_registration_at_acceptance) {
  env e;
  tt_listener *b = tt_listener_start("u2", "p2");
  tsesim_callback *cb;
  char *rx, *ry, *rz;
  tt_device dy;
  xids xy;
  tt_resp r;
  env_start_peer(&e, (const char *[]){"--redelivery-interval", "0.3", NULL}, NULL, NULL);
  tt_peer_fail_first(e.p, 1, 500);
  rx = download_plain(&e, 1, 201);
  ck_assert_uint_eq(tt_peer_wait(e.p, 1, 5.0), 1);
  tt_register(e.s, &e.a, TT_ACCOUNT, b->url, "u2", "p2");
  /* the retry still goes where the download was accepted for */
  tt_peer_expect(e.p, 2, 5.0, 0.1);
  cb = tt_peer_cb(e.p, 1);
  tt_expect_str("retry", "requestId", cb->request_id, rx);
  ck_assert_int_eq(cb->callback_count, 2);
  tt_expect_str("retry", "username", cb->username, NULL);
  tt_expect_str("retry", "password", cb->password, NULL);
  tsesim_callback_free(cb);
  ck_assert_uint_eq(tt_listener_count(b), 0);

  ry = download_plain(&e, 1, 202);
  tt_plain_device(&dy, 202);
  xids_make(&xy, &dy, "eci");
  tt_listener_expect(b, 1, 5.0, 0.1);
  cb = tt_listener_cb(b, 0);
  check_success("new registration", cb, ry, &xy, "u2", "p2", 1);
  tsesim_callback_free(cb);

  tt_m2m(e.s, &r, "DELETE", TT_CALLBACKS TT_ACCOUNT "/name/" TT_SERVICE, e.a.token, e.a.session,
         NULL);
  tt_expect_status("delete", &r, 200);
  tt_resp_free(&r);
  rz = download_plain(&e, 1, 203);
  ck_assert_uint_eq(tt_listener_wait(b, 2, 0.3), 1);
  ck_assert_uint_eq(tt_peer_count(e.p), 2);
  expect_callbacks(&e, "registrations", 2, 3, 2, 1, 0);
  tt_stats_expect(e.s, "no listener", TT_ST("callbacks.no_listener", 1),
                  TT_ST("downloads.accepted", 3), NULL);
  free(rx);
  free(ry);
  free(rz);
  tt_listener_stop(b);
  env_stop(&e);
}
END_TEST

START_TEST(test_no_listener) {
  tt_sim *s = tt_sim_start(NULL);
  tt_listener *l = tt_listener_start(NULL, NULL);
  tt_auth a;
  char *body = tt_plain_body(3, 301), *id;
  tt_auth_get(s, &a);
  id = tt_download_ok(s, &a, body);
  tt_register(s, &a, TT_ACCOUNT, l->url, NULL, NULL); /* after acceptance: too late */
  ck_assert_uint_eq(tt_listener_wait(l, 1, 0.3), 0);
  tt_stats_expect(s, "no listener", TT_ST("callbacks.no_listener", 3),
                  TT_ST("callbacks.attempted", 0), TT_ST("callbacks.pending", 0),
                  TT_ST("callbacks.delivered", 0), TT_ST("downloads.devices_accepted", 3), NULL);
  free(id);
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
  tt_listener_stop(l);
}
END_TEST

START_TEST(test_outcome_13) {
  env e;
  tt_device f, g, h;
  xids xf, xg, xh;
  json_t *devs = json_array();
  tsesim_callback **cbs;
  char *rid;
  size_t k;
  unsigned long seed;
  env_start(&e, NULL, NULL, NULL);
  tt_device_ending(&f, 1, "13");
  iccid_device(&g, 2, "13");
  for (seed = 3;; seed++) { /* iccid ends in 13, imei plain: keyed on the imei */
    iccid_device(&h, seed, "13");
    if (!tt_ends_with(h.imei, "13") && !tt_ends_with(h.imei, "77")) break;
  }
  xids_make(&xf, &f, "eci");
  xids_make(&xg, &g, "ec");
  xids_make(&xh, &h, "eci");
  json_array_append_new(devs, dev_json(&f, "eci", 0));
  json_array_append_new(devs, dev_json(&g, "ec", 0));
  json_array_append_new(devs, dev_json(&h, "eci", 0));
  rid = download_devs(&e, devs);
  tt_listener_expect(e.l, 3, 10.0, 0.3);
  cbs = cbs_load(e.l, 3);
  k = cbs_find(cbs, 3, f.eid, TSESIM_STATUS_FAILED, 0);
  ck_assert_msg(k < 3, "no Failed callback for the imei ending in 13");
  check_fault_cb("imei 13", cbs[k], rid, &xf, "Failed", TSESIM_STATUS_FAILED,
                 "REQUEST_FAILED.Device.NotReachable", 1);
  k = cbs_find(cbs, 3, g.eid, TSESIM_STATUS_FAILED, 0);
  ck_assert_msg(k < 3, "no Failed callback for the iccid ending in 13 without imei");
  check_fault_cb("iccid 13", cbs[k], rid, &xg, "Failed", TSESIM_STATUS_FAILED,
                 "REQUEST_FAILED.Device.NotReachable", 1);
  k = cbs_find(cbs, 3, h.eid, TSESIM_STATUS_SUCCESS, 0);
  ck_assert_msg(k < 3, "no SUCCESS callback for an iccid ending in 13 with a plain imei");
  check_success("iccid 13 with imei", cbs[k], rid, &xh, NULL, NULL, 1);
  cbs_free(cbs, 3);
  expect_callbacks(&e, "13", 3, 3, 3, 0, 0);
  free(rid);
  env_stop(&e);
}
END_TEST

START_TEST(test_outcome_77) {
  env e;
  tt_device w, v;
  xids xw, xv;
  json_t *devs = json_array();
  tsesim_callback **cbs;
  char *rid;
  int i;
  env_start(&e, NULL, "u", "p");
  tt_device_ending(&w, 4, "77");
  iccid_device(&v, 5, "77");
  xids_make(&xw, &w, "eci");
  xids_make(&xv, &v, "ec");
  json_array_append_new(devs, dev_json(&w, "eci", 0));
  json_array_append_new(devs, dev_json(&v, "ec", 0));
  rid = download_devs(&e, devs);
  tt_listener_expect(e.l, 4, 10.0, 0.3);
  cbs = cbs_load(e.l, 4);
  for (i = 0; i < 2; i++) {
    const tt_device *d = i ? &v : &w;
    const xids *x = i ? &xv : &xw;
    size_t kw = cbs_find(cbs, 4, d->eid, TSESIM_STATUS_WARNING, 0);
    size_t ks = cbs_find(cbs, 4, d->eid, TSESIM_STATUS_SUCCESS, 0);
    ck_assert_msg(kw < 4 && ks < 4, "device %d: Warning at %zu, SUCCESS at %zu", i, kw, ks);
    ck_assert_msg(kw < ks, "device %d: the SUCCESS came before the Warning", i);
    check_fault_cb("Warning", cbs[kw], rid, x, "Warning", TSESIM_STATUS_WARNING,
                   "WARNING.Device.Timeout", 1);
    check_success("final", cbs[ks], rid, x, "u", "p", 1);
  }
  cbs_free(cbs, 4);
  expect_callbacks(&e, "77", 4, 4, 4, 0, 0);
  free(rid);
  env_stop(&e);
}
END_TEST

/* _i 0: device order; 1: --callback-reorder. One worker, so arrival order is send order. */
START_TEST(test_order) {
  const char *args[] = {"--callback-workers", "1", _i ? "--callback-reorder" : NULL, NULL};
  env e;
  tt_device d[4];
  json_t *devs = json_array();
  tsesim_callback **cbs;
  const char *first[4];
  size_t nfirst = 0, i, j, kw, ks;
  char *rid;
  env_start(&e, args, NULL, NULL);
  for (i = 0; i < 4; i++) {
    if (i == 1)
      tt_device_ending(&d[i], 6, "77");
    else
      tt_plain_device(&d[i], 600 + i);
    json_array_append_new(devs, tt_device_json(&d[i]));
  }
  rid = download_devs(&e, devs);
  tt_listener_expect(e.l, 5, 10.0, 0.3);
  cbs = cbs_load(e.l, 5);
  for (i = 0; i < 5; i++) {
    for (j = 0; j < nfirst && strcmp(first[j], cb_eid(cbs[i])) != 0; j++) {
    }
    if (j == nfirst) first[nfirst++] = cb_eid(cbs[i]);
  }
  ck_assert_uint_eq(nfirst, 4);
  for (i = 0; i < 4; i++)
    ck_assert_msg(strcmp(first[i], d[_i ? 3 - i : i].eid) == 0, "%s order: device %zu came %zu-th",
                  _i ? "reverse" : "device", (size_t)(_i ? 3 - i : i), i);
  kw = cbs_find(cbs, 5, d[1].eid, TSESIM_STATUS_WARNING, 0);
  ks = cbs_find(cbs, 5, d[1].eid, TSESIM_STATUS_SUCCESS, 0);
  ck_assert_msg(kw < 5 && ks < 5, "77 device: Warning %zu, SUCCESS %zu", kw, ks);
  if (_i)
    ck_assert_msg(ks < kw, "reorder: the final callback must come before the Warning");
  else
    ck_assert_msg(kw < ks, "the Warning must come before the final callback");
  cbs_free(cbs, 5);
  expect_callbacks(&e, "order", 5, 5, 5, 0, 0);
  free(rid);
  env_stop(&e);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Retries and abandonment */

/* On the scripted peer: a 500 to the first attempt, and the time between attempts. */
START_TEST(test_retry) {
  env e;
  tt_device d;
  xids x;
  tsesim_callback *c1, *c2;
  tt_peer_record r1, r2;
  char *rid;
  env_start_peer(&e, (const char *[]){"--redelivery-interval", "0.05", NULL}, "u", "p");
  tt_peer_fail_first(e.p, 1, 500);
  rid = download_plain(&e, 1, 701);
  tt_plain_device(&d, 701);
  xids_make(&x, &d, "eci");
  tt_peer_expect(e.p, 2, 5.0, 0.3);
  r1 = tt_peer_rec(e.p, 0);
  r2 = tt_peer_rec(e.p, 1);
  ck_assert_uint_eq(r1.status, 500);
  ck_assert_uint_eq(r2.status, 204);
  ck_assert_msg(r2.at - r1.at >= 0.048, "retried after %.3f s, interval 0.05", r2.at - r1.at);
  c1 = tt_peer_cb(e.p, 0);
  c2 = tt_peer_cb(e.p, 1);
  check_success("attempt 1", c1, rid, &x, "u", "p", 1);
  check_success("attempt 2", c2, rid, &x, "u", "p", 2);
  tsesim_callback_free(c1);
  tsesim_callback_free(c2);
  expect_callbacks(&e, "retry", 1, 2, 1, 1, 0);
  free(rid);
  env_stop(&e);
}
END_TEST

/* Asserts that the peer's records are the attempts 1..4 of the device's callbacks. */
static void expect_attempts(tt_peer *p, size_t from, const char *eid, tsesim_status code) {
  size_t i;
  for (i = 0; i < 4; i++) {
    tsesim_callback *cb = tt_peer_cb(p, from + i);
    tt_expect_str("attempt", "eid", cb_eid(cb), eid);
    ck_assert_int_eq(cb->status_code, code);
    ck_assert_int_eq(cb->callback_count, (long)i + 1);
    ck_assert_int_eq(cb->max_callback_threshold, 4);
    tsesim_callback_free(cb);
  }
}

/* On the scripted peer: every attempt answered 500. */
START_TEST(test_abandon_after_4) {
  env e;
  tt_device d;
  char *rid;
  env_start_peer(&e, (const char *[]){"--redelivery-interval", "0.05", NULL}, NULL, NULL);
  tt_peer_answer(e.p, 500);
  rid = download_plain(&e, 1, 801);
  tt_plain_device(&d, 801);
  ck_assert_int_eq(tt_stat_wait(e.s, "callbacks.abandoned", 1, 5.0), 1);
  tt_peer_expect(e.p, 4, 1.0, 0.3);
  expect_attempts(e.p, 0, d.eid, TSESIM_STATUS_SUCCESS);
  expect_callbacks(&e, "abandoned", 1, 4, 0, 4, 1);
  free(rid);
  env_stop(&e);
}
END_TEST

/* On the scripted peer: every attempt answered 503. */
START_TEST(test_abandon_warning) {
  env e;
  tt_device w;
  json_t *devs = json_array();
  char *rid;
  env_start_peer(&e, (const char *[]){"--redelivery-interval", "0.05", NULL}, NULL, NULL);
  tt_peer_answer(e.p, 503);
  tt_device_ending(&w, 9, "77");
  json_array_append_new(devs, tt_device_json(&w));
  rid = download_devs(&e, devs);
  ck_assert_int_eq(tt_stat_wait(e.s, "callbacks.abandoned", 2, 5.0), 2);
  tt_peer_expect(e.p, 8, 1.0, 0.3);
  expect_attempts(e.p, 0, w.eid, TSESIM_STATUS_WARNING);
  expect_attempts(e.p, 4, w.eid, TSESIM_STATUS_SUCCESS);
  expect_callbacks(&e, "Warning abandoned, then the final", 2, 8, 0, 8, 2);
  free(rid);
  env_stop(&e);
}
END_TEST

START_TEST(test_abandon_listener_down) {
  env e;
  json_t *j;
  tt_resp r;
  char *rid;
  env_start(&e, (const char *[]){"--listener-down", "--redelivery-interval", "0.05", NULL}, NULL,
            NULL);
  tt_req(e.s, &r, "GET", "/_sim/faults", NULL, NULL);
  tt_expect_status("faults", &r, 200);
  j = tt_json("faults", &r);
  ck_assert_msg(json_is_true(json_object_get(j, "listener_down")), "listener_down not true");
  json_decref(j);
  tt_resp_free(&r);
  rid = download_plain(&e, 2, 901);
  ck_assert_int_eq(tt_stat_wait(e.s, "callbacks.abandoned", 2, 5.0), 2);
  expect_callbacks(&e, "listener down", 2, 8, 0, 8, 2);
  ck_assert_uint_eq(tt_listener_count(e.l), 0);
  free(rid);
  env_stop(&e);
}
END_TEST

START_TEST(test_abandon_dead_port) {
  tt_sim *s = tt_sim_start((const char *[]){"--redelivery-interval", "0.05", NULL});
  tt_auth a;
  char url[64], *body = tt_plain_body(1, 1001), *id;
  int port, fd = tt_dead_port(&port);
  tt_auth_get(s, &a);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/cb", port);
  tt_register(s, &a, TT_ACCOUNT, url, NULL, NULL);
  id = tt_download_ok(s, &a, body);
  ck_assert_int_eq(tt_stat_wait(s, "callbacks.abandoned", 1, 5.0), 1);
  tt_stats_expect(s, "refused connections", TT_ST("callbacks.queued", 1),
                  TT_ST("callbacks.attempted", 4), TT_ST("callbacks.failed", 4),
                  TT_ST("callbacks.delivered", 0), TT_ST("callbacks.pending", 0), NULL);
  close(fd);
  free(id);
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* The environment's proxy is never used: with http_proxy, HTTP_PROXY and ALL_PROXY naming
 * a listening "proxy", every callback still goes straight to the listener. The proxy is the
 * scripted peer, which records any request whatever its path; the listener is the library's. */
START_TEST(test_no_env_proxy) {
  static const char *const vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                     "HTTPS_PROXY", "ALL_PROXY",  "all_proxy"};
  tt_peer *proxy = tt_peer_start(); /* any request, whatever its path */
  char purl[64], *body = tt_plain_body(3, 2001), *id;
  size_t i;
  env e;
  snprintf(purl, sizeof purl, "http://127.0.0.1:%d", proxy->port);
  for (i = 0; i < ARRAY_LEN(vars); i++) setenv(vars[i], purl, 1); /* inherited by the simulator */
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  env_start(&e, NULL, "cb-user", "cb-pass-proxy");
  for (i = 0; i < ARRAY_LEN(vars); i++) unsetenv(vars[i]);
  id = tt_download_ok(e.s, &e.a, body);
  tt_listener_expect(e.l, 3, 5.0, 0.3);
  ck_assert_msg(tt_peer_count(proxy) == 0, "%zu callbacks went through the proxy",
                tt_peer_count(proxy));
  tt_stats_expect(e.s, "straight to the listener", TT_ST("callbacks.attempted", 3),
                  TT_ST("callbacks.delivered", 3), NULL);
  free(id);
  free(body);
  env_stop(&e);
  tt_peer_stop(proxy);
}
END_TEST

/* A listener off this machine is refused at registration, so nothing is ever sent there. */
START_TEST(test_remote_listener_refused) {
  static const char *const urls[] = {"http://203.0.113.7:8080/cb", "http://127.0.0.1.1.1/cb"};
  tt_sim *s = tt_sim_start(NULL);
  char *body = tt_plain_body(2, 3001), *id, reg[256];
  size_t i;
  tt_auth a;
  tt_resp r;
  tt_auth_get(s, &a);
  for (i = 0; i < ARRAY_LEN(urls); i++) {
    snprintf(reg, sizeof reg, "{\"name\":\"" TT_SERVICE "\",\"url\":\"%s\"}", urls[i]);
    tt_m2m(s, &r, "POST", TT_CALLBACKS TT_ACCOUNT, a.token, a.session, reg);
    tt_expect_error(urls[i], &r, 400, "INPUT_INVALID.Callback.Invalid", NULL);
    tt_resp_free(&r);
  }
  id = tt_download_ok(s, &a, body);
  tt_sleep(0.3);
  tt_stats_expect(s, "no listener registered", TT_ST("callbacks.attempted", 0),
                  TT_ST("callbacks.queued", 0), TT_ST("callbacks.no_listener", 2), NULL);
  free(id);
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* On the scripted peer: the first answer held past the simulator's timeout. */
START_TEST(test_callback_timeout) {
  env e;
  tt_peer_record r1, r2;
  char *rid;
  env_start_peer(&e,
                 (const char *[]){"--callback-timeout", "1", "--redelivery-interval", "0.05", NULL},
                 NULL, NULL);
  tt_peer_delay(e.p, 1, 1.6);
  rid = download_plain(&e, 1, 1051);
  tt_peer_expect(e.p, 2, 5.0, 0.2);
  r1 = tt_peer_rec(e.p, 0);
  r2 = tt_peer_rec(e.p, 1);
  ck_assert_msg(r2.at - r1.at >= 1.0, "retried %.3f s after a 1 s timeout", r2.at - r1.at);
  ck_assert_msg(strstr(r2.body, "\"callbackCount\":2") || strstr(r2.body, "\"callbackCount\": 2"),
                "the retry is not callbackCount 2: %s", r2.body);
  expect_callbacks(&e, "timeout", 1, 2, 1, 1, 0);
  free(rid);
  env_stop(&e);
}
END_TEST

/* An https listener: delivered with --callback-cacert, refused with the system CAs. */
START_TEST(test_callback_https) {
  tt_sim *s = tt_sim_new(), *s2;
  char cert[PATH_MAX], key[PATH_MAX], *body = tt_plain_body(1, 1061), *id;
  tt_listener *l;
  tt_auth a;
  tt_make_cert(tt_sim_path(s, "cert.pem", cert), tt_sim_path(s, "key.pem", key));
  l = tt_listener_start_tls(NULL, NULL, cert, key);
  tt_sim_launch(s, (const char *[]){"--callback-cacert", cert, NULL});
  tt_auth_get(s, &a);
  tt_register(s, &a, TT_ACCOUNT, l->url, NULL, NULL);
  id = tt_download_ok(s, &a, body);
  tt_listener_expect(l, 1, 5.0, 0.1);
  ck_assert_int_eq(tt_stat_wait(s, "callbacks.delivered", 1, 5.0), 1);
  free(id);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s), 0);

  s2 = tt_sim_start((const char *[]){"--redelivery-interval", "0.05", NULL});
  tt_auth_get(s2, &a);
  tt_register(s2, &a, TT_ACCOUNT, l->url, NULL, NULL);
  id = tt_download_ok(s2, &a, body);
  ck_assert_int_eq(tt_stat_wait(s2, "callbacks.abandoned", 1, 5.0), 1);
  tt_stats_expect(s2, "untrusted https listener", TT_ST("callbacks.attempted", 4),
                  TT_ST("callbacks.failed", 4), TT_ST("callbacks.delivered", 0), NULL);
  ck_assert_uint_eq(tt_listener_count(l), 1);
  free(id);
  free(body);
  tt_auth_free(&a);
  ck_assert_int_eq(tt_sim_stop(s2), 0);
  tt_listener_stop(l);
}
END_TEST

/* On the scripted peer: the two deliveries compared byte for byte. */
START_TEST(test_duplicate) {
  env e;
  size_t i;
  char *rid;
  env_start_peer(&e, (const char *[]){"--callback-duplicate", NULL}, NULL, NULL);
  rid = download_plain(&e, 2, 1101);
  tt_peer_expect(e.p, 4, 5.0, 0.3);
  for (i = 0; i < 2; i++) {
    tt_device d;
    size_t k, seen = 0;
    const char *first = NULL;
    tt_plain_device(&d, 1101 + i);
    for (k = 0; k < 4; k++) {
      tt_peer_record r = tt_peer_rec(e.p, k);
      if (!strstr(r.body, d.eid)) continue;
      if (first)
        ck_assert_msg(strcmp(first, r.body) == 0, "duplicate differs:\n%s\n%s", first, r.body);
      first = r.body;
      seen++;
    }
    ck_assert_msg(seen == 2, "device %zu delivered %zu times, expected 2", i, seen);
  }
  expect_callbacks(&e, "duplicates", 2, 4, 4, 0, 0);
  tt_stats_expect(e.s, "duplicates", TT_ST("callbacks.duplicates", 2), NULL);
  free(rid);
  env_stop(&e);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Request faults */

/* Posts a download of n plain devices into r. */
static void download_resp(const env *e, tt_resp *r, size_t n, unsigned long seed) {
  char *body = tt_plain_body(n, seed);
  tt_download_req(e->s, r, &e->a, body);
  free(body);
}

static void expect_download_stats(const env *e, const char *ctx, long received, long accepted,
                                  long injected) {
  tt_stats_expect(e->s, ctx, TT_ST("downloads.received", received),
                  TT_ST("downloads.accepted", accepted), TT_ST("faults.injected", injected), NULL);
}

START_TEST(test_fault_429) {
  env e;
  tt_resp r;
  env_start(&e, (const char *[]){"--fault", "429:endpoint=download,count=1,retry-after=3", NULL},
            NULL, NULL);
  download_resp(&e, &r, 1, 1201);
  tt_expect_error("429", &r, 429, "REQUEST_FAILED.RateLimited", NULL);
  tt_expect_str("429", "Retry-After", r.retry_after, "3");
  tt_resp_free(&r);
  ck_assert_uint_eq(tt_listener_wait(e.l, 1, 0.3), 0);
  expect_download_stats(&e, "429 dropped", 1, 0, 1);
  tt_stats_expect(e.s, "429 dropped", TT_ST("callbacks.queued", 0), NULL);
  free(download_plain(&e, 1, 1202)); /* count=1: spent */
  tt_listener_expect(e.l, 1, 5.0, 0.1);
  expect_download_stats(&e, "after the rule", 2, 1, 1);
  env_stop(&e);
}
END_TEST

START_TEST(test_fault_429_date) {
  tt_sim *s = tt_sim_start((const char *[]){"--fault", "429:retry-after=date:60", NULL});
  struct tm tm;
  const char *end;
  time_t when, now = time(NULL);
  tt_resp r;
  tt_token_req(s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_error("429 date", &r, 429, "REQUEST_FAILED.RateLimited", NULL);
  memset(&tm, 0, sizeof tm);
  end = strptime(r.retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  ck_assert_msg(end && *end == '\0', "Retry-After \"%s\" is not an IMF-fixdate", r.retry_after);
  when = curl_getdate(r.retry_after, NULL);
  ck_assert_msg(when >= now + 58 && when <= now + 62, "Retry-After %s is %ld s from now",
                r.retry_after, (long)(when - now));
  tt_resp_free(&r);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_fault_429_processed) {
  env e;
  tt_resp r;
  env_start(&e, (const char *[]){"--fault", "429:endpoint=download,mode=processed", NULL}, NULL,
            NULL);
  download_resp(&e, &r, 2, 1301);
  tt_expect_error("429 processed", &r, 429, "REQUEST_FAILED.RateLimited", NULL);
  tt_expect_str("429 processed", "Retry-After", r.retry_after, "1");
  tt_resp_free(&r);
  tt_listener_expect(e.l, 2, 5.0, 0.2);
  expect_download_stats(&e, "429 processed", 1, 1, 1);
  expect_callbacks(&e, "429 processed", 2, 2, 2, 0, 0);
  env_stop(&e);
}
END_TEST

START_TEST(test_fault_503) {
  tt_sim *s = tt_sim_start((const char *[]){"--fault", "503:endpoint=login,count=1", NULL});
  char *tok = tt_get_token(s), *sess;
  tt_resp r;
  tt_login_req(s, &r, tok, "sim-user", "sim-pass");
  tt_expect_error("503", &r, 503, "REQUEST_FAILED.ServiceUnavailable", NULL);
  tt_expect_str("503", "Retry-After", r.retry_after, "1");
  tt_resp_free(&r);
  tt_stats_expect(s, "503 login dropped", TT_ST("logins.ok", 0), TT_ST("faults.injected", 1),
                  TT_ST("requests.login", 1), NULL);
  sess = tt_login_as(s, tok, "sim-user", "sim-pass");
  free(sess);
  free(tok);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

START_TEST(test_fault_500) {
  env e;
  tt_resp r;
  env_start(&e, (const char *[]){"--fault", "500:endpoint=callbacks,every=2", NULL}, NULL, NULL);
  /* env_start's registration was the 1st callbacks request */
  tt_m2m(e.s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, e.a.token, e.a.session, NULL);
  tt_expect_error("500", &r, 500, "REQUEST_FAILED.UnexpectedError", NULL);
  tt_resp_free(&r);
  tt_m2m(e.s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, e.a.token, e.a.session, NULL);
  tt_expect_status("3rd callbacks request", &r, 200);
  tt_resp_free(&r);
  env_stop(&e);
}
END_TEST

/* _i 0: mode dropped (default), 1: processed. */
START_TEST(test_fault_close) {
  const char *args[] = {
      "--fault", _i ? "close:endpoint=download,mode=processed" : "close:endpoint=download", NULL};
  env e;
  tt_resp r;
  env_start(&e, args, NULL, NULL);
  download_resp(&e, &r, 2, 1401);
  ck_assert_msg(r.rc == CURLE_GOT_NOTHING, "close: %s, HTTP %ld", curl_easy_strerror(r.rc),
                r.status);
  tt_resp_free(&r);
  if (_i) {
    tt_listener_expect(e.l, 2, 5.0, 0.2);
    expect_callbacks(&e, "close processed", 2, 2, 2, 0, 0);
  } else {
    ck_assert_uint_eq(tt_listener_wait(e.l, 1, 0.3), 0);
    expect_callbacks(&e, "close dropped", 0, 0, 0, 0, 0);
  }
  expect_download_stats(&e, "close", 1, _i, 1);
  tt_stats_expect(e.s, "close", TT_ST("requests.download", 1),
                  TT_ST("downloads.devices_accepted", _i ? 2 : 0), NULL);
  env_stop(&e);
}
END_TEST

START_TEST(test_fault_truncate) {
  env e;
  tt_resp r;
  tsesim_callback *cb;
  const char *p;
  env_start(&e, (const char *[]){"--fault", "truncate:endpoint=download", NULL}, NULL, NULL);
  download_resp(&e, &r, 1, 1501);
  ck_assert_msg(r.rc == CURLE_PARTIAL_FILE, "truncate: %s", curl_easy_strerror(r.rc));
  ck_assert_int_eq(r.status, 200);
  ck_assert_msg(r.content_length > 40, "Content-Length %ld", r.content_length);
  ck_assert_msg(
      r.len == (size_t)r.content_length / 2 || r.len == ((size_t)r.content_length + 1) / 2,
      "received %zu of %ld bytes, expected half", r.len, r.content_length);
  tt_listener_expect(e.l, 1, 5.0, 0.2);
  cb = tt_listener_cb(e.l, 0);
  /* what came is the start of the real answer: {"requestId": "<the callbacks' id>"} */
  p = strstr(r.body, "\"requestId\"");
  ck_assert_msg(p != NULL, "truncated body \"%s\"", r.body);
  p = strchr(p + 11, '"');
  ck_assert_msg(p && strncmp(p + 1, cb->request_id, strlen(p + 1)) == 0,
                "truncated body \"%s\" is not the start of requestId %s", r.body, cb->request_id);
  tsesim_callback_free(cb);
  tt_resp_free(&r);
  expect_download_stats(&e, "truncate", 1, 1, 1);
  env_stop(&e);
}
END_TEST

START_TEST(test_fault_non_json) {
  env e;
  tt_resp r;
  env_start(&e, (const char *[]){"--fault", "non-json:endpoint=download", NULL}, NULL, NULL);
  download_resp(&e, &r, 1, 1601);
  tt_expect_status("non-json", &r, 200);
  ck_assert_msg(strncasecmp(r.content_type, "text/html", 9) == 0, "Content-Type %s",
                r.content_type);
  ck_assert_msg(strncmp(r.body, "<html>", 6) == 0, "body %.100s", r.body);
  tt_resp_free(&r);
  tt_listener_expect(e.l, 1, 5.0, 0.2);
  expect_download_stats(&e, "non-json", 1, 1, 1);
  env_stop(&e);
}
END_TEST

START_TEST(test_fault_redirect) {
  tt_sim *target = tt_sim_start(NULL);
  char fault[256], to[200];
  env e;
  tt_resp r;
  json_t *st;
  static const char *const zero[] = {"requests.token",     "requests.login",    "requests.logout",
                                     "requests.callbacks", "requests.download", "requests.other",
                                     "downloads.received"};
  size_t i;
  snprintf(to, sizeof to, "%s" TT_DOWNLOAD, target->base);
  snprintf(fault, sizeof fault, "redirect:endpoint=download,to=%s", to);
  env_start(&e, (const char *[]){"--fault", fault, NULL}, NULL, NULL);
  download_resp(&e, &r, 1, 1701);
  tt_expect_status("redirect", &r, 302);
  tt_expect_str("redirect", "Location", r.location, to);
  tt_resp_free(&r);
  st = tt_stats(target);
  for (i = 0; i < ARRAY_LEN(zero); i++)
    ck_assert_msg(tt_stat_of(st, zero[i]) == 0, "the redirect target saw %s = %ld", zero[i],
                  tt_stat_of(st, zero[i]));
  json_decref(st);
  ck_assert_uint_eq(tt_listener_wait(e.l, 1, 0.3), 0);
  expect_download_stats(&e, "redirect dropped", 1, 0, 1);
  /* the default target, never contacted: redirects are not followed */
  tt_sim_faults(e.s, "{\"faults\":[{\"kind\":\"redirect\",\"endpoint\":\"token\"}]}");
  tt_token_req(e.s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_status("default redirect", &r, 302);
  tt_expect_str("default redirect", "Location", r.location, "http://127.0.0.1:9/");
  tt_resp_free(&r);
  env_stop(&e);
  ck_assert_int_eq(tt_sim_stop(target), 0);
}
END_TEST

static void expect_oversize(const char *ctx, const tt_resp *r, size_t bytes) {
  json_t *j;
  tt_expect_status(ctx, r, 200);
  ck_assert_msg(strcasecmp(r->transfer_encoding, "chunked") == 0, "%s: Transfer-Encoding \"%s\"",
                ctx, r->transfer_encoding);
  ck_assert_msg(r->content_length == -1, "%s: Content-Length %ld", ctx, r->content_length);
  ck_assert_msg(r->len == bytes, "%s: %zu bytes, expected %zu", ctx, r->len, bytes);
  j = tt_json(ctx, r);
  ck_assert_msg(json_is_object(j), "%s: not a JSON object", ctx);
  json_decref(j);
}

START_TEST(test_fault_oversize) {
  env e;
  tt_resp r;
  env_start(&e, (const char *[]){"--fault", "oversize:endpoint=download,bytes=100000", NULL}, NULL,
            NULL);
  download_resp(&e, &r, 1, 1801);
  expect_oversize("oversize 100000", &r, 100000);
  tt_resp_free(&r);
  tt_listener_expect(e.l, 1, 5.0, 0.2);
  expect_download_stats(&e, "oversize processed", 1, 1, 1);
  tt_sim_faults(e.s, "{\"faults\":[{\"kind\":\"oversize\",\"endpoint\":\"token\"}]}");
  tt_token_req(e.s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  expect_oversize("oversize default", &r, 2097152);
  tt_resp_free(&r);
  env_stop(&e);
}
END_TEST

/* Posts downloads of one device; each answer's status must be want[i]. */
static void download_sequence(const env *e, const long *want, size_t n, int tokens_between) {
  size_t i;
  for (i = 0; i < n; i++) {
    char ctx[40];
    tt_resp r;
    snprintf(ctx, sizeof ctx, "download %zu", i + 1);
    download_resp(e, &r, 1, 1900 + i);
    tt_expect_status(ctx, &r, want[i]);
    tt_resp_free(&r);
    if (tokens_between) free(tt_get_token(e->s)); /* other endpoints do not count */
  }
}

START_TEST(test_fault_every_count) {
  static const long want[] = {200, 500, 200, 500, 200, 200, 200};
  env e;
  json_t *j;
  tt_resp r;
  env_start(&e, (const char *[]){"--fault", "500:endpoint=download,every=2,count=2", NULL}, NULL,
            NULL);
  download_sequence(&e, want, ARRAY_LEN(want), 1);
  expect_download_stats(&e, "every=2,count=2", 7, 5, 2);
  tt_req(e.s, &r, "GET", "/_sim/faults", NULL, NULL);
  j = tt_json("faults", &r);
  ck_assert_int_eq(
      json_integer_value(json_object_get(json_array_get(json_object_get(j, "faults"), 0), "fired")),
      2);
  json_decref(j);
  tt_resp_free(&r);
  env_stop(&e);
}
END_TEST

START_TEST(test_fault_rule_order) {
  /* each rule counts every matching request; the first rule that fires wins */
  static const long want[] = {200, 503, 500, 503, 200, 500};
  env e;
  env_start(&e,
            (const char *[]){"--fault", "500:endpoint=download,every=3", "--fault",
                             "503:endpoint=download,every=2", NULL},
            NULL, NULL);
  download_sequence(&e, want, ARRAY_LEN(want), 0);
  expect_download_stats(&e, "two rules", 6, 2, 4);
  env_stop(&e);
}
END_TEST

static const char *const endpoints[] = {"token", "login", "logout", "callbacks", "download", "any"};

START_TEST(test_fault_endpoint) {
  const char *ep = endpoints[_i];
  int any = strcmp(ep, "any") == 0;
  char rules[200], *sess = NULL, *body = tt_plain_body(1, 2001);
  env e;
  tt_resp r;
  json_t *j;
  env_start(&e, NULL, NULL, NULL);
  snprintf(rules, sizeof rules, "{\"faults\":[{\"kind\":\"500\",\"endpoint\":\"%s\"}]}", ep);
  tt_sim_faults(e.s, rules);

  tt_token_req(e.s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_status("token", &r, any || !strcmp(ep, "token") ? 500 : 200);
  tt_resp_free(&r);
  tt_login_req(e.s, &r, e.a.token, "sim-user", "sim-pass");
  tt_expect_status("login", &r, any || !strcmp(ep, "login") ? 500 : 200);
  if (r.status == 200) {
    j = tt_json("login", &r);
    sess = strdup(tt_jstr(j, "sessionToken"));
    json_decref(j);
  }
  tt_resp_free(&r);
  tt_m2m(e.s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, e.a.token, e.a.session, NULL);
  tt_expect_status("callbacks", &r, any || !strcmp(ep, "callbacks") ? 500 : 200);
  tt_resp_free(&r);
  tt_download_req(e.s, &r, &e.a, body);
  tt_expect_status("download", &r, any || !strcmp(ep, "download") ? 500 : 200);
  tt_resp_free(&r);
  tt_m2m(e.s, &r, "POST", TT_LOGOUT, e.a.token, sess ? sess : e.a.session, NULL);
  tt_expect_status("logout", &r, any || !strcmp(ep, "logout") ? 500 : 200);
  tt_resp_free(&r);

  tt_sim_faults(e.s, "{}");
  if (!strcmp(ep, "logout")) { /* dropped: the session survived its logout */
    tt_m2m(e.s, &r, "GET", TT_CALLBACKS TT_ACCOUNT, e.a.token, sess, NULL);
    tt_expect_status("session after a dropped logout", &r, 200);
    tt_resp_free(&r);
  }
  tt_stats_expect(e.s, ep, TT_ST("faults.injected", any ? 5 : 1),
                  TT_ST("downloads.accepted", any || !strcmp(ep, "download") ? 0 : 1),
                  TT_ST("logins.ok", any || !strcmp(ep, "login") ? 1 : 2), NULL);
  free(sess);
  free(body);
  env_stop(&e);
}
END_TEST

START_TEST(test_latency) {
  env e;
  tt_resp r;
  env_start(&e, (const char *[]){"--latency-ms", "200", NULL}, NULL, NULL);
  tt_stats_expect(e.s, "setup: token, login, register", TT_ST("faults.latency", 3), NULL);
  download_resp(&e, &r, 1, 2101);
  tt_expect_status("download", &r, 200);
  ck_assert_msg(r.seconds >= 0.2, "answered after %.3f s, latency 200 ms", r.seconds);
  tt_resp_free(&r);
  tt_stats_expect(e.s, "latency", TT_ST("faults.latency", 4), TT_ST("faults.injected", 0), NULL);
  /* latency applies before a fault */
  tt_sim_faults(e.s, "{\"latency_ms\":150,\"faults\":[{\"kind\":\"500\",\"endpoint\":\"token\"}]}");
  tt_token_req(e.s, &r, "sim-key", "sim-secret", "grant_type=client_credentials");
  tt_expect_status("token", &r, 500);
  ck_assert_msg(r.seconds >= 0.15, "faulted answer after %.3f s, latency 150 ms", r.seconds);
  tt_resp_free(&r);
  tt_stats_expect(e.s, "latency and fault", TT_ST("faults.latency", 5), TT_ST("faults.injected", 1),
                  NULL);
  env_stop(&e);
}
END_TEST

START_TEST(test_faults_at_run_time) {
  env e;
  tt_resp r;
  json_t *j;
  env_start(&e, (const char *[]){"--redelivery-interval", "0.05", NULL}, NULL, NULL);
  tt_sim_faults(e.s, "{\"faults\":[{\"kind\":\"503\",\"endpoint\":\"download\"}]}");
  download_resp(&e, &r, 1, 2201);
  tt_expect_error("503 set at run time", &r, 503, "REQUEST_FAILED.ServiceUnavailable", NULL);
  tt_resp_free(&r);
  download_resp(&e, &r, 1, 2202);
  tt_expect_status("503 again", &r, 503);
  tt_resp_free(&r);
  tt_req(e.s, &r, "GET", "/_sim/faults", NULL, NULL);
  j = tt_json("faults", &r);
  ck_assert_int_eq(
      json_integer_value(json_object_get(json_array_get(json_object_get(j, "faults"), 0), "fired")),
      2);
  json_decref(j);
  tt_resp_free(&r);

  tt_sim_faults(e.s, "{\"listener_down\":true}"); /* and no fault rules any more */
  free(download_plain(&e, 1, 2203));
  ck_assert_int_eq(tt_stat_wait(e.s, "callbacks.abandoned", 1, 5.0), 1);
  ck_assert_uint_eq(tt_listener_count(e.l), 0);

  tt_sim_faults(e.s, "{\"callback_duplicate\":true}");
  free(download_plain(&e, 1, 2204));
  tt_listener_expect(e.l, 2, 5.0, 0.2);

  tt_sim_faults(e.s, "{}");
  free(download_plain(&e, 1, 2205));
  tt_listener_expect(e.l, 3, 5.0, 0.2);
  expect_callbacks(&e, "run time", 3, 4 + 2 + 1, 3, 4, 1);
  expect_download_stats(&e, "run time", 5, 3, 2);
  env_stop(&e);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* SIGTERM */

/* On the scripted peer: the first attempts answered 500, so retries are pending at SIGTERM. */
START_TEST(test_term_finish) {
  env e;
  size_t i, n;
  int status, refused = 0;
  double t0;
  env_start_peer(&e, (const char *[]){"--on-term", "finish", "--redelivery-interval", "0.5", NULL},
                 NULL, NULL);
  tt_peer_fail_first(e.p, 10, 500);
  free(download_plain(&e, 10, 2301));
  ck_assert_uint_eq(tt_peer_wait(e.p, 10, 5.0), 10);
  kill(e.s->pid, SIGTERM);
  /* it stops accepting first, while the retries are still to come */
  tt_timeout_ms = 200;
  for (t0 = tt_now(); tt_now() - t0 < 0.4 && !refused; tt_sleep(0.01)) {
    tt_resp r;
    tt_req(e.s, &r, "GET", "/_sim/stats", NULL, NULL);
    refused = r.rc != CURLE_OK;
    tt_resp_free(&r);
  }
  tt_timeout_ms = 30000;
  ck_assert_msg(refused, "still accepting requests 0.4 s after SIGTERM");
  ck_assert_msg(waitpid(e.s->pid, &status, WNOHANG) == 0, "exited before the retries");
  status = tt_sim_wait_exit(e.s, 10.0);
  ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d",
                status);
  n = tt_peer_count(e.p);
  ck_assert_uint_eq(n, 20);
  for (i = 0; i < 10; i++) {
    tt_device d;
    size_t k, ok = 0;
    tt_plain_device(&d, 2301 + i);
    for (k = 0; k < n; k++) {
      tt_peer_record r = tt_peer_rec(e.p, k);
      ok += r.status == 204 && strstr(r.body, d.eid) != NULL;
    }
    ck_assert_msg(ok == 1, "device %zu delivered %zu times", i, ok);
  }
  tt_auth_free(&e.a);
  tt_sim_free(e.s);
  tt_peer_stop(e.p);
}
END_TEST

/* On the scripted peer: the first attempts answered 500, so retries are pending at SIGTERM. */
START_TEST(test_term_abandon) {
  env e;
  int status;
  double t0;
  env_start_peer(&e, (const char *[]){"--redelivery-interval", "5", NULL}, NULL, NULL);
  tt_peer_fail_first(e.p, 5, 500);
  free(download_plain(&e, 5, 2401));
  ck_assert_uint_eq(tt_peer_wait(e.p, 5, 5.0), 5);
  ck_assert_int_eq(tt_stat_wait(e.s, "callbacks.failed", 5, 5.0), 5);
  tt_stats_expect(e.s, "before SIGTERM", TT_ST("callbacks.pending", 5), NULL);
  t0 = tt_now();
  kill(e.s->pid, SIGTERM);
  status = tt_sim_wait_exit(e.s, 10.0);
  ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d",
                status);
  ck_assert_msg(tt_now() - t0 < 3.0, "abandon waited %.1f s for retries", tt_now() - t0);
  ck_assert_uint_eq(tt_peer_count(e.p), 5);
  tt_auth_free(&e.a);
  tt_sim_free(e.s);
  tt_peer_stop(e.p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Capacity: 100,000 callbacks */

#define CAP_DOWNLOADS 10
#define CAP_PER 10000
#define CAP_TOTAL (CAP_DOWNLOADS * CAP_PER)
#define KEY_LEN 72 /* requestId '/' eid NUL */

static int key_cmp(const void *a, const void *b) { return memcmp(a, b, KEY_LEN); }

START_TEST(test_capacity) {
  env e;
  char *want = calloc(CAP_TOTAL, KEY_LEN), *got = calloc(CAP_TOTAL, KEY_LEN);
  size_t i, k;
  double t0;
  ck_assert_ptr_nonnull(want);
  ck_assert_ptr_nonnull(got);
  env_start(&e, NULL, NULL, NULL);
  for (k = 0; k < CAP_DOWNLOADS; k++) {
    json_t *devs = json_array();
    char *body, *rid;
    tt_device d[1];
    for (i = 0; i < CAP_PER; i++) {
      tt_plain_device(d, 100000 + k * CAP_PER + i);
      json_array_append_new(devs, tt_device_json(d));
      snprintf(want + (k * CAP_PER + i) * KEY_LEN, KEY_LEN, "/%s", d->eid);
    }
    body = tt_download_body(TT_ACCOUNT, devs, NULL);
    rid = tt_download_ok(e.s, &e.a, body);
    for (i = 0; i < CAP_PER; i++) {
      char *key = want + (k * CAP_PER + i) * KEY_LEN, eid[40];
      snprintf(eid, sizeof eid, "%s", key);
      snprintf(key, KEY_LEN, "%s%s", rid, eid);
    }
    free(rid);
    free(body);
  }
  t0 = tt_now();
  k = tt_listener_wait(e.l, CAP_TOTAL, tt_slow(100.0));
  ck_assert_msg(k == CAP_TOTAL, "%zu of %d callbacks within %.0f s", k, CAP_TOTAL, tt_slow(100.0));
  ck_assert_uint_eq(tt_listener_wait(e.l, CAP_TOTAL + 1, 0.5), CAP_TOTAL);
  fprintf(stderr, "capacity: %d callbacks received %.1f s after the last download\n", CAP_TOTAL,
          tt_now() - t0);
  for (i = 0; i < CAP_TOTAL; i++) {
    tsesim_callback *cb = tt_listener_cb(e.l, i);
    ck_assert_int_eq(cb->status_code, TSESIM_STATUS_SUCCESS);
    ck_assert_int_eq(cb->callback_count, 1);
    snprintf(got + i * KEY_LEN, KEY_LEN, "%s/%s", cb->request_id, cb_eid(cb));
    tsesim_callback_free(cb);
  }
  qsort(want, CAP_TOTAL, KEY_LEN, key_cmp);
  qsort(got, CAP_TOTAL, KEY_LEN, key_cmp);
  for (i = 1; i < CAP_TOTAL; i++) {
    ck_assert_msg(memcmp(want + (i - 1) * KEY_LEN, want + i * KEY_LEN, KEY_LEN) != 0,
                  "the test sent %s twice", want + i * KEY_LEN);
    ck_assert_msg(memcmp(got + (i - 1) * KEY_LEN, got + i * KEY_LEN, KEY_LEN) != 0,
                  "received %s twice", got + i * KEY_LEN);
  }
  for (i = 0; i < CAP_TOTAL; i++)
    ck_assert_msg(memcmp(want + i * KEY_LEN, got + i * KEY_LEN, KEY_LEN) == 0,
                  "expected %s, received %s", want + i * KEY_LEN, got + i * KEY_LEN);
  expect_callbacks(&e, "capacity", CAP_TOTAL, CAP_TOTAL, CAP_TOTAL, 0, 0);
  tt_stats_expect(e.s, "capacity", TT_ST("downloads.accepted", CAP_DOWNLOADS),
                  TT_ST("downloads.devices_accepted", CAP_TOTAL), TT_ST("callbacks.duplicates", 0),
                  NULL);
  free(want);
  free(got);
  env_stop(&e);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("sim_callbacks");
  TCase *tc = tt_tcase(s, "delivery", 30);
  tcase_add_test(tc, test_callback_bodies);
  tcase_add_test(tc, test_registration_at_acceptance);
  tcase_add_test(tc, test_no_listener);
  tcase_add_test(tc, test_outcome_13);
  tcase_add_test(tc, test_outcome_77);
  tcase_add_loop_test(tc, test_order, 0, 2);
  tc = tt_tcase(s, "retries", 30);
  tcase_add_test(tc, test_retry);
  tcase_add_test(tc, test_abandon_after_4);
  tcase_add_test(tc, test_abandon_warning);
  tcase_add_test(tc, test_abandon_listener_down);
  tcase_add_test(tc, test_abandon_dead_port);
  tcase_add_test(tc, test_callback_timeout);
  tcase_add_test(tc, test_callback_https);
  tcase_add_test(tc, test_no_env_proxy);
  tcase_add_test(tc, test_remote_listener_refused);
  tcase_add_test(tc, test_duplicate);
  tc = tt_tcase(s, "faults", 30);
  tcase_add_test(tc, test_fault_429);
  tcase_add_test(tc, test_fault_429_date);
  tcase_add_test(tc, test_fault_429_processed);
  tcase_add_test(tc, test_fault_503);
  tcase_add_test(tc, test_fault_500);
  tcase_add_loop_test(tc, test_fault_close, 0, 2);
  tcase_add_test(tc, test_fault_truncate);
  tcase_add_test(tc, test_fault_non_json);
  tcase_add_test(tc, test_fault_redirect);
  tcase_add_test(tc, test_fault_oversize);
  tcase_add_test(tc, test_fault_every_count);
  tcase_add_test(tc, test_fault_rule_order);
  tcase_add_loop_test(tc, test_fault_endpoint, 0, (int)ARRAY_LEN(endpoints));
  tcase_add_test(tc, test_latency);
  tcase_add_test(tc, test_faults_at_run_time);
  tc = tt_tcase(s, "term", 30);
  tcase_add_test(tc, test_term_finish);
  tcase_add_test(tc, test_term_abandon);
  tc = tt_tcase(s, "capacity", 120);
  tcase_add_test(tc, test_capacity);
  return s;
}

TT_MAIN(suite)
