/*
 * check_parse_error.c - tsesim_api_error_parse: the three error shapes
 * (ThingSpace errorCode/errorMessage, API gateway fault, OAuth error) and
 * bodies in none of them, which are kept raw.
 *
 * Bodies are parsed from an exact-size heap copy (overwritten and freed
 * before checks) and from a copy ending exactly at a PROT_NONE page
 * (unmapped before checks): the result's body is its own NUL-terminated copy.
 */
#define _DEFAULT_SOURCE 1
#include <jansson.h>

#include "tsesim_test.h"
#include "tt_place.h"

#define AUTO_LEN ((size_t)-1)

/* ------------------------------------------------------------------------ */

typedef struct err_case {
  const char *name;
  long http_status;
  const char *body; /* NULL: the body pointer passed is NULL (len 0) */
  size_t len;       /* AUTO_LEN: strlen(body) */
  const char *code, *message, *description;
} err_case;

static const err_case cases[] = {
    /* ThingSpace */
    {"ThingSpace: session token expired", 400,
     "{\"errorCode\":\"REQUEST_FAILED.SessionToken.Expired\","
     "\"errorMessage\":\"Session token expired. Please log in again.\"}",
     AUTO_LEN, "REQUEST_FAILED.SessionToken.Expired", "Session token expired. Please log in again.",
     NULL},
    {"ThingSpace: pretty printed, extra fields", 400,
     "{\n  \"errorCode\": \"INPUT_INVALID.Device.Kind.Invalid\",\n  \"errorMessage\": \"Device "
     "kind "
     "is invalid\",\n  \"traceId\": \"abc\",\n  \"details\": [{\"field\": \"kind\"}]\n}\n",
     AUTO_LEN, "INPUT_INVALID.Device.Kind.Invalid", "Device kind is invalid", NULL},
    {"ThingSpace: numeric errorCode", 400, "{\"errorCode\":400,\"errorMessage\":\"Bad Request\"}",
     AUTO_LEN, "400", "Bad Request", NULL},
    {"ThingSpace: negative and large numeric errorCode", 500,
     "{\"errorCode\":-9007199254740993,\"errorMessage\":\"x\"}", AUTO_LEN, "-9007199254740993", "x",
     NULL},
    {"ThingSpace: errorMessage only", 500, "{\"errorMessage\":\"Unexpected error\"}", AUTO_LEN,
     NULL, "Unexpected error", NULL},
    {"ThingSpace: errorCode only", 404, "{\"errorCode\":\"REQUEST_FAILED.AccountNotFound\"}",
     AUTO_LEN, "REQUEST_FAILED.AccountNotFound", NULL, NULL},
    {"ThingSpace: wrongly typed members", 400, "{\"errorCode\":true,\"errorMessage\":[\"a\"]}",
     AUTO_LEN, NULL, NULL, NULL},
    {"ThingSpace: a real errorCode is not a code", 400,
     "{\"errorCode\":4.5,\"errorMessage\":\"m\"}", AUTO_LEN, NULL, "m", NULL},
    {"ThingSpace: unicode escapes decoded", 400,
     "{\"errorCode\":\"INPUT_INVALID.Name\",\"errorMessage\":\"caf\\u00e9 \\ud83d\\ude00\"}",
     AUTO_LEN, "INPUT_INVALID.Name", "caf\xc3\xa9 \xf0\x9f\x98\x80", NULL},
    /* API gateway */
    {"gateway fault", 401,
     "{\"fault\":{\"code\":\"900901\",\"message\":\"Invalid Credentials\",\"description\":"
     "\"Invalid Credentials. Make sure you have given the correct access token\"}}",
     AUTO_LEN, "900901", "Invalid Credentials",
     "Invalid Credentials. Make sure you have given the correct access token"},
    {"gateway fault, numeric code", 401,
     "{\"fault\":{\"code\":900901,\"message\":\"Invalid Credentials\",\"type\":\"Status report\"}}",
     AUTO_LEN, "900901", "Invalid Credentials", NULL},
    {"gateway fault, empty", 401, "{\"fault\":{}}", AUTO_LEN, NULL, NULL, NULL},
    /* OAuth */
    {"OAuth error", 401,
     "{\"error\":\"invalid_client\",\"error_description\":\"Client authentication failed\"}",
     AUTO_LEN, "invalid_client", "Client authentication failed", NULL},
    {"OAuth error without description", 400, "{\"error\":\"unsupported_grant_type\"}", AUTO_LEN,
     "unsupported_grant_type", NULL, NULL},
    /* none of the shapes */
    {"HTML", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>\n", AUTO_LEN, NULL, NULL,
     NULL},
    {"plain text", 503, "Service Unavailable", AUTO_LEN, NULL, NULL, NULL},
    {"empty body", 500, "{\"errorCode\":\"X\"}", 0, NULL, NULL, NULL},
    {"NULL body, len 0", 204, NULL, 0, NULL, NULL, NULL},
    {"whitespace only", 500, " \r\n", AUTO_LEN, NULL, NULL, NULL},
    {"JSON array", 400, "[{\"errorCode\":\"X\",\"errorMessage\":\"m\"}]", AUTO_LEN, NULL, NULL,
     NULL},
    {"JSON string", 400, "\"REQUEST_FAILED.UnexpectedError\"", AUTO_LEN, NULL, NULL, NULL},
    {"JSON object with other keys", 500,
     "{\"message\":\"Internal server error\",\"code\":5,\"description\":\"d\"}", AUTO_LEN, NULL,
     NULL, NULL},
    {"fault not an object", 401, "{\"fault\":\"Invalid Credentials\"}", AUTO_LEN, NULL, NULL, NULL},
    {"OAuth error not a string", 400, "{\"error\":{\"code\":\"x\"},\"error_description\":\"d\"}",
     AUTO_LEN, NULL, NULL, NULL},
    {"invalid JSON: truncated", 400, "{\"errorCode\":\"REQUEST_FAILED.SessionToken.Exp", AUTO_LEN,
     NULL, NULL, NULL},
    {"invalid JSON: trailing comma", 400, "{\"errorCode\":\"X\",\"errorMessage\":\"m\",}", AUTO_LEN,
     NULL, NULL, NULL},
    {"raw NUL byte", 400, "{\"errorCode\":\"X\"}\0tail", 22, NULL, NULL, NULL},
    {"status 0 kept", 0, "{\"errorCode\":\"X\"}", AUTO_LEN, "X", NULL, NULL},
};

#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static void expect_error(const char *ctx, const tsesim_api_error *e, const err_case *c,
                         const char *raw, size_t len) {
  ck_assert_msg(e != NULL, "%s: no result", ctx);
  ck_assert_msg(e->http_status == c->http_status, "%s: http_status %ld, expected %ld", ctx,
                e->http_status, c->http_status);
  tt_expect_str(ctx, "code", e->code, c->code);
  tt_expect_str(ctx, "message", e->message, c->message);
  tt_expect_str(ctx, "description", e->description, c->description);
  ck_assert_msg(e->body != NULL, "%s: body NULL", ctx);
  ck_assert_msg(len == 0 || memcmp(e->body, raw, len) == 0, "%s: body differs", ctx);
  ck_assert_msg(e->body[len] == '\0', "%s: body not NUL-terminated", ctx);
}

START_TEST(test_shapes) {
  const err_case *c = &cases[_i];
  size_t len = c->len == AUTO_LEN ? strlen(c->body) : c->len;
  int where;
  for (where = PLACE_HEAP; where <= PLACE_GUARD; where++) {
    char ctx[128];
    size_t live0 = tsesim__test_alloc_live();
    tsesim_api_error *e = (tsesim_api_error *)&e;
    placed p;
    const char *body = NULL;
    tsesim_code rc;
    snprintf(ctx, sizeof ctx, "%s (%s)", c->name, where == PLACE_HEAP ? "heap" : "guard page");
    if (c->body) body = body_put(&p, (place)where, c->body, len);
    rc = tsesim_api_error_parse(&e, c->http_status, body, len);
    if (c->body) body_drop(&p); /* the result must hold its own copy */
    ck_assert_msg(rc == TSESIM_OK, "%s: %s", ctx, tsesim_code_name(rc));
    expect_error(ctx, e, c, c->body, len);
    ck_assert_uint_gt(tsesim__test_alloc_live(), live0);
    tsesim_api_error_free(e);
    ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
  }
}
END_TEST

START_TEST(test_alloc_failure) {
  const err_case *c = &cases[_i];
  size_t len = c->len == AUTO_LEN ? strlen(c->body) : c->len;
  tsesim_api_error *e = NULL;
  TT_FAIL_EACH_ALLOC(
      {
        e = (tsesim_api_error *)&e;
        rc = tsesim_api_error_parse(&e, c->http_status, c->body, len);
      },
      e == NULL,
      {
        expect_error(c->name, e, c, c->body, len);
        tsesim_api_error_free(e);
      });
}
END_TEST

/* jansson's own allocations failing, with an integer errorCode after a
 * long errorMessage: jansson's integer lexer resets errno, so a byte lost
 * from the message used to come back as OK. Each run is OK with every field
 * exact, or NOMEM with nothing out and nothing leaked. The library never
 * hooks jansson; the test does, for this test only. */
START_TEST(test_jansson_alloc_failure) {
  static const char body[] =
      "{\"errorMessage\":\"The device 89014103211118510720 is not in account 0000123456-00001"
      "\",\"errorCode\":400123,\"x\":\"y\"}";
  unsigned long n;
  json_set_alloc_funcs(tsesim__malloc, tsesim__free);
  for (n = 1; n < 100000; n++) {
    size_t live0 = tsesim__test_alloc_live();
    unsigned long failed;
    tsesim_api_error *e = (tsesim_api_error *)&e;
    tsesim_code rc;
    tsesim__test_alloc_reset();
    tsesim__test_alloc_fail_at(n);
    rc = tsesim_api_error_parse(&e, 400, body, sizeof body - 1);
    failed = tsesim__test_alloc_failed();
    tsesim__test_alloc_fail_at(0);
    if (rc == TSESIM_OK) {
      ck_assert_msg(e->code && strcmp(e->code, "400123") == 0, "allocation %lu: code %s", n,
                    e->code ? e->code : "NULL");
      ck_assert_msg(e->message && strcmp(e->message,
                                         "The device 89014103211118510720 is not in "
                                         "account 0000123456-00001") == 0,
                    "allocation %lu: message %s", n, e->message ? e->message : "NULL");
      ck_assert_ptr_null(e->description);
      ck_assert_str_eq(e->body, body);
      ck_assert_int_eq(e->http_status, 400);
      tsesim_api_error_free(e);
    } else {
      ck_assert_msg(rc == TSESIM_E_NOMEM, "allocation %lu: %s", n, tsesim_code_name(rc));
      ck_assert_ptr_null(e);
    }
    ck_assert_msg(tsesim__test_alloc_live() == live0, "allocation %lu: leaked", n);
    if (!failed) {
      ck_assert_int_eq(rc, TSESIM_OK);
      break;
    }
  }
  json_set_alloc_funcs(malloc, free);
  ck_assert_uint_gt(n, 1);
}
END_TEST

START_TEST(test_invalid_arguments) {
  static const char body[] = "{\"errorCode\":\"X\"}";
  tsesim_api_error *e = (tsesim_api_error *)&e;
  size_t live0 = tsesim__test_alloc_live();
  ck_assert_int_eq(tsesim_api_error_parse(NULL, 400, body, sizeof body - 1), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_api_error_parse(&e, 400, NULL, 3), TSESIM_E_INVAL);
  ck_assert_ptr_null(e);
  ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
  tsesim_api_error_free(NULL); /* a no-op */
}
END_TEST

/* The copy of the body is the result's own: the input buffer is overwritten
 * and freed, and the strings taken from it are not inside it. */
START_TEST(test_body_copy_independent) {
  static const char src[] =
      "{\"fault\":{\"code\":\"900901\",\"message\":\"Invalid Credentials\",\"description\":\"d\"}}";
  size_t len = sizeof src - 1;
  char *buf = malloc(len);
  tsesim_api_error *e;
  ck_assert_ptr_nonnull(buf);
  memcpy(buf, src, len);
  ck_assert_int_eq(tsesim_api_error_parse(&e, 401, buf, len), TSESIM_OK);
  ck_assert_ptr_ne(e->body, buf);
  memset(buf, 'z', len);
  free(buf);
  ck_assert_uint_eq(strlen(e->body), len);
  ck_assert_str_eq(e->body, src);
  ck_assert_str_eq(e->code, "900901");
  ck_assert_str_eq(e->message, "Invalid Credentials");
  ck_assert_str_eq(e->description, "d");
  ck_assert_int_eq(e->http_status, 401);
  tsesim_api_error_free(e);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("parse_error");
  TCase *tc = tcase_create("shapes");
  tcase_add_loop_test(tc, test_shapes, 0, N_CASES);
  tcase_add_test(tc, test_invalid_arguments);
  tcase_add_test(tc, test_body_copy_independent);
  suite_add_tcase(s, tc);
  tc = tcase_create("memory");
  tcase_add_loop_test(tc, test_alloc_failure, 0, N_CASES);
  tcase_add_test(tc, test_jansson_alloc_failure);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(suite)
