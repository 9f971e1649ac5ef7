/*
 * bench.h - timing and reporting shared by the benchmarks. Every figure is a
 * median over interleaved rounds, printed with its ratio to a floor measured
 * in the same process; a bound that does not hold makes the program exit 1.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of n samples (sorts them). */
static inline double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, bench_cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench_failures;

/* Prints "what: value (ratio x of floor, bound <= max)" and records a failure. */
static inline void bench_ratio(const char *what, double ratio, double max) {
  int ok = ratio <= max;
  printf("  %-44s ratio %.3f  (bound <= %.2f)  %s\n", what, ratio, max, ok ? "ok" : "FAILED");
  if (!ok) bench_failures++;
}

#endif /* BENCH_H */
