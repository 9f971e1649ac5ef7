/*
 * text.c - checks of free-text fields and small string helpers for messages.
 */
#include <stdio.h>
#include <string.h>

#include "tsesim_int.h"

/* Length of the valid UTF-8 sequence at s (1-4) and its code point, or 0 if
 * it is not valid: no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, unsigned long *cp) {
  unsigned char c = s[0];
  size_t n, i;
  unsigned long v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0; /* also stops at the NUL */
    v = (v << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return n;
}

size_t tsesim__utf8_invalid_at(const char *s) {
  const unsigned char *p;
  size_t n;
  unsigned long cp;
  for (p = (const unsigned char *)s; *p; p += n)
    if (!(n = utf8_seq(p, &cp))) return (size_t)(p - (const unsigned char *)s) + 1;
  return 0;
}

tsesim_code tsesim__text_check(const char *field, const char *s, size_t max, char *errbuf) {
  const unsigned char *p;
  size_t len, n;
  unsigned long cp;

  if (!s) {
    tsesim__errbuf_set(errbuf, "%s: NULL", field);
    return TSESIM_E_INVAL;
  }
  len = strlen(s);
  if (len == 0) {
    tsesim__errbuf_set(errbuf, "%s: empty", field);
    return TSESIM_E_INVAL;
  }
  if (len > max) {
    tsesim__errbuf_set(errbuf, "%s: %lu bytes, at most %lu", field, (unsigned long)len,
                       (unsigned long)max);
    return TSESIM_E_INVAL;
  }
  for (p = (const unsigned char *)s; *p; p += n) {
    n = utf8_seq(p, &cp);
    if (!n) {
      tsesim__errbuf_set(errbuf, "%s: invalid UTF-8 at byte %lu", field,
                         (unsigned long)(p - (const unsigned char *)s) + 1);
      return TSESIM_E_INVAL;
    }
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      tsesim__errbuf_set(errbuf, "%s: control character U+%04lX at byte %lu", field, cp,
                         (unsigned long)(p - (const unsigned char *)s) + 1);
      return TSESIM_E_INVAL;
    }
  }
  return TSESIM_OK;
}

int tsesim__ascii_ieq(const char *a, const char *b) {
  for (;; a++, b++) {
    unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
    if (x != y) return 0;
    if (!x) return 1;
  }
}

const char *tsesim__byte_kind(unsigned char b) {
  if (b < 0x20 || b == 0x7F) return "control character";
  if (b == 0x20) return "space";
  return "non-ASCII byte";
}

size_t tsesim__first_bad_byte(const char *s, size_t len, unsigned char lo) {
  size_t i;
  for (i = 0; i < len; i++)
    if ((unsigned char)s[i] < lo || (unsigned char)s[i] > 0x7E) break;
  return i;
}

int tsesim__ascii_iprefix(const char *s, size_t n, const char *prefix) {
  size_t i;
  for (i = 0; prefix[i]; i++) {
    unsigned char x, y;
    if (i >= n) return 0;
    x = (unsigned char)s[i];
    y = (unsigned char)prefix[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

void tsesim__quote(char *dst, size_t dstsize, const char *s, size_t max) {
  size_t o = 0, i;
  if (dstsize < 8) {
    if (dstsize) dst[0] = '\0';
    return;
  }
  dst[o++] = '"';
  /* Room is kept for the longest escape, the "..." marker, the quote and the NUL. */
  for (i = 0; s[i] && i < max && o + 4 + 3 + 2 <= dstsize; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      dst[o++] = (char)c;
    } else {
      snprintf(dst + o, dstsize - o, "\\x%02X", c);
      o += 4;
    }
  }
  if (s[i]) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o++] = '"';
  dst[o] = '\0';
}
