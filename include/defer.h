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
/* --defer=setup: the same two files beside SetupComplete.cmd, which
 * Windows Setup runs once, at the end of setup of a generalized image. */
#define DEFER_SETUP_DIR    "/Windows/Setup/Scripts"
#define DEFER_SETUP_CMD    DEFER_SETUP_DIR "/netvsc-patch.cmd"
#define DEFER_SETUP_PS1    DEFER_SETUP_DIR "/netvsc-patch.ps1"
#define DEFER_SETUPCOMPLETE DEFER_SETUP_DIR "/SetupComplete.cmd"
/* Where the script logs, in the guest. */
#define DEFER_LOG_WIN      "%SystemRoot%\\Temp\\netvsc-patch.log"

/* When the action runs (--defer=MODE). */
enum defer_mode {
  DEFER_ALWAYS,   /* startup script, every boot (--defer alone) */
  DEFER_ONCE,     /* startup script that removes itself after a run that
                     matched an adapter and failed nowhere */
  DEFER_SETUP,    /* called from SetupComplete.cmd: once, at the end of
                     Windows Setup of a generalized image */
};

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
  enum defer_mode mode;
};

/* What netvsc-patch.cmd passes to PowerShell as -EncodedCommand: read
 * the script's text and run it (execution policy governs script files,
 * not commands).  ASCII, a fixed path under %SystemRoot%: nothing to
 * quote.  DIR is the Windows form of DEFER_STARTUP_DIR or
 * DEFER_SETUP_DIR, without \Windows. */
#define DEFER_LOADER(dir) \
  "$f = Join-Path $env:SystemRoot '" dir "\\netvsc-patch.ps1'; " \
  "& ([scriptblock]::Create([System.IO.File]::ReadAllText($f))); exit $LASTEXITCODE"
#define DEFER_LOADER_GPO   DEFER_LOADER ("System32\\GroupPolicy\\Machine\\Scripts\\Startup")
#define DEFER_LOADER_SETUP DEFER_LOADER ("Setup\\Scripts")
/* cmd.exe's limit for a command line. */
#define DEFER_CMDLINE_MAX 8191

/* The PowerShell script (UTF-8 with a BOM, CRLF) and its cmd wrapper
 * (ASCII, CRLF, no BOM), from src/defer.ps1.in and src/defer.cmd.in.
 * The match argument, value names and REG_SZ data go into PowerShell
 * single-quoted strings; a text with a control character (CR, LF, tab,
 * NEL...) or that is not UTF-8, an empty name, no values, or a match
 * kind other than netvsc without an argument is refused.  Return 0, or
 * -1 with errno: EINVAL (refused), ENOMEM.  *OUT is malloc'd,
 * NUL-terminated, *LEN bytes; untouched on error. */
int defer_render_script (const struct defer_spec *s, char **out, size_t *len);
int defer_render_cmd (enum defer_mode mode, char **out, size_t *len);

/* The new content of scripts.ini (UTF-16LE with a BOM, CRLF, as the
 * Group Policy editor writes it) given the old one (NULL, 0 when the
 * file does not exist).  The old one may also be UTF-16LE without a
 * BOM, or ASCII/UTF-8, with CRLF or LF, names in any case.  Our entry is
 * the [Startup] NCmdLine naming netvsc-patch.cmd (any case, relative or
 * a path ending in \netvsc-patch.cmd, quoted or not).
 * Windows runs the entries 0, 1, 2... and stops at the first number
 * without an NCmdLine (the "first free" number F): entries above F
 * are asleep.  Nobody else's entry is woken or put to sleep:
 *   INSTALL: if our entry is there below F, *CHANGED = 0.  Else (an
 *   entry of ours above F, asleep, is taken out) ours is added as F,
 *   in a new [Startup] at the end if there was none, *CHANGED = 1; no
 *   other entry is renumbered.  If F holds an NParameters or F+1 an
 *   NCmdLine (asleep today, ours at F would wake it): -1, ERANGE.
 *   !INSTALL: our entries (with their NParameters) are taken out; the
 *   entries below F after ours are numbered down to close the hole
 *   (else they would stop running), keeping their order and
 *   parameters; those above F keep their numbers; a [Startup] left
 *   empty is removed; *CHANGED = 1 if there was one, else 0.
 * Unchanged lines are kept as they were (only their encoding may
 * change); new lines end as the file's first line does.  With
 * *CHANGED = 0, *OUT is a copy of OLD (empty if NULL).  Returns 0, or
 * -1 with errno (EINVAL: the old file cannot be parsed, e.g. a line
 * that is neither section, key, comment nor blank, [Startup] twice,
 * a key twice, bad UTF-16; it is then left alone; ENOMEM). */
int defer_scripts_ini_edit (const char *old, size_t old_len, int install,
                            char **out, size_t *out_len, int *changed);
/* The new content of gpt.ini (ANSI; kept byte for byte but for the
 * lines changed): the scripts client-side extension pair
 * [{42B5FAAE-...}{40B6664F-...}] in gPCMachineExtensionNames, inserted
 * in order of CSE GUID (or our tool GUID added to an existing Scripts
 * group), and Version's machine half (low 16 bits) incremented, the
 * user half (high 16 bits) kept, when SCRIPTS_CHANGED or the extension
 * had to be added, so that Windows processes the policy again at the
 * next boot.  The machine half wraps from 0xFFFF to 1, never 0 (no
 * computer settings).  A missing Version counts as 0, and becomes 1.
 * No file (or no [General]): "[General]", gPCFunctionalityVersion=2,
 * the pair and "Version=1" are
 * written, *CHANGED = 1 whatever SCRIPTS_CHANGED (so on removal, skip
 * this call when gpt.ini does not exist).  The extension is never taken
 * out (other scripts may use it).  Otherwise the same conventions as
 * above; EINVAL for an extension list or Version that cannot be read. */
int defer_gpt_ini_edit (const char *old, size_t old_len, int scripts_changed,
                        char **out, size_t *out_len, int *changed);
/* The new content of SetupComplete.cmd (ANSI, kept byte for byte but
 * for our block) given the old one (NULL, 0 if absent).  Our block is
 * three lines: "rem netvsc-patch --defer=setup: begin", a call of
 * %SystemRoot%\Setup\Scripts\netvsc-patch.cmd, and
 * "rem netvsc-patch --defer=setup: end".
 *   INSTALL: if the block is there, *CHANGED = 0; else it is put first
 *   (after a UTF-8 BOM if any), before the existing commands, so that
 *   an exit or a restart at their end cannot skip it; *CHANGED = 1.
 *   !INSTALL: the block taken out, *CHANGED = 1; none, *CHANGED = 0.
 *   When nothing but blank lines is left, *OUT_LEN is 0: the caller
 *   deletes the file (an empty SetupComplete.cmd does nothing).
 * New lines end as the file's first line does (CRLF for a new file).
 * Returns 0, or -1 with errno: EINVAL (a NUL byte or UTF-16, or a begin
 * line without its end: left alone), ENOMEM. */
int defer_setupcomplete_edit (const char *old, size_t old_len, int install,
                              char **out, size_t *out_len, int *changed);
/* Is our block in this SetupComplete.cmd?  1, 0, or -1 (EINVAL). */
int defer_setupcomplete_has (const char *buf, size_t len);

/* Is our startup script registered in this scripts.ini?  1 yes, 0 no,
 * -1 with errno (EINVAL: cannot be parsed, as above). */
int defer_scripts_ini_has (const char *buf, size_t len);

#endif
