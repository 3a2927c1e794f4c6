/* netvsc-patch: escaping of guest data and file names for output (see
 * escape.h for the rule). */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "utf16.h"

int
esc_utf8_valid (const char *s)
{
  const unsigned char *p = (const unsigned char *) s;
  uint32_t cp;
  size_t n;

  for (; *p; p += n)
    if ((n = utf8_decode (p, SIZE_MAX, &cp)) == 0)
      return 0;
  return 1;
}

/* Where escaped text goes: a stream, or a buffer of CAP bytes (the
 * terminating NUL not counted) that stops taking pieces once one did
 * not fit.  NEED counts every byte offered. */
struct sink {
  FILE *fp;
  char *buf;
  size_t cap, used, need;
  int full;
};

static void
put (struct sink *k, const char *piece, size_t n)
{
  k->need += n;
  if (k->fp)
    fwrite (piece, 1, n, k->fp);
  else if (k->buf && !k->full) {
    if (k->used + n > k->cap)
      k->full = 1;
    else {
      memcpy (k->buf + k->used, piece, n);
      k->used += n;
    }
  }
}

static void
escape (struct sink *k, const char *s, int flags)
{
  const unsigned char *p = (const unsigned char *) s;
  char tmp[8];
  uint32_t cp;
  size_t n;

  while (*p && !k->full) {
    n = utf8_decode (p, SIZE_MAX, &cp);
    if (n == 0) {
      snprintf (tmp, sizeof tmp, "\\x%02x", *p);
      put (k, tmp, 4);
      p++;
      continue;
    }
    if ((flags & ESC_BACKSLASH) && cp == '\\')
      put (k, "\\\\", 2);
    else if ((flags & ESC_CONTROL) && (cp < 0x20 || cp == 0x7f)) {
      static const char names[] = "abtnvfr";
      if (cp >= '\a' && cp <= '\r') {
        tmp[0] = '\\';
        tmp[1] = names[cp - '\a'];
        put (k, tmp, 2);
      }
      else {
        snprintf (tmp, sizeof tmp, "\\x%02x", (unsigned) cp);
        put (k, tmp, 4);
      }
    }
    else if ((flags & ESC_CONTROL) && cp >= 0x80 && cp <= 0x9f) {
      snprintf (tmp, sizeof tmp, "\\u%04x", (unsigned) cp);
      put (k, tmp, 6);
    }
    else
      put (k, (const char *) p, n);
    p += n;
  }
}

const char *
esc_str (char *buf, size_t len, const char *s, int flags)
{
  struct sink k = { NULL, buf, 0, 0, 0, 0 };

  if (len == 0)
    return buf;
  if (s == NULL)
    s = "(null)";
  /* Room for "..." if it does not all fit. */
  k.cap = len - 1;
  escape (&k, s, flags);
  if (k.full) {
    memset (&k, 0, sizeof k);
    k.buf = buf;
    k.cap = len > 4 ? len - 4 : 0;
    escape (&k, s, flags);
    size_t dots = len - 1 - k.used < 3 ? len - 1 - k.used : 3;
    memcpy (buf + k.used, "...", dots);
    k.used += dots;
  }
  buf[k.used] = '\0';
  return buf;
}

char *
esc_dup (const char *s, int flags)
{
  struct sink k = { NULL, NULL, 0, 0, 0, 0 };
  char *buf;

  escape (&k, s, flags);            /* measure */
  if ((buf = malloc (k.need + 1)) == NULL)
    return NULL;
  memset (&k, 0, sizeof k);
  k.buf = buf;
  k.cap = SIZE_MAX;
  escape (&k, s, flags);
  buf[k.used] = '\0';
  return buf;
}

void
esc_fputs (const char *s, FILE *fp)
{
  struct sink k = { fp, NULL, 0, 0, 0, 0 };

  escape (&k, s ? s : "(null)", ESC_TEXT);
}

void
esc_line (FILE *fp, const char *fmt, ...)
{
  va_list ap;
  char *text = NULL;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&text, fmt, ap);
  va_end (ap);
  if (r == -1) {
    char small[1024];
    va_start (ap, fmt);
    vsnprintf (small, sizeof small, fmt, ap);
    va_end (ap);
    esc_fputs (small, fp);
  }
  else {
    esc_fputs (text, fp);
    free (text);
  }
  fputc ('\n', fp);
}
