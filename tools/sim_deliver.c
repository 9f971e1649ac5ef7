/*
 * sim_deliver.c - asynchronous callback delivery.
 *
 * One thread drives a libcurl multi handle with up to --callback-workers
 * transfers. Pending callbacks are small items in two FIFOs: "ready" (new
 * callbacks, in device order) and "retry" (due at a time; the redelivery
 * interval is constant, so appending keeps it sorted). A callback body is
 * rendered only when it is sent, and an item is freed as soon as it is
 * delivered or abandoned, so memory is bounded by what is pending, never by
 * what was delivered. A job (one accepted download: the devices, the URL and
 * credentials) is freed with its last item. A device's first item lives in
 * its job's array (one allocation per download, not one per callback: a
 * million pending callbacks cost a million malloc'd items and the
 * allocator's time otherwise); only the SUCCESS that follows a Warning, and
 * the second item of a reordered "77" device, are allocated alone.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"
#include "tsesim_int.h"

typedef struct sim_item {
  struct sim_item *next;
  sim_job *job;
  uint32_t dev;
  uint8_t own;         /* allocated alone (else job->items[dev]), freed when done */
  uint8_t warning;     /* the Warning callback of a "77" device */
  uint8_t attempts;    /* attempts made so far */
  uint8_t chain_final; /* once done, queue the final callback (warning items) */
  uint8_t dup;         /* --callback-duplicate was on when the download was accepted */
  uint8_t is_dup;      /* this send is the duplicate of a delivered callback */
  double due;
} item;

typedef struct fifo {
  item *head, *tail;
} fifo;

typedef struct xfer {
  CURL *easy;
  item *it;
  sim_buf body;
  int busy;
} xfer;

struct sim_deliver {
  sim *s;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t idle; /* signalled when pending reaches 0 */
  fifo ready, retry;
  unsigned long pending; /* items not yet delivered or abandoned */
  int stopping, finish;
  CURLM *multi;
  struct curl_slist *headers;
  xfer *xfers;
  unsigned n_xfers, running;
};

int sim_url_is_loopback(const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  int ok = 0;
  if (u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
      !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
      !curl_url_get(u, CURLUPART_HOST, &host, 0) &&
      (!strcasecmp(scheme, "http") || !strcasecmp(scheme, "https"))) {
    size_t n = strlen(host);
    struct in6_addr a6;
    char inner[64];
    if (!strcasecmp(host, "localhost")) {
      ok = 1;
    } else if (n > 2 && n < sizeof inner + 2 && host[0] == '[' && host[n - 1] == ']') {
      memcpy(inner, host + 1, n - 2); /* curl keeps the brackets, and any zone apart */
      inner[n - 2] = '\0';
      ok = inet_pton(AF_INET6, inner, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    } else {
      ok = tsesim__loopback_ipv4(host);
    }
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return ok;
}

sim_job *sim_job_new(size_t n_devs) {
  sim_job *j = sim_xcalloc(1, sizeof *j + n_devs * sizeof(sim_dev));
  j->n_devs = n_devs;
  return j;
}

static void job_free(sim_job *j) {
  free(j->items);
  free(j->url);
  sim_free_secret(j->username);
  sim_free_secret(j->password);
  free(j);
}

static void push(fifo *q, item *it) {
  it->next = NULL;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
}

static item *pop(fifo *q) {
  item *it = q->head;
  if (it) {
    q->head = it->next;
    if (!q->head) q->tail = NULL;
  }
  return it;
}

/* The outcome rules, keyed on the imei (the iccid when there is none). */
static const char *outcome_key(const sim_dev *d) {
  const char *key = NULL;
  for (unsigned i = 0; i < d->n_ids; i++)
    if (d->kind[i] == SIM_KIND_IMEI || (!key && d->kind[i] == SIM_KIND_ICCID)) key = d->id[i];
  return key ? key : "";
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), t = strlen(tail);
  return n >= t && !strcmp(s + n - t, tail);
}

static void add_ids(sim_buf *b, const sim_dev *d) {
  static const char *const names[] = {"Eid", "Iccid", "Imei"};
  const char *eid = "";
  sim_buf_adds(b, "[");
  for (unsigned i = 0; i < d->n_ids; i++) {
    if (d->kind[i] == SIM_KIND_EID) eid = d->id[i];
    sim_buf_addf(b, "%s{\"id\":\"%s\",\"kind\":\"%s\"}", i ? "," : "", d->id[i], names[d->kind[i]]);
  }
  size_t n = strlen(eid);
  sim_buf_addf(b, ",{\"id\":\"555%s\",\"kind\":\"mdn\"}]", n >= 7 ? eid + n - 7 : "0000000");
}

void sim_callback_body(const sim_job *job, size_t dev, int warning, int count, sim_buf *out) {
  const sim_dev *d = &job->devs[dev];
  int failed = ends_with(outcome_key(d), "13");
  sim_buf_addf(out, "{\"requestId\":\"%s\",\"deviceIds\":", job->request_id);
  add_ids(out, d);
  if (warning) {
    sim_buf_adds(out,
                 ",\"status\":\"Warning\",\"faultResponse\":{\"faultcode\":"
                 "\"WARNING.Device.Timeout\",\"faultstring\":\"The device did not answer in "
                 "time; the download is still in progress.\"}");
  } else if (failed) {
    sim_buf_adds(out,
                 ",\"status\":\"Failed\",\"faultResponse\":{\"faultcode\":"
                 "\"REQUEST_FAILED.Device.NotReachable\",\"faultstring\":\"The device could "
                 "not be reached to download the profile.\"}");
  } else {
    sim_buf_adds(out,
                 ",\"deviceResponse\":{\"deviceProfileResponse\":{"
                 "\"deviceIdentifierCollection\":");
    add_ids(out, d);
    sim_buf_adds(out,
                 ",\"state\":\"ACTIVE\",\"profileStatus\":\"ENABLE\",\"profileRole\":"
                 "\"LOCAL\"}},\"status\":\"SUCCESS\"");
  }
  sim_buf_addf(out, ",\"callbackCount\":%d,\"maxCallbackThreshold\":%d", count, SIM_MAX_ATTEMPTS);
  if (job->username) {
    sim_buf_adds(out, ",\"username\":");
    sim_buf_json_str(out, job->username);
  }
  if (job->password) {
    sim_buf_adds(out, ",\"password\":");
    sim_buf_json_str(out, job->password);
  }
  sim_buf_adds(out, "}");
}

/* Sets up it (NULL: a new item of its own) for device dev of job. */
static item *item_init(item *it, sim_job *job, size_t dev, int warning, int chain_final, int dup) {
  if (!it) {
    it = sim_xcalloc(1, sizeof *it);
    it->own = 1;
  }
  it->job = job;
  it->dev = (uint32_t)dev;
  it->warning = (uint8_t)warning;
  it->chain_final = (uint8_t)chain_final;
  it->dup = (uint8_t)dup;
  return it;
}

void sim_deliver_submit(sim_deliver *d, sim_job *job) {
  sim *s = d->s;
  pthread_mutex_lock(&s->mu);
  int reorder = s->cfg.faults.callback_reorder, dup = s->cfg.faults.callback_duplicate;
  pthread_mutex_unlock(&s->mu);
  unsigned long n_items = 0;
  fifo q = {0};
  job->items = sim_xcalloc(job->n_devs, sizeof *job->items);
  for (size_t k = 0; k < job->n_devs; k++) {
    size_t i = reorder ? job->n_devs - 1 - k : k;
    int two = ends_with(outcome_key(&job->devs[i]), "77");
    if (two && reorder) { /* the final first, then the Warning */
      push(&q, item_init(&job->items[i], job, i, 0, 0, dup));
      push(&q, item_init(NULL, job, i, 1, 0, dup));
      n_items += 2;
    } else {
      push(&q, item_init(&job->items[i], job, i, two, two, dup));
      n_items++;
    }
  }
  job->refs = job->n_devs; /* one item per device alive at a time ... */
  for (item *it = q.head; it; it = it->next)
    if (reorder && it->warning) job->refs++; /* ... except both of a reordered "77" */
  SIM_COUNT(s, cb_queued, n_items);
  pthread_mutex_lock(&d->mu);
  if (q.head) {
    if (d->ready.tail)
      d->ready.tail->next = q.head;
    else
      d->ready.head = q.head;
    d->ready.tail = q.tail;
  }
  d->pending += n_items;
  pthread_mutex_unlock(&d->mu);
  curl_multi_wakeup(d->multi);
}

unsigned long sim_deliver_pending(sim_deliver *d) {
  if (!d) return 0;
  pthread_mutex_lock(&d->mu);
  unsigned long n = d->pending;
  pthread_mutex_unlock(&d->mu);
  return n;
}

static size_t discard(char *p, size_t size, size_t n, void *u) {
  (void)p, (void)u;
  return size * n;
}

/* An item is finished (delivered or abandoned): free it, and its job with
 * its last item. Called with d->mu held. */
static void item_done(sim_deliver *d, item *it) {
  sim_job *job = it->job;
  int last = 0;
  if (it->chain_final) {
    item *fin = item_init(NULL, job, it->dev, 0, 0, it->dup);
    SIM_COUNT(d->s, cb_queued, 1);
    d->pending++;
    push(&d->ready, fin);
  } else {
    last = --job->refs == 0;
  }
  if (it->own) free(it);
  if (last) job_free(job); /* after it: job->items may hold it */
  d->pending--;
  if (d->pending == 0) pthread_cond_broadcast(&d->idle);
}

/* One attempt ended; ok says whether the listener answered 2xx. d->mu held. */
static void attempt_ended(sim_deliver *d, item *it, int ok, const char *what) {
  sim *s = d->s;
  sim_log(s, "callback %s device=%u%s count=%u %s", it->job->request_id, (unsigned)it->dev,
          it->warning ? " warning" : "", (unsigned)it->attempts, what);
  if (ok) {
    SIM_COUNT(s, cb_delivered, 1);
    if (it->dup && !it->is_dup) { /* send the very same callback once more */
      it->is_dup = 1;
      it->attempts--;
      push(&d->ready, it);
      return;
    }
    item_done(d, it);
    return;
  }
  SIM_COUNT(s, cb_failed, 1);
  if (it->is_dup) { /* a failed duplicate is not retried: the original arrived */
    item_done(d, it);
    return;
  }
  if (it->attempts >= SIM_MAX_ATTEMPTS) {
    SIM_COUNT(s, cb_abandoned, 1);
    item_done(d, it);
    return;
  }
  it->due = sim_now() + s->cfg.redelivery_interval;
  push(&d->retry, it);
}

/* Takes the next item to send now, or NULL. d->mu held. */
static item *next_item(sim_deliver *d, double now) {
  if (d->retry.head && d->retry.head->due <= now) return pop(&d->retry);
  return pop(&d->ready);
}

static void start(sim_deliver *d, xfer *x, item *it) {
  sim *s = d->s;
  it->attempts++;
  SIM_COUNT(s, cb_attempted, 1);
  if (it->is_dup) SIM_COUNT(s, cb_duplicates, 1);
  pthread_mutex_lock(&s->mu);
  int down = s->cfg.faults.listener_down;
  pthread_mutex_unlock(&s->mu);
  if (down) {
    attempt_ended(d, it, 0, "listener-down");
    return;
  }
  x->body.len = 0;
  sim_callback_body(it->job, it->dev, it->warning, it->attempts, &x->body);
  x->it = it;
  x->busy = 1;
  curl_easy_setopt(x->easy, CURLOPT_URL, it->job->url);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body.p);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body.len);
  curl_multi_add_handle(d->multi, x->easy);
  d->running++;
}

static void finished(sim_deliver *d, CURL *easy, CURLcode rc) {
  xfer *x = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(d->multi, easy);
  d->running--;
  x->busy = 0;
  char what[96];
  if (rc != CURLE_OK)
    snprintf(what, sizeof what, "failed: %s", curl_easy_strerror(rc));
  else
    snprintf(what, sizeof what, "-> %ld", status);
  item *it = x->it;
  x->it = NULL;
  pthread_mutex_lock(&d->mu);
  attempt_ended(d, it, rc == CURLE_OK && status >= 200 && status < 300, what);
  pthread_mutex_unlock(&d->mu);
}

static void abandon_all(sim_deliver *d) {
  item *it;
  for (unsigned i = 0; i < d->n_xfers; i++)
    if (d->xfers[i].busy) {
      curl_multi_remove_handle(d->multi, d->xfers[i].easy);
      d->xfers[i].busy = 0;
      pthread_mutex_lock(&d->mu);
      d->xfers[i].it->chain_final = 0;
      SIM_COUNT(d->s, cb_abandoned, !d->xfers[i].it->is_dup);
      item_done(d, d->xfers[i].it);
      pthread_mutex_unlock(&d->mu);
    }
  pthread_mutex_lock(&d->mu);
  while ((it = pop(&d->ready)) || (it = pop(&d->retry))) {
    SIM_COUNT(d->s, cb_abandoned, !it->is_dup);
    it->chain_final = 0; /* a final never queued is not counted */
    item_done(d, it);
  }
  pthread_mutex_unlock(&d->mu);
}

static void *run(void *arg) {
  sim_deliver *d = arg;
  for (;;) {
    pthread_mutex_lock(&d->mu);
    if (d->stopping && (!d->finish || d->pending == 0)) {
      pthread_mutex_unlock(&d->mu);
      break;
    }
    double now = sim_now();
    for (unsigned i = 0; i < d->n_xfers && d->running < d->n_xfers; i++) {
      if (d->xfers[i].busy) continue;
      item *it = next_item(d, now);
      if (!it) break;
      start(d, &d->xfers[i], it);
    }
    pthread_mutex_unlock(&d->mu);
    int still;
    curl_multi_perform(d->multi, &still);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(d->multi, &left)))
      if (m->msg == CURLMSG_DONE) finished(d, m->easy_handle, m->data.result);
    /* How long nothing needs doing: 0 when more can start now. */
    int wait_ms = 1000;
    pthread_mutex_lock(&d->mu);
    now = sim_now();
    if (d->running == d->n_xfers) {
      wait_ms = 1000; /* a transfer's progress wakes the poll */
    } else if (d->ready.head) {
      wait_ms = 0;
    } else if (d->retry.head) {
      double ms = (d->retry.head->due - now) * 1000.0;
      wait_ms = ms <= 0 ? 0 : ms < 1000 ? (int)ms + 1 : 1000;
    }
    if (d->stopping && (!d->finish || d->pending == 0)) wait_ms = 0;
    pthread_mutex_unlock(&d->mu);
    if (wait_ms) curl_multi_poll(d->multi, NULL, 0, wait_ms, NULL);
  }
  abandon_all(d);
  return NULL;
}

sim_deliver *sim_deliver_start(sim *s) {
  sim_deliver *d = sim_xcalloc(1, sizeof *d);
  d->s = s;
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->idle, NULL);
  d->multi = curl_multi_init();
  if (!d->multi) {
    free(d);
    return NULL;
  }
  curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->cfg.callback_workers);
  d->headers = curl_slist_append(NULL, "Content-Type: application/json");
  d->headers = curl_slist_append(d->headers, "Expect:");
  d->headers = curl_slist_append(d->headers, "User-Agent: tsesim-sim (ThingSpace callbacks)");
  d->n_xfers = s->cfg.callback_workers;
  d->xfers = sim_xcalloc(d->n_xfers, sizeof *d->xfers);
  for (unsigned i = 0; i < d->n_xfers; i++) {
    CURL *e = d->xfers[i].easy = curl_easy_init();
    if (!e) abort();
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)&d->xfers[i]);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(s->cfg.callback_timeout * 1000.0));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->cfg.callback_timeout * 1000.0));
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Never the environment's proxy (http_proxy, ALL_PROXY...): callbacks
     * carry the listener's password, and go only where they were registered. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    if (s->cfg.callback_cacert) curl_easy_setopt(e, CURLOPT_CAINFO, s->cfg.callback_cacert);
  }
  if (pthread_create(&d->thread, NULL, run, d)) abort();
  return d;
}

void sim_deliver_stop(sim_deliver *d, int finish) {
  pthread_mutex_lock(&d->mu);
  d->stopping = 1;
  d->finish = finish;
  pthread_mutex_unlock(&d->mu);
  curl_multi_wakeup(d->multi);
  pthread_join(d->thread, NULL);
  for (unsigned i = 0; i < d->n_xfers; i++) {
    curl_easy_cleanup(d->xfers[i].easy);
    sim_buf_free(&d->xfers[i].body);
  }
  free(d->xfers);
  curl_slist_free_all(d->headers);
  curl_multi_cleanup(d->multi);
  pthread_cond_destroy(&d->idle);
  pthread_mutex_destroy(&d->mu);
  free(d);
}
