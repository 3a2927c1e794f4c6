/* netvsc-patch: transaction-log replay for a dirty hive.
 *
 * Source of every rule below: the public "Windows registry file format
 * specification" by Maxim Suhanov (github.com/msuhanov/regf, document
 * "Windows registry file format specification.md", 2015-2018 revision),
 * sections "Base block", "Format of transaction log files" (old format:
 * base block, dirty vector, dirty pages; new format: base block, log
 * entries and their notes 1-11), "Dirty state of a hive", "Multiple
 * transaction log files" and "Sector size and clustering factor", and
 * its companion note "Missing log entries for a dirty primary file"
 * (partial reconciliation).  Where the specification leaves a choice
 * open, the behaviour of two independent readers was looked at (not
 * copied): yarp (RegistryFile.py: apply_new_log_files, LogEntry,
 * save_recovered_hive) and regipy (recovery.py).  Marvin32 follows its
 * public description (Microsoft's Marvin hash as published in the .NET
 * runtime, Marvin.cs): two 32-bit state words seeded from the low and
 * high halves of a 64-bit seed, one mixing round per little-endian
 * 32-bit word, the tail padded with a 0x80 byte, two final rounds.
 *
 * What is implemented, in the specification's terms:
 *
 *  - A hive is dirty when its base block checksum is wrong or its
 *    primary and secondary sequence numbers differ; a clean hive is left
 *    alone (its logs are ignored, as Windows ignores them).
 *  - A log is usable when its 512-byte base block copy has the "regf"
 *    signature, a correct checksum, equal sequence numbers and a log file
 *    type (1 or 2: old format, 6: new format).  Clustering factor: 512
 *    bytes are always assumed (Windows 8 and later).
 *  - New format.  Log entries start at offset 512, each at a multiple of
 *    512 bytes.  An entry is applied when it has the "HvLE" signature, a
 *    size that is a non-zero multiple of 512 and fits in the file, a
 *    correct Hash-1 (Marvin32 of bytes 40..size) and Hash-2 (Marvin32 of
 *    bytes 0..32), a hive bins data size that is a non-zero multiple of
 *    4096, at least one dirty page whose references fit in the entry and
 *    in the hive bins data, and the expected sequence number.  The first
 *    invalid entry stops the log (notes 7 and 8).  The hive is grown (or
 *    shrunk) to the entry's hive bins data size (note 9) and the base
 *    block's flag 0x1 follows the entry's (note 11).
 *  - Which logs, in which order ("Multiple transaction log files", new
 *    format).  With a valid primary base block: both logs are used, the
 *    one with earlier entries (smaller base block sequence number, with
 *    wrap-around) first; a log whose sequence number is below the
 *    primary's secondary sequence number holds only entries already in
 *    the primary and is skipped; the first entry must carry the log's
 *    own sequence number (which may be above the primary's secondary
 *    one: partial reconciliation wrote those entries to the primary
 *    without updating its base block); the other log is then continued
 *    with when it starts at the next sequence number.  With an invalid
 *    primary base block: only the log with the latest entries is used and
 *    the base block is rebuilt from its copy (notes 5 and 6).
 *  - Old format (Windows NT to 7 / Server 2008 R2: FILE.LOG1 and
 *    FILE.LOG2, or on XP / Server 2003 the single FILE.LOG): the log is
 *    applicable when its base block's last written timestamp equals the
 *    primary's (or, with an invalid primary base block, the first hive
 *    bin's); LOG1 is tried first, then LOG2, then LOG.  The dirty vector
 *    ("DIRT" at offset 512, one bit per 512-byte page of the log's hive
 *    bins data size, least significant bit first) selects the pages,
 *    stored from the next 512-byte boundary in bitmap order, as many as
 *    bits are set (dirty pages note 1; remnants may follow).  Such a log
 *    is ONE transaction: it is applied whole or not at all.  It is
 *    refused when the file ends before the bitmap does or before its last
 *    page, when the bitmap marks no page, when a bitmap byte is neither
 *    0x00 nor 0xff (Windows marks whole 4096-byte blocks: dirty vector
 *    note 3; a flipped bit would shift every later page), or when, with
 *    all its pages applied, a hive bin is invalid or the cells of a bin
 *    a page went to do not fill it exactly.  The next applicable log is
 *    then tried (Windows too switches logs after an error); if none
 *    passes, nothing is written and the message gives each log's reason.
 *  - The result gets a clean base block: file type 0, both sequence
 *    numbers set to the last sequence number applied (what the
 *    specification says the in-memory base block holds after applying an
 *    entry; for the old format, the primary's primary sequence number),
 *    the new hive bins data size and a recomputed checksum.
 *
 * Deliberate differences from Windows, all in the direction of refusing:
 *  - Windows heals an invalid hive bin with a dummy one (new format, note
 *    10); we refuse to produce such a hive (NP_EXIT_UNSAFE), because
 *    healing drops whatever that bin held.
 *  - When the log with earlier entries starts below the primary's
 *    secondary sequence number, Windows skips it whole; if that log also
 *    holds valid entries at or above that number (the files are not
 *    from one consistent state), we refuse rather than skip them.
 *  - Windows (8 and later) may use an old-format LOG2 whose timestamp
 *    does not match; we require the matching timestamp.
 *  - Windows applies an old-format log up to its first invalid dirty hive
 *    bin and ignores that bin (dirty pages, "recovery stops"); a log cut
 *    short is read as far as it goes.  Either leaves a hive missing part
 *    of one transaction; we refuse instead (yarp too refuses a log with a
 *    missing page).
 *  - A log file that cannot be read for another reason than being absent
 *    is an error, not a skipped log.
 *  - Self-healing of invalid log base blocks is not done: such a log is
 *    unusable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logreplay.h"
#include "regf.h"

#define BASE_BLOCK_SIZE   4096u
#define LOG_BASE_SIZE     512u      /* a log's copy of the base block */
#define HBIN_ALIGN        4096u
#define SECTOR            512u
#define ENTRY_HEADER      40u
/* Far above any real SYSTEM hive; bounds what a log may make us allocate. */
#define MAX_HBINS_SIZE    0x40000000u
#define MAX_FILE_SIZE     ((size_t) 0x80000000u)

#define FILE_TYPE_PRIMARY 0u
#define FILE_TYPE_LOG_OLD 1u
#define FILE_TYPE_LOG_VERYOLD 2u    /* Windows 2000 */
#define FILE_TYPE_LOG_NEW 6u

/* Base block field offsets. */
#define BB_SEQ1      4
#define BB_SEQ2      8
#define BB_TIMESTAMP 12
#define BB_MAJOR     20
#define BB_TYPE      28
#define BB_HBINS     40
#define BB_FLAGS     144
#define BB_CHECKSUM  508

/* ---- Marvin32 ----------------------------------------------------- */

static uint32_t
rotl32 (uint32_t x, unsigned n)
{
  return (x << n) | (x >> (32 - n));
}

static void
marvin_round (uint32_t *lo, uint32_t *hi)
{
  *hi ^= *lo;
  *lo = rotl32 (*lo, 20) + *hi;
  *hi = rotl32 (*hi, 9) ^ *lo;
  *lo = rotl32 (*lo, 27) + *hi;
  *hi = rotl32 (*hi, 19);
}

uint64_t
marvin32 (const unsigned char *data, size_t len, uint64_t seed)
{
  uint32_t lo = (uint32_t) seed, hi = (uint32_t) (seed >> 32), tail = 0x80;

  for (; len >= 4; data += 4, len -= 4) {
    lo += get_le32 (data);
    marvin_round (&lo, &hi);
  }
  /* 0 to 3 bytes left: they go below a 0x80 byte, little-endian. */
  for (size_t i = len; i-- > 0;)
    tail = (tail << 8) | data[i];
  lo += tail;
  marvin_round (&lo, &hi);
  marvin_round (&lo, &hi);
  return (uint64_t) hi << 32 | lo;
}

/* ---- hive bins ---------------------------------------------------- */

int
hive_bins_check (const unsigned char *bins, uint64_t size, uint64_t *bad_at,
                 char *why, size_t whylen)
{
  uint64_t off = 0;

  while (off < size) {
    const unsigned char *h = bins + off;
    uint32_t boff, bsize;

    *bad_at = off;
    if (size - off < 32) {
      snprintf (why, whylen, "truncated hive bin header");
      return -1;
    }
    if (memcmp (h, "hbin", 4) != 0) {
      snprintf (why, whylen, "no \"hbin\" signature");
      return -1;
    }
    boff = get_le32 (h + 4);
    bsize = get_le32 (h + 8);
    if (boff != off) {
      snprintf (why, whylen, "hive bin says it is at offset 0x%" PRIx32, boff);
      return -1;
    }
    if (bsize == 0 || bsize % HBIN_ALIGN != 0) {
      snprintf (why, whylen, "bad hive bin size 0x%" PRIx32, bsize);
      return -1;
    }
    if (bsize > size - off) {
      snprintf (why, whylen, "hive bin of 0x%" PRIx32 " bytes runs past the hive bins data "
                "size 0x%" PRIx64, bsize, size);
      return -1;
    }
    off += bsize;
  }
  return 0;
}

/* ---- sequence numbers --------------------------------------------- */

/* Is A before B, with 32-bit wrap-around?  (yarp's is_starting_log.) */
static int
seq_before (uint32_t a, uint32_t b)
{
  return (int32_t) (a - b) < 0;
}

/* ---- the work ----------------------------------------------------- */

struct logf {
  int index;                   /* 1 or 2 */
  const char *name;
  const unsigned char *data;
  size_t size;
  int present, valid;
  uint32_t type, seq, hbins;
  uint64_t timestamp;
  char state[160];             /* why unusable, or why not (fully) used */
};

struct work {
  const char *name;            /* the primary, for messages */
  unsigned char *img;          /* base block + hive bins data (+ slack) */
  size_t len, cap;
  uint32_t hbins;              /* current hive bins data size */
  uint32_t flags;              /* base block flags */
  struct replay_result *res;
  struct np_error *err;
};

/* Make the image at least 4096 + HBINS bytes, zero-filling. */
static int
grow (struct work *w, uint32_t hbins)
{
  size_t need = (size_t) BASE_BLOCK_SIZE + hbins;

  if (need <= w->len)
    return 0;
  if (need > w->cap) {
    unsigned char *n = realloc (w->img, need);
    if (n == NULL)
      return np_error_set (w->err, NP_EXIT_RUNTIME, "%s: out of memory (hive of %zu bytes)",
                           w->name, need);
    w->img = n;
    w->cap = need;
  }
  memset (w->img + w->len, 0, need - w->len);
  w->len = need;
  return 0;
}

static void
load_log (struct logf *l, int index, const struct replay_input *in)
{
  const unsigned char *b;

  memset (l, 0, sizeof *l);
  l->index = index;
  l->name = in && in->name ? in->name : index == 1 ? "LOG1" : index == 2 ? "LOG2" : "LOG";
  if (in == NULL || in->data == NULL) {
    snprintf (l->state, sizeof l->state, "%s: missing", l->name);
    return;
  }
  l->present = 1;
  l->data = in->data;
  l->size = in->size;
  b = in->data;
  if (in->size == 0) {
    snprintf (l->state, sizeof l->state, "%s: empty", l->name);
    return;
  }
  if (in->size < LOG_BASE_SIZE) {
    snprintf (l->state, sizeof l->state, "%s: too short for a log (%zu bytes)", l->name,
              in->size);
    return;
  }
  if (memcmp (b, "regf", 4) != 0) {
    snprintf (l->state, sizeof l->state, "%s: no base block (no \"regf\" signature)", l->name);
    return;
  }
  if (get_le32 (b + BB_CHECKSUM) != regf_checksum (b)) {
    snprintf (l->state, sizeof l->state, "%s: base block checksum is wrong", l->name);
    return;
  }
  l->type = get_le32 (b + BB_TYPE);
  l->seq = get_le32 (b + BB_SEQ1);
  l->hbins = get_le32 (b + BB_HBINS);
  l->timestamp = get_le64 (b + BB_TIMESTAMP);
  if (l->type != FILE_TYPE_LOG_OLD && l->type != FILE_TYPE_LOG_VERYOLD &&
      l->type != FILE_TYPE_LOG_NEW) {
    snprintf (l->state, sizeof l->state, "%s: file type %" PRIu32 " is not a transaction log",
              l->name, l->type);
    return;
  }
  if (get_le32 (b + BB_MAJOR) != 1) {
    snprintf (l->state, sizeof l->state, "%s: unsupported hive version %" PRIu32, l->name,
              get_le32 (b + BB_MAJOR));
    return;
  }
  /* Old format note 2: valid only when both sequence numbers are equal
   * (otherwise the log itself was being written). */
  if (l->seq != get_le32 (b + BB_SEQ2)) {
    snprintf (l->state, sizeof l->state, "%s: its sequence numbers differ (0x%" PRIx32
              " / 0x%" PRIx32 "): the log was being written", l->name, l->seq,
              get_le32 (b + BB_SEQ2));
    return;
  }
  if (l->hbins == 0 || l->hbins % HBIN_ALIGN != 0) {
    snprintf (l->state, sizeof l->state, "%s: bad hive bins data size 0x%" PRIx32, l->name,
              l->hbins);
    return;
  }
  l->valid = 1;
  snprintf (l->state, sizeof l->state, "%s: %s log, sequence 0x%" PRIx32, l->name,
            l->type == FILE_TYPE_LOG_NEW ? "new-format" : "old-format", l->seq);
}

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

    if (grow (w, hbins) == -1)
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
note_used (struct work *w, const struct logf *l)
{
  size_t used = strlen (w->res->from);

  if (w->res->logs_used == 0)
    w->res->first_log = l->index;
  w->res->logs_used |= 1u << (l->index - 1);
  snprintf (w->res->from + used, sizeof w->res->from - used, "%s%s",
            used ? " then " : "", l->name);
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
static int
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
  note_used (w, first);
  add_stop (w, why);
  if (second) {
    /* Recovery resumes in the other log when it starts at N + 1. */
    if (second->seq == last + 1) {
      n = apply_new_log (w, second, last + 1, &last, why, sizeof why);
      if (n < 0)
        return -1;
      if (n > 0)
        note_used (w, second);
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
static int
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

int
hive_replay_inputs (const struct replay_input *primary,
                    const struct replay_input *const in[REPLAY_NLOGS], unsigned char **out,
                    size_t *out_size, struct replay_result *res, struct np_error *err)
{
  struct work w;
  struct logf l[REPLAY_NLOGS], *logs[REPLAY_NLOGS];
  const struct logf *bb_src = NULL;
  const unsigned char *p = primary->data;
  int pvalid, have_new = 0, have_old = 0, nlogs;
  uint32_t seq1, seq2, final = 0;
  uint64_t bad;
  char why[160];

  memset (res, 0, sizeof *res);
  memset (&w, 0, sizeof w);
  *out = NULL;
  *out_size = 0;
  w.name = primary->name;
  w.res = res;
  w.err = err;

  if (p == NULL || primary->size < BASE_BLOCK_SIZE || memcmp (p, "regf", 4) != 0)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: not a registry hive (no \"regf\" base block)",
                         primary->name);
  pvalid = get_le32 (p + BB_CHECKSUM) == regf_checksum (p);
  seq1 = get_le32 (p + BB_SEQ1);
  seq2 = get_le32 (p + BB_SEQ2);
  if (pvalid) {
    if (get_le32 (p + BB_TYPE) != FILE_TYPE_PRIMARY)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: not a primary hive file (file type %"
                           PRIu32 ")", primary->name, get_le32 (p + BB_TYPE));
    if (seq1 == seq2)
      return 1;
    res->size_before = get_le32 (p + BB_HBINS);
  }
  else
    res->size_before = (primary->size - BASE_BLOCK_SIZE) / HBIN_ALIGN * HBIN_ALIGN;

  /* LOG1 and LOG2 always take part in messages ("missing"); the single
   * .LOG only when the caller looked for one. */
  nlogs = in[REPLAY_LOG] && in[REPLAY_LOG]->name ? 3 : 2;
  for (int i = 0; i < REPLAY_NLOGS; i++) {
    load_log (&l[i], i + 1, in[i]);
    logs[i] = &l[i];
  }
  /* New-format entries are read from LOG1 and LOG2 only: Windows 8.1
   * and later never write them to the single .LOG. */
  if (l[REPLAY_LOG].valid && l[REPLAY_LOG].type == FILE_TYPE_LOG_NEW) {
    l[REPLAY_LOG].valid = 0;
    snprintf (l[REPLAY_LOG].state, sizeof l[REPLAY_LOG].state, "%s: a new-format log under "
              "the single-log name, not read", l[REPLAY_LOG].name);
  }
  for (int i = 0; i < nlogs; i++) {
    have_new |= l[i].valid && l[i].type == FILE_TYPE_LOG_NEW;
    have_old |= l[i].valid && l[i].type != FILE_TYPE_LOG_NEW;
  }
  if (!have_new && !have_old)
    return np_error_set (err, NP_EXIT_UNSAFE, "%s: no usable transaction log: %s; %s%s%s",
                         primary->name, l[0].state, l[1].state, nlogs > 2 ? "; " : "",
                         nlogs > 2 ? l[2].state : "");

  w.img = malloc (primary->size);
  if (w.img == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  memcpy (w.img, p, primary->size);
  w.len = w.cap = primary->size;
  w.hbins = (uint32_t) res->size_before;
  w.flags = get_le32 (p + BB_FLAGS);

  if (have_new) {
    res->log_format = REPLAY_FORMAT_NEW;
    if (replay_new (&w, logs, pvalid, seq2, &bb_src, &final) == -1)
      goto failed;
  }
  else {
    const struct logf *use;

    res->log_format = REPLAY_FORMAT_OLD;
    if (replay_old (&w, logs, nlogs, p, primary->size, pvalid, &use) == -1)
      goto failed;
    note_used (&w, use);
    if (!pvalid) {
      bb_src = use;
      res->base_block_from_log = 1;
    }
    final = pvalid ? seq1 : use->seq;
  }

  /* The clean base block. */
  if (bb_src) {
    memset (w.img, 0, BASE_BLOCK_SIZE);
    memcpy (w.img, bb_src->data, LOG_BASE_SIZE);
    if (res->log_format == REPLAY_FORMAT_OLD)
      w.flags = get_le32 (bb_src->data + BB_FLAGS);
  }
  if (grow (&w, w.hbins) == -1)
    goto failed;
  put_le32 (w.img + BB_SEQ1, final);
  put_le32 (w.img + BB_SEQ2, final);
  put_le32 (w.img + BB_TYPE, FILE_TYPE_PRIMARY);
  put_le32 (w.img + BB_HBINS, w.hbins);
  if (res->log_format == REPLAY_FORMAT_NEW || bb_src)
    put_le32 (w.img + BB_FLAGS, w.flags);
  put_le32 (w.img + BB_CHECKSUM, regf_checksum (w.img));
  res->seq_final = final;
  res->size_after = w.hbins;

  if (hive_bins_check (w.img + BASE_BLOCK_SIZE, w.hbins, &bad, why, sizeof why) == -1) {
    np_error_set (err, NP_EXIT_UNSAFE, "%s: replaying %s would leave a damaged hive: hive bin "
                  "at offset 0x%" PRIx64 ": %s (replay stopped: %s)", primary->name, res->from,
                  bad, why, res->stopped[0] ? res->stopped : "at the end of the log");
    goto failed;
  }
  *out = w.img;
  *out_size = (size_t) BASE_BLOCK_SIZE + w.hbins;
  return 0;

 failed:
  free (w.img);
  return -1;
}

int
hive_replay_memory (const struct replay_input *primary, const struct replay_input *log1,
                    const struct replay_input *log2, unsigned char **out, size_t *out_size,
                    struct replay_result *res, struct np_error *err)
{
  const struct replay_input *const in[REPLAY_NLOGS] = { log1, log2, NULL };

  return hive_replay_inputs (primary, in, out, out_size, res, err);
}

/* ---- files -------------------------------------------------------- */

/* Read PATH whole.  Returns 0, 1 if it does not exist, -1 on error. */
static int
read_file (const char *path, unsigned char **data, size_t *size, struct np_error *err)
{
  struct stat st;
  size_t got = 0;
  int fd;

  *data = NULL;
  *size = 0;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    if (errno == ENOENT)
      return 1;
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s", path, strerror (errno));
  }
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode)) {
    close (fd);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: not a regular file", path);
  }
  if ((uint64_t) st.st_size > MAX_FILE_SIZE) {
    close (fd);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: too large (%jd bytes)", path,
                         (intmax_t) st.st_size);
  }
  *data = malloc (st.st_size ? (size_t) st.st_size : 1);
  if (*data == NULL) {
    close (fd);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  while (got < (size_t) st.st_size) {
    ssize_t r = pread (fd, *data + got, (size_t) st.st_size - got, (off_t) got);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0) {
      int e = r == -1 ? errno : EIO;
      close (fd);
      free (*data);
      *data = NULL;
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read: %s", path, strerror (e));
    }
    got += (size_t) r;
  }
  close (fd);
  *size = got;
  return 0;
}

static int
write_file (const char *path, const unsigned char *data, size_t size, struct np_error *err)
{
  size_t done = 0;
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if (fd == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create: %s", path, strerror (errno));
  while (done < size) {
    ssize_t r = write (fd, data + done, size - done);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1)
      goto io_error;
    done += (size_t) r;
  }
  if (fsync (fd) == -1)
    goto io_error;
  if (close (fd) == -1) {
    fd = -1;
    goto io_error;
  }
  return 0;

 io_error:
  {
    int e = errno;
    if (fd != -1)
      close (fd);
    unlink (path);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write: %s", path, strerror (e));
  }
}

static const char *
base_name (const char *path)
{
  const char *s = strrchr (path, '/');
  return s ? s + 1 : path;
}

int
hive_replay_files (const char *primary, const char *const logs[REPLAY_NLOGS], const char *out,
                   struct replay_result *res, struct np_error *err)
{
  struct replay_input in[1 + REPLAY_NLOGS];
  const struct replay_input *lp[REPLAY_NLOGS];
  unsigned char *result = NULL;
  size_t result_size;
  int r = -1;

  memset (res, 0, sizeof *res);
  memset (in, 0, sizeof in);
  in[0].name = primary;
  for (int i = 0; i <= REPLAY_NLOGS; i++) {
    const char *path = i ? logs[i - 1] : primary;
    int got;
    if (i)
      lp[i - 1] = path ? &in[i] : NULL;
    if (path == NULL)
      continue;
    if (i)
      in[i].name = base_name (path);
    got = read_file (path, (unsigned char **) &in[i].data, &in[i].size, err);
    if (got == -1)
      goto done;
    if (got == 1 && i == 0) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s", primary, strerror (ENOENT));
      goto done;
    }
  }
  r = hive_replay_inputs (&in[0], lp, &result, &result_size, res, err);
  if (r == 0 && write_file (out, result, result_size, err) == -1)
    r = -1;

 done:
  free (result);
  for (int i = 0; i <= REPLAY_NLOGS; i++)
    free ((void *) in[i].data);
  return r;
}

int
hive_replay_logs (const char *primary, const char *log1, const char *log2, const char *out,
                  struct replay_result *res, struct np_error *err)
{
  const char *const logs[REPLAY_NLOGS] = { log1, log2, NULL };

  return hive_replay_files (primary, logs, out, res, err);
}

static void
human_size (uint64_t bytes, char *buf, size_t len)
{
  if (bytes >= 10u << 20)
    snprintf (buf, len, "%.1f MB", bytes / 1048576.0);
  else
    snprintf (buf, len, "%" PRIu64 " KB", bytes / 1024);
}

void
replay_describe (const struct replay_result *res, char *buf, size_t len)
{
  char before[32], after[32];

  human_size (res->size_before, before, sizeof before);
  human_size (res->size_after, after, sizeof after);
  size_t used;

  if (res->log_format == REPLAY_FORMAT_OLD)
    snprintf (buf, len, "replayed the old-format log %s whole (sequence 0x%" PRIx32 ", %u dirty "
              "pages of 512 bytes); hive bins data %s -> %s", res->from, res->seq_to,
              res->pages, before, after);
  else
    snprintf (buf, len, "replayed %u log entr%s (sequence 0x%" PRIx32 "..0x%" PRIx32
              ", %u pages) from %s; hive bins data %s -> %s", res->entries,
              res->entries == 1 ? "y" : "ies", res->seq_from, res->seq_to, res->pages,
              res->from, before, after);
  used = strlen (buf);
  if (res->base_block_from_log && used < len)
    snprintf (buf + used, len - used, "; its base block was invalid (wrong checksum) and was "
              "rebuilt from %s's copy%s", res->from,
              res->log_format == REPLAY_FORMAT_OLD ? ", the log matched by the first hive bin's "
              "timestamp" : "");
}

/* ---- the logs after the write --------------------------------------
 *
 * What SYSTEM.LOG1 and SYSTEM.LOG2 must hold once the recovered and
 * patched hive is in place, and why: EMPTY FILES.
 *
 * netvsc-patch replays the logs into a new primary file, patches it
 * with hivex and commits it.  That file is clean: hivex's commit sets
 * both sequence numbers to the recovered hive's sequence number plus
 * one and recomputes the checksum.  By the format's rules ("Dirty state
 * of a hive"), Windows replays logs only into a dirty hive: it will
 * boot on the patched hive and ignore whatever the logs hold, so the
 * patch is not undone, and the entries we replayed are not replayed a
 * second time.
 *
 * Left as they were, though, the logs would keep entries that could be
 * replayed LATER: when Windows next leaves the hive dirty (a crash or a
 * power cut before it reconciles), it recovers from both logs, starting
 * with the one whose base block sequence number is earlier as long as
 * that number is not below the hive's secondary sequence number, and
 * continuing into the other log when it starts where the first ended.
 * Every entry we applied is below the new sequence number and would be
 * skipped, but entries we did NOT apply need not be: those after an
 * entry that stopped the replay (bad hash, gap, truncation), or a whole
 * log we could not use.  Their sequence numbers can equal or exceed the
 * patched hive's, so such an entry could be picked up as "newer" and
 * written over the patched hive, or make Windows choose the wrong log
 * first and stop recovery short of the entries Windows itself wrote
 * after our change.
 *
 * An empty log has no base block, so it is never chosen, and no entries,
 * so nothing in it can be replayed; the other log, the one Windows
 * writes next, is used alone.  Empty SYSTEM.LOG1/SYSTEM.LOG2 files are
 * also a state Windows itself produces and accepts (hives loaded without
 * logs get new empty ones; installation images ship them empty): it
 * grows the file and writes a fresh base block with the first new log
 * entry.  A log rewritten with a valid base block and no entries was
 * considered and rejected: being valid, it can be chosen as the log
 * "with earlier entries" and, having none, end recovery before the log
 * that holds Windows' newer entries is read.
 *
 * Order matters: the logs are emptied only AFTER the patched primary is
 * safely in place.  If the run stops in between, the primary is clean
 * and the old logs are ignored at boot; emptying them first and then
 * failing to write the primary would leave a dirty hive with its newest
 * data gone.  And they are emptied only when netvsc-patch replayed them:
 * a hive that was clean to begin with has logs Windows already treats as
 * spent. */
int
hive_log_reset (const char *primary_after, const char *log_out, struct np_error *err)
{
  unsigned char bb[BASE_BLOCK_SIZE];
  ssize_t r;
  int fd;

  fd = open (primary_after, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s", primary_after,
                         strerror (errno));
  r = pread (fd, bb, sizeof bb, 0);
  close (fd);
  if (r != (ssize_t) sizeof bb || memcmp (bb, "regf", 4) != 0 ||
      get_le32 (bb + BB_TYPE) != FILE_TYPE_PRIMARY)
    return np_error_set (err, NP_EXIT_UNSAFE, "%s: not a primary hive file: its transaction "
                         "logs are left alone", primary_after);
  if (get_le32 (bb + BB_CHECKSUM) != regf_checksum (bb) || get_le32 (bb + BB_SEQ1) != get_le32 (bb + BB_SEQ2))
    return np_error_set (err, NP_EXIT_UNSAFE, "%s: the hive is dirty: emptying its transaction "
                         "logs would lose its newest data", primary_after);
  return write_file (log_out, bb, 0, err);
}
