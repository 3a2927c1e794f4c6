/* netvsc-patch: buffer size arguments ("2M", "0x800", "2048K") -> KB. */
#ifndef NETVSC_PATCH_SIZE_H
#define NETVSC_PATCH_SIZE_H

#include <stdint.h>

/* Parse SIZE into kilobytes (the registry's unit).  A bare number is
 * KB (decimal or 0x hex); K/KB/KiB and M/MB/MiB suffixes are 1024-based,
 * case-insensitive.  Returns 0, or -1 with a reason in *why (a static
 * string) for empty, zero, negative, junk, fractions of a KB or values
 * that do not fit a REG_DWORD. */
int size_parse_kb (const char *size, uint32_t *kb, const char **why);

#endif
