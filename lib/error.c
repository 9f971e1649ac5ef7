/*
 * error.c - the one table of result codes (libuv's UV_ERRNO_MAP): it feeds
 * tsesim_strerror and tsesim_code_name.
 */
#include <stdarg.h>
#include <stdio.h>

#include "tsesim_int.h"

#define TSESIM__CODE_MAP(X)                                                                \
  X(TSESIM_OK, "success")                                                                  \
  X(TSESIM_E_INVAL, "invalid argument or input data")                                      \
  X(TSESIM_E_NOMEM, "out of memory")                                                       \
  X(TSESIM_E_LIMIT, "a documented limit was exceeded")                                     \
  X(TSESIM_E_PARSE, "not valid JSON, or not the expected shape")                           \
  X(TSESIM_E_TRANSPORT, "could not connect or send")                                       \
  X(TSESIM_E_TIMEOUT, "timed out")                                                         \
  X(TSESIM_E_TLS, "TLS certificate or handshake failure")                                  \
  X(TSESIM_E_AUTH, "credentials refused")                                                  \
  X(TSESIM_E_HTTP, "an HTTP answer the API does not document")                             \
  X(TSESIM_E_API, "the API answered with an error")                                        \
  X(TSESIM_E_RATE_LIMITED, "rate limited: still refused after the allowed attempts")       \
  X(TSESIM_E_UNKNOWN_OUTCOME, "sent, but no complete answer came: the outcome is unknown") \
  X(TSESIM_E_JOURNAL, "the journal could not be opened, read or written")                  \
  X(TSESIM_E_CANCELLED, "stopped because the caller asked")

const char *tsesim_strerror(tsesim_code code) {
  switch (code) {
#define X(name, text) \
  case name:          \
    return text;
    TSESIM__CODE_MAP(X)
#undef X
  }
  return "unknown result code";
}

const char *tsesim_code_name(tsesim_code code) {
  switch (code) {
#define X(name, text) \
  case name:          \
    return #name;
    TSESIM__CODE_MAP(X)
#undef X
  }
  return "TSESIM_E_???";
}

void tsesim__errbuf_vset(char *errbuf, const char *fmt, va_list ap) {
  if (errbuf && vsnprintf(errbuf, TSESIM_ERRBUF_SIZE, fmt, ap) < 0) errbuf[0] = '\0';
}

void tsesim__errbuf_set(char *errbuf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsesim__errbuf_vset(errbuf, fmt, ap);
  va_end(ap);
}
