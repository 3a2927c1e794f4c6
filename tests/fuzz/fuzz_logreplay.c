/* libFuzzer target: transaction-log replay (src/logreplay.c) on
 * arbitrary primary + LOG1 + LOG2 bytes.  Nothing may crash, leak or
 * read out of bounds; refusals are fine.
 *
 * Input layout:
 *   byte 0        flags: bit 0 fix the base block checksums, bit 1 fix
 *                 the Marvin32 hashes of every HvLE entry (so that
 *                 mutations reach past those checks), bit 2 no LOG2,
 *                 bit 3 no LOG1, bit 4 the third file is the single
 *                 SYSTEM.LOG (Windows XP) instead of LOG2
 *   bytes 1-4     length of the primary (little-endian, taken modulo
 *                 what is left)
 *   bytes 5-8     length of LOG1 (same)
 *   then          primary, LOG1, and LOG2 = the rest
 *
 * Seeds: build/tests/mklog --fuzz-seed FILE ... writes the dirty hive
 * and logs it makes in this layout (flags 0). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logreplay.h"

/* Claims above this are skipped: the replay would allocate that much. */
#define FUZZ_MAX_HBINS (64u << 20)

static uint32_t
rd32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void
wr32 (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static void
fix_checksum (unsigned char *b, size_t n)
{
  uint32_t sum = 0;

  if (n < 512)
    return;
  for (int i = 0; i < 508; i += 4)
    sum ^= rd32 (b + i);
  if (sum == 0xffffffffu)
    sum = 0xfffffffeu;
  else if (sum == 0)
    sum = 1;
  wr32 (b + 508, sum);
}

/* Walk the HvLE entries of a log: optionally rehash them; 0 if the
 * input claims no hive larger than FUZZ_MAX_HBINS. */
static int
scan_log (unsigned char *l, size_t n, int rehash)
{
  size_t off = 512;

  if (n >= 512 && rd32 (l + 40) > FUZZ_MAX_HBINS)
    return -1;
  while (off + 40 <= n && memcmp (l + off, "HvLE", 4) == 0) {
    uint32_t size = rd32 (l + off + 4);
    if (rd32 (l + off + 16) > FUZZ_MAX_HBINS)
      return -1;
    if (size < 512 || size % 512 || size > n - off)
      break;
    if (rehash) {
      uint64_t h1 = marvin32 (l + off + 40, size - 40, REPLAY_MARVIN_SEED), h2;
      wr32 (l + off + 24, (uint32_t) h1);
      wr32 (l + off + 28, (uint32_t) (h1 >> 32));
      h2 = marvin32 (l + off, 32, REPLAY_MARVIN_SEED);
      wr32 (l + off + 32, (uint32_t) h2);
      wr32 (l + off + 36, (uint32_t) (h2 >> 32));
    }
    off += size;
  }
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct replay_input in[3] = { { "SYSTEM", NULL, 0 }, { "SYSTEM.LOG1", NULL, 0 },
                                { "SYSTEM.LOG2", NULL, 0 } };
  struct replay_result res;
  struct np_error err;
  unsigned char *copy, *out = NULL;
  size_t out_size, left, lens[3];
  unsigned flags;
  int r;

  if (size < 9)
    return 0;
  flags = data[0];
  left = size - 9;
  lens[0] = left ? rd32 (data + 1) % (left + 1) : 0;
  left -= lens[0];
  lens[1] = left ? rd32 (data + 5) % (left + 1) : 0;
  lens[2] = left - lens[1];

  /* Private, exactly sized copies: out-of-bounds reads are caught. */
  copy = malloc (size - 9 ? size - 9 : 1);
  if (copy == NULL)
    return 0;
  memcpy (copy, data + 9, size - 9);
  {
    unsigned char *p = copy;
    for (int i = 0; i < 3; i++) {
      in[i].data = p;
      in[i].size = lens[i];
      p += lens[i];
    }
  }
  for (int i = 0; i < 3; i++) {
    unsigned char *b = (unsigned char *) in[i].data;
    if (flags & 1)
      fix_checksum (b, in[i].size);
    if (i > 0 && scan_log (b, in[i].size, flags & 2) == -1) {
      free (copy);
      return 0;
    }
  }
  if (flags & 4)
    in[2].data = NULL;
  if (flags & 8)
    in[1].data = NULL;

  {
    const struct replay_input *logs[REPLAY_NLOGS] = { &in[1], &in[2], NULL };
    if (flags & 16) {
      in[2].name = "SYSTEM.LOG";
      logs[REPLAY_LOG2] = NULL;
      logs[REPLAY_LOG] = &in[2];
    }
    r = hive_replay_inputs (&in[0], logs, &out, &out_size, &res, &err);
  }
  if (r == 0) {
    uint64_t bad;
    char why[160];
    char line[512];
    /* What it returns is a clean, well-formed hive bins chain. */
    if (out_size < 4096 || hive_bins_check (out + 4096, out_size - 4096, &bad, why,
                                            sizeof why) != 0 ||
        rd32 (out + 4) != rd32 (out + 8))
      abort ();
    replay_describe (&res, line, sizeof line);
  }
  else if (r == -1 && err.msg[0] == '\0')
    abort ();
  free (out);
  free (copy);
  return 0;
}
