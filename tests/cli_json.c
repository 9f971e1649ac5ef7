/*
 * cli_json.c - reads what `tsesim status --json` and tsesim-sim's admin
 * endpoints print, with jansson, so that the shell tests (tests/cli_*.sh)
 * never grep JSON.
 *
 *   cli_json status FILE              check FILE (status --json's stdout)
 *   cli_json status FILE LINE KEY     ... then print KEY of the row of LINE
 *   cli_json status FILE rows KEY...  ... then print "LINE V1 V2..." per row
 *   cli_json status FILE count KEY V  ... then print how many rows have KEY V
 *   cli_json get FILE PATH            print the value at PATH (a.b.0.c: a
 *                                     number indexes an array) of the JSON
 *                                     document in FILE (- for stdin)
 *
 * The check, against tsesim(1)'s contract (CLI.md): every line before the
 * last two is one compact JSON object (no whitespace outside strings) with
 * exactly the keys line, eid, iccid, imei, state, requestId, status, fault,
 * error and callbacks, each of its type; rows come in file order (line
 * strictly increasing); then a line `unmatched N`, then the summary line
 * `devices N success S failed F unknown U refused R pending P invalid I`,
 * whose counts are those of the rows' states. Values are printed as their
 * text, null as "null". Any failure prints what and where (the line of FILE,
 * the key) to stderr and exits 1; usage errors exit 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define NKEYS 10

static const char *const keys[NKEYS] = {"line",      "eid",    "iccid", "imei",  "state",
                                        "requestId", "status", "fault", "error", "callbacks"};

static const char *const states[] = {"invalid",   "queued",  "unknown", "refused",
                                     "submitted", "warning", "success", "failed"};
#define NSTATES (sizeof states / sizeof states[0])

static const char *prog_file; /* the file being read, for messages */

static void die(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "cli_json: %s: ", prog_file ? prog_file : "-");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  exit(1);
}

static char *read_all(const char *path, size_t *out_len) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (!f) die("cannot open: %s%s", strerror(errno), "");
  for (;;) {
    size_t n;
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 65536;
      buf = realloc(buf, cap + 1);
      if (!buf) die("out of memory%s%s", "", "");
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  if (ferror(f)) die("read error%s%s", "", "");
  if (f != stdin) fclose(f);
  buf[len] = '\0';
  *out_len = len;
  return buf;
}

/* Whitespace outside strings means the object was not printed compact. */
static int is_compact(const char *s) {
  int in_string = 0;
  for (; *s; s++) {
    if (in_string) {
      if (*s == '\\' && s[1])
        s++;
      else if (*s == '"')
        in_string = 0;
    } else if (*s == '"') {
      in_string = 1;
    } else if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
      return 0;
    }
  }
  return 1;
}

/* The value as text: strings as they are, integers in decimal, null. */
static void print_value(const json_t *v) {
  if (json_is_null(v))
    fputs("null", stdout);
  else if (json_is_string(v))
    fputs(json_string_value(v), stdout);
  else if (json_is_integer(v))
    printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else if (json_is_true(v))
    fputs("true", stdout);
  else if (json_is_false(v))
    fputs("false", stdout);
  else {
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    fputs(t ? t : "?", stdout);
    free(t);
  }
}

typedef struct {
  json_t **rows;
  size_t n;
  long long unmatched;
} status_out;

static int state_index(const char *s) {
  size_t i;
  for (i = 0; i < NSTATES; i++)
    if (!strcmp(s, states[i])) return (int)i;
  return -1;
}

static void check_row(json_t *o, const char *where, json_int_t prev_line) {
  size_t i;
  const char *state;
  if (!json_is_object(o)) die("%s: not a JSON object%s", where, "");
  if (json_object_size(o) != NKEYS) {
    char *t = json_dumps(o, JSON_COMPACT);
    die("%s: not exactly the 10 keys of the contract: %s", where, t ? t : "?");
  }
  for (i = 0; i < NKEYS; i++)
    if (!json_object_get(o, keys[i])) die("%s: no key \"%s\"", where, keys[i]);
  if (!json_is_integer(json_object_get(o, "line")) ||
      json_integer_value(json_object_get(o, "line")) <= prev_line)
    die("%s: \"line\" is not an integer above the previous row's%s", where, "");
  for (i = 1; i <= 3; i++) {
    const json_t *v = json_object_get(o, keys[i]);
    if (!json_is_null(v) && !(json_is_string(v) && json_string_length(v) > 0))
      die("%s: \"%s\" is neither a non-empty string nor null", where, keys[i]);
  }
  if (!json_is_string(json_object_get(o, "state")))
    die("%s: \"state\" is not a string%s", where, "");
  state = json_string_value(json_object_get(o, "state"));
  if (state_index(state) < 0) die("%s: \"state\" \"%s\" is none of the contract's", where, state);
  for (i = 5; i <= 8; i++) {
    const json_t *v = json_object_get(o, keys[i]);
    if (!json_is_null(v) && !json_is_string(v))
      die("%s: \"%s\" is neither a string nor null", where, keys[i]);
  }
  if (!json_is_integer(json_object_get(o, "callbacks")) ||
      json_integer_value(json_object_get(o, "callbacks")) < 0)
    die("%s: \"callbacks\" is not a non-negative integer%s", where, "");
  /* what the contract ties to the state */
  if ((!strcmp(state, "invalid") || !strcmp(state, "refused")) &&
      json_is_null(json_object_get(o, "error")))
    die("%s: state %s without an \"error\"", where, state);
  if (!strcmp(state, "invalid") && !json_is_null(json_object_get(o, "requestId")))
    die("%s: an invalid row with a requestId%s", where, "");
  if ((!strcmp(state, "success") || !strcmp(state, "failed") || !strcmp(state, "warning")) &&
      json_is_null(json_object_get(o, "status")))
    die("%s: state %s with a null \"status\"", where, state);
}

static void parse_status(const char *path, status_out *out) {
  size_t len, nlines = 0, cap = 0, i;
  char *buf = read_all(path, &len), *p = buf, **lines = NULL;
  char where[64];
  long long counts[7]; /* devices success failed unknown refused pending invalid */
  long long have[7] = {0};
  static const char *const names[7] = {"devices", "success", "failed", "unknown",
                                       "refused", "pending", "invalid"};
  int pos = 0, k;
  json_int_t prev = 0;

  if (len == 0) die("empty output%s%s", "", "");
  if (buf[len - 1] != '\n') die("the output does not end with a newline%s%s", "", "");
  buf[len - 1] = '\0';
  for (;;) {
    char *nl = strchr(p, '\n');
    if (nlines == cap) {
      cap = cap ? cap * 2 : 64;
      lines = realloc(lines, cap * sizeof *lines);
      if (!lines) die("out of memory%s%s", "", "");
    }
    lines[nlines++] = p;
    if (!nl) break;
    *nl = '\0';
    p = nl + 1;
  }
  if (nlines < 2) die("fewer than 2 lines (unmatched, summary)%s%s", "", "");

  /* the summary line, exactly */
  p = lines[nlines - 1];
  for (k = 0; k < 7; k++) {
    int n = 0;
    size_t kl = strlen(names[k]);
    if (strncmp(p + pos, names[k], kl) || p[pos + kl] != ' ')
      die("the last line is not the summary line: \"%s\" (expected the key %s)", p, names[k]);
    pos += (int)kl + 1;
    if (sscanf(p + pos, "%lld%n", &counts[k], &n) != 1 || n == 0 || p[pos] == '-' || p[pos] == '+')
      die("the last line is not the summary line: \"%s\" (no number after %s)", p, names[k]);
    pos += n;
    if (k < 6) {
      if (p[pos] != ' ') die("the last line is not the summary line: \"%s\"%s", p, "");
      pos++;
    }
  }
  if (p[pos] != '\0') die("the summary line has more after invalid: \"%s\"%s", p, "");

  /* unmatched N */
  {
    int n = 0;
    p = lines[nlines - 2];
    if (strncmp(p, "unmatched ", 10) || sscanf(p + 10, "%lld%n", &out->unmatched, &n) != 1 ||
        p[10 + n] != '\0' || p[10] == '-' || p[10] == '+')
      die("the line before the summary is not \"unmatched N\": \"%s\"%s", p, "");
  }

  out->n = nlines - 2;
  out->rows = calloc(out->n ? out->n : 1, sizeof *out->rows);
  if (!out->rows) die("out of memory%s%s", "", "");
  for (i = 0; i < out->n; i++) {
    json_error_t err;
    json_t *o;
    snprintf(where, sizeof where, "line %zu", i + 1);
    if (lines[i][0] != '{') die("%s: not a JSON object: \"%s\"", where, lines[i]);
    if (!is_compact(lines[i]))
      die("%s: not compact JSON (whitespace outside strings): %s", where, lines[i]);
    o = json_loads(lines[i], JSON_REJECT_DUPLICATES, &err);
    if (!o) die("%s: %s", where, err.text);
    check_row(o, where, prev);
    prev = json_integer_value(json_object_get(o, "line"));
    out->rows[i] = o;
    {
      const char *s = json_string_value(json_object_get(o, "state"));
      int si = state_index(s);
      /* invalid queued unknown refused submitted warning success failed */
      static const int slot[NSTATES] = {6, 5, 3, 4, 5, 5, 1, 2};
      have[slot[si]]++;
    }
  }
  have[0] = (long long)out->n;
  if (counts[0] != counts[1] + counts[2] + counts[3] + counts[4] + counts[5] + counts[6])
    die("the summary's devices is not the sum of the others: \"%s\"%s", lines[nlines - 1], "");
  for (k = 0; k < 7; k++) {
    if (have[k] != counts[k]) {
      char msg[128];
      snprintf(msg, sizeof msg, "%s is %lld in the summary, %lld by the rows' states", names[k],
               counts[k], have[k]);
      die("%s (summary \"%s\")", msg, lines[nlines - 1]);
    }
  }
  free(lines);
  free(buf);
}

static json_t *row_of(const status_out *s, const char *line) {
  char *end;
  long long want = strtoll(line, &end, 10);
  size_t i;
  if (*end || end == line) {
    fprintf(stderr, "cli_json: not a line number: %s\n", line);
    exit(2);
  }
  for (i = 0; i < s->n; i++)
    if (json_integer_value(json_object_get(s->rows[i], "line")) == want) return s->rows[i];
  die("no row for line %s%s", line, "");
  return NULL;
}

static const json_t *key_of(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  if (!v) {
    fprintf(stderr, "cli_json: not a key of the contract: %s\n", key);
    exit(2);
  }
  return v;
}

static int cmd_status(int argc, char **argv) {
  status_out s = {0};
  size_t i;
  prog_file = argv[0];
  parse_status(argv[0], &s);
  if (argc == 1) {
    /* checked */
  } else if (argc >= 3 && !strcmp(argv[1], "rows")) {
    for (i = 0; i < s.n; i++) {
      int k;
      print_value(json_object_get(s.rows[i], "line"));
      for (k = 2; k < argc; k++) {
        putchar(' ');
        print_value(key_of(s.rows[i], argv[k]));
      }
      putchar('\n');
    }
  } else if (argc == 4 && !strcmp(argv[1], "count")) {
    size_t n = 0;
    for (i = 0; i < s.n; i++) {
      const json_t *v = key_of(s.rows[i], argv[2]);
      if (json_is_null(v)     ? !strcmp(argv[3], "null")
          : json_is_string(v) ? !strcmp(json_string_value(v), argv[3])
                              : json_is_integer(v) && json_integer_value(v) == atoll(argv[3]))
        n++;
    }
    printf("%zu\n", n);
  } else if (argc == 3) {
    print_value(key_of(row_of(&s, argv[1]), argv[2]));
    putchar('\n');
  } else {
    fprintf(stderr, "usage: cli_json status FILE [LINE KEY | rows KEY... | count KEY VALUE]\n");
    return 2;
  }
  for (i = 0; i < s.n; i++) json_decref(s.rows[i]);
  free(s.rows);
  return 0;
}

static int cmd_get(const char *file, const char *path) {
  size_t len;
  char *buf, *dup, *seg, *save = NULL;
  json_error_t err;
  json_t *root, *v;
  prog_file = file;
  buf = read_all(file, &len);
  root = json_loadb(buf, len, 0, &err);
  if (!root) die("not JSON: %s (%s)", err.text, buf);
  v = root;
  dup = strdup(path);
  for (seg = strtok_r(dup, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
    /* a number indexes an array */
    v = json_is_array(v) ? json_array_get(v, strtoul(seg, NULL, 10)) : json_object_get(v, seg);
    if (!v) die("no %s in %s", path, buf);
  }
  print_value(v);
  putchar('\n');
  free(dup);
  json_decref(root);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "status")) return cmd_status(argc - 2, argv + 2);
  if (argc == 4 && !strcmp(argv[1], "get")) return cmd_get(argv[2], argv[3]);
  fprintf(stderr,
          "usage: cli_json status FILE [LINE KEY | rows KEY... | count KEY VALUE]\n"
          "       cli_json get FILE PATH\n");
  return 2;
}
