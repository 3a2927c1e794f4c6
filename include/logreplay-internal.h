/* netvsc-patch: transaction-log replay's private header (see
 * logreplay.c): the format's constants, the logs and the work in
 * progress, and what its files share.  Nothing outside src/logreplay*.c
 * includes it.  Sections name the file that defines each item. */
#ifndef NETVSC_PATCH_LOGREPLAY_INTERNAL_H
#define NETVSC_PATCH_LOGREPLAY_INTERNAL_H

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

/* A transaction log, as logreplay.c's load_log found it. */
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

/* The hive being recovered, and the result being filled in. */
struct work {
  const char *name;            /* the primary, for messages */
  unsigned char *img;          /* base block + hive bins data (+ slack) */
  size_t len, cap;
  uint32_t hbins;              /* current hive bins data size */
  uint32_t flags;              /* base block flags */
  struct replay_result *res;
  struct np_error *err;
};

/* ---- logreplay.c: the shared part and the driver ------------------ */

/* Make the image at least 4096 + HBINS bytes, zero-filling. */
int replay_grow (struct work *w, uint32_t hbins);
/* Record that entries of L were applied (res->logs_used, ->from). */
void replay_note_used (struct work *w, const struct logf *l);

/* ---- logreplay_new.c: the new format (HvLE log entries) ----------- */

/* New format.  PVALID: the primary's base block checksum is correct;
 * SECONDARY: its secondary sequence number.  On success *BB_SRC is the
 * log whose base block copy must replace an invalid primary one (or
 * NULL) and *FINAL the sequence number for the result. */
int replay_new (struct work *w, struct logf *logs[2], int pvalid, uint32_t secondary,
                const struct logf **bb_src, uint32_t *final);

/* ---- logreplay_old.c: the old format (DIRT, whole or nothing) ----- */

/* Old format: which log, then all of it or nothing; on success *USE is
 * that log (see logreplay_old.c). */
int replay_old (struct work *w, struct logf **logs, int nlogs, const unsigned char *p,
                size_t psize, int pvalid, const struct logf **use);

/* ---- logreplay_files.c: nothing shared (its functions are
 * logreplay.h's: hive_replay_files, hive_replay_logs, hive_log_reset) */

#endif
