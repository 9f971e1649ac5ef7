/*
 * builder.c - the download request: account, service plan and devices,
 * validated as they are added.
 *
 * Devices are kept compactly (a 16-byte record each, their digits back to
 * back in one pool) so that a 10,000-device request costs far less memory
 * than its JSON body, and adding one costs no allocation most of the time.
 */
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
