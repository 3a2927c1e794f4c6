/* netvsc-patch: -x, a trace of the steps taken (trace.h). */
#include <stdarg.h>
#include <stdio.h>

#include "escape.h"
#include "trace.h"

void
trace_step (const struct options *o, const char *subject, const char *fmt, ...)
{
  va_list ap;
  char msg[2048];

  if (!o->trace)
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  /* one line, as esc_line writes it: a contained job's stderr is
   * collected line by line and passed on in order */
  esc_line (stderr, "netvsc-patch: trace: %s: %s", subject, msg);
}
