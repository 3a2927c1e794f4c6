/* Unit tests: transaction-log replay (src/logreplay.c).
 *
 * The dirty hives are made here: a fixture hive is changed in three
 * steps with hivex (each step a commit, like one Windows flush), and
 * tests/mklog.c turns the original and the steps into a dirty primary
 * plus logs, intact or broken in one precise way.  Because each step is
 * one log entry, a replay that stops after K entries must give the K-th
 * step's hive bins data byte for byte, which is what most cases check.
 *
 * The real dirty SYSTEM hive from ../shared/real-hives (Windows 8.1/10
 * era, sequence numbers 0x656/0x655, new-format logs) is recovered too
 * where that directory exists, and the result read with hivex and with
 * libregf's regfexport. */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hivex.h>

#include "unit.h"
#include "hive.h"
#include "hostfile.h"
#include "logfind.h"
#include "logreplay.h"

/* The log writer, as a library (its main() is left out). */
#define MKLOG_LIBRARY
#include "../mklog.c"

#define NET_CLASS "ControlSet001\\Control\\Class\\{4d36e972-e325-11ce-bfc1-08002be10318}"

/* ---- helpers ------------------------------------------------------ */

struct scene {
  char dir[64];
  char orig[128], step[3][128];
  char primary[128], log1[128], log2[128], out[128];
};

static uint32_t
get32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void
set_dword (hive_h *h, const char *path, const char *name, uint32_t v)
{
  struct hive hv = { h, "step", NULL };
  hive_node_h node = hive_lookup (&hv, hivex_root (h), path);

  ck_assert_msg (node != 0, "%s not found", path);
  ck_assert_int_eq (hive_set_dword (&hv, node, name, v), 0);
}

/* Step 1: the netvsc values on adapter 0001.  Step 2: a new key with a
 * 40000-byte value (the hive grows by whole bins).  Step 3: a string
 * value on Select and a changed DWORD. */
static void
make_step (const char *from, const char *to, int step)
{
  hive_h *h = hivex_open (from, HIVEX_OPEN_WRITE);

  ck_assert_msg (h != NULL, "hivex_open %s", from);
  if (step == 1) {
    set_dword (h, NET_CLASS "\\0001", "ReceiveBufferSize", 0x800);
    set_dword (h, NET_CLASS "\\0001", "SendBufferSize", 0x800);
  }
  else if (step == 2) {
    static char blob[40000];
    hive_node_h n = hivex_node_add_child (h, hivex_root (h), "Step2");
    hive_set_value v = { .key = (char *) "Blob", .t = hive_t_REG_BINARY,
                         .len = sizeof blob, .value = blob };
    memset (blob, 0xab, sizeof blob);
    ck_assert (n != 0);
    ck_assert_int_eq (hivex_node_set_value (h, n, &v, 0), 0);
  }
  else {
    static char utf16[] = { 't', 0, 'h', 0, 'r', 0, 'e', 0, 'e', 0, 0, 0 };
    struct hive hv = { h, "step", NULL };
    hive_node_h sel = hive_lookup (&hv, hivex_root (h), "Select");
    hive_set_value v = { .key = (char *) "Extra", .t = hive_t_REG_SZ,
                         .len = sizeof utf16, .value = utf16 };
    ck_assert (sel != 0);
    ck_assert_int_eq (hivex_node_set_value (h, sel, &v, 0), 0);
    set_dword (h, "Select", "LastKnownGood", 7);
  }
  ck_assert_int_eq (hivex_commit (h, to, 0), 0);
  hivex_close (h);
}

static void
scene_setup (struct scene *s)
{
  struct np_error err;

  snprintf (s->dir, sizeof s->dir, "/tmp/netvsc-replay.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (s->dir));
  snprintf (s->orig, sizeof s->orig, "%s/orig", s->dir);
  for (int i = 0; i < 3; i++)
    snprintf (s->step[i], sizeof s->step[i], "%s/step%d", s->dir, i + 1);
  snprintf (s->primary, sizeof s->primary, "%s/SYSTEM", s->dir);
  snprintf (s->log1, sizeof s->log1, "%s/SYSTEM.LOG1", s->dir);
  snprintf (s->log2, sizeof s->log2, "%s/SYSTEM.LOG2", s->dir);
  snprintf (s->out, sizeof s->out, "%s/recovered", s->dir);
  ck_assert_msg (hostfile_copy (fixture_hive ("ws2019"), s->orig, &err) == 0, "%s", err.msg);
  make_step (s->orig, s->step[0], 1);
  make_step (s->step[0], s->step[1], 2);
  make_step (s->step[1], s->step[2], 3);
}

static int
rm_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb; (void) flag; (void) ftw;
  return remove (path);
}

static void
scene_free (struct scene *s)
{
  nftw (s->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Make the dirty primary and logs from the three steps. */
static void
scene_logs (struct scene *s, const struct mklog_opts *o, int with_log2)
{
  const char *mods[3] = { s->step[0], s->step[1], s->step[2] };
  char err[512];

  unlink (s->log1);
  unlink (s->log2);
  ck_assert_msg (mklog_make (s->orig, mods, 3, s->primary, s->log1, with_log2 ? s->log2 : NULL,
                             o, err, sizeof err) == 0, "mklog: %s", err);
}

static int
replay (struct scene *s, struct replay_result *res, struct np_error *err)
{
  unlink (s->out);
  return hive_replay_logs (s->primary, s->log1, s->log2, s->out, res, err);
}

/* The recovered hive's hive bins data is exactly that of WANT, and its
 * base block is clean and says so. */
static void
assert_recovered_as (const struct scene *s, const char *want, uint32_t seq)
{
  size_t gs, ws;
  unsigned char *got = file_bytes (s->out, &gs), *w = file_bytes (want, &ws);
  uint32_t hbins = get32 (w + 40);
  struct base_block bb;
  struct np_error err;
  struct hive hv;
  size_t keys, values;

  ck_assert_uint_eq (gs, 4096 + (size_t) hbins);
  ck_assert_uint_eq (get32 (got + 40), hbins);
  ck_assert_msg (memcmp (got + 4096, w + 4096, hbins) == 0, "hive bins data differ from %s", want);
  ck_assert_uint_eq (get32 (got + 4), seq);
  ck_assert_uint_eq (get32 (got + 8), seq);
  ck_assert_uint_eq (get32 (got + 28), 0);
  ck_assert_msg (hive_read_base_block (s->out, &bb, &err) == 0, "%s", err.msg);
  ck_assert_msg (!base_block_is_dirty (&bb), "recovered hive is dirty");
  ck_assert_msg (hive_open (&hv, s->out, 0, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (hivex_visit_count (hv.h, &keys, &values), 0);
  hive_close (&hv);
  free (got);
  free (w);
}

static uint32_t
secondary_of (const char *path)
{
  size_t n;
  unsigned char *b = file_bytes (path, &n);
  uint32_t v = get32 (b + 8);

  free (b);
  return v;
}

#define OPTS(...) (struct mklog_opts) { __VA_ARGS__ }

/* ---- Marvin32 ----------------------------------------------------- */

/* Published test vectors of Marvin32 (SymCrypt's self-test and the .NET
 * runtime's tests), 64-bit results. */
START_TEST (test_marvin32_vectors)
{
  static const struct {
    uint64_t seed;
    const char *data;
    size_t len;
    uint64_t want;
  } v[] = {
    { 0xd53cd9cecd0893b7ull, "abc", 3, 0x22c74339492769bfull },
    { 0xddddeeeeffff000ull, "abcdefghijklmnopqrstuvwxyz", 26, 0xa128eb7e7260aca2ull },
    { 0x004fb61a001bdbccull, "", 0, 0x30ed35c100cd3c7dull },
    { 0x004fb61a001bdbccull, "\xaf", 1, 0x48e73fc77d75ddc1ull },
    { 0x004fb61a001bdbccull, "\xe7\x0f", 2, 0xb5f6e1fc485dbff8ull },
    { 0x004fb61a001bdbccull, "\x37\xf4\x95", 3, 0xf0b07c789b8cf7e8ull },
    { 0x004fb61a001bdbccull, "\x86\x42\xdc\x59", 4, 0x7008f2e87e9cf556ull },
    { 0x004fb61a001bdbccull, "\x15\x3f\xb7\x98\x26", 5, 0xe6c08c6da2afa997ull },
    { 0x004fb61a001bdbccull, "\x09\x32\xe6\x24\x6c\x47", 6, 0x6f04bf1a5ea24060ull },
    { 0x004fb61a001bdbccull, "\xab\x42\x7e\xa8\xd1\x0f\xc7", 7, 0xe11847e4f0678c41ull },
    { 0x804fb61a801bdbccull, "\xff\x00\xff\x00\xff\x00\xff", 7, 0xfdfd187b1d3ce784ull },
  };

  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    ck_assert_msg (marvin32 ((const unsigned char *) v[i].data, v[i].len, v[i].seed) == v[i].want,
                   "vector %zu", i);
}
END_TEST

/* ---- new format --------------------------------------------------- */

START_TEST (test_clean_primary_untouched)
{
  struct replay_result res;
  struct np_error err;
  char out[] = "/tmp/netvsc-replay-clean.XXXXXX";
  int fd = mkstemp (out);

  ck_assert_int_ne (fd, -1);
  close (fd);
  unlink (out);
  ck_assert_int_eq (hive_replay_logs (fixture_hive ("ws2019"), "/nonexistent.LOG1", NULL, out,
                                      &res, &err), 1);
  ck_assert_int_eq (access (out, F_OK), -1);
}
END_TEST

START_TEST (test_replay_one_log)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  uint32_t seq;
  char line[512];

  scene_setup (&s);
  seq = secondary_of (s.orig);
  scene_logs (&s, &OPTS (0), 0);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  /* three entries, one per step, from the primary's secondary number */
  ck_assert_int_eq (res.log_format, REPLAY_FORMAT_NEW);
  ck_assert_uint_eq (res.entries, 3);
  ck_assert_uint_eq (res.seq_from, seq);
  ck_assert_uint_eq (res.seq_to, seq + 2);
  ck_assert_uint_eq (res.seq_final, seq + 2);
  ck_assert_uint_eq (res.logs_used, REPLAY_USED_LOG1);
  ck_assert_int_eq (res.base_block_from_log, 0);
  /* the hive grew: step 2 added bins */
  ck_assert_uint_lt (res.size_before, res.size_after);
  assert_recovered_as (&s, s.step[2], seq + 2);
  replay_describe (&res, line, sizeof line);
  ck_assert_msg (strstr (line, "replayed 3 log entries") && strstr (line, "from SYSTEM.LOG1"),
                 "%s", line);
  ck_assert_ptr_nonnull (strstr (res.stopped, "SYSTEM.LOG1: end of file"));
  scene_free (&s);
}
END_TEST

START_TEST (test_replay_across_logs)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  uint32_t seq;

  scene_setup (&s);
  seq = secondary_of (s.orig);
  /* entry 1 in LOG1, entries 2-3 in LOG2: continued at N + 1 */
  scene_logs (&s, &OPTS (.split = 1), 1);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  ck_assert_uint_eq (res.entries, 3);
  ck_assert_uint_eq (res.logs_used, REPLAY_USED_LOG1 | REPLAY_USED_LOG2);
  ck_assert_int_eq (res.first_log, 1);
  ck_assert_str_eq (res.from, "SYSTEM.LOG1 then SYSTEM.LOG2");
  assert_recovered_as (&s, s.step[2], seq + 2);

  /* the same split the other way round: LOG2 holds the earlier entries
   * and is replayed first (order by sequence number, not by name) */
  scene_logs (&s, &OPTS (.split = 2, .swap = 1), 1);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (res.first_log, 2);
  ck_assert_str_eq (res.from, "SYSTEM.LOG2 then SYSTEM.LOG1");
  ck_assert_uint_eq (res.entries, 3);
  assert_recovered_as (&s, s.step[2], seq + 2);
  scene_free (&s);
}
END_TEST

/* Each way an entry can be invalid stops the replay right before it. */
START_TEST (test_stop_at_invalid_entry)
{
  static const struct {
    struct mklog_opts o;
    int log2;
    unsigned applied;          /* entries applied: the result is step[applied-1] */
    const char *why;
  } c[] = {
    { { .bad_hash1 = 2 }, 0, 1, "SYSTEM.LOG1: log entry at offset 0x3400 has a bad hash-1" },
    { { .bad_hash2 = 3 }, 0, 2, "has a bad hash-2" },
    { { .bad_signature = 2 }, 0, 1, "no log entry at offset" },
    { { .bad_size = 3 }, 0, 2, "has a bad size" },
    { { .bad_hbins = 2 }, 0, 1, "has a bad hive bins data size" },
    { { .gap = 3 }, 0, 2, "where 0x" },
    { { .truncate = 600 }, 0, 2, "is truncated" },
    /* in the second log */
    { { .split = 2, .bad_hash1 = 3 }, 1, 2, "SYSTEM.LOG2: log entry at offset 0x200 has a bad hash-1" },
    { { .split = 1, .truncate = 600 }, 1, 2, "SYSTEM.LOG2: log entry" },
    /* a gap between the logs: the second is not continued with */
    { { .split = 2, .gap = 3 }, 1, 2, "SYSTEM.LOG2 not used: it starts at sequence" },
  };
  struct scene s;
  struct replay_result res;
  struct np_error err;
  uint32_t seq;

  scene_setup (&s);
  seq = secondary_of (s.orig);
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    scene_logs (&s, &c[i].o, c[i].log2);
    ck_assert_msg (replay (&s, &res, &err) == 0, "case %zu: %s", i, err.msg);
    ck_assert_msg (res.entries == c[i].applied, "case %zu: %u entries applied", i, res.entries);
    ck_assert_msg (strstr (res.stopped, c[i].why), "case %zu: stopped: %s", i, res.stopped);
    assert_recovered_as (&s, s.step[c[i].applied - 1], seq + c[i].applied - 1);
  }
  scene_free (&s);
}
END_TEST

START_TEST (test_first_entry_invalid)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;

  scene_setup (&s);
  scene_logs (&s, &OPTS (.bad_hash2 = 1), 0);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "SYSTEM.LOG1 has no valid entries for sequence 0x") &&
                 strstr (err.msg, "bad hash-2") && strstr (err.msg, "SYSTEM.LOG2: missing"),
                 "%s", err.msg);
  ck_assert_int_eq (access (s.out, F_OK), -1);
  scene_free (&s);
}
END_TEST

START_TEST (test_no_usable_log)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  int fd;

  scene_setup (&s);
  scene_logs (&s, &OPTS (0), 0);
  /* no logs at all */
  ck_assert_int_eq (hive_replay_logs (s.primary, NULL, "/nonexistent/SYSTEM.LOG2", s.out, &res,
                                      &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "no usable transaction log: LOG1: missing; SYSTEM.LOG2: missing"),
                 "%s", err.msg);
  /* empty logs (what hive_log_reset leaves) */
  fd = open (s.log1, O_WRONLY | O_TRUNC);
  close (fd);
  fd = open (s.log2, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  close (fd);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_msg (strstr (err.msg, "SYSTEM.LOG1: empty; SYSTEM.LOG2: empty"), "%s", err.msg);
  /* a log whose base block copy is damaged */
  scene_logs (&s, &OPTS (0), 0);
  {
    int f = open (s.log1, O_WRONLY);
    ck_assert_int_eq (pwrite (f, "\x01", 1, 100), 1);
    close (f);
  }
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_msg (strstr (err.msg, "SYSTEM.LOG1: base block checksum is wrong"), "%s", err.msg);
  /* a primary that is not a hive at all */
  ck_assert_int_eq (hive_replay_logs ("/etc/passwd", s.log1, NULL, s.out, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  ck_assert_int_eq (access (s.out, F_OK), -1);
  scene_free (&s);
}
END_TEST

/* Logs whose entries the primary already has are skipped; all-stale
 * logs are refused; a log that starts before the hive's sequence number
 * yet holds entries it lacks is refused. */
START_TEST (test_stale_logs)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  uint32_t seq;

  scene_setup (&s);
  seq = secondary_of (s.orig);
  /* LOG2 of an older generation (valid entries that would wreck the
   * root bin if applied), LOG1 current */
  scene_logs (&s, &OPTS (.stale_log2 = 1), 1);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  ck_assert_uint_eq (res.logs_used, REPLAY_USED_LOG1);
  ck_assert_msg (strstr (res.stopped, "SYSTEM.LOG2 skipped"), "%s", res.stopped);
  assert_recovered_as (&s, s.step[2], seq + 2);

  /* only a stale log */
  scene_logs (&s, &OPTS (.seq_delta = -5), 0);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "before the hive's"), "%s", err.msg);

  /* LOG1 starts one before the hive but runs into entries it lacks */
  scene_logs (&s, &OPTS (.seq_delta = -1, .split = 2), 1);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_msg (strstr (err.msg, "inconsistent logs: SYSTEM.LOG1 starts at sequence"), "%s",
                 err.msg);
  ck_assert_int_eq (access (s.out, F_OK), -1);
  scene_free (&s);
}
END_TEST

/* Partial reconciliation: the first entry is above the hive's secondary
 * sequence number (the primary already holds what came before). */
START_TEST (test_entries_start_above_primary)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  uint32_t seq;

  scene_setup (&s);
  seq = secondary_of (s.orig);
  scene_logs (&s, &OPTS (.seq_delta = 0x1e6, .split = 1), 1);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  ck_assert_uint_eq (res.seq_from, seq + 0x1e6);
  ck_assert_uint_eq (res.entries, 3);
  assert_recovered_as (&s, s.step[2], seq + 0x1e6 + 2);
  scene_free (&s);
}
END_TEST

/* A wrong base block checksum: the base block comes from the log with
 * the latest entries, and only that log is used. */
START_TEST (test_bad_primary_checksum)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  uint32_t seq;

  scene_setup (&s);
  seq = secondary_of (s.orig);
  scene_logs (&s, &OPTS (.bad_checksum = 1), 0);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (res.base_block_from_log, 1);
  assert_recovered_as (&s, s.step[2], seq + 2);

  /* split over two logs: only LOG2 (the latest) is used, as Windows
   * does; here that leaves step 1 out and the hive damaged: refused */
  scene_logs (&s, &OPTS (.bad_checksum = 1, .split = 1), 1);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "replaying SYSTEM.LOG2 would leave a damaged hive") &&
                 strstr (err.msg, "SYSTEM.LOG1 not used"), "%s", err.msg);
  ck_assert_int_eq (access (s.out, F_OK), -1);
  scene_free (&s);
}
END_TEST

/* The base block's flag 0x1 follows the last entry applied. */
START_TEST (test_flags_from_entry)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  size_t n;
  unsigned char *b;
  FILE *f;

  scene_setup (&s);
  /* the last step's base block says flag 1: mklog copies it into the
   * entries */
  b = file_bytes (s.step[2], &n);
  b[144] |= 1;
  {
    uint32_t sum = 0;
    for (int i = 0; i < 508; i += 4)
      sum ^= get32 (b + i);
    for (int i = 0; i < 4; i++)
      b[508 + i] = (unsigned char) (sum >> (8 * i));
  }
  f = fopen (s.step[2], "wb");
  ck_assert_uint_eq (fwrite (b, 1, n, f), n);
  fclose (f);
  free (b);
  scene_logs (&s, &OPTS (0), 0);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  b = file_bytes (s.out, &n);
  ck_assert_uint_eq (get32 (b + 144) & 1, 1);
  free (b);
  scene_free (&s);
}
END_TEST

/* ---- old format --------------------------------------------------- */

START_TEST (test_old_format)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  uint32_t seq;
  char line[512];

  scene_setup (&s);
  seq = secondary_of (s.orig);
  scene_logs (&s, &OPTS (.old_format = 1), 1);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (res.log_format, REPLAY_FORMAT_OLD);
  ck_assert_uint_eq (res.logs_used, REPLAY_USED_LOG1);
  /* the primary's primary sequence number: the write the log completes */
  assert_recovered_as (&s, s.step[2], seq + 1);
  replay_describe (&res, line, sizeof line);
  ck_assert_msg (strstr (line, "old-format log SYSTEM.LOG1"), "%s", line);

  /* an invalid primary base block: rebuilt from the log's copy, the
   * first hive bin's timestamp standing for the hive's */
  scene_logs (&s, &OPTS (.old_format = 1, .bad_checksum = 1), 0);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (res.base_block_from_log, 1);
  assert_recovered_as (&s, s.step[2], seq + 1);

  replay_describe (&res, line, sizeof line);
  ck_assert_msg (strstr (line, "rebuilt from SYSTEM.LOG1's copy, the log matched by the first "
                         "hive bin's timestamp"), "%s", line);

  /* written at another time: not applicable */
  scene_logs (&s, &OPTS (.old_format = 1, .ts_mismatch = 1), 0);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "no transaction log applies to it: SYSTEM.LOG1: written at "
                         "another time (2020-01-01 00:00:00.0000001 UTC) than the hive "
                         "(2020-01-01 00:00:00.0000000 UTC)"), "%s", err.msg);
  /* ... and with an invalid base block, the message says the first hive
   * bin's timestamp was the one compared */
  scene_logs (&s, &OPTS (.old_format = 1, .ts_mismatch = 1, .bad_checksum = 1), 0);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "its base block is invalid (wrong checksum), so the logs were "
                         "matched against its first hive bin's timestamp (2020-01-01 "
                         "00:00:00.0000000 UTC): no transaction log applies to it: SYSTEM.LOG1: "
                         "written at another time (2020-01-01 00:00:00.0000001 UTC) than the "
                         "hive's first hive bin"), "%s", err.msg);

  /* a dirty hive bin that is invalid once the pages are applied: the log
   * is not applied at all (Windows would stop there and keep the pages
   * before it) */
  scene_logs (&s, &OPTS (.old_format = 1, .bad_bin = 1), 0);
  ck_assert_int_eq (replay (&s, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "SYSTEM.LOG1: with its 136 dirty pages applied, the hive bin "
                         "at offset 0x") && strstr (err.msg, "is invalid (no \"hbin\" signature)")
                 && strstr (err.msg, "(an old-format log is applied whole or not at all)"),
                 "%s", err.msg);
  ck_assert_int_eq (access (s.out, F_OK), -1);
  scene_free (&s);
}
END_TEST

/* Write BYTES over a copy of the log FROM at offset OFF, as TO. */
static void
patch_copy (const char *from, const char *to, size_t off, const void *bytes, size_t n)
{
  size_t size;
  unsigned char *b = file_bytes (from, &size);
  FILE *f;

  ck_assert_uint_le (off + n, size);
  memcpy (b + off, bytes, n);
  f = fopen (to, "wb");
  ck_assert_uint_eq (fwrite (b, 1, size, f), size);
  fclose (f);
  free (b);
}

/* Refused, with WANT in the message, and nothing written. */
static void
assert_refused (struct scene *s, const char *want, const char *what)
{
  struct replay_result res;
  struct np_error err;

  ck_assert_msg (replay (s, &res, &err) == -1, "%s: replayed", what);
  ck_assert_msg (err.code == NP_EXIT_UNSAFE, "%s: exit %d: %s", what, err.code, err.msg);
  ck_assert_msg (strstr (err.msg, want), "%s: %s", what, err.msg);
  ck_assert_int_eq (access (s->out, F_OK), -1);
}

/* An old-format log is one transaction: cut anywhere, or with a bitmap
 * that does not match its pages, it is refused whole. */
START_TEST (test_old_format_all_or_nothing)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  char good[160], what[64];
  size_t size, start;
  unsigned char *log;
  uint32_t hbins, vec, npages = 0, first_clean = UINT32_MAX, first_dirty = UINT32_MAX;

  scene_setup (&s);
  scene_logs (&s, &OPTS (.old_format = 1), 0);
  snprintf (good, sizeof good, "%s/good.LOG1", s.dir);
  ck_assert_int_eq (rename (s.log1, good), 0);
  log = file_bytes (good, &size);
  hbins = get32 (log + 40);
  vec = hbins / 4096;
  start = (512 + 4 + vec + 511) / 512 * 512;
  for (uint32_t i = 0; i < vec; i++) {
    npages += log[516 + i] ? 8 : 0;
    if (log[516 + i] == 0 && first_clean == UINT32_MAX)
      first_clean = i;
    if (log[516 + i] && first_dirty == UINT32_MAX)
      first_dirty = i;
  }
  ck_assert_uint_eq (npages, 136);
  ck_assert_uint_eq (size, start + npages * 512);
  ck_assert (first_clean != UINT32_MAX && first_dirty != UINT32_MAX);

  /* cut at every kind of point */
  {
    static const struct {
      const char *what;
      long keep;               /* >= 0: bytes kept; < 0: relative to the end */
      const char *want;
    } cut[] = {
      { "empty", 0, "no usable transaction log: SYSTEM.LOG1: empty" },
      { "in the base block", 300, "SYSTEM.LOG1: too short for a log (300 bytes)" },
      { "in the DIRT signature", 514, "SYSTEM.LOG1 is cut short before its dirty vector" },
      { "in the bitmap", 516 + 5, "SYSTEM.LOG1 is cut short inside its dirty vector (5 of " },
      { "after the bitmap", -(long) (136 * 512), "SYSTEM.LOG1 holds 0 of 136 dirty pages: cut short" },
      { "in page 1", -(long) (136 * 512) + 100, "SYSTEM.LOG1 holds 0 of 136 dirty pages" },
      { "in page 54", -(long) (83 * 512) + 100, "SYSTEM.LOG1 holds 53 of 136 dirty pages: cut short" },
      { "one byte short", -1, "SYSTEM.LOG1 holds 135 of 136 dirty pages: cut short" },
    };
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
      size_t keep = cut[i].keep >= 0 ? (size_t) cut[i].keep : size - (size_t) -cut[i].keep;
      FILE *f = fopen (s.log1, "wb");
      ck_assert_uint_eq (fwrite (log, 1, keep, f), keep);
      fclose (f);
      assert_refused (&s, cut[i].want, cut[i].what);
    }
  }

  /* bitmaps that do not match the pages */
  {
    unsigned char b = 0x01;
    patch_copy (good, s.log1, 516 + first_clean, &b, 1);     /* one bit more */
    assert_refused (&s, "SYSTEM.LOG1: dirty vector byte", "one bit more");
    b = 0x7f;
    patch_copy (good, s.log1, 516 + first_dirty, &b, 1);     /* one bit fewer */
    assert_refused (&s, "is 0x7f where Windows writes 0x00 or 0xff", "one bit fewer");
    b = 0xff;
    patch_copy (good, s.log1, 516 + first_clean, &b, 1);     /* a block more */
    assert_refused (&s, "SYSTEM.LOG1 holds 136 of 144 dirty pages: cut short", "a block more");
    b = 0x00;
    patch_copy (good, s.log1, 516 + first_dirty, &b, 1);     /* a block fewer */
    assert_refused (&s, "SYSTEM.LOG1: with its 128 dirty pages applied, ", "a block fewer");
    b = 0;
    for (uint32_t i = 0; i < vec; i++)
      patch_copy (i ? s.log1 : good, s.log1, 516 + i, &b, 1);
    assert_refused (&s, "SYSTEM.LOG1: its dirty vector marks no page dirty", "no bit");
    patch_copy (good, s.log1, 512, "DIRX", 4);
    assert_refused (&s, "SYSTEM.LOG1 has no dirty vector (no \"DIRT\" signature", "no DIRT");
  }

  /* remnant pages after the last one are allowed: the same result */
  {
    FILE *f = fopen (s.log1, "wb");
    static unsigned char junk[4096];
    memset (junk, 0x5a, sizeof junk);
    ck_assert_uint_eq (fwrite (log, 1, size, f), size);
    ck_assert_uint_eq (fwrite (junk, 1, sizeof junk, f), sizeof junk);
    fclose (f);
    ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq (res.pages, 136);
    assert_recovered_as (&s, s.step[2], secondary_of (s.orig) + 1);
  }

  /* LOG1 cut short, LOG2 a complete copy of the same transaction (what
   * Windows leaves after switching logs on a write error): LOG2 */
  {
    FILE *f = fopen (s.log1, "wb");
    ck_assert_uint_eq (fwrite (log, 1, size - 512, f), size - 512);
    fclose (f);
    patch_copy (good, s.log2, 0, "regf", 4);
    ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq (res.logs_used, REPLAY_USED_LOG2);
    ck_assert_msg (strstr (res.stopped, "SYSTEM.LOG1 holds 135 of 136 dirty pages: cut short "
                           "(70144 bytes, 70656 needed) (not used)"),
                   "%s", res.stopped);
    assert_recovered_as (&s, s.step[2], secondary_of (s.orig) + 1);
    /* both cut: refused, each named */
    f = fopen (s.log2, "wb");
    ck_assert_uint_eq (fwrite (log, 1, 2048, f), 2048);
    fclose (f);
    assert_refused (&s, "SYSTEM.LOG1 holds 135 of 136 dirty pages: cut short (70144 bytes, "
                    "70656 needed); SYSTEM.LOG2 holds 2 of 136 dirty pages: cut short", "both cut");
    unlink (s.log2);
  }

  /* an invalid base block too: the message says so */
  scene_logs (&s, &OPTS (.old_format = 1, .bad_checksum = 1, .truncate = 512), 0);
  snprintf (what, sizeof what, "bad checksum, cut");
  assert_refused (&s, "its base block is invalid (wrong checksum), so the logs were matched "
                  "against its first hive bin's timestamp (", what);
  free (log);
  scene_free (&s);
}
END_TEST

/* Every cut length and every bitmap byte turned over, in memory: each
 * refused.  The one damage that cannot always be seen is the last dirty
 * block cleared (its pages then read as remnants): if accepted, the
 * result is exact but for that block, as the primary had it. */
START_TEST (test_old_format_mutations)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  unsigned char *log, *prim, *want, *out, *mut;
  size_t lsize, psize, wsize, out_size;
  uint32_t hbins, vec, last_dirty = 0;
  unsigned refused = 0, cuts = 0;

  scene_setup (&s);
  scene_logs (&s, &OPTS (.old_format = 1), 0);
  log = file_bytes (s.log1, &lsize);
  prim = file_bytes (s.primary, &psize);
  want = file_bytes (s.step[2], &wsize);
  hbins = get32 (log + 40);
  vec = hbins / 4096;
  for (uint32_t i = 0; i < vec; i++)
    if (log[516 + i])
      last_dirty = i;
  mut = malloc (lsize);
  ck_assert_ptr_nonnull (mut);
  {
    struct replay_input p = { "SYSTEM", prim, psize }, l = { "SYSTEM.LOG1", mut, 0 };
    for (size_t cut = 0; cut < lsize; cut += cut < 1100 ? 1 : 61, cuts++) {
      memcpy (mut, log, cut);
      l.size = cut;
      ck_assert_msg (hive_replay_memory (&p, &l, NULL, &out, &out_size, &res, &err) == -1,
                     "cut at %zu accepted", cut);
      ck_assert_msg (err.code == NP_EXIT_UNSAFE, "cut at %zu: %s", cut, err.msg);
      refused++;
    }
    l.size = lsize;
    for (uint32_t i = 0; i < vec; i++) {
      int r;
      memcpy (mut, log, lsize);
      mut[516 + i] = log[516 + i] ? 0x00 : 0xff;
      r = hive_replay_memory (&p, &l, NULL, &out, &out_size, &res, &err);
      if (i == last_dirty && r == 0) {
        /* here the primary lacks the block (the hive grew into it), so
         * it is seen; where the primary has it, it cannot be */
        ck_assert_uint_eq (out_size, 4096 + (size_t) hbins);
        for (uint32_t b = 0; b < vec; b++)
          ck_assert_msg (memcmp (out + 4096 + 4096 * (size_t) b,
                                 (b == i ? prim : want) + 4096 + 4096 * (size_t) b, 4096) == 0,
                         "block %u", b);
        free (out);
        continue;
      }
      ck_assert_msg (r == -1 && err.code == NP_EXIT_UNSAFE, "bitmap byte %u turned over: "
                     "accepted", i);
      refused++;
    }
  }
  fprintf (stderr, "replay: old format: %u cut lengths and %u of %u turned-over bitmap bytes "
           "refused\n", cuts, refused - cuts, vec);
  free (mut);
  free (log);
  free (prim);
  free (want);
  scene_free (&s);
}
END_TEST

/* Windows XP / Server 2003: the single FILE.LOG, old format. */
START_TEST (test_single_dot_log)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  char dotlog[160], line[512];
  const char *logs[REPLAY_NLOGS];

  scene_setup (&s);
  scene_logs (&s, &OPTS (.old_format = 1), 0);
  snprintf (dotlog, sizeof dotlog, "%s/SYSTEM.LOG", s.dir);
  ck_assert_int_eq (rename (s.log1, dotlog), 0);
  logs[REPLAY_LOG1] = s.log1;
  logs[REPLAY_LOG2] = s.log2;
  logs[REPLAY_LOG] = dotlog;
  ck_assert_msg (hive_replay_files (s.primary, logs, s.out, &res, &err) == 0, "%s", err.msg);
  ck_assert_uint_eq (res.logs_used, REPLAY_USED_LOG);
  ck_assert_int_eq (res.first_log, 3);
  assert_recovered_as (&s, s.step[2], secondary_of (s.orig) + 1);
  replay_describe (&res, line, sizeof line);
  ck_assert_msg (strstr (line, "old-format log SYSTEM.LOG whole"), "%s", line);
  /* cut short: refused, named; the missing LOG1/LOG2 are listed too */
  ck_assert_int_eq (truncate (dotlog, 4096), 0);
  unlink (s.out);
  ck_assert_int_eq (hive_replay_files (s.primary, logs, s.out, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "SYSTEM.LOG1: missing; SYSTEM.LOG2: missing; SYSTEM.LOG holds "
                         "6 of 136 dirty pages: cut short (4096 bytes, 70656 needed)"), "%s", err.msg);
  ck_assert_int_eq (access (s.out, F_OK), -1);
  /* a new-format log under the .LOG name is not read */
  scene_logs (&s, &OPTS (0), 0);
  ck_assert_int_eq (rename (s.log1, dotlog), 0);
  ck_assert_int_eq (hive_replay_files (s.primary, logs, s.out, &res, &err), -1);
  ck_assert_msg (strstr (err.msg, "no usable transaction log: SYSTEM.LOG1: missing; SYSTEM.LOG2: "
                         "missing; SYSTEM.LOG: a new-format log under the single-log name, "
                         "not read"), "%s", err.msg);
  scene_free (&s);
}
END_TEST

/* ---- finding the logs on the host --------------------------------- */

static void
touch_file (const char *dir, const char *name)
{
  char path[512];
  FILE *f;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  f = fopen (path, "w");
  ck_assert_ptr_nonnull (f);
  fclose (f);
}

START_TEST (test_host_logs_find)
{
  char dir[] = "/tmp/netvsc-logfind.XXXXXX", hive[128], want[256], desc[512], cwd[4096];
  struct host_logs l;

  ck_assert_ptr_nonnull (mkdtemp (dir));
  snprintf (hive, sizeof hive, "%s/system", dir);
  touch_file (dir, "system");
  /* none: the usual spellings, nothing found */
  host_logs_find (hive, &l);
  ck_assert (!l.found[0] && !l.found[1] && !l.found[2] && !l.ambiguous[0]);
  snprintf (want, sizeof want, "%s.LOG1", hive);
  ck_assert_str_eq (l.path[REPLAY_LOG1], want);
  host_logs_describe (&l, desc, sizeof desc);
  ck_assert_str_eq (desc, "no .LOG1, .LOG2 or .LOG file beside it");
  /* any case, as spelt; another hive's logs and near names ignored */
  touch_file (dir, "SYSTEM.log1");
  touch_file (dir, "System.Log");
  touch_file (dir, "SYSTEM.LOG2.bak");
  touch_file (dir, "SOFTWARE.LOG2");
  host_logs_find (hive, &l);
  ck_assert (l.found[REPLAY_LOG1] && !l.found[REPLAY_LOG2] && l.found[REPLAY_LOG]);
  snprintf (want, sizeof want, "%s/SYSTEM.log1", dir);
  ck_assert_str_eq (l.path[REPLAY_LOG1], want);
  snprintf (want, sizeof want, "%s/System.Log", dir);
  ck_assert_str_eq (l.path[REPLAY_LOG], want);
  snprintf (want, sizeof want, "%s.LOG2", hive);
  ck_assert_str_eq (l.path[REPLAY_LOG2], want);
  ck_assert_str_eq (l.ambiguous, "");
  host_logs_describe (&l, desc, sizeof desc);
  ck_assert_str_eq (desc, "SYSTEM.log1 and System.Log exist beside it");
  /* two spellings of one log: ambiguous */
  touch_file (dir, "system.LOG1");
  host_logs_find (hive, &l);
  ck_assert_msg (strcmp (l.ambiguous, "SYSTEM.log1 and system.LOG1 both exist beside it") == 0 ||
                 strcmp (l.ambiguous, "system.LOG1 and SYSTEM.log1 both exist beside it") == 0,
                 "%s", l.ambiguous);
  /* a relative path, from the hive's directory */
  ck_assert_ptr_nonnull (getcwd (cwd, sizeof cwd));
  ck_assert_int_eq (chdir (dir), 0);
  host_logs_find ("system", &l);
  ck_assert (l.found[REPLAY_LOG]);
  ck_assert_str_eq (l.path[REPLAY_LOG], "System.Log");
  ck_assert_int_eq (chdir (cwd), 0);
  nftw (dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* ---- the logs after the write ------------------------------------- */

START_TEST (test_log_reset)
{
  struct scene s;
  struct replay_result res;
  struct np_error err;
  struct stat st;
  char patched[160];
  hive_h *h;

  scene_setup (&s);
  scene_logs (&s, &OPTS (.split = 1), 1);
  ck_assert_msg (replay (&s, &res, &err) == 0, "%s", err.msg);
  /* patch the recovered hive as netvsc-patch does: hivex commit, which
   * makes it clean with the next sequence number */
  snprintf (patched, sizeof patched, "%s/patched", s.dir);
  h = hivex_open (s.out, HIVEX_OPEN_WRITE);
  ck_assert_ptr_nonnull (h);
  set_dword (h, NET_CLASS "\\0001", "ReceiveBufferSize", 0x1000);
  ck_assert_int_eq (hivex_commit (h, patched, 0), 0);
  hivex_close (h);
  ck_assert_uint_eq (secondary_of (patched), res.seq_final + 1);

  /* beside a clean hive: the logs become empty files */
  ck_assert_int_gt ((stat (s.log1, &st), st.st_size), 0);
  ck_assert_msg (hive_log_reset (patched, s.log1, &err) == 0, "%s", err.msg);
  ck_assert_msg (hive_log_reset (patched, s.log2, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (stat (s.log1, &st), 0);
  ck_assert_int_eq (st.st_size, 0);
  ck_assert_int_eq (stat (s.log2, &st), 0);
  ck_assert_int_eq (st.st_size, 0);
  /* and nothing in them can be replayed over the patched hive, should it
   * become dirty again */
  ck_assert_int_eq (hive_replay_logs (s.primary, s.log1, s.log2, s.out, &res, &err), -1);
  ck_assert_msg (strstr (err.msg, "SYSTEM.LOG1: empty; SYSTEM.LOG2: empty"), "%s", err.msg);

  /* beside a dirty hive: refused, the log untouched */
  scene_logs (&s, &OPTS (0), 0);
  ck_assert_int_eq (hive_log_reset (s.primary, s.log1, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  ck_assert_msg (strstr (err.msg, "the hive is dirty"), "%s", err.msg);
  ck_assert_int_eq (stat (s.log1, &st), 0);
  ck_assert_int_gt (st.st_size, 0);
  /* beside something that is not a primary hive: refused */
  ck_assert_int_eq (hive_log_reset (s.log1, s.log2, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);
  scene_free (&s);
}
END_TEST

/* ---- the real dirty SYSTEM hive ----------------------------------- */

static const char *
real_hives_dir (void)
{
  static char dir[4096];
  const char *shared = getenv ("SHARED");

  snprintf (dir, sizeof dir, "%s/real-hives", shared && *shared ? shared : "../shared");
  return dir;
}

static long
count_lines (const char *cmd)
{
  FILE *p = popen (cmd, "r");
  long n = -1;

  ck_assert_ptr_nonnull (p);
  if (fscanf (p, "%ld", &n) != 1)
    n = -1;
  pclose (p);
  return n;
}

START_TEST (test_real_dirty_system)
{
  const char *real = real_hives_dir ();
  char dir[] = "/tmp/netvsc-replay-real.XXXXXX", cmd[8192], in[3][64], out[64];
  static const char *const names[3] = { "SYSTEM", "SYSTEM.LOG1", "SYSTEM.LOG2" };
  static const char *const xz[3] = { "SYSTEM_B.xz", "SYSTEM_B.LOG1.xz", "SYSTEM_B.LOG2.xz" };
  struct replay_result res;
  struct np_error err;
  struct base_block bb;
  struct hive hv;
  size_t keys0, values0, keys, values;
  char line[512];

  if (access (real, R_OK) != 0) {
    fprintf (stderr, "replay: SKIPPED the real dirty SYSTEM hive: no %s\n", real);
    return;
  }
  ck_assert_ptr_nonnull (mkdtemp (dir));
  for (int i = 0; i < 3; i++) {
    snprintf (in[i], sizeof in[i], "%s/%s", dir, names[i]);
    snprintf (cmd, sizeof cmd, "xz -dc '%s/%s' > '%s'", real, xz[i], in[i]);
    ck_assert_msg (system (cmd) == 0, "%s", cmd);
  }
  snprintf (out, sizeof out, "%s/SYSTEM.recovered", dir);

  ck_assert_msg (hive_replay_logs (in[0], in[1], in[2], out, &res, &err) == 0, "%s", err.msg);
  replay_describe (&res, line, sizeof line);
  fprintf (stderr, "replay: real SYSTEM: %s\n", line);
  /* LOG1 holds entries 0x83b-0x83e, LOG2 0x83f-0x852: all 24 apply,
   * although the primary's secondary sequence number is 0x655 (its
   * base block was not updated by partial reconciliation) */
  ck_assert_int_eq (res.log_format, REPLAY_FORMAT_NEW);
  ck_assert_uint_eq (res.entries, 24);
  ck_assert_uint_eq (res.pages, 315);
  ck_assert_uint_eq (res.seq_from, 0x83b);
  ck_assert_uint_eq (res.seq_to, 0x852);
  ck_assert_uint_eq (res.seq_final, 0x852);
  ck_assert_uint_eq (res.logs_used, REPLAY_USED_LOG1 | REPLAY_USED_LOG2);
  ck_assert_int_eq (res.first_log, 1);
  ck_assert_uint_eq (res.size_before, 0xbd3000);
  ck_assert_uint_eq (res.size_after, 0xc02000);
  ck_assert_int_eq (res.base_block_from_log, 0);

  /* a clean base block */
  ck_assert_msg (hive_read_base_block (out, &bb, &err) == 0, "%s", err.msg);
  ck_assert (!base_block_is_dirty (&bb));
  ck_assert_uint_eq (bb.seq_primary, 0x852);

  /* hivex reads every key and value, and finds what the stale primary
   * lacks */
  ck_assert_msg (hive_open (&hv, in[0], 0, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (hivex_visit_count (hv.h, &keys0, &values0), 0);
  hive_close (&hv);
  ck_assert_msg (hive_open (&hv, out, 0, &err) == 0, "%s", err.msg);
  ck_assert_int_eq (hivex_visit_count (hv.h, &keys, &values), 0);
  hive_close (&hv);
  ck_assert_uint_eq (keys0, 33123);
  ck_assert_uint_eq (values0, 74957);
  ck_assert_uint_eq (keys, 35595);
  ck_assert_uint_eq (values, 78901);

  /* libregf (an independent reader) agrees, and no key of the stale
   * primary is lost: 2472 keys are gained, none missing */
  if (system ("command -v regfexport >/dev/null 2>&1") != 0)
    fprintf (stderr, "replay: SKIPPED the regfexport checks: regfexport not installed\n");
  else {
    snprintf (cmd, sizeof cmd, "cd '%s' && regfexport SYSTEM 2>/dev/null | grep '^Key path:' "
              "| LC_ALL=C sort > keys.before && regfexport SYSTEM.recovered 2>/dev/null | "
              "grep '^Key path:' | LC_ALL=C sort > keys.after && wc -l < keys.after", dir);
    ck_assert_int_eq (count_lines (cmd), 35595);
    snprintf (cmd, sizeof cmd, "cd '%s' && wc -l < keys.before", dir);
    ck_assert_int_eq (count_lines (cmd), 33123);
    snprintf (cmd, sizeof cmd, "cd '%s' && LC_ALL=C comm -23 keys.before keys.after | wc -l", dir);
    ck_assert_int_eq (count_lines (cmd), 0);
    snprintf (cmd, sizeof cmd, "cd '%s' && LC_ALL=C comm -13 keys.before keys.after | wc -l", dir);
    ck_assert_int_eq (count_lines (cmd), 2472);
    snprintf (cmd, sizeof cmd, "cd '%s' && regfexport SYSTEM.recovered 2>/dev/null | "
              "grep -c '^Value:'", dir);
    ck_assert_int_eq (count_lines (cmd), 78901);
  }

  /* the empty logs left after the write are never replayed */
  ck_assert_msg (hive_log_reset (out, in[1], &err) == 0, "%s", err.msg);
  ck_assert_msg (hive_log_reset (out, in[2], &err) == 0, "%s", err.msg);
  ck_assert_int_eq (hive_replay_logs (in[0], in[1], in[2], out, &res, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_UNSAFE);

  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq (system (cmd), 0);
}
END_TEST

Suite *
replay_suite (void)
{
  Suite *s = suite_create ("replay");
  TCase *tc = tcase_create ("logs");
  TCase *real = tcase_create ("real");

  tcase_add_test (tc, test_marvin32_vectors);
  tcase_add_test (tc, test_clean_primary_untouched);
  tcase_add_test (tc, test_replay_one_log);
  tcase_add_test (tc, test_replay_across_logs);
  tcase_add_test (tc, test_stop_at_invalid_entry);
  tcase_add_test (tc, test_first_entry_invalid);
  tcase_add_test (tc, test_no_usable_log);
  tcase_add_test (tc, test_stale_logs);
  tcase_add_test (tc, test_entries_start_above_primary);
  tcase_add_test (tc, test_bad_primary_checksum);
  tcase_add_test (tc, test_flags_from_entry);
  tcase_add_test (tc, test_old_format);
  tcase_add_test (tc, test_old_format_all_or_nothing);
  tcase_add_test (tc, test_old_format_mutations);
  tcase_add_test (tc, test_single_dot_log);
  tcase_add_test (tc, test_host_logs_find);
  tcase_add_test (tc, test_log_reset);
  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  tcase_add_test (real, test_real_dirty_system);
  tcase_set_timeout (real, 300);
  suite_add_tcase (s, real);
  return s;
}
