/*
 * sim_make.c - tsesim-sim --make-devices: a device file for tsesim(1) and
 * for this simulator, written to stdout as CSV (eid,iccid,imei).
 *
 * Every row is decided by the seed and its index alone, so the same options
 * always give the same file, byte for byte. Valid rows have correct check
 * digits (MOD 97-10 for the EID, Luhn for ICCID and IMEI; each one checked
 * with the library's tsesim_id_validate before it is written). The EIDs are
 * distinct by construction: digits 21-30 are the row's index. The outcome
 * the simulator gives a device is keyed on the last two digits of its imei
 * (sim_deliver.c: "13" Failed, "77" a Warning then SUCCESS), so the
 * generator sets them: exactly the rows asked to fail or warn end so, and
 * no other valid row does.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_digits.h"
#include "sim.h"
#include "tsesim.h"

#define MAKE_MAX_ROWS 100000000UL /* 10^8 rows: digits 21-30 of the EID hold the index */

enum { ROLE_OK, ROLE_BAD, ROLE_FAIL, ROLE_WARN };

/* The options of the generator; none of them is a simulator option. */
static const char *const make_opts[] = {"make-devices", "bad-rows", "failing", "warning", "seed"};
#define N_MAKE_OPTS (sizeof make_opts / sizeof make_opts[0])

int sim_make_option(const char *name, size_t len) {
  for (size_t i = 0; i < N_MAKE_OPTS; i++)
    if (strlen(make_opts[i]) == len && !strncmp(make_opts[i], name, len)) return 1;
  return 0;
}

int sim_make_requested(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--make-devices") || !strncmp(argv[i], "--make-devices=", 15)) return 1;
  return 0;
}

/* splitmix64: a good spread from consecutive inputs (seed ^ index). */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

typedef struct rng {
  uint64_t state;
} rng;

static unsigned digit(rng *r) {
  r->state = mix(r->state);
  return (unsigned)(r->state % 10);
}

static void digits(rng *r, char *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = (char)('0' + digit(r));
}

/* The two MOD 97-10 check digits of a 30-digit EID body, at s[30..32). */
static void eid_check(char *s) {
  int c = tsesim__mod97_digits(s, 30);
  s[30] = (char)('0' + c / 10);
  s[31] = (char)('0' + c % 10);
}

typedef struct dev {
  char eid[33], iccid[21], imei[16];
} dev;

/* The imei whose last two digits are want ("13", "77"), or, with want NULL,
 * neither "13" nor "77". Digit 13 (0-based 12) is not doubled by Luhn:
 * stepping it steps the check digit, so one of its ten values fits. */
static void imei_make(rng *r, char imei[16], const char *want) {
  memcpy(imei, "35", 2);
  digits(r, imei + 2, 12);
  if (want) imei[13] = want[0];
  for (int k = 0; k < 10; k++) {
    imei[14] = (char)('0' + tsesim__luhn_digit(imei, 14));
    imei[15] = '\0';
    int special = !strcmp(imei + 13, "13") || !strcmp(imei + 13, "77");
    if (want ? imei[14] == want[1] : !special) return;
    imei[12] = (char)('0' + (imei[12] - '0' + 1) % 10);
  }
  abort(); /* unreachable: the ten values of digit 13 give ten check digits */
}

static void dev_make(uint64_t seed, unsigned long index, int role, dev *d) {
  rng r = {mix(seed) ^ mix(index + 0x5851f42d4c957f2du)};
  /* EID: "89049032" (a vendor's first eight digits), 12 random digits, the
   * index in 10 digits, the check digits */
  memcpy(d->eid, "89049032", 8);
  digits(&r, d->eid + 8, 12);
  for (unsigned long k = index, p = 30; p-- > 20; k /= 10) d->eid[p] = (char)('0' + k % 10);
  eid_check(d->eid);
  d->eid[32] = '\0';
  memcpy(d->iccid, "8901", 4);
  digits(&r, d->iccid + 4, 15);
  d->iccid[19] = (char)('0' + tsesim__luhn_digit(d->iccid, 19));
  d->iccid[20] = '\0';
  imei_make(&r, d->imei, role == ROLE_FAIL ? "13" : role == ROLE_WARN ? "77" : NULL);
}

/* Spoils a valid device: bad rows rotate through five kinds, each refused
 * by tsesim_request_add_device with its own reason. */
static void dev_spoil(dev *d, unsigned long nth) {
  switch (nth % 5) {
    case 0: /* imei: wrong check digit */
      d->imei[14] = (char)('0' + (d->imei[14] - '0' + 1) % 10);
      break;
    case 1: /* iccid: wrong check digit */
      d->iccid[19] = (char)('0' + (d->iccid[19] - '0' + 3) % 10);
      break;
    case 2: /* eid: wrong check digits */
      d->eid[31] = (char)('0' + (d->eid[31] - '0' + 1) % 10);
      break;
    case 3: /* imei: 14 digits */
      d->imei[14] = '\0';
      break;
    default: /* iccid: 17 digits */
      d->iccid[17] = '\0';
      break;
  }
}

/* A valid device that does not validate is a bug here, not a bad row. */
static void dev_verify(const dev *d, unsigned long index) {
  char err[TSESIM_ERRBUF_SIZE];
  if (tsesim_id_validate(TSESIM_ID_EID, d->eid, err) ||
      tsesim_id_validate(TSESIM_ID_ICCID, d->iccid, err) ||
      tsesim_id_validate(TSESIM_ID_IMEI, d->imei, err)) {
    fprintf(stderr, "tsesim-sim: --make-devices: row %lu: %s\n", index + 1, err);
    abort();
  }
}

static int count_value(const char *name, const char *v, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long n = (*v >= '0' && *v <= '9') ? strtoul(v, &end, 10) : 0;
  if (*v < '0' || *v > '9' || errno || *end || n > max) {
    fprintf(stderr, "tsesim-sim: --%s: '%s' is not a whole number from 0 to %lu\n", name, v, max);
    return -1;
  }
  *out = n;
  return 0;
}

/* Places k rows of role among n (all ROLE_OK so far) at seeded positions. */
static void place(unsigned char *roles, unsigned long n, unsigned long k, int role, rng *r) {
  while (k) {
    r->state = mix(r->state);
    unsigned long i = (unsigned long)(r->state % n);
    if (roles[i] != ROLE_OK) continue;
    roles[i] = (unsigned char)role;
    k--;
  }
}

int sim_make_main(int argc, char **argv) {
  unsigned long v[N_MAKE_OPTS] = {0, 0, 0, 0, 1}; /* rows, bad, failing, warning, seed */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a) - 2;
    size_t o = 0;
    while (o < N_MAKE_OPTS && !(strncmp(a, "--", 2) == 0 && strlen(make_opts[o]) == nlen &&
                                !strncmp(make_opts[o], a + 2, nlen)))
      o++;
    if (o == N_MAKE_OPTS) {
      /* not shown: a misplaced value may be a secret */
      fprintf(stderr,
              "tsesim-sim: argument %d: --make-devices takes only --bad-rows, --failing, "
              "--warning and --seed\n",
              i);
      return 2;
    }
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!value) {
      fprintf(stderr, "tsesim-sim: --%s needs a value\n", make_opts[o]);
      return 2;
    }
    if (count_value(make_opts[o], value, o == 4 ? (unsigned long)-1 : MAKE_MAX_ROWS, &v[o]))
      return 2;
  }
  unsigned long n = v[0], bad = v[1], failing = v[2], warning = v[3];
  if (n == 0) {
    fprintf(stderr, "tsesim-sim: --make-devices: at least 1 row\n");
    return 2;
  }
  if (bad + failing + warning > n) {
    fprintf(stderr,
            "tsesim-sim: --bad-rows %lu + --failing %lu + --warning %lu is more than the %lu rows "
            "of --make-devices\n",
            bad, failing, warning, n);
    return 2;
  }
  unsigned char *roles = sim_xcalloc(n, 1);
  rng r = {mix(v[4] ^ 0xa0761d6478bd642fu)};
  place(roles, n, bad, ROLE_BAD, &r);
  place(roles, n, failing, ROLE_FAIL, &r);
  place(roles, n, warning, ROLE_WARN, &r);

  static char outbuf[1 << 16];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  fputs("eid,iccid,imei\n", stdout);
  unsigned long nth_bad = 0;
  for (unsigned long i = 0; i < n; i++) {
    dev d;
    dev_make(v[4], i, roles[i], &d);
    if (roles[i] == ROLE_BAD)
      dev_spoil(&d, nth_bad++);
    else
      dev_verify(&d, i);
    printf("%s,%s,%s\n", d.eid, d.iccid, d.imei);
  }
  free(roles);
  if (fflush(stdout) || ferror(stdout)) {
    fprintf(stderr, "tsesim-sim: --make-devices: cannot write the rows: %s\n", strerror(errno));
    return 1;
  }
  fprintf(stderr,
          "tsesim-sim: made %lu rows: %lu valid (%lu to fail, %lu to warn), %lu bad (seed %lu)\n",
          n, n - bad, failing, warning, bad, v[4]);
  return 0;
}
