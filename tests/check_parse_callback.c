/*
 * check_parse_callback.c - tsesim_callback_parse: the DeviceProfileService
 * callback body (reference page example and every variant ThingSpace sends)
 * into a tsesim_callback, and the malformed bodies it must refuse.
 *
 * Every case is parsed from an exact-size heap copy of the body (no NUL after
 * it; freed and overwritten before anything is checked) and again from a copy
 * that ends exactly at a PROT_NONE page (unmapped before anything is checked),
 * once with an errbuf and once with errbuf NULL.
 */
#define _DEFAULT_SOURCE 1
#include <jansson.h>
#include <limits.h>

#include "tsesim_test.h"
#include "tt_place.h"

#define AUTO_LEN ((size_t)-1) /* the body's strlen */
#define MAX_IDS 8

/* Reads TESTS_DATA_DIR/callbacks/<name> into *out (malloc'd, not terminated). */
static char *load_file(const char *name, size_t *out_len) {
  char path[512];
  FILE *f;
  long n;
  char *buf;
  snprintf(path, sizeof path, "%s/callbacks/%s", TESTS_DATA_DIR, name);
  f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  ck_assert_int_gt(n, 0);
  rewind(f);
  buf = malloc((size_t)n);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *out_len = (size_t)n;
  return buf;
}

/* ------------------------------------------------------------------------ */
/* Valid callbacks: every field of the result. */

typedef struct exp_id {
  tsesim_id_kind kind;
  const char *kind_name;
  const char *id;
} exp_id;

typedef struct valid_case {
  const char *name;
  const char *body; /* or NULL and file */
  const char *file;
  const char *request_id;
  size_t n_ids;
  exp_id ids[MAX_IDS];
  int has_profile;
  size_t n_pids;
  exp_id pids[MAX_IDS];
  const char *state, *profile_status, *profile_role;
  tsesim_profile_role role;
  const char *status;
  tsesim_status status_code;
  long callback_count, max_callback_threshold;
  const char *fault_code, *fault_string;
  const char *username, *password;
} valid_case;

#define ID(k, kn, i) \
  { TSESIM_ID_##k, kn, i }

static const valid_case valid_cases[] = {
    {.name = "reference page example",
     .file = "reference_example.json",
     .request_id = "d1f08526-5443-4054-9a29-4456490ea9f8",
     .n_ids = 4,
     .ids = {ID(ICCID, "Iccid", "20-digit ICCID"), ID(IMEI, "Imei", "15-digit IMEI"),
             ID(EID, "Eid", "32-digit EID"), ID(MDN, "mdn", "10-digit phone number")},
     .has_profile = 1,
     .n_pids = 4,
     .pids = {ID(ICCID, "Iccid", "20-digit ICCID"), ID(IMEI, "Imei", "15-digit IMEI"),
              ID(EID, "Eid", "32-digit EID"), ID(MDN, "mdn", "10-digit phone number")},
     .state = "ACTIVE",
     .profile_status = "ENABLE",
     .profile_role = "LOCAL",
     .role = TSESIM_ROLE_LOCAL,
     .status = "SUCCESS",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = 1,
     .max_callback_threshold = 4},

    {.name = "kinds in any case, unknown kinds kept by name",
     .body =
         "{\"requestId\":\"r-kinds\",\"deviceIds\":["
         "{\"kind\":\"IMEI\",\"id\":\"352099001761481\"},"
         "{\"kind\":\"eid\",\"id\":\"89049032000001000000000000000042\"},"
         "{\"kind\":\"mdn\",\"id\":\"5555550100\"},"
         "{\"kind\":\"EID\",\"id\":\"89049032000001000000000000000043\"},"
         "{\"kind\":\"iCcId\",\"id\":\"89014103211118510720\"},"
         "{\"kind\":\"msisdn\",\"id\":\"15555550100\"},"
         "{\"kind\":\"\",\"id\":\"\"},"
         "{\"kind\":\"eid \",\"id\":\"x\"}],"
         "\"deviceResponse\":{\"deviceProfileResponse\":{\"deviceIdentifierCollection\":["
         "{\"kind\":\"Mdn\",\"id\":\"5555550100\"},{\"kind\":\"IMSI\",\"id\":\"310410123456789\"},"
         "{\"kind\":\"ICCID\",\"id\":\"8901410321111851072\"}]}},"
         "\"status\":\"Success\"}",
     .request_id = "r-kinds",
     .n_ids = 8,
     .ids = {ID(IMEI, "IMEI", "352099001761481"),
             ID(EID, "eid", "89049032000001000000000000000042"), ID(MDN, "mdn", "5555550100"),
             ID(EID, "EID", "89049032000001000000000000000043"),
             ID(ICCID, "iCcId", "89014103211118510720"), ID(UNKNOWN, "msisdn", "15555550100"),
             ID(UNKNOWN, "", ""), ID(UNKNOWN, "eid ", "x")},
     .has_profile = 1,
     .n_pids = 3,
     .pids = {ID(MDN, "Mdn", "5555550100"), ID(UNKNOWN, "IMSI", "310410123456789"),
              ID(ICCID, "ICCID", "8901410321111851072")},
     .role = TSESIM_ROLE_OTHER,
     .status = "Success",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "counts as digit strings",
     .body = "{\"requestId\":\"r-str\",\"status\":\"SUCCESS\",\"callbackCount\":\"2\","
             "\"maxCallbackThreshold\":\"4\"}",
     .request_id = "r-str",
     .status = "SUCCESS",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = 2,
     .max_callback_threshold = 4},

    {.name = "counts as digit strings: zero and leading zeros",
     .body = "{\"requestId\":\"r-str0\",\"callbackCount\":\"0\",\"maxCallbackThreshold\":\"007\"}",
     .request_id = "r-str0",
     .callback_count = 0,
     .max_callback_threshold = 7},

    {.name = "counts as numbers: zero and a large one",
     .body = "{\"requestId\":\"r-num\",\"callbackCount\":0,\"maxCallbackThreshold\":2147483647}",
     .request_id = "r-num",
     .callback_count = 0,
     .max_callback_threshold = 2147483647L},

    {.name = "faultResponse instead of deviceResponse, status Failed",
     .body = "{\"requestId\":\"r-fault\",\"deviceIds\":[{\"kind\":\"eid\",\"id\":\"E\"},"
             "{\"kind\":\"iccid\",\"id\":\"I\"}],\"faultResponse\":{\"faultcode\":"
             "\"DEVICE_NOT_REACHABLE\",\"faultstring\":\"The device did not answer\"},"
             "\"status\":\"Failed\",\"callbackCount\":4,\"maxCallbackThreshold\":4}",
     .request_id = "r-fault",
     .n_ids = 2,
     .ids = {ID(EID, "eid", "E"), ID(ICCID, "iccid", "I")},
     .status = "Failed",
     .status_code = TSESIM_STATUS_FAILED,
     .callback_count = 4,
     .max_callback_threshold = 4,
     .fault_code = "DEVICE_NOT_REACHABLE",
     .fault_string = "The device did not answer"},

    {.name = "status Warning, role LEAD, counts as strings",
     .body = "{\"requestId\":\"r-warn\",\"deviceIds\":[{\"kind\":\"imei\",\"id\":\"M\"}],"
             "\"deviceResponse\":{\"deviceProfileResponse\":{\"state\":\"PENDING\","
             "\"profileStatus\":\"DOWNLOAD\",\"profileRole\":\"LEAD\"}},"
             "\"status\":\"Warning\",\"callbackCount\":\"1\",\"maxCallbackThreshold\":\"4\"}",
     .request_id = "r-warn",
     .n_ids = 1,
     .ids = {ID(IMEI, "imei", "M")},
     .has_profile = 1,
     .state = "PENDING",
     .profile_status = "DOWNLOAD",
     .profile_role = "LEAD",
     .role = TSESIM_ROLE_LEAD,
     .status = "Warning",
     .status_code = TSESIM_STATUS_WARNING,
     .callback_count = 1,
     .max_callback_threshold = 4},

    {.name = "unknown status OTHER, role Default",
     .body = "{\"requestId\":\"r-other\",\"deviceResponse\":{\"deviceProfileResponse\":"
             "{\"profileRole\":\"Default\"}},\"status\":\"OTHER\"}",
     .request_id = "r-other",
     .has_profile = 1,
     .profile_role = "Default",
     .role = TSESIM_ROLE_DEFAULT,
     .status = "OTHER",
     .status_code = TSESIM_STATUS_OTHER,
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "status in lower case, role local",
     .body = "{\"requestId\":\"r-lower\",\"deviceResponse\":{\"deviceProfileResponse\":"
             "{\"state\":\"active\",\"profileRole\":\"local\"}},\"status\":\"failed\"}",
     .request_id = "r-lower",
     .has_profile = 1,
     .state = "active",
     .profile_role = "local",
     .role = TSESIM_ROLE_LOCAL,
     .status = "failed",
     .status_code = TSESIM_STATUS_FAILED,
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "unknown role and empty status are data",
     .body = "{\"requestId\":\"r-role\",\"deviceResponse\":{\"deviceProfileResponse\":"
             "{\"profileRole\":\"SECONDARY\",\"profileStatus\":\"\"}},\"status\":\"\"}",
     .request_id = "r-role",
     .has_profile = 1,
     .profile_status = "",
     .profile_role = "SECONDARY",
     .role = TSESIM_ROLE_OTHER,
     .status = "",
     .status_code = TSESIM_STATUS_OTHER,
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "status SUCCESS with a prefix match is not SUCCESS",
     .body = "{\"requestId\":\"r-succ\",\"status\":\"SUCCESSFUL\"}",
     .request_id = "r-succ",
     .status = "SUCCESSFUL",
     .status_code = TSESIM_STATUS_OTHER,
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "echoed username and password, with escapes",
     .body = "{\"requestId\":\"r-cred\",\"status\":\"SUCCESS\",\"username\":\"listener-user\","
             "\"password\":\"s3c\\\"r\\\\et/\\t\"}",
     .request_id = "r-cred",
     .status = "SUCCESS",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = -1,
     .max_callback_threshold = -1,
     .username = "listener-user",
     .password = "s3c\"r\\et/\t"},

    {.name = "unknown fields at every level ignored",
     .file = "unknown_fields.json",
     .request_id = "r-unknown",
     .n_ids = 1,
     .ids = {ID(EID, "eid", "E1")},
     .has_profile = 1,
     .n_pids = 1,
     .pids = {ID(ICCID, "iccid", "I1")},
     .state = "ACTIVE",
     .profile_status = "ENABLE",
     .profile_role = "LEAD",
     .role = TSESIM_ROLE_LEAD,
     .status = "SUCCESS",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = 3,
     .max_callback_threshold = 4,
     .fault_code = "W1",
     .fault_string = "soft",
     .username = "u",
     .password = "p"},

    {.name = "deviceResponse without deviceProfileResponse",
     .body = "{\"requestId\":\"r-noprof\",\"deviceIds\":[{\"kind\":\"eid\",\"id\":\"E\"}],"
             "\"deviceResponse\":{\"somethingElse\":{\"state\":1}},\"status\":\"SUCCESS\","
             "\"callbackCount\":2}",
     .request_id = "r-noprof",
     .n_ids = 1,
     .ids = {ID(EID, "eid", "E")},
     .status = "SUCCESS",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = 2,
     .max_callback_threshold = -1},

    {.name = "empty deviceIds array, empty deviceProfileResponse",
     .body = "{\"requestId\":\"r-empty\",\"deviceIds\":[],\"deviceResponse\":"
             "{\"deviceProfileResponse\":{\"deviceIdentifierCollection\":[]}}}",
     .request_id = "r-empty",
     .has_profile = 1,
     .role = TSESIM_ROLE_OTHER,
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "whitespace and newlines everywhere",
     .body = "\r\n\t {\r\n  \"requestId\" \t:\r\n \"r-ws\" ,\n\n\"deviceIds\" : [ \n"
             "  { \"kind\" : \"Eid\" , \"id\" : \"E 1\" } \n ] ,\t\"status\"\n:\n\"Warning\" ,"
             "\"callbackCount\" :\t\"3\"\r\n}\n\n \t",
     .request_id = "r-ws",
     .n_ids = 1,
     .ids = {ID(EID, "Eid", "E 1")},
     .status = "Warning",
     .status_code = TSESIM_STATUS_WARNING,
     .callback_count = 3,
     .max_callback_threshold = -1},

    {.name = "unicode escapes decoded to UTF-8",
     .body = "{\"requestId\":\"r-\\u00e9\",\"deviceIds\":[{\"kind\":\"\\u0045ID\","
             "\"id\":\"\\u0031\\u0032\"}],\"deviceResponse\":{\"deviceProfileResponse\":"
             "{\"state\":\"\\u00e9tat\",\"profileRole\":\"\\u004cEAD\"}},"
             "\"faultResponse\":{\"faultstring\":\"ok \\ud83d\\ude00\"},"
             "\"username\":\"\xc3\xa9l\xc3\xa8ve\",\"password\":\"\\u20ac\"}",
     .request_id = "r-\xc3\xa9",
     .n_ids = 1,
     .ids = {ID(EID, "EID", "12")},
     .has_profile = 1,
     .state = "\xc3\xa9tat",
     .profile_role = "LEAD",
     .role = TSESIM_ROLE_LEAD,
     .callback_count = -1,
     .max_callback_threshold = -1,
     .fault_string = "ok \xf0\x9f\x98\x80",
     .username = "\xc3\xa9l\xc3\xa8ve",
     .password = "\xe2\x82\xac"},

    {.name = "minimal",
     .body = "{\"requestId\":\"x\"}",
     .request_id = "x",
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "optional members null: absent",
     .body = "{\"requestId\":\"n\",\"deviceIds\":null,\"deviceResponse\":null,"
             "\"status\":null,\"callbackCount\":null,\"maxCallbackThreshold\":null,"
             "\"faultResponse\":null,\"username\":null,\"password\":null}",
     .request_id = "n",
     .callback_count = -1,
     .max_callback_threshold = -1},

    {.name = "null inside deviceResponse and faultResponse: absent",
     .body = "{\"requestId\":\"n2\",\"deviceResponse\":{\"deviceProfileResponse\":"
             "{\"deviceIdentifierCollection\":null,\"state\":null,\"profileStatus\":\"ENABLE\","
             "\"profileRole\":null}},\"faultResponse\":{\"faultcode\":null,"
             "\"faultstring\":\"late\"},\"status\":\"Warning\"}",
     .request_id = "n2",
     .has_profile = 1,
     .profile_status = "ENABLE",
     .role = TSESIM_ROLE_OTHER,
     .status = "Warning",
     .status_code = TSESIM_STATUS_WARNING,
     .callback_count = -1,
     .max_callback_threshold = -1,
     .fault_string = "late"},

    {.name = "keys in another order, requestId last, both deviceResponse and fault",
     .body = "{\"maxCallbackThreshold\":4,\"callbackCount\":2,\"status\":\"failed\","
             "\"faultResponse\":{\"faultstring\":\"timeout\",\"faultcode\":\"T1\"},"
             "\"deviceResponse\":{\"deviceProfileResponse\":{\"profileRole\":\"lead\","
             "\"profileStatus\":\"ENABLE\",\"state\":\"ACTIVE\",\"deviceIdentifierCollection\":"
             "[{\"id\":\"I\",\"kind\":\"ICCID\"},{\"id\":\"E\",\"kind\":\"eid\"}]}},"
             "\"deviceIds\":[{\"id\":\"E\",\"kind\":\"EID\"}],\"requestId\":\"r-order\"}",
     .request_id = "r-order",
     .n_ids = 1,
     .ids = {ID(EID, "EID", "E")},
     .has_profile = 1,
     .n_pids = 2,
     .pids = {ID(ICCID, "ICCID", "I"), ID(EID, "eid", "E")},
     .state = "ACTIVE",
     .profile_status = "ENABLE",
     .profile_role = "lead",
     .role = TSESIM_ROLE_LEAD,
     .status = "failed",
     .status_code = TSESIM_STATUS_FAILED,
     .callback_count = 2,
     .max_callback_threshold = 4,
     .fault_code = "T1",
     .fault_string = "timeout"},

    {.name = "deviceProfileResponse without profileRole",
     .body = "{\"requestId\":\"r-norole\",\"deviceResponse\":{\"deviceProfileResponse\":"
             "{\"state\":\"INACTIVE\",\"profileStatus\":\"DISABLE\"}},\"status\":\"SUCCESS\"}",
     .request_id = "r-norole",
     .has_profile = 1,
     .state = "INACTIVE",
     .profile_status = "DISABLE",
     .role = TSESIM_ROLE_OTHER,
     .status = "SUCCESS",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = -1,
     .max_callback_threshold = -1},
};

#define N_VALID ((int)(sizeof valid_cases / sizeof valid_cases[0]))

static void expect_ids(const char *ctx, const char *field, const tsesim_device_id *got,
                       size_t n_got, const exp_id *want, size_t n_want) {
  size_t i;
  char what[64];
  ck_assert_msg(n_got == n_want, "%s: %s: %lu ids, expected %lu", ctx, field, (unsigned long)n_got,
                (unsigned long)n_want);
  if (n_want) ck_assert_msg(got != NULL, "%s: %s: NULL array", ctx, field);
  for (i = 0; i < n_want; i++) {
    ck_assert_msg(got[i].kind == want[i].kind, "%s: %s[%lu].kind: %d, expected %d", ctx, field,
                  (unsigned long)i, (int)got[i].kind, (int)want[i].kind);
    snprintf(what, sizeof what, "%s[%lu].kind_name", field, (unsigned long)i);
    tt_expect_str(ctx, what, got[i].kind_name, want[i].kind_name);
    snprintf(what, sizeof what, "%s[%lu].id", field, (unsigned long)i);
    tt_expect_str(ctx, what, got[i].id, want[i].id);
  }
}

static void expect_callback(const char *ctx, const tsesim_callback *cb, const valid_case *c) {
  ck_assert_msg(cb != NULL, "%s: no callback", ctx);
  tt_expect_str(ctx, "request_id", cb->request_id, c->request_id);
  expect_ids(ctx, "device_ids", cb->device_ids, cb->n_device_ids, c->ids, c->n_ids);
  if (!c->has_profile) {
    ck_assert_msg(cb->profile == NULL, "%s: profile: expected NULL", ctx);
  } else {
    const tsesim_profile_response *p = cb->profile;
    ck_assert_msg(p != NULL, "%s: profile: NULL", ctx);
    expect_ids(ctx, "profile.ids", p->ids, p->n_ids, c->pids, c->n_pids);
    tt_expect_str(ctx, "profile.state", p->state, c->state);
    tt_expect_str(ctx, "profile.profile_status", p->profile_status, c->profile_status);
    tt_expect_str(ctx, "profile.profile_role", p->profile_role, c->profile_role);
    ck_assert_msg(p->role == c->role, "%s: profile.role: %d, expected %d", ctx, (int)p->role,
                  (int)c->role);
  }
  tt_expect_str(ctx, "status", cb->status, c->status);
  ck_assert_msg(cb->status_code == c->status_code, "%s: status_code: %d, expected %d", ctx,
                (int)cb->status_code, (int)c->status_code);
  ck_assert_msg(cb->callback_count == c->callback_count, "%s: callback_count: %ld, expected %ld",
                ctx, cb->callback_count, c->callback_count);
  ck_assert_msg(cb->max_callback_threshold == c->max_callback_threshold,
                "%s: max_callback_threshold: %ld, expected %ld", ctx, cb->max_callback_threshold,
                c->max_callback_threshold);
  tt_expect_str(ctx, "fault_code", cb->fault_code, c->fault_code);
  tt_expect_str(ctx, "fault_string", cb->fault_string, c->fault_string);
  tt_expect_str(ctx, "username", cb->username, c->username);
  tt_expect_str(ctx, "password", cb->password, c->password);
}

/* The body of a valid case, malloc'd. */
static char *valid_body(const valid_case *c, size_t *len) {
  char *buf;
  if (c->file) return load_file(c->file, len);
  *len = strlen(c->body);
  buf = malloc(*len ? *len : 1);
  ck_assert_ptr_nonnull(buf);
  memcpy(buf, c->body, *len);
  return buf;
}

START_TEST(test_valid) {
  const valid_case *c = &valid_cases[_i];
  size_t len;
  char *src = valid_body(c, &len);
  int where, with_errbuf;

  for (where = PLACE_HEAP; where <= PLACE_GUARD; where++) {
    for (with_errbuf = 0; with_errbuf <= 1; with_errbuf++) {
      char errbuf[TSESIM_ERRBUF_SIZE] = "";
      char ctx[160];
      size_t live0 = tsesim__test_alloc_live();
      tsesim_callback *cb = (tsesim_callback *)&cb; /* not NULL before the call */
      placed p;
      tsesim_code rc;
      const char *body = body_put(&p, (place)where, src, len);

      snprintf(ctx, sizeof ctx, "%s (%s, errbuf %s)", c->name,
               where == PLACE_HEAP ? "heap" : "at a PROT_NONE page", with_errbuf ? "set" : "NULL");
      rc = tsesim_callback_parse(&cb, body, len, with_errbuf ? errbuf : NULL);
      body_drop(&p); /* the callback must not point into the body */
      ck_assert_msg(rc == TSESIM_OK, "%s: %s: %s", ctx, tsesim_code_name(rc), errbuf);
      expect_callback(ctx, cb, c);
      ck_assert_uint_gt(tsesim__test_alloc_live(), live0);
      tsesim_callback_free(cb); /* one call frees it all */
      ck_assert_msg(tsesim__test_alloc_live() == live0, "%s: %lu bytes left after free", ctx,
                    (unsigned long)(tsesim__test_alloc_live() - live0));
    }
  }
  free(src);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Malformed callbacks: TSESIM_E_PARSE (or E_INVAL), *out NULL, the reason. */

typedef enum match { EXACT, PREFIX } match;

typedef struct bad_case {
  const char *name;
  const char *body; /* NULL: the body pointer passed is NULL */
  size_t len;       /* AUTO_LEN: strlen(body) */
  tsesim_code rc;
  match how;
  const char *msg;  /* the whole errbuf (EXACT) or its beginning (PREFIX) */
  const char *also; /* a further substring the message holds, or NULL */
} bad_case;

#define RID "\"requestId\":\"r\""

static const bad_case bad_cases[] = {
    {"invalid JSON, line and column", "{\n  \"requestId\": \"x\",\n  \"status\": tru\n}", AUTO_LEN,
     TSESIM_E_PARSE, PREFIX, "invalid JSON at line 3, column 15 (byte offset 37): ", "'tru'"},
    {"trailing comma", "{" RID ",}", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column 18 (byte offset 18): ", "'}'"},
    {"truncated body", "{\"requestId\":\"abc\"", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column 18 (byte offset 18): ", "end of file"},
    {"truncated inside a string", "{\"requestId\":\"abc", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column ", NULL},
    {"truncated after a number", "{" RID ",\"callbackCount\":12", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column 35 (byte offset 35): ", "end of file"},
    {"truncated inside a UTF-8 sequence", "{\"requestId\":\"\xc3", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column ", NULL},
    {"truncated inside a \\u escape", "{\"requestId\":\"\\u00", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column ", NULL},
    {"truncated after a backslash", "{\"requestId\":\"a\\", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column ", NULL},
    {"truncated inside a literal", "{" RID ",\"x\":tr", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column ", NULL},
    {"lone surrogate escape", "{\"requestId\":\"\\ud83d\"}", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column ", NULL},
    {"text after the object", "{" RID "} x", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column 19 (byte offset 19): ", NULL},
    {"raw NUL byte inside a string", "{\"requestId\":\"a\0b\"}", 20, TSESIM_E_PARSE, EXACT,
     "invalid JSON: NUL byte at byte offset 15", NULL},
    {"raw NUL byte after the object", "{" RID "}\0", 18, TSESIM_E_PARSE, EXACT,
     "invalid JSON: NUL byte at byte offset 17", NULL},
    {"\\u0000 in a string", "{\"requestId\":\"a\\u0000b\"}", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column 23 (byte offset 23): ", "\\u0000"},
    {"invalid UTF-8", "{\"requestId\":\"\xff\"}", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 1, column 14 (byte offset 14): ", NULL},
    {"duplicate key at top level", "{\"requestId\":\"a\",\"requestId\":\"b\"}", AUTO_LEN,
     TSESIM_E_PARSE, PREFIX,
     "duplicate key at line 1, column 28 (byte offset 28): ", "\"requestId\""},
    {"duplicate key nested",
     "{" RID ",\"faultResponse\":{\"faultcode\":\"1\",\"faultcode\":\"2\"}}", AUTO_LEN,
     TSESIM_E_PARSE, PREFIX,
     "duplicate key at line 1, column 61 (byte offset 61): ", "\"faultcode\""},
    /* jansson keeps one of two equal keys when it is not asked to refuse
       them; the check against the body must still see both */
    {"duplicate key with the same value", "{\"requestId\":\"a\",\"requestId\":\"a\"}", AUTO_LEN,
     TSESIM_E_PARSE, PREFIX,
     "duplicate key at line 1, column 28 (byte offset 28): ", "\"requestId\""},
    {"duplicate key, the same value, last member",
     "{" RID ",\"status\":\"SUCCESS\",\"callbackCount\":1,\"callbackCount\":1}", AUTO_LEN,
     TSESIM_E_PARSE, PREFIX, "duplicate key at line 1, column ", "\"callbackCount\""},
    {"duplicate key in a device id",
     "{" RID ",\"deviceIds\":[{\"kind\":\"eid\",\"id\":\"1\",\"id\":\"2\"}]}", AUTO_LEN,
     TSESIM_E_PARSE, PREFIX, "duplicate key at line 1, column 57 (byte offset 57): ", "\"id\""},
    {"top level an array", "[{" RID "}]", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "top level: expected an object, got an array", NULL},
    {"top level a string", "\"requestId\"", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "top level: expected an object, got a string", NULL},
    {"top level a number", "42", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "top level: expected an object, got an integer", NULL},
    {"top level null", "null", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "top level: expected an object, got null", NULL},
    {"no requestId", "{\"status\":\"SUCCESS\",\"callbackCount\":1}", AUTO_LEN, TSESIM_E_PARSE,
     EXACT, "requestId: missing", NULL},
    {"requestId in another case only", "{\"requestid\":\"r\"}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "requestId: missing", NULL},
    {"requestId a number", "{\"requestId\":12}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "requestId: expected a string, got an integer", NULL},
    {"requestId null", "{\"requestId\":null}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "requestId: expected a string, got null", NULL},
    {"requestId empty", "{\"requestId\":\"\"}", AUTO_LEN, TSESIM_E_PARSE, EXACT, "requestId: empty",
     NULL},
    {"deviceIds not an array", "{" RID ",\"deviceIds\":{\"kind\":\"eid\",\"id\":\"1\"}}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT, "deviceIds: expected an array, got an object", NULL},
    {"deviceIds element not an object",
     "{" RID ",\"deviceIds\":[{\"kind\":\"eid\",\"id\":\"1\"},\"2\"]}", AUTO_LEN, TSESIM_E_PARSE,
     EXACT, "deviceIds[1]: expected an object, got a string", NULL},
    {"deviceIds element missing id", "{" RID ",\"deviceIds\":[{\"kind\":\"eid\"}]}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT, "deviceIds[0].id: missing", NULL},
    {"deviceIds element missing kind", "{" RID ",\"deviceIds\":[{\"id\":\"1\"}]}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT, "deviceIds[0].kind: missing", NULL},
    {"deviceIds kind a number", "{" RID ",\"deviceIds\":[{\"kind\":1,\"id\":\"1\"}]}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT, "deviceIds[0].kind: expected a string, got an integer", NULL},
    {"deviceIdentifierCollection[2].id a number",
     "{" RID ",\"deviceResponse\":{\"deviceProfileResponse\":{\"deviceIdentifierCollection\":["
     "{\"kind\":\"eid\",\"id\":\"1\"},{\"kind\":\"iccid\",\"id\":\"2\"},{\"kind\":\"imei\",\"id\":"
     "3}]}}}",
     AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "deviceResponse.deviceProfileResponse.deviceIdentifierCollection[2].id: expected a string, "
     "got an integer",
     NULL},
    {"deviceIdentifierCollection not an array",
     "{" RID
     ",\"deviceResponse\":{\"deviceProfileResponse\":{\"deviceIdentifierCollection\":\"x\"}}}",
     AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "deviceResponse.deviceProfileResponse.deviceIdentifierCollection: expected an array, got a "
     "string",
     NULL},
    {"deviceResponse not an object",
     "{" RID ",\"deviceResponse\":[{\"deviceProfileResponse\":{}}]}", AUTO_LEN, TSESIM_E_PARSE,
     EXACT, "deviceResponse: expected an object, got an array", NULL},
    {"deviceProfileResponse not an object",
     "{" RID ",\"deviceResponse\":{\"deviceProfileResponse\":\"ACTIVE\"}}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT,
     "deviceResponse.deviceProfileResponse: expected an object, got a string", NULL},
    {"state a number", "{" RID ",\"deviceResponse\":{\"deviceProfileResponse\":{\"state\":1}}}",
     AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "deviceResponse.deviceProfileResponse.state: expected a string, got an integer", NULL},
    {"profileRole a boolean",
     "{" RID ",\"deviceResponse\":{\"deviceProfileResponse\":{\"profileRole\":true}}}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT,
     "deviceResponse.deviceProfileResponse.profileRole: expected a string, got a boolean", NULL},
    {"status a number", "{" RID ",\"status\":200}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "status: expected a string, got an integer", NULL},
    {"callbackCount a real", "{" RID ",\"callbackCount\":1.0}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "callbackCount: expected a non-negative integer or digit string, got a real number", NULL},
    {"callbackCount negative", "{" RID ",\"callbackCount\":-1}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "callbackCount: expected a non-negative integer or digit string, got a negative integer",
     NULL},
    {"callbackCount \"12a\"", "{" RID ",\"callbackCount\":\"12a\"}", AUTO_LEN, TSESIM_E_PARSE,
     EXACT, "callbackCount: expected a non-negative integer or digit string, got \"12a\"", NULL},
    {"callbackCount a boolean", "{" RID ",\"callbackCount\":true}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "callbackCount: expected a non-negative integer or digit string, got a boolean", NULL},
    {"maxCallbackThreshold an empty string", "{" RID ",\"maxCallbackThreshold\":\"\"}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT,
     "maxCallbackThreshold: expected a non-negative integer or digit string, got an empty string",
     NULL},
    {"maxCallbackThreshold \"-4\"", "{" RID ",\"maxCallbackThreshold\":\"-4\"}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT,
     "maxCallbackThreshold: expected a non-negative integer or digit string, got \"-4\"", NULL},
    {"maxCallbackThreshold \" 4\"", "{" RID ",\"maxCallbackThreshold\":\" 4\"}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT,
     "maxCallbackThreshold: expected a non-negative integer or digit string, got \" 4\"", NULL},
    {"callbackCount a digit string beyond long",
     "{" RID ",\"callbackCount\":\"99999999999999999999999\"}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "callbackCount: expected a non-negative integer or digit string, got "
     "\"99999999999999999999999\"",
     NULL},
    {"callbackCount a string with a control character", "{" RID ",\"callbackCount\":\"1\\n\"}",
     AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "callbackCount: expected a non-negative integer or digit string, got \"1\\x0A\"", NULL},
    {"callbackCount an integer beyond 64 bits", "{" RID ",\"callbackCount\":99999999999999999999}",
     AUTO_LEN, TSESIM_E_PARSE, PREFIX, "invalid JSON at line 1, column ", "too big integer"},
    {"faultResponse not an object", "{" RID ",\"faultResponse\":\"boom\"}", AUTO_LEN,
     TSESIM_E_PARSE, EXACT, "faultResponse: expected an object, got a string", NULL},
    {"faultResponse.faultcode not a string", "{" RID ",\"faultResponse\":{\"faultcode\":500}}",
     AUTO_LEN, TSESIM_E_PARSE, EXACT, "faultResponse.faultcode: expected a string, got an integer",
     NULL},
    {"faultResponse.faultstring an array", "{" RID ",\"faultResponse\":{\"faultstring\":[]}}",
     AUTO_LEN, TSESIM_E_PARSE, EXACT, "faultResponse.faultstring: expected a string, got an array",
     NULL},
    {"username not a string", "{" RID ",\"username\":{\"name\":\"u\"}}", AUTO_LEN, TSESIM_E_PARSE,
     EXACT, "username: expected a string, got an object", NULL},
    {"password not a string", "{" RID ",\"password\":1234}", AUTO_LEN, TSESIM_E_PARSE, EXACT,
     "password: expected a string, got an integer", NULL},
    {"empty body (len 0)", "{" RID "}", 0, TSESIM_E_PARSE, EXACT, "invalid JSON: empty body", NULL},
    {"whitespace only", " \r\n\t", AUTO_LEN, TSESIM_E_PARSE, PREFIX,
     "invalid JSON at line 2, column ", NULL},
    {"body NULL, len 0", NULL, 0, TSESIM_E_PARSE, EXACT, "invalid JSON: empty body", NULL},
    {"body NULL, len > 0", NULL, 10, TSESIM_E_INVAL, EXACT, "body is NULL", NULL},
};

#define N_BAD ((int)(sizeof bad_cases / sizeof bad_cases[0]))

static void expect_msg(const char *ctx, const char *errbuf, const bad_case *c) {
  ck_assert_msg(memchr(errbuf, '\0', TSESIM_ERRBUF_SIZE) != NULL, "%s: errbuf not terminated", ctx);
  if (c->how == EXACT)
    ck_assert_msg(strcmp(errbuf, c->msg) == 0, "%s: message \"%s\", expected \"%s\"", ctx, errbuf,
                  c->msg);
  else
    ck_assert_msg(strncmp(errbuf, c->msg, strlen(c->msg)) == 0,
                  "%s: message \"%s\", expected it to begin \"%s\"", ctx, errbuf, c->msg);
  if (c->also)
    ck_assert_msg(strstr(errbuf, c->also) != NULL, "%s: message \"%s\" lacks \"%s\"", ctx, errbuf,
                  c->also);
}

START_TEST(test_malformed) {
  const bad_case *c = &bad_cases[_i];
  size_t len = c->len == AUTO_LEN ? strlen(c->body) : c->len;
  int where, with_errbuf;

  for (where = PLACE_HEAP; where <= PLACE_GUARD; where++) {
    for (with_errbuf = 0; with_errbuf <= 1; with_errbuf++) {
      char errbuf[TSESIM_ERRBUF_SIZE];
      char ctx[160];
      size_t live0 = tsesim__test_alloc_live();
      tsesim_callback *cb = (tsesim_callback *)&cb;
      placed p;
      tsesim_code rc;
      const char *body = NULL;

      if (c->body) body = body_put(&p, (place)where, c->body, len);
      memset(errbuf, 0x7f, sizeof errbuf);
      snprintf(ctx, sizeof ctx, "%s (%s, errbuf %s)", c->name,
               where == PLACE_HEAP ? "heap" : "at a PROT_NONE page", with_errbuf ? "set" : "NULL");
      rc = tsesim_callback_parse(&cb, body, len, with_errbuf ? errbuf : NULL);
      if (c->body) body_drop(&p);
      ck_assert_msg(rc == c->rc, "%s: %s, expected %s", ctx, tsesim_code_name(rc),
                    tsesim_code_name(c->rc));
      ck_assert_msg(cb == NULL, "%s: *out not NULL", ctx);
      ck_assert_msg(tsesim__test_alloc_live() == live0, "%s: leaked", ctx);
      if (with_errbuf) expect_msg(ctx, errbuf, c);
    }
  }
}
END_TEST

/* The largest count, LONG_MAX, as a number and as a digit string; one more
 * as a digit string is refused. */
START_TEST(test_count_limits) {
  char body[192], errbuf[TSESIM_ERRBUF_SIZE] = "", want[TSESIM_ERRBUF_SIZE];
  char digits[32];
  tsesim_callback *cb;
  size_t i;
  int n;

  snprintf(digits, sizeof digits, "%ld", LONG_MAX);
  n = snprintf(body, sizeof body,
               "{\"requestId\":\"r\",\"callbackCount\":\"%s\",\"maxCallbackThreshold\":%s}", digits,
               digits);
  ck_assert_int_eq(tsesim_callback_parse(&cb, body, (size_t)n, errbuf), TSESIM_OK);
  ck_assert_int_eq(cb->callback_count, LONG_MAX);
  ck_assert_int_eq(cb->max_callback_threshold, LONG_MAX);
  tsesim_callback_free(cb);

  /* LONG_MAX + 1 in decimal: with a 32- or 64-bit long, LONG_MAX ends in 7,
   * so adding one only changes the last digit. */
  i = strlen(digits) - 1;
  ck_assert_int_eq(digits[i], '7');
  digits[i] = '8';
  n = snprintf(body, sizeof body, "{\"requestId\":\"r\",\"callbackCount\":\"%s\"}", digits);
  ck_assert_int_eq(tsesim_callback_parse(&cb, body, (size_t)n, errbuf), TSESIM_E_PARSE);
  ck_assert_ptr_null(cb);
  snprintf(want, sizeof want,
           "callbackCount: expected a non-negative integer or digit string, got \"%s\"", digits);
  ck_assert_str_eq(errbuf, want);
}
END_TEST

START_TEST(test_out_null) {
  char errbuf[TSESIM_ERRBUF_SIZE] = "";
  static const char body[] = "{\"requestId\":\"x\"}";
  ck_assert_int_eq(tsesim_callback_parse(NULL, body, sizeof body - 1, errbuf), TSESIM_E_INVAL);
  ck_assert_str_eq(errbuf, "out is NULL");
  ck_assert_int_eq(tsesim_callback_parse(NULL, body, sizeof body - 1, NULL), TSESIM_E_INVAL);
  tsesim_callback_free(NULL); /* a no-op */
}
END_TEST

/* Every prefix of each valid callback that stops short of its closing brace,
 * ending at a PROT_NONE page: refused as invalid JSON, never read past (cuts
 * fall inside strings, escapes, UTF-8 sequences, numbers and literals). */
START_TEST(test_every_truncation_at_guard_page) {
  const valid_case *c = &valid_cases[_i];
  size_t len, cut, end;
  char *src = valid_body(c, &len);
  for (end = len; end > 0 && src[end - 1] != '}'; end--) continue;
  ck_assert_uint_gt(end, 0);
  for (cut = 0; cut < end; cut++) {
    char errbuf[TSESIM_ERRBUF_SIZE] = "";
    tsesim_callback *cb = (tsesim_callback *)&cb;
    placed p;
    const char *body = body_put(&p, PLACE_GUARD, src, cut);
    tsesim_code rc = tsesim_callback_parse(&cb, body, cut, errbuf);
    body_drop(&p);
    ck_assert_msg(rc == TSESIM_E_PARSE, "%s: cut at %lu: %s", c->name, (unsigned long)cut,
                  tsesim_code_name(rc));
    ck_assert_ptr_null(cb);
    ck_assert_msg(strncmp(errbuf, "invalid JSON", 12) == 0, "%s: cut at %lu: \"%s\"", c->name,
                  (unsigned long)cut, errbuf);
  }
  free(src);
}
END_TEST

/* The body is overwritten and freed right after parsing; the callback keeps
 * its own copies, and one tsesim_callback_free releases everything. */
START_TEST(test_independent_of_body_and_one_free) {
  size_t len, live0 = tsesim__test_alloc_live();
  char *src = load_file("reference_example.json", &len);
  char errbuf[TSESIM_ERRBUF_SIZE] = "";
  tsesim_callback *cb;
  const char *rid;

  ck_assert_int_eq(tsesim_callback_parse(&cb, src, len, errbuf), TSESIM_OK);
  rid = cb->request_id;
  ck_assert_msg(rid < src || rid >= src + len, "request_id points into the body");
  memset(src, '#', len);
  free(src);
  ck_assert_str_eq(cb->request_id, "d1f08526-5443-4054-9a29-4456490ea9f8");
  ck_assert_str_eq(cb->device_ids[3].kind_name, "mdn");
  ck_assert_str_eq(cb->device_ids[3].id, "10-digit phone number");
  ck_assert_str_eq(cb->profile->ids[0].id, "20-digit ICCID");
  ck_assert_str_eq(cb->profile->profile_role, "LOCAL");
  ck_assert_str_eq(cb->status, "SUCCESS");
  ck_assert_uint_gt(tsesim__test_alloc_live(), live0);
  tsesim_callback_free(cb);
  ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
}
END_TEST

/* A callback naming n devices (three identifiers each) in deviceIds and in
 * deviceIdentifierCollection, with every optional string present. */
static size_t make_devices_body(char *buf, size_t size, int n) {
  static const char *const eid[] = {"89049032000001000000000000000042",
                                    "89049032000001000000000000000043",
                                    "89049032000001000000000000000044"};
  static const char *const iccid[] = {"89014103211118510720", "89014103211118510738",
                                      "89014103211118510746"};
  static const char *const imei[] = {"352099001761481", "352099001761499", "352099001761507"};
  char ids[1024];
  size_t o = 0;
  int i, w;
  for (i = 0; i < n; i++) {
    w = snprintf(ids + o, sizeof ids - o,
                 "%s{\"kind\":\"eid\",\"id\":\"%s\"},{\"kind\":\"Iccid\",\"id\":\"%s\"},"
                 "{\"kind\":\"IMEI\",\"id\":\"%s\"}",
                 i ? "," : "", eid[i], iccid[i], imei[i]);
    ck_assert(w > 0 && (size_t)w < sizeof ids - o);
    o += (size_t)w;
  }
  w = snprintf(buf, size,
               "{\"requestId\":\"d1f08526-5443-4054-9a29-4456490ea9f8\",\"deviceIds\":[%s],"
               "\"deviceResponse\":{\"deviceProfileResponse\":{\"deviceIdentifierCollection\":"
               "[%s],\"state\":\"ACTIVE\",\"profileStatus\":\"ENABLE\",\"profileRole\":\"LEAD\"}},"
               "\"faultResponse\":{\"faultcode\":\"F\",\"faultstring\":\"none\"},"
               "\"status\":\"Success\",\"callbackCount\":\"2\",\"maxCallbackThreshold\":4,"
               "\"username\":\"user\",\"password\":\"pass\"}",
               ids, ids);
  ck_assert(w > 0 && (size_t)w < size);
  return (size_t)w;
}

/* jansson's own allocations failing inside the parser. jansson 2.14 drops
 * some failed allocations (a string can come back with a byte missing) or
 * reports them as syntax errors; the loader goes by errno, which malloc sets
 * to ENOMEM, and checks the tree against the body (see the next test, where
 * errno cannot tell). The library never hooks jansson itself; the test does,
 * for the duration of the test only. */
START_TEST(test_jansson_alloc_failure) {
  static const char body[] =
      "{\"requestId\":\"r-1\",\"deviceIds\":[{\"id\":\"89014103211118510720\",\"kind\":"
      "\"ICCID\"},{\"id\":\"352099001761481\",\"kind\":\"imei\"}],\"status\":\"Failed\","
      "\"callbackCount\":\"2\"}";
  tsesim_callback *cb = NULL;

  json_set_alloc_funcs(tsesim__malloc, tsesim__free);
  TT_FAIL_EACH_ALLOC(
      {
        cb = (tsesim_callback *)&cb;
        rc = tsesim_callback_parse(&cb, body, sizeof body - 1, NULL);
      },
      cb == NULL,
      {
        ck_assert_str_eq(cb->device_ids[0].id, "89014103211118510720");
        ck_assert_str_eq(cb->device_ids[1].id, "352099001761481");
        ck_assert_int_eq(cb->callback_count, 2);
        tsesim_callback_free(cb);
      });
  json_set_alloc_funcs(malloc, free);
}
END_TEST

/* A long requestId followed by integer members: jansson's integer lexer
 * resets errno, so a byte lost from the requestId used to come back as OK
 * ("...9a29-4456490ea9f8" one character short). Each run must give either OK
 * with every field exactly right, or NOMEM with nothing out and nothing
 * leaked. The string lengths keep each closing quote off the sizes at which
 * jansson grows its token buffer (16, 32, 64, 128): a failure exactly there
 * makes jansson 2.14 itself abort or over-read (BUGS in libtsesim(7)). */
static const valid_case oom_cases[] = {
    {.name = "requestId then integer counts",
     .body = "{\"requestId\":\"d1f08526-5443-4054-9a29-4456490ea9f8-0123456789abcdef\","
             "\"callbackCount\":3,\"maxCallbackThreshold\":4,\"status\":\"SUCCESS\","
             "\"deviceIds\":[{\"id\":\"89014103211118510720\",\"kind\":\"Iccid\"}],"
             "\"username\":\"listener\",\"password\":\"s3cret\"}",
     .request_id = "d1f08526-5443-4054-9a29-4456490ea9f8-0123456789abcdef",
     .n_ids = 1,
     .ids = {ID(ICCID, "Iccid", "89014103211118510720")},
     .status = "SUCCESS",
     .status_code = TSESIM_STATUS_SUCCESS,
     .callback_count = 3,
     .max_callback_threshold = 4,
     .username = "listener",
     .password = "s3cret"},
    {.name = "long profile fields between integers",
     .body = "{\"callbackCount\":1,\"requestId\":\"r-0123456789-0123456789-0123456789-0123456789"
             "-0123456789-0123456789\",\"deviceResponse\":{\"deviceProfileResponse\":{"
             "\"deviceIdentifierCollection\":[{\"id\":\"89049032000001000000000000000074\","
             "\"kind\":\"Eid\"}],\"state\":\"ACTIVE\",\"profileStatus\":\"ENABLE\","
             "\"profileRole\":\"LOCAL\"}},\"maxCallbackThreshold\":12,"
             "\"faultResponse\":{\"faultcode\":\"F-0123456789-0123456789-0123456789-0123456789"
             "-0123456789-0123456789-0123456789-0123456789\",\"faultstring\":\"none\"},"
             "\"status\":\"FAILED\"}",
     .request_id = "r-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789",
     .has_profile = 1,
     .n_pids = 1,
     .pids = {ID(EID, "Eid", "89049032000001000000000000000074")},
     .state = "ACTIVE",
     .profile_status = "ENABLE",
     .profile_role = "LOCAL",
     .role = TSESIM_ROLE_LOCAL,
     .status = "FAILED",
     .status_code = TSESIM_STATUS_FAILED,
     .callback_count = 1,
     .max_callback_threshold = 12,
     .fault_code = "F-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789"
                   "-0123456789-0123456789",
     .fault_string = "none"},
};

START_TEST(test_jansson_alloc_failure_integer_after_string) {
  const valid_case *c = &oom_cases[_i];
  size_t len = strlen(c->body);
  unsigned long n;

  json_set_alloc_funcs(tsesim__malloc, tsesim__free);
  for (n = 1; n < 100000; n++) {
    size_t live0 = tsesim__test_alloc_live();
    unsigned long failed;
    char errbuf[TSESIM_ERRBUF_SIZE] = "", ctx[160];
    tsesim_callback *cb = (tsesim_callback *)&cb;
    tsesim_code rc;
    tsesim__test_alloc_reset();
    tsesim__test_alloc_fail_at(n);
    rc = tsesim_callback_parse(&cb, c->body, len, errbuf);
    failed = tsesim__test_alloc_failed();
    tsesim__test_alloc_fail_at(0);
    snprintf(ctx, sizeof ctx, "%s, allocation %lu %s", c->name, n,
             failed ? "failed" : "(none failed)");
    if (rc == TSESIM_OK) {
      expect_callback(ctx, cb, c);
      tsesim_callback_free(cb);
    } else {
      ck_assert_msg(rc == TSESIM_E_NOMEM, "%s: %s (%s)", ctx, tsesim_code_name(rc), errbuf);
      ck_assert_msg(cb == NULL, "%s: out not NULL", ctx);
      ck_assert_str_eq(errbuf, "out of memory");
    }
    ck_assert_msg(tsesim__test_alloc_live() == live0, "%s: leaked", ctx);
    if (!failed) {
      ck_assert_msg(rc == TSESIM_OK, "%s: %s", ctx, tsesim_code_name(rc));
      break;
    }
  }
  json_set_alloc_funcs(malloc, free);
  ck_assert_uint_gt(n, 1);
}
END_TEST

START_TEST(test_alloc_failure) {
  int n = _i; /* 1, 2, 3 devices */
  char body[4096];
  size_t len = make_devices_body(body, sizeof body, n);
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_callback *cb = NULL;

  TT_FAIL_EACH_ALLOC(
      {
        cb = (tsesim_callback *)&cb;
        errbuf[0] = '\0';
        rc = tsesim_callback_parse(&cb, body, len, errbuf);
      },
      cb == NULL && strcmp(errbuf, "out of memory") == 0,
      {
        ck_assert_uint_eq(cb->n_device_ids, (size_t)(3 * n));
        ck_assert_uint_eq(cb->profile->n_ids, (size_t)(3 * n));
        ck_assert_int_eq(cb->device_ids[3 * n - 1].kind, TSESIM_ID_IMEI);
        ck_assert_str_eq(cb->password, "pass");
        ck_assert_int_eq(cb->callback_count, 2);
        tsesim_callback_free(cb);
      });
  /* and with errbuf NULL */
  TT_FAIL_EACH_ALLOC(
      {
        cb = (tsesim_callback *)&cb;
        rc = tsesim_callback_parse(&cb, body, len, NULL);
      },
      cb == NULL, tsesim_callback_free(cb));
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("parse_callback");
  TCase *tc = tcase_create("valid");
  tcase_add_loop_test(tc, test_valid, 0, N_VALID);
  suite_add_tcase(s, tc);
  tc = tcase_create("malformed");
  tcase_add_loop_test(tc, test_malformed, 0, N_BAD);
  tcase_add_test(tc, test_out_null);
  tcase_add_test(tc, test_count_limits);
  suite_add_tcase(s, tc);
  tc = tcase_create("memory");
  tcase_add_loop_test(tc, test_every_truncation_at_guard_page, 0, N_VALID);
  tcase_add_test(tc, test_independent_of_body_and_one_free);
  tcase_add_loop_test(tc, test_alloc_failure, 1, 4);
  tcase_add_test(tc, test_jansson_alloc_failure);
  tcase_add_loop_test(tc, test_jansson_alloc_failure_integer_after_string, 0,
                      (int)(sizeof oom_cases / sizeof oom_cases[0]));
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(suite)
