/*
 * loopback.c - what counts as a loopback host literal. Compiled into the
 * library (the client's plain-http rule) and into tsesim-sim (which delivers
 * callbacks only to loopback listeners), so both read a host the same way.
 */
#include "tsesim_int.h"

int tsesim__loopback_ipv4(const char *host) {
  const char *p = host;
  int part;
  for (part = 0; part < 4; part++) {
    unsigned v = 0, digits = 0;
    if (part && *p++ != '.') return 0;
    for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++) v = v * 10 + (unsigned)(*p - '0');
    if (!digits || digits > 3 || v > 255 || (digits > 1 && p[-(int)digits] == '0')) return 0;
    if (part == 0 && v != 127) return 0;
  }
  return *p == '\0';
}
