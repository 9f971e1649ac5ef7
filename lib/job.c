/*
 * job.c - a provisioning job: a request of any size sent as chunks of
 * chunk_size devices, in the devices' order, up to in_flight at once on the
 * client's multi handle (its connections, its tokens), every state of every
 * chunk recorded in the journal before the world can act on it.
 *
 * One chunk's life: queued -> sending (committed before its POST is handed
 * to libcurl) -> accepted (with its requestId) | refused (a 4xx but 429,
 * the error kept) | unknown (it may have been acted on: never sent again
 * unless resend_unknown) | queued again (certainly not acted on: nothing
 * sent, or 429/503 after the last try). The retry decision is retry.c's,
 * per chunk, with its own back-off: a chunk that waits holds up no other.
 * A 401 gateway fault or SessionToken.Expired renews the token once for
 * every chunk that was sent with it (auth.c's generations), and each chunk
 * replays once per kind of renewal, as a blocking download does.
 */
#include <stdio.h>
#include <string.h>

#define TSESIM__WITH_CURL
#include "tsesim_int.h"

#define P_DOWNLOAD "/m2m/v1/devices/profile/actions/download"
#define DEFAULT_CHUNK 10000
#define DEFAULT_IN_FLIGHT 4
#define MAX_IN_FLIGHT 64
#define PROGRESS_EVERY_MS 1000

#ifdef TSESIM_TEST_HOOKS
static void (*sending_hook)(size_t seq);
void tsesim__test_job_sending_hook(void (*fn)(size_t seq)) { sending_hook = fn; }
#endif

/* Where an active chunk is. */
enum { PH_WAIT, PH_RUN };

typedef struct active {
  size_t seq;
  int phase;
  long long due_ms; /* PH_WAIT: when to send */
  unsigned attempt; /* tries made */
  long answered;    /* an earlier try's 429/503 */
  int new_access, new_session;
  unsigned long access_gen, session_gen; /* the tokens the last try carried */
  char *body;
  size_t len;
  tsesim__transfer t;
} active;

typedef struct job {
  tsesim_client *c;
  tsesim_journal *j;
  const char *name;
  const tsesim_request *req;
  tsesim__job_rec rec;
  unsigned char *states;
  size_t *todo, n_todo, next; /* chunks to send, in order, and the next to start */
  active *slots;
  size_t n_slots;
  tsesim_progress_fn progress_fn;
  void *progress_payload;
  tsesim_stop_fn stop_fn;
  void *stop_payload;
  unsigned long bytes;
  long long last_report;
  tsesim_code stop;      /* set: start no new chunk (AUTH, JOURNAL, unreachable, CANCELLED) */
  tsesim_code queued_rc; /* the code that last left a chunk queued */
  char first_problem[TSESIM_ERRBUF_SIZE];
} job;

static size_t chunk_first(const job *jb, size_t seq) { return seq * jb->rec.chunk_size; }

static size_t chunk_count(const job *jb, size_t seq) {
  size_t first = chunk_first(jb, seq), n = jb->rec.n_devices - first;
  return n < jb->rec.chunk_size ? n : jb->rec.chunk_size;
}

static void report(job *jb, long chunk, const char *request_id, const char *error) {
  tsesim_job_progress p;
  size_t s, *by[5];
  memset(&p, 0, sizeof p);
  by[TSESIM__CHUNK_QUEUED] = &p.queued;
  by[TSESIM__CHUNK_SENDING] = &p.sending;
  by[TSESIM__CHUNK_ACCEPTED] = &p.accepted;
  by[TSESIM__CHUNK_UNKNOWN] = &p.unknown;
  by[TSESIM__CHUNK_REFUSED] = &p.refused;
  jb->last_report = tsesim__now_ms(jb->c);
  if (!jb->progress_fn) return;
  for (s = 0; s < jb->rec.n_chunks; s++) {
    *by[jb->states[s]] += chunk_count(jb, s);
    if (jb->states[s] >= TSESIM__CHUNK_ACCEPTED) p.chunks_done++;
  }
  p.devices = jb->rec.n_devices;
  p.chunks = jb->rec.n_chunks;
  p.bytes = jb->bytes;
  p.chunk = chunk;
  p.state = chunk >= 0 ? tsesim__chunk_state_name(jb->states[chunk]) : NULL;
  p.request_id = request_id;
  p.error = error;
  jb->progress_fn(&p, jb->progress_payload);
}

/* Records a chunk's new state; TSESIM_OK, or the journal's failure (the job
 * stops: what it could not record stays "sending", unknown on resume). */
static tsesim_code record(job *jb, size_t seq, int state, const char *request_id, long status,
                          const char *error) {
  tsesim__chunk_change ch;
  tsesim_code rc;
  ch.seq = seq;
  ch.state = state;
  ch.request_id = request_id;
  ch.http_status = status;
  ch.error = error;
  rc = tsesim__journal_chunks_set(jb->j, &jb->rec, &ch, 1);
  if (rc != TSESIM_OK) {
    tsesim__client_fail(jb->c, "job \"%s\": chunk %lu: %s", jb->name, (unsigned long)seq,
                        tsesim_journal_errmsg(jb->j));
    jb->stop = TSESIM_E_JOURNAL;
    return rc;
  }
  jb->states[seq] = (unsigned char)state;
  if (state != TSESIM__CHUNK_ACCEPTED && state != TSESIM__CHUNK_SENDING && error &&
      !jb->first_problem[0])
    snprintf(jb->first_problem, sizeof jb->first_problem, "chunk %lu %s: %s", (unsigned long)seq,
             tsesim__chunk_state_name(state), error);
  tsesim__client_log(jb->c, state == TSESIM__CHUNK_ACCEPTED ? 2 : 1, "job \"%s\": chunk %lu %s%s%s",
                     jb->name, (unsigned long)seq, tsesim__chunk_state_name(state),
                     request_id || error ? ": " : "",
                     request_id ? request_id
                     : error    ? error
                                : "");
  report(jb, (long)seq, request_id, error);
  return TSESIM_OK;
}

static void release(active *a) {
  tsesim_free(a->body);
  a->body = NULL;
}

/* Sends (again) the chunk in a: headers with the current tokens, obtained
 * first when missing or stale. 0 when it is on the wire; -1 when it could
 * not be (a is then done with: the chunk went back to queued). */
static int send_chunk(job *jb, active *a) {
  char *lines[TSESIM__AUTH_LINES];
  size_t n = 0;
  tsesim_code rc = tsesim__client_tokens(jb->c, TSESIM__AUTH_SESSION);
  if (rc == TSESIM_OK) rc = tsesim__auth_headers(&jb->c->auth, TSESIM__AUTH_SESSION, lines, &n);
  if (rc == TSESIM_OK) {
    a->access_gen = jb->c->auth.access_gen;
    a->session_gen = jb->c->auth.session_gen;
    rc = tsesim__transfer_start(&a->t, "POST", jb->c->base_url, P_DOWNLOAD, lines, n, a->body,
                                a->len, 1);
    tsesim__auth_headers_free(lines, n);
    if (rc == TSESIM_OK) {
      a->attempt++;
      a->phase = PH_RUN;
      return 0;
    }
    tsesim__client_fail(jb->c, "%s", a->t.errmsg);
  } else if (rc == TSESIM_E_NOMEM && !jb->c->errmsg[0]) {
    tsesim__client_fail(jb->c, "download: out of memory");
  }
  /* Not sent: the chunk goes back to queued, and no other chunk starts
   * (the credentials were refused, or the token service cannot be reached). */
  jb->queued_rc = rc;
  if (!jb->stop) jb->stop = rc;
  {
    char why[TSESIM_ERRBUF_SIZE];
    snprintf(why, sizeof why, "not sent: %.200s", jb->c->errmsg);
    record(jb, a->seq, TSESIM__CHUNK_QUEUED, NULL, 0, why);
  }
  release(a);
  return -1;
}

/* A finished try of the chunk in a: its new state, or another try. 1 when
 * the chunk is done with (its slot is free), 0 when it goes on. */
static int settle(job *jb, active *a) {
  tsesim_client *c = jb->c;
  tsesim__transfer *t = &a->t;
  tsesim__attempt at;
  tsesim__retry r;
  char err[TSESIM_ERRBUF_SIZE], id[TSESIM__REQUEST_ID_MAX + 1];
  tsesim_code rc;
  jb->bytes += (unsigned long)t->bytes_sent;
  tsesim__client_attempt(c, t, a->attempt, a->answered, 1, &at);
  r = tsesim__retry_decide(&at, tsesim__random_next(&c->rng));
  if (r.action == TSESIM__RETRY_AGAIN) {
    if (t->rc == TSESIM_OK) a->answered = t->status;
    a->phase = PH_WAIT;
    a->due_ms = tsesim__now_ms(c) + r.wait_ms;
    tsesim__client_log(c, 1, "job \"%s\": chunk %lu: %s; retrying in %ld ms (attempt %u of %u)",
                       jb->name, (unsigned long)a->seq,
                       t->rc == TSESIM_OK ? (t->status == 429 ? "429" : "503") : "nothing was sent",
                       r.wait_ms, a->attempt + 1, c->max_attempts);
    return 0;
  }
  if (r.action == TSESIM__RETRY_FAIL) {
    int state =
        r.code == TSESIM_E_RATE_LIMITED ||
                (t->nothing_sent && r.code != TSESIM_E_UNKNOWN_OUTCOME && r.code != TSESIM_E_HTTP)
            ? TSESIM__CHUNK_QUEUED
            : TSESIM__CHUNK_UNKNOWN;
    if (r.code == TSESIM_E_RATE_LIMITED)
      snprintf(err, sizeof err, "still %ld after %u attempts",
               a->answered ? a->answered : t->status, a->attempt);
    else
      snprintf(err, sizeof err, "%s", t->errmsg);
    /* the last 429/503 answer stays readable (tsesim_client_last_error) */
    if (t->rc == TSESIM_OK && t->status >= 400) tsesim__client_set_last_error(c, t, t->status);
    if (state == TSESIM__CHUNK_QUEUED) {
      jb->queued_rc = r.code;
      if (r.code != TSESIM_E_RATE_LIMITED && !jb->stop) jb->stop = r.code; /* unreachable */
    }
    record(jb, a->seq, state, NULL, t->rc == TSESIM_OK ? t->status : 0, err);
    release(a);
    return 1;
  }
  /* an answer */
  if (t->status >= 200 && t->status < 300) {
    rc = tsesim__request_id_read(t->resp, t->resp_len, id, err);
    if (rc == TSESIM_OK) {
      record(jb, a->seq, TSESIM__CHUNK_ACCEPTED, id, t->status, NULL);
    } else {
      char why[TSESIM_ERRBUF_SIZE * 2];
      snprintf(why, sizeof why, "accepted (HTTP %ld), but the requestId %s: %.150s", t->status,
               rc == TSESIM_E_NOMEM ? "could not be read" : "is not usable",
               rc == TSESIM_E_NOMEM ? "out of memory" : err);
      record(jb, a->seq, TSESIM__CHUNK_UNKNOWN, NULL, t->status, why);
    }
    release(a);
    return 1;
  }
  if (tsesim__client_set_last_error(c, t, t->status) != TSESIM_OK && t->status >= 400 &&
      t->status < 500) {
    /* A 4xx was not acted on, but without reading it we cannot tell a
     * refusal from a token to renew: the chunk goes back to queued, and
     * the job stops, as for any lack of memory before sending. */
    snprintf(err, sizeof err, "its answer (HTTP %ld) could not be read: out of memory", t->status);
    tsesim__client_fail(c, "job \"%s\": chunk %lu: %s", jb->name, (unsigned long)a->seq, err);
    jb->queued_rc = TSESIM_E_NOMEM;
    if (!jb->stop) jb->stop = TSESIM_E_NOMEM;
    record(jb, a->seq, TSESIM__CHUNK_QUEUED, NULL, t->status, err);
    release(a);
    return 1;
  }
  if (tsesim__client_gateway_fault(c, t->status) && !a->new_access) {
    a->new_access = 1;
    if (a->access_gen == c->auth.access_gen) { /* the first to see this token refused */
      tsesim__client_log(c, 1, "job \"%s\": access token refused; fetching a new one, once",
                         jb->name);
      tsesim__auth_drop_access(&c->auth);
    }
  } else if (tsesim__client_session_expired(c) && !a->new_session) {
    a->new_session = 1;
    if (a->session_gen == c->auth.session_gen) {
      tsesim__client_log(c, 1, "job \"%s\": session expired; logging in again, once", jb->name);
      tsesim__auth_drop_session(&c->auth);
    }
  } else {
    /* refused (a 4xx), or an answer that may follow an action (3xx, 5xx) */
    int refused = t->status >= 400 && t->status < 500;
    tsesim__client_describe_into(c, err, "download", t->status, "");
    record(jb, a->seq, refused ? TSESIM__CHUNK_REFUSED : TSESIM__CHUNK_UNKNOWN, NULL, t->status,
           err);
    release(a);
    return 1;
  }
  /* a replay with the renewed token: the server did not act on a 401 */
  a->attempt = 0;
  a->answered = 0;
  a->phase = PH_WAIT;
  a->due_ms = 0;
  return 0;
}

/* Starts the next chunks into the free slots: their "sending" committed
 * together, durably, before any of them is handed to libcurl. */
static void start_chunks(job *jb) {
  size_t i, k = 0, n_free = 0;
  tsesim__chunk_change ch[MAX_IN_FLIGHT];
  active *fresh[MAX_IN_FLIGHT];
  for (i = 0; i < jb->n_slots; i++)
    if (!jb->slots[i].body) n_free++;
  for (i = 0; i < jb->n_slots && k < n_free && jb->next + k < jb->n_todo && !jb->stop; i++) {
    active *a = &jb->slots[i];
    size_t seq = jb->todo[jb->next + k];
    tsesim_code rc;
    if (a->body) continue;
    rc = tsesim__request_json_range(&a->body, &a->len, jb->req, chunk_first(jb, seq),
                                    chunk_count(jb, seq));
    if (rc != TSESIM_OK) {
      tsesim__client_fail(jb->c, "job \"%s\": chunk %lu: out of memory", jb->name,
                          (unsigned long)seq);
      jb->stop = jb->queued_rc = rc;
      break;
    }
    a->seq = seq;
    a->attempt = 0;
    a->answered = 0;
    a->new_access = a->new_session = 0;
    ch[k].seq = seq;
    ch[k].state = TSESIM__CHUNK_SENDING;
    ch[k].request_id = NULL;
    ch[k].http_status = 0;
    ch[k].error = NULL;
    fresh[k++] = a;
  }
  if (!k) return;
  if (tsesim__journal_chunks_set(jb->j, &jb->rec, ch, k) != TSESIM_OK) {
    tsesim__client_fail(jb->c, "job \"%s\": %s", jb->name, tsesim_journal_errmsg(jb->j));
    jb->stop = TSESIM_E_JOURNAL;
    for (i = 0; i < k; i++) release(fresh[i]);
    return;
  }
  jb->next += k;
  for (i = 0; i < k; i++) {
    jb->states[fresh[i]->seq] = TSESIM__CHUNK_SENDING;
#ifdef TSESIM_TEST_HOOKS
    if (sending_hook) sending_hook(fresh[i]->seq);
#endif
  }
  for (i = 0; i < k; i++) {
    report(jb, (long)fresh[i]->seq, NULL, NULL);
    if (jb->stop) { /* an earlier chunk could not get tokens: this one was not sent */
      record(jb, fresh[i]->seq, TSESIM__CHUNK_QUEUED, NULL, 0, "not sent: the job stopped");
      release(fresh[i]);
      continue;
    }
    send_chunk(jb, fresh[i]);
  }
}

/* The job's result, by the documented order of precedence. */
static tsesim_code result(job *jb) {
  size_t s, n[5] = {0, 0, 0, 0, 0};
  tsesim_code rc = TSESIM_OK;
  for (s = 0; s < jb->rec.n_chunks; s++) n[jb->states[s]]++;
  if (jb->stop == TSESIM_E_AUTH || jb->stop == TSESIM_E_JOURNAL)
    rc = jb->stop;
  else if (n[TSESIM__CHUNK_QUEUED])
    rc = jb->queued_rc != TSESIM_OK ? jb->queued_rc : jb->stop;
  else if (n[TSESIM__CHUNK_UNKNOWN] || n[TSESIM__CHUNK_SENDING])
    rc = TSESIM_E_UNKNOWN_OUTCOME;
  else if (n[TSESIM__CHUNK_REFUSED])
    rc = TSESIM_E_API;
  if (rc == TSESIM_OK && n[TSESIM__CHUNK_QUEUED])
    rc = TSESIM_E_TRANSPORT; /* queued, and nothing said why: cannot happen */
  if (rc != TSESIM_OK && jb->stop != TSESIM_E_AUTH && jb->stop != TSESIM_E_JOURNAL) {
    char why[TSESIM_ERRBUF_SIZE];
    /* the first chunk that went wrong in this call, else what stopped it
     * (errmsg), else the chunks left unknown by an earlier call */
    snprintf(why, sizeof why, "%s",
             jb->first_problem[0]       ? jb->first_problem
             : jb->c->errmsg[0]         ? jb->c->errmsg
             : n[TSESIM__CHUNK_UNKNOWN] ? "unknown chunks are not sent again without resend_unknown"
                                        : "");
    tsesim__client_fail(jb->c,
                        "job \"%s\": %lu chunk%s: %lu accepted, %lu unknown, %lu refused, %lu "
                        "queued; %.150s",
                        jb->name, (unsigned long)jb->rec.n_chunks, jb->rec.n_chunks == 1 ? "" : "s",
                        (unsigned long)n[TSESIM__CHUNK_ACCEPTED],
                        (unsigned long)(n[TSESIM__CHUNK_UNKNOWN] + n[TSESIM__CHUNK_SENDING]),
                        (unsigned long)n[TSESIM__CHUNK_REFUSED],
                        (unsigned long)n[TSESIM__CHUNK_QUEUED], why);
  }
  return rc;
}

tsesim_code tsesim_job_options_init(tsesim_job_options *o, unsigned int version) {
  if (!o || version < 1 || version > TSESIM_JOB_OPTIONS_VERSION) return TSESIM_E_INVAL;
  memset(o, 0, sizeof *o);
  o->version = version;
  return TSESIM_OK;
}

static tsesim_code check_args(tsesim_client *c, tsesim_journal *j, const char *name,
                              const tsesim_request *req, const tsesim_job_options *o) {
  size_t n = tsesim_request_device_count(req);
  if (!j || !name || !req || !o) {
    tsesim__client_fail(c, "job: %s is NULL",
                        !j      ? "journal"
                        : !name ? "job_name"
                        : !req  ? "req"
                                : "opts");
    return TSESIM_E_INVAL;
  }
  if (!*name || strlen(name) > 200) {
    tsesim__client_fail(c, "job: job_name must be 1 to 200 bytes");
    return TSESIM_E_INVAL;
  }
  if (o->version < 1 || o->version > TSESIM_JOB_OPTIONS_VERSION) {
    tsesim__client_fail(c, "job: options version %u: this library knows 1..%d", o->version,
                        TSESIM_JOB_OPTIONS_VERSION);
    return TSESIM_E_INVAL;
  }
  if (o->chunk_size > TSESIM_MAX_DEVICES_PER_REQUEST) {
    tsesim__client_fail(c, "job: chunk_size %lu: at most %d", (unsigned long)o->chunk_size,
                        TSESIM_MAX_DEVICES_PER_REQUEST);
    return TSESIM_E_INVAL;
  }
  if (o->rows && tsesim_rows_count(o->rows) - tsesim_rows_rejected(o->rows) != n) {
    tsesim__client_fail(c,
                        "job: rows has %lu valid rows, but the request holds %lu devices: "
                        "rows must be the device file the request was read from",
                        (unsigned long)(tsesim_rows_count(o->rows) - tsesim_rows_rejected(o->rows)),
                        (unsigned long)n);
    return TSESIM_E_INVAL;
  }
  if (!n && !o->rows) {
    tsesim__client_fail(c, "job: the request holds no device");
    return TSESIM_E_INVAL;
  }
  return TSESIM_OK;
}

tsesim_code tsesim_job_submit(tsesim_client *c, tsesim_journal *j, const char *name,
                              const tsesim_request *req, const tsesim_job_options *o) {
  static const tsesim_job_options defaults = TSESIM_JOB_OPTIONS_INIT;
  job jb;
  size_t s, i;
  tsesim_code rc;
  if (!c) return TSESIM_E_INVAL;
  if (!o) o = &defaults; /* NULL: the defaults */
  c->errmsg[0] = '\0';
  tsesim_api_error_free(c->last_error);
  c->last_error = NULL;
  if ((rc = check_args(c, j, name, req, o)) != TSESIM_OK) return rc;
  memset(&jb, 0, sizeof jb);
  jb.c = c;
  jb.j = j;
  jb.name = name;
  jb.req = req;
  jb.progress_fn = o->progress_fn;
  jb.progress_payload = o->progress_payload;
  if (o->version >= 2) {
    jb.stop_fn = o->stop_fn;
    jb.stop_payload = o->stop_payload;
  }
  rc = tsesim__journal_job_begin(j, name, req, o->rows, o->chunk_size, &jb.rec);
  if (rc != TSESIM_OK) { /* the journal's message names the job */
    tsesim__client_fail(c, "%s", tsesim_journal_errmsg(j));
    return rc;
  }
  if (!jb.rec.n_chunks) return TSESIM_OK; /* every row was rejected: nothing to send */
  jb.states = tsesim__malloc(jb.rec.n_chunks);
  jb.todo = tsesim__malloc(jb.rec.n_chunks * sizeof *jb.todo);
  if (!jb.states || !jb.todo) {
    rc = TSESIM_E_NOMEM;
    tsesim__client_fail(c, "job \"%s\": out of memory", name);
    goto out;
  }
  if ((rc = tsesim__journal_chunk_states(j, &jb.rec, jb.states)) != TSESIM_OK) {
    tsesim__client_fail(c, "job \"%s\": %s", name, tsesim_journal_errmsg(j));
    goto out;
  }
  for (s = 0; s < jb.rec.n_chunks; s++)
    if (jb.states[s] == TSESIM__CHUNK_QUEUED ||
        (o->resend_unknown && jb.states[s] == TSESIM__CHUNK_UNKNOWN))
      jb.todo[jb.n_todo++] = s;
  jb.n_slots = o->in_flight ? o->in_flight : DEFAULT_IN_FLIGHT;
  if (jb.n_slots > MAX_IN_FLIGHT) jb.n_slots = MAX_IN_FLIGHT;
  if (jb.n_slots > jb.n_todo) jb.n_slots = jb.n_todo;
  if (jb.n_todo && jb.stop_fn && jb.stop_fn(jb.stop_payload)) { /* no contact at all */
    jb.stop = TSESIM_E_CANCELLED;
    tsesim__client_fail(c, "job \"%s\": stopped by its stop_fn", name);
    goto done;
  }
  if (jb.n_todo) {
    /* The tokens first: a refusal stops the job before anything is recorded as sent. */
    if ((rc = tsesim__client_tokens(c, TSESIM__AUTH_SESSION)) != TSESIM_OK) {
      jb.stop = jb.queued_rc = rc;
      goto done;
    }
    if (!(jb.slots = tsesim__malloc(jb.n_slots * sizeof *jb.slots))) {
      rc = TSESIM_E_NOMEM;
      tsesim__client_fail(c, "job \"%s\": out of memory", name);
      goto out;
    }
    memset(jb.slots, 0, jb.n_slots * sizeof *jb.slots);
    for (i = 0; i < jb.n_slots; i++)
      if (tsesim__transfer_init(&jb.slots[i].t, &c->net) != TSESIM_OK) {
        rc = TSESIM_E_NOMEM;
        tsesim__client_fail(c, "job \"%s\": out of memory", name);
        goto out;
      }
  }
  report(&jb, -1, NULL, NULL);
  for (;;) {
    long long now, next_due = -1;
    int busy = 0;
    if (!jb.stop && jb.stop_fn && jb.stop_fn(jb.stop_payload)) {
      jb.stop = TSESIM_E_CANCELLED; /* the chunks in flight finish; the rest stay queued */
      tsesim__client_fail(c, "job \"%s\": stopped by its stop_fn", name);
    }
    if (!jb.stop) start_chunks(&jb);
    now = tsesim__now_ms(c);
    for (i = 0; i < jb.n_slots; i++) {
      active *a = &jb.slots[i];
      if (!a->body) continue;
      if (a->phase == PH_RUN && a->t.done) {
        if (settle(&jb, a)) continue;
      }
      if (a->phase == PH_WAIT) {
        if (jb.stop) { /* it waits to be sent again: certainly not acted on */
          record(&jb, a->seq, TSESIM__CHUNK_QUEUED, NULL, 0, "not sent again: the job stopped");
          release(a);
          continue;
        }
        if (a->due_ms <= now) {
          if (send_chunk(&jb, a) != 0) continue;
        } else if (next_due < 0 || a->due_ms < next_due) {
          next_due = a->due_ms;
        }
      }
      if (a->body) busy = 1;
    }
    if (!busy && (jb.stop || jb.next >= jb.n_todo)) break;
    if (jb.stop == TSESIM_E_JOURNAL) break; /* nothing more can be recorded */
    {
      long wait = PROGRESS_EVERY_MS;
      int running = 0, free_slot = 0;
      for (i = 0; i < jb.n_slots; i++) {
        if (jb.slots[i].body && jb.slots[i].phase == PH_RUN) running = 1;
        if (!jb.slots[i].body) free_slot = 1;
      }
      /* a chunk settled in this pass and the next can take its slot: now */
      if (free_slot && !jb.stop && jb.next < jb.n_todo) wait = 0;
      if (next_due >= 0 && next_due - now < wait) wait = (long)(next_due - now);
      if (wait < 0) wait = 0;
      if (!running && c->sleep_fn && wait > 0)
        c->sleep_fn(wait, c->time_payload);
      else
        tsesim__net_run_any(&c->net, wait);
    }
    if (tsesim__now_ms(c) - jb.last_report >= PROGRESS_EVERY_MS) report(&jb, -1, NULL, NULL);
  }
done:
  rc = result(&jb);
out:
  for (i = 0; jb.slots && i < jb.n_slots; i++) {
    release(&jb.slots[i]);
    tsesim__transfer_cleanup(&jb.slots[i].t);
  }
  tsesim__free(jb.slots);
  tsesim__free(jb.states);
  tsesim__free(jb.todo);
  if (rc == TSESIM_OK) { /* nothing of the retries and replays remains */
    c->errmsg[0] = '\0';
    tsesim_api_error_free(c->last_error);
    c->last_error = NULL;
  }
  return rc;
}
