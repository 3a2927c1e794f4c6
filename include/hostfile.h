/* netvsc-patch: replacing a file on the host without ever leaving it
 * half-written: write beside it, flush, rename over it, flush the
 * directory; and what makes that safe with other runs and other
 * programs around: a lock on the target held from reading to the
 * rename, the target's owner, mode, extended attributes and ACLs kept,
 * links followed, stale temporary files of killed runs removed. */
#ifndef NETVSC_PATCH_HOSTFILE_H
#define NETVSC_PATCH_HOSTFILE_H

#include <sys/stat.h>

#include "status.h"

/* Create an empty temporary file in the directory of TARGET (so the
 * final rename stays within one filesystem), named
 * .BASENAME.netvsc-patch.XXXXXX.  *TMP is malloc'd.  Messages name
 * TARGET. */
int hostfile_temp_beside (const char *target, char **tmp, struct np_error *err);

/* fsync TMP, give it the permissions of LIKE (if it exists), rename it
 * over TARGET and fsync the directory. */
int hostfile_replace (const char *tmp, const char *target, const char *like,
                      struct np_error *err);

/* The same, with the metadata copied from the open file LIKE_FD (-1:
 * none): owner and group, every extended attribute (ACLs and
 * security.selinux included), then the mode.  With KEEP_OWNER, an owner
 * that cannot be given fails (a file replaced stays its owner's);
 * without, the new file is then ours and readable by us only (-o).
 * With LK, the lock moves to the new file before it takes the name:
 * whoever waits for TARGET waits until LK is released.  Messages name
 * NAME, the file the user gave, never TMP. */
struct hostfile_lock;
int hostfile_replace_locked (const char *tmp, const char *target, int like_fd,
                             int keep_owner, const char *name, struct hostfile_lock *lk,
                             struct np_error *err);
/* hostfile_replace_locked without KEEP_OWNER and LK. */
int hostfile_replace_as (const char *tmp, const char *target, int like_fd,
                         const char *name, struct np_error *err);

/* Copy SRC to a new file DST (which must not exist), flushed.  DST gets
 * the mode of LIKE (SRC's if NULL) without execute or special bits, and
 * its owner where that can be set; where the group cannot be kept, DST
 * is readable by its owner only.  A copy is never more readable than
 * the original. */
int hostfile_copy_like (const char *src, const char *dst, const struct stat *like,
                        struct np_error *err);
int hostfile_copy (const char *src, const char *dst, struct np_error *err);

/* The whole of the open file FD (a regular file, a pipe, stdin), NUL
 * bytes included: *BUF is malloc'd, with a NUL after its *LEN bytes.
 * Returns 0, or -1 with errno (nothing allocated). */
int hostfile_read_fd (int fd, char **buf, size_t *len);

/* The same for the host file PATH; an error names PATH. */
int hostfile_read_all (const char *path, char **buf, size_t *len, struct np_error *err);

/* Byte-compare two files: 0 same, 1 different, -1 error. */
int hostfile_same (const char *a, const char *b);

/* An exclusive lock on a file being rewritten (flock(2) on the file
 * itself, so flock(1) and other runs of this tool see it). */
struct hostfile_lock {
  int fd;                       /* the locked file, read-only; -1: none */
  char *real;                   /* its resolved path (symlinks followed) */
  struct stat st;               /* what fd is */
};

/* Resolve NAME, open it and take the lock, waiting up to TIMEOUT
 * seconds (0: do not wait), and make sure the name still points at the
 * locked file (a run that held the lock may have renamed a new file
 * over it).  The wait ends early when STOP (if given) returns nonzero
 * (a SIGINT/SIGTERM).  Messages name NAME and, when it can be found,
 * the holder. */
int hostfile_lock (const char *name, int timeout, int (*stop) (void),
                   struct hostfile_lock *lk, struct np_error *err);
void hostfile_unlock (struct hostfile_lock *lk);

/* Under LK: remove the temporary files a killed run left beside the
 * locked file (.BASE.netvsc-patch.XXXXXX, and those of BASE.LOG1 and
 * BASE.LOG2).  Their writer held the lock, which we now hold, so it is
 * gone.  Returns how many were removed; each is named on stderr if
 * VERBOSE. */
int hostfile_clean_stale (const struct hostfile_lock *lk, int verbose);

/* Who holds a lock on the file (dev, ino), from /proc: writes "COMM,
 * pid N" to BUF ("pid N" if it is netvsc-patch; "COMM, pid N, started
 * by netvsc-patch" for its qemu-nbd or qemu), and returns 1 if the
 * holder is netvsc-patch or its child, 0 if another program, -1 if
 * unknown (BUF empty). */
int hostfile_lock_holder (dev_t dev, ino_t ino, char *buf, size_t len);

/* -o OUTPUT for INPUT: refuse (NP_EXIT_USAGE) an OUTPUT that is INPUT
 * (same file through any link), one of its transaction logs
 * (INPUT.LOG1/.LOG2 in any case, or the same file), or an existing
 * name that is not a regular file (FIFO, device, directory, socket,
 * symlink).  Nothing is opened: a FIFO would block. */
int hostfile_check_output (const char *input, const char *output, struct np_error *err);

/* A private staging directory DIR/netvsc-patch.XXXXXX (OUT, LEN bytes)
 * holding a file .lock that stays locked (*LOCK_FD) for the life of the
 * run: a later run tells a killed run's directory from a live one's by
 * that lock, whatever PID namespace either ran in. */
int hostfile_stage_dir (const char *dir, char *out, size_t len, int *lock_fd,
                        struct np_error *err);

/* Remove staging directory DIR and what it holds, its .lock last, and
 * close LOCK_FD (if not -1) once it is gone. */
void hostfile_stage_remove (const char *dir, int lock_fd);

/* Remove, from DIR, the staging directories of runs that are gone
 * (ours: owned by us, mode 0700; .lock, or .lock.new, free; or neither
 * there and the directory unchanged for a minute: a run killed while
 * removing it).  Returns how many; each is named on stderr if VERBOSE. */
int hostfile_clean_stale_stages (const char *dir, int verbose);

/* Where temporary files go: $TMPDIR if set (and short enough for our
 * names beneath it), else /tmp.  The one such rule for every module. */
const char *hostfile_tmpdir (void);

#endif
