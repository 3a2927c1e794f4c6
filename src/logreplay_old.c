/* netvsc-patch: transaction-log replay, the old format (Windows NT to 7
 * / Server 2008 R2, and XP's single FILE.LOG): the log matched to the
 * hive by timestamp, its "DIRT" bitmap and 512-byte pages checked, and
 * applied whole or not at all.  The rules and their sources are in
 * logreplay.c's opening comment. */

#include "logreplay-internal.h"


/* Old format, the checks before anything is applied.  The log is one
 * transaction: its dirty vector says which 512-byte pages it holds, and
 * the file must hold every one of them.  0 with the number of pages in
 * *NPAGES and the offset of the first in *START; -1 with the rule L
 * breaks in WHY. */
static int
check_old (const struct logf *l, uint64_t *npages, size_t *start, char *why, size_t whylen)
{
  uint32_t hbins = l->hbins;
  size_t vec = hbins / HBIN_ALIGN, have_vec, need, have;
  const unsigned char *bits;

  *npages = 0;
  if (hbins > MAX_HBINS_SIZE) {
    snprintf (why, whylen, "%s: its hive bins data size 0x%" PRIx32 " is too large", l->name,
              hbins);
    return -1;
  }
  if (l->size < LOG_BASE_SIZE + 4) {
    snprintf (why, whylen, "%s is cut short before its dirty vector (%zu bytes)", l->name,
              l->size);
    return -1;
  }
  if (memcmp (l->data + LOG_BASE_SIZE, "DIRT", 4) != 0) {
    snprintf (why, whylen, "%s has no dirty vector (no \"DIRT\" signature at offset 512)",
              l->name);
    return -1;
  }
  /* One bit per 512-byte page of the log's hive bins data size. */
  have_vec = l->size - LOG_BASE_SIZE - 4;
  if (have_vec < vec) {
    snprintf (why, whylen, "%s is cut short inside its dirty vector (%zu of %zu bitmap bytes "
              "for hive bins data of 0x%" PRIx32 " bytes)", l->name, have_vec, vec, hbins);
    return -1;
  }
  bits = l->data + LOG_BASE_SIZE + 4;
  /* Windows marks whole 4096-byte blocks dirty (dirty vector note 3):
   * any other byte is damage, and a bitmap that gained or lost a bit
   * would map every later page to the wrong place. */
  for (size_t i = 0; i < vec; i++) {
    if (bits[i] != 0 && bits[i] != 0xff) {
      snprintf (why, whylen, "%s: dirty vector byte %zu is 0x%02x where Windows writes 0x00 "
                "or 0xff (one byte per 4096-byte block): the bitmap is damaged", l->name, i,
                bits[i]);
      return -1;
    }
    if (bits[i])
      *npages += 8;
  }
  if (*npages == 0) {
    snprintf (why, whylen, "%s: its dirty vector marks no page dirty", l->name);
    return -1;
  }
  /* Pages from the 512-byte boundary after the bitmap, one per bit set
   * (dirty pages note 1); remnants after them are allowed. */
  *start = (LOG_BASE_SIZE + 4 + vec + SECTOR - 1) / SECTOR * SECTOR;
  need = *start + (size_t) *npages * SECTOR;
  if (l->size < need) {
    have = l->size > *start ? (l->size - *start) / SECTOR : 0;
    snprintf (why, whylen, "%s holds %zu of %" PRIu64 " dirty pages: cut short (%zu bytes, "
              "%zu needed)", l->name, have, *npages, l->size, need);
    return -1;
  }
  return 0;
}

/* The cells of the hive bin BIN (SIZE bytes, at OFF in the hive bins
 * data) must fill it exactly: each a multiple of 8 bytes, none running
 * past its end.  A page written to the wrong place rarely keeps that. */
static int
cells_check (const unsigned char *bin, uint32_t size, uint64_t off, char *why, size_t whylen)
{
  uint32_t at = 32;

  while (at < size) {
    int32_t raw = (int32_t) get_le32 (bin + at);
    uint32_t len = raw < 0 ? (uint32_t) -(int64_t) raw : (uint32_t) raw;
    if (len < 8 || len % 8 != 0 || len > size - at) {
      snprintf (why, whylen, "the cell at offset 0x%" PRIx64 " has a bad size (%" PRId32
                ") in the hive bin at 0x%" PRIx64, off + at, raw, off);
      return -1;
    }
    at += len;
  }
  return 0;
}

/* Old format: apply all of L's dirty pages to a copy of the hive and
 * check every hive bin, and the cells of each bin a page went to.
 * 0 with W's hive replaced by the result; 1 with the rule L breaks in
 * WHY and W untouched; -1 (out of memory) with *W->ERR set. */
static int
try_old (struct work *w, const struct logf *l, char *why, size_t whylen)
{
  uint32_t hbins = l->hbins;
  const unsigned char *bits = l->data + LOG_BASE_SIZE + 4;
  size_t start, len, k = 0;
  uint64_t npages, bad, off;
  unsigned char *cand;
  char reason[160];

  if (check_old (l, &npages, &start, why, whylen) == -1)
    return 1;
  len = (size_t) BASE_BLOCK_SIZE + hbins;
  if (len < w->len)
    len = w->len;
  cand = malloc (len);
  if (cand == NULL)
    return np_error_set (w->err, NP_EXIT_RUNTIME, "%s: out of memory (hive of %zu bytes)",
                         w->name, len);
  memcpy (cand, w->img, w->len);
  memset (cand + w->len, 0, len - w->len);
  for (uint32_t bit = 0; bit < hbins / SECTOR; bit++)
    if (bits[bit / 8] >> (bit % 8) & 1)
      memcpy (cand + BASE_BLOCK_SIZE + (size_t) bit * SECTOR,
              l->data + start + SECTOR * k++, SECTOR);

  /* Every hive bin, then the cells of each bin holding a dirty page. */
  if (hive_bins_check (cand + BASE_BLOCK_SIZE, hbins, &bad, reason, sizeof reason) == -1) {
    snprintf (why, whylen, "%s: with its %" PRIu64 " dirty pages applied, the hive bin at "
              "offset 0x%" PRIx64 " is invalid (%s)", l->name, npages, bad, reason);
    free (cand);
    return 1;
  }
  for (off = 0; off < hbins; off += get_le32 (cand + BASE_BLOCK_SIZE + off + 8)) {
    const unsigned char *bin = cand + BASE_BLOCK_SIZE + off;
    uint32_t bsize = get_le32 (bin + 8), dirty = 0;
    for (uint64_t b = off / HBIN_ALIGN; b < (off + bsize) / HBIN_ALIGN; b++)
      dirty |= bits[b];
    if (dirty && cells_check (bin, bsize, off, reason, sizeof reason) == -1) {
      snprintf (why, whylen, "%s: with its %" PRIu64 " dirty pages applied, %s", l->name,
                npages, reason);
      free (cand);
      return 1;
    }
  }
  free (w->img);
  w->img = cand;
  w->len = w->cap = len;
  w->hbins = hbins;
  w->res->pages = (unsigned) npages;
  w->res->entries = 1;
  w->res->seq_from = w->res->seq_to = l->seq;
  return 0;
}

/* FILETIME as "2024-05-01 10:20:30.1234567 UTC" (or hex if out of
 * range): to the 100 ns it counts, as two may differ by less than a
 * second. */
static void
filetime_text (uint64_t ft, char *buf, size_t len)
{
  time_t t;
  struct tm tm;
  char sec[32];

  if (ft < 116444736000000000ull || ft > 116444736000000000ull + 253402300799ull * 10000000ull) {
    snprintf (buf, len, "0x%" PRIx64, ft);
    return;
  }
  t = (time_t) ((ft - 116444736000000000ull) / 10000000ull);
  if (gmtime_r (&t, &tm) == NULL || strftime (sec, sizeof sec, "%Y-%m-%d %H:%M:%S", &tm) == 0)
    snprintf (buf, len, "0x%" PRIx64, ft);
  else
    snprintf (buf, len, "%s.%07u UTC", sec, (unsigned) ((ft - 116444736000000000ull) % 10000000u));
}

/* Old format: which log, then all of it or nothing.  The candidates
 * are the valid old-format logs whose last written timestamp is the
 * hive's (or, with an invalid base block, its first hive bin's), in the
 * order LOG1, LOG2, LOG; the first that passes every check is applied
 * (Windows too switches to the other log after an error).  On success
 * *USE is that log. */
int
replay_old (struct work *w, struct logf **logs, int nlogs, const unsigned char *p,
            size_t psize, int pvalid, const struct logf **use)
{
  char states[3][320], why[320], when[48], bin_when[48];
  size_t used;
  uint64_t ts;
  int applicable = 0;

  *use = NULL;
  if (pvalid)
    ts = get_le64 (p + BB_TIMESTAMP);
  else if (psize >= BASE_BLOCK_SIZE + 32 && memcmp (p + BASE_BLOCK_SIZE, "hbin", 4) == 0)
    ts = get_le64 (p + BASE_BLOCK_SIZE + 20);
  else
    return np_error_set (w->err, NP_EXIT_UNSAFE, "%s: its base block is invalid (wrong "
                         "checksum) and it has no first hive bin whose timestamp could stand "
                         "for the base block's: the old-format logs cannot be matched to it",
                         w->name);
  filetime_text (ts, bin_when, sizeof bin_when);
  for (int i = 0; i < nlogs; i++) {
    struct logf *l = logs[i];
    int r;
    snprintf (states[i], sizeof states[i], "%s", l->state);
    if (!l->valid || l->type == FILE_TYPE_LOG_NEW) {
      if (l->valid)
        snprintf (states[i], sizeof states[i], "%s: a new-format log beside old-format ones, "
                  "not used", l->name);
      continue;
    }
    if (l->timestamp != ts) {
      filetime_text (l->timestamp, when, sizeof when);
      snprintf (states[i], sizeof states[i], "%s: written at another time (%s) than the %s "
                "(%s): not this hive's log", l->name, when,
                pvalid ? "hive" : "hive's first hive bin", bin_when);
      continue;
    }
    applicable++;
    r = try_old (w, l, why, sizeof why);
    if (r == -1)
      return -1;
    if (r == 1) {
      snprintf (states[i], sizeof states[i], "%s", why);
      continue;
    }
    /* applied: say why any earlier candidate was not */
    for (int j = 0; j < i; j++)
      if (logs[j]->present) {
        used = strlen (w->res->stopped);
        snprintf (w->res->stopped + used, sizeof w->res->stopped - used, "%s%s (not used)",
                  used ? "; " : "", states[j]);
      }
    *use = l;
    return 0;
  }

  /* Nothing applied: the message says which log broke which rule. */
  {
    char all[3 * 320 + 8] = "", ctx[200] = "";
    for (int i = 0; i < nlogs; i++) {
      used = strlen (all);
      snprintf (all + used, sizeof all - used, "%s%s", i ? "; " : "", states[i]);
    }
    if (!pvalid)
      snprintf (ctx, sizeof ctx, "its base block is invalid (wrong checksum), so the logs were "
                "matched against its first hive bin's timestamp (%s): ", bin_when);
    if (applicable)
      return np_error_set (w->err, NP_EXIT_UNSAFE, "%s: %s%s (an old-format log is applied "
                           "whole or not at all)", w->name, ctx, all);
    return np_error_set (w->err, NP_EXIT_UNSAFE, "%s: %sno transaction log applies to it: %s",
                         w->name, ctx, all);
  }
}
