/*
 * demo.c - reads devices from a CSV file (header "eid,iccid,imei"), reports
 * each bad row with its line number, prints the download request body for
 * the good ones, then parses and prints a sample ThingSpace callback.
 *
 *   demo [devices.csv [callback.json [account-name [service-plan]]]]
 *
 * Exit status: 0 when the body was built and the callback parsed, 1 when
 * no device was valid or a file could not be read or parsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tsesim.h>

#include "csv.h"

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long size;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (buf = malloc((size_t)size + 1)) != NULL) {
    *len = fread(buf, 1, (size_t)size, f);
  }
  fclose(f);
  return buf;
}

static const char *or_none(const char *s) { return s ? s : "(none)"; }

static int show_callback(const char *path) {
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_callback *cb;
  size_t len = 0, i;
  char *body = read_file(path, &len);
  tsesim_code rc;

  if (!body) {
    perror(path);
    return -1;
  }
  rc = tsesim_callback_parse(&cb, body, len, errbuf);
  free(body); /* the callback keeps nothing of the body */
  if (rc != TSESIM_OK) {
    fprintf(stderr, "%s: %s: %s\n", path, tsesim_strerror(rc), errbuf);
    return -1;
  }
  printf("\ncallback %s\n", path);
  printf("  requestId   %s\n", cb->request_id);
  printf("  status      %s (%s)\n", or_none(cb->status),
         cb->status_code == TSESIM_STATUS_SUCCESS   ? "success"
         : cb->status_code == TSESIM_STATUS_FAILED  ? "failed"
         : cb->status_code == TSESIM_STATUS_WARNING ? "warning, a final callback follows"
                                                    : "other");
  printf("  attempt     %ld of %ld\n", cb->callback_count, cb->max_callback_threshold);
  for (i = 0; i < cb->n_device_ids; i++)
    printf("  device      %-6s %s\n", cb->device_ids[i].kind_name, cb->device_ids[i].id);
  if (cb->profile)
    printf("  profile     state %s, status %s, role %s\n", or_none(cb->profile->state),
           or_none(cb->profile->profile_status), or_none(cb->profile->profile_role));
  if (cb->fault_code) printf("  fault       %s: %s\n", cb->fault_code, or_none(cb->fault_string));
  tsesim_callback_free(cb);
  return 0;
}

int main(int argc, char **argv) {
  const char *csv = argc > 1 ? argv[1] : "examples/devices.csv";
  const char *callback = argc > 2 ? argv[2] : "examples/sample_callback.json";
  const char *account = argc > 3 ? argv[3] : "0000123456-00001";
  const char *plan = argc > 4 ? argv[4] : "Global eSIM Plan";
  char errbuf[TSESIM_ERRBUF_SIZE];
  tsesim_request *req;
  char *body;
  size_t len;
  tsesim_code rc;

  rc = tsesim_request_new_v2(&req, account, errbuf);
  if (rc != TSESIM_OK) {
    fprintf(stderr, "account: %s\n", errbuf);
    return 1;
  }
  if (tsesim_request_set_service_plan(req, plan) != TSESIM_OK) {
    fprintf(stderr, "%s\n", tsesim_request_errmsg(req));
    tsesim_request_free(req);
    return 1;
  }
  if (csv_read_devices(csv, req, NULL, NULL) != 0) {
    tsesim_request_free(req);
    return 1;
  }
  rc = tsesim_request_to_json(&body, &len, req);
  tsesim_request_free(req);
  if (rc != TSESIM_OK) {
    fprintf(stderr, "request body: %s\n", tsesim_strerror(rc));
    return 1;
  }
  printf("\nPOST /m2m/v1/devices/profile/actions/download (%lu bytes)\n%s\n", (unsigned long)len,
         body);
  tsesim_free(body);
  return show_callback(callback) == 0 ? 0 : 1;
}
