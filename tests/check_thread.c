/*
 * check_thread.c - tsesim_global_init and tsesim_global_cleanup called from
 * many threads at once (libtsesim-thread(3)): eight threads that each set up
 * the library, download through their own client from one tsesim-sim and
 * clean up; and eight threads that do nothing but init and cleanup, after
 * which the count must be back to 0 and the library still usable.
 *
 * Built with -fsanitize=thread (see .ci/run), this program must run without
 * a single ThreadSanitizer report: a plain counter in global.c is a data race
 * that TSan reports even when the counts happen to come out right.
 *
 * The threads never call Check's asserts (Check is not thread-safe): each
 * records what it saw, and the main thread asserts after joining them.
 */
#include "tt_sim.h"

#define N_THREADS 8
#define N_ROUNDS 2000 /* init/cleanup rounds per thread in the hammer test */

/* ---- eight threads, each: init, a client, one download, free, cleanup ---- */

typedef struct dl_worker {
  tt_opts opts;
  pthread_barrier_t *go;
  tt_device dev;
  tsesim_code init_rc, req_rc, new_rc, dl_rc;
  char errmsg[256];
  char *request_id; /* malloc'd copy of what the download returned */
} dl_worker;

static void *dl_run(void *arg) {
  dl_worker *w = arg;
  tsesim_client *c = NULL;
  tsesim_request *req = NULL;
  char *id = NULL;
  pthread_barrier_wait(w->go); /* all eight reach tsesim_global_init together */
  w->init_rc = tsesim_global_init();
  if (w->init_rc != TSESIM_OK) return NULL;
  w->req_rc = tsesim_request_new(&req, TT_ACCOUNT);
  if (w->req_rc == TSESIM_OK) w->req_rc = tsesim_request_add_device(req, w->dev.ids, 3);
  if (w->req_rc == TSESIM_OK) w->new_rc = tsesim_client_new(&c, &w->opts.o);
  if (w->req_rc == TSESIM_OK && w->new_rc == TSESIM_OK) {
    w->dl_rc = tsesim_client_download(&id, c, req);
    snprintf(w->errmsg, sizeof w->errmsg, "%s", tsesim_client_errmsg(c));
    if (id) w->request_id = strdup(id);
  }
  tsesim_free(id);
  tsesim_client_free(c);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  return NULL;
}

START_TEST(test_threads_download) {
  tt_sim *s = tt_sim_start(NULL);
  dl_worker w[N_THREADS];
  pthread_t th[N_THREADS];
  pthread_barrier_t go;
  int t, u;
  ck_assert_uint_eq(tsesim__test_global_count(), 0);
  memset(w, 0, sizeof w);
  ck_assert_int_eq(pthread_barrier_init(&go, NULL, N_THREADS), 0);
  for (t = 0; t < N_THREADS; t++) {
    tt_opts_for(&w[t].opts, s);
    w[t].go = &go;
    tt_plain_device(&w[t].dev, 9100 + (unsigned long)t);
    w[t].init_rc = w[t].req_rc = w[t].new_rc = w[t].dl_rc = TSESIM_E_INVAL;
  }
  for (t = 0; t < N_THREADS; t++) ck_assert_int_eq(pthread_create(&th[t], NULL, dl_run, &w[t]), 0);
  for (t = 0; t < N_THREADS; t++) ck_assert_int_eq(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&go);
  for (t = 0; t < N_THREADS; t++) {
    ck_assert_msg(w[t].init_rc == TSESIM_OK, "thread %d: tsesim_global_init: %s", t,
                  tsesim_code_name(w[t].init_rc));
    ck_assert_msg(w[t].req_rc == TSESIM_OK, "thread %d: request: %s", t,
                  tsesim_code_name(w[t].req_rc));
    ck_assert_msg(w[t].new_rc == TSESIM_OK, "thread %d: tsesim_client_new: %s", t,
                  tsesim_code_name(w[t].new_rc));
    ck_assert_msg(w[t].dl_rc == TSESIM_OK, "thread %d: download: %s (%s)", t,
                  tsesim_code_name(w[t].dl_rc), w[t].errmsg);
    ck_assert_msg(tt_is_uuid4(w[t].request_id), "thread %d: requestId \"%s\" is not a UUID v4", t,
                  w[t].request_id);
    for (u = 0; u < t; u++)
      ck_assert_msg(strcmp(w[t].request_id, w[u].request_id) != 0,
                    "threads %d and %d got the same requestId %s", u, t, w[t].request_id);
  }
  for (t = 0; t < N_THREADS; t++) free(w[t].request_id);
  /* every init was undone */
  ck_assert_uint_eq(tsesim__test_global_count(), 0);
  tt_stats_expect(s, "8 threads", TT_ST("requests.download", N_THREADS),
                  TT_ST("downloads.accepted", N_THREADS),
                  TT_ST("downloads.devices_accepted", N_THREADS), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

/* ---- eight threads that only init and clean up ---- */

typedef struct hammer {
  pthread_barrier_t *go;
  int id;
  unsigned long failed; /* inits that did not return TSESIM_OK */
} hammer;

static void *hammer_run(void *arg) {
  hammer *h = arg;
  int i;
  pthread_barrier_wait(h->go);
  for (i = 0; i < N_ROUNDS; i++) {
    if (tsesim_global_init() != TSESIM_OK) {
      h->failed++;
      continue;
    }
    /* every few rounds a nested pair, as a plug-in inside a program would make */
    if ((i + h->id) % 5 == 0) {
      if (tsesim_global_init() == TSESIM_OK)
        tsesim_global_cleanup();
      else
        h->failed++;
    }
    tsesim_global_cleanup();
  }
  return NULL;
}

START_TEST(test_threads_init_cleanup) {
  hammer h[N_THREADS];
  pthread_t th[N_THREADS];
  pthread_barrier_t go;
  tsesim_request *req;
  tt_device d;
  tt_sim *s;
  tt_opts o;
  tsesim_client *c = NULL;
  char *id = NULL;
  int t;
  ck_assert_uint_eq(tsesim__test_global_count(), 0);
  ck_assert_int_eq(pthread_barrier_init(&go, NULL, N_THREADS), 0);
  memset(h, 0, sizeof h);
  for (t = 0; t < N_THREADS; t++) {
    h[t].go = &go;
    h[t].id = t;
    ck_assert_int_eq(pthread_create(&th[t], NULL, hammer_run, &h[t]), 0);
  }
  for (t = 0; t < N_THREADS; t++) ck_assert_int_eq(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&go);
  for (t = 0; t < N_THREADS; t++)
    ck_assert_msg(h[t].failed == 0, "thread %d: %lu inits failed", t, h[t].failed);
  /* balanced: 8 * N_ROUNDS (and the nested) inits, as many cleanups */
  ck_assert_uint_eq(tsesim__test_global_count(), 0);

  /* One more init and the library works: a download through libcurl. */
  ck_assert_int_eq(tsesim_global_init(), TSESIM_OK);
  ck_assert_uint_eq(tsesim__test_global_count(), 1);
  s = tt_sim_start(NULL);
  tt_opts_for(&o, s);
  tt_plain_device(&d, 9200);
  ck_assert_int_eq(tsesim_request_new(&req, TT_ACCOUNT), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  ck_assert_int_eq(tsesim_client_new(&c, &o.o), TSESIM_OK);
  ck_assert_msg(tsesim_client_download(&id, c, req) == TSESIM_OK, "download after the hammer: %s",
                tsesim_client_errmsg(c));
  ck_assert_msg(tt_is_uuid4(id), "requestId \"%s\" is not a UUID v4", id);
  tsesim_free(id);
  tsesim_client_free(c);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  ck_assert_uint_eq(tsesim__test_global_count(), 0);
  tsesim_global_cleanup(); /* one too many: still harmless */
  ck_assert_uint_eq(tsesim__test_global_count(), 0);
  tt_stats_expect(s, "after the hammer", TT_ST("downloads.accepted", 1), NULL);
  ck_assert_int_eq(tt_sim_stop(s), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("thread");
  /* The hammer first: under CK_FORK=no it then runs before the harness's own
   * libcurl client (tt_http) has set libcurl up for good. */
  TCase *tc = tt_tcase(s, "global", 120);
  tcase_add_test(tc, test_threads_init_cleanup);
  tcase_add_test(tc, test_threads_download);
  return s;
}

TT_MAIN(suite)
