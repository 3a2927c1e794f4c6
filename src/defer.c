/* netvsc-patch: --defer's boot-time script, from the templates in src/.
 *
 * The templates are src/defer.ps1.in and src/defer.cmd.in, embedded in
 * this object with the assembler's .incbin (paths relative to the top
 * directory, where make runs; the Makefile makes this object depend on
 * them).  They hold @NP_NAME@ placeholders; what replaces them is built
 * here and nowhere else, so that all the quoting is in one place.
 *
 * Quoting.  Everything the user gave (the match argument, value names,
 * REG_SZ data) ends up in PowerShell single-quoted strings, the only
 * kind in which nothing is interpreted but the quote itself, doubled.
 * PowerShell also takes U+2018, U+2019, U+201A and U+201B for single
 * quotes (CharTraits.cs, IsSingleQuote), so those are doubled too: a
 * doubled quote stands for the second of the two, hence each is doubled
 * with itself.  Newlines end a PowerShell line whatever the quoting, and
 * the text of a non-UTF-8 byte would change on the way, so control
 * characters and invalid UTF-8 are refused.  No user text goes into
 * double-quoted strings, comments or the cmd file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defer.h"
#include "strbuf.h"
#include "utf16.h"

/* The version has one source, the Makefile's VERSION (-D). */
#ifndef NETVSC_PATCH_VERSION
#error "NETVSC_PATCH_VERSION is not defined: build with make (VERSION in the Makefile)"
#endif

/* A template as a NUL-terminated string SYM. */
#define EMBED(sym, path)                                                \
  __asm__ (".section .rodata\n"                                         \
           ".global " #sym "\n.hidden " #sym "\n"                       \
           #sym ":\n.incbin \"" path "\"\n.byte 0\n.previous\n");      \
  extern const char sym[] __attribute__ ((visibility ("hidden")))

EMBED (defer_ps1_template, "src/defer.ps1.in");
EMBED (defer_cmd_template, "src/defer.cmd.in");

/* Is S valid UTF-8 without control characters?  (Overlong forms,
 * surrogates and code points past U+10FFFF are invalid.) */
static int
text_ok (const char *s)
{
  const unsigned char *p = (const unsigned char *) s;

  while (*p) {
    uint32_t cp;
    size_t n;
    if (*p < 0x20 || *p == 0x7f)
      return 0;
    if ((n = utf8_decode (p, SIZE_MAX, &cp)) == 0)
      return 0;
    if (cp >= 0x80 && cp <= 0x9f)       /* C1 controls, NEL among them */
      return 0;
    p += n;
  }
  return 1;
}

/* The UTF-8 single quotes of PowerShell other than ': U+2018..U+201B
 * are E2 80 98..9B. */
static size_t
quote_len (const char *s)
{
  const unsigned char *p = (const unsigned char *) s;

  if (p[0] == '\'')
    return 1;
  if (p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0x98 && p[2] <= 0x9b)
    return 3;
  return 0;
}

/* S as a PowerShell single-quoted string; with LIKE, backticks doubled
 * as well, so that -like reads them as themselves (FNM_NOESCAPE). */
static void
ps_quote (struct strbuf *b, const char *s, int like)
{
  strbuf_add (b, "'", 1);
  while (*s) {
    size_t q = quote_len (s);
    if (q) {
      strbuf_add (b, s, q);
      strbuf_add (b, s, q);
      s += q;
      continue;
    }
    if (like && *s == '`')
      strbuf_add (b, "`", 1);
    strbuf_add (b, s, 1);
    s++;
  }
  strbuf_add (b, "'", 1);
}

struct subst {
  const char *name;
  const char *text;
};

/* Fill template T's @NP_NAME@ placeholders from SUBST, with CRLF line
 * ends (LF in the template), after a UTF-8 BOM with BOM.  A placeholder
 * without a substitution is a bug in the template: EINVAL. */
static int
fill (const char *t, const struct subst *subst, size_t n, int bom, char **out,
      size_t *len)
{
  struct strbuf b = { 0 };

  if (bom)
    strbuf_add (&b, "\xef\xbb\xbf", 3);
  while (*t) {
    if (strncmp (t, "@NP_", 4) == 0) {
      const char *end = strchr (t + 1, '@');
      size_t i;
      for (i = 0; end && i < n; i++)
        if (strlen (subst[i].name) == (size_t) (end - t - 1) &&
            strncmp (subst[i].name, t + 1, (size_t) (end - t - 1)) == 0)
          break;
      if (end == NULL || i == n) {
        free (b.p);
        errno = EINVAL;
        return -1;
      }
      /* Substituted text is never scanned again.  Its newlines become
       * CRLF like the template's. */
      for (const char *s = subst[i].text; *s; s++)
        if (*s == '\n')
          strbuf_add (&b, "\r\n", 2);
        else
          strbuf_add (&b, s, 1);
      t = end + 1;
      continue;
    }
    if (*t == '\n' && !(b.len && b.p[b.len - 1] == '\r'))
      strbuf_add (&b, "\r", 1);
    strbuf_add (&b, t, 1);
    t++;
  }
  if (b.oom || b.p == NULL) {
    free (b.p);
    errno = ENOMEM;
    return -1;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}

static const char *
kind_name (enum match_kind k)
{
  switch (k) {
  case MATCH_NETVSC: return "netvsc";
  case MATCH_SERVICE: return "service";
  case MATCH_DESC: return "desc";
  case MATCH_DEVICE_ID: return "id";
  }
  return NULL;
}

/* The version goes into the script unquoted (a comment and a string):
 * letters, digits and . + - ~ only. */
static int
version_ok (const char *v)
{
  if (*v == '\0')
    return 0;
  for (; *v; v++)
    if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'z') ||
          (*v >= 'A' && *v <= 'Z') || strchr (".+-~", *v)))
      return 0;
  return 1;
}

static int
spec_ok (const struct defer_spec *s)
{
  const char *kind = kind_name (s->match.kind);

  if (kind == NULL || s->n == 0 || s->values == NULL)
    return 0;
  if (s->match.kind != MATCH_NETVSC &&
      (s->match.arg == NULL || s->match.arg[0] == '\0' || !text_ok (s->match.arg)))
    return 0;
  for (size_t i = 0; i < s->n; i++) {
    const struct defer_value *v = &s->values[i];
    if (v->name == NULL || v->name[0] == '\0' || !text_ok (v->name))
      return 0;
    if (!v->is_dword && (v->text == NULL || !text_ok (v->text)))
      return 0;
  }
  return 1;
}

int
defer_render_script (const struct defer_spec *s, char **out, size_t *len)
{
  struct strbuf kind = { 0 }, arg = { 0 }, pattern = { 0 }, values = { 0 };
  int r;

  if (!spec_ok (s) || !version_ok (NETVSC_PATCH_VERSION)) {
    errno = EINVAL;
    return -1;
  }
  ps_quote (&kind, kind_name (s->match.kind), 0);
  if (s->match.kind == MATCH_NETVSC) {
    strbuf_str (&arg, "$null");
    strbuf_str (&pattern, "$null");
  }
  else {
    ps_quote (&arg, s->match.arg, 0);
    if (s->match.kind == MATCH_DEVICE_ID)
      ps_quote (&pattern, s->match.arg, 1);
    else
      strbuf_str (&pattern, "$null");
  }
  for (size_t i = 0; i < s->n; i++) {
    const struct defer_value *v = &s->values[i];
    char num[16];
    strbuf_str (&values, i ? "\n  @{ Name = " : "  @{ Name = ");
    ps_quote (&values, v->name, 0);
    if (v->is_dword) {
      snprintf (num, sizeof num, "%" PRIu32, v->dword);
      strbuf_str (&values, "; Type = 'DWord'; Data = ");
      strbuf_str (&values, num);
    }
    else {
      strbuf_str (&values, "; Type = 'String'; Data = ");
      ps_quote (&values, v->text, 0);
    }
    strbuf_str (&values, v->check ? "; Check = $true }" : "; Check = $false }");
  }
  if (kind.oom || arg.oom || pattern.oom || values.oom) {
    errno = ENOMEM;
    r = -1;
  }
  else {
    const struct subst subst[] = {
      { "NP_VERSION", NETVSC_PATCH_VERSION },
      { "NP_MATCH_KIND", kind.p },
      { "NP_MATCH_ARG", arg.p },
      { "NP_MATCH_PATTERN", pattern.p },
      { "NP_VALUES", values.p },
      { "NP_MODE", s->mode == DEFER_ONCE ? "'once'"
        : s->mode == DEFER_SETUP ? "'setup'" : "'always'" },
    };
    r = fill (defer_ps1_template, subst, sizeof subst / sizeof subst[0], 1, out, len);
  }
  free (kind.p);
  free (arg.p);
  free (pattern.p);
  free (values.p);
  return r;
}

/* Standard base64 (RFC 4648, with padding) of LEN bytes at P. */
static void
base64 (struct strbuf *b, const unsigned char *p, size_t len)
{
  static const char abc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t) p[i] << 16;
    char q[4];
    if (i + 1 < len)
      v |= (uint32_t) p[i + 1] << 8;
    if (i + 2 < len)
      v |= p[i + 2];
    q[0] = abc[v >> 18 & 63];
    q[1] = abc[v >> 12 & 63];
    q[2] = i + 1 < len ? abc[v >> 6 & 63] : '=';
    q[3] = i + 2 < len ? abc[v & 63] : '=';
    strbuf_add (b, q, 4);
  }
}

int
defer_render_cmd (enum defer_mode mode, char **out, size_t *len)
{
  const char *loader = mode == DEFER_SETUP ? DEFER_LOADER_SETUP : DEFER_LOADER_GPO;
  struct strbuf utf16 = { 0 }, b64 = { 0 };
  int r;

  if (!version_ok (NETVSC_PATCH_VERSION)) {
    errno = EINVAL;
    return -1;
  }
  /* -EncodedCommand takes the command as UTF-16LE in base64.  The
   * whole script (about 25 KB) would be some 66,000 characters encoded,
   * far past cmd.exe's 8191 for a command line: the loader it is, about
   * 400. */
  if (utf8_to_utf16le ((const unsigned char *) loader, strlen (loader), &utf16) == -1) {
    free (utf16.p);
    return -1;
  }
  base64 (&b64, (const unsigned char *) utf16.p, utf16.len);
  free (utf16.p);
  if (utf16.oom || b64.oom || b64.p == NULL) {
    free (b64.p);
    errno = ENOMEM;
    return -1;
  }
  {
    const struct subst subst[] = {
      { "NP_VERSION", NETVSC_PATCH_VERSION },
      { "NP_LOADER", b64.p },
      { "NP_RUN_BY", mode == DEFER_SETUP
        ? "rem Called once by SetupComplete.cmd beside it, at the end of Windows\n"
          "rem Setup of a generalized image (--defer=setup)."
        : "rem The machine startup script of the local Group Policy object, run at\n"
          "rem boot (--defer)." },
    };
    /* No BOM: cmd.exe would run it as part of the first command. */
    r = fill (defer_cmd_template, subst, 3, 0, out, len);
  }
  free (b64.p);
  return r;
}
