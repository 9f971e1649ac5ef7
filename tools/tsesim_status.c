/*
 * tsesim_status.c - tsesim validate (the device file alone) and tsesim
 * status (what the journal knows: the tracker's counts and rows).
 */
#include <stdio.h>
#include <string.h>

#include "tsesim_cli.h"

int cmd_validate(int argc, char **argv) {
  const char *file = NULL;
  tsesim_request *req;
  tsesim_rows *rows;
  size_t n, bad;
  int i, rc;
  for (i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1] != '\0') {
      cli_err("validate: unknown option %s (usage: tsesim validate FILE)", argv[i]);
      return EXIT_USAGE;
    }
    if (file) {
      cli_err("validate: one FILE only (usage: tsesim validate FILE)");
      return EXIT_USAGE;
    }
    file = argv[i];
  }
  if (!file) {
    cli_err("validate: FILE is missing (usage: tsesim validate FILE; - reads standard input)");
    return EXIT_USAGE;
  }
  /* the account is not part of a device's checks */
  if ((rc = cli_read_devices(file, "validate", NULL, &req, &rows)) != 0) return rc;
  n = tsesim_rows_count(rows);
  bad = tsesim_rows_rejected(rows);
  fprintf(stderr, "%s: %lu devices valid, %lu rows rejected\n", file, (unsigned long)(n - bad),
          (unsigned long)bad);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  return bad ? EXIT_SOME_BAD : EXIT_ALL_SUCCESS;
}

/* A JSON string, or null. */
static void json_str(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20 || ch == 0x7f)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

static int print_json(const tsesim_device_status *d, void *payload) {
  FILE *f = payload;
  fprintf(f, "{\"line\":%lu,\"eid\":", d->line);
  json_str(f, d->eid);
  fputs(",\"iccid\":", f);
  json_str(f, d->iccid);
  fputs(",\"imei\":", f);
  json_str(f, d->imei);
  fputs(",\"state\":", f);
  json_str(f, d->state);
  fputs(",\"requestId\":", f);
  json_str(f, d->request_id);
  fputs(",\"status\":", f);
  json_str(f, d->status);
  fputs(",\"fault\":", f);
  json_str(f, d->fault);
  fputs(",\"error\":", f);
  json_str(f, d->error);
  fprintf(f, ",\"callbacks\":%lu}\n", d->callbacks);
  return ferror(f) ? 1 : 0;
}

/* Cells as the failed table shows them: "-" for none; control characters
 * (ThingSpace's fault codes are data) as '?'. */
static void cell(FILE *f, const char *s, int width) {
  char buf[96];
  size_t i;
  snprintf(buf, sizeof buf, "%s", s ? s : "-");
  for (i = 0; buf[i]; i++)
    if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) buf[i] = '?';
  fprintf(f, "%-*s", width, buf);
}

static int print_failed(const tsesim_device_status *d, void *payload) {
  unsigned long *n = payload;
  if (strcmp(d->state, "failed") != 0 && strcmp(d->state, "refused") != 0) return 0;
  if (!(*n)++)
    printf("%6s  %-32s  %-8s  %-8s  %s\n", "LINE", "EID", "STATE", "STATUS", "FAULT/ERROR");
  printf("%6lu  ", d->line);
  cell(stdout, d->eid, 32);
  fputs("  ", stdout);
  cell(stdout, d->state, 8);
  fputs("  ", stdout);
  cell(stdout, d->status, 8);
  fputs("  ", stdout);
  cell(stdout, d->fault ? d->fault : d->error, 0);
  fputc('\n', stdout);
  return 0;
}

int cmd_status(int argc, char **argv) {
  const char *path = NULL, *v;
  int json = 0, failed = 0, i, m, rc;
  cli_journal cj;
  tsesim_job_counts c;
  for (i = 1; i < argc; i++) {
    if ((m = cli_opt(argc, argv, &i, "--journal", &v)) != 0) {
      if (m < 0) return EXIT_USAGE;
      path = v;
    } else if (cli_flag(argv, i, "--json")) {
      json = 1;
    } else if (cli_flag(argv, i, "--failed")) {
      failed = 1;
    } else {
      cli_err("status: unexpected %s (usage: tsesim status --journal DB [--json] [--failed])",
              argv[i]);
      return EXIT_USAGE;
    }
  }
  if (!path) {
    cli_err("status: --journal DB is missing");
    return EXIT_USAGE;
  }
  if ((rc = cli_journal_open(&cj, path, 1, 0)) != 0) return rc;
  /* the journal's only job: the command's own, or one made through the API */
  if (json && tsesim_job_devices(cj.j, NULL, print_json, stdout) != TSESIM_OK) goto fail;
  if (failed) {
    unsigned long n = 0;
    if (tsesim_job_devices(cj.j, NULL, print_failed, &n) != TSESIM_OK) goto fail;
  }
  if (tsesim_job_count(cj.j, NULL, &c) != TSESIM_OK) goto fail;
  printf("unmatched %lu\n", c.unmatched);
  cli_summary(&c);
  cli_journal_close(&cj);
  return cli_counts_status(&c);
fail:
  fflush(stdout);
  cli_err("%s", tsesim_journal_errmsg(cj.j));
  cli_journal_close(&cj);
  return EXIT_USAGE;
}
