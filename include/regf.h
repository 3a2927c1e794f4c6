/* netvsc-patch: the registry file format's shared arithmetic, for
 * hive.c (with hivex) and logreplay.c (without it). */
#ifndef NETVSC_PATCH_REGF_H
#define NETVSC_PATCH_REGF_H

#include <stdint.h>

#include "bytes.h"

#define REGF_BASE_BLOCK_SIZE 4096
/* A cell's offset has 31 bits (the top one is for volatile cells, never
 * in a file): a hive's bins hold at most 2 GB. */
#define REGF_MAX_BINS 0x80000000u
#define REGF_BINS_SIZE_AT 0x28
/* The largest a hive file can be; its logs (copies of its dirty pages)
 * are held to the same.  A file larger is refused before it is copied
 * out of an image or read. */
#define REGF_MAX_FILE ((uint64_t) REGF_BASE_BLOCK_SIZE + REGF_MAX_BINS)
#define REGF_CHECKSUM_AT 508
/* In a key's "nk" record (after its cell's size): its value list's cell */
#define REGF_NK_VALUE_LIST_AT 0x28

/* A base block's checksum: XOR-32 of its first 508 bytes, with 0 and -1
 * mapped to 1 and -2.  The same for a hive's 4096-byte base block and a
 * log's 512-byte copy of it. */
static inline uint32_t
regf_checksum (const unsigned char *block)
{
  uint32_t sum = 0;

  for (unsigned i = 0; i < REGF_CHECKSUM_AT; i += 4)
    sum ^= get_le32 (block + i);
  if (sum == 0xffffffffu)
    sum = 0xfffffffeu;
  else if (sum == 0)
    sum = 1;
  return sum;
}

#endif
