/*
 * bench_callback.c - tsesim_callback_parse (then free) against json_loadb
 * (then json_decref) of the same bytes, interleaved in one process.
 * Bound (issue 2): at most 1.3x.
 */
#include <jansson.h>
#include <string.h>

#include "bench.h"
#include "tsesim_int.h"

#define ROUNDS 41 /* odd, for the median; alternating order, so neither side always runs first */
#define ITER 4000

static const char body[] =
    "{\"requestId\":\"d1f08526-5443-4054-9a29-4456490ea9f8\","
    "\"deviceIds\":[{\"id\":\"89014103211118510720\",\"kind\":\"Iccid\"},"
    "{\"id\":\"352099001761481\",\"kind\":\"Imei\"},"
    "{\"id\":\"89049032000001000000000000000074\",\"kind\":\"Eid\"},"
    "{\"id\":\"5555550100\",\"kind\":\"mdn\"}],"
    "\"deviceResponse\":{\"deviceProfileResponse\":{\"deviceIdentifierCollection\":["
    "{\"id\":\"89014103211118510720\",\"kind\":\"Iccid\"},"
    "{\"id\":\"352099001761481\",\"kind\":\"Imei\"},"
    "{\"id\":\"89049032000001000000000000000074\",\"kind\":\"Eid\"},"
    "{\"id\":\"5555550100\",\"kind\":\"mdn\"}],"
    "\"state\":\"ACTIVE\",\"profileStatus\":\"ENABLE\",\"profileRole\":\"LOCAL\"}},"
    "\"status\":\"SUCCESS\",\"callbackCount\":1,\"maxCallbackThreshold\":4,"
    "\"username\":\"listener\",\"password\":\"s3cret\"}";

int main(void) {
  double t_ours[ROUNDS], t_floor[ROUNDS];
  size_t len = sizeof body - 1;
  char errbuf[TSESIM_ERRBUF_SIZE];
  int r, i;

  for (r = 0; r < ROUNDS; r++) {
    int k;
    for (k = 0; k < 2; k++) {
      double t0 = bench_now();
      if ((k == 0) == (r % 2 == 0)) {
        for (i = 0; i < ITER; i++) {
          tsesim_callback *cb;
          if (tsesim_callback_parse(&cb, body, len, errbuf)) {
            fprintf(stderr, "bench: %s\n", errbuf);
            return 2;
          }
          tsesim_callback_free(cb);
        }
        t_ours[r] = bench_now() - t0;
      } else {
        for (i = 0; i < ITER; i++) {
          json_error_t err;
          json_t *root = json_loadb(body, len, 0, &err);
          if (!root) return 2;
          json_decref(root);
        }
        t_floor[r] = bench_now() - t0;
      }
    }
  }
  {
    double o = bench_median(t_ours, ROUNDS) / ITER, f = bench_median(t_floor, ROUNDS) / ITER;
    printf("callback parse, %lu-byte body, %d rounds of %d\n", (unsigned long)len, ROUNDS, ITER);
    printf("  tsesim_callback_parse + free median %8.3f us\n", o * 1e6);
    printf("  json_loadb + json_decref     median %8.3f us\n", f * 1e6);
    bench_ratio("time libtsesim / json_loadb", o / f, 1.3);
  }
  return bench_failures ? 1 : 0;
}
