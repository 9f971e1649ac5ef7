/*
 * sim_admin.c - the /_sim endpoints tests use: counters, fault settings at
 * run time, and revoking tokens and sessions.
 */
#include <jansson.h>
#include <string.h>

#include "sim.h"

static void stats_answer(sim *s, sim_answer *a) {
  sim_buf b = {0};
  sim_stats_to_json(s, &b);
  sim_answer_json(a, 200, &b);
}

static void faults_answer(sim *s, sim_answer *a) {
  sim_buf b = {0};
  pthread_mutex_lock(&s->mu);
  sim_faults_to_json(&s->cfg.faults, &b);
  pthread_mutex_unlock(&s->mu);
  sim_answer_json(a, 200, &b);
}

static void revoke(sim *s, const sim_rq *rq, sim_answer *a) {
  json_error_t jerr;
  json_t *root = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *t = root ? json_object_get(root, "access_tokens") : NULL;
  json_t *se = root ? json_object_get(root, "sessions") : NULL;
  if (!json_is_object(root) || (t && !json_is_boolean(t)) || (se && !json_is_boolean(se))) {
    sim_answer_error(a, 400, "INPUT_INVALID.Body.Invalid",
                     "expected {\"access_tokens\":true|false,\"sessions\":true|false}");
    json_decref(root);
    return;
  }
  unsigned long nt, ns;
  sim_revoke(s, json_is_true(t), json_is_true(se), &nt, &ns);
  json_decref(root);
  sim_buf b = {0};
  sim_buf_addf(&b, "{\"access_tokens\":%lu,\"sessions\":%lu}", nt, ns);
  sim_answer_json(a, 200, &b);
}

/* GET /_sim/eids/<EID>: how many accepted downloads held it. */
static void eid_answer(sim *s, const char *eid, sim_answer *a) {
  sim_eid_key k;
  if (sim_eid_pack(eid, &k)) {
    sim_answer_error(a, 400, "INPUT_INVALID.Device.Id.Invalid",
                     "/_sim/eids/<EID>: an EID is 32 decimal digits.");
    return;
  }
  sim_buf b = {0};
  sim_buf_addf(&b, "{\"eid\":\"%s\",\"downloads\":%lu}", eid, sim_eids_count(s->eids, &k));
  sim_answer_json(a, 200, &b);
}

void sim_admin_handle(sim *s, const sim_rq *rq, sim_answer *a) {
  const char *p = rq->path, *m = rq->method;
  if (!strcmp(p, "/_sim/stats")) {
    if (!strcmp(m, "GET")) {
      stats_answer(s, a);
    } else if (!strcmp(m, "DELETE")) {
      sim_stats_reset(s);
      stats_answer(s, a);
    } else {
      sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "Use GET or DELETE.");
    }
  } else if (!strcmp(p, "/_sim/faults")) {
    if (!strcmp(m, "GET")) {
      faults_answer(s, a);
    } else if (!strcmp(m, "POST")) {
      char err[512];
      pthread_mutex_lock(&s->mu);
      int rc = sim_faults_from_json(&s->cfg.faults, rq->body, rq->len, err, sizeof err);
      pthread_mutex_unlock(&s->mu);
      if (rc)
        sim_answer_error(a, 400, "INPUT_INVALID.Body.Invalid", "%s", err);
      else
        faults_answer(s, a);
    } else {
      sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "Use GET or POST.");
    }
  } else if (!strncmp(p, "/_sim/eids/", 11)) {
    if (!strcmp(m, "GET"))
      eid_answer(s, p + 11, a);
    else
      sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "Use GET.");
  } else if (!strcmp(p, "/_sim/revoke")) {
    if (!strcmp(m, "POST"))
      revoke(s, rq, a);
    else
      sim_answer_error(a, 405, "REQUEST_FAILED.MethodNotAllowed", "Use POST.");
  } else {
    sim_answer_error(a, 404, "REQUEST_FAILED.NotFound", "No such admin resource.");
  }
}
