/* libFuzzer target: the size parser must never crash and, when it
 * accepts, must return a non-zero KB value that fits a REG_DWORD. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = malloc (size + 1);
  uint32_t kb = 0;
  const char *why = NULL;

  if (s == NULL)
    return 0;
  memcpy (s, data, size);
  s[size] = '\0';
  if (size_parse_kb (s, &kb, &why) == 0) {
    if (kb == 0)
      abort ();
  }
  else if (why == NULL)
    abort ();
  free (s);
  return 0;
}
