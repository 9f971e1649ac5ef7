/*
 * sim_eids.c - how many accepted downloads held each EID, so a test can
 * assert that no device was downloaded twice.
 *
 * An open-addressing hash table (linear probing, power-of-two size, grown
 * at 3/4 full) over the EID packed into two 64-bit numbers of 16 decimal
 * digits each: 16 bytes of key and a 4-byte count per slot, in two arrays,
 * so a million EIDs take 40 MiB (2^21 slots). A slot whose count is 0 is
 * empty; nothing is ever removed but by clearing the whole table.
 *
 * The arrays are mapped, not malloc'd: a grown-out array goes back to the
 * system at once, and malloc's arenas (one per connection thread, full of
 * parsed download bodies) never keep tens of MB of freed table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim.h"

struct sim_eids {
  pthread_mutex_t mu; /* everything below; handlers run on a thread per connection */
  sim_eid_key *keys;
  uint32_t *counts;
  size_t cap;             /* slots: 0 or a power of two */
  size_t used;            /* EIDs held: the distinct EIDs accepted */
  unsigned long repeated; /* EIDs whose count is above 1 */
};

#define EIDS_MIN_CAP 1024u

int sim_eid_pack(const char *eid, sim_eid_key *out) {
  unsigned long long half[2] = {0, 0};
  for (size_t i = 0; i < 32; i++) {
    if (eid[i] < '0' || eid[i] > '9') return -1;
    half[i / 16] = half[i / 16] * 10 + (unsigned long long)(eid[i] - '0');
  }
  if (eid[32]) return -1;
  out->hi = half[0];
  out->lo = half[1];
  return 0;
}

void sim_eid_unpack(const sim_eid_key *k, char out[33]) {
  unsigned long long half[2] = {k->hi, k->lo};
  for (int h = 0; h < 2; h++)
    for (int i = 15; i >= 0; i--) {
      out[h * 16 + i] = (char)('0' + half[h] % 10);
      half[h] /= 10;
    }
  out[32] = '\0';
}

static size_t slot_of(const sim_eid_key *k, size_t cap) {
  /* The digits are close to random already, but mixed anyway: EIDs of one
   * vendor share their first 18 digits, and sequential ones differ only in
   * their last. */
  uint64_t h = k->hi * 0x9e3779b97f4a7c15u ^ k->lo;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdu;
  h ^= h >> 33;
  return (size_t)h & (cap - 1);
}

/* The slot holding k, or the empty slot where it goes; cap must be > 0. */
static size_t find(const sim_eids *t, const sim_eid_key *k) {
  size_t i = slot_of(k, t->cap);
  while (t->counts[i] && (t->keys[i].hi != k->hi || t->keys[i].lo != k->lo))
    i = (i + 1) & (t->cap - 1);
  return i;
}

/* n zeroed bytes of their own pages. */
static void *map(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fputs("tsesim-sim: out of memory (EID table)\n", stderr);
    abort();
  }
  return p;
}

static void unmap_arrays(sim_eids *t) {
  if (t->cap) {
    munmap(t->keys, t->cap * sizeof *t->keys);
    munmap(t->counts, t->cap * sizeof *t->counts);
  }
  t->keys = NULL;
  t->counts = NULL;
  t->cap = 0;
}

static void grow(sim_eids *t) {
  sim_eids old = *t;
  t->cap = old.cap ? old.cap * 2 : EIDS_MIN_CAP;
  t->keys = map(t->cap * sizeof *t->keys);
  t->counts = map(t->cap * sizeof *t->counts);
  for (size_t i = 0; i < old.cap; i++)
    if (old.counts[i]) {
      size_t j = find(t, &old.keys[i]);
      t->keys[j] = old.keys[i];
      t->counts[j] = old.counts[i];
    }
  unmap_arrays(&old);
}

sim_eids *sim_eids_new(void) {
  sim_eids *t = sim_xcalloc(1, sizeof *t);
  pthread_mutex_init(&t->mu, NULL);
  return t;
}

void sim_eids_free(sim_eids *t) {
  if (!t) return;
  pthread_mutex_destroy(&t->mu);
  unmap_arrays(t);
  free(t);
}

static int key_cmp(const void *a, const void *b) {
  const sim_eid_key *x = a, *y = b;
  if (x->hi != y->hi) return x->hi < y->hi ? -1 : 1;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void sim_eids_add(sim_eids *t, sim_eid_key *keys, size_t n) {
  /* Sorted first, outside the lock, so an EID given twice in one download
   * counts that download once. */
  qsort(keys, n, sizeof *keys, key_cmp);
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < n; i++) {
    if (i && !key_cmp(&keys[i - 1], &keys[i])) continue;
    if ((t->used + 1) * 4 > t->cap * 3) grow(t);
    size_t j = find(t, &keys[i]);
    if (!t->counts[j]) {
      t->keys[j] = keys[i];
      t->used++;
    } else if (t->counts[j] == 1) {
      t->repeated++;
    }
    if (t->counts[j] < UINT32_MAX) t->counts[j]++;
  }
  pthread_mutex_unlock(&t->mu);
}

unsigned long sim_eids_count(sim_eids *t, const sim_eid_key *k) {
  unsigned long n = 0;
  pthread_mutex_lock(&t->mu);
  if (t->cap) n = t->counts[find(t, k)];
  pthread_mutex_unlock(&t->mu);
  return n;
}

void sim_eids_totals(sim_eids *t, unsigned long *distinct, unsigned long *repeated) {
  pthread_mutex_lock(&t->mu);
  *distinct = (unsigned long)t->used;
  *repeated = t->repeated;
  pthread_mutex_unlock(&t->mu);
}

void sim_eids_clear(sim_eids *t) {
  pthread_mutex_lock(&t->mu);
  unmap_arrays(t);
  t->used = 0;
  t->repeated = 0;
  pthread_mutex_unlock(&t->mu);
}
