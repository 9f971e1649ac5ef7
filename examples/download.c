/*
 * download.c - asks ThingSpace for a Global eSIM profile download for every
 * device of a device file, however many, as a job kept in a journal:
 *
 *   download [--journal DB] BASE_URL devices.csv [account-name [service-plan]]
 *
 * The file is CSV whose header names the columns: eid, and iccid and/or
 * imei (tsesim_rows_parse_csv(3)). The devices go in chunks of 10,000, 4 at
 * once, and each chunk's state is kept in the journal DB (by default
 * devices.csv.journal), so running the same command again sends only what
 * certainly was not acted on. stderr gets a line per change of a chunk, then
 * each rejected row as FILE:LINE: reason; stdout gets the counts.
 *
 * Credentials come from the environment: TSESIM_CLIENT_ID and
 * TSESIM_CLIENT_SECRET (OAuth), TSESIM_USERNAME and TSESIM_PASSWORD (M2M);
 * each defaults to the local simulator's (sim-key, sim-secret, sim-user,
 * sim-pass). The results arrive later as callbacks.
 * Exit status: 0 every chunk accepted (rejected rows are only reported),
 * 1 refused or failed, 2 usage, 3 unfinished: some chunk's outcome is
 * unknown (resolve it before sending it again), or ThingSpace was busy or
 * out of reach (run the same command again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tsesim.h>

#include "credentials.h"

/* One line per change of a chunk; the counts are kept for the summary
 * (the strings of p are borrowed for this call only). */
static void on_progress(const tsesim_job_progress *p, void *payload) {
  tsesim_job_progress *last = payload;
  *last = *p;
  if (p->chunk < 0) return; /* the once-a-second report */
  fprintf(stderr, "download: chunk %ld of %lu %s%s%s (%lu of %lu devices accepted)\n", p->chunk,
          (unsigned long)p->chunks, p->state,
          p->request_id ? ": requestId "
          : p->error    ? ": "
                        : "",
          p->request_id ? p->request_id
          : p->error    ? p->error
                        : "",
          (unsigned long)p->accepted, (unsigned long)p->devices);
}

int main(int argc, char **argv) {
  char err[TSESIM_ERRBUF_SIZE] = "", *own_path = NULL;
  const char *csv;
  tsesim_options opts;
  tsesim_job_options job = TSESIM_JOB_OPTIONS_INIT;
  tsesim_job_progress last;
  tsesim_client *client = NULL;
  tsesim_journal *journal = NULL;
  tsesim_request *req = NULL;
  tsesim_rows *rows = NULL;
  tsesim_code rc;
  size_t i;
  int a = argc > 2 && strcmp(argv[1], "--journal") == 0 ? 3 : 1, status = 1;

  if (argc - a < 2 || argc - a > 4) {
    fprintf(stderr, "usage: %s [--journal DB] BASE_URL devices.csv [account-name [service-plan]]\n",
            argv[0]);
    return 2;
  }
  csv = argv[a + 1];
  if (tsesim_global_init() != TSESIM_OK) return 1;
  if (tsesim_request_new(&req, argc > a + 2 ? argv[a + 2] : "0000123456-00001") != TSESIM_OK ||
      (argc > a + 3 && tsesim_request_set_service_plan(req, argv[a + 3]) != TSESIM_OK)) {
    fprintf(stderr, "download: bad account name or service plan\n");
    goto out;
  }
  /* Every row is read; the valid ones become the request's devices. */
  if (tsesim_rows_read_csv(&rows, req, csv, err) != TSESIM_OK) {
    if (strncmp(err, "line ", 5) == 0) fprintf(stderr, "%s: ", csv); /* else err names it */
    fprintf(stderr, "%s\n", err);
    goto out;
  }
  if (a == 1) { /* the default journal: devices.csv.journal */
    if (!(own_path = malloc(strlen(csv) + sizeof ".journal"))) goto out;
    sprintf(own_path, "%s.journal", csv);
  }
  if (tsesim_journal_open(&journal, a == 3 ? argv[2] : own_path, err) != TSESIM_OK) {
    fprintf(stderr, "download: %s\n", err);
    goto out;
  }
  options_from_env(&opts, argv[a]);
  opts.user_agent = "download-example";
  if ((rc = tsesim_client_new(&client, &opts)) != TSESIM_OK) {
    fprintf(stderr, "download: %s (base URL must be https://, or http:// to loopback)\n",
            tsesim_strerror(rc));
    goto out;
  }

  memset(&last, 0, sizeof last);
  job.rows = rows; /* the journal then knows every line of the file */
  job.progress_fn = on_progress;
  job.progress_payload = &last;
  rc = tsesim_job_submit(client, journal, "download", req, &job);

  for (i = 0; i < tsesim_rows_count(rows); i++) {
    const tsesim_row *row = tsesim_rows_get(rows, i);
    if (row->error) fprintf(stderr, "%s:%lu: %s\n", csv, row->line, row->error);
  }
  if (last.chunks)
    printf("devices %lu accepted %lu unknown %lu refused %lu queued %lu rejected %lu\n",
           (unsigned long)last.devices, (unsigned long)last.accepted,
           (unsigned long)(last.unknown + last.sending), (unsigned long)last.refused,
           (unsigned long)last.queued, (unsigned long)tsesim_rows_rejected(rows));
  if (rc == TSESIM_OK) {
    status = 0;
  } else {
    const tsesim_api_error *e = tsesim_client_last_error(client);
    fprintf(stderr, "download: %s: %s\n", tsesim_code_name(rc), tsesim_client_errmsg(client));
    if (e && e->code) fprintf(stderr, "download: HTTP %ld, code %s\n", e->http_status, e->code);
    status = rc == TSESIM_E_UNKNOWN_OUTCOME || rc == TSESIM_E_RATE_LIMITED ||
                     rc == TSESIM_E_TRANSPORT || rc == TSESIM_E_TIMEOUT
                 ? 3
                 : 1;
  }
  tsesim_client_logout(client);
out:
  tsesim_client_free(client);
  tsesim_journal_close(journal);
  free(own_path);
  tsesim_rows_free(rows);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  return status;
}
