/* netvsc-patch: recovering a dirty hive from its transaction logs
 * (FILE.LOG1 / FILE.LOG2, or the single FILE.LOG of Windows XP and
 * Server 2003), offline, the way Windows does at
 * boot, and leaving the logs in a state Windows will not replay.
 *
 * Windows writes registry changes to the logs first and to the primary
 * file later, so a hive copied out of a stopped VM is often "dirty":
 * its base block's primary and secondary sequence numbers differ, or
 * its checksum is wrong, and the newest data is only in the logs.
 * hivex never reads the logs and its commit marks the hive clean, after
 * which Windows ignores them: their content would be lost.  This module
 * replays them into a new, clean primary file first.
 *
 * Both log formats are read: the new one (Windows 8.1 / Server 2012 R2
 * and later: "HvLE" log entries protected by Marvin32 hashes) and the
 * old one (file type 1 or 2: a "DIRT" bitmap and 512-byte pages, one
 * transaction applied whole or not at all).  The
 * rules followed, with their sources, are in the comments of
 * src/logreplay.c.  Files are read whole into memory; nothing is
 * written anywhere but OUT. */
#ifndef NETVSC_PATCH_LOGREPLAY_H
#define NETVSC_PATCH_LOGREPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

enum replay_log_format {
  REPLAY_FORMAT_OLD = 1,       /* file type 1 or 2: dirty vector + pages */
  REPLAY_FORMAT_NEW = 2,       /* file type 6: HvLE log entries */
};

/* Bits of replay_result.logs_used. */
#define REPLAY_USED_LOG1 1u
#define REPLAY_USED_LOG2 2u
#define REPLAY_USED_LOG  4u         /* the single FILE.LOG (old format) */

/* The logs of a hive, by role: indexes of the arrays below. */
enum { REPLAY_LOG1, REPLAY_LOG2, REPLAY_LOG, REPLAY_NLOGS };

struct replay_result {
  int log_format;              /* enum replay_log_format */
  unsigned entries;            /* log entries applied (old format: 1, the dirty vector) */
  unsigned pages;              /* dirty page references written (old format: 512-byte pages) */
  unsigned logs_used;          /* REPLAY_USED_*: logs with at least one
                                  entry applied */
  int first_log;               /* 1, 2 or 3 (FILE.LOG): the log replayed first */
  char from[96];               /* "SYSTEM.LOG1 then SYSTEM.LOG2" */
  uint32_t seq_from, seq_to;   /* first and last sequence number applied (old
                                  format: the log's sequence number, twice) */
  uint32_t seq_final;          /* both sequence numbers of the written base block */
  uint64_t size_before;        /* hive bins data size of the dirty primary */
  uint64_t size_after;         /* ... of the recovered hive */
  int base_block_from_log;     /* the primary's base block was invalid and was
                                  rebuilt from a log's copy */
  char stopped[512];           /* why replay stopped, e.g. "SYSTEM.LOG2: no log
                                  entry at offset 0x297000 (end of entries)" */
};

/* Recover the hive PRIMARY with LOG1 and LOG2 (either may be NULL or
 * name a file that does not exist) into the new file OUT.
 *
 * Returns 1 if PRIMARY is clean (nothing done, OUT not written); 0 if
 * recovered into OUT (a clean base block: both sequence numbers equal
 * to the last one applied, hive bins data size updated, checksum
 * correct; every hive bin checked); -1 with *ERR otherwise:
 * NP_EXIT_UNSAFE when the logs are missing, invalid, stale or hold no
 * entry that can be applied, when an old-format log breaks any of its
 * rules (cut short, damaged bitmap, a page that leaves a hive bin
 * invalid: such a log is never applied in part), or when the result
 * would be damaged (the message says what was found, naming the log
 * files by their base names and the rule broken), NP_EXIT_RUNTIME on I/O
 * errors or when PRIMARY is not a registry hive at all.  OUT is created
 * with mode 0600 and flushed; on failure it is removed.  Nothing else is
 * written. */
int hive_replay_logs (const char *primary, const char *log1, const char *log2,
                      const char *out, struct replay_result *res, struct np_error *err);

/* The same with LOGS[REPLAY_LOG1], [REPLAY_LOG2] and [REPLAY_LOG] (the
 * single FILE.LOG; any may be NULL).  The .LOG is used only as an
 * old-format log; when it is given, messages list it with the others. */
int hive_replay_files (const char *primary, const char *const logs[REPLAY_NLOGS],
                       const char *out, struct replay_result *res, struct np_error *err);

/* The same on files already in memory (for tests and fuzzing): DATA
 * NULL means the file does not exist; NAME is used in messages.  On
 * success *OUT (malloc'd, *OUT_SIZE bytes) is the recovered hive. */
struct replay_input {
  const char *name;
  const unsigned char *data;
  size_t size;
};
int hive_replay_memory (const struct replay_input *primary, const struct replay_input *log1,
                        const struct replay_input *log2, unsigned char **out, size_t *out_size,
                        struct replay_result *res, struct np_error *err);
/* ... and with the three logs (IN[i] NULL: not looked for). */
int hive_replay_inputs (const struct replay_input *primary,
                        const struct replay_input *const in[REPLAY_NLOGS], unsigned char **out,
                        size_t *out_size, struct replay_result *res, struct np_error *err);

/* One line for reports, e.g. "replayed 24 log entries (sequence
 * 0x83b..0x852, 315 pages) from SYSTEM.LOG1 then SYSTEM.LOG2; hive bins
 * 12.4 MB -> 12.6 MB". */
void replay_describe (const struct replay_result *res, char *buf, size_t len);

/* Produce, in the file LOG_OUT, what a transaction log must hold once
 * PRIMARY_AFTER (the recovered and patched hive, whose base block is
 * clean) has replaced the dirty primary: an empty file.  Refuses
 * (NP_EXIT_UNSAFE) when PRIMARY_AFTER is not a clean primary hive, as
 * emptying the logs of a dirty hive would destroy its only copy of the
 * newest data.  See the comment above its definition for the reasoning
 * (written to be copied into the man page). */
int hive_log_reset (const char *primary_after, const char *log_out, struct np_error *err);

/* Marvin32 (64-bit result: high word = second state word), as used by
 * the new log format with seed REPLAY_MARVIN_SEED. */
#define REPLAY_MARVIN_SEED 0x82EF4D887A4E55C5ull
uint64_t marvin32 (const unsigned char *data, size_t len, uint64_t seed);

/* Check the chain of hive bins in hive bins data BINS of SIZE bytes:
 * each bin has the "hbin" signature, its own offset, a size that is a
 * non-zero multiple of 4096, and the bins end exactly at SIZE.  Returns
 * 0, or -1 with the offset of the first bad bin in *BAD_AT and a reason
 * in WHY. */
int hive_bins_check (const unsigned char *bins, uint64_t size, uint64_t *bad_at,
                     char *why, size_t whylen);

#endif
