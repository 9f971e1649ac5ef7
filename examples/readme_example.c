#include <stdio.h>
#include <tsesim.h>

int main(int argc, char **argv) {
  tsesim_device_id ids[] = {{TSESIM_ID_EID, "89049032000001000000000000000074", NULL},
                            {TSESIM_ID_IMEI, "352099001761481", NULL}};
  tsesim_options o;
  tsesim_client *client = NULL;
  tsesim_request *req = NULL;
  char *request_id = NULL;
  tsesim_code rc;
  if (argc != 2 || tsesim_global_init() != TSESIM_OK) return 2;
  tsesim_options_init(&o, TSESIM_OPTIONS_VERSION);
  o.base_url = argv[1]; /* NULL: https://thingspace.verizon.com/api */
  o.client_id = "sim-key", o.client_secret = "sim-secret"; /* OAuth */
  o.username = "sim-user", o.password = "sim-pass";        /* M2M session */
  if ((rc = tsesim_request_new(&req, "0000123456-00001")) == TSESIM_OK &&
      (rc = tsesim_request_add_device(req, ids, 2)) == TSESIM_OK &&
      (rc = tsesim_client_new(&client, &o)) == TSESIM_OK &&
      (rc = tsesim_client_download(&request_id, client, req)) == TSESIM_OK)
    printf("requestId %s\n", request_id); /* the results come later, as callbacks */
  else if (client)
    fprintf(stderr, "%s: %s\n", tsesim_code_name(rc), tsesim_client_errmsg(client));
  else /* "device 0: imei: ..." */
    fprintf(stderr, "%s: %s\n", tsesim_code_name(rc), req ? tsesim_request_errmsg(req) : "");
  tsesim_free(request_id);
  tsesim_client_free(client);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  return rc != TSESIM_OK;
}
