/*
 * listener_mhd.c - the callback listener (tsesim_listener_start(3)): the
 * one component of the library that owns threads (libtsesim-thread(3)).
 *
 * libmicrohttpd runs a thread per connection. That thread reads the body
 * (within the per-request cap and the listener-wide budget), judges it
 * (listener_http.c) and, for a good callback, queues it for the one writer
 * thread and waits. The writer takes everything queued at once and stores it
 * in one transaction (group commit: one fsync for many callbacks), runs
 * on_callback for each, then wakes the waiting connection threads, which
 * answer 200 (or 503 for the whole group when the store failed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsesim_int.h"

#define GROUP_MAX 1024 /* callbacks in one commit at most */
#define DEFAULT_MAX_BODY ((size_t)1 << 20)
#define DEFAULT_BUDGET ((size_t)64 << 20)

/* One good callback waiting for the writer; lives on its connection
 * thread's stack until done. */
typedef struct pending {
  tsesim_callback *cb;
  const char *body;
  size_t len;
  int status; /* 200 or 503, once done */
  int done;
  pthread_cond_t answered; /* its own: the writer wakes this thread only, not every waiter */
  struct pending *next;
} pending;

/* One request being read. */
typedef struct conn_req {
  char *body;
  size_t len, cap;
  size_t reserved; /* bytes of the budget it holds */
  int state;       /* TSESIM__BODY_* */
  struct timespec t0;
} conn_req;

/* Given to a request whose conn_req could not be allocated: it is read and
 * answered 503, and never freed. */
static const conn_req nomem_req_storage;
#define nomem_req (*(conn_req *)&nomem_req_storage)

struct tsesim_listener {
  struct MHD_Daemon *daemon;
  int listen_fd; /* ours until MHD_quiesce_daemon gives it back */
  unsigned int port;
  tsesim__listener_rules rules;
  char *path, *username, *password, *tls_cert, *tls_key;
  char *address; /* for messages */
  size_t budget;
  size_t held;  /* body bytes held now, atomic */
  long active;  /* requests begun and not completed, atomic */
  int stopping; /* atomic: answers say Connection: close */
  unsigned int timeout_s;
  tsesim__logger log;
  tsesim_callback_fn on_callback;
  void *callback_payload;
  tsesim_journal *journal; /* NULL: nothing stored */
  char journal_path[256];  /* for messages */

  pthread_mutex_t mu; /* guards the queue, writer_quit and every pending's done/status */
  pthread_cond_t work;
  pending *head, *tail;
  int writer_quit;
  pthread_t writer;
  tsesim__cb_item *items; /* the writer's, GROUP_MAX of them */
  pending **group;
  unsigned long commits; /* group commits made: the writer's, atomic */
};

/* ---- helpers ---- */

static char *dup_str(const char *s) { return s ? tsesim__strndup(s, strlen(s)) : NULL; }

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1000.0 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void errno_text(int e, char *why, size_t n) {
  if (strerror_r(e, why, n) != 0) snprintf(why, n, "errno %d", e);
}

/* Reads a whole PEM file into memory (through tsesim__malloc): libmicrohttpd
 * takes certificates as strings. TSESIM_E_TLS naming the file. */
static tsesim_code read_pem(const char *what, const char *path, char **out, char *errbuf) {
  char shown[160], why[128];
  FILE *f;
  char *p = NULL, *np;
  size_t len = 0, cap = 0, n;

  tsesim__quote(shown, sizeof shown, path, 120);
  *out = NULL;
  f = fopen(path, "rb");
  if (!f) {
    errno_text(errno, why, sizeof why);
    tsesim__errbuf_set(errbuf, "%s %s: cannot read it: %s", what, shown, why);
    return TSESIM_E_TLS;
  }
  for (;;) {
    if (cap - len < 4097) {
      if (cap > ((size_t)1 << 24)) {
        tsesim__errbuf_set(errbuf, "%s %s: larger than 16 MiB, not a PEM file", what, shown);
        goto fail_tls;
      }
      np = tsesim__realloc(p, cap ? cap * 2 : 8192);
      if (!np) {
        tsesim__errbuf_set(errbuf, "%s %s: out of memory", what, shown);
        if (p) tsesim__memzero(p, len);
        tsesim__free(p);
        fclose(f);
        return TSESIM_E_NOMEM;
      }
      p = np;
      cap = cap ? cap * 2 : 8192;
    }
    n = fread(p + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
  }
  if (ferror(f) || len == 0) {
    tsesim__errbuf_set(errbuf, "%s %s: %s", what, shown, len ? "read error" : "empty");
    goto fail_tls;
  }
  fclose(f);
  p[len] = '\0';
  *out = p;
  return TSESIM_OK;
fail_tls:
  if (p) tsesim__memzero(p, len);
  tsesim__free(p);
  fclose(f);
  return TSESIM_E_TLS;
}

/* ---- the body budget (as tools/sim_http.c) ---- */

static int budget_take(tsesim_listener *l, size_t n) {
  size_t cur = __atomic_load_n(&l->held, __ATOMIC_RELAXED);
  do {
    if (n > l->budget || cur > l->budget - n) return -1;
  } while (
      !__atomic_compare_exchange_n(&l->held, &cur, cur + n, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return 0;
}

static void req_release(tsesim_listener *l, conn_req *r) {
  if (r->reserved) __atomic_fetch_sub(&l->held, r->reserved, __ATOMIC_RELAXED);
  r->reserved = 0;
  tsesim__free(r->body);
  r->body = NULL;
  r->len = r->cap = 0;
}

/* The largest body one request may send: the cap, or the whole budget when
 * that is smaller (such a body could never fit: 413, not 503). */
static size_t body_cap(const tsesim_listener *l) {
  return l->budget < l->rules.max_body ? l->budget : l->rules.max_body;
}

/* ---- the writer ---- */

/* Stores a group and answers it: the only place callbacks are committed. */
static void write_group(tsesim_listener *l, pending **g, size_t n) {
  size_t i;
  int status = 200;
  tsesim_code rc = TSESIM_OK;

  for (i = 0; i < n; i++) {
    memset(&l->items[i], 0, sizeof l->items[i]);
    l->items[i].cb = g[i]->cb;
    l->items[i].body = g[i]->body;
    l->items[i].len = g[i]->len;
  }
  if (l->journal) {
    rc = tsesim__journal_callbacks_store(l->journal, l->items, n);
    if (rc == TSESIM_OK) {
      __atomic_add_fetch(&l->commits, 1, __ATOMIC_RELAXED);
    } else {
      status = 503;
      tsesim__log(&l->log, 0, "listener: cannot store %lu callback(s), answering 503: %s",
                  (unsigned long)n, tsesim_journal_errmsg(l->journal));
    }
  }
  /* After the commit and before the answers: an application that counts
   * what on_callback saw never counts less than the peers were told. */
  if (status == 200 && l->on_callback)
    for (i = 0; i < n; i++) l->on_callback(g[i]->cb, &l->items[i].result, l->callback_payload);
  pthread_mutex_lock(&l->mu);
  for (i = 0; i < n; i++) {
    g[i]->status = status;
    g[i]->done = 1;
    pthread_cond_signal(&g[i]->answered);
  }
  pthread_mutex_unlock(&l->mu);
}

static void *writer_main(void *arg) {
  tsesim_listener *l = arg;
  size_t n;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->head && !l->writer_quit) pthread_cond_wait(&l->work, &l->mu);
    if (!l->head) break; /* quitting, and the queue is empty: drained */
    for (n = 0; l->head && n < GROUP_MAX; n++) {
      l->group[n] = l->head;
      l->head = l->head->next;
    }
    if (!l->head) l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    write_group(l, l->group, n);
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* Hands cb to the writer and waits for its answer: 200 or 503. */
static int store_and_wait(tsesim_listener *l, tsesim_callback *cb, const char *body, size_t len) {
  pending p;
  p.cb = cb;
  p.body = body;
  p.len = len;
  p.status = 0;
  p.done = 0;
  p.next = NULL;
  if (pthread_cond_init(&p.answered, NULL) != 0) return 503;
  pthread_mutex_lock(&l->mu);
  if (l->tail)
    l->tail->next = &p;
  else
    l->head = &p;
  l->tail = &p;
  pthread_cond_signal(&l->work);
  while (!p.done) pthread_cond_wait(&p.answered, &l->mu);
  pthread_mutex_unlock(&l->mu);
  pthread_cond_destroy(&p.answered);
  return p.status;
}

/* ---- libmicrohttpd's side ---- */

static void peer_name(struct MHD_Connection *c, char *out, size_t n) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(out, n, "?");
  if (!ci || !ci->client_addr) return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

static enum MHD_Result answer(tsesim_listener *l, struct MHD_Connection *c, conn_req *r,
                              const char *method, const char *url, int status, const char *body) {
  struct MHD_Response *resp;
  enum MHD_Result rc;
  char peer[64], qm[40], qu[140];

  resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", "application/json");
  if (status == 405) MHD_add_response_header(resp, "Allow", "POST");
  if (status == 503) MHD_add_response_header(resp, "Retry-After", "1");
  if (__atomic_load_n(&l->stopping, __ATOMIC_RELAXED))
    MHD_add_response_header(resp, "Connection", "close");
  rc = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  if (l->log.fn && l->log.level >= 2) {
    /* Method and path are the peer's bytes: quoted, control characters
     * escaped. Never a header value or the body (the password is in it). */
    peer_name(c, peer, sizeof peer);
    tsesim__quote(qm, sizeof qm, method, 16);
    tsesim__quote(qu, sizeof qu, url, 100);
    tsesim__log(&l->log, 2, "listener: %s %s %s %d %.1fms", peer, qm, qu, status, ms_since(&r->t0));
  }
  return rc;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
  tsesim_listener *l = cls;
  conn_req *r = *con_cls;
  char ans[TSESIM__ANSWER_SIZE];
  tsesim_callback *cb = NULL;
  int status;
  (void)version;

  if (!r) {
    __atomic_fetch_add(&l->active, 1, __ATOMIC_RELAXED);
    r = tsesim__malloc(sizeof *r);
    if (!r) {
      r = &nomem_req; /* read and answered 503; never written to */
      *con_cls = r;
      return MHD_YES;
    }
    memset(r, 0, sizeof *r);
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    *con_cls = r;
    /* A declared length is checked and taken from the budget whole, before
     * any byte arrives, and held in one block of its size. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    char *end;
    unsigned long long n = cl && *cl >= '0' && *cl <= '9' ? strtoull(cl, &end, 10) : 0;
    if (n && !*end && strcmp(url, l->rules.path) == 0) {
      if (n > body_cap(l)) {
        r->state = TSESIM__BODY_TOO_LARGE;
      } else if (budget_take(l, (size_t)n)) {
        r->state = TSESIM__BODY_OVER_BUDGET;
      } else {
        r->reserved = (size_t)n;
        r->body = tsesim__malloc(r->reserved);
        if (r->body)
          r->cap = r->reserved;
        else
          r->state = TSESIM__BODY_NOMEM;
      }
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    /* Bodies on other paths, and refused ones, are read and dropped. */
    if (r == &nomem_req || r->state != TSESIM__BODY_OK || strcmp(url, l->rules.path) != 0)
      return MHD_YES;
    if (n > body_cap(l) - r->len) {
      r->state = TSESIM__BODY_TOO_LARGE;
      req_release(l, r);
      return MHD_YES;
    }
    /* Without a Content-Length (chunked), the budget is taken as bytes come. */
    if (r->len + n > r->reserved) {
      size_t more = r->len + n - r->reserved;
      if (budget_take(l, more)) {
        r->state = TSESIM__BODY_OVER_BUDGET;
        req_release(l, r);
        return MHD_YES;
      }
      r->reserved += more;
    }
    if (r->len + n > r->cap) {
      size_t cap = r->cap ? r->cap : 4096;
      char *nb;
      while (cap < r->len + n) cap *= 2;
      if (cap > body_cap(l)) cap = body_cap(l);
      nb = tsesim__realloc(r->body, cap);
      if (!nb) {
        r->state = TSESIM__BODY_NOMEM;
        req_release(l, r);
        return MHD_YES;
      }
      r->body = nb;
      r->cap = cap;
    }
    memcpy(r->body + r->len, upload_data, n);
    r->len += n;
    return MHD_YES;
  }
  status = tsesim__listener_judge(
      &l->rules, method, url, r == &nomem_req ? TSESIM__BODY_NOMEM : r->state,
      r == &nomem_req ? NULL : r->body, r == &nomem_req ? 0 : r->len, &cb, ans);
  if (status == 0) {
    status = store_and_wait(l, cb, r->body, r->len);
    tsesim_callback_free(cb);
    if (status == 200)
      tsesim__listener_answer(ans, 200, "stored");
    else
      tsesim__listener_answer(ans, 503, "the journal cannot store it now; deliver it again");
  }
  if (r == &nomem_req) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    conn_req tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.t0 = t;
    return answer(l, c, &tmp, method, url, status, ans);
  }
  /* The body goes back to the budget before the answer leaves. */
  req_release(l, r);
  return answer(l, c, r, method, url, status, ans);
}

/* Every request ends here, answered or not (a peer gone mid-body, a
 * timeout): its budget goes back and it no longer counts as in flight. */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  tsesim_listener *l = cls;
  conn_req *r = *con_cls;
  (void)c, (void)toe;
  if (r) {
    if (r != &nomem_req) {
      req_release(l, r);
      tsesim__free(r);
    }
    __atomic_fetch_sub(&l->active, 1, __ATOMIC_RELAXED);
  }
  *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  tsesim_listener *l = cls;
  char line[400], shown[480];
  size_t n;
  if (!l->log.fn || l->log.level < 1) return;
  vsnprintf(line, sizeof line, fmt, ap);
  n = strlen(line);
  while (n && line[n - 1] == '\n') line[--n] = '\0';
  tsesim__quote(shown, sizeof shown, line, 400);
  tsesim__log(&l->log, 1, "listener: libmicrohttpd: %s", shown);
}

/* ---- start and stop ---- */

/* The listening socket, made here rather than by libmicrohttpd so that a
 * bind failure is told apart from a TLS one, with errno. SO_REUSEADDR: a
 * listener restarted after a crash binds its port at once, because
 * ThingSpace keeps delivering to the URL it was given. Not SO_REUSEPORT:
 * two live listeners on one port would split the callbacks. */
static tsesim_code listen_socket(tsesim_listener *l, const tsesim_listener_options *o, int *is_v6,
                                 char *errbuf) {
  struct sockaddr_storage ss;
  socklen_t sl;
  int fd, one = 1;
  char why[128], shown[80];
  const char *addr = o->address ? o->address : "127.0.0.1";

  memset(&ss, 0, sizeof ss);
  tsesim__quote(shown, sizeof shown, addr, 60);
  *is_v6 = strchr(addr, ':') != NULL;
  if (*is_v6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((unsigned short)o->port);
    if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1) goto bad_addr;
    sl = sizeof *in6;
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((unsigned short)o->port);
    if (inet_pton(AF_INET, addr, &in->sin_addr) != 1) goto bad_addr;
    sl = sizeof *in;
  }
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    errno_text(errno, why, sizeof why);
    tsesim__errbuf_set(errbuf, "listener %s port %u: cannot make a socket: %s", shown, o->port,
                       why);
    return TSESIM_E_TRANSPORT;
  }
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
    errno_text(errno, why, sizeof why);
    close(fd);
    tsesim__errbuf_set(errbuf, "listener %s port %u: cannot bind: %s", shown, o->port, why);
    return TSESIM_E_TRANSPORT;
  }
  sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    l->port = ntohs(*is_v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                           : ((struct sockaddr_in *)&ss)->sin_port);
  l->listen_fd = fd;
  return TSESIM_OK;
bad_addr:
  tsesim__errbuf_set(errbuf, "address: %s is not a numeric IPv4 or IPv6 address", shown);
  return TSESIM_E_INVAL;
}

static tsesim_code check_options(const tsesim_listener_options *o, char *errbuf) {
  const char *p;
  char shown[80];
  if (o->version < 1 || o->version > TSESIM_LISTENER_OPTIONS_VERSION) {
    tsesim__errbuf_set(errbuf, "opts->version %u: this library knows versions 1 to %d", o->version,
                       TSESIM_LISTENER_OPTIONS_VERSION);
    return TSESIM_E_INVAL;
  }
  if (!o->username != !o->password) {
    tsesim__errbuf_set(errbuf, "%s is set and %s is not: give both or neither",
                       o->username ? "username" : "password",
                       o->username ? "password" : "username");
    return TSESIM_E_INVAL;
  }
  if (!o->tls_cert_file != !o->tls_key_file) {
    tsesim__errbuf_set(errbuf, "%s is set and %s is not: HTTPS needs both",
                       o->tls_cert_file ? "tls_cert_file" : "tls_key_file",
                       o->tls_cert_file ? "tls_key_file" : "tls_cert_file");
    return TSESIM_E_INVAL;
  }
  if (o->port > 65535) {
    tsesim__errbuf_set(errbuf, "port %u: over 65535", o->port);
    return TSESIM_E_INVAL;
  }
  if (o->path) {
    if (o->path[0] != '/') {
      tsesim__quote(shown, sizeof shown, o->path, 60);
      tsesim__errbuf_set(errbuf, "path %s: must start with '/'", shown);
      return TSESIM_E_INVAL;
    }
    for (p = o->path; *p; p++)
      if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F || *p == '?' || *p == '#') {
        tsesim__quote(shown, sizeof shown, o->path, 60);
        tsesim__errbuf_set(errbuf, "path %s: byte %lu is not allowed in a path", shown,
                           (unsigned long)(p - o->path + 1));
        return TSESIM_E_INVAL;
      }
  }
  if (o->timeout_s > 3600) {
    tsesim__errbuf_set(errbuf, "timeout_s %u: over 3600 seconds", o->timeout_s);
    return TSESIM_E_INVAL;
  }
  if (o->log_level < 0 || o->log_level > 3) {
    tsesim__errbuf_set(errbuf, "log_level %d: outside 0..3", o->log_level);
    return TSESIM_E_INVAL;
  }
  return TSESIM_OK;
}

static void free_listener(tsesim_listener *l) {
  if (l->listen_fd >= 0) close(l->listen_fd);
  tsesim_journal_close(l->journal);
  tsesim__free(l->path);
  tsesim__free(l->address);
  tsesim__free_secret(l->username);
  tsesim__free_secret(l->password);
  tsesim__free(l->tls_cert);
  tsesim__free_secret(l->tls_key);
  tsesim__free(l->items);
  tsesim__free(l->group);
  tsesim__free(l);
}

tsesim_code tsesim_listener_options_init(tsesim_listener_options *opts, unsigned int version) {
  static const tsesim_listener_options defaults = TSESIM_LISTENER_OPTIONS_INIT;
  if (!opts || version < 1 || version > TSESIM_LISTENER_OPTIONS_VERSION) return TSESIM_E_INVAL;
  memcpy(opts, &defaults, sizeof defaults); /* one version so far: the whole struct */
  opts->version = version;
  return TSESIM_OK;
}

tsesim_code tsesim_listener_start(tsesim_listener **out, const tsesim_listener_options *o,
                                  char *errbuf) {
  tsesim_listener *l;
  tsesim_code rc;
  struct MHD_OptionItem mo[12];
  size_t n = 0;
  unsigned flags;
  int is_v6 = 0, sync_made = 0;
  struct stat st;

  if (!out || !o) {
    tsesim__errbuf_set(errbuf, "%s is NULL", out ? "opts" : "out");
    if (out) *out = NULL;
    return TSESIM_E_INVAL;
  }
  *out = NULL;
  rc = check_options(o, errbuf);
  if (rc) return rc;
  if (o->tls_cert_file && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
    tsesim__errbuf_set(errbuf, "tls_cert_file: this libmicrohttpd was built without TLS");
    return TSESIM_E_TLS;
  }
  /* The journal must exist: a typo in its path must not make an empty
   * journal that the listener would then fill with unmatched callbacks. */
  if (o->journal && stat(o->journal, &st) != 0) {
    char why[128], shown[200];
    errno_text(errno, why, sizeof why);
    tsesim__quote(shown, sizeof shown, o->journal, 160);
    tsesim__errbuf_set(errbuf, "journal %s: %s (the listener opens an existing journal only)",
                       shown, why);
    return TSESIM_E_JOURNAL;
  }

  l = tsesim__malloc(sizeof *l);
  if (!l) {
    tsesim__errbuf_set(errbuf, "out of memory");
    return TSESIM_E_NOMEM;
  }
  memset(l, 0, sizeof *l);
  l->listen_fd = -1;
  l->path = dup_str(o->path ? o->path : "/callbacks");
  l->address = dup_str(o->address ? o->address : "127.0.0.1");
  l->username = dup_str(o->username);
  l->password = dup_str(o->password);
  l->items = tsesim__malloc(GROUP_MAX * sizeof *l->items);
  l->group = tsesim__malloc(GROUP_MAX * sizeof *l->group);
  if (!l->path || !l->address || (o->username && !l->username) || (o->password && !l->password) ||
      !l->items || !l->group) {
    tsesim__errbuf_set(errbuf, "out of memory");
    rc = TSESIM_E_NOMEM;
    goto fail;
  }
  l->rules.path = l->path;
  l->rules.username = l->username;
  l->rules.password = l->password;
  l->rules.max_body = o->max_body_bytes ? o->max_body_bytes : DEFAULT_MAX_BODY;
  l->budget = o->memory_budget ? o->memory_budget : DEFAULT_BUDGET;
  l->timeout_s = o->timeout_s ? o->timeout_s : 10;
  l->log.fn = o->log_fn;
  l->log.payload = o->log_payload;
  l->log.level = o->log_level;
  l->on_callback = o->on_callback;
  l->callback_payload = o->callback_payload;

  if (o->tls_cert_file) {
    rc = read_pem("tls_cert_file", o->tls_cert_file, &l->tls_cert, errbuf);
    if (!rc) rc = read_pem("tls_key_file", o->tls_key_file, &l->tls_key, errbuf);
    if (rc) goto fail;
  }
  if (o->journal) {
    rc = tsesim_journal_open(&l->journal, o->journal, errbuf);
    if (rc) goto fail;
  }
  rc = listen_socket(l, o, &is_v6, errbuf);
  if (rc) goto fail;

  if (pthread_mutex_init(&l->mu, NULL) != 0) goto fail_sync;
  if (pthread_cond_init(&l->work, NULL) != 0) {
    pthread_mutex_destroy(&l->mu);
    goto fail_sync;
  }
  sync_made = 1;
  if (pthread_create(&l->writer, NULL, writer_main, l) != 0) {
    tsesim__errbuf_set(errbuf, "listener: cannot start its writer thread");
    rc = TSESIM_E_NOMEM;
    goto fail;
  }

  /* A thread per connection: a slow peer or a commit never holds up
   * another; poll(), so no FD_SETSIZE limit; ITC, so that stop can quiesce. */
  flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
          MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (is_v6) flags |= MHD_USE_IPv6;
  mo[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, l};
  mo[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, l->listen_fd, NULL};
  mo[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, l};
  mo[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)l->timeout_s, NULL};
  mo[n++] = (struct MHD_OptionItem){
      MHD_OPTION_CONNECTION_LIMIT, (intptr_t)(o->max_connections ? o->max_connections : 256), NULL};
  if (o->per_ip_connections)
    mo[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                      (intptr_t)o->per_ip_connections, NULL};
  if (l->tls_cert) {
    flags |= MHD_USE_TLS;
    mo[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, l->tls_cert};
    mo[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, l->tls_key};
  }
  mo[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  l->daemon =
      MHD_start_daemon(flags, 0, NULL, NULL, handler, l, MHD_OPTION_ARRAY, mo, MHD_OPTION_END);
  if (!l->daemon) {
    if (l->tls_cert) {
      char c[120], k[120];
      tsesim__quote(c, sizeof c, o->tls_cert_file, 100);
      tsesim__quote(k, sizeof k, o->tls_key_file, 100);
      tsesim__errbuf_set(errbuf,
                         "tls_cert_file %s, tls_key_file %s: libmicrohttpd refused them (not a "
                         "PEM certificate and its matching key?)",
                         c, k);
      rc = TSESIM_E_TLS;
    } else {
      tsesim__errbuf_set(errbuf, "listener %s port %u: libmicrohttpd could not start", l->address,
                         l->port);
      rc = TSESIM_E_TRANSPORT;
    }
    pthread_mutex_lock(&l->mu);
    l->writer_quit = 1;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
    goto fail;
  }
  tsesim__log(&l->log, 2, "listener: serving %s on %s port %u%s", l->path, l->address, l->port,
              l->tls_cert ? " (HTTPS)" : "");
  *out = l;
  return TSESIM_OK;
fail_sync:
  tsesim__errbuf_set(errbuf, "listener: cannot make its lock");
  rc = TSESIM_E_NOMEM;
fail:
  if (sync_made) {
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->mu);
  }
  free_listener(l);
  return rc;
}

unsigned int tsesim_listener_port(const tsesim_listener *listener) {
  return listener ? listener->port : 0;
}

void tsesim_listener_stop(tsesim_listener *l) {
  struct timespec t0;
  int fd;
  if (!l) return;
  /* From its own on_callback it would wait for itself: refused, loudly. */
  if (pthread_equal(pthread_self(), l->writer)) {
    tsesim__log(&l->log, 0,
                "listener: tsesim_listener_stop called from on_callback; not stopped (call it "
                "from another thread)");
    return;
  }
  /* 1. No new connections: the listening socket is closed. */
  __atomic_store_n(&l->stopping, 1, __ATOMIC_RELAXED);
  fd = MHD_quiesce_daemon(l->daemon);
  if (fd >= 0) close(fd);
  l->listen_fd = -1;
  /* 2. Requests already begun are read, judged, stored and answered: wait
   * for them, at most the idle timeout plus a second (a peer that sends
   * nothing more is cut off by then anyway). */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (__atomic_load_n(&l->active, __ATOMIC_RELAXED) > 0 &&
         ms_since(&t0) < (double)l->timeout_s * 1000.0 + 1000.0) {
    struct timespec nap = {0, 5 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
  /* 3. libmicrohttpd joins its threads; the writer is still serving, so a
   * connection thread waiting for its commit gets it. */
  MHD_stop_daemon(l->daemon);
  /* 4. The writer empties its queue, then ends. */
  pthread_mutex_lock(&l->mu);
  l->writer_quit = 1;
  pthread_cond_signal(&l->work);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->writer, NULL);
  pthread_cond_destroy(&l->work);
  pthread_mutex_destroy(&l->mu);
  tsesim__log(&l->log, 2, "listener: stopped after %lu commit(s)", l->commits);
  free_listener(l);
}

#ifdef TSESIM_TEST_HOOKS
unsigned long tsesim__test_listener_commits(const tsesim_listener *l) {
  return l ? __atomic_load_n(&l->commits, __ATOMIC_RELAXED) : 0;
}
#endif
