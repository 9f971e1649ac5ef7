/* check_parse_response.c - placeholder being written */
#include "tsesim_test.h"
START_TEST(test_placeholder) { ck_assert_int_eq(0, 0); }
END_TEST
static Suite *suite(void) {
  Suite *s = suite_create("parse_response");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_placeholder);
  suite_add_tcase(s, tc);
  return s;
}
TT_MAIN(suite)
