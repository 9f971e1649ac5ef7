/*
 * headertest.c - the public header on its own. Built as C89 (this file) and
 * as C++11 (headertest_cxx.cc includes it) with -Wall -Wextra -pedantic
 * -Werror; running it checks the macros and initializers it expands.
 */
#include <tsesim.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;
#define EXPECT(cond)                                                     \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                        \
    }                                                                    \
  } while (0)

#ifndef HEADERTEST_LANG
#define HEADERTEST_LANG "C89"
#endif

int main(void) {
  tsesim_options opts = TSESIM_OPTIONS_INIT; /* lists every field: no -Wextra warning */
  tsesim_options filled;
  tsesim_device_id id;
  char errbuf[TSESIM_ERRBUF_SIZE];
  unsigned int v = tsesim_version();

  EXPECT(opts.version == TSESIM_OPTIONS_VERSION);
  EXPECT(opts.base_url == NULL && opts.log_fn == NULL && opts.log_level == 0);
  memset(&filled, 0xA5, sizeof filled);
  EXPECT(tsesim_options_init(&filled, TSESIM_OPTIONS_VERSION) == TSESIM_OK);
  EXPECT(filled.version == TSESIM_OPTIONS_VERSION && filled.client_id == NULL);
  EXPECT(v == (unsigned int)TSESIM_VERSION_NUM);
  EXPECT(TSESIM_VERSION_NUM ==
         ((TSESIM_VERSION_MAJOR << 16) | (TSESIM_VERSION_MINOR << 8) | TSESIM_VERSION_PATCH));
  EXPECT(TSESIM_ERRBUF_SIZE == 256 && TSESIM_MAX_DEVICES_PER_REQUEST == 10000);
  EXPECT(TSESIM_OK == 0 && TSESIM_E_UNKNOWN_OUTCOME == 12);
  EXPECT(TSESIM_ID_MDN == 4 && TSESIM_STATUS_WARNING == 3 && TSESIM_ROLE_DEFAULT == 3);
  id.kind = TSESIM_ID_IMEI;
  id.id = "35209900176148X";
  id.kind_name = NULL;
  EXPECT(tsesim_id_validate(id.kind, id.id, errbuf) == TSESIM_E_INVAL);
  EXPECT(strstr(errbuf, "position 15") != NULL);
  EXPECT(strcmp(tsesim_strerror(TSESIM_OK), "") != 0);
  if (failures == 0) printf("header OK as %s\n", HEADERTEST_LANG);
  return failures ? 1 : 0;
}
