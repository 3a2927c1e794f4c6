#!/usr/bin/env python3
"""The --json contract of netvsc-patch(1), JSON OUTPUT, read from the man
page itself (so that the documentation and the code cannot drift apart
silently) and checked on the tool's output.

    json-schema.py MAN check FILE STATUS EXIT [SEEN]
        every line of FILE is one object with exactly the documented keys
        (nested objects too), of the documented types, schema_version 1,
        a documented status with a documented exit code; the last object
        has STATUS and EXIT.  Appends each status seen to SEEN.
    json-schema.py MAN source REPORT_C JOB_C
        report.c's json_keys[] (its out-of-memory line) is the documented
        key list, in order, and job.c's outcome_status_name() names
        exactly the documented statuses.
    json-schema.py MAN coverage SEEN
        every documented status was seen.
"""
import json
import re
import sys

TYPES = {"string": str, "number": int, "boolean": bool, "array": list,
         "object": dict, "value": dict, "null": type(None)}


def unroff(s):
    return re.sub(r"\\f[BIRP]", "", s).replace("\\-", "-")


def parse(man):
    lines = open(man, encoding="utf-8").read().split("\n")
    objs, statuses, kind = {}, {}, None
    start = lines.index(".SH JSON OUTPUT")
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.startswith(".SH "):
            break
        m = re.match(r'\.\\" json-keys: (\w+)$', line)
        if m:
            kind = m.group(1)
            objs[kind] = []
            continue
        if line == '.\\" json-status':
            kind = "@status"
            continue
        if line.startswith(".SS "):
            kind = None
        if line != ".TP" or kind is None:
            continue
        head = unroff(lines[i + 1])
        if kind == "@status":
            m = re.match(r"([a-z-]+) \(exit ([0-9]+(?: or [0-9]+)*)\)$", head)
            assert m, "status line: " + head
            statuses[m.group(1)] = {int(c) for c in m.group(2).split(" or ")}
        else:
            m = re.match(r"([a-z_]+) \(([a-z ]+)\)$", head)
            if not m:                       # "\fBcontrol_set\fR (string)" only
                m = re.match(r"([a-z_]+)$", head)
                assert m, "key line: " + head
                objs[kind].append((m.group(1), None))
                continue
            types = tuple(TYPES[t] for t in m.group(2).split(" or "))
            objs[kind].append((m.group(1), types))
    # a key documented without a type takes the type of the next one
    # that has one (".TP key .TP key2 (number or null)" lists them together)
    for kind, keys in objs.items():
        fixed, pending = [], []
        for k, t in keys:
            pending.append(k)
            if t is not None:
                fixed += [(p, t) for p in pending]
                pending = []
        # trailing untyped keys: strings (control_set, index)
        fixed += [(p, (str,)) for p in pending]
        objs[kind] = dict(fixed)
    return objs, statuses


class Checker:
    def __init__(self, man):
        self.objs, self.statuses = parse(man)
        assert set(self.objs) >= {"target", "control_set", "adapter", "value", "advanced",
                                  "choice", "change", "replay", "defer", "caveat"}, self.objs.keys()
        assert len(self.statuses) >= 11, self.statuses

    def obj(self, kind, o, where):
        spec = self.objs[kind]
        assert isinstance(o, dict), "%s: not an object: %r" % (where, o)
        if set(o) != set(spec):
            raise AssertionError("%s: keys differ from the man page: extra %s, missing %s"
                                 % (where, sorted(set(o) - set(spec)), sorted(set(spec) - set(o))))
        for k, types in spec.items():
            v = o[k]
            ok = any(isinstance(v, t) and not (t is int and isinstance(v, bool)) for t in types)
            assert ok, "%s.%s: %r is not %s" % (where, k, v, [t.__name__ for t in types])

    def value(self, v, where):
        if v is not None:
            self.obj("value", v, where)

    def target(self, o):
        self.obj("target", o, "target")
        assert o["schema_version"] == 1, o["schema_version"]
        assert o["status"] in self.statuses, "undocumented status " + o["status"]
        assert o["exit_code"] in self.statuses[o["status"]], \
            "status %s with exit %d: documented %s" % (o["status"], o["exit_code"],
                                                       self.statuses[o["status"]])
        for cs in o["control_sets"]:
            self.obj("control_set", cs, "control_sets[]")
        for a in o["adapters"] or []:
            self.obj("adapter", a, "adapters[]")
            self.value(a["receive_buffer"], "receive_buffer")
            self.value(a["send_buffer"], "send_buffer")
            for p in a["advanced"] or []:
                self.obj("advanced", p, "advanced[]")
                self.value(p["value"], "advanced[].value")
                for c in p["choices"] or []:
                    self.obj("choice", c, "choices[]")
            for c in a["changes"] or []:
                self.obj("change", c, "changes[]")
                self.value(c["old"], "changes[].old")
                self.value(c["new"], "changes[].new")
        if o["replay"] is not None:
            self.obj("replay", o["replay"], "replay")
        if o["defer"] is not None:
            self.obj("defer", o["defer"], "defer")
        for cv in o["caveats"]:
            self.obj("caveat", cv, "caveats[]")


def main():
    man, cmd = sys.argv[1], sys.argv[2]
    c = Checker(man)
    if cmd == "check":
        path, status, code = sys.argv[3], sys.argv[4], int(sys.argv[5])
        lines = open(path, encoding="ascii").read().splitlines()
        assert lines, "no JSON object"
        for line in lines:
            o = json.loads(line)
            c.target(o)
            if len(sys.argv) > 6:
                with open(sys.argv[6], "a") as f:
                    f.write(o["status"] + "\n")
        # Several targets are reported in the order they finish (the man
        # page, OUTPUT): the run's status is the object with the highest
        # exit code, as the tool's own exit status is.
        objs = [json.loads(line) for line in lines]
        top = max(reversed(objs), key=lambda o: o["exit_code"])
        assert (top["status"], top["exit_code"]) == (status, code), \
            "got %s/%d, expected %s/%d" % (top["status"], top["exit_code"], status, code)
    elif cmd == "source":
        src = open(sys.argv[3]).read()
        m = re.search(r"json_keys\[\] = \{(.*?)\};", src, re.S)
        keys = re.findall(r'"([a-z_]+)"', m.group(1))
        assert keys == list(c.objs["target"]), (keys, list(c.objs["target"]))
        job = open(sys.argv[4]).read()
        m = re.search(r"^outcome_status_name \(.*?^}", job, re.S | re.M)
        names = set(re.findall(r'case ST_\w+: return "([a-z-]+)";', m.group(0)))
        assert names == set(c.statuses), \
            "job.c has %s, the man page %s" % (sorted(names), sorted(c.statuses))
    elif cmd == "coverage":
        seen = set(open(sys.argv[3]).read().split())
        missing = set(c.statuses) - seen
        assert not missing, "statuses never produced: %s" % sorted(missing)
        print("# statuses produced: %d of %d documented" % (len(seen & set(c.statuses)),
                                                           len(c.statuses)))
    else:
        sys.exit("unknown command " + cmd)


main()
