/* netvsc-patch: counting a hive's structure (hive_count.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "hive_count.h"
#include "regf.h"
#include "regf_count.h"

/* The hive at PATH mapped, read-only: the page cache itself, no copy,
 * populated in one go (faulting it in page by page as the walk jumps
 * about costs twice as long).  Only the bins its base block declares
 * (what regf_count reads), and never more than a hive can hold: the
 * file is someone else's.  The file is locked by the caller, or is
 * ours. */
static int
map_hive (const char *path, const unsigned char **buf, size_t *len)
{
  unsigned char head[REGF_BINS_SIZE_AT + 4];
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC), e;
  size_t want;
  void *p;

  if (fd == -1)
    return -1;
  errno = 0;                    /* a short read sets none */
  if (fstat (fd, &st) == -1 || pread (fd, head, sizeof head, 0) != (ssize_t) sizeof head) {
    e = errno ? errno : EINVAL;
    close (fd);
    errno = e;
    return -1;
  }
  if (!S_ISREG (st.st_mode) || st.st_size < REGF_BASE_BLOCK_SIZE ||
      st.st_size > (off_t) REGF_BASE_BLOCK_SIZE + REGF_MAX_BINS) {
    e = S_ISREG (st.st_mode) && st.st_size >= REGF_BASE_BLOCK_SIZE ? EFBIG : EINVAL;
    close (fd);
    errno = e;
    return -1;
  }
  want = (size_t) st.st_size;
  if (get_le32 (head + REGF_BINS_SIZE_AT) < want - REGF_BASE_BLOCK_SIZE)
    want = REGF_BASE_BLOCK_SIZE + get_le32 (head + REGF_BINS_SIZE_AT);
  p = mmap (NULL, want, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  e = errno;
  close (fd);
  if (p == MAP_FAILED) {
    errno = e;
    return -1;
  }
  *buf = p;
  *len = want;
  return 0;
}

int
hive_count_file (const char *path, int skip_bad, size_t *n_keys, size_t *n_values)
{
  const unsigned char *buf;
  size_t len;
  int r, e;

  *n_keys = *n_values = 0;
  if (map_hive (path, &buf, &len) == -1)
    return -1;
  r = regf_count (buf, len, skip_bad, n_keys, n_values);
  e = errno;
  munmap ((void *) buf, len);
  errno = e;
  return r;
}

struct hive_count_job {
  pthread_t thread;
  char *path;
  int r, err, skip_bad;
  size_t keys, values;
};

int
hive_count_census (const char *path, int *skip_bad, size_t *n_keys, size_t *n_values)
{
  const unsigned char *buf;
  size_t len;
  int r;

  *skip_bad = 0;
  *n_keys = *n_values = 0;
  if (map_hive (path, &buf, &len) == -1)
    return -1;
  errno = 0;
  r = regf_count (buf, len, 0, n_keys, n_values);
  if (r == -1 && errno != ENOMEM) {
    /* Real hives can hold oddities a strict count rejects; then the
     * comparison is made between two lenient counts. */
    *skip_bad = 1;
    errno = 0;
    r = regf_count (buf, len, 1, n_keys, n_values);
  }
  if (r == -1 && errno == 0)
    errno = EINVAL;
  {
    int e = errno;
    munmap ((void *) buf, len);
    errno = e;
  }
  return r;
}

static void *
count_thread (void *arg)
{
  struct hive_count_job *job = arg;

  job->r = hive_count_census (job->path, &job->skip_bad, &job->keys, &job->values);
  job->err = job->r == -1 ? errno : 0;
  return NULL;
}

struct hive_count_job *
hive_count_start (const char *path)
{
  struct hive_count_job *job = calloc (1, sizeof *job);
  sigset_t all, old;
  int r;

  if (job == NULL || (job->path = strdup (path)) == NULL) {
    free (job);
    return NULL;
  }
  /* Signals are for the threads that act on them (interrupt.h): this
   * one is made with every signal blocked. */
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  r = pthread_create (&job->thread, NULL, count_thread, job);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (r != 0) {
    free (job->path);
    free (job);
    return NULL;
  }
  return job;
}

int
hive_count_finish (struct hive_count_job *job, int *skip_bad, size_t *n_keys,
                   size_t *n_values)
{
  int r, e;

  if (job == NULL) {
    errno = 0;
    return -1;
  }
  pthread_join (job->thread, NULL);
  r = job->r;
  e = job->err;
  *skip_bad = job->skip_bad;
  *n_keys = job->keys;
  *n_values = job->values;
  free (job->path);
  free (job);
  errno = e;
  return r;
}

void
hive_count_discard (struct hive_count_job *job)
{
  int skip_bad;
  size_t keys, values;

  hive_count_finish (job, &skip_bad, &keys, &values);
}
