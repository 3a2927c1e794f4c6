/* netvsc-patch: safe file replacement on the host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "hostfile.h"

#define TEMP_TAG ".netvsc-patch."

static char *
dir_of (const char *path)
{
  char *copy = strdup (path), *d;

  if (copy == NULL)
    return NULL;
  d = strdup (dirname (copy));
  free (copy);
  return d;
}

int
hostfile_temp_beside (const char *target, char **tmp, struct np_error *err)
{
  char *dir = dir_of (target), *base, *copy = strdup (target);
  int fd;

  *tmp = NULL;
  if (dir == NULL || copy == NULL)
    goto oom;
  base = basename (copy);
  if (asprintf (tmp, "%s/.%s" TEMP_TAG "XXXXXX", dir, base) == -1) {
    *tmp = NULL;
    goto oom;
  }
  fd = mkstemp (*tmp);
  if (fd == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create a temporary file in %s: %s",
                  target, dir, strerror (errno));
    free (*tmp);
    *tmp = NULL;
    free (dir);
    free (copy);
    return -1;
  }
  close (fd);
  free (dir);
  free (copy);
  return 0;

 oom:
  free (dir);
  free (copy);
  return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
}

static int
fsync_path (const char *path, int flags)
{
  int fd = open (path, flags | O_CLOEXEC);
  int r;

  if (fd == -1)
    return -1;
  r = fsync (fd);
  if (close (fd) == -1)
    r = -1;
  return r;
}

/* Give TO the owner, extended attributes and mode of FROM.  Extended
 * attributes are copied all (system.posix_acl_access is the ACL,
 * security.selinux the SELinux label, user.* whatever tools keep
 * there); one that cannot be set fails the write, rather than drop it
 * silently, unless TO already carries the same value: the kernel gives
 * every file of a filesystem mounted with context= that label and
 * refuses to set it, and TO, in FROM's directory, already has it.
 * The mode comes last: fchown clears set-id bits, and an ACL's mask is
 * the mode's group bits. */
static int
copy_metadata (int from, int to, int strict_owner, const char *name, struct np_error *err)
{
  struct stat st;
  char *names = NULL, *val = NULL, *cur = NULL;
  ssize_t len;
  mode_t mode;

  if (fstat (from, &st) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", name, strerror (errno));
  mode = st.st_mode & 07777;
  if (fchown (to, st.st_uid, st.st_gid) == -1) {
    /* Replacing a file: it must stay its owner's.  A new file made
     * after another's (-o): ours, and then readable by us only. */
    if (strict_owner)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot give the new file the owner and "
                           "group of the old one (%u:%u): %s; nothing was written", name,
                           (unsigned) st.st_uid, (unsigned) st.st_gid, strerror (errno));
    mode &= 0700;
  }
  len = flistxattr (from, NULL, 0);
  if (len == -1 && errno != ENOTSUP)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot list extended attributes: %s",
                         name, strerror (errno));
  if (len > 0) {
    names = malloc ((size_t) len);
    if (names == NULL || (len = flistxattr (from, names, (size_t) len)) == -1)
      goto list_failed;
    for (char *n = names; n < names + len; n += strlen (n) + 1) {
      ssize_t vlen = fgetxattr (from, n, NULL, 0), clen;
      if (vlen == -1)
        goto get_failed;
      free (val);
      val = malloc ((size_t) vlen + 1);
      if (val == NULL || (vlen = fgetxattr (from, n, val, (size_t) vlen)) == -1)
        goto get_failed;
      if (fsetxattr (to, n, val, (size_t) vlen, 0) == 0)
        continue;
      int e = errno;
      free (cur);
      cur = malloc ((size_t) vlen + 1);
      if (cur && (clen = fgetxattr (to, n, cur, (size_t) vlen + 1)) == vlen &&
          memcmp (cur, val, (size_t) vlen) == 0)
        continue;
      np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot copy extended attribute %s to the new "
                    "file: %s; nothing was written", name, n, strerror (e));
      goto fail;
    }
  }
  if (fchmod (to, mode) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot set permissions: %s", name,
                  strerror (errno));
    goto fail;
  }
  free (names);
  free (val);
  free (cur);
  return 0;

 list_failed:
  np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot list extended attributes: %s", name,
                strerror (errno ? errno : ENOMEM));
  goto fail;
 get_failed:
  np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read its extended attributes: %s", name,
                strerror (errno ? errno : ENOMEM));
 fail:
  free (names);
  free (val);
  free (cur);
  return -1;
}

int
hostfile_replace_as (const char *tmp, const char *target, int like_fd, const char *name,
                     struct np_error *err)
{
  return hostfile_replace_locked (tmp, target, like_fd, 0, name, NULL, err);
}

int
hostfile_replace_locked (const char *tmp, const char *target, int like_fd, int keep_owner,
                         const char *name, struct hostfile_lock *lk, struct np_error *err)
{
  char *dir;
  int fd = open (tmp, O_RDONLY | O_CLOEXEC);

  if (fd == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot reopen the new file: %s", name,
                         strerror (errno));
  if (like_fd >= 0 && copy_metadata (like_fd, fd, keep_owner, name, err) == -1)
    goto fail;
  if (fsync (fd) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot flush to disk: %s", name,
                  strerror (errno));
    goto fail;
  }
  /* The new file is locked before it gets the name, so that a run
   * waiting for the name finds it locked until we are done. */
  if (lk && flock (fd, LOCK_EX | LOCK_NB) == -1 && errno == EBADF) {
    /* NFS: a write lock needs a descriptor open for writing */
    int rw = open (tmp, O_RDWR | O_CLOEXEC);
    if (rw >= 0) {
      close (fd);
      fd = rw;
    }
  }
  if (lk && flock (fd, LOCK_EX | LOCK_NB) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot lock the new file: %s", name,
                  strerror (errno));
    goto fail;
  }
  if (rename (tmp, target) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot replace: %s", name, strerror (errno));
    goto fail;
  }
  if (lk) {
    close (lk->fd);
    lk->fd = fd;
    fstat (fd, &lk->st);
  }
  else
    close (fd);
  dir = dir_of (target);
  if (dir == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  if (fsync_path (dir, O_RDONLY | O_DIRECTORY) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot flush directory %s: %s",
                  name, dir, strerror (errno));
    free (dir);
    return -1;
  }
  free (dir);
  return 0;

 fail:
  close (fd);
  return -1;
}

int
hostfile_replace (const char *tmp, const char *target, const char *like,
                  struct np_error *err)
{
  int like_fd = like ? open (like, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) : -1;
  int r = hostfile_replace_locked (tmp, target, like_fd, 1, target, NULL, err);

  if (like_fd >= 0)
    close (like_fd);
  return r;
}

int
hostfile_copy_like (const char *src, const char *dst, const struct stat *like,
                    struct np_error *err)
{
  char buf[65536];
  int in = -1, out = -1;
  ssize_t n;
  struct stat sst;
  mode_t mode;

  in = open (src, O_RDONLY | O_CLOEXEC);
  if (in == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s", src, strerror (errno));
  if (like == NULL) {
    if (fstat (in, &sst) == -1) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", src, strerror (errno));
      close (in);
      return -1;
    }
    like = &sst;
  }
  /* Created owner-only, then opened up to the original's mode at most:
   * a SYSTEM hive holds the boot key. */
  out = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create: %s", dst, strerror (errno));
    close (in);
    return -1;
  }
  mode = like->st_mode & 0666;
  if (fchown (out, like->st_uid, like->st_gid) == -1) {
    /* Not root: the copy is ours, in our group; only we may read it. */
    mode &= 0600;
  }
  if (fchmod (out, mode) == -1)
    goto write_error;
  while ((n = read (in, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write (out, buf + off, (size_t) (n - off));
      if (w == -1)
        goto write_error;
      off += w;
    }
  }
  if (n == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read: %s", src, strerror (errno));
    goto fail;
  }
  if (fsync (out) == -1 || close (out) == -1) {
    out = -1;
    goto write_error;
  }
  close (in);
  return 0;

 write_error:
  np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write: %s", dst, strerror (errno));
 fail:
  if (out != -1)
    close (out);
  close (in);
  unlink (dst);
  return -1;
}

int
hostfile_copy (const char *src, const char *dst, struct np_error *err)
{
  return hostfile_copy_like (src, dst, NULL, err);
}

int
hostfile_read_fd (int fd, char **buf, size_t *len)
{
  struct stat st;
  /* a regular file's size is a hint (it may grow or shrink meanwhile) */
  size_t cap = fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && st.st_size > 0
    ? (size_t) st.st_size + 1 : 4096, used = 0;
  char *b = malloc (cap), *grown;

  if (b == NULL)
    return -1;
  for (;;) {
    ssize_t n;
    if (used == cap - 1) {
      if ((grown = realloc (b, cap * 2)) == NULL) {
        free (b);
        errno = ENOMEM;
        return -1;
      }
      b = grown;
      cap *= 2;
    }
    n = read (fd, b + used, cap - 1 - used);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1) {
      int e = errno;
      free (b);
      errno = e;
      return -1;
    }
    if (n == 0)
      break;
    used += (size_t) n;
  }
  b[used] = '\0';
  *buf = b;
  *len = used;
  return 0;
}

int
hostfile_read_all (const char *path, char **buf, size_t *len, struct np_error *err)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC), e;

  *buf = NULL;
  *len = 0;
  if (fd == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", path, strerror (errno));
  if (hostfile_read_fd (fd, buf, len) == -1) {
    e = errno;
    close (fd);
    if (e == ENOMEM)
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", path, strerror (e));
  }
  close (fd);
  return 0;
}

int
hostfile_same (const char *a, const char *b)
{
  FILE *fa = fopen (a, "rb"), *fb = fopen (b, "rb");
  char ba[65536], bb[65536];
  int r = 0;

  if (fa == NULL || fb == NULL) {
    r = -1;
    goto out;
  }
  for (;;) {
    size_t na = fread (ba, 1, sizeof ba, fa), nb = fread (bb, 1, sizeof bb, fb);
    if (na != nb || memcmp (ba, bb, na) != 0) {
      r = 1;
      break;
    }
    if (na == 0) {
      r = (ferror (fa) || ferror (fb)) ? -1 : 0;
      break;
    }
  }
 out:
  if (fa)
    fclose (fa);
  if (fb)
    fclose (fb);
  return r;
}

/* "COMM" of process PID (empty if gone), and its parent's pid. */
static void
proc_info (long pid, char *comm, size_t len, long *ppid)
{
  char path[64], buf[512];
  FILE *f;

  comm[0] = '\0';
  *ppid = 0;
  snprintf (path, sizeof path, "/proc/%ld/comm", pid);
  if ((f = fopen (path, "re")) != NULL) {
    if (fgets (comm, (int) len, f))
      comm[strcspn (comm, "\n")] = '\0';
    fclose (f);
  }
  snprintf (path, sizeof path, "/proc/%ld/stat", pid);
  if ((f = fopen (path, "re")) != NULL) {
    if (fgets (buf, sizeof buf, f)) {
      char *p = strrchr (buf, ')');
      if (p)
        sscanf (p + 1, " %*c %ld", ppid);
    }
    fclose (f);
  }
}

/* Does process PID hold a lock on (DEV, INO) through one of its open
 * files?  /proc/PID/fdinfo lists the locks of each descriptor; this is
 * how an OFD lock's holder is found (/proc/locks shows them as -1). */
static int
proc_holds (long pid, dev_t dev, ino_t ino)
{
  char path[64], fdpath[320], line[256];
  DIR *d;
  struct dirent *e;
  int found = 0;

  snprintf (path, sizeof path, "/proc/%ld/fd", pid);
  if ((d = opendir (path)) == NULL)
    return 0;
  while (!found && (e = readdir (d)) != NULL) {
    struct stat st;
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    snprintf (fdpath, sizeof fdpath, "/proc/%ld/fd/%s", pid, e->d_name);
    if (stat (fdpath, &st) == -1 || st.st_dev != dev || st.st_ino != ino)
      continue;
    snprintf (fdpath, sizeof fdpath, "/proc/%ld/fdinfo/%s", pid, e->d_name);
    if ((f = fopen (fdpath, "re")) == NULL)
      continue;
    while (fgets (line, sizeof line, f))
      if (strncmp (line, "lock:", 5) == 0)
        found = 1;
    fclose (f);
  }
  closedir (d);
  return found;
}

int
hostfile_lock_holder (dev_t dev, ino_t ino, char *buf, size_t len)
{
  FILE *f = fopen ("/proc/locks", "re");
  char line[256], comm[64], pcomm[64];
  long pid = 0, ppid;

  buf[0] = '\0';
  /* flock and POSIX locks name their holder in /proc/locks ("->" lines
   * are waiters, not holders). */
  while (f && pid <= 0 && fgets (line, sizeof line, f)) {
    long p;
    unsigned maj, min;
    unsigned long i;
    if (strstr (line, "->") == NULL &&
        sscanf (line, "%*d: %*s %*s %*s %ld %x:%x:%lu", &p, &maj, &min, &i) == 4 &&
        maj == major (dev) && min == minor (dev) && i == (unsigned long) ino && p > 0)
      pid = p;
  }
  if (f)
    fclose (f);
  if (pid <= 0) {
    /* OFD locks (qemu's): look through the processes' descriptors. */
    DIR *d = opendir ("/proc");
    struct dirent *e;
    while (d && pid <= 0 && (e = readdir (d)) != NULL) {
      char *end;
      long p = strtol (e->d_name, &end, 10);
      if (*end == '\0' && p > 0 && p != (long) getpid () && proc_holds (p, dev, ino))
        pid = p;
    }
    if (d)
      closedir (d);
  }
  if (pid <= 0)
    return -1;
  proc_info (pid, comm, sizeof comm, &ppid);
  if (strcmp (comm, "netvsc-patch") == 0) {
    snprintf (buf, len, "pid %ld", pid);
    return 1;
  }
  proc_info (ppid, pcomm, sizeof pcomm, &ppid);
  if (strcmp (pcomm, "netvsc-patch") == 0) {
    snprintf (buf, len, "%s, pid %ld, started by netvsc-patch", comm, pid);
    return 1;
  }
  if (comm[0])
    snprintf (buf, len, "%s, pid %ld", comm, pid);
  else
    snprintf (buf, len, "pid %ld", pid);
  return 0;
}

static double
seconds_since (const struct timespec *t0)
{
  struct timespec t;

  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) (t.tv_sec - t0->tv_sec) + (double) (t.tv_nsec - t0->tv_nsec) / 1e9;
}

int
hostfile_lock (const char *name, int timeout, int (*stop) (void), struct hostfile_lock *lk,
               struct np_error *err)
{
  struct timespec t0;

  lk->fd = -1;
  lk->real = NULL;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct stat now;
    int tried_rw = 0;

    if ((lk->real = realpath (name, NULL)) == NULL)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", name, strerror (errno));
    /* O_NONBLOCK: should the name have become a FIFO, do not hang. */
    lk->fd = open (lk->real, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (lk->fd == -1) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", name, strerror (errno));
      goto fail;
    }
    if (fstat (lk->fd, &lk->st) == -1 || !S_ISREG (lk->st.st_mode)) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: not a regular file", name);
      goto fail;
    }
    while (flock (lk->fd, LOCK_EX | LOCK_NB) == -1) {
      char holder[128];
      int ours, rw;
      /* NFS turns flock into a POSIX write lock, which needs a file
       * open for writing; elsewhere read-only, so that watchers see no
       * write where none is made. */
      if (errno == EBADF && !tried_rw++ &&
          (rw = open (lk->real, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) >= 0) {
        dup3 (rw, lk->fd, O_CLOEXEC);
        close (rw);
        if (fstat (lk->fd, &lk->st) == 0 && S_ISREG (lk->st.st_mode))
          continue;
        errno = EBADF;
      }
      if (errno != EWOULDBLOCK && errno != EINTR) {
        np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot lock: %s", name, strerror (errno));
        goto fail;
      }
      if (stop && stop ()) {
        np_error_set (err, NP_EXIT_RUNTIME, "%s: interrupted while waiting for another "
                      "process's lock; nothing was written", name);
        goto fail;
      }
      if (seconds_since (&t0) >= timeout) {
        ours = hostfile_lock_holder (lk->st.st_dev, lk->st.st_ino, holder, sizeof holder);
        np_error_set (err, NP_EXIT_RUNTIME, "%s: locked by %s%s%s%s; waited %d s "
                      "(--lock-timeout): %s; nothing was written", name,
                      ours == 1 ? "another run of netvsc-patch" : "another process",
                      holder[0] ? " (" : "", holder, holder[0] ? ")" : "", timeout,
                      ours == 1 ? "it is writing this file, try again when it is done"
                      : "try again when it has finished with the file");
        goto fail;
      }
      nanosleep (&(struct timespec) { 0, 20 * 1000 * 1000 }, NULL);
    }
    /* A run that held the lock may have renamed a new file over the
     * name: then we locked a file nobody will read again. */
    if (stat (lk->real, &now) == 0 && now.st_dev == lk->st.st_dev &&
        now.st_ino == lk->st.st_ino) {
      lk->st = now;
      return 0;
    }
    close (lk->fd);
    lk->fd = -1;
    free (lk->real);
    lk->real = NULL;
  }

 fail:
  hostfile_unlock (lk);
  return -1;
}

void
hostfile_unlock (struct hostfile_lock *lk)
{
  if (lk->fd >= 0)
    close (lk->fd);
  lk->fd = -1;
  free (lk->real);
  lk->real = NULL;
}

/* NAME is BASE's temporary file: "." BASE TEMP_TAG and six characters
 * (mkstemp's). */
static int
is_temp_of (const char *name, const char *base)
{
  size_t bl = strlen (base), tl = strlen (TEMP_TAG);

  return name[0] == '.' && strncmp (name + 1, base, bl) == 0 &&
    strncmp (name + 1 + bl, TEMP_TAG, tl) == 0 && strlen (name + 1 + bl + tl) == 6;
}

int
hostfile_clean_stale (const struct hostfile_lock *lk, int verbose)
{
  char *dir = dir_of (lk->real), *copy = strdup (lk->real), *base, logs[2][NAME_MAX + 8];
  DIR *d;
  struct dirent *e;
  int n = 0, dfd;

  if (dir == NULL || copy == NULL || (d = opendir (dir)) == NULL) {
    free (dir);
    free (copy);
    return 0;
  }
  base = basename (copy);
  snprintf (logs[0], sizeof logs[0], "%s.LOG1", base);
  snprintf (logs[1], sizeof logs[1], "%s.LOG2", base);
  dfd = dirfd (d);
  while ((e = readdir (d)) != NULL) {
    struct stat st;
    if (!(is_temp_of (e->d_name, base) || is_temp_of (e->d_name, logs[0]) ||
          is_temp_of (e->d_name, logs[1])) ||
        fstatat (dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG (st.st_mode))
      continue;
    if (unlinkat (dfd, e->d_name, 0) == 0) {
      n++;
      if (verbose)
        fprintf (stderr, "netvsc-patch: %s: removed %s/%s, left by a run that was killed\n",
                 lk->real, dir, e->d_name);
    }
  }
  closedir (d);
  free (dir);
  free (copy);
  return n;
}

static const char *
file_kind (mode_t m)
{
  return S_ISFIFO (m) ? "a FIFO" : S_ISCHR (m) ? "a character device"
    : S_ISBLK (m) ? "a block device" : S_ISDIR (m) ? "a directory"
    : S_ISSOCK (m) ? "a socket" : S_ISLNK (m) ? "a symbolic link" : "not a regular file";
}

/* PATH with its directory resolved (the last component may not exist);
 * malloc'd, NULL if the directory cannot be resolved. */
static char *
resolve_dir (const char *path)
{
  char *dir = dir_of (path), *copy = strdup (path), *rdir = NULL, *r = NULL;

  if (dir && copy && (rdir = realpath (dir, NULL)) != NULL &&
      asprintf (&r, "%s/%s", strcmp (rdir, "/") == 0 ? "" : rdir, basename (copy)) == -1)
    r = NULL;
  free (dir);
  free (copy);
  free (rdir);
  return r;
}

int
hostfile_check_output (const char *input, const char *output, struct np_error *err)
{
  struct stat ost, ist, lst;
  char *out_r = resolve_dir (output), *in_r = realpath (input, NULL);
  const char *ins[2] = { input, in_r };
  int r = 0;

  if (lstat (output, &ost) == 0) {
    if (!S_ISREG (ost.st_mode)) {
      r = np_error_set (err, NP_EXIT_USAGE, "%s: -o names %s, not a regular file: refused, "
                        "nothing written", output, file_kind (ost.st_mode));
      goto out;
    }
    if (stat (input, &ist) == 0 && ist.st_dev == ost.st_dev && ist.st_ino == ost.st_ino) {
      r = np_error_set (err, NP_EXIT_USAGE, "%s: -o names the input hive %s itself: refused "
                        "(leave out -o to patch it in place)", output, input);
      goto out;
    }
  }
  for (int i = 0; i < 2; i++)
    for (int k = 0; k <= 2; k++) {      /* FILE.LOG (XP), FILE.LOG1, FILE.LOG2 */
      char log[PATH_MAX + 8];
      char *log_r;
      if (ins[i] == NULL)
        continue;
      if (k == 0)
        snprintf (log, sizeof log, "%s.LOG", ins[i]);
      else
        snprintf (log, sizeof log, "%s.LOG%d", ins[i], k);
      log_r = resolve_dir (log);
      /* by name in any case (a case-insensitive filesystem, or Windows'
       * spelling), or the same file by another name */
      if ((out_r && log_r && strcasecmp (out_r, log_r) == 0) ||
          (S_ISREG (ost.st_mode) && stat (log, &lst) == 0 && lst.st_dev == ost.st_dev &&
           lst.st_ino == ost.st_ino) || strcasecmp (output, log) == 0) {
        free (log_r);
        r = np_error_set (err, NP_EXIT_USAGE, "%s: -o names a transaction log of the input "
                          "hive %s: refused, nothing written", output, input);
        goto out;
      }
      free (log_r);
    }
 out:
  free (out_r);
  free (in_r);
  return r;
}

#define STAGE_PREFIX "netvsc-patch."
#define STAGE_LOCK ".lock"

int
hostfile_stage_dir (const char *dir, char *out, size_t len, int *lock_fd,
                    struct np_error *err)
{
  char lock[PATH_MAX + 16];

  *lock_fd = -1;
  if ((size_t) snprintf (out, len, "%s/" STAGE_PREFIX "XXXXXX", dir) >= len ||
      mkdtemp (out) == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create a temporary directory: %s",
                         dir, strerror (errno ? errno : ENAMETOOLONG));
  /* The lock is taken under another name and only then renamed to
   * STAGE_LOCK: another run's hostfile_clean_stale_stages must never
   * see a STAGE_LOCK that is not yet locked (it would take it as a
   * killed run's and remove the directory under us). */
  char made[PATH_MAX + 16];
  snprintf (lock, sizeof lock, "%s/" STAGE_LOCK, out);
  snprintf (made, sizeof made, "%s/" STAGE_LOCK ".new", out);
  *lock_fd = open (made, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (*lock_fd == -1 || flock (*lock_fd, LOCK_EX | LOCK_NB) == -1 ||
      rename (made, lock) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot lock a temporary directory: %s", dir,
                  strerror (errno));
    if (*lock_fd >= 0)
      close (*lock_fd);
    *lock_fd = -1;
    unlink (made);
    unlink (lock);
    rmdir (out);
    return -1;
  }
  return 0;
}

static int
remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb; (void) flag; (void) ftw;
  return remove (path);
}

void
hostfile_stage_remove (const char *dir, int lock_fd)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  char path[PATH_MAX];

  /* Everything but the lock first, then the lock, then the directory:
   * a run killed on the way leaves a directory the next run still
   * recognises (hostfile_clean_stale_stages). */
  while (d && (e = readdir (d)) != NULL) {
    struct stat st;
    if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0 ||
        strcmp (e->d_name, STAGE_LOCK) == 0 ||
        (size_t) snprintf (path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
      continue;
    if (lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
      nftw (path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    else
      unlink (path);
  }
  if (d)
    closedir (d);
  if ((size_t) snprintf (path, sizeof path, "%s/" STAGE_LOCK, dir) < sizeof path)
    unlink (path);
  rmdir (dir);
  if (lock_fd >= 0)
    close (lock_fd);
}

/* A directory of ours that holds no lock has not been made yet (its
 * lock is made a moment after the directory), or its run was killed
 * while removing it; one unchanged for a minute is the latter. */
#define STAGE_UNLOCKED_AGE 60

int
hostfile_clean_stale_stages (const char *dir, int verbose)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return 0;
  while ((e = readdir (d)) != NULL) {
    char path[PATH_MAX], lock[PATH_MAX + 16];
    struct stat st;
    int fd = -1, gone;

    if (strncmp (e->d_name, STAGE_PREFIX, strlen (STAGE_PREFIX)) != 0 ||
        strlen (e->d_name) != strlen (STAGE_PREFIX) + 6 ||
        (size_t) snprintf (path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
      continue;
    /* Only directories we made (a shared /tmp holds others' too), and
     * only when their run is gone: its lock is free, or it has none and
     * has not changed for a while. */
    if (lstat (path, &st) == -1 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid () ||
        (st.st_mode & 07777) != 0700)
      continue;
    snprintf (lock, sizeof lock, "%s/" STAGE_LOCK, path);
    fd = open (lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd == -1) {
      /* killed between taking the lock and naming it */
      snprintf (lock, sizeof lock, "%s/" STAGE_LOCK ".new", path);
      fd = open (lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    }
    if (fd != -1)
      gone = flock (fd, LOCK_EX | LOCK_NB) == 0;
    else
      gone = errno == ENOENT && time (NULL) - st.st_mtime > STAGE_UNLOCKED_AGE;
    if (gone) {
      /* the lock is held until the directory is gone */
      hostfile_stage_remove (path, fd);
      fd = -1;
      if (lstat (path, &st) == -1) {
        n++;
        if (verbose)
          fprintf (stderr, "netvsc-patch: removed %s, left by a run that was killed\n", path);
      }
    }
    if (fd != -1)
      close (fd);
  }
  closedir (d);
  return n;
}

const char *
hostfile_tmpdir (void)
{
  const char *t = getenv ("TMPDIR");

  /* room for our names under it, as mkstemp and mkdtemp need */
  return t && *t && strlen (t) < PATH_MAX - 64 ? t : "/tmp";
}
