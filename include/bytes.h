/* netvsc-patch: integers in on-disk structures: little-endian (registry
 * hives and logs, partition tables, VHDX, VMDK) and big-endian (qcow2 and
 * VHD headers).  Callers check that the bytes are there first. */
#ifndef NETVSC_PATCH_BYTES_H
#define NETVSC_PATCH_BYTES_H

#include <stdint.h>

static inline uint16_t
get_le16 (const unsigned char *p)
{
  return (uint16_t) (p[0] | p[1] << 8);
}

static inline uint32_t
get_le32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
    (uint32_t) p[3] << 24;
}

static inline uint64_t
get_le64 (const unsigned char *p)
{
  return (uint64_t) get_le32 (p) | (uint64_t) get_le32 (p + 4) << 32;
}

static inline uint32_t
get_be32 (const unsigned char *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline uint64_t
get_be64 (const unsigned char *p)
{
  return (uint64_t) get_be32 (p) << 32 | get_be32 (p + 4);
}

static inline void
put_le32 (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

#endif
