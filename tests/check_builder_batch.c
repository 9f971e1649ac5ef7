/*
 * check_builder_batch.c - tsesim_request_add_devices: many devices from one
 * buffer of EID,ICCID,IMEI records.
 *
 * A batch must give the request exactly what the same devices added one by
 * one through tsesim_request_add_device give it (the same JSON body, byte
 * for byte), refuse what that call refuses with the same words after a
 * "device N (record R): " prefix, refuse the batch's own mistakes (field
 * count, NUL, CR), and be all or nothing: every rejection is checked by the
 * code, the exact message (in errbuf and in tsesim_request_errmsg) and a
 * request whose devices and body did not change.
 */
#include "tsesim_test.h"
#include "tt_place.h"

/* Right length and digits, wrong check digits. */
#define BAD_EID "89049032123451234512345678904213"
#define BAD_ICCID "89014103211118510721"
#define BAD_IMEI "352099001761482"

#define REC(e, c, i) e "," c "," i

/* ---- helpers ---- */

static char *json_of(const tsesim_request *req) {
  char *out = NULL;
  size_t len = 0;
  tsesim_code rc = tsesim_request_to_json(&out, &len, req);
  ck_assert_msg(rc == TSESIM_OK, "to_json: %s", tsesim_code_name(rc));
  ck_assert_uint_eq(len, strlen(out));
  return out;
}

/* A request for "Acme" (plan "Plan") with n generated devices, added one
 * by one. */
static tsesim_request *make_req(size_t n) {
  tsesim_request *req = NULL;
  size_t i;
  ck_assert_int_eq(tsesim_request_new(&req, "Acme"), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Plan"), TSESIM_OK);
  for (i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, (unsigned long)i + 1);
    ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  }
  return req;
}

/* Adds the device {eid, iccid, imei} (NULL: absent) one by one. */
static tsesim_code add_one(tsesim_request *req, const char *eid, const char *iccid,
                           const char *imei) {
  tsesim_device_id ids[3];
  size_t n = 0;
  const char *v[3];
  int k;
  v[0] = eid;
  v[1] = iccid;
  v[2] = imei;
  for (k = 0; k < 3; k++) {
    if (!v[k]) continue;
    ids[n].kind = (tsesim_id_kind)(TSESIM_ID_EID + k);
    ids[n].id = v[k];
    ids[n++].kind_name = NULL;
  }
  return tsesim_request_add_device(req, ids, n);
}

/* Calls the batch with a fresh errbuf; asserts errbuf and errmsg agree. */
static tsesim_code batch(tsesim_request *req, const char *buf, size_t len, char *errbuf) {
  tsesim_code rc;
  memset(errbuf, 'Z', TSESIM_ERRBUF_SIZE);
  errbuf[TSESIM_ERRBUF_SIZE - 1] = '\0';
  rc = tsesim_request_add_devices(req, buf, len, errbuf);
  ck_assert_str_eq(errbuf, tsesim_request_errmsg(req));
  if (rc == TSESIM_OK) ck_assert_str_eq(errbuf, "");
  return rc;
}

/* ---- accepted batches ---- */

/* Each buffer holds the devices of want (one record per device, NULL for
 * an absent identifier), added to a request that has 2 devices already. */
static const struct {
  const char *buf;
  const char *want[4][3];
  size_t n;
} accept_cases[] = {
    {REC(EID, ICCID, IMEI) "\n", {{EID, ICCID, IMEI}}, 1},
    {REC(EID, ICCID, IMEI), {{EID, ICCID, IMEI}}, 1},
    {REC(EID, ICCID, IMEI) "\n" REC(EID2, ICCID19, IMEI2) "\n",
     {{EID, ICCID, IMEI}, {EID2, ICCID19, IMEI2}},
     2},
    {REC(EID, ICCID, IMEI) "\n" REC(EID2, ICCID19, IMEI2),
     {{EID, ICCID, IMEI}, {EID2, ICCID19, IMEI2}},
     2},
    /* absent fields: no imei, no iccid */
    {REC(EID, ICCID, ) "\n" REC(EID2, , IMEI2) "\n", {{EID, ICCID, NULL}, {EID2, NULL, IMEI2}}, 2},
    {REC(EID, , IMEI), {{EID, NULL, IMEI}}, 1},
    {REC(EID, ICCID19, ), {{EID, ICCID19, NULL}}, 1},
    /* the same device twice: duplicates are not looked for */
    {REC(EID, ICCID, IMEI) "\n" REC(EID, ICCID, IMEI) "\n" REC(EID2, , IMEI) "\n" REC(EID2,
                                                                                      ICCID, ),
     {{EID, ICCID, IMEI}, {EID, ICCID, IMEI}, {EID2, NULL, IMEI}, {EID2, ICCID, NULL}},
     4},
};

START_TEST(test_batch_accepted) {
  tsesim_request *got = make_req(2), *want = make_req(2);
  char errbuf[TSESIM_ERRBUF_SIZE], *a, *b;
  size_t i;

  for (i = 0; i < accept_cases[_i].n; i++)
    ck_assert_int_eq(add_one(want, accept_cases[_i].want[i][0], accept_cases[_i].want[i][1],
                             accept_cases[_i].want[i][2]),
                     TSESIM_OK);
  ck_assert_int_eq(batch(got, accept_cases[_i].buf, strlen(accept_cases[_i].buf), errbuf),
                   TSESIM_OK);
  ck_assert_uint_eq(tsesim_request_device_count(got), 2 + accept_cases[_i].n);
  a = json_of(got);
  b = json_of(want);
  ck_assert_str_eq(a, b);
  tsesim_free(a);
  tsesim_free(b);
  tsesim_request_free(got);
  tsesim_request_free(want);
}
END_TEST

/* len 0 adds nothing, with or without a buffer, and clears the message. */
START_TEST(test_batch_empty) {
  tsesim_request *req = make_req(1);
  char errbuf[TSESIM_ERRBUF_SIZE];

  ck_assert_int_eq(add_one(req, EID, NULL, NULL), TSESIM_E_INVAL);
  ck_assert_str_ne(tsesim_request_errmsg(req), "");
  ck_assert_int_eq(batch(req, NULL, 0, errbuf), TSESIM_OK);
  ck_assert_int_eq(batch(req, "garbage", 0, errbuf), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_add_devices(req, "", 0, NULL), TSESIM_OK);
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);
  tsesim_request_free(req);
}
END_TEST

/* The buffer of n generated devices (seeds first..first+n-1), varied: all
 * three identifiers, no imei, no iccid, a 19-digit iccid; added one by one
 * to want as well. Caller frees the buffer with free(). */
static char *batch_of(size_t first, size_t n, tsesim_request *want, size_t *len) {
  char *buf = malloc(n * 72 + 1), *o = buf;
  size_t i;
  ck_assert_ptr_nonnull(buf);
  for (i = 0; i < n; i++) {
    tt_device d;
    const char *iccid, *imei;
    tt_device_make(&d, (unsigned long)(first + i));
    if (i % 7 == 3) tt_iccid(d.iccid, first + i, 19);
    iccid = i % 4 == 2 ? NULL : d.iccid;
    imei = i % 4 == 1 ? NULL : d.imei;
    o += sprintf(o, "%s,%s,%s\n", d.eid, iccid ? iccid : "", imei ? imei : "");
    if (want) ck_assert_int_eq(add_one(want, d.eid, iccid, imei), TSESIM_OK);
  }
  *len = (size_t)(o - buf);
  return buf;
}

/* 10,000 devices in one call give the same body as one by one, without the
 * last newline too; and the call makes at most two allocations (the
 * device array and the pool, nothing per device). */
START_TEST(test_batch_10000_same_as_one_by_one) {
  tsesim_request *got = make_req(0), *want = make_req(0);
  char errbuf[TSESIM_ERRBUF_SIZE], *a, *b, *buf;
  size_t len;

  buf = batch_of(1, TSESIM_MAX_DEVICES_PER_REQUEST, want, &len);
  tsesim__test_alloc_reset();
  ck_assert_int_eq(batch(got, buf, len - (size_t)_i, errbuf), TSESIM_OK);
  ck_assert_uint_le(tsesim__test_alloc_count(), 2);
  memset(buf, 'X', len); /* the request kept copies */
  free(buf);
  ck_assert_uint_eq(tsesim_request_device_count(got), TSESIM_MAX_DEVICES_PER_REQUEST);
  a = json_of(got);
  b = json_of(want);
  ck_assert_uint_eq(strlen(a), strlen(b));
  ck_assert_str_eq(a, b);
  tsesim_free(a);
  tsesim_free(b);
  tsesim_request_free(got);
  tsesim_request_free(want);
}
END_TEST

/* Batches after batches, and single devices between them, keep the order. */
START_TEST(test_batch_appends) {
  tsesim_request *got = make_req(0), *want = make_req(0);
  char errbuf[TSESIM_ERRBUF_SIZE], *a, *b, *buf;
  size_t len, i, first = 1;

  for (i = 1; i <= 40; i++) {
    tt_device d;
    buf = batch_of(first, i, want, &len);
    ck_assert_int_eq(batch(got, buf, len, errbuf), TSESIM_OK);
    free(buf);
    first += i;
    tt_device_make(&d, 100000 + i);
    ck_assert_int_eq(tsesim_request_add_device(got, d.ids, 3), TSESIM_OK);
    ck_assert_int_eq(tsesim_request_add_device(want, d.ids, 3), TSESIM_OK);
  }
  ck_assert_uint_eq(tsesim_request_device_count(got), 40 * 41 / 2 + 40);
  a = json_of(got);
  b = json_of(want);
  ck_assert_str_eq(a, b);
  tsesim_free(a);
  tsesim_free(b);
  tsesim_request_free(got);
  tsesim_request_free(want);
}
END_TEST

/* ---- rejected batches ---- */

#define LONG_DIGITS                                                                             \
  "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901" \
  "2345678901234567890123456789012345678901234567890"

/* A literal and its length, NUL bytes included. */
#define LIT(s) s, sizeof(s) - 1

/* Added to a request with 2 devices: the whole message. len 0: strlen. */
static const struct {
  const char *buf;
  size_t len;
  const char *want;
} reject_cases[] = {
    /* what add_device refuses, with its words */
    {REC(EID, ICCID, "35209900176148X"), 0,
     "device 2 (record 1): imei \"35209900176148X\": not a digit at position 15"},
    {REC(EID, "123", IMEI), 0, "device 2 (record 1): iccid \"123\": 3 digits, expected 19 or 20"},
    {REC(EID "0", ICCID, IMEI), 0, "device 2 (record 1): eid \"" EID "0\": 33 digits, expected 32"},
    {REC(BAD_EID, ICCID, IMEI), 0,
     "device 2 (record 1): eid: check digits 13 do not match (expected 42)"},
    {REC(EID, BAD_ICCID, IMEI), 0,
     "device 2 (record 1): iccid: check digit 1 does not match (expected 0)"},
    {REC(EID, ICCID, BAD_IMEI), 0,
     "device 2 (record 1): imei: check digit 2 does not match (expected 1)"},
    {REC(, ICCID, IMEI), 0, "device 2 (record 1): eid missing (every device needs one)"},
    {REC(, , ), 0, "device 2 (record 1): eid missing (every device needs one)"},
    {REC(EID, , ), 0,
     "device 2 (record 1): iccid or imei missing (every device needs one besides its eid)"},
    {REC(EID, " " ICCID, IMEI), 0,
     "device 2 (record 1): iccid \" " ICCID "\": not a digit at position 1"},
    {REC(EID, ICCID, "+490154203237518"), 0,
     "device 2 (record 1): imei \"+490154203237518\": not a digit at position 1"},
    /* the first problem in the order eid, iccid, imei, as add_device */
    {REC(EID "1", ICCID, "x"), 0, "device 2 (record 1): eid \"" EID "1\": 33 digits, expected 32"},
    {REC(, "x", BAD_IMEI), 0, "device 2 (record 1): iccid \"x\": not a digit at position 1"},
    /* long fields: quoted to 40 characters */
    {REC(LONG_DIGITS, ICCID, IMEI), 0,
     "device 2 (record 1): eid \"1234567890123456789012345678901234567890...\": 140 digits, "
     "expected 32"},
    {REC(EID, LONG_DIGITS "y", IMEI), 0,
     "device 2 (record 1): iccid \"1234567890123456789012345678901234567890...\": not a digit "
     "at position 141"},
    /* the record's own rules */
    {REC(EID, ICCID, IMEI) ",", 0, "device 2 (record 1): 4 fields, expected 3 (EID,ICCID,IMEI)"},
    {REC(EID, ICCID, IMEI) ",1,2,3\n", 0,
     "device 2 (record 1): 6 fields, expected 3 (EID,ICCID,IMEI)"},
    {EID "," ICCID, 0, "device 2 (record 1): 2 fields, expected 3 (EID,ICCID,IMEI)"},
    {EID, 0, "device 2 (record 1): 1 field, expected 3 (EID,ICCID,IMEI)"},
    {"\n", 0, "device 2 (record 1): 1 field, expected 3 (EID,ICCID,IMEI)"},
    {REC(EID, ICCID, IMEI) "\n\n", 0, "device 3 (record 2): 1 field, expected 3 (EID,ICCID,IMEI)"},
    {REC(EID, ICCID, IMEI) "\n\n" REC(EID, ICCID, IMEI), 0,
     "device 3 (record 2): 1 field, expected 3 (EID,ICCID,IMEI)"},
    {REC(EID, ICCID, IMEI) "\r\n", 0,
     "device 2 (record 1): imei: carriage return at position 16 (records end with \\n alone)"},
    {REC(EID, ICCID, ) "\r\n", 0,
     "device 2 (record 1): imei: carriage return at position 1 (records end with \\n alone)"},
    {REC(EID, ICCID, IMEI) "\r", 0,
     "device 2 (record 1): imei: carriage return at position 16 (records end with \\n alone)"},
    {LIT(REC(EID,
             "8901\0"
             "4103211118510720",
             IMEI)),
     "device 2 (record 1): iccid: NUL byte at position 5"},
    {LIT("\0" REC(EID, ICCID, IMEI)), "device 2 (record 1): eid: NUL byte at position 1"},
    {LIT(REC(EID, ICCID, IMEI) "\n" REC(EID, ICCID,
                                        "4901542032\0"
                                        "7518")),
     "device 3 (record 2): imei: NUL byte at position 11"},
    /* a failure in the middle: the records before it are not kept */
    {REC(EID, ICCID, IMEI) "\n" REC(EID2, , IMEI2) "\n" REC(EID, ICCID19, ) "\n" REC(
         EID2, ICCID, BAD_IMEI) "\n" REC(EID, ICCID, IMEI) "\n",
     0, "device 5 (record 4): imei: check digit 2 does not match (expected 1)"},
    {REC(EID, ICCID, IMEI) "\n" REC(EID2, ICCID, IMEI) "\n" REC(EID, ICCID, IMEI) ",", 0,
     "device 4 (record 3): 4 fields, expected 3 (EID,ICCID,IMEI)"},
};

START_TEST(test_batch_rejected) {
  tsesim_request *req = make_req(2);
  char errbuf[TSESIM_ERRBUF_SIZE], *before, *after;
  size_t len = reject_cases[_i].len ? reject_cases[_i].len : strlen(reject_cases[_i].buf);

  before = json_of(req);
  ck_assert_int_eq(batch(req, reject_cases[_i].buf, len, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, reject_cases[_i].want);
  ck_assert_uint_eq(tsesim_request_device_count(req), 2);
  after = json_of(req);
  ck_assert_str_eq(after, before);
  tsesim_free(after);

  /* still usable, and the errbuf may be NULL */
  ck_assert_int_eq(tsesim_request_add_devices(req, REC(EID, ICCID, IMEI),
                                              sizeof(REC(EID, ICCID, IMEI)) - 1, NULL),
                   TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");
  ck_assert_uint_eq(tsesim_request_device_count(req), 3);
  tsesim_free(before);
  tsesim_request_free(req);
}
END_TEST

/* Every case again with the buffer at the end of a page followed by a
 * PROT_NONE page: reading one byte past len faults. The buffer is dropped
 * before the body is compared, so the request must hold copies. */
START_TEST(test_batch_guard_page) {
  size_t n_acc = ARRAY_LEN(accept_cases), i;
  char errbuf[TSESIM_ERRBUF_SIZE], *a, *b;
  tsesim_request *req = make_req(2), *ref = make_req(2);
  const char *buf;
  size_t len;
  placed pl;

  if ((size_t)_i < n_acc) {
    buf = accept_cases[_i].buf;
    len = strlen(buf);
    for (i = 0; i < accept_cases[_i].n; i++)
      ck_assert_int_eq(add_one(ref, accept_cases[_i].want[i][0], accept_cases[_i].want[i][1],
                               accept_cases[_i].want[i][2]),
                       TSESIM_OK);
  } else {
    buf = reject_cases[_i - n_acc].buf;
    len = reject_cases[_i - n_acc].len ? reject_cases[_i - n_acc].len : strlen(buf);
  }
  buf = body_put(&pl, PLACE_GUARD, buf, len);
  if ((size_t)_i < n_acc) {
    ck_assert_int_eq(batch(req, buf, len, errbuf), TSESIM_OK);
  } else {
    ck_assert_int_eq(batch(req, buf, len, errbuf), TSESIM_E_INVAL);
    ck_assert_str_eq(errbuf, reject_cases[_i - n_acc].want);
  }
  body_drop(&pl);
  a = json_of(req);
  b = json_of(ref);
  ck_assert_str_eq(a, b);
  tsesim_free(a);
  tsesim_free(b);
  tsesim_request_free(req);
  tsesim_request_free(ref);
}
END_TEST

/* The same record refused one by one and in a batch: the same reason, the
 * batch's after its prefix; with check digits verified and not. */
static const char *const same_cases[][3] = {
    {BAD_EID, ICCID, NULL},
    {EID, BAD_ICCID, BAD_IMEI},
    {EID, ICCID "5", NULL},
    {EID, "8901410321111851072", NULL},
    {"8904903212345123451234567890123", NULL, IMEI},
    {EID, NULL, "4901542032375188"},
    {EID, NULL, "49015420323751"},
    {"89049032123451234512345678901234", NULL, IMEI},
    {"89049032123451234512345678901299", NULL, IMEI},
    /* mod 97 is 1 for these two, yet their check digits are 02 and 98 */
    {"89049032123451234512345678902399", NULL, IMEI},
    {"89049032123451234512345678908801", NULL, IMEI},
    {"89049032123451234512345678902302", NULL, IMEI},
    {"89049032123451234512345678908898", NULL, IMEI},
    {"8a049032123451234512345678901235", NULL, IMEI},
    {EID, "\x80\xff", NULL},
    {EID, "\t", NULL},
    {LONG_DIGITS LONG_DIGITS LONG_DIGITS, NULL, IMEI},
    {EID, NULL, LONG_DIGITS LONG_DIGITS "a" LONG_DIGITS},
    {NULL, ICCID, IMEI},
    {NULL, NULL, IMEI},
    {NULL, BAD_ICCID, IMEI},
    {EID, NULL, NULL},
};

START_TEST(test_batch_same_reason_as_add_device) {
  int verify = _i % 2;
  const char *const *c = same_cases[_i / 2];
  tsesim_request *one = make_req(3), *many = make_req(3);
  char errbuf[TSESIM_ERRBUF_SIZE], want[TSESIM_ERRBUF_SIZE], *buf;
  const char *msg;
  tsesim_code rc;
  size_t len;

  ck_assert_int_eq(tsesim_request_set_verify_checksums(one, verify), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_set_verify_checksums(many, verify), TSESIM_OK);
  rc = add_one(one, c[0], c[1], c[2]);
  len = strlen(c[0] ? c[0] : "") + strlen(c[1] ? c[1] : "") + strlen(c[2] ? c[2] : "") + 2;
  buf = malloc(len + 1);
  ck_assert_ptr_nonnull(buf);
  sprintf(buf, "%s,%s,%s", c[0] ? c[0] : "", c[1] ? c[1] : "", c[2] ? c[2] : "");
  ck_assert_int_eq(batch(many, buf, len, errbuf), rc);
  free(buf);
  if (rc == TSESIM_OK) {
    char *a = json_of(one), *b = json_of(many);
    ck_assert_str_eq(a, b);
    tsesim_free(a);
    tsesim_free(b);
  } else {
    msg = tsesim_request_errmsg(one);
    ck_assert_msg(strncmp(msg, "device 3: ", 10) == 0, "%s", msg);
    snprintf(want, sizeof want, "device 3 (record 1): %s", msg + 10);
    ck_assert_str_eq(errbuf, want);
    ck_assert_uint_eq(tsesim_request_device_count(many), 3);
  }
  /* the first two have bad check digits only */
  if (_i / 2 <= 1) ck_assert_int_eq(rc, verify ? TSESIM_E_INVAL : TSESIM_OK);
  tsesim_request_free(one);
  tsesim_request_free(many);
}
END_TEST

/* ---- arguments and limits ---- */

START_TEST(test_batch_null_arguments) {
  tsesim_request *req = make_req(1);
  char errbuf[TSESIM_ERRBUF_SIZE];

  ck_assert_int_eq(tsesim_request_add_devices(NULL, "x", 1, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "req is NULL");
  ck_assert_int_eq(tsesim_request_add_devices(NULL, "x", 1, NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(batch(req, NULL, 5, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "buf is NULL");
  ck_assert_int_eq(tsesim_request_add_devices(req, NULL, 1, NULL), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req), "buf is NULL");
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);
  tsesim_request_free(req);
}
END_TEST

/* The batch takes more than one body's worth, as add_device does; the
 * body then refuses it, and a job would chunk it. */
START_TEST(test_batch_over_one_body) {
  tsesim_request *req = make_req(0);
  char errbuf[TSESIM_ERRBUF_SIZE], *buf, *out = (char *)&out;
  size_t len, out_len = 1;

  buf = batch_of(1, TSESIM_MAX_DEVICES_PER_REQUEST + 1, NULL, &len);
  ck_assert_int_eq(batch(req, buf, len, errbuf), TSESIM_OK);
  free(buf);
  ck_assert_uint_eq(tsesim_request_device_count(req), TSESIM_MAX_DEVICES_PER_REQUEST + 1);
  ck_assert_int_eq(tsesim_request_to_json(&out, &out_len, req), TSESIM_E_LIMIT);
  ck_assert_ptr_null(out);
  tsesim_request_free(req);
}
END_TEST

/* A bad last record of a large batch puts back the request exactly, and
 * its numbers are those of the last device and record. */
START_TEST(test_batch_fails_at_the_end) {
  tsesim_request *req = make_req(5);
  char errbuf[TSESIM_ERRBUF_SIZE], *buf, *before, *after;
  size_t len;

  before = json_of(req);
  buf = batch_of(1, 20000, NULL, &len);
  buf[len - 2] = buf[len - 2] == '0' ? '1' : '0'; /* the last imei's check digit */
  ck_assert_int_eq(batch(req, buf, len, errbuf), TSESIM_E_INVAL);
  ck_assert_msg(strncmp(errbuf, "device 20004 (record 20000): ", 29) == 0, "%s", errbuf);
  ck_assert_uint_eq(tsesim_request_device_count(req), 5);
  after = json_of(req);
  ck_assert_str_eq(after, before);
  free(buf);
  tsesim_free(before);
  tsesim_free(after);
  tsesim_request_free(req);
}
END_TEST

/* ---- allocation failure ---- */

/* A new request, 2 devices one by one, then a batch of 3 (_i 0: they fit
 * in the room the request has, so the batch allocates nothing) or 300
 * (_i 1), each allocation failing in turn. When the batch fails: nothing of
 * it was added, the message says so, and the request still takes it. */
START_TEST(test_batch_alloc_failure) {
  size_t n = _i ? 300 : 3, len;
  tsesim_request *req = NULL;
  tt_device devs[2];
  char *buf = batch_of(50, n, NULL, &len), want[64];

  tt_device_make(&devs[0], 1);
  tt_device_make(&devs[1], 2);
  snprintf(want, sizeof want, "%lu records: out of memory", (unsigned long)n);
  TT_FAIL_EACH_ALLOC(
      {
        req = NULL;
        rc = tsesim_request_new(&req, "Acme");
        if (rc == TSESIM_OK) rc = tsesim_request_add_device(req, devs[0].ids, 3);
        if (rc == TSESIM_OK) rc = tsesim_request_add_device(req, devs[1].ids, 2);
        if (rc == TSESIM_OK) {
          char errbuf[TSESIM_ERRBUF_SIZE];
          rc = tsesim_request_add_devices(req, buf, len, errbuf);
          if (rc != TSESIM_OK) {
            char *json;
            ck_assert_str_eq(errbuf, want);
            ck_assert_str_eq(tsesim_request_errmsg(req), want);
            ck_assert_uint_eq(tsesim_request_device_count(req), 2);
            ck_assert_int_eq(tsesim_request_add_devices(req, buf, len, NULL), TSESIM_OK);
            ck_assert_uint_eq(tsesim_request_device_count(req), 2 + n);
            json = json_of(req);
            tsesim_free(json);
          }
        }
        if (rc != TSESIM_OK) {
          tsesim_request_free(req);
          req = NULL;
        }
      },
      req == NULL,
      {
        ck_assert_uint_eq(tsesim_request_device_count(req), 2 + n);
        tsesim_request_free(req);
      });
  free(buf);
}
END_TEST

/* A refused field too long for the stack is copied to say why: that copy
 * failing gives NOMEM, else the reason; never a device added. */
START_TEST(test_batch_long_field_alloc_failure) {
  static const char rec[] = REC(EID, LONG_DIGITS LONG_DIGITS, IMEI);
  tsesim_request *req = make_req(1);
  char errbuf[TSESIM_ERRBUF_SIZE];
  unsigned long n;
  tsesim_code rc;

  for (n = 1; n < 10; n++) {
    size_t live0 = tsesim__test_alloc_live();
    tt_alloc_arm(n);
    rc = tsesim_request_add_devices(req, rec, sizeof rec - 1, errbuf);
    if (!tt_alloc_disarm()) {
      ck_assert_int_eq(rc, TSESIM_E_INVAL);
      ck_assert_str_eq(
          errbuf,
          "device 1 (record 1): iccid \"1234567890123456789012345678901234567890...\": "
          "280 digits, expected 19 or 20");
      break;
    }
    ck_assert_int_eq(rc, TSESIM_E_NOMEM);
    ck_assert_msg(strstr(errbuf, "out of memory") != NULL, "%s", errbuf);
    ck_assert_uint_eq(tsesim_request_device_count(req), 1);
    ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
  }
  ck_assert_uint_gt(n, 1);
  tsesim_request_free(req);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("builder_batch");
  TCase *tc;

  tc = tcase_create("accepted");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_batch_accepted, 0, (int)ARRAY_LEN(accept_cases));
  tcase_add_test(tc, test_batch_empty);
  tcase_add_loop_test(tc, test_batch_10000_same_as_one_by_one, 0, 2);
  tcase_add_test(tc, test_batch_appends);
  suite_add_tcase(s, tc);

  tc = tcase_create("rejected");
  tcase_add_loop_test(tc, test_batch_rejected, 0, (int)ARRAY_LEN(reject_cases));
  tcase_add_loop_test(tc, test_batch_guard_page, 0,
                      (int)(ARRAY_LEN(accept_cases) + ARRAY_LEN(reject_cases)));
  tcase_add_loop_test(tc, test_batch_same_reason_as_add_device, 0, 2 * (int)ARRAY_LEN(same_cases));
  suite_add_tcase(s, tc);

  tc = tcase_create("limits");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_batch_null_arguments);
  tcase_add_test(tc, test_batch_over_one_body);
  tcase_add_test(tc, test_batch_fails_at_the_end);
  suite_add_tcase(s, tc);

  tc = tcase_create("nomem");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_batch_alloc_failure, 0, 2);
  tcase_add_test(tc, test_batch_long_field_alloc_failure);
  suite_add_tcase(s, tc);

  return s;
}

TT_MAIN(suite)
