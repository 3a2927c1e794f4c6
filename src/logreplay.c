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
 *
 * The files: logreplay.c (this one: Marvin32, hive bins, a log's base
 * block, the driver that picks the format and writes the clean base
 * block, the report line), logreplay_new.c (new-format log entries and
 * which logs in which order), logreplay_old.c (the old format: dirty
 * vector and pages, one transaction), logreplay_files.c (the files on
 * the host, and what the logs must hold after the write);
 * include/logreplay-internal.h is what they share.
 */
#include "logreplay-internal.h"

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

/* ---- the work ----------------------------------------------------- */

/* Make the image at least 4096 + HBINS bytes, zero-filling. */
int
replay_grow (struct work *w, uint32_t hbins)
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

void
replay_note_used (struct work *w, const struct logf *l)
{
  size_t used = strlen (w->res->from);

  if (w->res->logs_used == 0)
    w->res->first_log = l->index;
  w->res->logs_used |= 1u << (l->index - 1);
  snprintf (w->res->from + used, sizeof w->res->from - used, "%s%s",
            used ? " then " : "", l->name);
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
    replay_note_used (&w, use);
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
  if (replay_grow (&w, w.hbins) == -1)
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
