/* netvsc-patch: UTF-16LE <-> UTF-8, strict (see include/utf16.h).
 * Written by hand rather than with iconv: the rules above are exactly
 * what is wanted, the same on every libc, and need no handle. */
#include <errno.h>
#include <stdint.h>

#include "utf16.h"

int
utf16le_to_utf8 (const unsigned char *p, size_t len, struct strbuf *b)
{
  if (len % 2)
    goto bad;
  for (size_t i = 0; i < len; i += 2) {
    uint32_t c = p[i] | (uint32_t) p[i + 1] << 8;
    char u[4];
    size_t n;
    if (c == 0 || (c >= 0xdc00 && c <= 0xdfff))
      goto bad;
    if (c >= 0xd800 && c <= 0xdbff) {
      uint32_t lo;
      if (i + 3 >= len)
        goto bad;
      lo = p[i + 2] | (uint32_t) p[i + 3] << 8;
      if (lo < 0xdc00 || lo > 0xdfff)
        goto bad;
      c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
      i += 2;
    }
    if (c < 0x80) { u[0] = (char) c; n = 1; }
    else if (c < 0x800) { u[0] = (char) (0xc0 | c >> 6); u[1] = (char) (0x80 | (c & 0x3f)); n = 2; }
    else if (c < 0x10000) {
      u[0] = (char) (0xe0 | c >> 12); u[1] = (char) (0x80 | ((c >> 6) & 0x3f));
      u[2] = (char) (0x80 | (c & 0x3f)); n = 3;
    }
    else {
      u[0] = (char) (0xf0 | c >> 18); u[1] = (char) (0x80 | ((c >> 12) & 0x3f));
      u[2] = (char) (0x80 | ((c >> 6) & 0x3f)); u[3] = (char) (0x80 | (c & 0x3f)); n = 4;
    }
    strbuf_add (b, u, n);
  }
  return 0;
 bad:
  errno = EINVAL;
  return -1;
}

size_t
utf8_decode (const unsigned char *p, size_t len, uint32_t *cp)
{
  uint32_t c, min;
  size_t n;

  if (len == 0)
    return 0;
  if (p[0] < 0x80) {
    *cp = p[0];
    return 1;
  }
  if ((p[0] & 0xe0) == 0xc0)
    n = 2, c = p[0] & 0x1f, min = 0x80;
  else if ((p[0] & 0xf0) == 0xe0)
    n = 3, c = p[0] & 0x0f, min = 0x800;
  else if ((p[0] & 0xf8) == 0xf0)
    n = 4, c = p[0] & 0x07, min = 0x10000;
  else
    return 0;
  for (size_t i = 1; i < n; i++) {
    /* a NUL is not a continuation byte: a C string's end stops here */
    if (i >= len || (p[i] & 0xc0) != 0x80)
      return 0;
    c = c << 6 | (p[i] & 0x3f);
  }
  /* overlong forms, above U+10FFFF, surrogates (RFC 3629) */
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  *cp = c;
  return n;
}

int
utf8_to_utf16le (const unsigned char *p, size_t len, struct strbuf *b)
{
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t n = utf8_decode (p + i, len - i, &c);
    unsigned char u[4];
    if (n == 0)
      goto bad;
    i += n;
    if (c >= 0x10000) {
      uint32_t hi = 0xd800 + ((c - 0x10000) >> 10), lo = 0xdc00 + ((c - 0x10000) & 0x3ff);
      u[0] = (unsigned char) hi; u[1] = (unsigned char) (hi >> 8);
      u[2] = (unsigned char) lo; u[3] = (unsigned char) (lo >> 8);
      strbuf_add (b, (char *) u, 4);
    }
    else {
      u[0] = (unsigned char) c; u[1] = (unsigned char) (c >> 8);
      strbuf_add (b, (char *) u, 2);
    }
  }
  return 0;
 bad:
  errno = EINVAL;
  return -1;
}
