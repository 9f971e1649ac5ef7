/*
 * bench_serialize.c - building and serializing a 10,000-device request
 * (eid, iccid and imei each, service plan set), against building the same
 * content as a jansson tree and json_dumps'ing it, in one process.
 *
 * Bounds (issue 2): time <= 0.15x jansson's; allocations per serialization
 * bounded by a constant; peak memory over the baseline <= 2x the body size.
 */
#include <jansson.h>
#include <string.h>

#include "../tests/tt_ids.h"
#include "bench.h"
#include "tsesim_int.h"

#define N_DEV TSESIM_MAX_DEVICES_PER_REQUEST
#define ROUNDS 21
#define ACCOUNT "0000123456-00001"
#define PLAN "Global eSIM_Plan 5GB"

static tt_device *devs;

static size_t ours(char **out_json) {
  tsesim_request *req;
  char *json;
  size_t len, i;
  if (tsesim_request_new(&req, ACCOUNT) || tsesim_request_set_service_plan(req, PLAN)) exit(2);
  for (i = 0; i < N_DEV; i++)
    if (tsesim_request_add_device(req, devs[i].ids, 3)) {
      fprintf(stderr, "%s\n", tsesim_request_errmsg(req));
      exit(2);
    }
  if (tsesim_request_to_json(&json, &len, req)) exit(2);
  tsesim_request_free(req);
  if (out_json)
    *out_json = json;
  else
    tsesim_free(json);
  return len;
}

static size_t with_jansson(char **out_json) {
  json_t *root = json_object(), *arr = json_array();
  char *json;
  size_t i, j, len;
  static const char *const kinds[] = {"eid", "iccid", "imei"};
  for (i = 0; i < N_DEV; i++) {
    json_t *dev = json_object(), *ids = json_array();
    for (j = 0; j < 3; j++) {
      json_t *id = json_object();
      json_object_set_new(id, "kind", json_string(kinds[j]));
      json_object_set_new(id, "id", json_string(devs[i].ids[j].id));
      json_array_append_new(ids, id);
    }
    json_object_set_new(dev, "deviceIds", ids);
    json_array_append_new(arr, dev);
  }
  json_object_set_new(root, "devices", arr);
  json_object_set_new(root, "accountName", json_string(ACCOUNT));
  json_object_set_new(root, "servicePlan", json_string(PLAN));
  json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  if (!json) exit(2);
  len = strlen(json);
  if (out_json)
    *out_json = json;
  else
    free(json);
  return len;
}

static unsigned long jansson_allocs;
static void *counting_malloc(size_t n) {
  jansson_allocs++;
  return malloc(n);
}

int main(void) {
  double t_ours[ROUNDS], t_jansson[ROUNDS], t_copy[ROUNDS];
  char *a, *b, *copy;
  size_t len, i, live0;
  unsigned long build_allocs, ser_allocs;
  tsesim_request *req;
  char *json;
  int r;

  devs = malloc(N_DEV * sizeof *devs);
  if (!devs) return 2;
  for (i = 0; i < N_DEV; i++) tt_device_make(&devs[i], i + 1);

  /* Same content both ways, byte for byte. */
  len = ours(&a);
  if (with_jansson(&b) != len || memcmp(a, b, len) != 0) {
    fprintf(stderr, "bench: the two bodies differ\n");
    return 2;
  }
  copy = malloc(len + 1);

  for (r = 0; r < ROUNDS; r++) {
    double t0 = bench_now();
    ours(NULL);
    t_ours[r] = bench_now() - t0;
    t0 = bench_now();
    with_jansson(NULL);
    t_jansson[r] = bench_now() - t0;
    t0 = bench_now();
    memcpy(copy, a, len + 1);
    t_copy[r] = bench_now() - t0;
  }

  /* Allocations: ours through the library's counter, jansson's through its hooks. */
  tsesim__test_alloc_reset();
  if (tsesim_request_new(&req, ACCOUNT) || tsesim_request_set_service_plan(req, PLAN)) return 2;
  for (i = 0; i < N_DEV; i++) tsesim_request_add_device(req, devs[i].ids, 3);
  build_allocs = tsesim__test_alloc_count();
  tsesim__test_alloc_reset();
  if (tsesim_request_to_json(&json, &len, req)) return 2;
  ser_allocs = tsesim__test_alloc_count();
  tsesim_free(json);
  tsesim_request_free(req);

  /* Peak memory over the baseline, build and serialize together. */
  live0 = tsesim__test_alloc_live();
  tsesim__test_alloc_reset();
  ours(NULL);
  {
    size_t peak = tsesim__test_alloc_peak() - live0;
    double tm_o = bench_median(t_ours, ROUNDS), tm_j = bench_median(t_jansson, ROUNDS);
    double tm_c = bench_median(t_copy, ROUNDS);

    free(b);
    json_set_alloc_funcs(counting_malloc, free);
    with_jansson(&b);
    json_set_alloc_funcs(malloc, free);

    printf("request build + serialize, %d devices x 3 ids, body %lu bytes, %d interleaved rounds\n",
           N_DEV, (unsigned long)len, ROUNDS);
    printf("  libtsesim            median %8.3f ms\n", tm_o * 1e3);
    printf("  jansson tree + dumps median %8.3f ms  (%lu allocations)\n", tm_j * 1e3,
           jansson_allocs);
    printf("  memcpy of the body   median %8.3f ms  (floor of any writer)\n", tm_c * 1e3);
    printf("  allocations: build %lu, serialize %lu (constant: one exact-size buffer)\n",
           build_allocs, ser_allocs);
    printf("  peak memory over baseline %lu bytes = %.2fx the body\n", (unsigned long)peak,
           (double)peak / (double)len);
    bench_ratio("time libtsesim / jansson", tm_o / tm_j, 0.15);
    bench_ratio("peak memory / body size", (double)peak / (double)len, 2.0);
    if (ser_allocs > 1) {
      printf("  allocations per serialization: %lu  FAILED (bound: 1)\n", ser_allocs);
      bench_failures++;
    }
  }
  tsesim_free(a);
  free(b);
  free(copy);
  free(devs);
  return bench_failures ? 1 : 0;
}
