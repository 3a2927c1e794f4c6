/* netvsc-patch: counting a hive's structure (hive_count.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "hive_count.h"

/* The keys seen, for hive_count_structure's cycle check: a bit per
 * 4-byte offset (cells are 4-byte aligned), grown to the largest
 * offset seen (a valid cell is inside the file). */
struct node_set {
  unsigned char *bits;
  size_t len;
};

/* Add NODE: 1 if added, 0 if it was there, -1 out of memory. */
static int
node_set_add (struct node_set *s, hive_node_h node)
{
  size_t byte = (node >> 2) >> 3;
  unsigned char bit = (unsigned char) (1u << ((node >> 2) & 7));

  if (byte >= s->len) {
    size_t len = s->len ? 2 * s->len : 65536;
    while (len <= byte)
      len *= 2;
    unsigned char *bits = realloc (s->bits, len);
    if (bits == NULL)
      return -1;
    memset (bits + s->len, 0, len - s->len);
    s->bits = bits;
    s->len = len;
  }
  if (s->bits[byte] & bit)
    return 0;
  s->bits[byte] |= bit;
  return 1;
}

/* One key: count it and its values, push its subkeys.  0, or -1 with
 * errno on a structural fault. */
static int
count_node (hive_h *h, hive_node_h node, size_t *n_values, hive_node_h **stack,
            size_t *depth, size_t *cap)
{
  hive_value_h *values;
  hive_node_h *children;
  size_t n;

  /* No value, no subkey (most keys have one or the other): the lists
   * hivex would return are empty, after the same "nk" check, so only
   * that check is made (hivex_node_nr_*: 0 with errno on a bad cell) */
  errno = 0;
  n = hivex_node_nr_values (h, node);
  if (n == 0 && errno != 0)
    return -1;
  values = n ? hivex_node_values (h, node) : NULL;
  if (n && values == NULL)
    return -1;
  for (size_t i = 0; n && values[i]; i++) {
    size_t len;
    /* checks that the value is a valid "vk" cell (EINVAL if not), then
     * its data: inline, or a valid cell */
    errno = 0;
    if (hivex_value_data_cell_offset (h, values[i], &len) == 0 && errno != 0) {
      int e = errno ? errno : EINVAL;
      free (values);
      errno = e;
      return -1;
    }
    ++*n_values;
  }
  free (values);
  errno = 0;
  n = hivex_node_nr_children (h, node);
  if (n == 0)
    return errno != 0 ? -1 : 0;
  children = hivex_node_children (h, node);
  if (children == NULL)
    return -1;
  for (size_t i = 0; children[i]; i++) {
    if (*depth == *cap) {
      size_t ncap = *cap ? 2 * *cap : 256;
      hive_node_h *s = realloc (*stack, ncap * sizeof *s);
      if (s == NULL) {
        free (children);
        errno = ENOMEM;
        return -1;
      }
      *stack = s;
      *cap = ncap;
    }
    (*stack)[(*depth)++] = children[i];
  }
  free (children);
  return 0;
}

int
hive_count_structure (struct hive *hv, int skip_bad, size_t *n_keys, size_t *n_values)
{
  struct node_set seen = { NULL, 0 };
  hive_node_h *stack = NULL;
  size_t depth = 0, cap = 0;
  int r = 0;

  *n_keys = *n_values = 0;
  /* An explicit stack, not recursion: a crafted hive can nest keys as
   * deep as it has cells. */
  stack = malloc (256 * sizeof *stack);
  if (stack == NULL)
    return -1;
  cap = 256;
  stack[depth++] = hivex_root (hv->h);
  while (depth > 0) {
    hive_node_h node = stack[--depth];
    int added = node ? node_set_add (&seen, node) : 0;
    if (added == -1) {
      errno = ENOMEM;
      r = -1;
      break;
    }
    if (added == 0) {
      /* a key reached twice (or the null root of an empty handle) */
      if (skip_bad && node)
        continue;
      errno = node ? ELOOP : EINVAL;
      r = -1;
      break;
    }
    ++*n_keys;
    /* on a fault, as HIVEX_VISIT_SKIP_BAD: the key stays counted, with
     * the values read before the fault; its subkeys were not pushed */
    if (count_node (hv->h, node, n_values, &stack, &depth, &cap) == -1 &&
        (errno == ENOMEM || !skip_bad)) {
      r = -1;
      break;
    }
  }
  free (stack);
  free (seen.bits);
  return r;
}

struct hive_count_job {
  pthread_t thread;
  char *path;
  int r, err, skip_bad;
  size_t keys, values;
};

int
hive_count_census (struct hive *hv, int *skip_bad, size_t *n_keys, size_t *n_values)
{
  *skip_bad = 0;
  errno = 0;
  if (hive_count_structure (hv, 0, n_keys, n_values) == 0)
    return 0;
  /* Real hives can hold oddities a strict count rejects; then the
   * comparison is made between two lenient counts. */
  *skip_bad = 1;
  errno = 0;
  if (hive_count_structure (hv, 1, n_keys, n_values) == 0)
    return 0;
  if (errno == 0)
    errno = EINVAL;
  return -1;
}

static void *
count_thread (void *arg)
{
  struct hive_count_job *job = arg;
  struct hive view = { NULL, job->path, NULL };

  job->r = -1;
  job->err = 0;
  view.h = hivex_open (job->path, 0);
  if (view.h == NULL)
    return NULL;
  job->r = hive_count_census (&view, &job->skip_bad, &job->keys, &job->values);
  if (job->r == -1)
    job->err = errno;
  hivex_close (view.h);
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
