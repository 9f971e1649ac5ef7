/*
 * builder.c - the download request: account, service plan and devices,
 * validated as they are added.
 *
 * Devices are kept compactly (a 16-byte record each, their digits back to
 * back in one pool) so that a 10,000-device request costs far less memory
 * than its JSON body, and adding one costs no allocation most of the time.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "tsesim_int.h"

static void set_err(tsesim_request *req, const char *msg) {
  size_t n = strlen(msg);
  if (n >= sizeof req->errmsg) n = sizeof req->errmsg - 1;
  memcpy(req->errmsg, msg, n);
  req->errmsg[n] = '\0';
}

tsesim_code tsesim_request_new_v2(tsesim_request **out, const char *account_name, char *errbuf) {
  tsesim_request *req;
  tsesim_code rc;

  if (!out) {
    tsesim__errbuf_set(errbuf, "out is NULL");
    return TSESIM_E_INVAL;
  }
  *out = NULL;
  rc = tsesim__text_check("accountName", account_name, TSESIM__TEXT_MAX, errbuf);
  if (rc) return rc;
  req = tsesim__malloc(sizeof *req);
  if (!req) goto nomem;
  memset(req, 0, sizeof *req);
  req->verify_checksums = 1;
  req->account_name = tsesim__strndup(account_name, strlen(account_name));
  if (!req->account_name) {
    tsesim__free(req);
    goto nomem;
  }
  *out = req;
  return TSESIM_OK;
nomem:
  tsesim__errbuf_set(errbuf, "out of memory");
  return TSESIM_E_NOMEM;
}

tsesim_code tsesim_request_new(tsesim_request **out, const char *account_name) {
  return tsesim_request_new_v2(out, account_name, NULL);
}

tsesim_code tsesim_request_set_service_plan(tsesim_request *req, const char *service_plan) {
  char *copy = NULL;
  if (!req) return TSESIM_E_INVAL;
  if (service_plan) {
    tsesim_code rc = tsesim__text_check("servicePlan", service_plan, TSESIM__TEXT_MAX, req->errmsg);
    if (rc) return rc;
    copy = tsesim__strndup(service_plan, strlen(service_plan));
    if (!copy) {
      set_err(req, "servicePlan: out of memory");
      return TSESIM_E_NOMEM;
    }
  }
  tsesim__free(req->service_plan);
  req->service_plan = copy;
  req->errmsg[0] = '\0';
  return TSESIM_OK;
}

tsesim_code tsesim_request_set_verify_checksums(tsesim_request *req, int enabled) {
  if (!req) return TSESIM_E_INVAL;
  req->verify_checksums = enabled != 0;
  req->errmsg[0] = '\0';
  return TSESIM_OK;
}

/* Grows an array of cap elements of size elem to hold at least need; 1.5x
 * steps keep the slack (and so peak memory) small. */
static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t first) {
  size_t ncap = *cap ? *cap : first;
  void *p;
  if (need <= *cap) return 0;
  while (ncap < need) {
    if (ncap > ((size_t)-1 / elem) / 3 * 2) return -1;
    ncap += ncap / 2;
  }
  if (ncap > (size_t)-1 / elem) return -1;
  p = tsesim__realloc(*arr, ncap * elem);
  if (!p) return -1;
  *arr = p;
  *cap = ncap;
  return 0;
}

tsesim_code tsesim_request_add_device(tsesim_request *req, const tsesim_device_id *ids,
                                      size_t n_ids) {
  char why[TSESIM_ERRBUF_SIZE];
  size_t seen[5] = {0, 0, 0, 0, 0}; /* 1 + position in ids, by kind */
  size_t i, lens[3], total = 0;
  unsigned long dev;
  tsesim__device *d;

  if (!req) return TSESIM_E_INVAL;
  dev = (unsigned long)req->n_devs;
  if (!ids && n_ids) {
    tsesim__errbuf_set(req->errmsg, "device %lu: ids is NULL", dev);
    return TSESIM_E_INVAL;
  }
  for (i = 0; i < n_ids; i++) {
    tsesim_id_kind k = ids[i].kind;
    const char *name = tsesim__id_kind_name(k);
    if (!name) {
      tsesim__errbuf_set(req->errmsg, "device %lu: ids[%lu]: unknown identifier kind %d", dev,
                         (unsigned long)i, (int)k);
      return TSESIM_E_INVAL;
    }
    if (k == TSESIM_ID_MDN) {
      tsesim__errbuf_set(req->errmsg,
                         "device %lu: ids[%lu]: kind mdn is not accepted by a download "
                         "(only eid, iccid, imei)",
                         dev, (unsigned long)i);
      return TSESIM_E_INVAL;
    }
    if (seen[k]) {
      tsesim__errbuf_set(req->errmsg, "device %lu: %s given twice (ids[%lu] and ids[%lu])", dev,
                         name, (unsigned long)seen[k] - 1, (unsigned long)i);
      return TSESIM_E_INVAL;
    }
    seen[k] = i + 1;
    if (tsesim__id_check(k, ids[i].id, req->verify_checksums, why)) {
      tsesim__errbuf_set(req->errmsg, "device %lu: %s", dev, why);
      return TSESIM_E_INVAL;
    }
    lens[i] = strlen(ids[i].id);
    total += lens[i];
  }
  if (!seen[TSESIM_ID_EID]) {
    tsesim__errbuf_set(req->errmsg, "device %lu: eid missing (every device needs one)", dev);
    return TSESIM_E_INVAL;
  }
  if (!seen[TSESIM_ID_ICCID] && !seen[TSESIM_ID_IMEI]) {
    tsesim__errbuf_set(req->errmsg,
                       "device %lu: iccid or imei missing (every device needs one besides "
                       "its eid)",
                       dev);
    return TSESIM_E_INVAL;
  }
  /* n_ids is 2 or 3 here: three allowed kinds, none twice. */
  if (grow((void **)&req->devs, &req->cap_devs, req->n_devs + 1, sizeof *req->devs, 64) ||
      grow((void **)&req->pool, &req->pool_cap, req->pool_len + total, 1, 4096)) {
    tsesim__errbuf_set(req->errmsg, "device %lu: out of memory", dev);
    return TSESIM_E_NOMEM;
  }
  d = &req->devs[req->n_devs];
  d->off = req->pool_len;
  d->n_ids = (unsigned char)n_ids;
  for (i = 0; i < n_ids; i++) {
    d->kind[i] = (unsigned char)ids[i].kind;
    d->len[i] = (unsigned char)lens[i];
    memcpy(req->pool + req->pool_len, ids[i].id, lens[i]);
    req->pool_len += lens[i];
  }
  req->n_devs++;
  req->errmsg[0] = '\0';
  return TSESIM_OK;
}

size_t tsesim_request_device_count(const tsesim_request *req) { return req ? req->n_devs : 0; }

const char *tsesim_request_errmsg(const tsesim_request *req) {
  return req ? req->errmsg : "req is NULL";
}

void tsesim_request_free(tsesim_request *req) {
  if (!req) return;
  tsesim__free(req->account_name);
  tsesim__free(req->service_plan);
  tsesim__free(req->devs);
  tsesim__free(req->pool);
  tsesim__free(req);
}

void tsesim__request_truncate(tsesim_request *req, size_t n) {
  if (!req || n >= req->n_devs) return;
  /* Devices sit in the pool in order, so the first dropped one's offset is
   * where the kept digits end. The blocks keep their size. */
  req->pool_len = req->devs[n].off;
  req->n_devs = n;
}

/* ---- many devices from one buffer (tsesim_request_add_devices) ----
 *
 * The batch is what a binding hands over in one call: 10,000 devices must
 * cost well under a millisecond of C, so that Python's package is no slower
 * than Python's own json.dumps. The line feeds are counted first (memchr),
 * so that the device array and the pool are reserved once for the whole
 * buffer and nothing is allocated per device; then one pass splits each
 * record and finds its non-digits, and lengths and check digits are checked
 * on the digits just seen, still in cache. Only a refused record takes the
 * slow path, which asks tsesim__id_check for its reason, so that the
 * message is exactly the one tsesim_request_add_device gives. */

enum { BATCH_EID, BATCH_ICCID, BATCH_IMEI, BATCH_FIELDS };
static const tsesim_id_kind batch_kinds[BATCH_FIELDS] = {TSESIM_ID_EID, TSESIM_ID_ICCID,
                                                         TSESIM_ID_IMEI};

/* A field of a record: its bytes, and the first that is not a digit. */
typedef struct batch_field {
  const unsigned char *s;
  size_t len;
  const unsigned char *bad; /* NULL: digits only */
} batch_field;

/* Makes room for need elements: at least 1.5 times the old capacity (and
 * first), so that many small batches still grow in few steps, else exactly
 * need, so that one large batch leaves no slack. */
static int reserve(void **arr, size_t *cap, size_t need, size_t elem, size_t first) {
  size_t ncap;
  void *p;
  if (need <= *cap) return 0;
  ncap = *cap + *cap / 2;
  if (ncap < first) ncap = first;
  if (ncap < need) ncap = need;
  if (ncap > (size_t)-1 / elem) return -1;
  p = tsesim__realloc(*arr, ncap * elem);
  if (!p) return -1;
  *arr = p;
  *cap = ncap;
  return 0;
}

/* Luhn: the n digits at s (the check digit last) sum to a multiple of 10,
 * every second digit from the right doubled. */
static int luhn_ok(const unsigned char *s, size_t n) {
  static const unsigned char doubled[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
  unsigned sum = 0;
  size_t i = n;
  /* From the right, two digits a step: one as is, the next doubled. */
  for (; i >= 2; i -= 2) sum += (unsigned)(s[i - 1] - '0') + doubled[s[i - 2] - '0'];
  if (i) sum += (unsigned)(s[0] - '0');
  return sum % 10 == 0;
}

/* ISO 7064 MOD 97-10 over the 32 digits of an EID: its last two digits are
 * exactly the ones ids.c computes (98 - payload * 100 mod 97), not merely
 * the number mod 97 being 1 (which would also take 99 for 02 and 01 for
 * 98). The 30-digit payload is read as three 10-digit numbers in three
 * independent chains (the multiply-adds of one chain wait on each other),
 * joined with 10^20 and 10^10 modulo 97 (73 and 49). */
static int eid_ok(const unsigned char *s) {
  unsigned long long a = 0, b = 0, c = 0;
  unsigned r;
  int i;
  for (i = 0; i < 10; i++) {
    a = a * 10 + (unsigned)(s[i] - '0');
    b = b * 10 + (unsigned)(s[i + 10] - '0');
    c = c * 10 + (unsigned)(s[i + 20] - '0');
  }
  r = (unsigned)((a % 97 * 73 + b % 97 * 49 + c % 97) % 97);
  return (unsigned)((s[30] - '0') * 10 + (s[31] - '0')) == 98 - r * 100 % 97;
}

/* 1 when a digits-only field of kind k has its length and, when verify is
 * set, its check digits. */
static int batch_field_ok(tsesim_id_kind k, const batch_field *f, int verify) {
  switch (k) {
    case TSESIM_ID_EID:
      return f->len == 32 && (!verify || eid_ok(f->s));
    case TSESIM_ID_ICCID:
      return (f->len == 19 || f->len == 20) && (!verify || luhn_ok(f->s, f->len));
    default:
      return f->len == 15 && (!verify || luhn_ok(f->s, f->len));
  }
}

/* The reason a field of kind k was rejected, into why: a NUL or a CR
 * (which a C string cannot carry, or a CRLF file left), else exactly what
 * tsesim__id_check says of it as a string. NOMEM when a long field could
 * not be copied for that. */
static tsesim_code batch_field_why(tsesim_id_kind k, const batch_field *f, int verify, char *why) {
  const char *name = tsesim__id_kind_name(k);
  char small[128], *copy = small;
  tsesim_code rc;
  if (f->bad && (*f->bad == '\0' || *f->bad == '\r')) {
    tsesim__errbuf_set(why, "%s: %s at position %lu%s", name,
                       *f->bad ? "carriage return" : "NUL byte", (unsigned long)(f->bad - f->s) + 1,
                       *f->bad ? " (records end with \\n alone)" : "");
    return TSESIM_E_INVAL;
  }
  if (f->len >= sizeof small && !(copy = tsesim__strndup((const char *)f->s, f->len)))
    return TSESIM_E_NOMEM;
  if (copy == small) {
    memcpy(small, f->s, f->len);
    small[f->len] = '\0';
  }
  rc = tsesim__id_check(k, copy, verify, why);
  if (copy != small) tsesim__free(copy);
  /* The fast checks and ids.c agree (fuzz_batch holds them to it); should
   * they ever not, the record is still refused, with a reason. */
  if (rc == TSESIM_OK) tsesim__errbuf_set(why, "%s: rejected", name);
  return TSESIM_E_INVAL;
}

/* Puts the request back as it was, and sets the message in both places. */
static tsesim_code batch_fail(tsesim_request *req, size_t n0, char *errbuf, tsesim_code rc,
                              const char *fmt, ...) TSESIM__PRINTF(5, 6);
static tsesim_code batch_fail(tsesim_request *req, size_t n0, char *errbuf, tsesim_code rc,
                              const char *fmt, ...) {
  va_list ap;
  tsesim__request_truncate(req, n0);
  va_start(ap, fmt);
  tsesim__errbuf_vset(req->errmsg, fmt, ap);
  va_end(ap);
  tsesim__errbuf_set(errbuf, "%s", req->errmsg);
  return rc;
}

tsesim_code tsesim_request_add_devices(tsesim_request *req, const char *buf, size_t len,
                                       char *errbuf) {
  const unsigned char *p, *end, *q;
  size_t n0, records;
  unsigned long rec;
  int verify;

  if (!req) {
    tsesim__errbuf_set(errbuf, "req is NULL");
    return TSESIM_E_INVAL;
  }
  n0 = req->n_devs;
  if (!buf && len) return batch_fail(req, n0, errbuf, TSESIM_E_INVAL, "buf is NULL");
  if (errbuf) errbuf[0] = '\0';
  req->errmsg[0] = '\0';
  if (!len) return TSESIM_OK;

  /* One device per record, and at most len digits in all. */
  p = (const unsigned char *)buf;
  end = p + len;
  records = end[-1] != '\n';
  for (q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) records++;
  if (records > (size_t)-1 - n0 || len > (size_t)-1 - req->pool_len ||
      reserve((void **)&req->devs, &req->cap_devs, n0 + records, sizeof *req->devs, 64) ||
      reserve((void **)&req->pool, &req->pool_cap, req->pool_len + len, 1, 4096))
    return batch_fail(req, n0, errbuf, TSESIM_E_NOMEM, "%lu records: out of memory",
                      (unsigned long)records);

  verify = req->verify_checksums;
  for (rec = 1; p < end; rec++) {
    batch_field f[BATCH_FIELDS];
    size_t nf = 0, total = 0, i;
    unsigned long dev = (unsigned long)req->n_devs;
    tsesim__device *d;
    int k;

    /* Split the record, and find each field's first non-digit. */
    for (;;) {
      const unsigned char *s = p, *bad = NULL;
      /* Eight bytes a step while all are digits: each byte's high nibble
       * is 3, and adding 6 keeps it 3 (a carry out of a byte only comes
       * from one whose high nibble was not 3). */
      while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        if ((x & 0xF0F0F0F0F0F0F0F0u) != 0x3030303030303030u ||
            ((x + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) != 0x3030303030303030u)
          break;
        p += 8;
      }
      while (p < end && (unsigned)(*p - '0') < 10u) p++;
      if (p < end && *p != ',' && *p != '\n') {
        bad = p;
        while (p < end && *p != ',' && *p != '\n') p++;
      }
      if (nf < BATCH_FIELDS) {
        f[nf].s = s;
        f[nf].len = (size_t)(p - s);
        f[nf].bad = bad;
      }
      nf++;
      if (p == end || *p == '\n') break;
      p++; /* the comma */
    }
    if (p < end) p++; /* the newline */
    if (nf != BATCH_FIELDS)
      return batch_fail(req, n0, errbuf, TSESIM_E_INVAL,
                        "device %lu (record %lu): %lu field%s, expected 3 (EID,ICCID,IMEI)", dev,
                        rec, (unsigned long)nf, nf == 1 ? "" : "s");

    /* The fields in the order tsesim_request_add_device would check them
     * as ids {eid, iccid, imei}; an empty field is an absent identifier. */
    for (k = 0; k < BATCH_FIELDS; k++) {
      char why[TSESIM_ERRBUF_SIZE];
      tsesim_code rc;
      if (!f[k].len || (!f[k].bad && batch_field_ok(batch_kinds[k], &f[k], verify))) continue;
      rc = batch_field_why(batch_kinds[k], &f[k], verify, why);
      if (rc == TSESIM_E_NOMEM)
        return batch_fail(req, n0, errbuf, rc, "device %lu (record %lu): out of memory", dev, rec);
      return batch_fail(req, n0, errbuf, rc, "device %lu (record %lu): %s", dev, rec, why);
    }
    if (!f[BATCH_EID].len)
      return batch_fail(req, n0, errbuf, TSESIM_E_INVAL,
                        "device %lu (record %lu): eid missing (every device needs one)", dev, rec);
    if (!f[BATCH_ICCID].len && !f[BATCH_IMEI].len)
      return batch_fail(req, n0, errbuf, TSESIM_E_INVAL,
                        "device %lu (record %lu): iccid or imei missing (every device needs one "
                        "besides its eid)",
                        dev, rec);

    /* Room was reserved above: the digits of all records fit in len. */
    d = &req->devs[req->n_devs];
    d->off = req->pool_len;
    d->n_ids = 0;
    for (k = 0; k < BATCH_FIELDS; k++) {
      if (!f[k].len) continue;
      i = d->n_ids++;
      d->kind[i] = (unsigned char)batch_kinds[k];
      d->len[i] = (unsigned char)f[k].len;
      memcpy(req->pool + req->pool_len + total, f[k].s, f[k].len);
      total += f[k].len;
    }
    req->pool_len += total;
    req->n_devs++;
  }
  return TSESIM_OK;
}
