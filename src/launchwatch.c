/* netvsc-patch: watching an appliance launch (see launchwatch.h).
 *
 * The watch cannot ask libguestfs anything while guestfs_launch runs
 * (the handle's lock is held by the launching thread, and the
 * hypervisor's pid is only known after the launch), so it finds the
 * hypervisor itself: libguestfs's direct backend forks it from the
 * launching thread and, with guestfs_set_pgroup, makes it the leader of
 * its own process group.  Among that thread's children
 * (/proc/self/task/TID/children) it is the group leader that is not a
 * copy of this program (libguestfs's recovery process is one).  Killing
 * that group makes guestfs_launch fail at once; libguestfs then reaps
 * qemu and the recovery process and removes its temporary directories,
 * as after any failed launch.  Other children (supermin building the
 * appliance, qemu's feature probes) stay in our group and are left
 * alone; the bound does not run while no hypervisor is there. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "interrupt.h"
#include "launchwatch.h"

/* How often the watch looks: a signal ends a launch within this. */
#define TICK_MS 200

struct launch_watch {
  guestfs_h *g;
  pid_t tid;                    /* the launching thread */
  int bound;                    /* seconds; 0: only signals end the launch */
  int print;                    /* print the messages it swallows (-vv) */
  int was_verbose;
  int eh;                       /* event handle, -1 if none */
  char self_exe[PATH_MAX];
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int stop;
  struct timespec last;         /* last progress */
  double longest;               /* the longest wait for it, seconds */
  enum launch_end end;
};

/* --- the process-wide verdict ---------------------------------------- */

/* Whether KVM works is a property of the host, not of an image: once a
 * launch has shown that it does not, every later launch of the run, in
 * any worker thread, goes straight to TCG instead of paying the bound
 * (or a failed start) again.  Atomics: workers read and set it freely. */
static atomic_int kvm_unusable;
static atomic_int fallbacks;

int
launch_kvm_unusable (void)
{
  return atomic_load (&kvm_unusable);
}

void
launch_set_kvm_unusable (void)
{
  atomic_store (&kvm_unusable, 1);
}

int
launch_first_fallback (void)
{
  return atomic_fetch_add (&fallbacks, 1) == 0;
}

/* --- does the launch use KVM? ---------------------------------------- */

int
launch_may_use_kvm (guestfs_h *g)
{
  char *backend = guestfs_get_backend (g);
  char *tcg;
  int direct = backend && strcmp (backend, "direct") == 0;
  int fd, r;

  free (backend);
  /* libvirt's qemu is not our child: nothing this watch could end */
  if (!direct)
    return 0;
  /* libguestfs's own test: it passes accel=kvm:tcg when it can open this */
  fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd == -1)
    return 0;
  close (fd);
  tcg = guestfs_get_backend_setting (g, "force_tcg");  /* NULL: not set */
  r = tcg == NULL || strcmp (tcg, "0") == 0 || strcasecmp (tcg, "false") == 0 ||
      strcasecmp (tcg, "no") == 0 || strcasecmp (tcg, "off") == 0;
  free (tcg);
  return r;
}

/* --- the watch --------------------------------------------------------- */

static double
seconds_since (const struct timespec *t)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (double) (now.tv_sec - t->tv_sec) + (double) (now.tv_nsec - t->tv_nsec) / 1e9;
}

static void
on_event (guestfs_h *g, void *opaque, uint64_t event, int eh, int flags,
          const char *buf, size_t len, const uint64_t *array, size_t array_len)
{
  struct launch_watch *w = opaque;
  double waited;

  (void) g; (void) eh; (void) flags; (void) array; (void) array_len;
  pthread_mutex_lock (&w->lock);
  waited = seconds_since (&w->last);
  if (waited > w->longest)
    w->longest = waited;
  clock_gettime (CLOCK_MONOTONIC, &w->last);
  pthread_mutex_unlock (&w->lock);
  /* Registering this callback stops libguestfs printing these itself. */
  if (w->print && buf && len) {
    if (event == GUESTFS_EVENT_LIBRARY)
      fprintf (stderr, "libguestfs: %.*s\n", (int) len, buf);
    else if (event == GUESTFS_EVENT_APPLIANCE)
      fwrite (buf, 1, len, stderr);
  }
}

/* If PID is a process group leader, fill its executable; 0, else -1. */
static int
group_leader_exe (pid_t pid, char *exe, size_t len, pid_t *ppid)
{
  char path[64], stat[1024];
  const char *p;
  FILE *fp;
  ssize_t n;
  int pgrp = 0, parent = 0;

  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  if ((fp = fopen (path, "re")) == NULL)
    return -1;
  n = (ssize_t) fread (stat, 1, sizeof stat - 1, fp);
  fclose (fp);
  if (n <= 0)
    return -1;
  stat[n] = '\0';
  /* "pid (comm) state ppid pgrp ...": comm may hold anything */
  if ((p = strrchr (stat, ')')) == NULL ||
      sscanf (p + 1, " %*c %d %d", &parent, &pgrp) != 2 || pgrp != pid)
    return -1;
  *ppid = parent;
  snprintf (path, sizeof path, "/proc/%d/exe", (int) pid);
  n = readlink (path, exe, len - 1);
  if (n <= 0)
    return -1;
  exe[n] = '\0';
  return 0;
}

/* The hypervisor the launching thread started, or 0.  *MANY is set if
 * it could not be told apart from other threads' (kernels without
 * /proc/PID/task/TID/children: then every child of the process is
 * looked at). */
static pid_t
find_hypervisor (const struct launch_watch *w, int *many)
{
  char path[64], exe[PATH_MAX];
  pid_t found = 0, ppid;
  FILE *fp;
  int pid, n = 0;

  *many = 0;
  snprintf (path, sizeof path, "/proc/self/task/%d/children", (int) w->tid);
  if ((fp = fopen (path, "re")) != NULL) {
    while (fscanf (fp, "%d", &pid) == 1)
      if (group_leader_exe (pid, exe, sizeof exe, &ppid) == 0 &&
          strcmp (exe, w->self_exe) != 0) {
        found = pid;
        n++;
      }
    fclose (fp);
  }
  else {
    DIR *dir = opendir ("/proc");
    struct dirent *d;
    while (dir && (d = readdir (dir)) != NULL)
      if ((pid = atoi (d->d_name)) > 0 &&
          group_leader_exe (pid, exe, sizeof exe, &ppid) == 0 && ppid == getpid () &&
          strcmp (exe, w->self_exe) != 0) {
        found = pid;
        n++;
      }
    if (dir)
      closedir (dir);
  }
  *many = n > 1;
  return found;
}

static void *
watch_thread (void *arg)
{
  struct launch_watch *w = arg;

  pthread_mutex_lock (&w->lock);
  while (!w->stop) {
    struct timespec until;
    pid_t hv;
    int many;

    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_nsec += TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait (&w->cond, &w->lock, &until);
    if (w->stop || w->end != LAUNCH_RAN)
      continue;
    pthread_mutex_unlock (&w->lock);
    hv = find_hypervisor (w, &many);
    pthread_mutex_lock (&w->lock);
    if (hv == 0) {
      /* building the appliance, or qemu not started yet: no clock */
      clock_gettime (CLOCK_MONOTONIC, &w->last);
      continue;
    }
    if (interrupt_pending ())
      w->end = LAUNCH_INTERRUPTED;
    else if (w->bound > 0 && !many && seconds_since (&w->last) >= w->bound)
      w->end = LAUNCH_HUNG;
    if (w->end != LAUNCH_RAN)
      kill (-hv, SIGKILL);      /* its group: a wrapper script and its qemu too */
  }
  pthread_mutex_unlock (&w->lock);
  return NULL;
}

struct launch_watch *
launch_watch_start (guestfs_h *g, int bound, int verbose)
{
  struct launch_watch *w = calloc (1, sizeof *w);
  pthread_condattr_t attr;
  sigset_t block, old;
  ssize_t n;
  int r;

  if (w == NULL)
    return NULL;
  n = readlink ("/proc/self/exe", w->self_exe, sizeof w->self_exe - 1);
  if (n <= 0) {
    free (w);
    return NULL;
  }
  w->self_exe[n] = '\0';
  w->g = g;
  w->tid = (pid_t) syscall (SYS_gettid);
  w->bound = bound > 0 ? bound : 0;
  w->print = verbose;
  w->eh = -1;
  w->end = LAUNCH_RAN;
  clock_gettime (CLOCK_MONOTONIC, &w->last);
  pthread_mutex_init (&w->lock, NULL);
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&w->cond, &attr);
  pthread_condattr_destroy (&attr);

  /* The hypervisor must lead its own process group to be found. */
  guestfs_set_pgroup (g, 1);
  if (w->bound > 0) {
    /* Verbose, the console carries the BIOS banner and every kernel boot
     * message: progress is seen every few seconds, not only once the
     * appliance's init runs (up to 45 s of silence under a loaded TCG). */
    w->eh = guestfs_set_event_callback (g, on_event, GUESTFS_EVENT_APPLIANCE |
                                        GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_PROGRESS |
                                        GUESTFS_EVENT_LAUNCH_DONE, 0, w);
    if (w->eh == -1)
      w->bound = 0;             /* progress unseen: never call it hung */
    else {
      w->was_verbose = guestfs_get_verbose (g);
      guestfs_set_verbose (g, 1);
    }
  }

  /* Signals stay with the threads that act on them. */
  sigemptyset (&block);
  sigaddset (&block, SIGINT);
  sigaddset (&block, SIGTERM);
  sigaddset (&block, SIGHUP);
  pthread_sigmask (SIG_BLOCK, &block, &old);
  r = pthread_create (&w->thread, NULL, watch_thread, w);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (r != 0) {
    if (w->eh != -1) {
      guestfs_delete_event_callback (g, w->eh);
      guestfs_set_verbose (g, w->was_verbose);
    }
    pthread_cond_destroy (&w->cond);
    pthread_mutex_destroy (&w->lock);
    free (w);
    return NULL;
  }
  return w;
}

enum launch_end
launch_watch_stop (struct launch_watch *w, double *longest)
{
  enum launch_end end;

  pthread_mutex_lock (&w->lock);
  w->stop = 1;
  pthread_cond_signal (&w->cond);
  pthread_mutex_unlock (&w->lock);
  pthread_join (w->thread, NULL);
  end = w->end;
  if (longest)
    *longest = w->eh != -1 ? w->longest : -1;
  if (w->eh != -1) {
    guestfs_delete_event_callback (w->g, w->eh);
    guestfs_set_verbose (w->g, w->was_verbose);
  }
  pthread_cond_destroy (&w->cond);
  pthread_mutex_destroy (&w->lock);
  free (w);
  return end;
}
