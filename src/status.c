/* netvsc-patch: error records. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

int
np_error_set (struct np_error *err, int code, const char *fmt, ...)
{
  va_list ap;

  err->code = code;
  va_start (ap, fmt);
  vsnprintf (err->msg, sizeof err->msg, fmt, ap);
  va_end (ap);
  np_one_line (err->msg);
  return -1;
}

void
np_one_line (char *s)
{
  char *w = s;
  int space = 0;

  /* Collapse runs of newlines/whitespace to a single space and drop
   * trailing whitespace: libguestfs and qemu errors span lines. */
  for (char *r = s; *r; r++) {
    if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
      space = 1;
      continue;
    }
    if (space && w != s)
      *w++ = ' ';
    space = 0;
    *w++ = *r;
  }
  *w = '\0';
}
