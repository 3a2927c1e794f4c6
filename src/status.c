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

/* "SUBJECT: rest" -> "rest"; anything else unchanged. */
static const char *
after_subject (const char *msg, const char *subject)
{
  size_t n = strlen (subject);

  if (n && strncmp (msg, subject, n) == 0 && strncmp (msg + n, ": ", 2) == 0)
    return msg + n + 2;
  return msg;
}

void
np_error_context (struct np_error *err, const char *subject, const char *context)
{
  char rest[sizeof err->msg];

  if (strstr (err->msg, context))
    return;
  snprintf (rest, sizeof rest, "%s", after_subject (err->msg, subject));
  if (snprintf (err->msg, sizeof err->msg, "%s: %s: %.*s", subject, context,
                (int) (sizeof err->msg / 2), rest) < 0)
    err->msg[0] = '\0';
}

void
np_error_rename (struct np_error *err, const char *from, const char *to)
{
  char buf[sizeof err->msg];
  size_t fl = strlen (from), j = 0;

  if (fl == 0 || strstr (err->msg, from) == NULL)
    return;
  for (const char *p = err->msg; *p && j < sizeof buf - 1;) {
    if (strncmp (p, from, fl) == 0) {
      j += (size_t) snprintf (buf + j, sizeof buf - j, "%s", to);
      if (j >= sizeof buf)
        j = sizeof buf - 1;
      p += fl;
    }
    else
      buf[j++] = *p++;
  }
  buf[j] = '\0';
  memcpy (err->msg, buf, j + 1);
}

int
np_error_wrap (struct np_error *err, const char *subject, const char *fmt, ...)
{
  char rest[sizeof err->msg], head[sizeof err->msg];
  va_list ap;

  snprintf (rest, sizeof rest, "%s", after_subject (err->msg, subject));
  va_start (ap, fmt);
  vsnprintf (head, sizeof head, fmt, ap);
  va_end (ap);
  /* a long subject and head leave less of the reason: cut, never lost */
  if (snprintf (err->msg, sizeof err->msg, "%s: %s%.*s", subject, head,
                (int) (sizeof err->msg / 2), rest) < 0)
    err->msg[0] = '\0';
  return -1;
}

void
np_error_append (struct np_error *err, const char *fmt, ...)
{
  size_t used = strlen (err->msg);
  va_list ap;

  va_start (ap, fmt);
  /* cut at the record's size, as np_error_set does */
  if (vsnprintf (err->msg + used, sizeof err->msg - used, fmt, ap) < 0)
    err->msg[used] = '\0';
  va_end (ap);
}

void
np_error_clear (struct np_error *err)
{
  err->code = NP_EXIT_OK;
  err->msg[0] = '\0';
}
