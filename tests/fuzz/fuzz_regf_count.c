/* libFuzzer target: verification's count (regf_count.h) on arbitrary
 * bytes.  Nothing may crash or read outside the input; a strict count
 * that succeeds is a lenient one too, with the same numbers; a lenient
 * count never counts more keys than the input could hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regf_count.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* a copy of exactly SIZE bytes: a read past it is caught by ASan */
  unsigned char *buf = malloc (size ? size : 1);
  size_t k0, v0, k1, v1;
  int r0, r1;

  if (buf == NULL)
    return 0;
  memcpy (buf, data, size);
  r0 = regf_count (buf, size, 0, &k0, &v0);
  r1 = regf_count (buf, size, 1, &k1, &v1);
  if (r0 == 0 && (r1 != 0 || k0 != k1 || v0 != v1))
    abort ();
  /* a key is an "nk" cell of 80 bytes or more */
  if (r1 == 0 && k1 > size / 80 + 1)
    abort ();
  free (buf);
  return 0;
}
