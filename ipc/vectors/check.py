#!/usr/bin/env python3
"""Runs Faultline's IPC wire vectors without Rust.

A second, independent implementation of the wire format (the envelope and
the postcard body), written from ipc/vectors/FORMAT.md and driven by
ipc/vectors/schema.json, standard library only. For every vector file in
this directory it checks each case as FORMAT.md says (golden: bytes decode
to the value and the value encodes to the bytes; decode: bytes decode to the
value; decode_error / encode_error: exactly that error), prints one line per
file and a total, and exits non-zero on any mismatch. It also checks that the
golden cases use every variant of every enum in the schema, and that the
failure cases name every WireError kind.

    python3 ipc/vectors/check.py [DIR]
"""

import json
import pathlib
import sys

MAX_MESSAGE = 256
HEADER_LEN = 3
UNSIGNED = {"u16": 16, "u32": 32, "u64": 64, "usize": 64}
SIGNED = {"i16": 16, "i32": 32, "i64": 64}


class WireError(Exception):
    """A decode or encode failure, carrying its JSON rendering."""

    def __init__(self, kind, **fields):
        super().__init__(kind)
        self.value = {kind: fields} if fields else kind


class VectorBug(Exception):
    """A value that does not fit its type: the vector file is wrong."""


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        if self.pos >= len(self.data):
            raise WireError("Truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n):
        if len(self.data) - self.pos < n:
            raise WireError("Truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def varint(self, bits):
        """LEB128, at most ceil(bits / 7) bytes; non-minimal forms accepted."""
        max_len = (bits + 6) // 7
        value = 0
        for i in range(max_len):
            b = self.byte()
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if i == max_len - 1 and value >> bits:
                    raise WireError("BadValue")  # above the type's maximum
                return value
        raise WireError("BadValue")  # longer than the type allows


class Codec:
    def __init__(self, types):
        self.types = types
        self.seen = set()  # (enum name, variant) met while decoding

    def decode(self, r, ty):
        if isinstance(ty, str):
            if ty == "bool":
                b = r.byte()
                if b > 1:
                    raise WireError("BadValue")
                return b == 1
            if ty == "u8":
                return r.byte()
            if ty == "i8":
                b = r.byte()
                return b - 256 if b > 127 else b
            if ty in UNSIGNED:
                return r.varint(UNSIGNED[ty])
            if ty in SIGNED:
                z = r.varint(SIGNED[ty])
                return (z >> 1) ^ -(z & 1)
            return self.decode_named(r, ty)
        (kind, arg), = ty.items()
        if kind == "option":
            tag = r.byte()
            if tag > 1:
                raise WireError("BadValue")
            return self.decode(r, arg) if tag else None
        if kind == "vec":
            elem, cap = arg
            out = []
            for _ in range(r.varint(64)):
                value = self.decode(r, elem)  # the element first, then the bound
                if len(out) == cap:
                    raise WireError("FieldTooLong", len=cap + 1)
                out.append(value)
            return out
        if kind == "string":
            raw = r.take(r.varint(64))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError("BadValue") from None
            if len(raw) > arg:
                raise WireError("FieldTooLong", len=len(raw))
            return text
        if kind == "struct":
            return {name: self.decode(r, t) for name, t in arg}
        if kind == "newtype":
            return self.decode(r, arg)
        raise VectorBug(f"unknown type form {kind!r}")

    def decode_named(self, r, name):
        ty = self.types.get(name)
        if ty is None:
            raise VectorBug(f"no type {name!r} in the schema")
        if "enum" not in ty:
            return self.decode(r, ty)
        index = r.varint(32)
        if index >= len(ty["enum"]):
            raise WireError("UnknownVariant")
        variant, body = ty["enum"][index]
        self.seen.add((name, variant))
        return variant if body is None else {variant: self.decode(r, body)}

    def encode(self, out, ty, v):
        if isinstance(ty, str):
            if ty == "bool":
                expect(isinstance(v, bool), v, ty)
                out.append(int(v))
            elif ty in ("u8", "i8"):
                expect(is_int(v) and (0 <= v < 256 if ty == "u8" else -128 <= v < 128), v, ty)
                out.append(v & 0xFF)
            elif ty in UNSIGNED:
                expect(is_int(v) and 0 <= v < 1 << UNSIGNED[ty], v, ty)
                put_varint(out, v)
            elif ty in SIGNED:
                bits = SIGNED[ty]
                expect(is_int(v) and -(1 << (bits - 1)) <= v < 1 << (bits - 1), v, ty)
                put_varint(out, ((v << 1) ^ (v >> (bits - 1))) & ((1 << bits) - 1))
            elif ty in self.types and "enum" in self.types[ty]:
                variants = self.types[ty]["enum"]
                name = v if isinstance(v, str) else next(iter(v), None)
                names = [n for n, _ in variants]
                expect(name in names, v, ty)
                index = names.index(name)
                body = variants[index][1]
                expect((body is None) == isinstance(v, str), v, ty)
                put_varint(out, index)
                if body is not None:
                    expect(len(v) == 1, v, ty)
                    self.encode(out, body, v[name])
            else:
                expect(ty in self.types, v, ty)
                self.encode(out, self.types[ty], v)
            return
        (kind, arg), = ty.items()
        if kind == "option":
            out.append(0 if v is None else 1)
            if v is not None:
                self.encode(out, arg, v)
        elif kind == "vec":
            expect(isinstance(v, list) and len(v) <= arg[1], v, ty)
            put_varint(out, len(v))
            for item in v:
                self.encode(out, arg[0], item)
        elif kind == "string":
            expect(isinstance(v, str) and len(v.encode()) <= arg, v, ty)
            put_varint(out, len(v.encode()))
            out += v.encode()
        elif kind == "struct":
            expect(isinstance(v, dict) and list(v) == [n for n, _ in arg], v, ty)
            for name, t in arg:
                self.encode(out, t, v[name])
        elif kind == "newtype":
            self.encode(out, arg, v)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def expect(ok, v, ty):
    if not ok:
        raise VectorBug(f"{v!r} is not a {ty}")


def put_varint(out, n):
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)


def decode_message(codec, proto, ty, data):
    """The whole message, checked in the order FORMAT.md gives."""
    if proto is not None:
        if len(data) > MAX_MESSAGE:
            raise WireError("Oversize", len=len(data))
        if len(data) < HEADER_LEN:
            raise WireError("Truncated")
        found = data[0] | data[1] << 8
        if found != proto["id"]:
            raise WireError("WrongProtocol", expected=proto["id"], found=found)
        if data[2] != proto["version"]:
            raise WireError("VersionMismatch", expected=proto["version"], found=data[2])
        data = data[HEADER_LEN:]
    r = Reader(data)
    value = codec.decode(r, ty)
    if r.pos != len(data):
        raise WireError("TrailingBytes", extra=len(data) - r.pos)
    return value


def encode_message(codec, proto, ty, value):
    out = bytearray()
    if proto is not None:
        out += bytes([proto["id"] & 0xFF, proto["id"] >> 8, proto["version"]])
    codec.encode(out, ty, value)
    if len(out) > MAX_MESSAGE:
        raise WireError("BufferFull")
    return bytes(out)


def canon(v):
    """Strict equality: true is not 1, key order does not matter."""
    return json.dumps(v, sort_keys=True)


def outcome(f):
    try:
        return ("ok", f())
    except WireError as e:
        return ("error", e.value)


def check_case(codec, proto, case):
    """Returns a list of mismatches (empty when the case holds)."""
    kind, ty = case["kind"], case["type"]
    problems = []
    if "bytes" in case:
        got = outcome(lambda: decode_message(codec, proto, ty, bytes.fromhex(case["bytes"])))
        want = ("error", case["error"]) if kind == "decode_error" else ("ok", case["value"])
        if canon(got) != canon(want):
            problems.append(f"decoding gave {got[0]} {canon(got[1])}, expected {want[0]} {canon(want[1])}")
    if kind in ("golden", "encode_error"):
        got = outcome(lambda: encode_message(codec, proto, ty, case["value"]).hex(" "))
        want = ("error", case["error"]) if kind == "encode_error" else ("ok", bytes.fromhex(case["bytes"]).hex(" "))
        if canon(got) != canon(want):
            problems.append(f"encoding gave {got[0]} {canon(got[1])}, expected {want[0]} {canon(want[1])}")
    if kind not in ("golden", "decode", "decode_error", "encode_error"):
        problems.append(f"unknown case kind {kind!r}")
    return problems


def main():
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent)
    types = json.loads((folder / "schema.json").read_text())["types"]
    total = failed = files = 0
    errors_named = set()
    coverage = Codec(types)
    for path in sorted(folder.glob("*.json")):
        if path.name == "schema.json":
            continue
        doc = json.loads(path.read_text())
        proto, cases = doc["protocol"], doc["cases"]
        bad = 0
        for case in cases:
            codec = Codec(types)
            try:
                problems = check_case(codec, proto, case)
            except (VectorBug, KeyError, ValueError) as e:
                problems = [f"malformed case: {e!r}"]
            if case["kind"] == "golden" and not problems:
                coverage.seen |= codec.seen
            if "error" in case:
                errors_named.add(case["error"] if isinstance(case["error"], str) else next(iter(case["error"])))
            for p in problems:
                print(f"FAIL {path.name}: {case.get('name')!r}: {p}")
            bad += bool(problems)
        print(f"{path.name}: {len(cases) - bad}/{len(cases)} cases pass")
        total += len(cases)
        files += 1
        failed += bad
    for name, ty in types.items():
        for variant, _ in ty.get("enum", []):
            if (name, variant) not in coverage.seen:
                print(f"FAIL coverage: no golden case uses {name}::{variant}")
                failed += 1
    for kind, _ in types["WireError"]["enum"]:
        if kind not in errors_named:
            print(f"FAIL coverage: no failure case expects WireError::{kind}")
            failed += 1
    print(f"total: {total} cases in {files} files; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
