/* netvsc-patch: growing buffers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void
strbuf_add (struct strbuf *b, const char *s, size_t n)
{
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc (b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n)
    memcpy (b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void
strbuf_str (struct strbuf *b, const char *s)
{
  strbuf_add (b, s, strlen (s));
}

int
strbuf_give (struct strbuf *b, char **out, size_t *len)
{
  strbuf_add (b, "", 0);        /* an empty result is still allocated */
  if (b->oom) {
    free (b->p);
    b->p = NULL;
    errno = ENOMEM;
    return -1;
  }
  *out = b->p;
  *len = b->len;
  return 0;
}
