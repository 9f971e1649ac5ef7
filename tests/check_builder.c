/*
 * check_builder.c - the download request builder: account name and service
 * plan rules, add_device rules and messages, checksum switch, copying,
 * limits, NULL handles and allocation failure.
 *
 * Every rejection is checked three ways: the result code, the exact message
 * (errbuf or tsesim_request_errmsg) and that the request did not change
 * (device count and the JSON body before and after).
 */
#include "tsesim_test.h"

/* Right length and digits, wrong check digits. */
#define BAD_EID "89049032123451234512345678904213"
#define BAD_ICCID "89014103211118510721"
#define BAD_IMEI "352099001761482"

/* ---- helpers ---- */

/* The JSON body of req; the call must succeed. Caller frees with tsesim_free. */
static char *json_of(const tsesim_request *req) {
  char *out = NULL;
  size_t len = 0;
  tsesim_code rc = tsesim_request_to_json(&out, &len, req);
  ck_assert_msg(rc == TSESIM_OK, "to_json: %s", tsesim_code_name(rc));
  ck_assert_ptr_nonnull(out);
  ck_assert_uint_eq(len, strlen(out));
  return out;
}

/* A request for account "Acme" holding n generated devices (seeds 1..n). */
static tsesim_request *make_req(size_t n) {
  tsesim_request *req = NULL;
  size_t i;
  ck_assert_int_eq(tsesim_request_new(&req, "Acme"), TSESIM_OK);
  for (i = 0; i < n; i++) {
    tt_device d;
    tt_device_make(&d, (unsigned long)i + 1);
    ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  }
  ck_assert_uint_eq(tsesim_request_device_count(req), n);
  return req;
}

/* Asserts that haystack contains needle. */
static void assert_contains(const char *haystack, const char *needle) {
  ck_assert_msg(strstr(haystack, needle) != NULL, "\"%s\" not found in %s", needle, haystack);
}

/* ---- accountName and servicePlan: the same text rules ---- */

/* reason NULL: accepted; else the message after "<field>: ". */
static const struct {
  const char *s;
  const char *reason;
} text_cases[] = {
    {"a", NULL},
    {"Acme Corp_1 (EU) - 2024/Q3", NULL},
    {"Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80", NULL}, /* Zürich € 😀 */
    {"~", NULL},
    {"\xC2\xA0", NULL},         /* U+00A0, the first code point after the C1 controls */
    {"\xED\x9F\xBF", NULL},     /* U+D7FF, below the surrogates */
    {"\xEE\x80\x80", NULL},     /* U+E000, above them */
    {"\xEF\xBF\xBF", NULL},     /* U+FFFF */
    {"\xF4\x8F\xBF\xBF", NULL}, /* U+10FFFF, the last code point */
    {"0123456789012345678901234567890123456789012345678901234567890123", NULL}, /* 64 */
    {"", "empty"},
    {"01234567890123456789012345678901234567890123456789012345678901234", "65 bytes, at most 64"},
    /* overlong forms */
    {"\xC0\xAF", "invalid UTF-8 at byte 1"},
    {"ab\xC1\xBF", "invalid UTF-8 at byte 3"},
    {"x\xE0\x80\xAF", "invalid UTF-8 at byte 2"},
    {"\xE0\x9F\xBF", "invalid UTF-8 at byte 1"},     /* U+07FF in 3 bytes */
    {"\xF0\x8F\xBF\xBF", "invalid UTF-8 at byte 1"}, /* U+FFFF in 4 bytes */
    /* surrogates */
    {"abc\xED\xA0\x80", "invalid UTF-8 at byte 4"}, /* U+D800 */
    {"\xED\xBF\xBF", "invalid UTF-8 at byte 1"},    /* U+DFFF */
    /* truncated sequences */
    {"abc\xE2\x82", "invalid UTF-8 at byte 4"},
    {"abc\xE2\x82z", "invalid UTF-8 at byte 4"},
    {"\xF0\x9F\x98", "invalid UTF-8 at byte 1"},
    {"\xC3", "invalid UTF-8 at byte 1"},
    {"a\x80", "invalid UTF-8 at byte 2"}, /* a lone continuation byte */
    /* beyond U+10FFFF and bytes that never start a sequence */
    {"\xF4\x90\x80\x80", "invalid UTF-8 at byte 1"}, /* U+110000 */
    {"\xF5\x80\x80\x80", "invalid UTF-8 at byte 1"},
    {"\xF8\x88\x80\x80\x80", "invalid UTF-8 at byte 1"},
    {"\xE2\x82\xAC\xFF", "invalid UTF-8 at byte 4"}, /* after a valid euro sign */
    /* control characters, C0, DEL and C1 */
    {"abc\tdef", "control character U+0009 at byte 4"},
    {"\nabc", "control character U+000A at byte 1"},
    {"a\rb", "control character U+000D at byte 2"},
    {"x\x1F", "control character U+001F at byte 2"},
    {"del\x7F", "control character U+007F at byte 4"},
    {"x\xC2\x85y", "control character U+0085 at byte 2"},
    {"\xC2\x80", "control character U+0080 at byte 1"},
    {"\xC3\xA9\xC2\x9F", "control character U+009F at byte 3"},
};

START_TEST(test_account_name_rules) {
  const char *s = text_cases[_i].s, *reason = text_cases[_i].reason;
  tsesim_request *req = (tsesim_request *)&req; /* not NULL: must be overwritten */
  char errbuf[TSESIM_ERRBUF_SIZE], want[TSESIM_ERRBUF_SIZE];
  tsesim_code rc = tsesim_request_new_v2(&req, s, errbuf);

  if (!reason) {
    tt_device d;
    char *json;
    ck_assert_int_eq(rc, TSESIM_OK);
    ck_assert_ptr_nonnull(req);
    ck_assert_uint_eq(tsesim_request_device_count(req), 0);
    ck_assert_str_eq(tsesim_request_errmsg(req), "");
    tt_device_make(&d, 1);
    ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 2), TSESIM_OK);
    json = json_of(req);
    snprintf(want, sizeof want, "\"accountName\":\"%s\"}", s);
    ck_assert_str_eq(json + strlen(json) - strlen(want), want);
    tsesim_free(json);
    tsesim_request_free(req);
    /* the v1 constructor agrees */
    ck_assert_int_eq(tsesim_request_new(&req, s), TSESIM_OK);
    tsesim_request_free(req);
    return;
  }
  ck_assert_int_eq(rc, TSESIM_E_INVAL);
  ck_assert_ptr_null(req);
  snprintf(want, sizeof want, "accountName: %s", reason);
  ck_assert_str_eq(errbuf, want);
  /* without an errbuf, and through the v1 constructor */
  req = (tsesim_request *)&req;
  ck_assert_int_eq(tsesim_request_new_v2(&req, s, NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(req);
  req = (tsesim_request *)&req;
  ck_assert_int_eq(tsesim_request_new(&req, s), TSESIM_E_INVAL);
  ck_assert_ptr_null(req);
}
END_TEST

START_TEST(test_service_plan_rules) {
  const char *s = text_cases[_i].s, *reason = text_cases[_i].reason;
  tsesim_request *req = make_req(1);
  char want[TSESIM_ERRBUF_SIZE];
  char *before, *after;
  tsesim_code rc;

  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Old Plan"), TSESIM_OK);
  before = json_of(req);
  rc = tsesim_request_set_service_plan(req, s);
  after = json_of(req);
  if (!reason) {
    ck_assert_int_eq(rc, TSESIM_OK);
    ck_assert_str_eq(tsesim_request_errmsg(req), "");
    snprintf(want, sizeof want, ",\"servicePlan\":\"%s\"}", s);
    ck_assert_str_eq(after + strlen(after) - strlen(want), want);
  } else {
    ck_assert_int_eq(rc, TSESIM_E_INVAL);
    snprintf(want, sizeof want, "servicePlan: %s", reason);
    ck_assert_str_eq(tsesim_request_errmsg(req), want);
    /* the previous plan is still there, nothing else changed */
    ck_assert_str_eq(after, before);
    assert_contains(after, ",\"servicePlan\":\"Old Plan\"}");
  }
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);
  tsesim_free(before);
  tsesim_free(after);
  tsesim_request_free(req);
}
END_TEST

/* Exactly 64 bytes pass and 65 do not, in whatever characters. */
static const char *const length_units[] = {"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"};

/* s gets whole copies of unit up to at most len bytes, then 'x' up to len. */
static void fill_text(char *s, const char *unit, size_t len) {
  size_t ul = strlen(unit), o = 0;
  while (o + ul <= len) {
    memcpy(s + o, unit, ul);
    o += ul;
  }
  while (o < len) s[o++] = 'x';
  s[o] = '\0';
}

START_TEST(test_text_length_limit) {
  char s[80], errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = NULL;

  fill_text(s, length_units[_i], 64);
  ck_assert_int_eq(tsesim_request_new_v2(&req, s, errbuf), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_set_service_plan(req, s), TSESIM_OK);
  tsesim_request_free(req);

  fill_text(s, length_units[_i], 65);
  req = (tsesim_request *)&req;
  ck_assert_int_eq(tsesim_request_new_v2(&req, s, errbuf), TSESIM_E_INVAL);
  ck_assert_ptr_null(req);
  ck_assert_str_eq(errbuf, "accountName: 65 bytes, at most 64");
  req = make_req(0);
  ck_assert_int_eq(tsesim_request_set_service_plan(req, s), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req), "servicePlan: 65 bytes, at most 64");
  tsesim_request_free(req);

  /* the length is judged before the encoding */
  fill_text(s, "\xFF", 70);
  ck_assert_int_eq(tsesim_request_new_v2(&req, s, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "accountName: 70 bytes, at most 64");
}
END_TEST

START_TEST(test_new_null_arguments) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = (tsesim_request *)&req;

  ck_assert_int_eq(tsesim_request_new(NULL, "Acme"), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_request_new_v2(NULL, "Acme", NULL), TSESIM_E_INVAL);
  errbuf[0] = '\0';
  ck_assert_int_eq(tsesim_request_new_v2(NULL, "Acme", errbuf), TSESIM_E_INVAL);
  assert_contains(errbuf, "out");
  ck_assert_int_eq(tsesim_request_new(&req, NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(req);
  req = (tsesim_request *)&req;
  ck_assert_int_eq(tsesim_request_new_v2(&req, NULL, errbuf), TSESIM_E_INVAL);
  ck_assert_ptr_null(req);
  ck_assert_str_eq(errbuf, "accountName: NULL");
}
END_TEST

/* NULL removes the plan; setting it again replaces it. */
START_TEST(test_service_plan_null_clears) {
  tsesim_request *req = make_req(1);
  char *json;

  json = json_of(req);
  ck_assert_ptr_null(strstr(json, "servicePlan"));
  tsesim_free(json);

  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Plan A"), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Plan B"), TSESIM_OK);
  json = json_of(req);
  assert_contains(json, ",\"servicePlan\":\"Plan B\"}");
  ck_assert_ptr_null(strstr(json, "Plan A"));
  tsesim_free(json);

  ck_assert_int_eq(tsesim_request_set_service_plan(req, NULL), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");
  json = json_of(req);
  ck_assert_ptr_null(strstr(json, "servicePlan"));
  ck_assert_ptr_null(strstr(json, "Plan B"));
  tsesim_free(json);

  /* clearing an unset plan is fine too */
  ck_assert_int_eq(tsesim_request_set_service_plan(req, NULL), TSESIM_OK);
  tsesim_request_free(req);
}
END_TEST

/* ---- add_device ---- */

typedef struct {
  int kind;
  const char *id;
} raw_id;

/* Rejected devices, added as the 4th device (index 3) of a request. */
static const struct {
  raw_id ids[4];
  size_t n;
  int ids_null;     /* pass ids as NULL */
  const char *want; /* the whole errmsg */
} reject_cases[] = {
    {{{0, NULL}}, 0, 0, "device 3: eid missing (every device needs one)"},
    {{{0, NULL}}, 0, 1, "device 3: eid missing (every device needs one)"},
    {{{0, NULL}}, 2, 1, "device 3: ids is NULL"},
    {{{TSESIM_ID_EID, EID}},
     1,
     0,
     "device 3: iccid or imei missing (every device needs one besides its eid)"},
    {{{TSESIM_ID_ICCID, ICCID}, {TSESIM_ID_IMEI, IMEI}},
     2,
     0,
     "device 3: eid missing (every device needs one)"},
    {{{TSESIM_ID_IMEI, IMEI}}, 1, 0, "device 3: eid missing (every device needs one)"},
    /* kinds a download does not take */
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_MDN, MDN}},
     2,
     0,
     "device 3: ids[1]: kind mdn is not accepted by a download (only eid, iccid, imei)"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_ICCID, ICCID}, {TSESIM_ID_MDN, MDN}},
     3,
     0,
     "device 3: ids[2]: kind mdn is not accepted by a download (only eid, iccid, imei)"},
    {{{TSESIM_ID_EID, EID}, {0, ICCID}}, 2, 0, "device 3: ids[1]: unknown identifier kind 0"},
    {{{5, EID}, {TSESIM_ID_ICCID, ICCID}}, 2, 0, "device 3: ids[0]: unknown identifier kind 5"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_IMEI, IMEI}, {-1, ICCID}},
     3,
     0,
     "device 3: ids[2]: unknown identifier kind -1"},
    /* each kind once */
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_ICCID, ICCID}, {TSESIM_ID_EID, EID2}},
     3,
     0,
     "device 3: eid given twice (ids[0] and ids[2])"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_ICCID, ICCID}, {TSESIM_ID_ICCID, ICCID19}},
     3,
     0,
     "device 3: iccid given twice (ids[1] and ids[2])"},
    {{{TSESIM_ID_IMEI, IMEI}, {TSESIM_ID_EID, EID}, {TSESIM_ID_IMEI, IMEI}},
     3,
     0,
     "device 3: imei given twice (ids[0] and ids[2])"},
    {{{TSESIM_ID_EID, EID},
      {TSESIM_ID_ICCID, ICCID},
      {TSESIM_ID_IMEI, IMEI},
      {TSESIM_ID_ICCID, ICCID}},
     4,
     0,
     "device 3: iccid given twice (ids[1] and ids[3])"},
    /* invalid identifiers: the reason of tsesim_id_validate after the index */
    {{{TSESIM_ID_EID, BAD_EID}, {TSESIM_ID_ICCID, ICCID}},
     2,
     0,
     "device 3: eid: check digits 13 do not match (expected 42)"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_IMEI, BAD_IMEI}},
     2,
     0,
     "device 3: imei: check digit 2 does not match (expected 1)"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_IMEI, IMEI}, {TSESIM_ID_ICCID, BAD_ICCID}},
     3,
     0,
     "device 3: iccid: check digit 1 does not match (expected 0)"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_IMEI, "35209900176148X"}},
     2,
     0,
     "device 3: imei \"35209900176148X\": not a digit at position 15"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_ICCID, "894450010219830482"}},
     2,
     0,
     "device 3: iccid \"894450010219830482\": 18 digits, expected 19 or 20"},
    {{{TSESIM_ID_EID, EID "0"}, {TSESIM_ID_ICCID, ICCID}},
     2,
     0,
     "device 3: eid \"" EID "0\": 33 digits, expected 32"},
    {{{TSESIM_ID_EID, NULL}, {TSESIM_ID_ICCID, ICCID}}, 2, 0, "device 3: eid: NULL"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_ICCID, ""}}, 2, 0, "device 3: iccid: empty"},
    /* the first problem in the order given is the one reported */
    {{{TSESIM_ID_IMEI, BAD_IMEI}, {TSESIM_ID_MDN, MDN}},
     2,
     0,
     "device 3: imei: check digit 2 does not match (expected 1)"},
};

static void to_device_ids(tsesim_device_id *out, const raw_id *in, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    out[i].kind = (tsesim_id_kind)in[i].kind;
    out[i].id = in[i].id;
    out[i].kind_name = NULL;
  }
}

START_TEST(test_add_device_rejected) {
  tsesim_device_id ids[4];
  tsesim_request *req = make_req(3);
  char *before, *after;
  tt_device d;

  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Plan"), TSESIM_OK);
  to_device_ids(ids, reject_cases[_i].ids, 4);
  before = json_of(req);
  ck_assert_int_eq(
      tsesim_request_add_device(req, reject_cases[_i].ids_null ? NULL : ids, reject_cases[_i].n),
      TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req), reject_cases[_i].want);
  ck_assert_uint_eq(tsesim_request_device_count(req), 3);
  after = json_of(req);
  ck_assert_str_eq(after, before);
  tsesim_free(after);

  /* the request is still usable: the next device is the 4th */
  tt_device_make(&d, 99);
  ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");
  ck_assert_uint_eq(tsesim_request_device_count(req), 4);
  after = json_of(req);
  ck_assert_uint_gt(strlen(after), strlen(before));
  assert_contains(after, d.eid);
  tsesim_free(before);
  tsesim_free(after);
  tsesim_request_free(req);
}
END_TEST

/* The index names the device about to be added: 0 on an empty request, and
 * it does not move on after rejections. */
START_TEST(test_add_device_index) {
  tsesim_device_id ids[2] = {{TSESIM_ID_EID, EID, NULL}, {TSESIM_ID_MDN, MDN, NULL}};
  tsesim_request *req = make_req(0);
  char *out = (char *)&out;
  size_t len = 1;
  tt_device d;

  ck_assert_int_eq(tsesim_request_add_device(req, ids, 2), TSESIM_E_INVAL);
  ck_assert_str_eq(
      tsesim_request_errmsg(req),
      "device 0: ids[1]: kind mdn is not accepted by a download (only eid, iccid, imei)");
  ck_assert_uint_eq(tsesim_request_device_count(req), 0);
  ck_assert_int_eq(tsesim_request_to_json(&out, &len, req), TSESIM_E_INVAL);
  ck_assert_ptr_null(out);
  ck_assert_uint_eq(len, 0);

  tt_device_make(&d, 1);
  ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_add_device(req, ids, 2), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_request_add_device(req, ids, 1), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req),
                   "device 1: iccid or imei missing (every device needs one besides its eid)");
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);
  tsesim_request_free(req);
}
END_TEST

/* Accepted combinations, in any order; the JSON lists them as given. */
static const struct {
  raw_id ids[3];
  size_t n;
  const char *want; /* the deviceIds array */
} accept_cases[] = {
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_ICCID, ICCID}},
     2,
     "[{\"kind\":\"eid\",\"id\":\"" EID "\"},{\"kind\":\"iccid\",\"id\":\"" ICCID "\"}]"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_IMEI, IMEI}},
     2,
     "[{\"kind\":\"eid\",\"id\":\"" EID "\"},{\"kind\":\"imei\",\"id\":\"" IMEI "\"}]"},
    {{{TSESIM_ID_IMEI, IMEI}, {TSESIM_ID_EID, EID}},
     2,
     "[{\"kind\":\"imei\",\"id\":\"" IMEI "\"},{\"kind\":\"eid\",\"id\":\"" EID "\"}]"},
    {{{TSESIM_ID_EID, EID}, {TSESIM_ID_ICCID, ICCID19}, {TSESIM_ID_IMEI, IMEI}},
     3,
     "[{\"kind\":\"eid\",\"id\":\"" EID "\"},{\"kind\":\"iccid\",\"id\":\"" ICCID19
     "\"},{\"kind\":\"imei\",\"id\":\"" IMEI "\"}]"},
    {{{TSESIM_ID_ICCID, ICCID}, {TSESIM_ID_IMEI, IMEI2}, {TSESIM_ID_EID, EID2}},
     3,
     "[{\"kind\":\"iccid\",\"id\":\"" ICCID "\"},{\"kind\":\"imei\",\"id\":\"" IMEI2
     "\"},{\"kind\":\"eid\",\"id\":\"" EID2 "\"}]"},
};

START_TEST(test_add_device_accepted) {
  tsesim_device_id ids[3];
  tsesim_request *req = make_req(0);
  char want[1024], *json;

  to_device_ids(ids, accept_cases[_i].ids, accept_cases[_i].n);
  ids[0].kind_name = "ignored on input";
  ck_assert_int_eq(tsesim_request_add_device(req, ids, accept_cases[_i].n), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");
  ck_assert_uint_eq(tsesim_request_device_count(req), 1);
  json = json_of(req);
  snprintf(want, sizeof want, "{\"devices\":[{\"deviceIds\":%s}],\"accountName\":\"Acme\"}",
           accept_cases[_i].want);
  ck_assert_str_eq(json, want);
  tsesim_free(json);
  tsesim_request_free(req);
}
END_TEST

/* ---- check digits on and off ---- */

START_TEST(test_verify_checksums_switch) {
  tsesim_device_id bad_eid[2] = {{TSESIM_ID_EID, BAD_EID, NULL}, {TSESIM_ID_ICCID, ICCID, NULL}};
  tsesim_device_id bad_iccid[2] = {{TSESIM_ID_EID, EID, NULL}, {TSESIM_ID_ICCID, BAD_ICCID, NULL}};
  tsesim_device_id bad_imei[2] = {{TSESIM_ID_EID, EID, NULL}, {TSESIM_ID_IMEI, BAD_IMEI, NULL}};
  tsesim_device_id short_imei[2] = {{TSESIM_ID_EID, BAD_EID, NULL},
                                    {TSESIM_ID_IMEI, "35209900176148", NULL}};
  tsesim_device_id letter[2] = {{TSESIM_ID_EID, BAD_EID, NULL},
                                {TSESIM_ID_ICCID, "8901410321111851072X", NULL}};
  tsesim_request *req = make_req(0);
  char *json;

  /* on by default */
  ck_assert_int_eq(tsesim_request_add_device(req, bad_eid, 2), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req),
                   "device 0: eid: check digits 13 do not match (expected 42)");
  ck_assert_int_eq(tsesim_request_add_device(req, bad_iccid, 2), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_request_add_device(req, bad_imei, 2), TSESIM_E_INVAL);
  ck_assert_uint_eq(tsesim_request_device_count(req), 0);

  /* off: wrong check digits pass, as given */
  ck_assert_int_eq(tsesim_request_set_verify_checksums(req, 0), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");
  ck_assert_int_eq(tsesim_request_add_device(req, bad_eid, 2), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_add_device(req, bad_iccid, 2), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_add_device(req, bad_imei, 2), TSESIM_OK);
  ck_assert_uint_eq(tsesim_request_device_count(req), 3);
  json = json_of(req);
  assert_contains(json, "\"id\":\"" BAD_EID "\"");
  assert_contains(json, "\"id\":\"" BAD_ICCID "\"");
  assert_contains(json, "\"id\":\"" BAD_IMEI "\"");
  tsesim_free(json);

  /* ... but lengths and digits are still checked */
  ck_assert_int_eq(tsesim_request_add_device(req, short_imei, 2), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req),
                   "device 3: imei \"35209900176148\": 14 digits, expected 15");
  ck_assert_int_eq(tsesim_request_add_device(req, letter, 2), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req),
                   "device 3: iccid \"8901410321111851072X\": not a digit at position 20");
  ck_assert_uint_eq(tsesim_request_device_count(req), 3);

  /* any non-zero value turns it back on */
  ck_assert_int_eq(tsesim_request_set_verify_checksums(req, 42), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_add_device(req, bad_imei, 2), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req),
                   "device 3: imei: check digit 2 does not match (expected 1)");
  ck_assert_uint_eq(tsesim_request_device_count(req), 3);
  tsesim_request_free(req);
}
END_TEST

/* ---- copies ---- */

START_TEST(test_inputs_are_copied) {
  char account[] = "Acme", plan[] = "Plan", eid[] = EID, iccid[] = ICCID, imei[] = IMEI;
  tsesim_device_id ids[3];
  tsesim_request *req = NULL;
  char *json;

  ck_assert_int_eq(tsesim_request_new(&req, account), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_set_service_plan(req, plan), TSESIM_OK);
  ids[0].kind = TSESIM_ID_IMEI;
  ids[0].id = imei;
  ids[1].kind = TSESIM_ID_EID;
  ids[1].id = eid;
  ids[2].kind = TSESIM_ID_ICCID;
  ids[2].id = iccid;
  ids[0].kind_name = ids[1].kind_name = ids[2].kind_name = NULL;
  ck_assert_int_eq(tsesim_request_add_device(req, ids, 3), TSESIM_OK);

  /* scribble over everything the caller passed */
  memset(account, 'X', strlen(account));
  memset(plan, 'Y', strlen(plan));
  memset(eid, '0', strlen(eid));
  memset(iccid, '1', strlen(iccid));
  imei[0] = '\0';
  ids[0].kind = TSESIM_ID_MDN;
  ids[0].id = NULL;
  ids[1].kind = TSESIM_ID_UNKNOWN;

  json = json_of(req);
  ck_assert_str_eq(json,
                   "{\"devices\":[{\"deviceIds\":["
                   "{\"kind\":\"imei\",\"id\":\"" IMEI
                   "\"},"
                   "{\"kind\":\"eid\",\"id\":\"" EID
                   "\"},"
                   "{\"kind\":\"iccid\",\"id\":\"" ICCID
                   "\"}]}],"
                   "\"accountName\":\"Acme\",\"servicePlan\":\"Plan\"}");
  tsesim_free(json);
  tsesim_request_free(req);
}
END_TEST

/* ---- errmsg ---- */

START_TEST(test_errmsg_cleared_on_success) {
  tsesim_device_id bad[1] = {{TSESIM_ID_EID, EID, NULL}};
  tsesim_request *req = make_req(0);
  tt_device d;
  char *json;

  ck_assert_str_eq(tsesim_request_errmsg(req), "");

  ck_assert_int_eq(tsesim_request_add_device(req, bad, 1), TSESIM_E_INVAL);
  ck_assert_str_ne(tsesim_request_errmsg(req), "");
  tt_device_make(&d, 7);
  ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");

  ck_assert_int_eq(tsesim_request_set_service_plan(req, ""), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req), "servicePlan: empty");
  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Plan"), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");

  ck_assert_int_eq(tsesim_request_set_service_plan(req, "\t"), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_request_set_service_plan(req, NULL), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");

  ck_assert_int_eq(tsesim_request_add_device(req, NULL, 1), TSESIM_E_INVAL);
  ck_assert_str_eq(tsesim_request_errmsg(req), "device 1: ids is NULL");
  ck_assert_int_eq(tsesim_request_set_verify_checksums(req, 1), TSESIM_OK);
  ck_assert_str_eq(tsesim_request_errmsg(req), "");

  /* to_json does not touch it */
  ck_assert_int_eq(tsesim_request_add_device(req, bad, 1), TSESIM_E_INVAL);
  json = json_of(req);
  ck_assert_str_eq(tsesim_request_errmsg(req),
                   "device 1: iccid or imei missing (every device needs one besides its eid)");
  tsesim_free(json);
  tsesim_request_free(req);
}
END_TEST

/* ---- limits ---- */

START_TEST(test_device_limit) {
  tsesim_request *req = make_req(TSESIM_MAX_DEVICES_PER_REQUEST);
  char *out;
  size_t len;
  tt_device d;

  out = json_of(req); /* exactly 10,000: fine */
  ck_assert_uint_gt(strlen(out), (size_t)TSESIM_MAX_DEVICES_PER_REQUEST * 100);
  tsesim_free(out);

  /* the builder takes a 10,001st device, the body refuses it */
  tt_device_make(&d, TSESIM_MAX_DEVICES_PER_REQUEST + 1);
  ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 3), TSESIM_OK);
  ck_assert_uint_eq(tsesim_request_device_count(req), TSESIM_MAX_DEVICES_PER_REQUEST + 1);
  out = (char *)&out;
  len = 12345;
  ck_assert_int_eq(tsesim_request_to_json(&out, &len, req), TSESIM_E_LIMIT);
  ck_assert_ptr_null(out);
  ck_assert_uint_eq(len, 0);
  /* and keeps taking more */
  tt_device_make(&d, TSESIM_MAX_DEVICES_PER_REQUEST + 2);
  ck_assert_int_eq(tsesim_request_add_device(req, d.ids, 2), TSESIM_OK);
  ck_assert_uint_eq(tsesim_request_device_count(req), TSESIM_MAX_DEVICES_PER_REQUEST + 2);
  ck_assert_int_eq(tsesim_request_to_json(&out, &len, req), TSESIM_E_LIMIT);
  ck_assert_ptr_null(out);
  tsesim_request_free(req);
}
END_TEST

START_TEST(test_zero_devices) {
  tsesim_request *req = make_req(0);
  char *out = (char *)&out;
  size_t len = 12345;
  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Plan"), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_to_json(&out, &len, req), TSESIM_E_INVAL);
  ck_assert_ptr_null(out);
  ck_assert_uint_eq(len, 0);
  tsesim_request_free(req);
}
END_TEST

/* ---- NULL handles ---- */

START_TEST(test_null_handles) {
  tt_device d;
  tsesim_request *req = make_req(1);
  char *out = (char *)&out;
  size_t len = 12345;

  tt_device_make(&d, 1);
  ck_assert_int_eq(tsesim_request_set_service_plan(NULL, "Plan"), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_request_set_service_plan(NULL, NULL), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_request_set_verify_checksums(NULL, 0), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_request_add_device(NULL, d.ids, 3), TSESIM_E_INVAL);
  ck_assert_uint_eq(tsesim_request_device_count(NULL), 0);
  ck_assert_ptr_nonnull(tsesim_request_errmsg(NULL));
  ck_assert_int_eq(tsesim_request_to_json(&out, &len, NULL), TSESIM_E_INVAL);
  ck_assert_ptr_null(out);
  ck_assert_uint_eq(len, 0);
  len = 12345;
  ck_assert_int_eq(tsesim_request_to_json(NULL, &len, req), TSESIM_E_INVAL);
  ck_assert_uint_eq(len, 0);
  out = (char *)&out;
  ck_assert_int_eq(tsesim_request_to_json(&out, NULL, req), TSESIM_E_INVAL);
  ck_assert_ptr_null(out);
  tsesim_request_free(NULL);
  tsesim_free(NULL);
  tsesim_request_free(req);
}
END_TEST

/* ---- allocation failure ---- */

START_TEST(test_new_alloc_failure) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_request *req = NULL;
  TT_FAIL_EACH_ALLOC(
      {
        req = (tsesim_request *)&req;
        errbuf[0] = '\0';
        rc = tsesim_request_new_v2(&req, "Acme \xE2\x82\xAC", errbuf);
        if (rc == TSESIM_E_NOMEM) ck_assert_str_eq(errbuf, "out of memory");
      },
      req == NULL,
      {
        ck_assert_str_eq(tsesim_request_errmsg(req), "");
        tsesim_request_free(req);
      });
  TT_FAIL_EACH_ALLOC(rc = tsesim_request_new(&req, "Acme"), req == NULL, tsesim_request_free(req));
}
END_TEST

/* With no plan before (i 0) and with one (i 1): a failed copy leaves the
 * request as it was. */
START_TEST(test_service_plan_alloc_failure) {
  tsesim_request *req = make_req(2);
  const char *old = _i ? "Old Plan" : NULL;
  char *before = NULL, *after = NULL;

  ck_assert_int_eq(tsesim_request_set_service_plan(req, old), TSESIM_OK);
  before = json_of(req);
  TT_FAIL_EACH_ALLOC(
      {
        rc = tsesim_request_set_service_plan(req, "New Plan \xF0\x9F\x98\x80");
        if (rc == TSESIM_E_NOMEM) {
          ck_assert_str_eq(tsesim_request_errmsg(req), "servicePlan: out of memory");
          after = json_of(req);
          ck_assert_str_eq(after, before);
          tsesim_free(after);
          after = NULL;
        }
      },
      after == NULL,
      {
        after = json_of(req);
        assert_contains(after, ",\"servicePlan\":\"New Plan \xF0\x9F\x98\x80\"}");
        tsesim_free(after);
        after = NULL;
        ck_assert_int_eq(tsesim_request_set_service_plan(req, old), TSESIM_OK);
      });
  tsesim_free(before);
  tsesim_request_free(req);
}
END_TEST

/* A new request and 1 to 3 devices (_i + 1), each allocation failing in
 * turn. When an add fails: nothing was added, the message names the device,
 * and the same request still takes the device and gives its body; then it
 * is freed, so that the loop's byte count proves nothing leaked. */
START_TEST(test_add_device_alloc_failure) {
  size_t n = (size_t)_i + 1, i;
  tsesim_request *req = NULL;
  tt_device devs[3];

  for (i = 0; i < 3; i++) tt_device_make(&devs[i], 100 + i);
  TT_FAIL_EACH_ALLOC(
      {
        req = (tsesim_request *)&req;
        rc = tsesim_request_new(&req, "Acme");
        if (rc != TSESIM_OK) ck_assert_ptr_null(req);
        for (i = 0; rc == TSESIM_OK && i < n; i++) {
          rc = tsesim_request_add_device(req, devs[i].ids, 3 - i % 2);
          if (rc != TSESIM_OK) {
            char want[64];
            char *json;
            snprintf(want, sizeof want, "device %lu: out of memory", (unsigned long)i);
            ck_assert_str_eq(tsesim_request_errmsg(req), want);
            ck_assert_uint_eq(tsesim_request_device_count(req), i);
            /* still usable */
            ck_assert_int_eq(tsesim_request_add_device(req, devs[i].ids, 3 - i % 2), TSESIM_OK);
            ck_assert_uint_eq(tsesim_request_device_count(req), i + 1);
            json = json_of(req);
            assert_contains(json, devs[i].eid);
            tsesim_free(json);
            tsesim_request_free(req);
            req = NULL;
          }
        }
      },
      req == NULL,
      {
        char *json;
        ck_assert_uint_eq(tsesim_request_device_count(req), n);
        json = json_of(req);
        for (i = 0; i < n; i++) assert_contains(json, devs[i].iccid);
        tsesim_free(json);
        tsesim_request_free(req);
      });
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("builder");
  TCase *tc;

  tc = tcase_create("text");
  tcase_add_test(tc, test_new_null_arguments);
  tcase_add_loop_test(tc, test_account_name_rules, 0, (int)ARRAY_LEN(text_cases));
  tcase_add_loop_test(tc, test_service_plan_rules, 0, (int)ARRAY_LEN(text_cases));
  tcase_add_loop_test(tc, test_text_length_limit, 0, (int)ARRAY_LEN(length_units));
  tcase_add_test(tc, test_service_plan_null_clears);
  suite_add_tcase(s, tc);

  tc = tcase_create("devices");
  tcase_add_loop_test(tc, test_add_device_rejected, 0, (int)ARRAY_LEN(reject_cases));
  tcase_add_test(tc, test_add_device_index);
  tcase_add_loop_test(tc, test_add_device_accepted, 0, (int)ARRAY_LEN(accept_cases));
  tcase_add_test(tc, test_verify_checksums_switch);
  tcase_add_test(tc, test_inputs_are_copied);
  tcase_add_test(tc, test_errmsg_cleared_on_success);
  suite_add_tcase(s, tc);

  tc = tcase_create("limits");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_device_limit);
  tcase_add_test(tc, test_zero_devices);
  tcase_add_test(tc, test_null_handles);
  suite_add_tcase(s, tc);

  tc = tcase_create("nomem");
  tcase_add_test(tc, test_new_alloc_failure);
  tcase_add_loop_test(tc, test_service_plan_alloc_failure, 0, 2);
  tcase_add_loop_test(tc, test_add_device_alloc_failure, 0, 3);
  suite_add_tcase(s, tc);

  return s;
}

TT_MAIN(suite)
