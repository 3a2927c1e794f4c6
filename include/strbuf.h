/* netvsc-patch: a growing, NUL-terminated byte buffer for building file
 * contents (defer.c, defer_ini.c).  An allocation failure is remembered
 * and reported once, by strbuf_give or by checking OOM. */
#ifndef NETVSC_PATCH_STRBUF_H
#define NETVSC_PATCH_STRBUF_H

#include <stddef.h>

struct strbuf {
  char *p;                 /* NUL-terminated once anything was added */
  size_t len, cap;
  int oom;
};

void strbuf_add (struct strbuf *b, const char *s, size_t n);
void strbuf_str (struct strbuf *b, const char *s);
/* Hand the bytes to the caller (*OUT malloc'd, *LEN bytes, allocated
 * even when empty); or free them and fail with errno ENOMEM. */
int strbuf_give (struct strbuf *b, char **out, size_t *len);

#endif
