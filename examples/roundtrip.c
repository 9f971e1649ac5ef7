/*
 * roundtrip.c - the whole job, results included: read the devices, start the
 * library's callback listener, register it, submit the download as a job,
 * wait until every device is final, print the outcome.
 *
 *   roundtrip [--journal DB] BASE_URL (devices.csv | N) [timeout-seconds]
 *
 * The devices come from a CSV file (header eid, iccid and/or imei:
 * tsesim_rows_read_csv(3)), or are N generated ones. Nothing here listens
 * or matches: the listener (tsesim_listener_start) stores every callback in
 * the journal DB (default roundtrip.journal) and answers 200 once it is
 * committed; the tracker (tsesim_job_wait, tsesim_job_devices) reads the
 * outcome from the same journal. Run it again with the same journal and it
 * resumes the job: nothing certainly acted on is sent twice.
 *
 * The listener binds 127.0.0.1 on a free port, so this works against a local
 * tsesim-sim; against ThingSpace itself it must be reachable from Verizon
 * over HTTPS (tls_cert_file, tls_key_file, a public address).
 * Credentials as in download.c; ThingSpace must echo TSESIM_LISTENER_USERNAME
 * and TSESIM_LISTENER_PASSWORD (defaults below) in every callback.
 * stdout: one line per device (for up to 100 rows), then the counts.
 * Exit status: 0 when every valid device is final, 1 otherwise, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tsesim.h>

#include "credentials.h"

#define ACCOUNT "0000123456-00001"
#define JOB "roundtrip"
#define TABLE_MAX 100 /* rows printed one by one */

/* Appends the check digit of the Luhn formula to the digits in s. */
static void luhn(char *s) {
  size_t n = strlen(s), i;
  int sum = 0, dbl = 1;
  for (i = n; i-- > 0; dbl = !dbl) {
    int d = (s[i] - '0') * (dbl ? 2 : 1);
    sum += d > 9 ? d - 9 : d;
  }
  s[n] = (char)('0' + (10 - sum % 10) % 10);
  s[n + 1] = '\0';
}

/* Device number i (from 1) of a generated job: an EID with its MOD 97-10
 * check digits, an ICCID and an IMEI with their Luhn digits. */
static tsesim_code add_generated(tsesim_request *req, unsigned long i) {
  char eid[33], iccid[21], imei[16];
  unsigned r = 0;
  size_t k;
  snprintf(eid, sizeof eid, "89049032%022lu", i);
  for (k = 0; k < 30; k++) r = (r * 10 + (unsigned)(eid[k] - '0')) % 97;
  snprintf(eid + 30, 3, "%02u", 98 - (r * 100) % 97);
  snprintf(iccid, sizeof iccid - 1, "8901410%012lu", i);
  luhn(iccid);
  snprintf(imei, sizeof imei - 1, "35209900%06lu", i % 1000000);
  luhn(imei);
  {
    tsesim_device_id ids[3] = {
        {TSESIM_ID_EID, eid, NULL}, {TSESIM_ID_ICCID, iccid, NULL}, {TSESIM_ID_IMEI, imei, NULL}};
    return tsesim_request_add_device(req, ids, 3);
  }
}

/* One line per row of the device file, in file order. */
static int print_device(const tsesim_device_status *d, void *payload) {
  const char *note = d->fault ? d->fault : d->error; /* a Failed's fault, a bad row's reason */
  (void)payload;
  printf("%5lu  %-32s  %-20s  %-15s  %-9s  %-7s  %9lu", d->line, d->eid ? d->eid : "-",
         d->iccid ? d->iccid : "-", d->imei ? d->imei : "-", d->state, d->status ? d->status : "-",
         d->callbacks);
  if (note) printf("  %s", note);
  putchar('\n');
  return 0;
}

int main(int argc, char **argv) {
  char err[TSESIM_ERRBUF_SIZE] = "", url[64];
  const char *journal_path = "roundtrip.journal", *source;
  tsesim_options opts;
  tsesim_listener_options lo = TSESIM_LISTENER_OPTIONS_INIT;
  tsesim_job_options job = TSESIM_JOB_OPTIONS_INIT;
  tsesim_job_counts c;
  tsesim_client *client = NULL;
  tsesim_journal *journal = NULL;
  tsesim_listener *listener = NULL;
  tsesim_request *req = NULL;
  tsesim_rows *rows = NULL;
  tsesim_code rc;
  char *end;
  unsigned long n = 0, i;
  int a = 1, status = 1, timeout;

  if (argc > 2 && strcmp(argv[1], "--journal") == 0) journal_path = argv[2], a = 3;
  if (argc - a < 2 || argc - a > 3) {
    fprintf(stderr, "usage: %s [--journal DB] BASE_URL (devices.csv | N) [timeout-seconds]\n",
            argv[0]);
    return 2;
  }
  source = argv[a + 1];
  timeout = argc - a > 2 ? atoi(argv[a + 2]) : 60;
  if (tsesim_global_init() != TSESIM_OK) return 1;
  if (tsesim_request_new(&req, ACCOUNT) != TSESIM_OK) goto out;

  /* 1. The devices: a number generates them, anything else is a device file. */
  n = strtoul(source, &end, 10);
  if (*source && !*end) {
    for (i = 1; i <= n; i++)
      if (add_generated(req, i) != TSESIM_OK) {
        fprintf(stderr, "roundtrip: device %lu: %s\n", i, tsesim_request_errmsg(req));
        goto out;
      }
  } else if (tsesim_rows_read_csv(&rows, req, source, err) != TSESIM_OK) {
    fprintf(stderr, "roundtrip: %s: %s\n", source, err);
    goto out;
  } else {
    for (i = 0; i < tsesim_rows_count(rows); i++) {
      const tsesim_row *row = tsesim_rows_get(rows, i);
      if (row->error) fprintf(stderr, "%s:%lu: %s\n", source, row->line, row->error);
    }
  }

  /* 2. The journal, where the job and every callback are kept. */
  if (tsesim_journal_open(&journal, journal_path, err) != TSESIM_OK) {
    fprintf(stderr, "roundtrip: %s\n", err);
    goto out;
  }

  /* 3. The listener: it opens the journal file for itself and stores each
   * callback there before it answers 200. */
  lo.journal = journal_path;
  lo.username = env_or("TSESIM_LISTENER_USERNAME", "listener");
  lo.password = env_or("TSESIM_LISTENER_PASSWORD", "listener-secret");
  if (tsesim_listener_start(&listener, &lo, err) != TSESIM_OK) {
    fprintf(stderr, "roundtrip: listener: %s\n", err);
    goto out;
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%u/callbacks", tsesim_listener_port(listener));

  /* 4. Register it, then submit the job (chunks of 10,000, 4 at once). */
  options_from_env(&opts, argv[a]);
  opts.user_agent = "roundtrip-example";
  if ((rc = tsesim_client_new(&client, &opts)) != TSESIM_OK) {
    fprintf(stderr, "roundtrip: %s (base URL must be https://, or http:// to loopback)\n",
            tsesim_strerror(rc));
    goto out;
  }
  if ((rc = tsesim_client_register_callback(client, ACCOUNT, NULL, url, lo.username,
                                            lo.password)) != TSESIM_OK) {
    fprintf(stderr, "roundtrip: register %s: %s: %s\n", url, tsesim_code_name(rc),
            tsesim_client_errmsg(client));
    goto out;
  }
  printf("listener %s registered\n", url);
  job.rows = rows; /* NULL for generated devices: device i is line i + 1 */
  rc = tsesim_job_submit(client, journal, JOB, req, &job);
  if (rc != TSESIM_OK) /* an unknown chunk may still resolve itself by its callbacks */
    fprintf(stderr, "roundtrip: submit: %s: %s\n", tsesim_code_name(rc),
            tsesim_client_errmsg(client));
  if (rc == TSESIM_E_INVAL || rc == TSESIM_E_NOMEM || rc == TSESIM_E_JOURNAL || rc == TSESIM_E_AUTH)
    goto out;
  printf("job %s submitted: %lu devices\n", JOB, (unsigned long)tsesim_request_device_count(req));

  /* 5. Wait until every submitted device is final, then report. */
  rc = tsesim_job_wait(journal, JOB, timeout * 1000L, &c);
  if (rc != TSESIM_OK && rc != TSESIM_E_TIMEOUT) {
    fprintf(stderr, "roundtrip: %s\n", tsesim_journal_errmsg(journal));
    goto out;
  }
  if (c.devices <= TABLE_MAX) {
    printf("%5s  %-32s  %-20s  %-15s  %-9s  %-7s  %9s  %s\n", "LINE", "EID", "ICCID", "IMEI",
           "STATE", "STATUS", "CALLBACKS", "FAULT/ERROR");
    if (tsesim_job_devices(journal, JOB, print_device, NULL) != TSESIM_OK)
      fprintf(stderr, "roundtrip: %s\n", tsesim_journal_errmsg(journal));
  }
  printf("callbacks %lu duplicates %lu unmatched %lu\n", c.callbacks, c.duplicates, c.unmatched);
  printf("devices %lu success %lu failed %lu unknown %lu refused %lu pending %lu invalid %lu\n",
         (unsigned long)c.devices, (unsigned long)c.success, (unsigned long)c.failed,
         (unsigned long)c.unknown, (unsigned long)c.refused,
         (unsigned long)(c.queued + c.submitted + c.warning), (unsigned long)c.invalid);
  status = rc == TSESIM_OK && c.devices == c.success + c.failed + c.invalid ? 0 : 1;
  tsesim_client_unregister_callback(client, ACCOUNT, NULL);
  tsesim_client_logout(client);
out:
  tsesim_listener_stop(listener); /* drains: every callback answered 200 is in the journal */
  tsesim_client_free(client);
  tsesim_journal_close(journal);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  return status;
}
