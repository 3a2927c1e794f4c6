/* netvsc-patch: what the user asked to write, keyword by keyword. */
#ifndef NETVSC_PATCH_REQUEST_H
#define NETVSC_PATCH_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define VALUE_RECEIVE "ReceiveBufferSize"
#define VALUE_SEND "SendBufferSize"

/* The registry type to write: chosen per adapter unless --type says. */
enum want_type {
  WANT_AUTO,     /* buffer sizes REG_DWORD; others keep the type the
                    value has, or REG_SZ as Windows' Advanced page */
  WANT_DWORD,
  WANT_SZ,
};

struct request_value {
  const char *name;        /* the keyword, as given */
  int remove;              /* delete it (back to the driver's default) */
  const char *text;        /* --set NAME=TEXT: the value as given */
  int is_size;             /* a buffer size: KB holds it */
  uint32_t kb;
  enum want_type type;     /* --type NAME=dword|sz */
};

#define REQUEST_MAX 64
struct request {
  struct request_value v[REQUEST_MAX];
  size_t n;
  int force;               /* --force: write what Ndi\Params refuses */
};

/* Is NAME one of the two buffer sizes (case-insensitively)? */
int request_is_buffer_size (const char *name);

/* TEXT as a REG_DWORD: decimal or 0x-hexadecimal, -2147483648 to
 * 4294967295 (negatives as two's complement).  Returns 0 or -1. */
int request_text_to_dword (const char *text, uint32_t *out);

#endif
