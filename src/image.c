/* netvsc-patch: the libguestfs session for one image. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "hostfile.h"

extern char **environ;

#define TMP_NAME ".netvsc-patch.tmp"

static int
guest_error (struct image *im, struct np_error *err, int code, const char *what)
{
  const char *e = guestfs_last_error (im->g);
  return np_error_set (err, code, "%s: %s: %s", im->path, what,
                       e ? e : "unknown libguestfs error");
}

/* --- preflight ---------------------------------------------------- */

/* Run qemu-img with ARGV, capturing its stderr into BUF. */
static int
run_capture (char *const argv[], char *buf, size_t len)
{
  int pipefd[2], status;
  posix_spawn_file_actions_t fa;
  pid_t pid;
  size_t used = 0;
  ssize_t n;

  buf[0] = '\0';
  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return -1;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, pipefd[1], 2);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  if (posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ) != 0) {
    posix_spawn_file_actions_destroy (&fa);
    close (pipefd[0]);
    close (pipefd[1]);
    snprintf (buf, len, "cannot run %s", argv[0]);
    return -1;
  }
  posix_spawn_file_actions_destroy (&fa);
  close (pipefd[1]);
  while ((n = read (pipefd[0], buf + used, len - 1 - used)) > 0)
    used += (size_t) n;
  buf[used] = '\0';
  close (pipefd[0]);
  if (waitpid (pid, &status, 0) == -1)
    return -1;
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

int
image_preflight (const char *path, const char *format, int readonly,
                 struct np_error *err)
{
  char out[4096];
  char *argv[] = {
    "qemu-img", "info", "-f", (char *) format, "--output=json",
    (char *) path, NULL
  };
  const char *msg;

  (void) readonly;
  if (run_capture (argv, out, sizeof out) == 0)
    return 0;
  /* qemu-img prints "qemu-img: Could not open 'X': reason". */
  np_one_line (out);
  msg = strstr (out, "qemu-img: ");
  msg = msg ? msg + 10 : out;
  /* Drop "Could not open 'PATH': ": we name the file ourselves. */
  while (strncmp (msg, "Could not open '", 16) == 0 && strstr (msg, "': "))
    msg = strstr (msg, "': ") + 3;
  if (strstr (out, "Failed to get") && strstr (out, "lock"))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: the image is in use by another process (is the VM running?): %s",
                         path, msg);
  if (strstr (out, "backing") || strstr (out, "parent"))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: cannot open the parent of this differencing image: %s",
                         path, msg);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu cannot open the image as %s: %s",
                       path, format, *msg ? msg : "qemu-img info failed");
}

/* --- launch --------------------------------------------------------- */

static int
configure (struct image *im, int force_tcg, struct np_error *err)
{
  im->g = guestfs_create ();
  if (im->g == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create a libguestfs handle",
                         im->path);
  /* Errors are reported once, as one line, by our caller. */
  guestfs_set_error_handler (im->g, NULL, NULL);
  if (im->verbose > 1) {
    guestfs_set_verbose (im->g, 1);
    guestfs_set_trace (im->g, 1);
  }
  if (force_tcg) {
    char *settings[] = { "force_tcg", NULL };
    if (guestfs_set_backend_settings (im->g, settings) == -1)
      return guest_error (im, err, NP_EXIT_RUNTIME, "cannot set force_tcg");
  }
  if (guestfs_add_drive_opts (im->g, im->path,
                              GUESTFS_ADD_DRIVE_OPTS_FORMAT, im->format,
                              GUESTFS_ADD_DRIVE_OPTS_READONLY, im->readonly,
                              -1) == -1)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot add the image");
  return 0;
}

int
image_open (struct image *im, const char *path, const char *format,
            int readonly, int verbose, int quiet, struct np_error *err)
{
  char first_error[512];
  const char *e;

  memset (im, 0, sizeof *im);
  im->path = path;
  im->format = format;
  im->readonly = readonly;
  im->verbose = verbose;
  im->quiet = quiet;

  if (configure (im, 0, err) == -1)
    goto fail;
  if (guestfs_launch (im->g) == 0)
    return 0;

  e = guestfs_last_error (im->g);
  snprintf (first_error, sizeof first_error, "%s", e ? e : "unknown error");
  np_one_line (first_error);
  if (getenv ("LIBGUESTFS_BACKEND_SETTINGS") != NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot launch the libguestfs appliance: %s",
                  path, first_error);
    goto fail;
  }
  /* Some hosts expose /dev/kvm but qemu aborts under it; software
   * emulation is slow but works. */
  if (!quiet)
    fprintf (stderr, "netvsc-patch: warning: %s: the appliance failed to start with "
             "hardware acceleration; retrying with LIBGUESTFS_BACKEND_SETTINGS=force_tcg "
             "(software emulation, slower)\n", path);
  guestfs_close (im->g);
  im->g = NULL;
  if (configure (im, 1, err) == -1)
    goto fail;
  if (guestfs_launch (im->g) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot launch the libguestfs appliance "
                 "(also with force_tcg)");
    goto fail;
  }
  return 0;

 fail:
  image_abort (im);
  return -1;
}

/* --- the Windows volume --------------------------------------------- */

/* If DEV holds a Windows SYSTEM hive, return its guest path (it is left
 * unmounted either way). */
static char *
windows_hive_on (struct image *im, const char *dev)
{
  char *path = NULL;

  if (guestfs_mount_ro (im->g, dev, "/") == -1)
    return NULL;
  path = guestfs_case_sensitive_path (im->g, "/windows/system32/config/system");
  if (path && guestfs_is_file (im->g, path) != 1) {
    free (path);
    path = NULL;
  }
  guestfs_umount_all (im->g);
  return path;
}

static void
free_strings (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

int
image_find_windows (struct image *im, const char *want_root, struct np_error *err)
{
  char **fs = guestfs_list_filesystems (im->g);
  char found[512] = "", seen[512] = "";
  size_t n_found = 0, n_fs = 0;
  char *path = NULL;
  int r = -1;

  if (fs == NULL)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot list filesystems");

  for (size_t i = 0; fs[i] && fs[i + 1]; i += 2) {
    const char *dev = fs[i], *type = fs[i + 1];
    char *p;

    if (strcmp (type, "unknown") == 0 || strcmp (type, "swap") == 0)
      continue;
    n_fs++;
    snprintf (seen + strlen (seen), sizeof seen - strlen (seen), "%s%s (%s)",
              n_fs > 1 ? ", " : "", dev, type);
    if (strcmp (type, "ntfs") != 0)
      continue;
    if (want_root && strcmp (want_root, dev) != 0)
      continue;
    p = windows_hive_on (im, dev);
    if (p == NULL)
      continue;
    n_found++;
    snprintf (found + strlen (found), sizeof found - strlen (found), "%s%s",
              n_found > 1 ? ", " : "", dev);
    if (n_found == 1) {
      im->root = strdup (dev);
      path = p;
    }
    else
      free (p);
  }

  if (n_found == 0) {
    if (want_root)
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: %s is not a Windows system volume (filesystems: %s)",
                    im->path, want_root, n_fs ? seen : "none");
    else if (n_fs == 0)
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: no filesystems found (no partitions, or not a disk image?)", im->path);
    else
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: no Windows system volume (no NTFS filesystem holds "
                    "\\Windows\\System32\\config\\SYSTEM; filesystems: %s)", im->path, seen);
    goto out;
  }
  if (n_found > 1) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: %zu Windows installations (%s): choose one with --root DEVICE",
                  im->path, n_found, found);
    goto out;
  }

  if (guestfs_mount_ro (im->g, im->root, "/") == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot mount the Windows volume");
    goto out;
  }
  im->system_path = path;
  path = NULL;
  im->config_dir = strdup (im->system_path);
  *strrchr (im->config_dir, '/') = '\0';
  r = 0;

 out:
  free (path);
  free_strings (fs);
  return r;
}

void
image_describe_logs (struct image *im, char *buf, size_t len)
{
  const char *names[] = { "SYSTEM.LOG1", "SYSTEM.LOG2" };
  int have[2] = { 0, 0 };

  for (int i = 0; i < 2; i++) {
    char *p, *q;
    if (asprintf (&p, "%s/%s", im->config_dir, names[i]) == -1)
      continue;
    q = guestfs_case_sensitive_path (im->g, p);
    have[i] = q && guestfs_is_file (im->g, q) == 1;
    free (q);
    free (p);
  }
  if (have[0] && have[1])
    snprintf (buf, len, "SYSTEM.LOG1 and SYSTEM.LOG2 exist beside it");
  else if (have[0] || have[1])
    snprintf (buf, len, "only %s exists beside it", have[0] ? names[0] : names[1]);
  else
    snprintf (buf, len, "no SYSTEM.LOG1/SYSTEM.LOG2 beside it");
}

int
image_fetch_hive (struct image *im, const char *local, struct np_error *err)
{
  if (guestfs_download (im->g, im->system_path, local) == -1)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot read the SYSTEM hive");
  return 0;
}

/* --- write-back ----------------------------------------------------- */

static int
remount_rw (struct image *im, struct np_error *err)
{
  const char *e;

  if (im->mounted_rw)
    return 0;
  if (guestfs_umount_all (im->g) == -1)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot unmount");
  if (guestfs_mount (im->g, im->root, "/") == 0) {
    im->mounted_rw = 1;
    return 0;
  }
  /* ntfs-3g refuses a read-write mount of a hibernated volume or one
   * left unclean by Fast Startup: Windows would overwrite our change
   * (or we its saved state) at the next resume. */
  e = guestfs_last_error (im->g);
  if (e && (strcasestr (e, "hibernat") || strcasestr (e, "unclean") ||
            strcasestr (e, "unsafe state") || strcasestr (e, "Fast Restart") ||
            strcasestr (e, "Metadata kept in Windows cache")))
    return np_error_set (err, NP_EXIT_UNSAFE,
                         "%s: refused: Windows on %s is hibernated or was stopped with Fast "
                         "Startup; shut the guest down fully (shutdown /s /t 0, or turn Fast "
                         "Startup off) and try again", im->path, im->root);
  return guest_error (im, err, NP_EXIT_RUNTIME, "cannot mount the Windows volume read-write");
}

/* Give the new file the original's NTFS security descriptor and
 * attributes (ntfs-3g exposes them as extended attributes). */
static void
copy_ntfs_metadata (struct image *im, const char *from, const char *to)
{
  const char *names[] = { "system.ntfs_acl", "system.ntfs_attrib" };

  for (size_t i = 0; i < 2; i++) {
    size_t size;
    char *val = guestfs_getxattr (im->g, from, names[i], &size);
    if (val == NULL) {
      if (im->verbose)
        fprintf (stderr, "netvsc-patch: %s: cannot read %s of %s: %s\n", im->path,
                 names[i], from, guestfs_last_error (im->g));
      continue;
    }
    if (guestfs_setxattr (im->g, names[i], val, (int) size, to) == -1 && im->verbose)
      fprintf (stderr, "netvsc-patch: %s: cannot set %s on %s: %s\n", im->path,
               names[i], to, guestfs_last_error (im->g));
    free (val);
  }
}

int
image_put_hive (struct image *im, const char *local, const char *scratch,
                struct np_error *err)
{
  char *tmp = NULL;
  int same, r = -1;

  if (remount_rw (im, err) == -1)
    return -1;
  if (asprintf (&tmp, "%s/SYSTEM%s", im->config_dir, TMP_NAME) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");

  if (guestfs_upload (im->g, local, tmp) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot upload the patched hive");
    goto fail;
  }
  if (guestfs_sync (im->g) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "sync failed");
    goto fail;
  }
  /* Read back what the guest filesystem holds before trusting it. */
  unlink (scratch);
  if (guestfs_download (im->g, tmp, scratch) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot read back the uploaded hive");
    goto fail;
  }
  same = hostfile_same (local, scratch);
  unlink (scratch);
  if (same != 0) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: the uploaded hive does not read back identically; original left in place",
                  im->path);
    goto fail;
  }
  copy_ntfs_metadata (im, im->system_path, tmp);
  if (guestfs_rename (im->g, tmp, im->system_path) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot rename the patched hive over SYSTEM");
    goto fail;
  }
  if (guestfs_sync (im->g) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "sync failed");
    goto out;
  }
  r = 0;
  goto out;

 fail:
  /* Leave no stray file in the guest; the original is untouched. */
  guestfs_rm_f (im->g, tmp);
 out:
  free (tmp);
  return r;
}

/* --- teardown ------------------------------------------------------- */

static void
image_free (struct image *im)
{
  free (im->root);
  free (im->system_path);
  free (im->config_dir);
  im->root = im->system_path = im->config_dir = NULL;
}

int
image_close (struct image *im, struct np_error *err)
{
  int r = 0;

  if (im->g == NULL)
    return 0;
  if (guestfs_umount_all (im->g) == -1)
    r = guest_error (im, err, NP_EXIT_RUNTIME, "cannot unmount the Windows volume");
  else if (guestfs_shutdown (im->g) == -1)
    r = guest_error (im, err, NP_EXIT_RUNTIME,
                     "the appliance did not shut down cleanly; writes may not be on disk");
  guestfs_close (im->g);
  im->g = NULL;
  image_free (im);
  return r;
}

void
image_abort (struct image *im)
{
  if (im->g)
    guestfs_close (im->g);
  im->g = NULL;
  image_free (im);
}
