/* netvsc-patch: transaction-log replay, the new format (Windows 8.1 /
 * Server 2012 R2 and later): "HvLE" log entries checked (Marvin32
 * hashes, sizes, page references, the chain of sequence numbers) and
 * applied, and which of LOG1 and LOG2 is replayed, in which order.  The
 * rules and their sources are in logreplay.c's opening comment. */

#include "logreplay-internal.h"

/* ---- sequence numbers --------------------------------------------- */

/* Is A before B, with 32-bit wrap-around?  (yarp's is_starting_log.) */
static int
seq_before (uint32_t a, uint32_t b)
{
  return (int32_t) (a - b) < 0;
}

/* ---- log entries -------------------------------------------------- */


/* Check the log entry of L at OFF, expected to carry sequence number
 * EXPECT.  0 if it can be applied; -1 with the reason in WHY. */
static int
check_entry (const struct logf *l, size_t off, uint32_t expect, char *why, size_t whylen)
{
  const unsigned char *e = l->data + off;
  size_t left = l->size - off;
  uint32_t size, seq, hbins, count;
  uint64_t total = 0;

  if (left == 0) {
    snprintf (why, whylen, "%s: end of file at offset 0x%zx after the last entry", l->name, off);
    return -1;
  }
  if (left < 4 || memcmp (e, "HvLE", 4) != 0) {
    snprintf (why, whylen, "%s: no log entry at offset 0x%zx (end of entries)", l->name, off);
    return -1;
  }
  if (left < ENTRY_HEADER) {
    snprintf (why, whylen, "%s: log entry at offset 0x%zx is truncated (%zu bytes left)",
              l->name, off, left);
    return -1;
  }
  size = get_le32 (e + 4);
  seq = get_le32 (e + 12);
  hbins = get_le32 (e + 16);
  count = get_le32 (e + 20);
  if (size < SECTOR || size % SECTOR != 0) {
    snprintf (why, whylen, "%s: log entry at offset 0x%zx has a bad size (0x%" PRIx32 ")",
              l->name, off, size);
    return -1;
  }
  if (size > left) {
    snprintf (why, whylen, "%s: log entry at offset 0x%zx is truncated (size 0x%" PRIx32
              ", 0x%zx bytes left in the file)", l->name, off, size, left);
    return -1;
  }
  /* Notes 1-3 and 8: both hashes must match. */
  if (marvin32 (e, 32, REPLAY_MARVIN_SEED) != get_le64 (e + 32)) {
    snprintf (why, whylen, "%s: log entry at offset 0x%zx has a bad hash-2", l->name, off);
    return -1;
  }
  if (marvin32 (e + ENTRY_HEADER, size - ENTRY_HEADER, REPLAY_MARVIN_SEED) != get_le64 (e + 24)) {
    snprintf (why, whylen, "%s: log entry at offset 0x%zx has a bad hash-1", l->name, off);
    return -1;
  }
  if (hbins == 0 || hbins % HBIN_ALIGN != 0 || hbins > MAX_HBINS_SIZE) {
    snprintf (why, whylen, "%s: log entry at offset 0x%zx has a bad hive bins data size "
              "(0x%" PRIx32 ")", l->name, off, hbins);
    return -1;
  }
  /* Note 7: the chain of sequence numbers. */
  if (seq != expect) {
    snprintf (why, whylen, "%s: log entry at offset 0x%zx has sequence number 0x%" PRIx32
              " where 0x%" PRIx32 " was expected", l->name, off, seq, expect);
    return -1;
  }
  if (count == 0 || count > (size - ENTRY_HEADER) / 8) {
    snprintf (why, whylen, "%s: log entry 0x%" PRIx32 " has a bad dirty pages count (%" PRIu32 ")",
              l->name, seq, count);
    return -1;
  }
  for (uint32_t i = 0; i < count; i++) {
    uint32_t poff = get_le32 (e + ENTRY_HEADER + 8 * i), psize = get_le32 (e + ENTRY_HEADER + 8 * i + 4);
    if (psize == 0 || psize % SECTOR != 0 || poff % SECTOR != 0 ||
        (uint64_t) poff + psize > hbins) {
      snprintf (why, whylen, "%s: log entry 0x%" PRIx32 " has a bad page reference "
                "(offset 0x%" PRIx32 ", size 0x%" PRIx32 ", hive bins data size 0x%" PRIx32 ")",
                l->name, seq, poff, psize, hbins);
      return -1;
    }
    total += psize;
  }
  if (ENTRY_HEADER + 8 * (uint64_t) count + total > size) {
    snprintf (why, whylen, "%s: log entry 0x%" PRIx32 " holds fewer page bytes than it "
              "references", l->name, seq);
    return -1;
  }
  return 0;
}

/* Apply the entries of new-format log L from offset 512, the first one
 * expected to carry sequence number EXPECT, until one is not valid.
 * Returns the number applied (or -1 on out of memory); *LAST is the last
 * sequence number applied; the reason for stopping is in STOP. */
static long
apply_new_log (struct work *w, struct logf *l, uint32_t expect, uint32_t *last,
               char *stop, size_t stoplen)
{
  size_t off = LOG_BASE_SIZE;
  long n = 0;

  while (check_entry (l, off, expect, stop, stoplen) == 0) {
    const unsigned char *e = l->data + off, *page;
    uint32_t size = get_le32 (e + 4), hbins = get_le32 (e + 16), count = get_le32 (e + 20);

    if (replay_grow (w, hbins) == -1)
      return -1;
    page = e + ENTRY_HEADER + 8 * (size_t) count;
    for (uint32_t i = 0; i < count; i++) {
      uint32_t poff = get_le32 (e + ENTRY_HEADER + 8 * i), psize = get_le32 (e + ENTRY_HEADER + 8 * i + 4);
      memcpy (w->img + BASE_BLOCK_SIZE + poff, page, psize);
      page += psize;
      w->res->pages++;
    }
    w->hbins = hbins;
    w->flags = (w->flags & ~1u) | (get_le32 (e + 8) & 1u);
    if (w->res->entries == 0)
      w->res->seq_from = expect;
    w->res->entries++;
    w->res->seq_to = expect;
    *last = expect;
    expect++;
    off += size;
    n++;
  }
  return n;
}

static void
add_stop (struct work *w, const char *why)
{
  size_t used = strlen (w->res->stopped);

  snprintf (w->res->stopped + used, sizeof w->res->stopped - used, "%s%s",
            used ? "; " : "", why);
}

/* Does the chain of valid entries of L (from its own sequence number)
 * reach sequence number S?  *REACH: the first such entry. */
static int
chain_reaches (const struct logf *l, uint32_t s, uint32_t *reach)
{
  size_t off = LOG_BASE_SIZE;
  uint32_t expect = l->seq;
  char why[256];

  while (check_entry (l, off, expect, why, sizeof why) == 0) {
    if (!seq_before (expect, s)) {
      *reach = expect;
      return 1;
    }
    off += get_le32 (l->data + off + 4);
    expect++;
  }
  return 0;
}

/* New format.  PVALID: the primary's base block checksum is correct;
 * SECONDARY: its secondary sequence number.  On success *BB_SRC is the
 * log whose base block copy must replace an invalid primary one (or
 * NULL) and *FINAL the sequence number for the result. */
int
replay_new (struct work *w, struct logf *logs[2], int pvalid, uint32_t secondary,
            const struct logf **bb_src, uint32_t *final)
{
  struct logf *a = NULL, *b = NULL, *first, *second = NULL;
  char why[256];
  uint32_t last = 0;
  long n;

  for (int i = 0; i < 2; i++)
    if (logs[i]->valid && logs[i]->type == FILE_TYPE_LOG_NEW) {
      if (a == NULL)
        a = logs[i];
      else
        b = logs[i];
    }
  /* A first: the log with earlier entries (LOG1 on a tie). */
  if (b && seq_before (b->seq, a->seq)) {
    struct logf *t = a;
    a = b;
    b = t;
  }

  *bb_src = NULL;
  if (!pvalid) {
    /* Only the log with the latest entries is used; its copy of the
     * base block replaces the primary's. */
    first = b ? b : a;
    *bb_src = first;
    w->res->base_block_from_log = 1;
    if (b) {
      snprintf (why, sizeof why, "%s not used: with an invalid base block only the log with "
                "the latest entries is", a->name);
      add_stop (w, why);
    }
  }
  else if (!seq_before (a->seq, secondary)) {
    first = a;
    second = b;
  }
  else if (b && !seq_before (b->seq, secondary)) {
    /* The earlier log starts before the hive's sequence number: Windows
     * skips it whole.  That is right when all its entries are in the
     * primary already; if it also holds entries the primary lacks, the
     * files do not come from one consistent state and we refuse. */
    uint32_t reach;
    if (chain_reaches (a, secondary, &reach))
      return np_error_set (w->err, NP_EXIT_UNSAFE, "%s: inconsistent logs: %s starts at "
                           "sequence 0x%" PRIx32 ", before the hive's 0x%" PRIx32 ", yet holds "
                           "entry 0x%" PRIx32 " it lacks, while %s starts at 0x%" PRIx32,
                           w->name, a->name, a->seq, secondary, reach, b->name, b->seq);
    snprintf (why, sizeof why, "%s skipped: its entries start at 0x%" PRIx32
              ", before the hive's 0x%" PRIx32 ", and are already in it", a->name, a->seq,
              secondary);
    add_stop (w, why);
    first = b;
  }
  else {
    if (b)
      return np_error_set (w->err, NP_EXIT_UNSAFE, "%s: %s and %s start at sequence 0x%" PRIx32
                           " and 0x%" PRIx32 ", before the hive's 0x%" PRIx32
                           ": no log holds entries it lacks", w->name, a->name, b->name,
                           a->seq, b->seq, secondary);
    return np_error_set (w->err, NP_EXIT_UNSAFE, "%s: %s starts at sequence 0x%" PRIx32
                         ", before the hive's 0x%" PRIx32 ", and the other log is %s", w->name,
                         a->name, a->seq, secondary,
                         logs[0] == a ? logs[1]->state : logs[0]->state);
  }

  n = apply_new_log (w, first, first->seq, &last, why, sizeof why);
  if (n < 0)
    return -1;
  if (n == 0) {
    const struct logf *other = first == logs[0] ? logs[1] : logs[0];
    return np_error_set (w->err, NP_EXIT_UNSAFE, "%s: %s has no valid entries for sequence 0x%"
                         PRIx32 " (%s); %s", w->name, first->name, first->seq, why,
                         other->state);
  }
  replay_note_used (w, first);
  add_stop (w, why);
  if (second) {
    /* Recovery resumes in the other log when it starts at N + 1. */
    if (second->seq == last + 1) {
      n = apply_new_log (w, second, last + 1, &last, why, sizeof why);
      if (n < 0)
        return -1;
      if (n > 0)
        replay_note_used (w, second);
      add_stop (w, why);
    }
    else {
      snprintf (why, sizeof why, "%s not used: it starts at sequence 0x%" PRIx32 ", not 0x%"
                PRIx32, second->name, second->seq, last + 1);
      add_stop (w, why);
    }
  }
  *final = last;
  return 0;
}
