/*
 * roundtrip.c - the whole job: log in, register a callback listener, ask
 * for a Global eSIM profile download for the devices of a CSV file, receive
 * and check every callback, and print each device's final status.
 *
 *   roundtrip BASE_URL devices.csv [timeout-seconds]
 *
 * The listener runs here (libmicrohttpd on 127.0.0.1, a free port), so this
 * works against a local tsesim-sim; against ThingSpace itself the listener
 * must be reachable from Verizon over HTTPS. Credentials as in download.c
 * (environment, defaulting to the simulator's). Exit status: 0 when every
 * device got a final callback, 1 otherwise.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tsesim.h>

#include "credentials.h"
#include "csv.h"

#define MAX_DEVICES 1000
#define LISTENER_USER "listener"
#define LISTENER_PASS "listener-secret"

typedef struct device {
  char eid[33], iccid[21], imei[16]; /* "" when the row had none */
  char status[16];                   /* the final status, "" while none */
  char detail[96];                   /* state/status/role, or the fault code */
  int warned;                        /* a Warning came first */
} device;

static device devices[MAX_DEVICES];
static size_t n_devices, n_final;
static unsigned long n_callbacks, n_rejected;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void remember(const tsesim_device_id *ids, size_t n, void *u) {
  device *d = &devices[n_devices];
  size_t i;
  (void)u;
  if (n_devices == MAX_DEVICES) return;
  memset(d, 0, sizeof *d);
  for (i = 0; i < n; i++) {
    if (ids[i].kind == TSESIM_ID_EID)
      snprintf(d->eid, sizeof d->eid, "%s", ids[i].id);
    else if (ids[i].kind == TSESIM_ID_ICCID)
      snprintf(d->iccid, sizeof d->iccid, "%s", ids[i].id);
    else if (ids[i].kind == TSESIM_ID_IMEI)
      snprintf(d->imei, sizeof d->imei, "%s", ids[i].id);
  }
  n_devices++;
}

/* One callback, already parsed: find its device by eid, keep its outcome. */
static int record(const tsesim_callback *cb) {
  size_t i, j;
  if (!cb->username || !cb->password || strcmp(cb->username, LISTENER_USER) ||
      strcmp(cb->password, LISTENER_PASS))
    return -1; /* not the credentials we registered: not from ThingSpace */
  for (i = 0; i < cb->n_device_ids; i++) {
    if (cb->device_ids[i].kind != TSESIM_ID_EID) continue;
    for (j = 0; j < n_devices; j++) {
      device *d = &devices[j];
      if (strcmp(d->eid, cb->device_ids[i].id)) continue;
      if (cb->status_code == TSESIM_STATUS_WARNING) {
        d->warned = 1;
      } else if (!d->status[0]) { /* the first final status counts; repeats are redeliveries */
        snprintf(d->status, sizeof d->status, "%s", cb->status ? cb->status : "?");
        if (cb->profile)
          snprintf(d->detail, sizeof d->detail, "%s/%s/%s",
                   cb->profile->state ? cb->profile->state : "-",
                   cb->profile->profile_status ? cb->profile->profile_status : "-",
                   cb->profile->profile_role ? cb->profile->profile_role : "-");
        else
          snprintf(d->detail, sizeof d->detail, "%s", cb->fault_code ? cb->fault_code : "-");
        n_final++;
      }
      return 0;
    }
  }
  return -1;
}

typedef struct body {
  char buf[65536];
  size_t len;
  int too_long;
} body;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state) {
  body *b = *state;
  struct MHD_Response *resp;
  enum MHD_Result ret;
  unsigned status = 204;
  (void)cls, (void)url, (void)version;
  if (!b) {
    if (strcmp(method, "POST") || !(b = calloc(1, sizeof *b))) return MHD_NO;
    *state = b;
    return MHD_YES;
  }
  if (*size) {
    if (b->len + *size > sizeof b->buf)
      b->too_long = 1;
    else
      memcpy(b->buf + b->len, data, *size), b->len += *size;
    *size = 0;
    return MHD_YES;
  }
  {
    tsesim_callback *cb = NULL;
    char errbuf[TSESIM_ERRBUF_SIZE];
    pthread_mutex_lock(&mu);
    n_callbacks++;
    if (b->too_long || tsesim_callback_parse(&cb, b->buf, b->len, errbuf) != TSESIM_OK ||
        record(cb) != 0) {
      n_rejected++;
      status = 400; /* ThingSpace will try again; a real listener would log errbuf */
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    tsesim_callback_free(cb);
  }
  resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  ret = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  free(*state);
  *state = NULL;
}

int main(int argc, char **argv) {
  const char *account = "0000123456-00001";
  tsesim_options opts;
  tsesim_client *client = NULL;
  tsesim_request *req = NULL;
  struct MHD_Daemon *listener = NULL;
  struct sockaddr_in sa;
  struct timespec until;
  char url[64], *request_id = NULL;
  tsesim_code rc;
  int status = 1, timeout = argc > 3 ? atoi(argv[3]) : 30;
  size_t i;

  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s BASE_URL devices.csv [timeout-seconds]\n", argv[0]);
    return 2;
  }
  if (tsesim_global_init() != TSESIM_OK || tsesim_request_new(&req, account) != TSESIM_OK) return 1;
  if (csv_read_devices(argv[2], req, remember, NULL) != 0 || n_devices == 0) goto out;

  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  listener = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                              MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                              MHD_OPTION_END);
  if (!listener) {
    fprintf(stderr, "roundtrip: cannot start the callback listener\n");
    goto out;
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%u/callbacks",
           (unsigned)MHD_get_daemon_info(listener, MHD_DAEMON_INFO_BIND_PORT)->port);

  options_from_env(&opts, argv[1]);
  if ((rc = tsesim_client_new(&client, &opts)) != TSESIM_OK ||
      (rc = tsesim_client_login(client)) != TSESIM_OK ||
      (rc = tsesim_client_register_callback(client, account, NULL, url, LISTENER_USER,
                                            LISTENER_PASS)) != TSESIM_OK ||
      (rc = tsesim_client_download(&request_id, client, req)) != TSESIM_OK) {
    fprintf(stderr, "roundtrip: %s: %s\n", tsesim_code_name(rc),
            client ? tsesim_client_errmsg(client) : "bad options");
    goto out;
  }
  printf("logged in, listener %s registered, download %s accepted for %lu devices\n", url,
         request_id, (unsigned long)n_devices);

  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout;
  pthread_mutex_lock(&mu);
  while (n_final < n_devices && pthread_cond_timedwait(&cv, &mu, &until) == 0) {
  }
  printf("%-32s  %-20s  %-15s  %-8s %s\n", "EID", "ICCID", "IMEI", "STATUS", "DETAIL");
  for (i = 0; i < n_devices; i++)
    printf("%-32s  %-20s  %-15s  %-8s %s%s\n", devices[i].eid,
           devices[i].iccid[0] ? devices[i].iccid : "-", devices[i].imei[0] ? devices[i].imei : "-",
           devices[i].status[0] ? devices[i].status : "PENDING", devices[i].detail,
           devices[i].warned ? "  (after a Warning)" : "");
  printf("%lu callbacks received, %lu rejected; %lu of %lu devices final\n", n_callbacks,
         n_rejected, (unsigned long)n_final, (unsigned long)n_devices);
  status = n_final == n_devices ? 0 : 1;
  pthread_mutex_unlock(&mu);
  tsesim_client_unregister_callback(client, account, NULL);
  tsesim_client_logout(client);
out:
  if (listener) MHD_stop_daemon(listener);
  tsesim_free(request_id);
  tsesim_client_free(client);
  tsesim_request_free(req);
  tsesim_global_cleanup();
  return status;
}
