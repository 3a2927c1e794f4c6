/* netvsc-patch: the local Group Policy object's ini files, for --defer.
 *
 * scripts.ini lists the machine startup scripts ([Startup], keys
 * NCmdLine and NParameters numbered from 0); gpt.ini says which
 * client-side extensions the GPO uses and its version, which Windows
 * compares with the one it processed last.  [MS-GPSCR] 2.2.2 specifies
 * scripts.ini as UTF-16LE with a BOM; gpt.ini is ANSI.  Both are read
 * leniently (any case in section and key names, CRLF or LF, scripts.ini
 * also UTF-16LE without a BOM or plain UTF-8) and every line we do not
 * change is kept as it was; what cannot be read is refused (EINVAL) and
 * left alone, never rewritten from a guess. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "defer.h"
#include "utf16.h"
#include "strbuf.h"

#define OUR_CMD "netvsc-patch.cmd"
/* The Scripts client-side extension, and the tool extension of its
 * computer half (the Group Policy editor's Startup/Shutdown node). */
#define SCRIPTS_CSE  "{42B5FAAE-6536-11D2-AE5A-0000F87571E3}"
#define SCRIPTS_TOOL "{40B6664F-4972-11D1-A7CA-0000F87571E3}"

static int
copy_out (const char *old, size_t len, char **out, size_t *out_len)
{
  struct strbuf b = { 0 };

  if (old)
    strbuf_add (&b, old, len);
  return strbuf_give (&b, out, out_len);
}

/* --- lines ------------------------------------------------------------ */

enum line_kind { L_BLANK, L_COMMENT, L_SECTION, L_KEY };

struct line {
  const char *s;      /* the line, without its end */
  size_t len;
  const char *eol;    /* "\r\n", "\n", or "" for the last line */
  enum line_kind kind;
  const char *name;   /* section name or key (trimmed), in s */
  size_t name_len;
  const char *value;  /* key value (trimmed), in s */
  size_t value_len;
  int section;        /* index of the line of its section header, -1 */
  /* scripts.ini [Startup] keys */
  long index;         /* N of NCmdLine / NParameters, or -1 */
  int is_cmdline;
  size_t digits_at;   /* where N starts in s */
  size_t digits_len;
  int ours;           /* NCmdLine naming our script */
  int drop;
  char *text;         /* replacement for s, malloc'd, or NULL */
};

struct ini {
  struct line *v;
  size_t n;
  const char *eol;    /* what new lines end with: the file's first, or CRLF */
};

static void
ini_free (struct ini *ini)
{
  for (size_t i = 0; i < ini->n; i++)
    free (ini->v[i].text);
  free (ini->v);
  ini->v = NULL;
  ini->n = 0;
}

static int
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

static void
trim (const char **s, size_t *len)
{
  while (*len && is_blank (**s)) {
    (*s)++;
    (*len)--;
  }
  while (*len && is_blank ((*s)[*len - 1]))
    (*len)--;
}

static int
same (const char *s, size_t len, const char *word)
{
  return strlen (word) == len && strncasecmp (s, word, len) == 0;
}

/* The line at *P for ini and batch files alike: its own end kept (what we
 * do not change is written back as it was), the file's first in *FILE_EOL. */
static void
cut_line (const char **p, const char *end, struct line *l, const char **file_eol, int *first)
{
  const char *nl = memchr (*p, '\n', (size_t) (end - *p));

  l->s = *p;
  l->len = nl ? (size_t) (nl - *p) : (size_t) (end - *p);
  l->eol = nl ? "\n" : "";
  if (nl && l->len && (*p)[l->len - 1] == '\r') {
    l->len--;
    l->eol = "\r\n";
  }
  if (nl && *first) {
    *file_eol = l->eol;
    *first = 0;
  }
  *p = nl ? nl + 1 : end;
}

/* Append L to *V (*N lines); -1 if out of memory, *V left for the caller. */
static int
lines_push (struct line **v, size_t *n, const struct line *l)
{
  struct line *grown = realloc (*v, (*n + 1) * sizeof **v);

  if (grown == NULL)
    return -1;
  *v = grown;
  (*v)[(*n)++] = *l;
  return 0;
}

/* Split TEXT (8-bit: ASCII, UTF-8 or ANSI; NUL-free) into classified
 * lines.  -1 (EINVAL) on a line that is no section header, key, comment
 * or blank, a key before any section, a lone CR, or a control byte. */
static int
ini_parse (const char *text, size_t len, struct ini *ini)
{
  const char *p = text, *end = text + len;
  int section = -1;

  memset (ini, 0, sizeof *ini);
  ini->eol = "\r\n";
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char) text[i];
    if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f ||
        (c == '\r' && (i + 1 == len || text[i + 1] != '\n')))
      goto bad;
  }
  for (int first_eol = 1; p < end;) {
    struct line l = { .s = p, .section = section, .index = -1 };

    cut_line (&p, end, &l, &ini->eol, &first_eol);

    const char *s = l.s;
    size_t n = l.len;
    trim (&s, &n);
    if (n == 0)
      l.kind = L_BLANK;
    else if (s[0] == ';')
      l.kind = L_COMMENT;
    else if (s[0] == '[') {
      if (s[n - 1] != ']')
        goto bad;
      l.kind = L_SECTION;
      l.name = s + 1;
      l.name_len = n - 2;
      trim (&l.name, &l.name_len);
      section = (int) ini->n;
      l.section = section;
    }
    else {
      const char *eq = memchr (s, '=', n);
      if (eq == NULL || section == -1)
        goto bad;
      l.kind = L_KEY;
      l.name = s;
      l.name_len = (size_t) (eq - s);
      trim (&l.name, &l.name_len);
      l.value = eq + 1;
      l.value_len = (size_t) (s + n - l.value);
      trim (&l.value, &l.value_len);
      if (l.name_len == 0)
        goto bad;
    }
    if (lines_push (&ini->v, &ini->n, &l) == -1) {
      ini_free (ini);
      errno = ENOMEM;
      return -1;
    }
  }
  return 0;

 bad:
  ini_free (ini);
  errno = EINVAL;
  return -1;
}

/* The header line of the section named NAME, or -1; -2 (EINVAL) if
 * there are two. */
static int
ini_find_section (const struct ini *ini, const char *name)
{
  int found = -1;

  for (size_t i = 0; i < ini->n; i++)
    if (ini->v[i].kind == L_SECTION && same (ini->v[i].name, ini->v[i].name_len, name)) {
      if (found != -1) {
        errno = EINVAL;
        return -2;
      }
      found = (int) i;
    }
  return found;
}

/* The line after the last key or comment of section SEC (new keys go
 * there, before the blank lines that separate it from the next). */
static size_t
ini_section_end (const struct ini *ini, int sec)
{
  size_t at = (size_t) sec + 1;

  for (size_t i = (size_t) sec + 1; i < ini->n && ini->v[i].kind != L_SECTION; i++)
    if (ini->v[i].kind != L_BLANK)
      at = i + 1;
  return at;
}

/* The file with its changes: kept lines as they were, rewritten ones
 * from text, dropped ones left out, and NEW (already ended lines) put
 * before line AT. */
static void
ini_write (const struct ini *ini, size_t at, const char *new, struct strbuf *b)
{
  for (size_t i = 0; i <= ini->n; i++) {
    if (i == at && new) {
      /* The line before must end for a new one to follow it. */
      if (i > 0 && ini->v[i - 1].eol[0] == '\0' && !ini->v[i - 1].drop)
        strbuf_str (b, ini->eol);
      strbuf_str (b, new);
    }
    if (i == ini->n)
      break;
    const struct line *l = &ini->v[i];
    if (l->drop)
      continue;
    if (l->text)
      strbuf_str (b, l->text);
    else
      strbuf_add (b, l->s, l->len);
    strbuf_str (b, l->eol);
  }
}

/* --- scripts.ini ------------------------------------------------------- */

/* scripts.ini's bytes as UTF-8 text: UTF-16LE with a BOM (the format),
 * UTF-16LE without one (told by the NUL high byte of its first
 * character, which is ASCII in any scripts.ini), or UTF-8 / ASCII with
 * or without a BOM as a hand-written file may be. */
static int
scripts_decode (const char *old, size_t len, struct strbuf *text)
{
  const unsigned char *p = (const unsigned char *) old;

  if (len >= 2 && p[0] == 0xff && p[1] == 0xfe)
    return utf16le_to_utf8 (p + 2, len - 2, text);
  if (len >= 2 && p[0] == 0xfe && p[1] == 0xff) {
    errno = EINVAL;             /* big-endian: not something Windows writes */
    return -1;
  }
  if (len >= 2 && p[0] != 0 && p[1] == 0)
    return utf16le_to_utf8 (p, len, text);
  if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
    p += 3;
    len -= 3;
  }
  if (len && memchr (p, 0, len)) {
    errno = EINVAL;
    return -1;
  }
  strbuf_add (text, (const char *) p, len);
  /* Only to validate it: the text must be UTF-8. */
  struct strbuf check = { 0 };
  int r = utf8_to_utf16le (p, len, &check);
  free (check.p);
  return r;
}

/* Is this NCmdLine value our script: "netvsc-patch.cmd", relative (to
 * Machine\Scripts\Startup) or as a full path, in any case, quoted or
 * not? */
static int
is_our_cmdline (const char *v, size_t len)
{
  size_t n = strlen (OUR_CMD);

  if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
    v++;
    len -= 2;
    trim (&v, &len);
  }
  if (len < n || strncasecmp (v + len - n, OUR_CMD, n) != 0)
    return 0;
  return len == n || v[len - n - 1] == '\\' || v[len - n - 1] == '/';
}

/* Mark the [Startup] keys of INI.  Returns the header line or -1 when
 * there is no [Startup], -2 (EINVAL) on two sections or a key twice. */
static int
scripts_mark (struct ini *ini)
{
  int sec = ini_find_section (ini, "Startup");

  if (sec < 0)
    return sec;
  for (size_t i = (size_t) sec + 1; i < ini->n && ini->v[i].kind != L_SECTION; i++) {
    struct line *l = &ini->v[i];
    size_t d = 0;
    unsigned long long n = 0;
    if (l->kind != L_KEY)
      continue;
    while (d < l->name_len && isdigit ((unsigned char) l->name[d]) && d < 11)
      n = n * 10 + (unsigned) (l->name[d++] - '0');
    if (d == 0 || n > INT32_MAX)
      continue;                 /* not one of ours to number: kept as is */
    if (same (l->name + d, l->name_len - d, "CmdLine"))
      l->is_cmdline = 1;
    else if (!same (l->name + d, l->name_len - d, "Parameters"))
      continue;
    l->index = (long) n;
    l->digits_at = (size_t) (l->name - l->s);
    l->digits_len = d;
    l->ours = l->is_cmdline && is_our_cmdline (l->value, l->value_len);
    for (size_t j = (size_t) sec + 1; j < i; j++)
      if (ini->v[j].index == l->index && ini->v[j].is_cmdline == l->is_cmdline) {
        errno = EINVAL;
        return -2;
      }
  }
  return sec;
}

/* Give key line L the number N (only the digits change). */
static int
renumber_line (struct line *l, long n)
{
  char num[24];
  int w = snprintf (num, sizeof num, "%ld", n);
  size_t tail = l->len - l->digits_at - l->digits_len;

  free (l->text);
  l->text = malloc (l->digits_at + (size_t) w + tail + 1);
  if (l->text == NULL)
    return -1;
  memcpy (l->text, l->s, l->digits_at);
  memcpy (l->text + l->digits_at, num, (size_t) w);
  memcpy (l->text + l->digits_at + w, l->s + l->digits_at + l->digits_len, tail);
  l->text[l->digits_at + (size_t) w + tail] = '\0';
  return 0;
}

/* Is there a kept [Startup] line numbered N (a CmdLine with CMDLINE,
 * else either kind)? */
static int
scripts_uses (const struct ini *ini, int sec, long n, int cmdline)
{
  for (size_t i = (size_t) sec + 1; i < ini->n && ini->v[i].kind != L_SECTION; i++)
    if (ini->v[i].index == n && !ini->v[i].drop && (!cmdline || ini->v[i].is_cmdline))
      return 1;
  return 0;
}

/* The first number without a kept NCmdLine: Windows runs the startup
 * scripts 0, 1, ... and stops there, so the entries numbered below it
 * run and those above it do not. */
static long
scripts_first_free (const struct ini *ini, int sec)
{
  long n = 0;

  while (sec >= 0 && scripts_uses (ini, sec, n, 1))
    n++;
  return n;
}

/* After our entries are dropped: the entries that ran before them and
 * after them (numbered below STOP, the first free number before the
 * drop) are numbered 0, 1, ... again in their order, so that the same
 * scripts run in the same order; those at or above STOP, which Windows
 * did not run, keep their numbers and stay asleep.  Nothing is
 * renumbered when ours was the last that ran (the usual case: it was
 * added last).  Returns 0, or -1 (ENOMEM). */
static int
scripts_close_gap (struct ini *ini, int sec, long stop)
{
  for (size_t i = (size_t) sec + 1; i < ini->n && ini->v[i].kind != L_SECTION; i++) {
    struct line *l = &ini->v[i];
    long rank = 0;
    if (l->index < 0 || l->drop || l->index >= stop)
      continue;
    for (long m = 0; m < l->index; m++)
      rank += scripts_uses (ini, sec, m, 1);
    if (rank != l->index && renumber_line (l, rank) == -1)
      return -1;
  }
  return 0;
}

/* Drop our NCmdLine lines and the NParameters of the same numbers. */
static void
scripts_drop_ours (struct ini *ini, int sec)
{
  for (size_t i = (size_t) sec + 1; sec >= 0 && i < ini->n && ini->v[i].kind != L_SECTION; i++)
    if (ini->v[i].ours)
      for (size_t j = (size_t) sec + 1; j < ini->n && ini->v[j].kind != L_SECTION; j++)
        if (ini->v[j].index == ini->v[i].index)
          ini->v[j].drop = 1;
}

static int
scripts_parse (const char *old, size_t old_len, struct strbuf *text, struct ini *ini)
{
  if (scripts_decode (old, old_len, text) == -1)
    return -1;
  if (text->oom) {
    errno = ENOMEM;
    return -1;
  }
  return ini_parse (text->p ? text->p : "", text->len, ini);
}

int
defer_scripts_ini_has (const char *buf, size_t len)
{
  struct strbuf text = { 0 };
  struct ini ini;
  int sec, has = 0;

  if (scripts_parse (buf, len, &text, &ini) == -1) {
    free (text.p);
    return -1;
  }
  sec = scripts_mark (&ini);
  if (sec == -2)
    has = -1;
  for (size_t i = 0; sec >= 0 && i < ini.n; i++)
    if (ini.v[i].ours)
      has = 1;
  ini_free (&ini);
  free (text.p);
  return has;
}

int
defer_scripts_ini_edit (const char *old, size_t old_len, int install,
                        char **out, size_t *out_len, int *changed)
{
  struct strbuf text = { 0 }, edited = { 0 }, entry = { 0 }, utf16 = { 0 };
  struct ini ini;
  int sec, has = 0, r = -1;
  size_t at;

  *changed = 0;
  install = !!install;
  if (old == NULL)
    old_len = 0;
  if (scripts_parse (old, old_len, &text, &ini) == -1) {
    free (text.p);
    return -1;
  }
  sec = scripts_mark (&ini);
  if (sec == -2)
    goto out;
  for (size_t i = 0; sec >= 0 && i < ini.n; i++)
    has |= ini.v[i].ours;

  if (install) {
    long stop = scripts_first_free (&ini, sec), n;
    /* Registered where Windows runs it: nothing to do.  An entry of
     * ours after a gap never runs: it is taken out and ours added
     * where it runs. */
    for (size_t i = 0; sec >= 0 && i < ini.n; i++)
      if (ini.v[i].ours && ini.v[i].index < stop) {
        r = copy_out (old, old_len, out, out_len);
        goto out;
      }
    scripts_drop_ours (&ini, sec);
    n = scripts_first_free (&ini, sec);
    /* Ours goes at the first free number, the only place where it runs
     * without renumbering anything.  If the next number is taken (an
     * entry Windows skips today), ours there would wake it: refused. */
    if (sec >= 0 && (scripts_uses (&ini, sec, n, 0) || scripts_uses (&ini, sec, n + 1, 1))) {
      errno = ERANGE;
      goto out;
    }
    if (sec < 0) {
      at = ini.n;
      strbuf_str (&entry, "[Startup]");
      strbuf_str (&entry, ini.eol);
    }
    else
      at = ini_section_end (&ini, sec);
    char line[64];
    snprintf (line, sizeof line, "%ldCmdLine=" OUR_CMD "%s%ldParameters=%s",
              n, ini.eol, n, ini.eol);
    strbuf_str (&entry, line);
  }
  else {
    long stop = scripts_first_free (&ini, sec);
    if (!has) {               /* nothing to take out */
      r = copy_out (old, old_len, out, out_len);
      goto out;
    }
    scripts_drop_ours (&ini, sec);
    if (scripts_close_gap (&ini, sec, stop) == -1) {
      errno = ENOMEM;
      goto out;
    }
    /* A [Startup] left with nothing in it goes too. */
    ini.v[sec].drop = 1;
    for (size_t i = (size_t) sec + 1; i < ini.n && ini.v[i].kind != L_SECTION; i++)
      if (!ini.v[i].drop && ini.v[i].kind != L_BLANK)
        ini.v[sec].drop = 0;
    at = ini.n;
  }
  ini_write (&ini, at, entry.p, &edited);
  if (entry.oom || edited.oom) {
    errno = ENOMEM;
    goto out;
  }
  strbuf_add (&utf16, "\xff\xfe", 2);
  if (utf8_to_utf16le ((const unsigned char *) (edited.p ? edited.p : ""), edited.len, &utf16) == -1)
    goto out;
  if (strbuf_give (&utf16, out, out_len) == -1)
    goto out;
  utf16.p = NULL;
  *changed = 1;
  r = 0;

 out:
  ini_free (&ini);
  free (text.p);
  free (edited.p);
  free (entry.p);
  free (utf16.p);
  return r;
}

/* --- gpt.ini ----------------------------------------------------------- */

/* One [{CSE}{tool}...] group of an extension list, by position. */
struct cse_group {
  const char *s;      /* from '[' to ']' included */
  size_t len;
};

static int
is_guid (const char *s, size_t len)
{
  /* {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX} */
  if (len != 38 || s[0] != '{' || s[37] != '}')
    return 0;
  for (size_t i = 1; i < 37; i++)
    if ((i == 9 || i == 14 || i == 19 || i == 24) ? s[i] != '-'
        : !isxdigit ((unsigned char) s[i]))
      return 0;
  return 1;
}

/* Split an extension list into its groups; -1 (EINVAL) unless it is a
 * sequence of [ followed by one or more {GUID} and ]. */
static int
cse_parse (const char *v, size_t len, struct cse_group *g, size_t max, size_t *n)
{
  size_t i = 0;

  *n = 0;
  while (i < len) {
    size_t start = i;
    if (v[i] != '[' || *n == max)
      goto bad;
    i++;
    if (i >= len || v[i] != '{')
      goto bad;
    while (i < len && v[i] == '{') {
      if (!is_guid (v + i, len - i < 38 ? len - i : 38))
        goto bad;
      i += 38;
    }
    if (i >= len || v[i] != ']')
      goto bad;
    i++;
    g[*n].s = v + start;
    g[(*n)++].len = i - start;
  }
  return 0;
 bad:
  errno = EINVAL;
  return -1;
}

/* Version=, machine half (low 16 bits) incremented; never to 0, which
 * Group Policy reads as "no computer settings".  The user half (high 16
 * bits) is kept.  Written back unsigned, or signed if it was. */
static int
version_bump (const char *v, size_t len, char *out, size_t size)
{
  int negative = len && v[0] == '-';
  unsigned long long n = 0;
  uint32_t u, machine;
  size_t i = negative;

  if (i == len)
    goto bad;
  for (; i < len; i++) {
    if (!isdigit ((unsigned char) v[i]) || n > UINT32_MAX)
      goto bad;
    n = n * 10 + (unsigned) (v[i] - '0');
  }
  if (negative ? n > (unsigned long long) INT32_MAX + 1 : n > UINT32_MAX)
    goto bad;
  u = negative ? (uint32_t) -n : (uint32_t) n;
  machine = (u & 0xffff) == 0xffff ? 1 : (u & 0xffff) + 1;
  u = (u & 0xffff0000u) | machine;
  if (negative && u > INT32_MAX)
    snprintf (out, size, "%" PRId32, (int32_t) u);
  else
    snprintf (out, size, "%" PRIu32, u);
  return 0;
 bad:
  errno = EINVAL;
  return -1;
}

/* Replace the value of key line L by VALUE, keeping "  name =  " as
 * written. */
static int
set_value (struct line *l, const char *value)
{
  size_t head = (size_t) (l->value - l->s);
  size_t tail = l->len - head - l->value_len;
  size_t n = strlen (value);

  l->text = malloc (head + n + tail + 1);
  if (l->text == NULL)
    return -1;
  memcpy (l->text, l->s, head);
  memcpy (l->text + head, value, n);
  memcpy (l->text + head + n, l->value + l->value_len, tail);
  l->text[head + n + tail] = '\0';
  return 0;
}

/* The new extension list: SCRIPTS_TOOL added to the Scripts group, or
 * the group inserted in order of CSE GUID, as Windows keeps the list
 * (and reads it: [MS-GPOL] 3.2.1.24 keeps extensions in ascending
 * order).  *ADDED says whether anything was. */
static int
cse_add (const char *v, size_t len, struct strbuf *b, int *added)
{
  struct cse_group g[256];
  size_t n, i;

  *added = 0;
  if (cse_parse (v, len, g, sizeof g / sizeof g[0], &n) == -1)
    return -1;
  for (i = 0; i < n; i++)
    if (strncasecmp (g[i].s + 1, SCRIPTS_CSE, 38) == 0) {
      /* Present: make sure the tool is listed, in order, after it. */
      const char *t = g[i].s + 39, *end = g[i].s + g[i].len - 1;
      while (t < end && strncasecmp (t, SCRIPTS_TOOL, 38) < 0)
        t += 38;
      if (t < end && strncasecmp (t, SCRIPTS_TOOL, 38) == 0) {
        strbuf_add (b, v, len);
        return 0;
      }
      strbuf_add (b, v, (size_t) (t - v));
      strbuf_str (b, SCRIPTS_TOOL);
      strbuf_add (b, t, len - (size_t) (t - v));
      *added = 1;
      return 0;
    }
  /* Absent: before the first group of a greater CSE GUID. */
  for (i = 0; i < n && strncasecmp (g[i].s + 1, SCRIPTS_CSE, 38) < 0; i++)
    ;
  strbuf_add (b, v, i < n ? (size_t) (g[i].s - v) : len);
  strbuf_str (b, "[" SCRIPTS_CSE SCRIPTS_TOOL "]");
  if (i < n)
    strbuf_add (b, g[i].s, len - (size_t) (g[i].s - v));
  *added = 1;
  return 0;
}

static int
find_key (const struct ini *ini, int sec, const char *name)
{
  int found = -1;

  for (size_t i = (size_t) sec + 1; i < ini->n && ini->v[i].kind != L_SECTION; i++)
    if (ini->v[i].kind == L_KEY && same (ini->v[i].name, ini->v[i].name_len, name)) {
      if (found != -1) {
        errno = EINVAL;
        return -2;
      }
      found = (int) i;
    }
  return found;
}

int
defer_gpt_ini_edit (const char *old, size_t old_len, int scripts_changed,
                    char **out, size_t *out_len, int *changed)
{
  struct ini ini;
  struct strbuf list = { 0 }, added_lines = { 0 }, edited = { 0 };
  int sec, ext, ver, added = 0, r = -1;
  size_t at;

  *changed = 0;
  if (old == NULL)
    old_len = 0;
  if ((old_len >= 2 && (unsigned char) old[0] == 0xff && (unsigned char) old[1] == 0xfe) ||
      (old_len && memchr (old, 0, old_len))) {
    errno = EINVAL;             /* UTF-16: not the ANSI file Windows writes */
    return -1;
  }
  if (ini_parse (old_len ? old : "", old_len, &ini) == -1)
    return -1;
  if ((sec = ini_find_section (&ini, "General")) == -2)
    goto out;
  if (sec == -1) {
    /* No gpt.ini (or no [General] in it): a new one. */
    at = ini.n;
    strbuf_str (&added_lines, "[General]");
    strbuf_str (&added_lines, ini.eol);
    /* As Microsoft's own offline recipe writes it (the Azure VM
     * password reset without the agent): the version of the Group
     * Policy functionality the GPO was written for, 2 since Windows
     * 2000.  An existing gpt.ini without it is left so (minimal edit). */
    strbuf_str (&added_lines, "gPCFunctionalityVersion=2");
    strbuf_str (&added_lines, ini.eol);
    strbuf_str (&added_lines, "gPCMachineExtensionNames=[" SCRIPTS_CSE SCRIPTS_TOOL "]");
    strbuf_str (&added_lines, ini.eol);
    strbuf_str (&added_lines, "Version=1");
    strbuf_str (&added_lines, ini.eol);
    goto write;
  }
  if ((ext = find_key (&ini, sec, "gPCMachineExtensionNames")) == -2 ||
      (ver = find_key (&ini, sec, "Version")) == -2)
    goto out;
  at = ini_section_end (&ini, sec);
  if (ext >= 0) {
    struct line *l = &ini.v[ext];
    if (cse_add (l->value, l->value_len, &list, &added) == -1)
      goto out;
    if (list.oom) {
      errno = ENOMEM;
      goto out;
    }
    if (added && set_value (l, list.p) == -1) {
      errno = ENOMEM;
      goto out;
    }
  }
  else {
    strbuf_str (&added_lines, "gPCMachineExtensionNames=[" SCRIPTS_CSE SCRIPTS_TOOL "]");
    strbuf_str (&added_lines, ini.eol);
    added = 1;
  }
  if (!added && !scripts_changed) {
    r = copy_out (old, old_len, out, out_len);
    goto out;
  }
  if (ver >= 0) {
    char num[16];
    if (version_bump (ini.v[ver].value, ini.v[ver].value_len, num, sizeof num) == -1)
      goto out;
    if (set_value (&ini.v[ver], num) == -1) {
      errno = ENOMEM;
      goto out;
    }
  }
  else {
    /* No Version: it was 0, machine half now 1. */
    strbuf_str (&added_lines, "Version=1");
    strbuf_str (&added_lines, ini.eol);
  }

 write:
  ini_write (&ini, at, added_lines.p, &edited);
  if (added_lines.oom)
    edited.oom = 1;
  if (strbuf_give (&edited, out, out_len) == -1)
    goto out;
  edited.p = NULL;
  *changed = 1;
  r = 0;

 out:
  ini_free (&ini);
  free (list.p);
  free (added_lines.p);
  free (edited.p);
  return r;
}

/* --- SetupComplete.cmd ------------------------------------------------ */

#define SETUP_BEGIN "rem netvsc-patch --defer=setup: begin"
#define SETUP_CALL  "call \"%SystemRoot%\\Setup\\Scripts\\netvsc-patch.cmd\""
#define SETUP_END   "rem netvsc-patch --defer=setup: end"

/* The lines of a batch file, ends kept apart (not ini_parse: a batch
 * file is no ini file). */
struct batch {
  struct line *v;
  size_t n;
  const char *eol;
  size_t bom;         /* 3 after a UTF-8 BOM, else 0 */
  long begin, end;    /* our block's first and last line, or -1 */
};

static int
batch_parse (const char *text, size_t len, struct batch *b)
{
  const char *p, *end = text + len;

  memset (b, 0, sizeof *b);
  b->eol = "\r\n";
  b->begin = b->end = -1;
  if ((len >= 2 && (((unsigned char) text[0] == 0xff && (unsigned char) text[1] == 0xfe) ||
                    ((unsigned char) text[0] == 0xfe && (unsigned char) text[1] == 0xff))) ||
      (len && memchr (text, 0, len))) {
    errno = EINVAL;
    return -1;
  }
  if (len >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0)
    b->bom = 3;
  p = text + b->bom;
  for (int first = 1; p < end;) {
    struct line l = { .s = p, .index = -1 };

    cut_line (&p, end, &l, &b->eol, &first);
    {
      const char *s = l.s;
      size_t n = l.len;
      trim (&s, &n);
      if (same (s, n, SETUP_BEGIN) && b->begin == -1)
        b->begin = (long) b->n;
      else if (same (s, n, SETUP_END) && b->begin != -1 && b->end == -1)
        b->end = (long) b->n;
    }
    if (lines_push (&b->v, &b->n, &l) == -1) {
      free (b->v);
      errno = ENOMEM;
      return -1;
    }
  }
  if (b->begin != -1 && b->end == -1) {
    free (b->v);
    errno = EINVAL;             /* half a block: not ours to guess */
    return -1;
  }
  return 0;
}

int
defer_setupcomplete_has (const char *buf, size_t len)
{
  struct batch b;

  if (batch_parse (buf ? buf : "", buf ? len : 0, &b) == -1)
    return -1;
  free (b.v);
  return b.begin != -1;
}

int
defer_setupcomplete_edit (const char *old, size_t old_len, int install,
                          char **out, size_t *out_len, int *changed)
{
  struct strbuf o = { 0 };
  struct batch b;
  int has, content = 0;

  *changed = 0;
  if (old == NULL)
    old_len = 0;
  if (batch_parse (old ? old : "", old_len, &b) == -1)
    return -1;
  has = b.begin != -1;
  if (!!install == has) {
    free (b.v);
    return copy_out (old, old_len, out, out_len);
  }
  strbuf_add (&o, old, b.bom);
  if (install) {
    strbuf_str (&o, SETUP_BEGIN);
    strbuf_str (&o, b.eol);
    strbuf_str (&o, SETUP_CALL);
    strbuf_str (&o, b.eol);
    strbuf_str (&o, SETUP_END);
    strbuf_str (&o, b.eol);
    strbuf_add (&o, old + b.bom, old_len - b.bom);
  }
  else {
    for (size_t i = 0; i < b.n; i++) {
      const struct line *l = &b.v[i];
      if ((long) i >= b.begin && (long) i <= b.end)
        continue;
      strbuf_add (&o, l->s, l->len);
      strbuf_str (&o, l->eol);
      for (size_t k = 0; k < l->len; k++)
        if (!is_blank (l->s[k]))
          content = 1;
    }
    if (!content && o.p) {      /* nothing left: the file goes */
      o.len = 0;
      o.p[0] = '\0';
    }
  }
  free (b.v);
  if (strbuf_give (&o, out, out_len) == -1)
    return -1;
  *changed = 1;
  return 0;
}
