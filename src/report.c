/* netvsc-patch: text and JSON reports. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "caveats.h"
#include "escape.h"
#include "report.h"

/* --- text ----------------------------------------------------------- */

/* Every string from the guest or from a file name goes through this on
 * its way to a text line (escape.h): no control character reaches the
 * terminal.  Returns BUF. */
static const char *
tx (char *buf, size_t len, const char *s)
{
  return esc_str (buf, len, s, ESC_TEXT);
}

/* What a change writes, in the shape of a value read from a hive. */
static struct value_state
new_value (const struct change *c)
{
  return (struct value_state) {
    .present = 1, .type = c->type, .is_dword = c->type == hive_t_REG_DWORD,
    .dword = c->dword, .text = c->text,
  };
}

/* Buffer sizes are KB; other DWORDs are plain numbers. */
static void
describe_value (FILE *fp, const struct value_state *vs, int is_size)
{
  if (!vs->present)
    fputs ("(not set)", fp);
  else if (vs->is_dword)
    fprintf (fp, "0x%" PRIx32 " (%" PRIu32 "%s)", vs->dword, vs->dword, is_size ? " KB" : "");
  else {
    int quoted = vs->type == hive_t_REG_SZ || vs->type == hive_t_REG_EXPAND_SZ;
    fprintf (fp, "%s %s", hive_type_name (vs->type), quoted ? "\"" : "");
    esc_fputs (vs->text, fp);
    fputs (quoted ? "\"" : "", fp);
  }
}

static const char *
id_of (const struct adapter *a)
{
  return a->matching_id ? a->matching_id : a->component_id ? a->component_id : "-";
}

/* "ControlSet001", "0001" and DriverDesc of an adapter, escaped. */
struct adapter_names {
  char cs[64], index[64], desc[512];
};

static void
adapter_names (const struct adapter *a, struct adapter_names *n)
{
  tx (n->cs, sizeof n->cs, a->control_set);
  tx (n->index, sizeof n->index, a->index);
  tx (n->desc, sizeof n->desc, a->desc ? a->desc : "?");
}

/* The advanced keywords the driver describes, as the Advanced page
 * would show them. */
static void
text_advanced (FILE *fp, const struct adapter *a)
{
  struct adapter_names an;

  if (a->n_advanced == 0)
    return;
  adapter_names (a, &an);
  fprintf (fp, "\n  %s\\...\\%s  %s: advanced properties\n", an.cs, an.index, an.desc);
  fprintf (fp, "    %-26s %-12s %-10s %s\n", "KEYWORD", "VALUE", "DEFAULT", "ALLOWED");
  for (size_t i = 0; i < a->n_advanced; i++) {
    const struct ndi_param *p = &a->advanced[i];
    const struct value_state *now = &a->advanced_now[i];
    char allowed[512], value[256], keyword[256], dflt[256], shown[1024];
    ndi_describe_allowed (p, allowed, sizeof allowed);
    if (!now->present)
      snprintf (value, sizeof value, "-");
    else if (now->is_dword)
      snprintf (value, sizeof value, "%" PRIu32 " (dword)", now->dword);
    else
      tx (value, sizeof value, now->text[0] ? now->text : "\"\"");
    fprintf (fp, "    %-26s %-12s %-10s %s\n", tx (keyword, sizeof keyword, p->keyword), value,
             tx (dflt, sizeof dflt, !p->default_value ? "-" : p->default_value[0]
                 ? p->default_value : "\"\""),
             tx (shown, sizeof shown, allowed));
  }
}

static void
text_list (FILE *fp, const struct outcome *out)
{
  const struct adapter_list *l = &out->plan.adapters;

  if (l->n == 0) {
    fputs ("  (no network class instances)\n", fp);
    return;
  }
  fprintf (fp, "  %-13s  %-5s  %-5s  %-12s  %-12s  %s\n", "CONTROL SET", "INDEX",
           "MATCH", "RECEIVE", "SEND", "DESCRIPTION [DEVICE ID]");
  for (size_t i = 0; i < l->n; i++) {
    const struct adapter *a = &l->v[i];
    struct adapter_names an;
    char rx[32], sx[32], id[512];
    adapter_names (a, &an);
    tx (rx, sizeof rx, !a->receive.present ? "-" : a->receive.text);
    tx (sx, sizeof sx, !a->send.present ? "-" : a->send.text);
    fprintf (fp, "  %-13s  %-5s  %-5s  %-12s  %-12s  %s [%s]\n", an.cs, an.index,
             a->matched ? "yes" : "no", rx, sx, an.desc, tx (id, sizeof id, id_of (a)));
  }
  for (size_t i = 0; i < l->n; i++)
    text_advanced (fp, &l->v[i]);
}

static void
text_changes (FILE *fp, const struct options *o, const struct outcome *out)
{
  size_t last = (size_t) -1;

  for (size_t i = 0; i < out->plan.n_changes; i++) {
    const struct change *c = &out->plan.changes[i];
    const struct adapter *a = &out->plan.adapters.v[c->adapter];
    char name[256];
    if (c->adapter != last) {
      struct adapter_names an;
      adapter_names (a, &an);
      fprintf (fp, "  %s\\Control\\Class\\{4d36e972-...}\\%s  %s\n", an.cs, an.index,
               an.desc);
      last = c->adapter;
    }
    fprintf (fp, "    %-18s ", tx (name, sizeof name, c->want->name));
    describe_value (fp, c->old, c->want->is_size);
    switch (c->action) {
    case CHANGE_KEEP:
      fputs ("  unchanged\n", fp);
      break;
    case CHANGE_DELETE:
      fputs (" -> (removed)\n", fp);
      break;
    default: {
      struct value_state nv = new_value (c);
      fputs (" -> ", fp);
      describe_value (fp, &nv, c->want->is_size);
      if (c->action == CHANGE_RETYPE)
        fprintf (fp, "  [type replaced by %s]", hive_type_name (c->type));
      if (c->refusal) {
        fprintf (fp, "  [%s: ", o->request.force ? "forced" : "refused");
        esc_fputs (c->refusal, fp);
        fputc (']', fp);
      }
      fputc ('\n', fp);
    }
    }
  }
}

/* What became of the boot-time action, in the tense of the run. */
static void
text_defer (FILE *fp, const struct options *o, const struct outcome *out)
{
  int real = o->mode == RUN_PATCH;
  const char *what;

  switch (out->defer) {
  case DEFER_INSTALLED: what = real ? "installed" : "would be installed"; break;
  case DEFER_UPDATED: what = real ? "updated with these values" : "would be updated"; break;
  case DEFER_IN_PLACE: what = "already installed with these values"; break;
  case DEFER_REMOVED: what = real ? "removed" : "would be removed"; break;
  default: return;              /* none, or --remove found none: nothing to say */
  }
  if (out->status == ST_ERROR || out->status == ST_REFUSED)
    return;                     /* planned, but the run stopped: see the error */
  fprintf (fp, "  boot-time action %s: %s\n", what,
           out->defer == DEFER_REMOVED ? DEFER_SCRIPT_WIN : defer_script_win (o->defer_spec.mode));
  if (out->defer != DEFER_REMOVED)
    fprintf (fp, "  (%s, as SYSTEM, it sets the values on matching adapters that lack them "
             "and restarts those; log: %s)\n", defer_mode_text (o->defer_spec.mode),
             DEFER_LOG_WIN);
}

static const char *
headline (const struct outcome *out)
{
  switch (out->status) {
  case ST_PATCHED: return "patched";
  case ST_UNCHANGED: return "unchanged: the values are already set";
  case ST_WOULD_PATCH: return "would patch (dry run, nothing written)";
  case ST_CHECK_DIFFERS: return "check: values differ from the request";
  case ST_LISTED: return "network adapters";
  case ST_RECOVERED: return "recovered from the transaction logs";
  case ST_NO_ADAPTER: return "no matching adapter; found";
  case ST_DEFERRED: return "no matching adapter yet; the boot-time action will set the "
                           "values when Windows creates it";
  case ST_INVALID: return "refused: the driver does not allow a value, nothing written";
  default: return outcome_status_name (out->status);
  }
}

int
report_prints (const struct options *o)
{
  /* -q silences the report of what was done, not what was asked for:
   * --list's adapters, --dry-run's plan, the JSON objects */
  return !o->quiet || o->json || o->mode == RUN_LIST || o->mode == RUN_DRY;
}

void
report_outcome (FILE *fp, const struct options *o, const struct outcome *out)
{
  report_outcome_to (fp, stderr, o, out);
}

void
report_outcome_to (FILE *fp, FILE *errfp, const struct options *o, const struct outcome *out)
{
  struct caveats cv;

  if (out->status == ST_ERROR || out->status == ST_REFUSED ||
      out->status == ST_NO_ADAPTER || out->status == ST_INVALID)
    esc_line (errfp, "netvsc-patch: %s", out->message);
  /* warnings go to stderr whatever the output format (and with -q) */
  caveats_of (o, out, &cv);
  for (size_t i = 0; i < cv.n; i++)
    if (cv.v[i].kind != CAVEAT_CLONES)
      esc_line (errfp, "netvsc-patch: warning: %s: %s", out->target, cv.v[i].text);
  if (o->json) {
    report_json (fp, o, out);
    return;
  }
  /* --replay-only plans nothing: its report is the recovery */
  if (!report_prints (o) || (!out->have_plan && !(o->replay_only && out->written_to)))
    return;

  esc_fputs (out->target, fp);
  if (out->is_image) {
    char root[128], hive[512];
    fprintf (fp, " (%s, %s %s)", out->format, tx (root, sizeof root, out->root),
             tx (hive, sizeof hive, out->hive_path));
  }
  fprintf (fp, ": %s", headline (out));
  if (out->status != ST_LISTED && out->status != ST_NO_ADAPTER && out->status != ST_DEFERRED &&
      out->status != ST_RECOVERED && !o->replay_only)
    fprintf (fp, ", %zu adapter%s matched", out->plan.n_matched,
             out->plan.n_matched == 1 ? "" : "s");
  fputc ('\n', fp);
  if (out->replayed) {
    char line[768];
    replay_describe (&out->replay, line, sizeof line);
    fputs ("  the hive was dirty: ", fp);
    esc_line (fp, "%s", line);
    if (out->logs_reset)
      fprintf (fp, "  emptied %d transaction log%s, which Windows must not replay over "
               "the patched hive\n", out->logs_reset, out->logs_reset == 1 ? "" : "s");
  }
  if (o->replay_only) {
    if (out->written_to)
      esc_line (fp, "  written to %s", out->written_to);
    return;
  }
  if (out->status == ST_LISTED || out->status == ST_NO_ADAPTER ||
      (out->status == ST_DEFERRED && out->plan.n_matched == 0))
    text_list (fp, out);
  else
    text_changes (fp, o, out);
  text_defer (fp, o, out);
  for (size_t i = 0; i < cv.n; i++)
    if (cv.v[i].kind == CAVEAT_CLONES)
      fprintf (fp, "  note: %s\n", cv.v[i].text);
  if (out->written_to && out->status == ST_PATCHED && o->output)
    esc_line (fp, "  written to %s", out->written_to);
  if (out->backup[0])
    esc_line (fp, "  original saved as %s", out->backup);
}

int
report_flush (FILE *fp, char *why, size_t len)
{
  if (fflush (fp) == 0 && !ferror (fp))
    return 0;
  if (errno == EPIPE)
    snprintf (why, len, "standard output closed (broken pipe)");
  else
    snprintf (why, len, "cannot write to standard output: %s", strerror (errno));
  return -1;
}

/* --- JSON ----------------------------------------------------------- */

/* Built with Jansson, which checks what it is given: a string that is
 * not valid UTF-8 is escaped first (escape.h), so every line is valid
 * JSON.  A part that could not be built (out of memory) sets FAILED. */
struct jb {
  int failed;
};

static void
put (struct jb *b, json_t *obj, const char *key, json_t *v)
{
  /* the _new functions take V even when they fail */
  if (v == NULL || obj == NULL || json_object_set_new (obj, key, v) == -1)
    b->failed = 1;
}

static void
push (struct jb *b, json_t *arr, json_t *v)
{
  if (v == NULL || arr == NULL || json_array_append_new (arr, v) == -1)
    b->failed = 1;
}

/* Text (registry data, guest paths, messages): as it is when valid
 * UTF-8; should it not be, each stray byte as \xNN, for reading only. */
static json_t *
jtext (const char *s)
{
  json_t *v;
  char *e;

  if (s == NULL)
    return json_null ();
  if (esc_utf8_valid (s))
    return json_string (s);
  if ((e = esc_dup (s, 0)) == NULL)
    return NULL;
  v = json_string (e);
  free (e);
  return v;
}

/* A host file name as given (target, output, backup): bytes, escaped
 * so that they can be had back: \ as \\, a byte that is not valid UTF-8
 * as \xNN (netvsc-patch(1), JSON OUTPUT). */
static json_t *
jname (const char *s)
{
  json_t *v;
  char *e;

  if (s == NULL)
    return json_null ();
  if ((e = esc_dup (s, ESC_BACKSLASH)) == NULL)
    return NULL;
  v = json_string (e);
  free (e);
  return v;
}

/* Every object has the same keys whatever the outcome (schema 1,
 * netvsc-patch(1), JSON OUTPUT): a key that does not apply is null,
 * never absent, so that a consumer reads one shape.  tests/t-json.sh
 * checks each object against the keys the man page lists. */

/* Integer, or null when HAVE is 0. */
static json_t *
jint_if (int have, json_int_t v)
{
  return have ? json_integer (v) : json_null ();
}

/* A value; a buffer size's DWORD is "kb", any other DWORD "dword";
 * the other two are null. */
static json_t *
json_value (struct jb *b, const struct value_state *vs, int is_size)
{
  json_t *o;

  if (!vs->present)
    return json_null ();
  o = json_object ();
  put (b, o, "type", jtext (hive_type_name (vs->type)));
  put (b, o, "kb", jint_if (vs->is_dword && is_size, vs->dword));
  put (b, o, "dword", jint_if (vs->is_dword && !is_size, vs->dword));
  put (b, o, "text", vs->is_dword ? json_null () : jtext (vs->text));
  return o;
}

static json_t *
json_param (struct jb *b, const struct ndi_param *p, const struct value_state *now)
{
  json_t *o = json_object ();

  put (b, o, "keyword", jtext (p->keyword));
  put (b, o, "description", jtext (p->desc));
  put (b, o, "type", jtext (p->type_name));
  put (b, o, "value", json_value (b, now, 0));
  put (b, o, "default", jtext (p->default_value));
  put (b, o, "min", jint_if (ndi_is_numeric (p) && p->has_min, p->min));
  put (b, o, "max", jint_if (ndi_is_numeric (p) && p->has_max, p->max));
  put (b, o, "step", jint_if (ndi_is_numeric (p) && p->has_step, p->step));
  put (b, o, "base", jint_if (ndi_is_numeric (p), p->base));
  put (b, o, "limit_text", jint_if (p->type == NDI_EDIT && p->limit_text, p->limit_text));
  if (p->type == NDI_ENUM) {
    json_t *choices = json_array ();
    for (size_t i = 0; i < p->n_choices; i++) {
      json_t *c = json_object ();
      put (b, c, "value", jtext (p->choices[i].value));
      put (b, c, "description", jtext (p->choices[i].desc));
      push (b, choices, c);
    }
    put (b, o, "choices", choices);
  }
  else
    put (b, o, "choices", json_null ());
  return o;
}

static json_t *
json_change (struct jb *b, const struct change *c)
{
  json_t *o = json_object ();

  put (b, o, "name", jtext (c->want->name));
  put (b, o, "action", jtext (change_action_name (c->action)));
  put (b, o, "old", json_value (b, c->old, c->want->is_size));
  if (c->want->remove)
    put (b, o, "new", json_null ());
  else {
    struct value_state nv = new_value (c);
    put (b, o, "new", json_value (b, &nv, c->want->is_size));
  }
  put (b, o, "refused", jtext (c->refusal));
  return o;
}

static json_t *
json_adapter (struct jb *b, const struct outcome *out, size_t idx)
{
  const struct adapter *a = &out->plan.adapters.v[idx];
  json_t *o = json_object ();

  put (b, o, "control_set", jtext (a->control_set));
  put (b, o, "index", jtext (a->index));
  put (b, o, "description", jtext (a->desc));
  put (b, o, "matching_device_id", jtext (a->matching_id));
  put (b, o, "component_id", jtext (a->component_id));
  put (b, o, "service", jtext (a->service));
  put (b, o, "matched", json_boolean (a->matched));
  put (b, o, "receive_buffer", json_value (b, &a->receive, 1));
  put (b, o, "send_buffer", json_value (b, &a->send, 1));
  /* read with --list only (advanced_now is allocated then, even for
   * none): null otherwise, [] when the driver describes none */
  if (a->advanced_now) {
    json_t *adv = json_array ();
    for (size_t i = 0; i < a->n_advanced; i++)
      push (b, adv, json_param (b, &a->advanced[i], &a->advanced_now[i]));
    put (b, o, "advanced", adv);
  }
  else
    put (b, o, "advanced", json_null ());
  if (a->matched) {
    json_t *changes = json_array ();
    for (size_t i = 0; i < out->plan.n_changes; i++)
      if (out->plan.changes[i].adapter == idx)
        push (b, changes, json_change (b, &out->plan.changes[i]));
    put (b, o, "changes", changes);
  }
  else
    put (b, o, "changes", json_null ());
  return o;
}

/* The keys of each target's object, in order: the out-of-memory line
 * below is written from this list, and json_outcome checks that it
 * built exactly this many. */
static const char *const json_keys[] = {
  "schema_version", "target", "mode", "format", "root", "hive", "status", "exit_code",
  "error", "control_sets", "matched", "writes", "written", "adapters", "replay", "defer",
  "output", "backup", "caveats",
};

/* The JSON object for one outcome (NULL: out of memory). */
static json_t *
json_outcome (const struct options *opts, const struct outcome *out)
{
  struct jb b = { 0 };
  json_t *o = json_object (), *sets = json_array (), *cvs = json_array ();
  struct caveats cv;

  put (&b, o, "schema_version", json_integer (REPORT_JSON_SCHEMA));
  put (&b, o, "target", jname (out->target));
  put (&b, o, "mode", json_string (out->is_image ? "image" : "hive"));
  put (&b, o, "format", jtext (out->is_image ? out->format : NULL));
  put (&b, o, "root", jtext (out->is_image && out->root[0] ? out->root : NULL));
  put (&b, o, "hive", jtext (out->is_image && out->hive_path[0] ? out->hive_path : NULL));
  put (&b, o, "status", jtext (outcome_status_name (out->status)));
  put (&b, o, "exit_code", json_integer (out->exit_code));
  put (&b, o, "error", jtext (out->message[0] ? out->message : NULL));
  for (size_t i = 0; i < out->cs.n; i++) {
    json_t *cs = json_object ();
    put (&b, cs, "name", jtext (out->cs.v[i].name));
    put (&b, cs, "selected_as", jtext (out->cs.v[i].why));
    push (&b, sets, cs);
  }
  put (&b, o, "control_sets", sets);
  put (&b, o, "matched", jint_if (out->have_plan, (json_int_t) out->plan.n_matched));
  put (&b, o, "writes", jint_if (out->have_plan, (json_int_t) out->plan.n_writes));
  /* an error's "written" is in its message (a crash while writing
   * leaves either hive); "deferred" wrote the boot-time action unless
   * it was in place */
  put (&b, o, "written", out->status == ST_ERROR ? json_null ()
       : json_boolean (out->status == ST_PATCHED ||
                       (out->status == ST_DEFERRED && (out->defer == DEFER_INSTALLED ||
                                                       out->defer == DEFER_UPDATED))));
  if (out->have_plan) {
    json_t *adapters = json_array ();
    for (size_t i = 0; i < out->plan.adapters.n; i++)
      push (&b, adapters, json_adapter (&b, out, i));
    put (&b, o, "adapters", adapters);
  }
  else
    put (&b, o, "adapters", json_null ());
  if (out->replayed) {
    json_t *r = json_object ();
    put (&b, r, "format", json_string (out->replay.log_format == REPLAY_FORMAT_NEW
                                       ? "new" : "old"));
    put (&b, r, "entries", json_integer (out->replay.entries));
    put (&b, r, "pages", json_integer (out->replay.pages));
    put (&b, r, "sequence_from", json_integer (out->replay.seq_from));
    put (&b, r, "sequence_to", json_integer (out->replay.seq_to));
    put (&b, r, "from", jtext (out->replay.from));
    put (&b, r, "stopped", jtext (out->replay.stopped));
    put (&b, r, "logs_emptied", json_integer (out->logs_reset));
    put (&b, o, "replay", r);
  }
  else
    put (&b, o, "replay", json_null ());
  if (out->is_image && out->defer != DEFER_NONE) {
    json_t *d = json_object ();
    put (&b, d, "action", jtext (defer_result_name (out->defer)));
    put (&b, d, "script", jtext (opts->remove ? DEFER_SCRIPT_WIN
                                 : defer_script_win (opts->defer_spec.mode)));
    /* null for --remove, which takes out every kind */
    put (&b, d, "mode", opts->remove ? json_null ()
         : jtext (defer_mode_name (opts->defer_spec.mode)));
    put (&b, d, "log", jtext (DEFER_LOG_WIN));
    put (&b, o, "defer", d);
  }
  else
    put (&b, o, "defer", json_null ());
  put (&b, o, "output", jname (out->written_to));
  put (&b, o, "backup", jname (out->backup[0] ? out->backup : NULL));
  /* always present (an empty array when there is nothing to say) */
  caveats_of (opts, out, &cv);
  for (size_t i = 0; i < cv.n; i++) {
    json_t *c = json_object ();
    put (&b, c, "kind", jtext (caveat_kind_name (cv.v[i].kind)));
    put (&b, c, "severity", jtext (caveat_severity (cv.v[i].kind)));
    put (&b, c, "message", jtext (cv.v[i].text));
    push (&b, cvs, c);
  }
  put (&b, o, "caveats", cvs);
  if (b.failed || json_object_size (o) != sizeof json_keys / sizeof json_keys[0]) {
    json_decref (o);
    return NULL;
  }
  return o;
}

void
report_json (FILE *fp, const struct options *o, const struct outcome *out)
{
  json_t *obj = json_outcome (o, out);
  /* ASCII only: no raw C1 control (or anything else) reaches a terminal
   * that shows the JSON; parsers read the \u escapes back. */
  char *line = obj ? json_dumps (obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

  if (line == NULL) {
    /* still one line per target, valid, with every key: the target's
     * name is on stderr (building it may be what failed) */
    for (size_t i = 0; i < sizeof json_keys / sizeof json_keys[0]; i++) {
      const char *k = json_keys[i];
      fprintf (fp, "%s\"%s\":", i ? "," : "{", k);
      if (strcmp (k, "schema_version") == 0)
        fprintf (fp, "%d", REPORT_JSON_SCHEMA);
      else if (strcmp (k, "mode") == 0)
        fputs (out->is_image ? "\"image\"" : "\"hive\"", fp);
      else if (strcmp (k, "status") == 0)
        fputs ("\"error\"", fp);
      else if (strcmp (k, "exit_code") == 0)
        fprintf (fp, "%d", NP_EXIT_RUNTIME);
      else if (strcmp (k, "error") == 0)
        fputs ("\"out of memory: the report could not be built\"", fp);
      else if (strcmp (k, "control_sets") == 0 || strcmp (k, "caveats") == 0)
        fputs ("[]", fp);
      else
        fputs ("null", fp);
    }
    fputs ("}\n", fp);
    fputs ("netvsc-patch: out of memory building the JSON report of ", stderr);
    esc_line (stderr, "%s", out->target);
  }
  else {
    fputs (line, fp);
    fputc ('\n', fp);
  }
  free (line);
  json_decref (obj);
}
