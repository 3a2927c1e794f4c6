/* netvsc-patch: qemu-img preflight, shared by both backends. */
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk.h"
#include "hostfile.h"

extern char **environ;

/* Run ARGV with stdout discarded, capturing its stderr into BUF. */
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
  while (used < len - 1 && (n = read (pipefd[0], buf + used, len - 1 - used)) > 0)
    used += (size_t) n;
  buf[used] = '\0';
  close (pipefd[0]);
  if (waitpid (pid, &status, 0) == -1)
    return -1;
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

/* Does qemu's message say it could not open a file other than PATH
 * (the parent of a differencing image)? */
static int
names_other_file (const char *msg, const char *path, char *named, size_t len)
{
  const char *p = strstr (msg, "Could not open '"), *end;
  char *real = realpath (path, NULL);
  int other = 0;

  if (p && real) {
    p += 16;
    end = strchr (p, '\'');
    if (end && (size_t) (end - p) < len) {
      memcpy (named, p, (size_t) (end - p));
      named[end - p] = '\0';
      char *named_real = realpath (named, NULL);
      other = strcmp (named, path) != 0 && strcmp (named, real) != 0 &&
        !(strncmp (named, "./", 2) == 0 && strcmp (named + 2, path) == 0) &&
        (named_real == NULL || strcmp (named_real, real) != 0);
      free (named_real);
    }
  }
  free (real);
  return other;
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
  char out[4096], parent[4096] = "", arg[4096];
  /* "./" keeps qemu from reading a relative name like "nbd:x" as a
   * protocol. */
  snprintf (arg, sizeof arg, "%s%s", path[0] == '/' ? "" : "./", path);
  char *argv[] = {
    "qemu-img", "info", "--backing-chain", "-f", (char *) format, "--output=json",
    arg, NULL
  };
  /* A checked chain: every layer's file and format given (layers.h). */
  char *argv_spec[] = { "qemu-img", "info", "--output=json", (char *) spec, NULL };
  const char *msg;

  /* --backing-chain: a differencing image is only usable with its
   * parents, so open them too. */
  if (strcmp (format, "vpc") == 0 && vhd_differencing (path, parent, sizeof parent))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: a differencing VHD (parent: %s): qemu cannot read VHD parents, so "
                         "it cannot be patched safely; merge it into its parent first (e.g. "
                         "Merge-VHD) and patch the result", path, parent[0] ? parent : "unknown");
  if (run_capture (spec ? argv_spec : argv, out, sizeof out) == 0)
    return 0;
  /* qemu-img prints "qemu-img: Could not open 'X': reason". */
  np_one_line (out);
  msg = strstr (out, "qemu-img: ");
  msg = msg ? msg + 10 : out;
  /* Drop "Could not open 'PATH': " (nested): we name the file ourselves. */
  while (strncmp (msg, "Could not open '", 16) == 0 && strstr (msg, "': "))
    msg = strstr (msg, "': ") + 3;
  if (strstr (out, "Failed to get") && strstr (out, "lock")) {
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
  if (names_other_file (out, path, parent, sizeof parent))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: cannot open the parent of this differencing image (%s): %s",
                         path, parent, msg);
  if (strstr (out, "backing") || strstr (out, "parent"))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: cannot open the parent of this differencing image: %s",
                         path, msg);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu cannot open the image as %s: %s",
                       path, format, *msg ? msg : "qemu-img info failed");
}
