/* Unit tests: --defer's script (defer.c) and the local GPO's ini files
 * (defer_ini.c).
 *
 * Verified independently of the code under test: the expected script is
 * src/defer.ps1.in with the placeholders replaced here by literal text,
 * and UTF-16 is converted with iconv(3), not with defer_ini.c's own
 * converters. */
#include <errno.h>
#include <iconv.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "defer.h"

/* The version has one source, the Makefile's VERSION (-D). */
#ifndef NETVSC_PATCH_VERSION
#error "NETVSC_PATCH_VERSION is not defined: build with make (VERSION in the Makefile)"
#endif

#define CSE_PAIR "[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{40B6664F-4972-11D1-A7CA-0000F87571E3}]"
#define RSS_PAIR "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]"
#define SEC_PAIR "[{827D319E-6EAC-11D2-A4EA-00C04F79F83A}{803E14A0-B4FB-11D0-A0D0-00A0C90F574B}]"


/* S with every FROM replaced by TO (malloc'd). */
static char *
replace (const char *s, const char *from, const char *to)
{
  size_t nf = strlen (from), nt = strlen (to), n = 0;
  char *out, *o;

  for (const char *p = strstr (s, from); p; p = strstr (p + nf, from))
    n++;
  out = malloc (strlen (s) + n * nt + 1);
  ck_assert_ptr_nonnull (out);
  for (o = out; *s;) {
    if (strncmp (s, from, nf) == 0) {
      memcpy (o, to, nt);
      o += nt;
      s += nf;
    }
    else
      *o++ = *s++;
  }
  *o = '\0';
  return out;
}

/* What defer_render_script must produce: the template with these
 * placeholders, CRLF, after a UTF-8 BOM. */
static char *
expected_script (const char *kind, const char *arg, const char *pattern, const char *values)
{
  char *t = (char *) file_bytes ("src/defer.ps1.in", NULL), *u;
  const char *subst[][2] = {
    { "@NP_VERSION@", NETVSC_PATCH_VERSION }, { "@NP_MATCH_KIND@", kind },
    { "@NP_MATCH_ARG@", arg }, { "@NP_MATCH_PATTERN@", pattern }, { "@NP_VALUES@", values },
    { "@NP_MODE@", "'always'" },
  };

  for (size_t i = 0; i < sizeof subst / sizeof subst[0]; i++) {
    u = replace (t, subst[i][0], subst[i][1]);
    free (t);
    t = u;
  }
  u = replace (t, "\n", "\r\n");
  free (t);
  t = malloc (strlen (u) + 4);
  ck_assert_ptr_nonnull (t);
  strcpy (t, "\xef\xbb\xbf");
  strcat (t, u);
  free (u);
  return t;
}

/* GOT equals WANT; if not, where they part (whole scripts are too long
 * for Check's message). */
#define assert_same(got, want) assert_same_at (got, want, __LINE__)
static void
assert_same_at (const char *got, const char *want, int line)
{
  size_t i = 0;

  while (got[i] && got[i] == want[i])
    i++;
  ck_assert_msg (got[i] == want[i], "line %d: differ at byte %zu: got \"%.60s\", want \"%.60s\"",
                 line, i, got + i, want + i);
}

static char *
render (enum match_kind kind, const char *arg, const struct defer_value *v, size_t n,
        size_t *len)
{
  struct defer_spec s = { .match = { kind, arg }, .values = v, .n = n };
  char *out = NULL;
  size_t l = 0;

  ck_assert_msg (defer_render_script (&s, &out, &l) == 0, "render: %s", strerror (errno));
  ck_assert_uint_eq (strlen (out), l);
  if (len)
    *len = l;
  return out;
}

/* Checks every rendered script must pass. */
static void
check_shape (const char *s, size_t len)
{
  regex_t re;

  ck_assert_uint_ge (len, 3);
  ck_assert (memcmp (s, "\xef\xbb\xbf", 3) == 0);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\n')
      ck_assert_msg (i > 0 && s[i - 1] == '\r', "bare LF at %zu", i);
    if (s[i] == '\r')
      ck_assert_msg (i + 1 < len && s[i + 1] == '\n', "bare CR at %zu", i);
  }
  ck_assert_int_eq (regcomp (&re, "@[A-Z_]+@", REG_EXTENDED | REG_NOSUB), 0);
  ck_assert_msg (regexec (&re, s, 0, NULL, 0) != 0, "a placeholder survived");
  regfree (&re);
}

static const struct defer_value buffers[] = {
  { .name = "ReceiveBufferSize", .is_dword = 1, .dword = 4096, .check = 1 },
  { .name = "SendBufferSize", .is_dword = 1, .dword = 8192, .check = 1 },
};
#define BUFFERS_PS \
  "  @{ Name = 'ReceiveBufferSize'; Type = 'DWord'; Data = 4096; Check = $true }\n" \
  "  @{ Name = 'SendBufferSize'; Type = 'DWord'; Data = 8192; Check = $true }"

START_TEST (test_render_netvsc)
{
  size_t len;
  char *got = render (MATCH_NETVSC, NULL, buffers, 2, &len);
  char *want = expected_script ("'netvsc'", "$null", "$null", BUFFERS_PS);

  check_shape (got, len);
  assert_same (got, want);
  ck_assert_ptr_nonnull (strstr (got, "\r\n$MatchKind = 'netvsc'\r\n$MatchArg = $null\r\n"));
  free (got);
  free (want);
}
END_TEST

START_TEST (test_render_service_and_desc)
{
  size_t len;
  char *got = render (MATCH_SERVICE, "netvsc64", buffers, 1, &len);
  char *want = expected_script ("'service'", "'netvsc64'", "$null",
                                "  @{ Name = 'ReceiveBufferSize'; Type = 'DWord'; Data = 4096; "
                                "Check = $true }");

  check_shape (got, len);
  assert_same (got, want);
  free (got);
  free (want);

  /* ' and the four Unicode single quotes PowerShell also ends strings
   * with, each doubled with itself; backticks, $ and " mean nothing in
   * single quotes and stay. */
  got = render (MATCH_DESC, "O'Brien\u2019s \u2018x\u201a\u201b `$(evil)\" *[a]", buffers, 1, &len);
  want = expected_script ("'desc'",
                          "'O''Brien\u2019\u2019s \u2018\u2018x\u201a\u201a\u201b\u201b "
                          "`$(evil)\" *[a]'",
                          "$null",
                          "  @{ Name = 'ReceiveBufferSize'; Type = 'DWord'; Data = 4096; "
                          "Check = $true }");
  check_shape (got, len);
  assert_same (got, want);
  free (got);
  free (want);
}
END_TEST

START_TEST (test_render_device_id)
{
  size_t len;
  char *got = render (MATCH_DEVICE_ID, "pci\\ven_8086&dev_1`0'f*", buffers, 2, &len);
  /* The pattern for -like has its backticks doubled (fnmatch's
   * FNM_NOESCAPE); the argument, for the log, does not. */
  char *want = expected_script ("'id'", "'pci\\ven_8086&dev_1`0''f*'",
                                "'pci\\ven_8086&dev_1``0''f*'", BUFFERS_PS);

  check_shape (got, len);
  assert_same (got, want);
  free (got);
  free (want);
}
END_TEST

START_TEST (test_render_values)
{
  const struct defer_value v[] = {
    { .name = "*JumboPacket", .text = "9014", .check = 1 },
    { .name = "It's", .text = "a\u2019b \u00e9", .check = 0 },
    { .name = "Big", .is_dword = 1, .dword = 4294967295u, .check = 0 },
    { .name = "Empty", .text = "", .check = 1 },
  };
  size_t len;
  char *got = render (MATCH_NETVSC, NULL, v, 4, &len);
  char *want = expected_script (
    "'netvsc'", "$null", "$null",
    "  @{ Name = '*JumboPacket'; Type = 'String'; Data = '9014'; Check = $true }\n"
    "  @{ Name = 'It''s'; Type = 'String'; Data = 'a\u2019\u2019b \u00e9'; Check = $false }\n"
    "  @{ Name = 'Big'; Type = 'DWord'; Data = 4294967295; Check = $false }\n"
    "  @{ Name = 'Empty'; Type = 'String'; Data = ''; Check = $true }");

  check_shape (got, len);
  assert_same (got, want);
  free (got);
  free (want);
}
END_TEST

static int
render_fails (enum match_kind kind, const char *arg, const char *name, const char *text)
{
  struct defer_value v = { .name = name, .is_dword = text == NULL, .dword = 1, .text = text };
  struct defer_spec s = { .match = { kind, arg }, .values = &v, .n = 1 };
  char *out = (char *) "untouched";
  size_t len = 7;

  errno = 0;
  if (defer_render_script (&s, &out, &len) == 0) {
    free (out);
    return 0;
  }
  ck_assert_str_eq (out, "untouched");
  return errno == EINVAL;
}

START_TEST (test_render_refuses)
{
  struct defer_spec none = { .match = { MATCH_NETVSC, NULL }, .values = buffers, .n = 0 };
  char *out;
  size_t len;

  ck_assert (render_fails (MATCH_DESC, "a\rb", "X", NULL));
  ck_assert (render_fails (MATCH_DESC, "a\nb", "X", NULL));
  ck_assert (render_fails (MATCH_DEVICE_ID, "pci\\x\r\n", "X", NULL));
  ck_assert (render_fails (MATCH_NETVSC, NULL, "X\n", NULL));
  ck_assert (render_fails (MATCH_NETVSC, NULL, "X", "line\r\nnext"));
  ck_assert (render_fails (MATCH_NETVSC, NULL, "X", "tab\there"));
  ck_assert (render_fails (MATCH_NETVSC, NULL, "X", "nel\xc2\x85"));      /* a C1 newline */
  ck_assert (render_fails (MATCH_NETVSC, NULL, "X", "bad \xff utf-8"));
  ck_assert (render_fails (MATCH_NETVSC, NULL, "X", "overlong \xc0\xaf"));
  ck_assert (render_fails (MATCH_NETVSC, NULL, "X", "surrogate \xed\xa0\x80"));
  ck_assert (render_fails (MATCH_NETVSC, NULL, "", NULL));
  ck_assert (render_fails (MATCH_DESC, "", "X", NULL));
  ck_assert (render_fails (MATCH_SERVICE, NULL, "X", NULL));
  ck_assert (render_fails ((enum match_kind) 42, "x", "X", NULL));
  errno = 0;
  ck_assert_int_eq (defer_render_script (&none, &out, &len), -1);
  ck_assert_int_eq (errno, EINVAL);
}
END_TEST

/* Decode standard base64 (as -EncodedCommand takes it); -1 if not. */
static long
unbase64 (const char *s, size_t n, unsigned char *out)
{
  static const char abc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  long len = 0;

  if (n % 4)
    return -1;
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char *c = s[i + k] == '=' ? NULL : strchr (abc, s[i + k]);
      if (s[i + k] == '=' && i + 4 == n && k >= 2)
        pad++;
      else if (c == NULL || s[i + k] == '\0' || pad)
        return -1;
      v = v << 6 | (c ? (uint32_t) (c - abc) : 0);
    }
    out[len++] = (unsigned char) (v >> 16);
    if (pad < 2)
      out[len++] = (unsigned char) (v >> 8);
    if (pad < 1)
      out[len++] = (unsigned char) v;
  }
  return len;
}

START_TEST (test_render_cmd)
{
  char *got, *t = (char *) file_bytes ("src/defer.cmd.in", NULL), *u, *want;
  const char *run = "\r\n\"%NP_PS%\" -NoProfile -NonInteractive -EncodedCommand ";
  const char *p, *e;
  unsigned char dec[4096];
  long n;
  size_t len;

  ck_assert_int_eq (defer_render_cmd (DEFER_ALWAYS, &got, &len), 0);
  /* No BOM (cmd.exe would take it for part of the first command),
   * ASCII only, no placeholder left, and the one command line. */
  for (size_t i = 0; i < len; i++)
    ck_assert_msg ((unsigned char) got[i] < 0x80, "byte %zu is not ASCII", i);
  ck_assert (strstr (got, "@NP_") == NULL);
  ck_assert (strncmp (got, "@echo off\r\n", 11) == 0);
  ck_assert_ptr_nonnull (strstr (got, "\r\nset NP_PS=%SystemRoot%\\System32\\"
                                 "WindowsPowerShell\\v1.0\\powershell.exe\r\n"));
  /* Launched with -EncodedCommand, never -File (an execution policy set
   * by Group Policy would block a file), on one line that also exits. */
  ck_assert_ptr_null (strstr (got, "-File"));
  ck_assert_ptr_null (strstr (got, "-ExecutionPolicy"));
  p = strstr (got, run);
  ck_assert_ptr_nonnull (p);
  e = strstr (p + 2, "\r\n");
  ck_assert_ptr_nonnull (e);
  ck_assert_uint_lt ((size_t) (e - p - 2), DEFER_CMDLINE_MAX);
  p += strlen (run);
  e = strchr (p, ' ');
  ck_assert_ptr_nonnull (e);
  ck_assert_int_eq (strncmp (e, " && exit /b 0 || exit /b 1\r\n", 30), 0);
  /* The encoded text is the loader, in UTF-16LE. */
  ck_assert_uint_lt ((size_t) (e - p), sizeof dec);
  n = unbase64 (p, (size_t) (e - p), dec);
  ck_assert_int_eq (n, (long) (2 * strlen (DEFER_LOADER_GPO)));
  for (long i = 0; i < n / 2; i++)
    ck_assert_msg (dec[2 * i] == (unsigned char) DEFER_LOADER_GPO[i] && dec[2 * i + 1] == 0,
                   "loader char %ld", i);
  ck_assert_ptr_nonnull (strstr (DEFER_LOADER_GPO, "'System32\\GroupPolicy\\Machine\\Scripts"
                                 "\\Startup\\netvsc-patch.ps1'"));
  ck_assert_ptr_nonnull (strstr (DEFER_LOADER_GPO, "[scriptblock]::Create("));
  /* The rest is the template. */
  {
    char b64[4096];
    memcpy (b64, p, (size_t) (e - p));
    b64[e - p] = '\0';
    u = replace (t, "@NP_VERSION@", NETVSC_PATCH_VERSION);
    free (t);
    t = replace (u, "@NP_LOADER@", b64);
    free (u);
    u = replace (t, "@NP_RUN_BY@", "rem The machine startup script of the local Group Policy "
                 "object, run at\nrem boot (--defer).");
    free (t);
    t = u;
    u = NULL;
    want = replace (t, "\n", "\r\n");
  }
  assert_same (got, want);
  ck_assert_uint_eq (strlen (got), len);
  free (got);
  free (t);
  free (u);
  free (want);
}
END_TEST

/* --defer=once: the same script, in mode once. */
START_TEST (test_render_once)
{
  struct defer_spec s = { .match = { MATCH_NETVSC, NULL }, .values = buffers, .n = 2,
                          .mode = DEFER_ONCE };
  char *got, *always = render (MATCH_NETVSC, NULL, buffers, 2, NULL), *want;
  size_t len;

  ck_assert_int_eq (defer_render_script (&s, &got, &len), 0);
  check_shape (got, len);
  ck_assert_ptr_nonnull (strstr (always, "\r\n$Mode = 'always'\r\n"));
  want = replace (always, "\r\n$Mode = 'always'\r\n", "\r\n$Mode = 'once'\r\n");
  assert_same (got, want);
  free (got);
  free (want);
  free (always);
}
END_TEST

/* Where NEEDLE first is in HAY, as an offset; fails if absent. */
static size_t
at (const char *hay, const char *needle)
{
  const char *p = strstr (hay, needle);
  ck_assert_msg (p != NULL, "not in the template: %s", needle);
  return (size_t) (p - hay);
}

/* The body of PowerShell function NAME in template T (to its closing
 * brace at the start of a line). */
static char *
ps_function (const char *t, const char *name)
{
  char head[128];
  const char *p, *e;

  snprintf (head, sizeof head, "\nfunction %s ", name);
  p = strstr (t, head);
  ck_assert_msg (p != NULL, "no function %s", name);
  e = strstr (p, "\n}\n");
  ck_assert_ptr_nonnull (e);
  return strndup (p, (size_t) (e - p + 3));
}

/* The script's structure: what issue 17 asks of it, where a reviewer
 * would look. */
START_TEST (test_template_structure)
{
  char *t = (char *) file_bytes ("src/defer.ps1.in", NULL), *f;

  /* Adapters by GUID: NetCfgInstanceId against Win32_NetworkAdapter.GUID,
   * never the instance number as DeviceID. */
  ck_assert_ptr_null (strstr (t, "DeviceID"));
  f = ps_function (t, "Get-Nic");
  ck_assert_ptr_nonnull (strstr (f, "Get-WmiObject -Class Win32_NetworkAdapter"));
  ck_assert_ptr_nonnull (strstr (f, "Test-Same $_.GUID $Guid"));
  ck_assert_ptr_nonnull (strstr (f, "$found.Count -ne 1"));
  free (f);
  f = ps_function (t, "Restart-Adapter");
  ck_assert_ptr_nonnull (strstr (f, "Get-Text $Key 'NetCfgInstanceId'"));
  ck_assert_ptr_nonnull (strstr (f, "Test-Guid $guid"));
  /* the marker is persisted before Disable(), cleared only after a
   * verified enable */
  ck_assert_uint_lt (at (f, "Set-Marker $guid"), at (f, ".Disable()"));
  ck_assert_uint_lt (at (f, ".Disable()"), at (f, "$on = Enable-Verified $guid"));
  ck_assert_uint_lt (at (f, "$on = Enable-Verified $guid"), at (f, "if ($on) { Clear-Marker $guid }"));
  /* disabled by someone else: left; by us (marker): restarted */
  ck_assert_ptr_nonnull (strstr (f, "ConfigManagerErrorCode -eq 22 -and -not (Test-Marker $guid)"));
  free (f);
  /* Enable retried, each time read back from WMI, bounded. */
  f = ps_function (t, "Enable-Verified");
  ck_assert_ptr_nonnull (strstr (f, "for ($try = 0; $try -le $EnableTries; $try++)"));
  ck_assert_uint_lt (at (f, "$nic = Get-Nic $Guid"), at (f, "ConfigManagerErrorCode -ne 22"));
  ck_assert_uint_lt (at (f, "ConfigManagerErrorCode -ne 22"), at (f, ".Enable()"));
  ck_assert_ptr_nonnull (strstr (f, "Start-Sleep"));
  free (f);
  ck_assert_ptr_nonnull (strstr (t, "\n$EnableTries = 5\n"));
  /* Bounded wait for device installs, before the adapters are read; an
   * earlier run's disabled adapters enabled before anything else. */
  f = ps_function (t, "Wait-DeviceInstalls");
  ck_assert_ptr_nonnull (strstr (f, "CMP_WaitNoPendingInstallEvents([uint32] $PnpWaitMs)"));
  ck_assert_ptr_nonnull (strstr (f, "Write-Log"));
  free (f);
  ck_assert_ptr_nonnull (strstr (t, "\n$PnpWaitMs = 120000\n"));
  ck_assert_uint_lt (at (t, "\n  Wait-DeviceInstalls\n"), at (t, "\n  if (-not (Repair-Disabled))"));
  ck_assert_uint_lt (at (t, "\n  if (-not (Repair-Disabled))"), at (t, "OpenSubKey($ClassPath)"));
  /* One log encoding (UTF-8, no BOM) and one event per run. */
  ck_assert_ptr_null (strstr (t, "Add-Content"));
  ck_assert_ptr_nonnull (strstr (t, "AppendAllText($LogFile, $line, (New-Object System.Text.UTF8Encoding $false))"));
  ck_assert_ptr_nonnull (strstr (t, "[System.Diagnostics.EventLog]::WriteEntry($EventSource"));
  ck_assert_ptr_nonnull (strstr (t, "CreateEventSource($EventSource, 'Application')"));
  ck_assert_ptr_nonnull (strstr (t, "\n  Write-RunEvent 'Error' 3\n  exit 1\n"));
  ck_assert_ptr_nonnull (strstr (t, "\n  Write-RunEvent 'Information' 1\n"));
  /* Once: only after a run that matched and failed nowhere; the entry
   * goes before the files. */
  ck_assert_ptr_nonnull (strstr (t, "\nif ($Mode -eq 'once' -and -not $failed -and $matched -gt 0) {\n"
                                 "  try {\n    Remove-Self\n"));
  /* Setup: SetupComplete.cmd runs once, so an adapter still disabled
   * gets a startup task that runs the script again until it is enabled,
   * and the task goes when none is left. */
  ck_assert_ptr_nonnull (strstr (t, "\nif ($Mode -eq 'setup') {\n  try {\n    Update-RepairTask\n"));
  f = ps_function (t, "Update-RepairTask");
  ck_assert_uint_lt (at (f, "$ErrorActionPreference = 'Continue'"), at (f, "& $schtasks"));
  ck_assert_uint_lt (at (f, "if (Test-AnyMarker) {"), at (f, "/Create /F /TN $RepairTask /SC ONSTART /RU SYSTEM"));
  ck_assert_ptr_nonnull (strstr (f, "} else {"));
  ck_assert_uint_lt (at (f, "} else {"), at (f, "/Delete /F /TN $RepairTask"));
  free (f);
  f = ps_function (t, "Remove-Self");
  ck_assert_uint_lt (at (f, "Remove-StartupEntry $text"), at (f, "WriteAllText($ini, $new, [System.Text.Encoding]::Unicode)"));
  ck_assert_uint_lt (at (f, "WriteAllText($ini, $new"), at (f, "Step-GptVersion $gpt"));
  ck_assert_uint_lt (at (f, "Step-GptVersion $gpt"), at (f, "Remove-Item -LiteralPath $p"));
  free (f);
  free (t);
}
END_TEST

/* The template must stay within Windows PowerShell 2.0 (Server 2008 R2)
 * and ASCII: a few tell-tale constructs of later versions. */
START_TEST (test_template_ps2)
{
  size_t len;
  char *t = (char *) file_bytes ("src/defer.ps1.in", &len);
  const char *later[] = {
    " -in ", " -notin ", "[pscustomobject]", "[ordered]", "Get-NetAdapter",
    "-NoNewline", "$PSItem", "::new(", "Get-CimInstance", "-shl", "-shr",
    "Set-NetAdapter", "Restart-NetAdapter", "-Raw", "ForEach-Object -Parallel",
  };

  for (size_t i = 0; i < len; i++)
    ck_assert_msg ((unsigned char) t[i] < 0x80 && t[i] != '\r' && t[i] != '\t',
                   "template byte %zu: not plain ASCII with LF", i);
  for (size_t i = 0; i < sizeof later / sizeof later[0]; i++)
    ck_assert_msg (strstr (t, later[i]) == NULL, "template uses %s", later[i]);
  /* Each placeholder is where the renderer expects it. */
  ck_assert_ptr_nonnull (strstr (t, "\n$MatchKind = @NP_MATCH_KIND@\n"));
  ck_assert_ptr_nonnull (strstr (t, "\n$MatchArg = @NP_MATCH_ARG@\n"));
  ck_assert_ptr_nonnull (strstr (t, "\n$MatchPattern = @NP_MATCH_PATTERN@\n"));
  ck_assert_ptr_nonnull (strstr (t, "\n$Values = @(\n@NP_VALUES@\n)\n"));
  /* The log, and how the script says it can be removed. */
  ck_assert_ptr_nonnull (strstr (t, "Join-Path $env:SystemRoot 'Temp\\netvsc-patch.log'"));
  ck_assert_ptr_nonnull (strstr (t, "netvsc-patch --remove IMAGE"));
  ck_assert_ptr_nonnull (strstr (t, "Win32_NetworkAdapter"));
  free (t);
}
END_TEST

/* --- optional: a PowerShell parser on the rendered scripts ------------- */

/* tests/ps-syntax.cjs parses with tree-sitter-powershell when its npm
 * modules are installed (see that file); without them this is skipped,
 * saying so. */
static int
ps_checker_available (void)
{
  const char *dir = getenv ("PS_SYNTAX_MODULES");
  char path[4096];

  snprintf (path, sizeof path, "%s/web-tree-sitter/package.json",
            dir ? dir : "build/ps-syntax/node_modules");
  return access (path, R_OK) == 0 && system ("node --version >/dev/null 2>&1") == 0;
}

static int
ps_check (const char *files, int quiet)
{
  char cmd[8192];
  int st;

  snprintf (cmd, sizeof cmd, "node tests/ps-syntax.cjs %s%s", files, quiet ? " 2>/dev/null" : "");
  st = system (cmd);
  return WIFEXITED (st) ? WEXITSTATUS (st) : -1;
}

static void
write_file (const char *path, const char *s, size_t len)
{
  FILE *f = fopen (path, "wb");
  ck_assert_ptr_nonnull (f);
  ck_assert_uint_eq (fwrite (s, 1, len, f), len);
  ck_assert_int_eq (fclose (f), 0);
}

START_TEST (test_ps_syntax)
{
  const struct defer_value v[] = {
    { .name = "ReceiveBufferSize", .is_dword = 1, .dword = 4096, .check = 1 },
    { .name = "It's \u2018odd\u2019", .text = "a'b\u201b `$x\" @{", .check = 0 },
  };
  struct { enum match_kind k; const char *arg; } specs[] = {
    { MATCH_NETVSC, NULL }, { MATCH_SERVICE, "net'vsc" },
    { MATCH_DESC, "Hyper-V \u2019Network\u2019 $(x) `n" }, { MATCH_DEVICE_ID, "vmbus\\{f8*`[a]'" },
  };
  char dir[] = "/tmp/netvsc-ps.XXXXXX", files[4096] = "", path[256];

  if (!ps_checker_available ()) {
    fprintf (stderr, "defer: PowerShell syntax check skipped: no node, or no modules in "
             "build/ps-syntax (see tests/ps-syntax.cjs)\n");
    return;
  }
  ck_assert_ptr_nonnull (mkdtemp (dir));
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    size_t len;
    char *s = render (specs[i].k, specs[i].arg, v, 2, &len);
    snprintf (path, sizeof path, "%s/s%zu.ps1", dir, i);
    write_file (path, s, len);
    strcat (files, " ");
    strcat (files, path);
    free (s);
  }
  {
    /* and mode once (its self-removal code is the same text, but the
     * file is what Windows would run) */
    struct defer_spec once = { .match = { MATCH_NETVSC, NULL }, .values = v, .n = 2, .mode = DEFER_ONCE };
    char *s;
    size_t len;
    ck_assert_int_eq (defer_render_script (&once, &s, &len), 0);
    snprintf (path, sizeof path, "%s/once.ps1", dir);
    write_file (path, s, len);
    strcat (files, " ");
    strcat (files, path);
    free (s);
  }
  {
    int r = ps_check (files, 0);
    if (r == 2) {               /* the parser itself could not start (an old node?) */
      fprintf (stderr, "defer: PowerShell syntax check skipped: tests/ps-syntax.cjs "
               "could not load the parser\n");
      snprintf (files, sizeof files, "rm -rf '%s'", dir);
      ck_assert_int_eq (system (files), 0);
      return;
    }
    ck_assert_int_eq (r, 0);
  }
  /* ... and the checker does find errors. */
  snprintf (path, sizeof path, "%s/bad.ps1", dir);
  {
    const char *bad = "$x = @{ Name = 'a'b' }\r\nif ($x {\r\n";
    write_file (path, bad, strlen (bad));
  }
  ck_assert_int_eq (ps_check (path, 1), 1);
  snprintf (files, sizeof files, "rm -rf '%s'", dir);
  ck_assert_int_eq (system (files), 0);
}
END_TEST

/* --- scripts.ini --------------------------------------------------------- */

static char *
conv (const char *to, const char *from, const char *in, size_t len, size_t *out_len)
{
  iconv_t cd = iconv_open (to, from);
  size_t cap = len * 4 + 8, left = cap;
  char *out = malloc (cap), *o = out, *i = (char *) in;

  ck_assert (cd != (iconv_t) -1);
  ck_assert_ptr_nonnull (out);
  ck_assert_msg (iconv (cd, &i, &len, &o, &left) != (size_t) -1, "iconv: %s", strerror (errno));
  iconv_close (cd);
  *out_len = cap - left;
  out[*out_len] = '\0';
  return out;
}

/* UTF-8 TEXT as scripts.ini bytes: UTF-16LE, with a BOM if BOM. */
static char *
utf16 (const char *text, int bom, size_t *len)
{
  size_t n;
  char *u = conv ("UTF-16LE", "UTF-8", text, strlen (text), &n);
  char *out = malloc (n + 2);

  ck_assert_ptr_nonnull (out);
  memcpy (out, "\xff\xfe", 2);
  memcpy (out + (bom ? 2 : 0), u, n);
  free (u);
  *len = n + (bom ? 2 : 0);
  return out;
}

/* scripts.ini bytes back to UTF-8, checking the BOM. */
static char *
from_utf16 (const char *s, size_t len)
{
  size_t n;

  ck_assert_uint_ge (len, 2);
  ck_assert_msg (memcmp (s, "\xff\xfe", 2) == 0, "no UTF-16LE BOM");
  ck_assert_uint_eq (len % 2, 0);
  return conv ("UTF-8", "UTF-16LE", s + 2, len - 2, &n);
}

/* Edit scripts.ini holding UTF-8 TEXT (as UTF-16LE with a BOM, or as is
 * with RAW) and return the result as UTF-8; *CHANGED as the call said. */
static char *
scripts_edit (const char *text, int raw, int install, int *changed)
{
  size_t len, out_len;
  char *in = text == NULL ? NULL : raw ? strdup (text) : utf16 (text, 1, &len);
  char *out, *res;

  if (raw && in)
    len = strlen (in);
  ck_assert_msg (defer_scripts_ini_edit (in, in ? len : 0, install, &out, &out_len, changed) == 0,
                 "edit: %s", strerror (errno));
  if (*changed)
    res = from_utf16 (out, out_len);
  else {
    /* Unchanged: the very bytes given. */
    ck_assert_uint_eq (out_len, in ? len : 0);
    ck_assert (out_len == 0 || memcmp (out, in, len) == 0);
    res = raw || in == NULL ? strdup (text ? text : "") : from_utf16 (out, out_len);
  }
  free (in);
  free (out);
  return res;
}

static int
scripts_has (const char *text)
{
  size_t len;
  char *in = utf16 (text, 1, &len);
  int r = defer_scripts_ini_has (in, len);
  free (in);
  return r;
}

#define OURS(n) n "CmdLine=netvsc-patch.cmd\r\n" n "Parameters=\r\n"

START_TEST (test_scripts_create_and_again)
{
  int changed;
  char *a = scripts_edit (NULL, 0, 1, &changed), *b;

  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (a, "[Startup]\r\n" OURS ("0"));
  ck_assert_int_eq (scripts_has (a), 1);
  b = scripts_edit (a, 0, 1, &changed);           /* installing twice registers once */
  ck_assert_int_eq (changed, 0);
  ck_assert_str_eq (b, a);
  free (b);
  b = scripts_edit (a, 0, 0, &changed);           /* and removal takes it all out */
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (b, "");
  ck_assert_int_eq (scripts_has (b), 0);
  free (a);
  a = scripts_edit (b, 0, 0, &changed);           /* removing twice: nothing */
  ck_assert_int_eq (changed, 0);
  free (a);
  free (b);
  a = scripts_edit (NULL, 0, 0, &changed);        /* nor with no file */
  ck_assert_int_eq (changed, 0);
  free (a);
}
END_TEST

START_TEST (test_scripts_others_kept)
{
  const char *old =
    "[Startup]\r\n"
    "0CmdLine=C:\\Tools\\inventory.cmd\r\n"
    "0Parameters=/quiet \"x y\"\r\n"
    "1CmdLine=\\\\server\\share\\caf\u00e9.bat\r\n"
    "1Parameters=\r\n"
    "\r\n"
    "[Shutdown]\r\n"
    "0CmdLine=flush.cmd\r\n"
    "0Parameters=\r\n";
  int changed;
  char *got = scripts_edit (old, 0, 1, &changed);

  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got,
                    "[Startup]\r\n"
                    "0CmdLine=C:\\Tools\\inventory.cmd\r\n"
                    "0Parameters=/quiet \"x y\"\r\n"
                    "1CmdLine=\\\\server\\share\\caf\u00e9.bat\r\n"
                    "1Parameters=\r\n"
                    OURS ("2")
                    "\r\n"
                    "[Shutdown]\r\n"
                    "0CmdLine=flush.cmd\r\n"
                    "0Parameters=\r\n");
  ck_assert_int_eq (scripts_has (old), 0);
  ck_assert_int_eq (scripts_has (got), 1);
  {
    char *back = scripts_edit (got, 0, 0, &changed);
    ck_assert_int_eq (changed, 1);
    ck_assert_str_eq (back, old);
    free (back);
  }
  free (got);

  /* Only [Shutdown]: a [Startup] section is added after it. */
  got = scripts_edit ("[Shutdown]\r\n0CmdLine=flush.cmd\r\n0Parameters=", 0, 1, &changed);
  ck_assert_str_eq (got, "[Shutdown]\r\n0CmdLine=flush.cmd\r\n0Parameters=\r\n"
                    "[Startup]\r\n" OURS ("0"));
  free (got);
}
END_TEST

START_TEST (test_scripts_gaps)
{
  const char *old =
    "[Startup]\r\n"
    "0CmdLine=a.cmd\r\n"
    "0Parameters=-a\r\n"
    "1CmdLine=C:\\WINDOWS\\System32\\GroupPolicy\\Machine\\Scripts\\Startup\\NETVSC-PATCH.CMD\r\n"
    "1Parameters=\r\n"
    "2CmdLine=b.cmd\r\n"
    "2Parameters=-b 'x'\r\n"
    "3cmdline = c.cmd\r\n"
    "3parameters = -c\r\n"
    "[Shutdown]\r\n"
    "0CmdLine=netvsc-patch.cmd\r\n"           /* not ours: a shutdown script */
    "0Parameters=\r\n";
  int changed;
  char *got;

  ck_assert_int_eq (scripts_has (old), 1);
  got = scripts_edit (old, 0, 0, &changed);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got,
                    "[Startup]\r\n"
                    "0CmdLine=a.cmd\r\n"
                    "0Parameters=-a\r\n"
                    "1CmdLine=b.cmd\r\n"
                    "1Parameters=-b 'x'\r\n"
                    "2cmdline = c.cmd\r\n"
                    "2parameters = -c\r\n"
                    "[Shutdown]\r\n"
                    "0CmdLine=netvsc-patch.cmd\r\n"
                    "0Parameters=\r\n");
  ck_assert_int_eq (scripts_has (got), 0);
  free (got);

  /* Installing never renumbers: ours goes at the first free number,
   * where Windows runs it, when the entries after that (asleep: Windows
   * stops at the first missing number) stay asleep. */
  got = scripts_edit ("[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n"
                      "5CmdLine=b.cmd\r\n5Parameters=-b\r\n", 0, 1, &changed);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, "[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n"
                    "5CmdLine=b.cmd\r\n5Parameters=-b\r\n" OURS ("1"));
  {
    /* and removing it leaves the file as it was: 5 still asleep */
    char *back = scripts_edit (got, 0, 0, &changed);
    ck_assert_int_eq (changed, 1);
    ck_assert_str_eq (back, "[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n"
                      "5CmdLine=b.cmd\r\n5Parameters=-b\r\n");
    free (back);
  }
  free (got);
  /* A gap one wide (0, 2): ours at 1 would wake 2: refused, ERANGE. */
  {
    size_t len, out_len = 9;
    char *in = utf16 ("[Startup]\r\n0CmdLine=a.cmd\r\n2CmdLine=b.cmd\r\n", 1, &len);
    char *out = (char *) "untouched";
    errno = 0;
    ck_assert_int_eq (defer_scripts_ini_edit (in, len, 1, &out, &out_len, &changed), -1);
    ck_assert_int_eq (errno, ERANGE);
    ck_assert_str_eq (out, "untouched");
    free (in);
    /* nor over a stray NParameters at the free number */
    in = utf16 ("[Startup]\r\n0CmdLine=a.cmd\r\n1Parameters=-x\r\n", 1, &len);
    errno = 0;
    ck_assert_int_eq (defer_scripts_ini_edit (in, len, 1, &out, &out_len, &changed), -1);
    ck_assert_int_eq (errno, ERANGE);
    free (in);
  }
  /* No entry 0 at all (1 asleep): ours at 0 would wake 1: refused. */
  {
    size_t len, out_len;
    char *out;
    char *in = utf16 ("[Startup]\r\n1CmdLine=a.cmd\r\n", 1, &len);
    errno = 0;
    ck_assert_int_eq (defer_scripts_ini_edit (in, len, 1, &out, &out_len, &changed), -1);
    ck_assert_int_eq (errno, ERANGE);
    free (in);
  }
  /* Ours asleep after a gap (0, gap, 3=ours): moved to 1 where it runs. */
  got = scripts_edit ("[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n"
                      OURS ("3"), 0, 1, &changed);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, "[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n" OURS ("1"));
  free (got);
  /* Removal: entries after ours that ran still run, in their order;
   * those after a gap keep their numbers (and stay asleep); foreign
   * keys and comments are kept. */
  got = scripts_edit ("[Startup]\r\n; admin's note\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n"
                      OURS ("1") "2CmdLine=b.cmd\r\n2Parameters=-b\r\n"
                      "Foo=bar\r\n4CmdLine=z.cmd\r\n4Parameters=\r\n", 0, 0, &changed);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, "[Startup]\r\n; admin's note\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n"
                    "1CmdLine=b.cmd\r\n1Parameters=-b\r\n"
                    "Foo=bar\r\n4CmdLine=z.cmd\r\n4Parameters=\r\n");
  free (got);
  /* Removal of ours asleep after a gap: nothing else moves. */
  got = scripts_edit ("[Startup]\r\n0CmdLine=a.cmd\r\n" OURS ("2")
                      "3CmdLine=b.cmd\r\n", 0, 0, &changed);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, "[Startup]\r\n0CmdLine=a.cmd\r\n3CmdLine=b.cmd\r\n");
  free (got);

  /* Ours alone in [Startup]: the section goes, [Shutdown] stays. */
  got = scripts_edit ("[Startup]\r\n" OURS ("0") "[Shutdown]\r\n0CmdLine=s.cmd\r\n"
                      "0Parameters=\r\n", 0, 0, &changed);
  ck_assert_str_eq (got, "[Shutdown]\r\n0CmdLine=s.cmd\r\n0Parameters=\r\n");
  free (got);
}
END_TEST

START_TEST (test_scripts_encodings)
{
  const char *text = "[startup]\n0cmdline=x.cmd\n0parameters=\n";
  size_t len, out_len;
  char *in = utf16 (text, 0, &len), *out, *got;
  int changed;

  /* UTF-16LE without a BOM, LF, lower case: accepted, new lines as the
   * file ends its lines, and a BOM in front. */
  ck_assert_int_eq (defer_scripts_ini_edit (in, len, 1, &out, &out_len, &changed), 0);
  ck_assert_int_eq (changed, 1);
  got = from_utf16 (out, out_len);
  ck_assert_str_eq (got, "[startup]\n0cmdline=x.cmd\n0parameters=\n"
                    "1CmdLine=netvsc-patch.cmd\n1Parameters=\n");
  ck_assert_int_eq (defer_scripts_ini_has (in, len), 0);
  ck_assert_int_eq (defer_scripts_ini_has (out, out_len), 1);
  free (in);
  free (out);
  free (got);

  /* ASCII, as a hand-written scripts.ini may be: becomes UTF-16LE. */
  got = scripts_edit ("[Startup]\r\n0CmdLine=C:\\Windows\\System32\\Fix.cmd\r\n0Parameters=\r\n",
                      1, 1, &changed);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, "[Startup]\r\n0CmdLine=C:\\Windows\\System32\\Fix.cmd\r\n"
                    "0Parameters=\r\n" OURS ("1"));
  free (got);

  /* Recognised: quoted, full path, any case; not a longer name. */
  ck_assert_int_eq (scripts_has ("[Startup]\r\n0CmdLine=\"C:\\x y\\Netvsc-Patch.cmd\"\r\n"), 1);
  ck_assert_int_eq (scripts_has ("[Startup]\r\n0CmdLine=D:/gpo/netvsc-patch.cmd\r\n"), 1);
  ck_assert_int_eq (scripts_has ("[Startup]\r\n0CmdLine=not-netvsc-patch.cmd\r\n"), 0);
  ck_assert_int_eq (scripts_has ("[Startup]\r\n0CmdLine=netvsc-patch.cmd.bak\r\n"), 0);
  ck_assert_int_eq (scripts_has ("[Startup]\r\n0Parameters=netvsc-patch.cmd\r\n"), 0);
}
END_TEST

static void
scripts_refused (const char *bytes, size_t len)
{
  char *out = (char *) "untouched";
  size_t out_len = 9;
  int changed = 7;

  errno = 0;
  ck_assert_int_eq (defer_scripts_ini_edit (bytes, len, 1, &out, &out_len, &changed), -1);
  ck_assert_int_eq (errno, EINVAL);
  ck_assert_str_eq (out, "untouched");
  ck_assert_int_eq (changed, 0);
  ck_assert_int_eq (defer_scripts_ini_has (bytes, len), -1);
}

START_TEST (test_scripts_garbage)
{
  const char *texts[] = {
    "[Startup\r\n0CmdLine=a\r\n",                       /* unclosed section */
    "hello world\r\n",                                   /* neither key nor section */
    "0CmdLine=a.cmd\r\n[Startup]\r\n",                   /* key before any section */
    "[Startup]\r\n0CmdLine=a\rb\r\n",                    /* lone CR */
    "[Startup]\r\n0CmdLine=a\x01\r\n",                   /* control character */
    "[Startup]\r\n0CmdLine=a\r\n[startup]\r\n",          /* two [Startup] */
    "[Startup]\r\n0CmdLine=a\r\n0cmdline=b\r\n",         /* a key twice */
  };
  size_t len;

  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    char *in = utf16 (texts[i], 1, &len);
    scripts_refused (in, len);
    free (in);
  }
  scripts_refused ("\xff\xfe[\0S", 5);                  /* odd length */
  scripts_refused ("\xff\xfe[\0\x00\xd8]\0", 8);        /* unpaired surrogate */
  scripts_refused ("\xfe\xff\0[", 4);                   /* big-endian */
  {
    const char *ansi = "[Startup]\r\n0CmdLine=\xe9.cmd\r\n";   /* ANSI, not UTF-8 */
    scripts_refused (ansi, strlen (ansi));
  }
  scripts_refused ("\x7f" "ELF\x02\x01\x01\0\0\0", 10);
}
END_TEST

/* --- gpt.ini ------------------------------------------------------------- */

static char *
gpt_edit (const char *old, int scripts_changed, int *changed)
{
  char *out;
  size_t len;

  ck_assert_msg (defer_gpt_ini_edit (old, old ? strlen (old) : 0, scripts_changed, &out, &len,
                                     changed) == 0, "gpt edit: %s", strerror (errno));
  ck_assert_uint_eq (strlen (out), len);
  if (!*changed)
    ck_assert_str_eq (out, old ? old : "");
  return out;
}

START_TEST (test_gpt_create)
{
  int changed;
  char *got = gpt_edit (NULL, 1, &changed), *again;

  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, "[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames=" CSE_PAIR "\r\nVersion=1\r\n");
  again = gpt_edit (got, 0, &changed);
  ck_assert_int_eq (changed, 0);
  free (again);
  again = gpt_edit (got, 1, &changed);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (again, "[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames=" CSE_PAIR "\r\nVersion=2\r\n");
  free (again);
  free (got);
}
END_TEST

START_TEST (test_gpt_sorted_insert)
{
  /* 0x00020003: user version 2, computer version 3. */
  const char *old = "[General]\r\n"
    "gPCFunctionalityVersion=2\r\n"
    "gPCMachineExtensionNames=" RSS_PAIR SEC_PAIR "\r\n"
    "Version=131075\r\n"
    "displayName=Lokale Gruppenrichtlinie f\xfcr \xe9\r\n";   /* ANSI bytes, kept */
  int changed;
  char *got = gpt_edit (old, 0, &changed), *again;

  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, "[General]\r\n"
                    "gPCFunctionalityVersion=2\r\n"
                    "gPCMachineExtensionNames=" RSS_PAIR CSE_PAIR SEC_PAIR "\r\n"
                    "Version=131076\r\n"
                    "displayName=Lokale Gruppenrichtlinie f\xfcr \xe9\r\n");
  again = gpt_edit (got, 0, &changed);              /* in place: untouched */
  ck_assert_int_eq (changed, 0);
  free (again);
  free (got);

  /* At either end of the list, and in a list of one. */
  got = gpt_edit ("[General]\r\ngPCMachineExtensionNames=" SEC_PAIR "\r\nVersion=1\r\n", 0,
                  &changed);
  ck_assert_str_eq (got, "[General]\r\ngPCMachineExtensionNames=" CSE_PAIR SEC_PAIR
                    "\r\nVersion=2\r\n");
  free (got);
  got = gpt_edit ("[General]\r\ngPCMachineExtensionNames=" RSS_PAIR "\r\nVersion=1\r\n", 0,
                  &changed);
  ck_assert_str_eq (got, "[General]\r\ngPCMachineExtensionNames=" RSS_PAIR CSE_PAIR
                    "\r\nVersion=2\r\n");
  free (got);
  /* Empty list. */
  got = gpt_edit ("[General]\r\ngPCMachineExtensionNames=\r\nVersion=7\r\n", 0, &changed);
  ck_assert_str_eq (got, "[General]\r\ngPCMachineExtensionNames=" CSE_PAIR "\r\nVersion=8\r\n");
  free (got);
  /* The Scripts CSE listed without our tool: the tool is added, in order. */
  got = gpt_edit ("[General]\r\ngPCMachineExtensionNames="
                  "[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{F0000000-0000-0000-0000-000000000000}]"
                  "\r\nVersion=65536\r\n", 0, &changed);
  ck_assert_str_eq (got, "[General]\r\ngPCMachineExtensionNames="
                    "[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{40B6664F-4972-11D1-A7CA-0000F87571E3}"
                    "{F0000000-0000-0000-0000-000000000000}]\r\nVersion=65537\r\n");
  free (got);
  /* Present in lower case: recognised. */
  got = gpt_edit ("[General]\r\ngPCMachineExtensionNames="
                  "[{42b5faae-6536-11d2-ae5a-0000f87571e3}{40b6664f-4972-11d1-a7ca-0000f87571e3}]"
                  "\r\nVersion=3\r\n", 0, &changed);
  ck_assert_int_eq (changed, 0);
  free (got);
}
END_TEST

START_TEST (test_gpt_version)
{
  int changed;
  char *got;
  const struct { const char *in, *out; } v[] = {
    { "0", "1" },
    { "131075", "131076" },               /* 0x00020003 -> 0x00020004 */
    { "196607", "131073" },               /* 0x0002FFFF -> 0x00020001, never 0 */
    { "65536", "65537" },                 /* user 1, computer 0 */
    { "4294901761", "4294901762" },       /* 0xFFFF0001 */
    { "-65535", "-65534" },               /* the same, written signed */
  };

  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char in[256], want[256];
    snprintf (in, sizeof in, "[General]\r\ngPCMachineExtensionNames=" CSE_PAIR "\r\nVersion=%s\r\n",
              v[i].in);
    snprintf (want, sizeof want,
              "[General]\r\ngPCMachineExtensionNames=" CSE_PAIR "\r\nVersion=%s\r\n", v[i].out);
    got = gpt_edit (in, 1, &changed);
    ck_assert_int_eq (changed, 1);
    assert_same (got, want);
    free (got);
  }

  /* No Version line: it was 0, now 1; LF and any case kept. */
  got = gpt_edit ("[general]\ngpcmachineextensionnames=" CSE_PAIR "\n", 1, &changed);
  ck_assert_str_eq (got, "[general]\ngpcmachineextensionnames=" CSE_PAIR "\nVersion=1\n");
  free (got);
  /* No extension line either, and spaces around = kept. */
  got = gpt_edit ("[General]\r\nversion = 5\r\n\r\n[Other]\r\nx=1\r\n", 0, &changed);
  ck_assert_str_eq (got, "[General]\r\nversion = 6\r\ngPCMachineExtensionNames=" CSE_PAIR
                    "\r\n\r\n[Other]\r\nx=1\r\n");
  free (got);
  /* No [General] at all: one is added. */
  got = gpt_edit ("[Other]\r\nx=1", 0, &changed);
  ck_assert_str_eq (got, "[Other]\r\nx=1\r\n[General]\r\ngPCFunctionalityVersion=2\r\n"
                    "gPCMachineExtensionNames=" CSE_PAIR
                    "\r\nVersion=1\r\n");
  free (got);
}
END_TEST

static void
gpt_refused (const char *bytes, size_t len)
{
  char *out = (char *) "untouched";
  size_t out_len = 9;
  int changed = 7;

  errno = 0;
  ck_assert_int_eq (defer_gpt_ini_edit (bytes, len, 1, &out, &out_len, &changed), -1);
  ck_assert_int_eq (errno, EINVAL);
  ck_assert_str_eq (out, "untouched");
  ck_assert_int_eq (changed, 0);
}

START_TEST (test_gpt_garbage)
{
  const char *texts[] = {
    "[General]\r\nVersion=abc\r\n",
    "[General]\r\nVersion=\r\n",
    "[General]\r\nVersion=4294967296\r\n",
    "[General]\r\nVersion=1\r\nversion=2\r\n",
    "[General]\r\ngPCMachineExtensionNames={42B5FAAE-6536-11D2-AE5A-0000F87571E3}\r\n",
    "[General]\r\ngPCMachineExtensionNames=[{xyz}]\r\nVersion=1\r\n",
    "[General]\r\ngPCMachineExtensionNames=[]\r\nVersion=1\r\n",
    "[General]\r\ngPCMachineExtensionNames=" CSE_PAIR "x\r\nVersion=1\r\n",
    "[General]\r\n[general]\r\n",
    "not an ini file\r\n",
  };

  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    gpt_refused (texts[i], strlen (texts[i]));
  gpt_refused ("\xff\xfe[\0G\0", 6);                     /* UTF-16 */
}
END_TEST

/* --defer=setup's cmd: the loader reads the script beside
 * SetupComplete.cmd; the rest as the startup script's. */
START_TEST (test_render_cmd_setup)
{
  char *got, *p, *e;
  unsigned char dec[4096];
  long n;
  size_t len;

  ck_assert_int_eq (defer_render_cmd (DEFER_SETUP, &got, &len), 0);
  ck_assert_ptr_nonnull (strstr (got, "\r\nrem Called once by SetupComplete.cmd beside it"));
  p = strstr (got, " -EncodedCommand ");
  p = strstr (p + 1, "\r\n\"%NP_PS%\" -NoProfile -NonInteractive -EncodedCommand ");
  ck_assert_ptr_nonnull (p);
  p = strstr (p, "-EncodedCommand ") + strlen ("-EncodedCommand ");
  e = strchr (p, ' ');
  n = unbase64 (p, (size_t) (e - p), dec);
  ck_assert_int_eq (n, (long) (2 * strlen (DEFER_LOADER_SETUP)));
  for (long i = 0; i < n / 2; i++)
    ck_assert (dec[2 * i] == (unsigned char) DEFER_LOADER_SETUP[i] && dec[2 * i + 1] == 0);
  ck_assert_ptr_nonnull (strstr (DEFER_LOADER_SETUP, "Join-Path $env:SystemRoot "
                                 "'Setup\\Scripts\\netvsc-patch.ps1'"));
  free (got);
}
END_TEST

/* --- SetupComplete.cmd ------------------------------------------------ */

#define BLOCK(eol) "rem netvsc-patch --defer=setup: begin" eol \
  "call \"%SystemRoot%\\Setup\\Scripts\\netvsc-patch.cmd\"" eol \
  "rem netvsc-patch --defer=setup: end" eol

static char *
sc_edit (const char *old, int install, int *changed, size_t *len)
{
  char *out = NULL;
  ck_assert_int_eq (defer_setupcomplete_edit (old, old ? strlen (old) : 0, install, &out,
                                              len, changed), 0);
  return out;
}

START_TEST (test_setupcomplete)
{
  int changed;
  size_t len;
  char *got, *back;

  /* none: ours alone, CRLF; removed: nothing left (the file goes) */
  got = sc_edit (NULL, 1, &changed, &len);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, BLOCK ("\r\n"));
  ck_assert_int_eq (defer_setupcomplete_has (got, len), 1);
  back = sc_edit (got, 1, &changed, &len);         /* idempotent */
  ck_assert_int_eq (changed, 0);
  ck_assert_str_eq (back, got);
  free (back);
  back = sc_edit (got, 0, &changed, &len);
  ck_assert_int_eq (changed, 1);
  ck_assert_uint_eq (len, 0);
  free (back);
  free (got);

  /* theirs, LF, with an exit at the end: ours first, in their line ends;
   * removal gives back their bytes */
  const char *theirs = "@echo off\nnet user x /active:no\nexit /b 0";
  got = sc_edit (theirs, 1, &changed, &len);
  ck_assert_int_eq (changed, 1);
  ck_assert_str_eq (got, BLOCK ("\n") "@echo off\nnet user x /active:no\nexit /b 0");
  back = sc_edit (got, 0, &changed, &len);
  ck_assert_str_eq (back, theirs);
  free (back);
  free (got);
  ck_assert_int_eq (defer_setupcomplete_has (theirs, strlen (theirs)), 0);
  got = sc_edit (theirs, 0, &changed, &len);       /* nothing to remove */
  ck_assert_int_eq (changed, 0);
  ck_assert_str_eq (got, theirs);
  free (got);

  /* a UTF-8 BOM stays first; only blank lines left: the file goes */
  got = sc_edit ("\xef\xbb\xbf\r\n\r\n", 1, &changed, &len);
  ck_assert_str_eq (got, "\xef\xbb\xbf" BLOCK ("\r\n") "\r\n\r\n");
  back = sc_edit (got, 0, &changed, &len);
  ck_assert_uint_eq (len, 0);
  free (back);
  free (got);

  /* our block moved inside theirs (indented, other case): still ours */
  got = sc_edit ("echo a\r\n  REM netvsc-patch --defer=setup: BEGIN\r\ncall x\r\n"
                 "rem netvsc-patch --defer=setup: end\r\necho b\r\n", 0, &changed, &len);
  ck_assert_str_eq (got, "echo a\r\necho b\r\n");
  free (got);

  /* refused, left alone: half a block, UTF-16, NUL */
  {
    const char *bad[] = { "rem netvsc-patch --defer=setup: begin\r\ncall x\r\n", "\xff\xfe@\0" };
    for (size_t i = 0; i < 2; i++) {
      char *out = (char *) "untouched";
      errno = 0;
      ck_assert_int_eq (defer_setupcomplete_edit (bad[i], i ? 4 : strlen (bad[i]), i, &out,
                                                  &len, &changed), -1);
      ck_assert_int_eq (errno, EINVAL);
      ck_assert_str_eq (out, "untouched");
    }
  }
}
END_TEST

Suite *
defer_suite (void)
{
  Suite *s = suite_create ("defer");
  TCase *script = tcase_create ("script");
  TCase *ini = tcase_create ("ini");

  tcase_add_test (script, test_render_netvsc);
  tcase_add_test (script, test_render_service_and_desc);
  tcase_add_test (script, test_render_device_id);
  tcase_add_test (script, test_render_values);
  tcase_add_test (script, test_render_refuses);
  tcase_add_test (script, test_render_cmd);
  tcase_add_test (script, test_render_once);
  tcase_add_test (script, test_render_cmd_setup);
  tcase_add_test (script, test_template_structure);
  tcase_add_test (script, test_template_ps2);
  tcase_add_test (script, test_ps_syntax);
  tcase_set_timeout (script, 60);
  suite_add_tcase (s, script);
  tcase_add_test (ini, test_scripts_create_and_again);
  tcase_add_test (ini, test_scripts_others_kept);
  tcase_add_test (ini, test_scripts_gaps);
  tcase_add_test (ini, test_scripts_encodings);
  tcase_add_test (ini, test_scripts_garbage);
  tcase_add_test (ini, test_gpt_create);
  tcase_add_test (ini, test_gpt_sorted_insert);
  tcase_add_test (ini, test_gpt_version);
  tcase_add_test (ini, test_gpt_garbage);
  tcase_add_test (ini, test_setupcomplete);
  suite_add_tcase (s, ini);
  return s;
}
