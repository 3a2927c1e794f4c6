/* mklog - make a dirty hive and its transaction logs, for tests.
 *
 * Usage: mklog [options] -o OUT_PRIMARY -1 OUT_LOG1 [-2 OUT_LOG2]
 *              ORIG MODIFIED [MODIFIED...]
 *
 * ORIG is a clean hive and MODIFIED a changed copy of it (for example
 * made by hivexregedit --merge or a hivex commit).  With several
 * MODIFIED hives (successive states: each made from the one before),
 * each step becomes one log entry, as each flush does in Windows, so a
 * replay that stops after K entries must give the K-th hive exactly.  mklog writes what a
 * Windows machine leaves behind when it stops after logging the change
 * but before writing it to the primary file: OUT_PRIMARY holds ORIG's
 * data with a dirty base block (primary sequence number = secondary + 1,
 * or, with --bad-checksum, a wrong checksum), and the logs hold every
 * 4096-byte block of hive bins data that differs between ORIG and
 * MODIFIED (blocks past ORIG's end included: the hive grows).  Replaying
 * the logs must therefore give MODIFIED's hive bins data exactly.
 *
 * New format (default; Windows 8.1 and later): a 512-byte base block
 * copy with file type 6, then "HvLE" log entries at 512-byte boundaries,
 * one dirty page reference per run of changed blocks, Marvin32 Hash-1
 * and Hash-2 with the registry's seed.  Old format (--old): a base block
 * copy with file type 1, the "DIRT" dirty vector at offset 512 (one bit
 * per 512-byte page) and the dirty 512-byte pages in bitmap order.
 *
 * Options (entry numbers N count from 1, across both logs):
 *   --entries K       one MODIFIED hive: spread the changed blocks over K
 *                     entries (default 1), each entry's hive bins data
 *                     size only as large as its pages need
 *   --split K         entries 1..K go to LOG1, the others to LOG2
 *   --swap            ... and the other way round (LOG2 holds the first)
 *   --seq-delta D     the first entry's sequence number is the primary's
 *                     secondary one plus D (negative: stale logs)
 *   --bad-checksum    dirty primary by a wrong checksum, sequence numbers
 *                     equal (the log's base block copy is then needed)
 *   --bad-signature N entry N gets signature "HvLX"
 *   --bad-size N      entry N's size field is not a multiple of 512
 *   --bad-hash1 N     a byte of entry N's page data flipped after hashing
 *   --bad-hash2 N     entry N's Hash-2 field altered
 *   --bad-hbins N     entry N's hive bins data size is not a multiple of
 *                     4096 (hashes recomputed: only that rule fails)
 *   --gap N           entries N and later skip one sequence number
 *   --truncate B      cut B bytes off the end of the log written last
 *   --stale-log2      with no entries for LOG2, write an older LOG2 whose
 *                     (valid) entries predate the primary and would damage
 *                     it if applied
 *   --old             old-format log in LOG1 (LOG2, if named, is empty)
 *   --ts-mismatch     old format: the log's timestamp differs
 *   --bad-bin         old format: the last dirty block that starts a hive
 *                     bin loses its "hbin" signature in the log
 *   --fuzz-seed FILE  also write the three outputs packed as an input for
 *                     tests/fuzz/fuzz_logreplay.c
 *
 * Written from the public "Windows registry file format specification"
 * (M. Suhanov), sections "Format of transaction log files".  Marvin32 is
 * src/logreplay.c's.  Test-only: little error recovery.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logreplay.h"

struct mklog_opts {
  int old_format;
  unsigned entries;
  unsigned split;
  int swap;
  long seq_delta;
  int bad_checksum;
  unsigned bad_signature, bad_size, bad_hash1, bad_hash2, bad_hbins, gap;
  long truncate;
  int stale_log2;
  int ts_mismatch;
  int bad_bin;
};

#define MKLOG_BB 4096u
#define MKLOG_BLOCK 4096u

static uint32_t
mk_le32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
    (uint32_t) p[3] << 24;
}

static void
mk_put32 (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static void
mk_put64 (unsigned char *p, uint64_t v)
{
  mk_put32 (p, (uint32_t) v);
  mk_put32 (p + 4, (uint32_t) (v >> 32));
}

static uint32_t
mk_checksum (const unsigned char *b)
{
  uint32_t sum = 0;

  for (unsigned i = 0; i < 508; i += 4)
    sum ^= mk_le32 (b + i);
  if (sum == 0xffffffffu)
    sum = 0xfffffffeu;
  else if (sum == 0)
    sum = 1;
  return sum;
}

static unsigned char *
mk_slurp (const char *path, size_t *size, char *err, size_t errlen)
{
  FILE *f = fopen (path, "rb");
  unsigned char *buf = NULL;
  long n;

  if (f == NULL || fseek (f, 0, SEEK_END) != 0 || (n = ftell (f)) < 0 ||
      fseek (f, 0, SEEK_SET) != 0) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    if (f)
      fclose (f);
    return NULL;
  }
  buf = malloc ((size_t) n + 1);
  if (buf == NULL || fread (buf, 1, (size_t) n, f) != (size_t) n) {
    snprintf (err, errlen, "%s: cannot read", path);
    free (buf);
    fclose (f);
    return NULL;
  }
  fclose (f);
  *size = (size_t) n;
  return buf;
}

static int
mk_spit (const char *path, const unsigned char *data, size_t size, char *err, size_t errlen)
{
  FILE *f = fopen (path, "wb");

  if (f == NULL || (size && fwrite (data, 1, size, f) != size) || fclose (f) != 0) {
    snprintf (err, errlen, "%s: cannot write: %s", path, strerror (errno));
    return -1;
  }
  return 0;
}

/* A growing byte buffer. */
struct mk_buf {
  unsigned char *p;
  size_t len, cap;
};

static unsigned char *
mk_reserve (struct mk_buf *b, size_t n)
{
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n)
      cap *= 2;
    unsigned char *q = realloc (b->p, cap);
    if (q == NULL)
      abort ();
    b->p = q;
    b->cap = cap;
  }
  memset (b->p + b->len, 0, n);
  b->len += n;
  return b->p + b->len - n;
}

/* A log's 512-byte base block copy. */
static void
mk_log_base (unsigned char *dst, const unsigned char *bb, uint32_t type, uint32_t seq,
             uint32_t hbins, uint64_t timestamp)
{
  memcpy (dst, bb, 512);
  mk_put32 (dst + 4, seq);
  mk_put32 (dst + 8, seq);
  mk_put64 (dst + 12, timestamp);
  mk_put32 (dst + 28, type);
  mk_put32 (dst + 40, hbins);
  mk_put32 (dst + 508, mk_checksum (dst));
}

struct mk_ref {
  uint32_t off, size;
};

/* Append one HvLE entry with REFS (data taken from NEWBINS) to LOG. */
static void
mk_entry (struct mk_buf *log, const unsigned char *newbins, const struct mk_ref *refs,
          unsigned n, uint32_t seq, uint32_t hbins, uint32_t flags, unsigned number,
          const struct mklog_opts *o)
{
  size_t need = 40 + 8 * (size_t) n, at = log->len;
  unsigned char *e;

  for (unsigned i = 0; i < n; i++)
    need += refs[i].size;
  need = (need + 511) / 512 * 512;
  mk_reserve (log, need);
  e = log->p + at;
  memcpy (e, "HvLE", 4);
  mk_put32 (e + 4, (uint32_t) need);
  mk_put32 (e + 8, flags & 1);
  mk_put32 (e + 12, seq);
  mk_put32 (e + 16, o->bad_hbins == number ? hbins + 512 : hbins);
  mk_put32 (e + 20, n);
  {
    unsigned char *page = e + 40 + 8 * (size_t) n;
    for (unsigned i = 0; i < n; i++) {
      mk_put32 (e + 40 + 8 * i, refs[i].off);
      mk_put32 (e + 44 + 8 * i, refs[i].size);
      memcpy (page, newbins + refs[i].off, refs[i].size);
      page += refs[i].size;
    }
  }
  mk_put64 (e + 24, marvin32 (e + 40, need - 40, REPLAY_MARVIN_SEED));
  mk_put64 (e + 32, marvin32 (e, 32, REPLAY_MARVIN_SEED));
  /* Damage after hashing. */
  if (o->bad_signature == number)
    memcpy (e, "HvLX", 4);
  if (o->bad_size == number)
    mk_put32 (e + 4, (uint32_t) need - 100);
  if (o->bad_hash1 == number)
    e[40 + 8 * n + 17] ^= 0x40;
  if (o->bad_hash2 == number)
    e[33] ^= 0x01;
}

/* Stale log entries (sequence numbers before the primary's): pages of
 * garbage over the first block, which would destroy the root bin. */
static void
mk_stale_log (struct mk_buf *log, const unsigned char *bb, uint32_t seq, uint32_t hbins)
{
  static unsigned char junk[MKLOG_BLOCK];
  struct mk_ref ref = { 0, MKLOG_BLOCK };
  struct mklog_opts none;

  memset (&none, 0, sizeof none);
  memset (junk, 0xa5, sizeof junk);
  mk_log_base (mk_reserve (log, 512), bb, 6, seq, hbins, 0);
  mk_entry (log, junk, &ref, 1, seq, hbins, 0, 0, &none);
  mk_entry (log, junk, &ref, 1, seq + 1, hbins, 0, 0, &none);
}

/* The changed 4096-byte blocks of NEW (hive bins data of NHBINS bytes)
 * against OLD (OHBINS bytes), as runs.  Returns the number of runs. */
static unsigned
mk_diff (const unsigned char *oldbins, uint32_t ohbins, const unsigned char *newbins,
         uint32_t nhbins, struct mk_ref *runs)
{
  unsigned n = 0;

  for (uint32_t off = 0; off < nhbins; off += MKLOG_BLOCK) {
    if (off < ohbins && memcmp (oldbins + off, newbins + off, MKLOG_BLOCK) == 0)
      continue;
    if (n && runs[n - 1].off + runs[n - 1].size == off)
      runs[n - 1].size += MKLOG_BLOCK;
    else
      runs[n++] = (struct mk_ref) { off, MKLOG_BLOCK };
  }
  return n;
}

/* One log entry to be: its pages come from BINS. */
struct mk_plan {
  const unsigned char *bins;
  struct mk_ref *refs;
  unsigned n;
  uint32_t hbins;
};

int
mklog_make (const char *orig_path, const char *const *mod_paths, unsigned nmods,
            const char *out_primary, const char *out_log1, const char *out_log2,
            const struct mklog_opts *o, char *err, size_t errlen)
{
  size_t osize, msize[64];
  unsigned char *orig = NULL, *mod[64] = { NULL }, *prim = NULL, *last;
  struct mk_buf log[2] = { { NULL, 0, 0 }, { NULL, 0, 0 } }, *lastlog = &log[0];
  struct mk_ref *runs = NULL;
  struct mk_plan plan[256];
  unsigned nruns, nplan = 0, maxblocks;
  uint32_t ohbins, lhbins, seq2, flags;
  uint64_t ts;
  int r = -1;

  memset (plan, 0, sizeof plan);
  if (nmods == 0 || nmods > 64) {
    snprintf (err, errlen, "1 to 64 modified hives");
    return -1;
  }
  orig = mk_slurp (orig_path, &osize, err, errlen);
  if (orig == NULL)
    goto out;
  for (unsigned i = 0; i < nmods; i++)
    if ((mod[i] = mk_slurp (mod_paths[i], &msize[i], err, errlen)) == NULL)
      goto out;
  if (osize < MKLOG_BB || memcmp (orig, "regf", 4) != 0) {
    snprintf (err, errlen, "%s: not a registry hive", orig_path);
    goto out;
  }
  ohbins = mk_le32 (orig + 40);
  maxblocks = ohbins / MKLOG_BLOCK;
  for (unsigned i = 0; i < nmods; i++) {
    uint32_t h = msize[i] >= MKLOG_BB ? mk_le32 (mod[i] + 40) : 0;
    uint32_t prev = i ? mk_le32 (mod[i - 1] + 40) : ohbins;
    if (msize[i] < MKLOG_BB || memcmp (mod[i], "regf", 4) != 0 || msize[i] < MKLOG_BB + h ||
        h < prev || h % MKLOG_BLOCK) {
      snprintf (err, errlen, "%s: not a registry hive, or smaller than the one before",
                mod_paths[i]);
      goto out;
    }
    if (h / MKLOG_BLOCK > maxblocks)
      maxblocks = h / MKLOG_BLOCK;
  }
  if (osize < MKLOG_BB + ohbins) {
    snprintf (err, errlen, "%s: truncated", orig_path);
    goto out;
  }
  last = mod[nmods - 1];
  lhbins = mk_le32 (last + 40);
  seq2 = mk_le32 (orig + 8);
  flags = mk_le32 (last + 144);
  ts = mk_le32 (orig + 12) | (uint64_t) mk_le32 (orig + 16) << 32;

  /* The dirty primary: ORIG's bytes, base block made dirty. */
  prim = malloc (osize);
  if (prim == NULL)
    abort ();
  memcpy (prim, orig, osize);
  if (o->bad_checksum)
    mk_put32 (prim + 508, mk_checksum (prim) ^ 0x5a5a5a5a);
  else {
    mk_put32 (prim + 4, seq2 + 1);
    mk_put32 (prim + 508, mk_checksum (prim));
  }

  runs = calloc ((size_t) maxblocks * (nmods + 1) + 1, sizeof *runs);
  if (runs == NULL)
    abort ();

  if (o->old_format) {
    /* Base block copy, dirty vector, pages: cumulative, ORIG -> last. */
    uint32_t vec = lhbins / 4096u, start = (512 + 4 + vec + 511) / 512 * 512;
    unsigned char *bits;
    size_t last_bin_page = SIZE_MAX;

    nruns = mk_diff (orig + MKLOG_BB, ohbins, last + MKLOG_BB, lhbins, runs);
    if (nruns == 0) {
      snprintf (err, errlen, "nothing changed");
      goto out;
    }
    mk_log_base (mk_reserve (&log[0], 512), orig, 1, seq2 + 1, lhbins,
                 o->ts_mismatch ? ts + 1 : ts);
    mk_reserve (&log[0], start - 512);
    memcpy (log[0].p + 512, "DIRT", 4);
    for (unsigned i = 0; i < nruns; i++)
      for (uint32_t off = runs[i].off; off < runs[i].off + runs[i].size; off += 512) {
        unsigned char *page = mk_reserve (&log[0], 512);
        bits = log[0].p + 512 + 4;
        bits[off / 512 / 8] |= (unsigned char) (1u << (off / 512 % 8));
        memcpy (page, last + MKLOG_BB + off, 512);
        if (off % MKLOG_BLOCK == 0 && memcmp (page, "hbin", 4) == 0)
          last_bin_page = log[0].len - 512;
      }
    if (o->bad_bin && last_bin_page != SIZE_MAX)
      log[0].p[last_bin_page] = 'X';
  }
  else {
    unsigned part[2], used = 0, number = 0;
    uint32_t seq = seq2 + (uint32_t) o->seq_delta;

    if (nmods > 1) {
      /* One entry per step: each is a consistent state, as Windows
       * logs one per flush. */
      for (unsigned i = 0; i < nmods && nplan < 256; i++) {
        const unsigned char *prev = i ? mod[i - 1] : orig;
        struct mk_plan *p = &plan[nplan++];
        p->bins = mod[i] + MKLOG_BB;
        p->refs = runs + used;
        p->hbins = mk_le32 (mod[i] + 40);
        p->n = mk_diff (prev + MKLOG_BB, mk_le32 (prev + 40), p->bins, p->hbins, p->refs);
        if (p->n == 0) {
          snprintf (err, errlen, "%s: nothing changed", mod_paths[i]);
          goto out;
        }
        used += p->n;
      }
    }
    else {
      /* One hive: its changed blocks spread over K entries, each entry's
       * hive bins data size as large as its pages need. */
      unsigned k = o->entries ? o->entries : 1, n;
      uint32_t size = ohbins;

      nruns = mk_diff (orig + MKLOG_BB, ohbins, last + MKLOG_BB, lhbins, runs);
      if (nruns == 0) {
        snprintf (err, errlen, "nothing changed");
        goto out;
      }
      n = nruns;
      if (k > nruns) {
        /* Not enough runs: one block each. */
        struct mk_ref *blocks = runs + nruns;
        n = 0;
        for (unsigned i = 0; i < nruns; i++)
          for (uint32_t off = runs[i].off; off < runs[i].off + runs[i].size; off += MKLOG_BLOCK)
            blocks[n++] = (struct mk_ref) { off, MKLOG_BLOCK };
        memmove (runs, blocks, n * sizeof *runs);
      }
      if (k > n)
        k = n;
      if (k > 256)
        k = 256;
      for (unsigned i = 0; i < k; i++) {
        struct mk_plan *p = &plan[nplan++];
        unsigned from = i * n / k, to = (i + 1) * n / k;
        p->bins = last + MKLOG_BB;
        p->refs = runs + from;
        p->n = to - from;
        for (unsigned j = from; j < to; j++)
          if (runs[j].off + runs[j].size > size)
            size = runs[j].off + runs[j].size;
        p->hbins = i == k - 1 ? lhbins : size;
      }
    }

    part[0] = o->split && o->split < nplan ? o->split : nplan;
    part[1] = nplan - part[0];
    for (int l = 0; l < 2; l++) {
      struct mk_buf *lb = &log[o->swap ? 1 - l : l];
      for (unsigned i = 0; i < part[l]; i++) {
        const struct mk_plan *p = &plan[number++];
        if (o->gap == number)
          seq++;
        if (i == 0)
          mk_log_base (mk_reserve (lb, 512), orig, 6, seq, ohbins, ts);
        mk_entry (lb, p->bins, p->refs, p->n, seq, p->hbins, flags, number, o);
        lastlog = lb;
        seq++;
      }
    }
    if (o->stale_log2 && part[1] == 0)
      mk_stale_log (&log[o->swap ? 0 : 1], orig, seq2 - 3, ohbins);
  }

  if (o->truncate > 0)
    lastlog->len = (size_t) o->truncate < lastlog->len ? lastlog->len - (size_t) o->truncate : 0;

  if (mk_spit (out_primary, prim, osize, err, errlen) == -1 ||
      mk_spit (out_log1, log[0].p, log[0].len, err, errlen) == -1 ||
      (out_log2 && mk_spit (out_log2, log[1].p, log[1].len, err, errlen) == -1))
    goto out;
  r = 0;

 out:
  free (orig);
  for (unsigned i = 0; i < nmods && i < 64; i++)
    free (mod[i]);
  free (prim);
  free (runs);
  free (log[0].p);
  free (log[1].p);
  return r;
}

#ifndef MKLOG_LIBRARY
static unsigned
mk_num (const char *s)
{
  char *end;
  unsigned long v = strtoul (s, &end, 0);

  if (*end || v == 0) {
    fprintf (stderr, "mklog: bad number '%s'\n", s);
    exit (2);
  }
  return (unsigned) v;
}

int
main (int argc, char **argv)
{
  struct mklog_opts o;
  const char *outp = NULL, *out1 = NULL, *out2 = NULL, *seed = NULL;
  char err[512];
  int i;

  memset (&o, 0, sizeof o);
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : "";
#define NUMOPT(name, field) if (strcmp (a, name) == 0) { o.field = mk_num (v); i++; continue; }
    NUMOPT ("--entries", entries);
    NUMOPT ("--split", split);
    NUMOPT ("--bad-signature", bad_signature);
    NUMOPT ("--bad-size", bad_size);
    NUMOPT ("--bad-hash1", bad_hash1);
    NUMOPT ("--bad-hash2", bad_hash2);
    NUMOPT ("--bad-hbins", bad_hbins);
    NUMOPT ("--gap", gap);
    NUMOPT ("--truncate", truncate);
#undef NUMOPT
    if (strcmp (a, "-o") == 0) { outp = v; i++; continue; }
    if (strcmp (a, "-1") == 0) { out1 = v; i++; continue; }
    if (strcmp (a, "-2") == 0) { out2 = v; i++; continue; }
    if (strcmp (a, "--fuzz-seed") == 0) { seed = v; i++; continue; }
    if (strcmp (a, "--seq-delta") == 0) { o.seq_delta = strtol (v, NULL, 0); i++; continue; }
    if (strcmp (a, "--swap") == 0) { o.swap = 1; continue; }
    if (strcmp (a, "--bad-checksum") == 0) { o.bad_checksum = 1; continue; }
    if (strcmp (a, "--stale-log2") == 0) { o.stale_log2 = 1; continue; }
    if (strcmp (a, "--old") == 0) { o.old_format = 1; continue; }
    if (strcmp (a, "--ts-mismatch") == 0) { o.ts_mismatch = 1; continue; }
    if (strcmp (a, "--bad-bin") == 0) { o.bad_bin = 1; continue; }
    fprintf (stderr, "mklog: unknown option %s\n", a);
    return 2;
  }
  if (outp == NULL || out1 == NULL || argc - i < 2) {
    fprintf (stderr, "usage: mklog [options] -o OUT_PRIMARY -1 OUT_LOG1 [-2 OUT_LOG2] "
             "ORIG MODIFIED [MODIFIED...]\n");
    return 2;
  }
  if (mklog_make (argv[i], (const char *const *) argv + i + 1, (unsigned) (argc - i - 1),
                  outp, out1, out2, &o, err, sizeof err) == -1) {
    fprintf (stderr, "mklog: %s\n", err);
    return 1;
  }
  if (seed) {
    /* flags, length of the primary, length of LOG1, then the files */
    const char *files[3] = { outp, out1, out2 };
    unsigned char *d[3] = { NULL, NULL, NULL }, head[9] = { 0 };
    size_t n[3] = { 0, 0, 0 };
    FILE *f;
    for (int k = 0; k < 3; k++)
      if (files[k] && (d[k] = mk_slurp (files[k], &n[k], err, sizeof err)) == NULL) {
        fprintf (stderr, "mklog: %s\n", err);
        return 1;
      }
    mk_put32 (head + 1, (uint32_t) n[0]);
    mk_put32 (head + 5, (uint32_t) n[1]);
    f = fopen (seed, "wb");
    if (f == NULL || fwrite (head, 1, 9, f) != 9) {
      fprintf (stderr, "mklog: %s: cannot write\n", seed);
      return 1;
    }
    for (int k = 0; k < 3; k++)
      if (n[k] && fwrite (d[k], 1, n[k], f) != n[k]) {
        fprintf (stderr, "mklog: %s: cannot write\n", seed);
        return 1;
      }
    fclose (f);
    for (int k = 0; k < 3; k++)
      free (d[k]);
  }
  return 0;
}
#endif
