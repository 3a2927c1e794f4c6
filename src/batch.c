/* netvsc-patch: batches, workers and progress.
 *
 * Images are cut into batches of consecutive targets; each batch goes
 * through one opening of the backend (one appliance launch), and up to
 * -j workers run batches in parallel.  Results are reported as each
 * batch finishes and then freed, so memory does not grow with the
 * number of images. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends.h"
#include "batch.h"
#include "contain.h"
#include "disk.h"
#include "escape.h"
#include "format.h"
#include "hostfile.h"
#include "interrupt.h"
#include "job.h"
#include "report.h"

/* --- --from ----------------------------------------------------------- */

static struct target *
target_add (struct target **targets, size_t *n, size_t *cap)
{
  if (*n == *cap) {
    size_t want = *cap ? *cap * 2 : 64;
    struct target *grown = realloc (*targets, want * sizeof **targets);
    if (grown == NULL)
      return NULL;
    *targets = grown;
    *cap = want;
  }
  return &(*targets)[(*n)++];
}

int
targets_read (const char *file, int nul, struct target **targets, size_t *n, char **buf,
              struct np_error *err)
{
  FILE *fp = strcmp (file, "-") == 0 ? stdin : fopen (file, "r");
  size_t cap = 0, len = 0, lineno = 0;
  char *text = NULL, *end;
  int r;

  *targets = NULL;
  *n = 0;
  *buf = NULL;
  if (fp == NULL)
    return np_error_set (err, NP_EXIT_USAGE, "--from %s: %s", file, strerror (errno));
  errno = 0;
  r = hostfile_read_fd (fileno (fp), &text, &len);
  if (r == -1)
    np_error_set (err, errno == ENOMEM ? NP_EXIT_RUNTIME : NP_EXIT_USAGE, "--from %s: %s",
                  file, strerror (errno));
  if (fp != stdin)
    fclose (fp);
  if (r == -1)
    return -1;
  *buf = text;
  end = text + len;

  /* -0: every byte up to a NUL is the path, exactly as find -print0
   * wrote it (no format, no comments); the last NUL may be missing. */
  for (char *entry = text, *next; nul && entry < end; entry = next) {
    char *z = memchr (entry, '\0', (size_t) (end - entry) + 1);   /* text[len] is NUL */
    struct target *t;
    next = z + 1;
    lineno++;
    if (z == entry)
      return np_error_set (err, NP_EXIT_USAGE, "--from %s: entry %zu is empty "
                           "(two NUL bytes in a row)", file, lineno);
    if ((t = target_add (targets, n, &cap)) == NULL)
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    *t = (struct target) { entry, NULL, 0 };
  }

  /* Lines: "PATH", or "PATH<tab>FORMAT"; spaces belong to the path. */
  for (char *line = text, *next; !nul && line < end; line = next) {
    char *nl = memchr (line, '\n', (size_t) (end - line)), *tab;
    char *stop = nl ? nl : end;
    struct target *t;

    next = nl ? nl + 1 : end;
    lineno++;
    if (memchr (line, '\0', (size_t) (stop - line)))
      return np_error_set (err, NP_EXIT_USAGE, "--from %s: line %zu holds a NUL byte "
                           "(a list from find -print0? give -0/--null)", file, lineno);
    *stop = '\0';
    /* a list written on Windows: CR LF */
    if (stop > line && stop[-1] == '\r')
      stop[-1] = '\0';
    if (*line == '\0' || *line == '#')
      continue;
    tab = strchr (line, '\t');
    if (tab == line)
      return np_error_set (err, NP_EXIT_USAGE, "--from %s: line %zu: no path before the tab",
                           file, lineno);
    if ((t = target_add (targets, n, &cap)) == NULL)
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    *t = (struct target) { line, NULL, 0 };
    if (tab) {
      *tab = '\0';
      if ((t->format = format_canonical (tab + 1)) == NULL)
        return np_error_set (err, NP_EXIT_USAGE, "--from %s: line %zu: '%s': unknown format "
                             "'%s' after the tab (expected raw, vpc or vhd, vhdx, qcow2, "
                             "vmdk, vdi or qed)", file, lineno, line, tab + 1);
    }
  }
  return 0;
}

int
batch_default_jobs (int direct)
{
  long cpus = sysconf (_SC_NPROCESSORS_ONLN);
  long pages = sysconf (_SC_PHYS_PAGES), page = sysconf (_SC_PAGESIZE);
  long jobs = cpus > 0 ? cpus : 1;

  if (!direct && pages > 0 && page > 0) {
    /* an appliance takes about 1.3 GB; leave room for the host */
    long by_memory = (long) ((double) pages * (double) page / (2.0 * 1024 * 1024 * 1024));
    if (by_memory < jobs)
      jobs = by_memory;
  }
  return jobs < 1 ? 1 : (int) jobs;
}

/* --- progress ------------------------------------------------------- */

struct runner {
  const struct options *o;
  const struct target *targets;
  size_t n, batch_size, n_batches, next_batch;
  pthread_mutex_t lock;
  int worst;
  /* progress */
  int show_progress;
  size_t done;
  struct timespec start;
  /* standard output failed (a closed pipe, as with | head): the run
   * stops; what is not started is counted, not processed */
  int out_broken;
  char out_why[128];
  size_t not_processed;
};

/* Called with the lock held, after a report or before a batch: whether
 * standard output can still take reports.  A pipe whose reader has gone
 * is seen before any work is spent on an image whose report would be
 * lost (poll says POLLERR); a failed write is seen after.  Either stops
 * the run: images not started are not processed, one being written
 * finishes (interrupt_note: the pipeline stops at its next check, never
 * in the middle of a write). */
static int
output_ok (struct runner *r, int after_report)
{
  struct pollfd pfd = { STDOUT_FILENO, 0, 0 };

  if (r->out_broken)
    return 0;
  if (after_report) {
    if (report_flush (stdout, r->out_why, sizeof r->out_why) == 0)
      return 1;
  }
  else if (!report_prints (r->o))
    return 1;                   /* nothing will be written to it */
  else if (poll (&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))
    snprintf (r->out_why, sizeof r->out_why, "standard output closed (broken pipe)");
  else
    return 1;
  r->out_broken = 1;
  interrupt_note (SIGPIPE);
  return 0;
}

static double
elapsed (const struct runner *r)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (double) (now.tv_sec - r->start.tv_sec) + (double) (now.tv_nsec - r->start.tv_nsec) / 1e9;
}

static void
progress_line (const struct runner *r, const char *last)
{
  double t = elapsed (r);
  double eta = r->done ? t / (double) r->done * (double) (r->n - r->done) : 0;

  fprintf (stderr, "\r\033[K[%zu/%zu] elapsed %d:%02d", r->done, r->n, (int) t / 60,
           (int) t % 60);
  if (r->done && r->done < r->n)
    fprintf (stderr, "  ETA %d:%02d", (int) eta / 60, (int) eta % 60);
  if (last) {
    fputs ("  last: ", stderr);
    esc_fputs (last, stderr);
  }
  fflush (stderr);
}

static void
progress_clear (const struct runner *r)
{
  if (r->show_progress)
    fputs ("\r\033[K", stderr);
}

/* --- workers -------------------------------------------------------- */

static void
report_batch (struct runner *r, struct outcome *outs, size_t n)
{
  pthread_mutex_lock (&r->lock);
  for (size_t i = 0; i < n; i++) {
    progress_clear (r);
    report_outcome (stdout, r->o, &outs[i]);
    if (!output_ok (r, 1) && outs[i].status == ST_PATCHED)
      esc_line (stderr, "netvsc-patch: %s: patched, but its report was lost: %s",
                outs[i].target, r->out_why);
    if (outs[i].exit_code > r->worst)
      r->worst = outs[i].exit_code;
    r->done++;
    if (r->show_progress)
      progress_line (r, outs[i].target);
    outcome_free (&outs[i]);
  }
  pthread_mutex_unlock (&r->lock);
}

/* --direct: each image in a child of its own (contain.c), reported
 * like the others. */
static void
run_contained (struct runner *r, const char *const *paths, const char *const *formats,
               size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct contained c;
    contain_image (r->o, paths[i], formats[i], &r->lock, &c);
    pthread_mutex_lock (&r->lock);
    progress_clear (r);
    contain_print (&c);
    if (!output_ok (r, 1) && c.patched)
      esc_line (stderr, "netvsc-patch: %s: patched, but its report was lost: %s",
                paths[i], r->out_why);
    if (c.exit_code > r->worst)
      r->worst = c.exit_code;
    r->done++;
    if (r->show_progress)
      progress_line (r, paths[i]);
    pthread_mutex_unlock (&r->lock);
  }
}

/* A libvirt domain (-d): its disks go through one opening of their
 * own, never a batch of images' (job_run_domain). */
static void
run_domain (struct runner *r, const char *name)
{
  struct contained c;
  struct outcome out;

  if (!r->o->direct) {
    job_run_domain (r->o, name, &out);
    report_batch (r, &out, 1);
    return;
  }
  contain_domain (r->o, name, &r->lock, &c);
  pthread_mutex_lock (&r->lock);
  progress_clear (r);
  contain_print (&c);
  if (!output_ok (r, 1) && c.patched)
    esc_line (stderr, "netvsc-patch: %s: patched, but its report was lost: %s", name,
              r->out_why);
  if (c.exit_code > r->worst)
    r->worst = c.exit_code;
  r->done++;
  if (r->show_progress)
    progress_line (r, name);
  pthread_mutex_unlock (&r->lock);
}

static void *
worker (void *arg)
{
  struct runner *r = arg;
  const char **paths = calloc (r->batch_size, sizeof *paths);
  const char **formats = calloc (r->batch_size, sizeof *formats);
  struct outcome *outs = calloc (r->batch_size, sizeof *outs);

  if (paths == NULL || formats == NULL || outs == NULL)
    goto out;
  for (;;) {
    size_t b, first, count;

    pthread_mutex_lock (&r->lock);
    b = r->next_batch++;
    pthread_mutex_unlock (&r->lock);
    if (b >= r->n_batches)
      break;
    first = b * r->batch_size;
    count = r->n - first < r->batch_size ? r->n - first : r->batch_size;
    pthread_mutex_lock (&r->lock);
    if (!output_ok (r, 0)) {
      r->not_processed += count;
      r->done += count;
      pthread_mutex_unlock (&r->lock);
      continue;
    }
    pthread_mutex_unlock (&r->lock);
    if (interrupt_pending ()) {
      pthread_mutex_lock (&r->lock);
      for (size_t i = 0; i < count; i++) {
        progress_clear (r);
        esc_line (stderr, "netvsc-patch: %s: not processed (interrupted)",
                  r->targets[first + i].path);
        r->done++;
      }
      if (r->worst < NP_EXIT_RUNTIME)
        r->worst = NP_EXIT_RUNTIME;
      pthread_mutex_unlock (&r->lock);
      continue;
    }
    {
      size_t k = 0;
      for (size_t i = 0; i < count; i++) {
        if (r->targets[first + i].domain) {
          run_domain (r, r->targets[first + i].path);
          continue;
        }
        paths[k] = r->targets[first + i].path;
        formats[k++] = r->targets[first + i].format ? r->targets[first + i].format
                                                     : r->o->format;
      }
      count = k;
    }
    if (r->o->direct)
      run_contained (r, paths, formats, count);
    else {
      job_run_batch (r->o, paths, formats, count, outs);
      report_batch (r, outs, count);
    }
  }
 out:
  free (paths);
  free (formats);
  free (outs);
  return NULL;
}

int
batch_run (const struct options *o, const struct target *targets, size_t n)
{
  struct runner r;
  struct np_error err;

  /* only images need them: hive mode never loads the module */
  if (backends_load (&err) == -1) {
    esc_line (stderr, "netvsc-patch: %s", err.msg);
    return err.code;
  }
  const struct disk_backend *be = job_backend (o);
  size_t jobs = (size_t) (o->jobs > 0 ? o->jobs : batch_default_jobs (o->direct));
  size_t max = 1;
  pthread_t *threads;

  memset (&r, 0, sizeof r);
  r.o = o;
  r.targets = targets;
  r.n = n;
  r.show_progress = n > 1 && !o->quiet && !o->json && isatty (2);
  pthread_mutex_init (&r.lock, NULL);
  clock_gettime (CLOCK_MONOTONIC, &r.start);

  /* Batch size: spread the images over the workers, no more per batch
   * than the appliance can attach; --isolate: one image per appliance. */
  if (be->open_batch && !o->isolate && be->max_disks)
    max = (size_t) be->max_disks ();
  if (jobs > n)
    jobs = n;
  r.batch_size = (n + jobs - 1) / jobs;
  if (r.batch_size > max)
    r.batch_size = max;
  if (r.batch_size < 1)
    r.batch_size = 1;
  r.n_batches = (n + r.batch_size - 1) / r.batch_size;
  if (jobs > r.n_batches)
    jobs = r.n_batches;
  if (o->verbose && !o->quiet)
    fprintf (stderr, "netvsc-patch: %zu image%s, %zu batch%s of up to %zu, %zu worker%s\n",
             n, n == 1 ? "" : "s", r.n_batches, r.n_batches == 1 ? "" : "es", r.batch_size,
             jobs, jobs == 1 ? "" : "s");
  if (r.show_progress)
    progress_line (&r, NULL);

  threads = calloc (jobs, sizeof *threads);
  if (jobs <= 1 || threads == NULL)
    worker (&r);
  else {
    size_t started = 0;
    for (; started < jobs; started++)
      if (pthread_create (&threads[started], NULL, worker, &r) != 0)
        break;
    if (started == 0)
      worker (&r);
    for (size_t i = 0; i < started; i++)
      pthread_join (threads[i], NULL);
  }
  free (threads);
  if (r.show_progress) {
    progress_clear (&r);
    fprintf (stderr, "netvsc-patch: %zu image%s in %.1f s\n", n, n == 1 ? "" : "s",
             elapsed (&r));
  }
  if (r.out_broken) {
    fprintf (stderr, "netvsc-patch: %s; stopping: %zu image%s not processed\n", r.out_why,
             r.not_processed, r.not_processed == 1 ? "" : "s");
    if (r.worst < NP_EXIT_RUNTIME)
      r.worst = NP_EXIT_RUNTIME;
  }
  pthread_mutex_destroy (&r.lock);
  return r.worst;
}
