/* netvsc-patch: parsing buffer sizes. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "size.h"

int
size_parse_kb (const char *size, uint32_t *kb, const char **why)
{
  const char *p = size;
  uint64_t n;
  uint64_t multiplier = 1;        /* in KB */
  char *end;

  while (isspace ((unsigned char) *p))
    p++;
  if (*p == '\0') {
    *why = "empty size";
    return -1;
  }
  /* strtoull accepts a sign; we never want one. */
  if (!isdigit ((unsigned char) *p)) {
    *why = *p == '-' ? "size must be positive" : "size must start with a number";
    return -1;
  }

  errno = 0;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    if (!isxdigit ((unsigned char) p[2])) {
      *why = "bad hexadecimal number";
      return -1;
    }
    n = strtoull (p, &end, 16);
  }
  else
    n = strtoull (p, &end, 10);
  if (errno == ERANGE) {
    *why = "size too large for a REG_DWORD";
    return -1;
  }
  if (*end == '.') {
    *why = "fractions are not allowed (the registry holds whole KB)";
    return -1;
  }

  if (*end == '\0')
    multiplier = 1;
  else if (strcasecmp (end, "K") == 0 || strcasecmp (end, "KB") == 0 ||
           strcasecmp (end, "KiB") == 0)
    multiplier = 1;
  else if (strcasecmp (end, "M") == 0 || strcasecmp (end, "MB") == 0 ||
           strcasecmp (end, "MiB") == 0)
    multiplier = 1024;
  else {
    *why = "unknown suffix (use K or M, or a number of KB)";
    return -1;
  }

  if (n == 0) {
    *why = "size must be greater than zero";
    return -1;
  }
  if (n > UINT32_MAX / multiplier) {
    *why = "size too large for a REG_DWORD";
    return -1;
  }
  *kb = (uint32_t) (n * multiplier);
  return 0;
}
