/* netvsc-patch: --defer, a boot-time action for images whose adapter
 * does not exist yet.
 *
 * A template built on another hypervisor, or generalized with sysprep,
 * has no Hyper-V adapter in its SYSTEM hive: Windows creates the class
 * instance when it first boots on Hyper-V.  --defer registers a machine
 * startup script in the image's local Group Policy object; at every
 * boot, as SYSTEM and before anyone logs on, it sets the requested
 * values on each matching adapter that does not hold them yet and
 * restarts those adapters so the driver reads them.  Why Group Policy
 * and not SetupComplete.cmd, a service or a scheduled task: see the
 * man page (DEFERRED PATCHING).
 *
 * This module only computes bytes: the script from its template, and
 * the edits of gpt.ini and scripts.ini.  job.c reads and writes the
 * files through the disk backend. */
#ifndef NETVSC_PATCH_DEFER_H
#define NETVSC_PATCH_DEFER_H

#include <stddef.h>
#include <stdint.h>

#include "match.h"

/* Paths on the Windows volume (disk_backend read_file/write_file). */
#define DEFER_GPO_DIR      "/Windows/System32/GroupPolicy"
#define DEFER_GPT_INI      DEFER_GPO_DIR "/gpt.ini"
#define DEFER_SCRIPTS_INI  DEFER_GPO_DIR "/Machine/Scripts/scripts.ini"
#define DEFER_STARTUP_DIR  DEFER_GPO_DIR "/Machine/Scripts/Startup"
#define DEFER_CMD          DEFER_STARTUP_DIR "/netvsc-patch.cmd"
#define DEFER_PS1          DEFER_STARTUP_DIR "/netvsc-patch.ps1"
/* Where the script logs, in the guest. */
#define DEFER_LOG_WIN      "%SystemRoot%\\Temp\\netvsc-patch.log"

/* One value the script sets on each matching adapter. */
struct defer_value {
  const char *name;      /* the keyword, e.g. "ReceiveBufferSize" */
  int is_dword;          /* REG_DWORD; otherwise REG_SZ */
  uint32_t dword;        /* when is_dword */
  const char *text;      /* when !is_dword: UTF-8 */
  int check;             /* validate against the adapter's Ndi\params
                            at boot (0 with --force) */
};

struct defer_spec {
  struct match_spec match;            /* the same match as offline */
  const struct defer_value *values;
  size_t n;
};

/* The PowerShell script (UTF-8 with a BOM, CRLF) and its cmd wrapper,
 * from the templates in src/.  Return 0, or -1 (out of memory) with
 * errno.  *OUT is malloc'd, NUL-terminated, *LEN bytes. */
int defer_render_script (const struct defer_spec *s, char **out, size_t *len);
int defer_render_cmd (char **out, size_t *len);

/* The new content of scripts.ini (UTF-16LE with a BOM, CRLF, as the
 * Group Policy editor writes it) given the old one (NULL, 0 when the
 * file does not exist).  INSTALL registers our startup script, once;
 * !INSTALL takes it out and renumbers the others.  Other entries and
 * sections are kept.  *CHANGED says whether the file must be written.
 * Returns 0, or -1 with errno (EINVAL: the old file cannot be parsed;
 * it is then left alone). */
int defer_scripts_ini_edit (const char *old, size_t old_len, int install,
                            char **out, size_t *out_len, int *changed);
/* The new content of gpt.ini: the scripts client-side extension listed
 * in gPCMachineExtensionNames, and the machine half of Version
 * incremented when SCRIPTS_CHANGED or the extension had to be added,
 * so that Windows processes the policy again at the next boot.  The
 * extension is never taken out (other scripts may use it).  Same
 * conventions as above. */
int defer_gpt_ini_edit (const char *old, size_t old_len, int scripts_changed,
                        char **out, size_t *out_len, int *changed);
/* Is our startup script registered in this scripts.ini? */
int defer_scripts_ini_has (const char *buf, size_t len);

#endif
