/*
 * csv.h - the examples' CSV reader: one device per row, header
 * "eid,iccid,imei", each bad row reported with its line number.
 */
#ifndef EXAMPLES_CSV_H
#define EXAMPLES_CSV_H

#include <stdio.h>
#include <string.h>
#include <tsesim.h>

#define MAX_LINE 512

/* Splits line in place at commas into at most max fields; returns how many. */
static int split_csv(char *line, char **fields, int max) {
  int n = 0;
  char *p = line;
  line[strcspn(line, "\r\n")] = '\0';
  for (;;) {
    char *comma = strchr(p, ',');
    if (n < max) fields[n] = p;
    n++;
    if (!comma) break;
    *comma = '\0';
    p = comma + 1;
  }
  return n;
}

/* Why req refused the device just offered, without the builder's "device N: "
 * in front: N is the index the device would have had in the request, which
 * means nothing to someone reading the file. The line number names the row. */
static const char *csv_reason(const tsesim_request *req) {
  const char *msg = tsesim_request_errmsg(req);
  char prefix[48];
  size_t n = (size_t)snprintf(prefix, sizeof prefix,
                              "device %lu: ", (unsigned long)tsesim_request_device_count(req));
  return strncmp(msg, prefix, n) == 0 ? msg + n : msg;
}

/* Reads path (header "eid,iccid,imei"; an empty column means that kind is
 * absent) into req, printing each rejected row with its line number. For
 * each accepted device, on_device (may be NULL) gets its identifiers.
 * 0, or -1 when the file cannot be read or its header is wrong. */
static int csv_read_devices(const char *path, tsesim_request *req,
                            void (*on_device)(const tsesim_device_id *ids, size_t n, void *u),
                            void *u) {
  static const tsesim_id_kind kinds[3] = {TSESIM_ID_EID, TSESIM_ID_ICCID, TSESIM_ID_IMEI};
  char line[MAX_LINE];
  unsigned long lineno = 0, bad = 0;
  FILE *f = fopen(path, "r");

  if (!f) {
    perror(path);
    return -1;
  }
  while (fgets(line, sizeof line, f)) {
    char *fields[3];
    tsesim_device_id ids[3];
    size_t n_ids = 0;
    int i, n;

    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      fprintf(stderr, "%s:%lu: line longer than %d bytes\n", path, lineno, MAX_LINE - 2);
      fclose(f);
      return -1;
    }
    n = split_csv(line, fields, 3);
    if (lineno == 1) {
      if (n != 3 || strcmp(fields[0], "eid") || strcmp(fields[1], "iccid") ||
          strcmp(fields[2], "imei")) {
        fprintf(stderr, "%s:1: the header must be \"eid,iccid,imei\"\n", path);
        fclose(f);
        return -1;
      }
      continue;
    }
    if (n == 1 && fields[0][0] == '\0') continue; /* blank line */
    if (n != 3) {
      printf("%s:%lu: rejected: %d fields, expected 3 (eid,iccid,imei)\n", path, lineno, n);
      bad++;
      continue;
    }
    for (i = 0; i < 3; i++) {
      if (fields[i][0] == '\0') continue; /* an empty column: that kind is absent */
      ids[n_ids].kind = kinds[i];
      ids[n_ids].id = fields[i];
      ids[n_ids].kind_name = NULL;
      n_ids++;
    }
    if (tsesim_request_add_device(req, ids, n_ids) != TSESIM_OK) {
      printf("%s:%lu: rejected: %s\n", path, lineno, csv_reason(req));
      bad++;
    } else if (on_device) {
      on_device(ids, n_ids, u);
    }
  }
  fclose(f);
  printf("%s: %lu devices accepted, %lu rows rejected\n", path,
         (unsigned long)tsesim_request_device_count(req), bad);
  return 0;
}

#endif /* EXAMPLES_CSV_H */
