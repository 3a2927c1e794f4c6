/* netvsc-patch: reading and checking Ndi\Params. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ndi.h"

/* Parse a whole number written in BASE (10 or 16; "0x" is accepted in
 * base 16).  Returns 0 or -1. */
static int
parse_number (const char *s, int base, long long *out)
{
  char *end;

  if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
    return -1;
  if (base == 16 && (strncasecmp (s, "0x", 2) == 0))
    s += 2;
  errno = 0;
  *out = strtoll (s, &end, base);
  return errno || *end || end == s ? -1 : 0;
}

static enum ndi_type
type_of (const char *name)
{
  static const struct { const char *name; enum ndi_type t; } types[] = {
    { "int", NDI_INT }, { "long", NDI_LONG }, { "word", NDI_WORD },
    { "dword", NDI_DWORD }, { "enum", NDI_ENUM }, { "edit", NDI_EDIT },
    { "text", NDI_EDIT },       /* seen in Microsoft's own INFs */
  };
  for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++)
    if (strcasecmp (name, types[i].name) == 0)
      return types[i].t;
  return NDI_OTHER;
}

int
ndi_is_numeric (const struct ndi_param *p)
{
  return p->type == NDI_INT || p->type == NDI_LONG || p->type == NDI_WORD ||
    p->type == NDI_DWORD;
}

/* A numeric attribute (min, max, step, LimitText...), written as a
 * string by INFs, sometimes as a REG_DWORD. */
static int
read_number (struct hive *hv, hive_node_h node, const char *name, int base,
             long long *out)
{
  struct value_state vs;
  int r = 0;

  if (hive_value_state (hv, node, name, &vs) == -1)
    return -1;
  if (vs.present && vs.is_dword) {
    *out = vs.dword;
    r = 1;
  }
  else if (vs.present && (vs.type == hive_t_REG_SZ || vs.type == hive_t_REG_EXPAND_SZ))
    r = parse_number (vs.text, base, out) == 0;
  value_state_free (&vs);
  return r;
}

static int
cmp_choice (const void *a, const void *b)
{
  const struct ndi_choice *x = a, *y = b;
  long long nx, ny;

  /* Numeric choices in numeric order, as the Advanced page lists them. */
  if (parse_number (x->value, 10, &nx) == 0 && parse_number (y->value, 10, &ny) == 0)
    return nx < ny ? -1 : nx > ny;
  return strcasecmp (x->value, y->value);
}

static int
read_choices (struct hive *hv, hive_node_h param, struct ndi_param *p)
{
  hive_node_h en = hivex_node_get_child (hv->h, param, "Enum");
  hive_value_h *values;
  size_t n = 0;

  if (en == 0)
    return 0;
  values = hivex_node_values (hv->h, en);
  if (values == NULL)
    return -1;
  while (values[n])
    n++;
  p->choices = calloc (n ? n : 1, sizeof *p->choices);
  if (p->choices == NULL) {
    free (values);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    char *key = hivex_value_key (hv->h, values[i]);
    if (key == NULL)
      continue;
    if (key[0] == '\0') {       /* the key's default value: not a choice */
      free (key);
      continue;
    }
    struct ndi_choice *c = &p->choices[p->n_choices++];
    c->value = key;
    c->desc = hive_get_string (hv, en, key);
  }
  free (values);
  qsort (p->choices, p->n_choices, sizeof *p->choices, cmp_choice);
  return 0;
}

static int
read_param (struct hive *hv, hive_node_h param, const char *keyword, struct ndi_param *p)
{
  char *base;

  memset (p, 0, sizeof *p);
  p->keyword = strdup (keyword);
  if (p->keyword == NULL)
    return -1;
  p->desc = hive_get_string (hv, param, "ParamDesc");
  p->type_name = hive_get_string (hv, param, "type");
  p->type = type_of (p->type_name);
  p->default_value = hive_get_string (hv, param, "default");
  base = hive_get_string (hv, param, "Base");
  p->base = base && strcmp (base, "16") == 0 ? 16 : 10;
  free (base);
  if (ndi_is_numeric (p)) {
    if ((p->has_min = read_number (hv, param, "min", p->base, &p->min)) == -1 ||
        (p->has_max = read_number (hv, param, "max", p->base, &p->max)) == -1 ||
        (p->has_step = read_number (hv, param, "step", p->base, &p->step)) == -1)
      return -1;
    if (p->has_step && p->step <= 0)
      p->has_step = 0;          /* a step of 0 would divide by zero */
  }
  else if (p->type == NDI_EDIT) {
    long long limit;
    int r = read_number (hv, param, "LimitText", 10, &limit);
    if (r == -1)
      return -1;
    p->limit_text = r && limit > 0 ? (long) limit : 0;
  }
  {
    char *opt = hive_get_string (hv, param, "Optional");
    p->optional = opt && strcmp (opt, "1") == 0;
    free (opt);
  }
  return p->type == NDI_ENUM ? read_choices (hv, param, p) : 0;
}

int
ndi_param_read (struct hive *hv, hive_node_h node, const char *keyword,
                struct ndi_param *p)
{
  hive_node_h params = hive_lookup (hv, node, "Ndi\\Params");
  hive_node_h param = params ? hivex_node_get_child (hv->h, params, keyword) : 0;

  memset (p, 0, sizeof *p);
  if (param == 0)
    return 1;
  if (read_param (hv, param, keyword, p) == -1) {
    int e = errno;
    ndi_param_free (p);
    errno = e ? e : EIO;
    return -1;
  }
  return 0;
}

static int
cmp_param (const void *a, const void *b)
{
  const struct ndi_param *x = a, *y = b;
  return strcasecmp (x->keyword, y->keyword);
}

int
ndi_params_read_all (struct hive *hv, hive_node_h node, struct ndi_param **out,
                     size_t *n)
{
  hive_node_h params = hive_lookup (hv, node, "Ndi\\Params");
  hive_node_h *children;
  size_t count = 0;

  *out = NULL;
  *n = 0;
  if (params == 0)
    return 0;
  children = hivex_node_children (hv->h, params);
  if (children == NULL)
    return -1;
  while (children[count])
    count++;
  *out = calloc (count ? count : 1, sizeof **out);
  if (*out == NULL) {
    free (children);
    return -1;
  }
  for (size_t i = 0; i < count; i++) {
    char *name = hivex_node_name (hv->h, children[i]);
    int r = name ? read_param (hv, children[i], name, &(*out)[*n]) : -1;
    free (name);
    (*n)++;
    if (r == -1) {
      free (children);
      ndi_params_free (*out, *n);
      *out = NULL;
      *n = 0;
      return -1;
    }
  }
  free (children);
  qsort (*out, *n, sizeof **out, cmp_param);
  return 0;
}

void
ndi_param_free (struct ndi_param *p)
{
  free (p->keyword);
  free (p->desc);
  free (p->type_name);
  free (p->default_value);
  for (size_t i = 0; i < p->n_choices; i++) {
    free (p->choices[i].value);
    free (p->choices[i].desc);
  }
  free (p->choices);
  memset (p, 0, sizeof *p);
}

void
ndi_params_free (struct ndi_param *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    ndi_param_free (&v[i]);
  free (v);
}

/* The range a type can hold at all, whatever min and max say. */
static void
type_bounds (enum ndi_type t, long long *lo, long long *hi)
{
  switch (t) {
  case NDI_INT: *lo = INT32_MIN; *hi = INT32_MAX; break;
  case NDI_WORD: *lo = 0; *hi = UINT16_MAX; break;
  default: *lo = 0; *hi = UINT32_MAX; break;
  }
}

static void
list_choices (const struct ndi_param *p, int with_desc, char *buf, size_t len)
{
  size_t used = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < p->n_choices && used < len; i++) {
    int w;
    if (with_desc && p->choices[i].desc)
      w = snprintf (buf + used, len - used, "%s%s (%s)", i ? ", " : "",
                    p->choices[i].value, p->choices[i].desc);
    else
      w = snprintf (buf + used, len - used, "%s%s", i ? ", " : "", p->choices[i].value);
    if (w < 0)
      break;
    used += (size_t) w;
  }
}

int
ndi_check (const struct ndi_param *p, const char *text, char *why, size_t len)
{
  if (ndi_is_numeric (p)) {
    long long v, lo, hi;
    type_bounds (p->type, &lo, &hi);
    if (parse_number (text, p->base, &v) == -1) {
      snprintf (why, len, "not a %s number (the driver's type is %s)",
                p->base == 16 ? "hexadecimal" : "decimal", p->type_name);
      return -1;
    }
    if (p->has_min && p->min > lo)
      lo = p->min;
    if (p->has_max && p->max < hi)
      hi = p->max;
    if (v < lo || v > hi) {
      snprintf (why, len, "out of range %lld..%lld", lo, hi);
      return -1;
    }
    if (p->has_step && (v - (p->has_min ? p->min : 0)) % p->step != 0) {
      snprintf (why, len, "not in steps of %lld from %lld", p->step, p->has_min ? p->min : 0);
      return -1;
    }
    return 0;
  }
  if (p->type == NDI_ENUM) {
    char list[512];
    for (size_t i = 0; i < p->n_choices; i++)
      if (strcmp (p->choices[i].value, text) == 0)
        return 0;
    list_choices (p, 0, list, sizeof list);
    snprintf (why, len, "not one of %s", p->n_choices ? list : "(no values listed)");
    return -1;
  }
  if (p->type == NDI_EDIT) {
    size_t chars = 0;
    for (const unsigned char *s = (const unsigned char *) text; *s; s++)
      if ((*s & 0xc0) != 0x80)  /* count characters, not UTF-8 bytes */
        chars++;
    if (chars == 0 && !p->optional) {
      snprintf (why, len, "empty, and the driver does not mark it optional");
      return -1;
    }
    if (p->limit_text && chars > (size_t) p->limit_text) {
      snprintf (why, len, "longer than %ld characters", p->limit_text);
      return -1;
    }
  }
  return 0;
}

void
ndi_describe_allowed (const struct ndi_param *p, char *buf, size_t len)
{
  if (ndi_is_numeric (p)) {
    long long lo, hi;
    type_bounds (p->type, &lo, &hi);
    if (p->has_min)
      lo = p->min;
    if (p->has_max)
      hi = p->max;
    /* In the base the driver reads: what --set must be given. */
    if (p->base == 16 && p->has_step && p->step != 1)
      snprintf (buf, len, "0x%llx..0x%llx step 0x%llx", lo, hi, p->step);
    else if (p->base == 16)
      snprintf (buf, len, "0x%llx..0x%llx", lo, hi);
    else if (p->has_step && p->step != 1)
      snprintf (buf, len, "%lld..%lld step %lld", lo, hi, p->step);
    else
      snprintf (buf, len, "%lld..%lld", lo, hi);
  }
  else if (p->type == NDI_ENUM)
    list_choices (p, 1, buf, len);
  else if (p->type == NDI_EDIT) {
    if (p->limit_text)
      snprintf (buf, len, "text, at most %ld characters", p->limit_text);
    else
      snprintf (buf, len, "text");
  }
  else
    snprintf (buf, len, "not checked (type %s)", p->type_name ? p->type_name : "unset");
}
