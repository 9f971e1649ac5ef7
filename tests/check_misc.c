/*
 * check_misc.c - the result-code table, version, options and global init,
 * and that none of these calls allocates.
 */
#include "tsesim_test.h"

static const struct {
  tsesim_code code;
  const char *name;
} codes[] = {
    {TSESIM_OK, "TSESIM_OK"},
    {TSESIM_E_INVAL, "TSESIM_E_INVAL"},
    {TSESIM_E_NOMEM, "TSESIM_E_NOMEM"},
    {TSESIM_E_LIMIT, "TSESIM_E_LIMIT"},
    {TSESIM_E_PARSE, "TSESIM_E_PARSE"},
    {TSESIM_E_TRANSPORT, "TSESIM_E_TRANSPORT"},
    {TSESIM_E_TIMEOUT, "TSESIM_E_TIMEOUT"},
    {TSESIM_E_TLS, "TSESIM_E_TLS"},
    {TSESIM_E_AUTH, "TSESIM_E_AUTH"},
    {TSESIM_E_HTTP, "TSESIM_E_HTTP"},
    {TSESIM_E_API, "TSESIM_E_API"},
    {TSESIM_E_RATE_LIMITED, "TSESIM_E_RATE_LIMITED"},
    {TSESIM_E_UNKNOWN_OUTCOME, "TSESIM_E_UNKNOWN_OUTCOME"},
    {TSESIM_E_JOURNAL, "TSESIM_E_JOURNAL"},
    {TSESIM_E_CANCELLED, "TSESIM_E_CANCELLED"},
};
#define N_CODES (sizeof codes / sizeof codes[0])

START_TEST(test_code_table) {
  /* Values are the documented ABI: 0..14 in order. */
  ck_assert_int_eq(codes[_i].code, _i);
  ck_assert_str_eq(tsesim_code_name(codes[_i].code), codes[_i].name);
  ck_assert_ptr_nonnull(tsesim_strerror(codes[_i].code));
  ck_assert_uint_gt(strlen(tsesim_strerror(codes[_i].code)), 3);
}
END_TEST

START_TEST(test_code_texts_distinct) {
  size_t i, j;
  for (i = 0; i < N_CODES; i++)
    for (j = i + 1; j < N_CODES; j++)
      ck_assert_str_ne(tsesim_strerror(codes[i].code), tsesim_strerror(codes[j].code));
}
END_TEST

START_TEST(test_code_unknown) {
  ck_assert_str_eq(tsesim_code_name((tsesim_code)99), "TSESIM_E_???");
  ck_assert_str_eq(tsesim_strerror((tsesim_code)99), "unknown result code");
  ck_assert_str_eq(tsesim_strerror((tsesim_code)-1), "unknown result code");
}
END_TEST

START_TEST(test_version) {
  char s[32];
  unsigned v = tsesim_version();
  ck_assert_uint_eq(v, TSESIM_VERSION_NUM);
  snprintf(s, sizeof s, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
  ck_assert_str_eq(s, TSESIM_VERSION_STR);
  /* The header and configure.ac agree on the version. */
  ck_assert_str_eq(TSESIM_VERSION_STR, PACKAGE_VERSION_STR);
}
END_TEST

START_TEST(test_options_init) {
  tsesim_options o;
  const tsesim_options init = TSESIM_OPTIONS_INIT;
  memset(&o, 0x5a, sizeof o);
  ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION), TSESIM_OK);
  ck_assert_uint_eq(o.version, TSESIM_OPTIONS_VERSION);
  ck_assert_ptr_null(o.base_url);
  ck_assert_ptr_null(o.client_id);
  ck_assert_ptr_null(o.client_secret);
  ck_assert_ptr_null(o.access_token);
  ck_assert_ptr_null(o.username);
  ck_assert_ptr_null(o.password);
  ck_assert_ptr_null(o.session_token);
  ck_assert(o.log_fn == NULL);
  ck_assert_ptr_null(o.log_payload);
  ck_assert_int_eq(o.log_level, 0);
  ck_assert_uint_eq(init.version, TSESIM_OPTIONS_VERSION);
  ck_assert_int_eq(memcmp(&o, &init, sizeof o), 0);
}
END_TEST

START_TEST(test_options_init_bad) {
  tsesim_options o;
  memset(&o, 0x5a, sizeof o);
  ck_assert_int_eq(tsesim_options_init(NULL, TSESIM_OPTIONS_VERSION), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_options_init(&o, 0), TSESIM_E_INVAL);
  ck_assert_int_eq(tsesim_options_init(&o, TSESIM_OPTIONS_VERSION + 1), TSESIM_E_INVAL);
  ck_assert_uint_eq(o.version, 0x5a5a5a5aU); /* untouched on failure */
}
END_TEST

START_TEST(test_global_init_refcount) {
  ck_assert_int_eq(tsesim_global_init(), TSESIM_OK);
  ck_assert_int_eq(tsesim_global_init(), TSESIM_OK);
  tsesim_global_cleanup();
  tsesim_global_cleanup();
  tsesim_global_cleanup(); /* one too many: harmless */
  ck_assert_int_eq(tsesim_global_init(), TSESIM_OK);
  tsesim_global_cleanup();
}
END_TEST

START_TEST(test_free_null) {
  tsesim_free(NULL);
  tsesim_request_free(NULL);
  tsesim_api_error_free(NULL);
  tsesim_callback_free(NULL);
}
END_TEST

/* ---- allocation: none of these calls makes one ---- */

/*
 * The rule is an allocation-failure loop for every public call. The calls of
 * this suite allocate nothing, so their loop is this: each runs with the
 * first allocation set to fail, must give its usual answer, and must count no
 * allocation at all. One that starts allocating fails here, and then needs a
 * TT_FAIL_EACH_ALLOC loop (tsesim_test.h) instead. Each entry returns
 * TSESIM_OK when the call answered as it should.
 */
static tsesim_code na_strerror(void) {
  size_t i;
  for (i = 0; i < N_CODES; i++)
    if (!tsesim_strerror(codes[i].code)) return TSESIM_E_INVAL;
  return strcmp(tsesim_strerror((tsesim_code)99), "unknown result code") ? TSESIM_E_INVAL
                                                                         : TSESIM_OK;
}

static tsesim_code na_code_name(void) {
  size_t i;
  for (i = 0; i < N_CODES; i++)
    if (strcmp(tsesim_code_name(codes[i].code), codes[i].name)) return TSESIM_E_INVAL;
  return TSESIM_OK;
}

static tsesim_code na_version(void) {
  return tsesim_version() == TSESIM_VERSION_NUM ? TSESIM_OK : TSESIM_E_INVAL;
}

static tsesim_code na_options_init(void) {
  tsesim_options o;
  tsesim_code rc = tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  return rc == TSESIM_OK && o.version == TSESIM_OPTIONS_VERSION ? TSESIM_OK : TSESIM_E_INVAL;
}

static tsesim_code na_options_init_bad(void) {
  tsesim_options o;
  return tsesim_options_init(&o, 0) == TSESIM_E_INVAL &&
                 tsesim_options_init(NULL, TSESIM_OPTIONS_VERSION) == TSESIM_E_INVAL
             ? TSESIM_OK
             : TSESIM_E_INVAL;
}

/* The first init sets libcurl up (libcurl's own allocations are not ours). */
static tsesim_code na_global_init_cleanup(void) {
  tsesim_code rc = tsesim_global_init();
  if (rc == TSESIM_OK) tsesim_global_cleanup();
  return rc;
}

static tsesim_code na_global_cleanup_alone(void) {
  tsesim_global_cleanup(); /* none outstanding: nothing happens */
  return TSESIM_OK;
}

static tsesim_code na_free_null(void) {
  tsesim_free(NULL);
  tsesim_request_free(NULL);
  tsesim_api_error_free(NULL);
  tsesim_callback_free(NULL);
  return TSESIM_OK;
}

static const struct {
  const char *name;
  tsesim_code (*call)(void);
} no_alloc_calls[] = {
    {"tsesim_strerror", na_strerror},
    {"tsesim_code_name", na_code_name},
    {"tsesim_version", na_version},
    {"tsesim_options_init", na_options_init},
    {"tsesim_options_init (bad arguments)", na_options_init_bad},
    {"tsesim_global_init and tsesim_global_cleanup", na_global_init_cleanup},
    {"tsesim_global_cleanup (none outstanding)", na_global_cleanup_alone},
    {"tsesim_free and the _free functions (NULL)", na_free_null},
};

START_TEST(test_no_alloc) {
  size_t live0 = tsesim__test_alloc_live();
  unsigned long made, failed;
  tsesim_code rc;
  tsesim__test_alloc_reset();
  tsesim__test_alloc_fail_at(1); /* the first allocation, if the call made one, fails */
  rc = no_alloc_calls[_i].call();
  made = tsesim__test_alloc_count();
  failed = tsesim__test_alloc_failed();
  tsesim__test_alloc_fail_at(0);
  ck_assert_msg(made == 0 && failed == 0,
                "%s made %lu allocations (%lu failed): it needs a TT_FAIL_EACH_ALLOC loop",
                no_alloc_calls[_i].name, made, failed);
  ck_assert_msg(rc == TSESIM_OK, "%s: %s", no_alloc_calls[_i].name, tsesim_code_name(rc));
  ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
}
END_TEST

/* tsesim_free releases what the library allocated, without allocating; and
 * the counter that test_no_alloc reads does see an allocation. */
START_TEST(test_free_no_alloc) {
  size_t live0 = tsesim__test_alloc_live();
  char *p;
  tsesim__test_alloc_reset();
  p = tsesim__strndup("requestId", 9);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq(tsesim__test_alloc_count(), 1);
  ck_assert_uint_gt(tsesim__test_alloc_live(), live0);
  tsesim__test_alloc_reset();
  tsesim__test_alloc_fail_at(1);
  tsesim_free(p);
  ck_assert_uint_eq(tsesim__test_alloc_count(), 0);
  tsesim__test_alloc_fail_at(0);
  ck_assert_uint_eq(tsesim__test_alloc_live(), live0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("misc");
  TCase *tc = tcase_create("core");
  tcase_add_loop_test(tc, test_code_table, 0, (int)N_CODES);
  tcase_add_test(tc, test_code_texts_distinct);
  tcase_add_test(tc, test_code_unknown);
  tcase_add_test(tc, test_version);
  tcase_add_test(tc, test_options_init);
  tcase_add_test(tc, test_options_init_bad);
  tcase_add_test(tc, test_global_init_refcount);
  tcase_add_test(tc, test_free_null);
  suite_add_tcase(s, tc);
  tc = tcase_create("alloc");
  tcase_add_loop_test(tc, test_no_alloc, 0, (int)ARRAY_LEN(no_alloc_calls));
  tcase_add_test(tc, test_free_no_alloc);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(suite)
