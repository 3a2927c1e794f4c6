/* netvsc-patch: qemu-img preflight, shared by both backends. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk.h"
#include "hostfile.h"

extern char **environ;

/* Read all of memory file FD from its start into a new string. */
static char *
slurp (int fd)
{
  char *buf = NULL;
  size_t used = 0, cap = 0;
  ssize_t n;

  if (lseek (fd, 0, SEEK_SET) == -1)
    return NULL;
  do {
    if (cap - used < 4096) {
      char *nb = realloc (buf, cap + 65536);
      if (nb == NULL) {
        free (buf);
        return NULL;
      }
      buf = nb;
      cap += 65536;
    }
    n = read (fd, buf + used, cap - used - 1);
    if (n > 0)
      used += (size_t) n;
  } while (n > 0 && used < (1u << 24));
  if (n < 0) {
    free (buf);
    return NULL;
  }
  buf[used] = '\0';
  return buf;
}

/* Run ARGV (qemu-img info --output=json ...): its standard output
 * parsed as JSON into *JSON (NULL when it printed none it could parse),
 * its stderr (qemu's reason, for messages only) into MSG.  Both go to
 * memory files, read after it exits, so neither can fill a pipe.
 * Returns 0 when it exited 0, else -1. */
static int
run_json (char *const argv[], json_t **json, char *msg, size_t len)
{
  int ofd = memfd_create ("qemu-img-out", MFD_CLOEXEC);
  int efd = memfd_create ("qemu-img-err", MFD_CLOEXEC);
  posix_spawn_file_actions_t fa;
  int status, ok = 0;
  char *text;
  pid_t pid;

  *json = NULL;
  msg[0] = '\0';
  if (ofd == -1 || efd == -1) {
    snprintf (msg, len, "cannot run %s: %s", argv[0], strerror (errno));
    goto out;
  }
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, ofd, 1);
  posix_spawn_file_actions_adddup2 (&fa, efd, 2);
  if (posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ) != 0) {
    posix_spawn_file_actions_destroy (&fa);
    snprintf (msg, len, "cannot run %s", argv[0]);
    goto out;
  }
  posix_spawn_file_actions_destroy (&fa);
  while (waitpid (pid, &status, 0) == -1)
    if (errno != EINTR)
      goto out;
  ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
  if ((text = slurp (efd)) != NULL) {
    snprintf (msg, len, "%s", text);
    free (text);
  }
  if ((text = slurp (ofd)) != NULL) {
    *json = json_loads (text, 0, NULL);
    free (text);
  }
 out:
  if (ofd != -1)
    close (ofd);
  if (efd != -1)
    close (efd);
  return ok ? 0 : -1;
}

/* One image's info object: does it say FORMAT (NULL: any)? */
static int
info_ok (const json_t *info, const char *format)
{
  const char *f = json_string_value (json_object_get (info, "format"));
  return json_is_object (info) && f != NULL && (format == NULL || strcmp (f, format) == 0);
}

/* The parent's name as qemu resolved it, from an info object. */
static const char *
info_backing (const json_t *info)
{
  const char *b = json_string_value (json_object_get (info, "full-backing-filename"));
  return b ? b : json_string_value (json_object_get (info, "backing-filename"));
}

/* qemu's vpc driver does not know differencing VHDs (disk type 4): it
 * reads the child alone, parent blocks as zeros, and would let us patch
 * a hive pieced together from half a disk.  Spot them in the footer
 * (the last 512 bytes, copied at offset 0 in dynamic disks) and name the
 * parent from the dynamic header's "parent unicode name" (UTF-16BE). */
static int
vhd_differencing (const char *path, char *parent, size_t len)
{
  unsigned char footer[512], header[1024];
  int fd = open (path, O_RDONLY | O_CLOEXEC), diff = 0;
  off_t size;

  parent[0] = '\0';
  if (fd == -1)
    return 0;
  size = lseek (fd, 0, SEEK_END);
  if (size >= 512 && pread (fd, footer, 512, size - 512) == 512 &&
      memcmp (footer, "conectix", 8) == 0)
    ;
  else if (pread (fd, footer, 512, 0) != 512 || memcmp (footer, "conectix", 8) != 0) {
    close (fd);
    return 0;
  }
  diff = footer[60] == 0 && footer[61] == 0 && footer[62] == 0 && footer[63] == 4;
  if (diff) {
    uint64_t off = 0;
    for (int i = 16; i < 24; i++)
      off = off << 8 | footer[i];
    if (off < (uint64_t) size && pread (fd, header, sizeof header, (off_t) off) == (ssize_t) sizeof header &&
        memcmp (header, "cxsparse", 8) == 0) {
      size_t j = 0;
      for (size_t i = 64; i + 1 < 64 + 512 && j + 1 < len; i += 2) {
        unsigned c = (unsigned) header[i] << 8 | header[i + 1];
        if (c == 0)
          break;
        parent[j++] = c < 0x80 ? (char) c : '?';
      }
      parent[j] = '\0';
    }
  }
  close (fd);
  return diff;
}

int
disk_preflight (const char *path, const char *format, struct np_error *err)
{
  return disk_preflight_spec (path, format, NULL, err);
}

/* qemu's message, for the reader: one line, without "qemu-img: " and
 * the nested "Could not open 'PATH': " (we name the file ourselves). */
static const char *
qemu_reason (char *out)
{
  const char *msg;

  np_one_line (out);
  msg = strncmp (out, "qemu-img: ", 10) == 0 ? out + 10 : out;
  while (strncmp (msg, "Could not open '", 16) == 0 && strstr (msg, "': "))
    msg = strstr (msg, "': ") + 3;
  return msg;
}

/* A remote image qemu on this host opens itself (http, https, ssh:
 * uri.h), opened once by qemu-img first: a wrong address or a server
 * without byte ranges is then one line naming the URI, not the
 * appliance's "cannot create an overlay".  Never for NBD: a qemu-nbd
 * without -t serves one client, which this would use up. */
int
disk_preflight_remote (const char *uri, const char *format, struct np_error *err)
{
  char out[4096];
  char *argv[] = {
    "qemu-img", "info", "-U", "-f", (char *) format, "--output=json", (char *) uri, NULL
  };
  json_t *info = NULL;
  int r = run_json (argv, &info, out, sizeof out);

  json_decref (info);
  if (r == 0)
    return 0;
  const char *why = qemu_reason (out);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open the image: %s%s", uri, why,
                       strstr (why, "Unknown protocol") ? " (qemu's curl and ssh drivers are "
                       "in Debian's qemu-block-extra)" : "");
}

static int preflight_one (const char *path, const char *format, const char *spec,
                          struct np_error *err);

int
disk_preflight_spec (const char *path, const char *format, char *const *specs,
                     struct np_error *err)
{
  if (specs == NULL)
    return preflight_one (path, format, NULL, err);
  for (size_t i = 0; specs[i]; i++)
    if (preflight_one (path, format, specs[i], err) == -1)
      return -1;
  return 0;
}

static int
preflight_one (const char *path, const char *format, const char *spec,
               struct np_error *err)
{
  char out[4096], parent[4096] = "", arg[4096], other[4096];
  /* "./" keeps qemu from reading a relative name like "nbd:x" as a
   * protocol. */
  snprintf (arg, sizeof arg, "%s%s", path[0] == '/' ? "" : "./", path);
  /* --backing-chain: a differencing image is only usable with its
   * parents, so open them too.  "-U" (force-share) takes no lock: the
   * same run without it tells a lock from anything else. */
  char *argv[] = {
    "qemu-img", "info", "--backing-chain", "-f", (char *) format, "--output=json",
    arg, NULL
  };
  char *argv_shared[] = {
    "qemu-img", "info", "-U", "--backing-chain", "-f", (char *) format, "--output=json",
    arg, NULL
  };
  /* A checked chain: every layer's file and format given (layers.h). */
  char *argv_spec[] = { "qemu-img", "info", "--output=json", (char *) spec, NULL };
  char *argv_spec_shared[] = { "qemu-img", "info", "-U", "--output=json", (char *) spec, NULL };
  /* The image alone, without its parents, unlocked. */
  char *argv_top[] = {
    "qemu-img", "info", "-U", "-f", (char *) format, "--output=json", arg, NULL
  };
  json_t *info = NULL;
  const char *msg, *name;
  int r;

  if (strcmp (format, "vpc") == 0 && vhd_differencing (path, parent, sizeof parent))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: a differencing VHD (parent: %s): qemu cannot read VHD parents, so "
                         "it cannot be patched safely; merge it into its parent first (e.g. "
                         "Merge-VHD) and patch the result", path, parent[0] ? parent : "unknown");
  if (run_json (spec ? argv_spec : argv, &info, out, sizeof out) == 0) {
    /* one object per layer (an array with --backing-chain), the top
     * one in the format asked */
    const json_t *top = json_is_array (info) ? json_array_get (info, 0) : info;
    r = info_ok (top, spec ? NULL : format);
    for (size_t i = 0; r && json_is_array (info) && i < json_array_size (info); i++)
      r = info_ok (json_array_get (info, i), NULL);
    json_decref (info);
    if (r)
      return 0;
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-img info did not describe the image "
                         "as %s (unreadable JSON)", path, spec ? "asked" : format);
  }
  json_decref (info);

  msg = qemu_reason (out);

  /* Locked: the same info with force-share opens it. */
  r = run_json (spec ? argv_spec_shared : argv_shared, &info, other, sizeof other);
  json_decref (info);
  if (r == 0) {
    /* qemu's OFD locks: say who holds them when /proc tells, and when
     * it is another run of this tool rather than a VM. */
    struct stat st;
    char holder[128] = "";
    int ours = stat (path, &st) == 0 ?
      hostfile_lock_holder (st.st_dev, st.st_ino, holder, sizeof holder) : -1;
    if (ours == 1)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: the image is in use by another run of "
                           "netvsc-patch (%s): try again when it is done", path, holder);
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: the image is in use by another process (is the VM running?)"
                         "%s%s%s: %s", path, holder[0] ? " (" : "", holder,
                         holder[0] ? ")" : "", msg);
  }
  /* a layer of a checked chain (layers.h): qemu names it in json */
  if (spec)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu cannot open the image or a file "
                         "it names: %s", path, *msg ? msg : "qemu-img info failed");
  /* The image opens alone and names a parent: the chain is what failed. */
  r = run_json (argv_top, &info, other, sizeof other);
  name = r == 0 && json_is_object (info) ? info_backing (info) : NULL;
  if (name)
    snprintf (parent, sizeof parent, "%s", name);
  json_decref (info);
  if (name)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: cannot open the parent of this differencing image (%s): %s",
                         path, parent, msg);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu cannot open the image as %s: %s",
                       path, format, *msg ? msg : "qemu-img info failed");
}
