/*
 * fuzz_listener.c - the callback listener's request handling without
 * sockets: tsesim__listener_judge (path, method, size, parse, credentials)
 * and, for what it lets through, tsesim__journal_callbacks_store into a
 * temporary journal, as the listener's writer does.
 *
 * Input: byte 0 picks the method (its low 3 bits) and the body state (bits
 * 3-4: ok, too large, over budget, out of memory); then the path up to the
 * first '\n'; the rest is the body (not NUL-terminated).
 *
 * Checks: the answer is one of the table's statuses, or 0 with a callback;
 * the answer body is NUL-terminated JSON text of printable ASCII that never
 * holds the expected password unless the peer sent it; a stored group is committed or refused
 * whole.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_ids.h"
#include "tsesim_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PASSWORD "fuzz-secret-password"

static tsesim_journal *journal;
static char dir[64] = "/tmp/fuzz-listener-XXXXXX";

static void cleanup(void) {
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[128];
  size_t i;
  tsesim_journal_close(journal);
  for (i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
    snprintf(p, sizeof p, "%s/j.db%s", dir, sfx[i]);
    unlink(p);
  }
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char path[128], err[TSESIM_ERRBUF_SIZE];
  (void)argc, (void)argv;
  if (!mkdtemp(dir)) abort();
  snprintf(path, sizeof path, "%s/j.db", dir);
  if (tsesim_journal_open(&journal, path, err) != TSESIM_OK) {
    fprintf(stderr, "fuzz_listener: %s\n", err);
    abort();
  }
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const methods[] = {"POST", "GET",     "PUT",  "DELETE",
                                        "HEAD", "OPTIONS", "post", "PATCH"};
  static const tsesim__listener_rules rules = {"/callbacks", "fuzz-user", PASSWORD, 1 << 20};
  char url[256], answer[TSESIM__ANSWER_SIZE];
  const uint8_t *nl;
  size_t ulen, i;
  tsesim_callback *cb = NULL;
  tsesim__cb_item item;
  int status;

  if (size < 1) return 0;
  nl = memchr(data + 1, '\n', size - 1);
  ulen = nl ? (size_t)(nl - data - 1) : size - 1;
  if (ulen >= sizeof url) return 0;
  memcpy(url, data + 1, ulen);
  url[ulen] = '\0';
  const char *body = nl ? (const char *)nl + 1 : "";
  size_t len = nl ? size - ulen - 2 : 0;

  memset(answer, 0xAA, sizeof answer);
  status = tsesim__listener_judge(&rules, methods[data[0] & 7], url, (data[0] >> 3) & 3, body, len,
                                  &cb, answer);
  if (status == 0) {
    FUZZ_CHECK(cb != NULL);
    memset(&item, 0, sizeof item);
    item.cb = cb;
    item.body = body;
    item.len = len;
    tsesim_code rc = tsesim__journal_callbacks_store(journal, &item, 1);
    FUZZ_CHECK(rc == TSESIM_OK || rc == TSESIM_E_NOMEM || rc == TSESIM_E_JOURNAL);
    tsesim_callback_free(cb);
    return 0;
  }
  FUZZ_CHECK(cb == NULL);
  FUZZ_CHECK(status == 200 || status == 400 || status == 401 || status == 404 || status == 405 ||
             status == 413 || status == 503);
  FUZZ_CHECK(memchr(answer, '\0', sizeof answer) != NULL);
  for (i = 0; answer[i]; i++)
    FUZZ_CHECK((unsigned char)answer[i] >= 0x20 && (unsigned char)answer[i] < 0x7F);
  /* The expected password never comes from the listener: the answer may
   * quote what the peer sent (a 400 names a bad value), nothing more. */
  if (!memmem(data, size, PASSWORD, sizeof PASSWORD - 1))
    FUZZ_CHECK(strstr(answer, PASSWORD) == NULL);
  return 0;
}
