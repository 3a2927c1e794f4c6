/* netvsc-patch: transaction-log replay on files: the hive and its logs
 * read whole from the host, the recovered hive written (mode 0600,
 * flushed), and what the logs must hold once the patched hive is in
 * place. */

#include "logreplay-internal.h"

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
