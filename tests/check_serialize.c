/*
 * check_serialize.c - tsesim_request_to_json: the exact compact body, field
 * and identifier order, escaping (read back with jansson), a full
 * 10,000-device body, allocation failure, and that it leaves req alone.
 */
#include <jansson.h>

#include "tsesim_test.h"

/* Three fixed devices: all kinds; imei before eid; a 19-digit iccid first. */
static const tsesim_device_id dev_a[] = {
    {TSESIM_ID_EID, EID, NULL}, {TSESIM_ID_ICCID, ICCID, NULL}, {TSESIM_ID_IMEI, IMEI, NULL}};
static const tsesim_device_id dev_b[] = {{TSESIM_ID_IMEI, IMEI2, NULL},
                                         {TSESIM_ID_EID, EID2, NULL}};
static const tsesim_device_id dev_c[] = {{TSESIM_ID_ICCID, ICCID19, NULL},
                                         {TSESIM_ID_EID, EID2, NULL}};
static const struct {
  const tsesim_device_id *ids;
  size_t n;
} fixed_devs[] = {{dev_a, 3}, {dev_b, 2}, {dev_c, 2}};

#define JSON_A                                      \
  "{\"deviceIds\":[{\"kind\":\"eid\",\"id\":\"" EID \
  "\"},{\"kind\":\"iccid\","                        \
  "\"id\":\"" ICCID "\"},{\"kind\":\"imei\",\"id\":\"" IMEI "\"}]}"
#define JSON_B                                         \
  "{\"deviceIds\":[{\"kind\":\"imei\",\"id\":\"" IMEI2 \
  "\"},{\"kind\":\"eid\","                             \
  "\"id\":\"" EID2 "\"}]}"
#define JSON_C                                            \
  "{\"deviceIds\":[{\"kind\":\"iccid\",\"id\":\"" ICCID19 \
  "\"},{\"kind\":\"eid\","                                \
  "\"id\":\"" EID2 "\"}]}"

/* ---- helpers ---- */

/* A request for account with the n fixed devices listed in which (indexes
 * into fixed_devs), and plan when not NULL. */
static tsesim_request *make_req(const char *account, const char *plan, const int *which, size_t n) {
  tsesim_request *req = NULL;
  size_t i;
  ck_assert_int_eq(tsesim_request_new(&req, account), TSESIM_OK);
  if (plan) ck_assert_int_eq(tsesim_request_set_service_plan(req, plan), TSESIM_OK);
  for (i = 0; i < n; i++)
    ck_assert_int_eq(
        tsesim_request_add_device(req, fixed_devs[which[i]].ids, fixed_devs[which[i]].n),
        TSESIM_OK);
  return req;
}

/* The body of req, checked for out_len == strlen(out); caller frees. */
static char *to_json(const tsesim_request *req, size_t *len_out) {
  char *out = NULL;
  size_t len = 0;
  ck_assert_int_eq(tsesim_request_to_json(&out, &len, req), TSESIM_OK);
  ck_assert_ptr_nonnull(out);
  ck_assert_uint_eq(len, strlen(out));
  if (len_out) *len_out = len;
  return out;
}

/* No space, tab, CR or LF outside JSON strings. */
static void assert_compact(const char *json) {
  int in_string = 0;
  const char *p;
  for (p = json; *p; p++) {
    if (in_string) {
      if (*p == '\\')
        p++;
      else if (*p == '"')
        in_string = 0;
    } else if (*p == '"') {
      in_string = 1;
    } else {
      ck_assert_msg(*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r',
                    "whitespace at offset %ld of %s", (long)(p - json), json);
    }
  }
  ck_assert_msg(!in_string, "unterminated string in %s", json);
}

/* Parses json back (strictly: no duplicate keys); the caller decrefs. */
static json_t *parse(const char *json, size_t len) {
  json_error_t err;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
  ck_assert_msg(root != NULL, "jansson: %s at %d:%d in %s", err.text, err.line, err.column, json);
  return root;
}

/* Asserts that v is a JSON string of exactly the bytes of want. */
static void assert_json_string(json_t *v, const char *want) {
  ck_assert_msg(json_is_string(v), "not a string");
  ck_assert_uint_eq(json_string_length(v), strlen(want));
  ck_assert_mem_eq(json_string_value(v), want, strlen(want));
}

/* ---- exact bodies ---- */

static const struct {
  int which[2];
  size_t n;
  const char *plan;
  const char *want;
} exact_cases[] = {
    {{0}, 1, NULL, "{\"devices\":[" JSON_A "],\"accountName\":\"Acme\"}"},
    {{1},
     1,
     "Global IoT_Plan 5",
     "{\"devices\":[" JSON_B "],\"accountName\":\"Acme\",\"servicePlan\":\"Global IoT_Plan 5\"}"},
    {{2}, 1, "p", "{\"devices\":[" JSON_C "],\"accountName\":\"Acme\",\"servicePlan\":\"p\"}"},
    {{1, 0},
     2,
     "Plan",
     "{\"devices\":[" JSON_B "," JSON_A "],\"accountName\":\"Acme\",\"servicePlan\":\"Plan\"}"},
    {{0, 2}, 2, NULL, "{\"devices\":[" JSON_A "," JSON_C "],\"accountName\":\"Acme\"}"},
    {{2, 2}, 2, NULL, "{\"devices\":[" JSON_C "," JSON_C "],\"accountName\":\"Acme\"}"},
};

START_TEST(test_exact_body) {
  tsesim_request *req =
      make_req("Acme", exact_cases[_i].plan, exact_cases[_i].which, exact_cases[_i].n);
  size_t len;
  char *out = to_json(req, &len);
  json_t *root;

  ck_assert_str_eq(out, exact_cases[_i].want);
  ck_assert_uint_eq(len, strlen(exact_cases[_i].want));
  assert_compact(out);
  /* and it is JSON with exactly the documented keys */
  root = parse(out, len);
  ck_assert_uint_eq(json_object_size(root), exact_cases[_i].plan ? 3 : 2);
  ck_assert_ptr_nonnull(json_object_get(root, "devices"));
  ck_assert_ptr_nonnull(json_object_get(root, "accountName"));
  ck_assert(!exact_cases[_i].plan || json_object_get(root, "servicePlan"));
  json_decref(root);
  tsesim_free(out);
  tsesim_request_free(req);
}
END_TEST

/* A plan set and then removed is absent from the body. */
START_TEST(test_plan_absent_after_clear) {
  static const int which[] = {0};
  tsesim_request *req = make_req("Acme", "Plan", which, 1);
  char *out;
  ck_assert_int_eq(tsesim_request_set_service_plan(req, NULL), TSESIM_OK);
  out = to_json(req, NULL);
  ck_assert_str_eq(out, "{\"devices\":[" JSON_A "],\"accountName\":\"Acme\"}");
  tsesim_free(out);
  tsesim_request_free(req);
}
END_TEST

/* ---- escaping ---- */

static const struct {
  const char *account;
  const char *plan; /* NULL: not set */
} escape_cases[] = {
    {"a\"b\\c/d \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
     "a\"b\\c/d \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
    {"\"", "\\"},
    {"\\", "\""},
    {"\\\"", "\"\\"},
    {"/", "//"},
    {"\"quoted\" name", NULL},
    {"C:\\path\\", "\\u0041 is not an escape here"},
    {"\xF0\x9F\x98\x80\xF0\x9F\x98\x80", "\xE2\x82\xAC"},     /* 😀😀 and € */
    {"\xC3\xA9\xC3\xA8\xC3\xAA", "\xE6\x97\xA5\xE6\x9C\xAC"}, /* éèê and 日本 */
    {"\xF4\x8F\xBF\xBF", "\xEF\xBF\xBF"},                     /* U+10FFFF, U+FFFF */
    {"Acme Corp_1 (EU)", "Global IoT_Plan 5 {\"x\":[1]}"},
    {"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"", /* 32 quotes, 64 once
                                                                            escaped */
     "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"
     "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"}, /* 64 backslashes, the longest plan */
};

START_TEST(test_escaping_round_trip) {
  static const int which[] = {1};
  const char *account = escape_cases[_i].account, *plan = escape_cases[_i].plan;
  tsesim_request *req = make_req(account, plan, which, 1);
  size_t len;
  char *out = to_json(req, &len);
  json_t *root = parse(out, len), *want;

  assert_compact(out);
  if (plan)
    want = json_pack("{s:[{s:[{s:s,s:s},{s:s,s:s}]}],s:s,s:s}", "devices", "deviceIds", "kind",
                     "imei", "id", IMEI2, "kind", "eid", "id", EID2, "accountName", account,
                     "servicePlan", plan);
  else
    want = json_pack("{s:[{s:[{s:s,s:s},{s:s,s:s}]}],s:s}", "devices", "deviceIds", "kind", "imei",
                     "id", IMEI2, "kind", "eid", "id", EID2, "accountName", account);
  ck_assert_ptr_nonnull(want);
  ck_assert_msg(json_equal(root, want), "body %s differs from the expected tree", out);
  assert_json_string(json_object_get(root, "accountName"), account);
  if (plan) assert_json_string(json_object_get(root, "servicePlan"), plan);
  json_decref(want);
  json_decref(root);
  tsesim_free(out);
  tsesim_request_free(req);
}
END_TEST

/* ---- a full body ---- */

/* Device i of the big request: all three kinds, imei+eid, or a 19-digit
 * iccid then eid, in rotation. */
static size_t big_device(tt_device *d, tsesim_device_id ids[3], size_t i) {
  tt_device_make(d, (unsigned long)i * 31 + 5);
  switch (i % 3) {
    case 0:
      memcpy(ids, d->ids, sizeof d->ids);
      return 3;
    case 1:
      ids[0] = d->ids[2];
      ids[1] = d->ids[0];
      return 2;
    default:
      tt_iccid(d->iccid, (unsigned long)i, 19);
      ids[0] = d->ids[1];
      ids[1] = d->ids[0];
      return 2;
  }
}

START_TEST(test_full_request_parses_back) {
  tsesim_request *req = NULL;
  size_t i, j, n, len;
  char *out;
  json_t *root, *devices;

  ck_assert_int_eq(tsesim_request_new(&req, "Acme \xE2\x82\xAC"), TSESIM_OK);
  ck_assert_int_eq(tsesim_request_set_service_plan(req, "Plan \"X\""), TSESIM_OK);
  for (i = 0; i < TSESIM_MAX_DEVICES_PER_REQUEST; i++) {
    tt_device d;
    tsesim_device_id ids[3];
    n = big_device(&d, ids, i);
    ck_assert_int_eq(tsesim_request_add_device(req, ids, n), TSESIM_OK);
  }
  out = to_json(req, &len);
  assert_compact(out);
  root = parse(out, len);
  ck_assert_uint_eq(json_object_size(root), 3);
  assert_json_string(json_object_get(root, "accountName"), "Acme \xE2\x82\xAC");
  assert_json_string(json_object_get(root, "servicePlan"), "Plan \"X\"");
  devices = json_object_get(root, "devices");
  ck_assert(json_is_array(devices));
  ck_assert_uint_eq(json_array_size(devices), TSESIM_MAX_DEVICES_PER_REQUEST);
  for (i = 0; i < TSESIM_MAX_DEVICES_PER_REQUEST; i++) {
    tt_device d;
    tsesim_device_id ids[3];
    json_t *dev = json_array_get(devices, i), *dids;
    static const char *const kind_names[] = {"?", "eid", "iccid", "imei", "mdn"};
    n = big_device(&d, ids, i);
    ck_assert_uint_eq(json_object_size(dev), 1);
    dids = json_object_get(dev, "deviceIds");
    ck_assert_msg(json_is_array(dids) && json_array_size(dids) == n, "device %lu",
                  (unsigned long)i);
    for (j = 0; j < n; j++) {
      json_t *id = json_array_get(dids, j);
      ck_assert_uint_eq(json_object_size(id), 2);
      assert_json_string(json_object_get(id, "kind"), kind_names[ids[j].kind]);
      assert_json_string(json_object_get(id, "id"), ids[j].id);
    }
  }
  json_decref(root);
  tsesim_free(out);
  tsesim_request_free(req);
}
END_TEST

/* ---- allocation failure ---- */

static const struct {
  int which[3];
  size_t n;
  const char *plan;
} nomem_cases[] = {
    {{0}, 1, NULL},
    {{1, 2}, 2, "Plan"},
    {{0, 1, 2}, 3, "Plan \xF0\x9F\x98\x80"},
};

START_TEST(test_alloc_failure) {
  tsesim_request *req =
      make_req("Acme", nomem_cases[_i].plan, nomem_cases[_i].which, nomem_cases[_i].n);
  char *expected = to_json(req, NULL);
  char *out = NULL;
  size_t len = 0;

  TT_FAIL_EACH_ALLOC(
      {
        out = (char *)&out;
        len = 12345;
        rc = tsesim_request_to_json(&out, &len, req);
      },
      out == NULL && len == 0,
      {
        ck_assert_str_eq(out, expected);
        ck_assert_uint_eq(len, strlen(expected));
        tsesim_free(out);
      });
  tsesim_free(expected);
  tsesim_request_free(req);
}
END_TEST

/* ---- req is left alone ---- */

START_TEST(test_does_not_change_request) {
  static const int which[] = {0, 1};
  tsesim_request *req = make_req("Acme", "Plan", which, 2);
  tsesim_device_id bad[1] = {{TSESIM_ID_MDN, "9085551234", NULL}};
  size_t live, len1, len2;
  char *first, *second, *third;

  /* leave a message behind: to_json must not clear it either */
  ck_assert_int_eq(tsesim_request_add_device(req, bad, 1), TSESIM_E_INVAL);
  live = tsesim__test_alloc_live();
  first = to_json(req, &len1);
  second = to_json(req, &len2);
  ck_assert_str_eq(first, second);
  ck_assert_uint_eq(len1, len2);
  ck_assert_uint_eq(tsesim_request_device_count(req), 2);
  ck_assert_str_eq(
      tsesim_request_errmsg(req),
      "device 2: ids[0]: kind mdn is not accepted by a download (only eid, iccid, imei)");
  tsesim_free(first);
  tsesim_free(second);
  ck_assert_uint_eq(tsesim__test_alloc_live(), live);

  /* the request goes on growing after a body was made */
  ck_assert_int_eq(tsesim_request_add_device(req, dev_c, 2), TSESIM_OK);
  third = to_json(req, NULL);
  ck_assert_str_eq(third, "{\"devices\":[" JSON_A "," JSON_B "," JSON_C
                          "],\"accountName\":\"Acme\",\"servicePlan\":\"Plan\"}");
  tsesim_free(third);
  tsesim_request_free(req);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("serialize");
  TCase *tc;

  tc = tcase_create("body");
  tcase_add_loop_test(tc, test_exact_body, 0, (int)ARRAY_LEN(exact_cases));
  tcase_add_test(tc, test_plan_absent_after_clear);
  tcase_add_loop_test(tc, test_escaping_round_trip, 0, (int)ARRAY_LEN(escape_cases));
  tcase_add_test(tc, test_does_not_change_request);
  suite_add_tcase(s, tc);

  tc = tcase_create("full");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_full_request_parses_back);
  suite_add_tcase(s, tc);

  tc = tcase_create("nomem");
  tcase_add_loop_test(tc, test_alloc_failure, 0, (int)ARRAY_LEN(nomem_cases));
  suite_add_tcase(s, tc);

  return s;
}

TT_MAIN(suite)
