/*
 * download.c - logs in to ThingSpace and asks for a Global eSIM profile
 * download for the devices of a CSV file (header "eid,iccid,imei").
 *
 *   download BASE_URL devices.csv [account-name [service-plan]]
 *
 * Credentials come from the environment: TSESIM_CLIENT_ID and
 * TSESIM_CLIENT_SECRET (OAuth), TSESIM_USERNAME and TSESIM_PASSWORD (M2M);
 * each defaults to the local simulator's (sim-key, sim-secret, sim-user,
 * sim-pass). Prints the requestId; the results arrive later as callbacks.
 * Exit status: 0 accepted, 1 refused or failed, 3 outcome unknown (the
 * request may have been acted on: do not send it again blindly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <tsesim.h>

#include "credentials.h"
#include "csv.h"

int main(int argc, char **argv) {
  tsesim_options opts;
  tsesim_client *client = NULL;
  tsesim_request *req = NULL;
  char *request_id = NULL;
  tsesim_code rc;
  int status = 1;

  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: %s BASE_URL devices.csv [account-name [service-plan]]\n", argv[0]);
    return 2;
  }
  if (tsesim_global_init() != TSESIM_OK) return 1;
  if (tsesim_request_new(&req, argc > 3 ? argv[3] : "0000123456-00001") != TSESIM_OK ||
      (argc > 4 && tsesim_request_set_service_plan(req, argv[4]) != TSESIM_OK)) {
    fprintf(stderr, "download: bad account name or service plan\n");
    goto out;
  }
  if (csv_read_devices(argv[2], req, NULL, NULL) != 0) goto out;
  options_from_env(&opts, argv[1]);
  opts.user_agent = "download-example";
  if ((rc = tsesim_client_new(&client, &opts)) != TSESIM_OK) {
    fprintf(stderr, "download: %s (base URL must be https://, or http:// to loopback)\n",
            tsesim_strerror(rc));
    goto out;
  }
  rc = tsesim_client_download(&request_id, client, req);
  if (rc == TSESIM_OK) {
    printf("requestId %s for %lu devices\n", request_id,
           (unsigned long)tsesim_request_device_count(req));
    status = 0;
  } else {
    const tsesim_api_error *e = tsesim_client_last_error(client);
    fprintf(stderr, "download: %s: %s\n", tsesim_code_name(rc), tsesim_client_errmsg(client));
    if (e && e->code) fprintf(stderr, "download: HTTP %ld, code %s\n", e->http_status, e->code);
    status = rc == TSESIM_E_UNKNOWN_OUTCOME ? 3 : 1;
  }
  tsesim_client_logout(client);
out:
  tsesim_free(request_id);
  tsesim_client_free(client);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  return status;
}
