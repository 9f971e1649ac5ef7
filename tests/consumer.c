/*
 * consumer.c - an application written from the public contract only
 * (tsesim.h as documented), built by .ci/run against an installed libtsesim
 * with nothing but `pkg-config --cflags --libs thingspace-esim`. Given a
 * base URL (of an installed tsesim-sim), it also drives the client with
 * options of version 1, as API.md fixes them.
 */
#include <stdio.h>
#include <string.h>
#include <tsesim.h>

#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "consumer:%d: failed: %s\n", __LINE__, #cond); \
      return 1;                                                      \
    }                                                                \
  } while (0)

/* The client, against the simulator's default credentials. */
static int client_part(const char *base_url) {
  tsesim_options opts;
  tsesim_client *client;
  tsesim_request *req;
  tsesim_device_id ids[2];
  char *rid = NULL;

  CHECK(tsesim_global_init() == TSESIM_OK);
  CHECK(tsesim_options_init(&opts, 1) == TSESIM_OK);
  opts.base_url = base_url;
  opts.client_id = "sim-key";
  opts.client_secret = "sim-secret";
  opts.username = "sim-user";
  opts.password = "sim-pass";
  CHECK(tsesim_client_new(&client, &opts) == TSESIM_OK);
  CHECK(tsesim_client_login(client) == TSESIM_OK);
  CHECK(tsesim_request_new(&req, "0000123456-00001") == TSESIM_OK);
  ids[0].kind = TSESIM_ID_EID;
  ids[0].id = "89049032000001000000000000000074";
  ids[0].kind_name = NULL;
  ids[1].kind = TSESIM_ID_IMEI;
  ids[1].id = "352099001761481";
  ids[1].kind_name = NULL;
  CHECK(tsesim_request_add_device(req, ids, 2) == TSESIM_OK);
  CHECK(tsesim_client_download(&rid, client, req) == TSESIM_OK && rid && strlen(rid) == 36);
  tsesim_free(rid);
  CHECK(tsesim_client_logout(client) == TSESIM_OK);
  tsesim_client_free(client);

  opts.password = "not-the-password";
  CHECK(tsesim_client_new(&client, &opts) == TSESIM_OK);
  CHECK(tsesim_client_download(&rid, client, req) == TSESIM_E_AUTH && rid == NULL);
  CHECK(tsesim_client_last_error(client) != NULL);
  CHECK(tsesim_client_login(client) == TSESIM_E_AUTH); /* remembered, not asked again */
  tsesim_client_free(client);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  printf("consumer: client OK against %s\n", base_url);
  return 0;
}

int main(int argc, char **argv) {
  static const char cb_body[] =
      "{\"requestId\":\"r-1\",\"deviceIds\":[{\"id\":\"89014103211118510720\",\"kind\":\"ICCID\"}],"
      "\"faultResponse\":{\"faultcode\":\"E1\",\"faultstring\":\"device off\"},"
      "\"status\":\"Failed\",\"callbackCount\":\"2\",\"maxCallbackThreshold\":\"4\"}";
  tsesim_device_id ids[2];
  tsesim_request *req;
  tsesim_callback *cb;
  tsesim_api_error *err;
  char errbuf[TSESIM_ERRBUF_SIZE], *body, *rid;
  size_t len;

  CHECK(tsesim_version() >> 16 == TSESIM_VERSION_MAJOR);
  CHECK(tsesim_request_new(&req, "0000123456-00001") == TSESIM_OK);
  ids[0].kind = TSESIM_ID_EID;
  ids[0].id = "89049032000001000000000000000074";
  ids[0].kind_name = NULL;
  ids[1].kind = TSESIM_ID_IMEI;
  ids[1].id = "352099001761482"; /* bad check digit */
  ids[1].kind_name = NULL;
  CHECK(tsesim_request_add_device(req, ids, 2) == TSESIM_E_INVAL);
  CHECK(strstr(tsesim_request_errmsg(req), "device 0") != NULL);
  CHECK(tsesim_request_device_count(req) == 0);
  ids[1].id = "352099001761481";
  CHECK(tsesim_request_add_device(req, ids, 2) == TSESIM_OK);
  CHECK(tsesim_request_to_json(&body, &len, req) == TSESIM_OK);
  CHECK(strcmp(body,
               "{\"devices\":[{\"deviceIds\":[{\"kind\":\"eid\",\"id\":"
               "\"89049032000001000000000000000074\"},{\"kind\":\"imei\",\"id\":"
               "\"352099001761481\"}]}],\"accountName\":\"0000123456-00001\"}") == 0);
  CHECK(len == strlen(body));
  tsesim_free(body);
  tsesim_request_free(req);

  CHECK(tsesim_response_parse(&rid, "{\"requestId\":\"abc\"}", 19, errbuf) == TSESIM_OK);
  CHECK(strcmp(rid, "abc") == 0);
  tsesim_free(rid);

  {
    static const char fault[] = "{\"fault\":{\"code\":\"900901\"}}";
    CHECK(tsesim_api_error_parse(&err, 401, fault, sizeof fault - 1) == TSESIM_OK);
  }
  CHECK(err->http_status == 401 && err->code && strcmp(err->code, "900901") == 0);
  CHECK(err->message == NULL && strcmp(err->body, "{\"fault\":{\"code\":\"900901\"}}") == 0);
  tsesim_api_error_free(err);

  CHECK(tsesim_callback_parse(&cb, cb_body, sizeof cb_body - 1, errbuf) == TSESIM_OK);
  CHECK(strcmp(cb->request_id, "r-1") == 0 && cb->n_device_ids == 1);
  CHECK(cb->device_ids[0].kind == TSESIM_ID_ICCID);
  CHECK(strcmp(cb->device_ids[0].kind_name, "ICCID") == 0);
  CHECK(cb->status_code == TSESIM_STATUS_FAILED && cb->callback_count == 2);
  CHECK(cb->profile == NULL && strcmp(cb->fault_string, "device off") == 0);
  tsesim_callback_free(cb);
  CHECK(tsesim_callback_parse(&cb, "[1]", 3, errbuf) == TSESIM_E_PARSE && cb == NULL);
  printf("consumer: OK against libtsesim %s\n", TSESIM_VERSION_STR);
  return argc > 1 ? client_part(argv[1]) : 0;
}
