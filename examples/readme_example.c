#include <stdio.h>
#include <tsesim.h>

int main(void) {
  tsesim_device_id ids[] = {{TSESIM_ID_EID, "89049032000001000000000000000074", NULL},
                            {TSESIM_ID_ICCID, "89014103211118510720", NULL},
                            {TSESIM_ID_IMEI, "352099001761481", NULL}};
  tsesim_request *req;
  char *body;
  size_t len;
  if (tsesim_request_new(&req, "0000123456-00001") != TSESIM_OK) return 1;
  if (tsesim_request_add_device(req, ids, 3) != TSESIM_OK) {
    fprintf(stderr, "%s\n", tsesim_request_errmsg(req)); /* "device 0: imei: ..." */
  } else if (tsesim_request_to_json(&body, &len, req) == TSESIM_OK) {
    puts(body); /* {"devices":[{"deviceIds":[{"kind":"eid",...}]}],"accountName":...} */
    tsesim_free(body);
  }
  tsesim_request_free(req);
  return 0;
}
