"""Minimal reader for R lazy-load databases (``Rdata.rdx`` / ``Rdata.rdb``).

Standard library only.  It understands enough of R's XDR serialisation
format (versions 2 and 3) to pull character vectors out of a data package
such as Debian's r-cran-janeaustenr, so no R installation is needed.

Usage as a library::

    objs = read_lazyload_db("/usr/lib/R/site-library/janeaustenr/data/Rdata")
    objs["emma"]  # -> RObject(kind="STRSXP", value=[...lines...], attrs=...)
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from typing import Any

# SEXP type codes (R internals, serialize.c)
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP, INTSXP, REALSXP = 7, 8, 9, 10, 13, 14
CPLXSXP, STRSXP, DOTSXP, VECSXP, EXPRSXP, BCODESXP = 15, 16, 17, 19, 20, 21
EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = 22, 23, 24, 25
# pseudo types
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP = 255, 254, 253, 252
MISSINGARG_SXP, PACKAGESXP, NAMESPACESXP, BASENAMESPACE_SXP = 251, 250, 249, 247
PERSISTSXP, EMPTYENV_SXP, BASEENV_SXP, ALTREP_SXP = 248, 242, 241, 238
CLASSREFSXP, GENERICREFSXP, BCREPDEF, BCREPREF = 246, 245, 244, 243
ATTRLANGSXP, ATTRLISTSXP = 240, 239

NA_INTEGER = -(2**31)


@dataclass
class RObject:
    kind: str
    value: Any = None
    attrs: Any = None
    tag: Any = None


@dataclass
class _Sym:
    name: str


class RUnserializeError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.p = 0
        self.refs: list[Any] = []

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.d):
            raise RUnserializeError("truncated R serialisation stream")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + (lo & 0xFFFFFFFF)
        return n

    def header(self) -> None:
        fmt = self.take(2)
        if fmt != b"X\n":
            raise RUnserializeError(f"only XDR serialisation is supported, got {fmt!r}")
        version = self.int()
        self.int()  # writer R version
        self.int()  # minimal reader version
        if version == 3:
            n = self.int()
            self.take(n)  # native encoding
        elif version != 2:
            raise RUnserializeError(f"unsupported serialisation version {version}")

    def item(self) -> Any:
        flags = self.int()
        t = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))

        if t == NILVALUE_SXP or t == NILSXP:
            return None
        if t in (EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP,
                 MISSINGARG_SXP, BASENAMESPACE_SXP):
            return RObject("ENV_SPECIAL", t)
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == PERSISTSXP:
            v = self._strvec_persist()
            obj = RObject("PERSIST", v)
            self.refs.append(obj)
            return obj
        if t == SYMSXP:
            s = self.item()  # CHARSXP
            sym = _Sym(s if isinstance(s, str) else str(s))
            self.refs.append(sym)
            return sym
        if t in (PACKAGESXP, NAMESPACESXP):
            v = self._strvec_persist()
            obj = RObject("NAMESPACE", v)
            self.refs.append(obj)
            return obj
        if t == ENVSXP:
            self.int()  # locked
            obj = RObject("ENVSXP")
            self.refs.append(obj)
            enclos = self.item()
            frame = self.item()
            hashtab = self.item()
            attrs = self.item()
            obj.value = {"enclos": enclos, "frame": frame, "hashtab": hashtab}
            obj.attrs = attrs
            return obj
        if t in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLANGSXP, ATTRLISTSXP):
            # pairlist: iterate on cdr to avoid deep recursion
            items = []
            first_attr = None
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                car = self.item()
                if first_attr is None:
                    first_attr = attr
                items.append((tag.name if isinstance(tag, _Sym) else tag, car))
                nflags = self.int()
                nt = nflags & 0xFF
                if nt in (LISTSXP, LANGSXP, ATTRLISTSXP, ATTRLANGSXP) and t in (LISTSXP, ATTRLISTSXP):
                    has_attr = bool(nflags & (1 << 9))
                    has_tag = bool(nflags & (1 << 10))
                    continue
                # not a plain continuation: push back and read generically
                self.p -= 4
                rest = self.item()
                if rest is not None:
                    items.append((None, rest))
                break
            return RObject("PAIRLIST" if t in (LISTSXP, ATTRLISTSXP) else "LANG", items, first_attr)
        if t == CHARSXP:
            n = self.int()
            if n == -1:
                return None  # NA_character_
            raw = self.take(n)
            levels = flags >> 12
            if levels & (1 << 2):  # LATIN1
                return raw.decode("latin-1")
            return raw.decode("utf-8", errors="replace")
        if t in (LGLSXP, INTSXP):
            n = self.length()
            vals = list(struct.unpack(f">{n}i", self.take(4 * n)))
            return self._finish(RObject("LGLSXP" if t == LGLSXP else "INTSXP", vals), has_attr)
        if t == REALSXP:
            n = self.length()
            vals = list(struct.unpack(f">{n}d", self.take(8 * n)))
            return self._finish(RObject("REALSXP", vals), has_attr)
        if t == CPLXSXP:
            n = self.length()
            vals = list(struct.unpack(f">{2 * n}d", self.take(16 * n)))
            return self._finish(RObject("CPLXSXP", vals), has_attr)
        if t == RAWSXP:
            n = self.length()
            return self._finish(RObject("RAWSXP", self.take(n)), has_attr)
        if t == STRSXP:
            n = self.length()
            vals = [self.item() for _ in range(n)]
            return self._finish(RObject("STRSXP", vals), has_attr)
        if t in (VECSXP, EXPRSXP):
            n = self.length()
            vals = [self.item() for _ in range(n)]
            return self._finish(RObject("VECSXP", vals), has_attr)
        if t == S4SXP:
            return self._finish(RObject("S4SXP"), has_attr)
        if t == ALTREP_SXP:
            info = self.item()
            state = self.item()
            attr = self.item()
            return RObject("ALTREP", {"info": info, "state": state}, attr)
        if t in (SPECIALSXP, BUILTINSXP):
            n = self.int()
            return RObject("BUILTIN", self.take(n).decode())
        raise RUnserializeError(f"unsupported SEXP type {t} at offset {self.p - 4}")

    def _strvec_persist(self) -> list:
        if self.int() != 0:
            raise RUnserializeError("bad persistent string vector")
        n = self.int()
        return [self.item() for _ in range(n)]

    def _finish(self, obj: RObject, has_attr: bool) -> RObject:
        if has_attr:
            obj.attrs = self.item()
        return obj


def unserialize(data: bytes) -> Any:
    r = _Reader(data)
    r.header()
    return r.item()


def attr(obj: RObject, name: str) -> Any:
    a = obj.attrs
    if isinstance(a, RObject) and a.kind == "PAIRLIST":
        for tag, val in a.value:
            if tag == name:
                return val
    return None


def _decompress_rdb_blob(blob: bytes) -> bytes:
    # R's lazy-load blobs: 4-byte big-endian uncompressed length, then either
    # zlib data directly (type 1) or a one-byte type tag (type 2/3: 'Z', '2', 'X', '0').
    ulen = struct.unpack(">I", blob[:4])[0]
    body = blob[4:]
    if body[:1] in (b"Z",):
        out = zlib.decompress(body[1:])
    elif body[:1] == b"0":
        out = body[1:]
    elif body[:1] in (b"2",):
        import bz2
        out = bz2.decompress(body[1:])
    elif body[:1] in (b"X",):
        import lzma
        out = lzma.decompress(body[1:])
    else:
        out = zlib.decompress(body)
    if len(out) != ulen:
        raise RUnserializeError(f"length mismatch: {len(out)} != {ulen}")
    return out


def read_lazyload_db(prefix: str) -> dict[str, Any]:
    """Read every object of ``prefix.rdx``/``prefix.rdb``; returns name -> object."""
    with open(prefix + ".rdx", "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:2] != b"X\n":
        raw = zlib.decompress(raw[4:]) if raw[4:5] != b"X" else raw[4:]
    index = unserialize(raw)
    names = attr(index, "names").value
    variables = index.value[names.index("variables")]
    var_names = attr(variables, "names").value
    with open(prefix + ".rdb", "rb") as f:
        rdb = f.read()
    out: dict[str, Any] = {}
    for name, pos in zip(var_names, variables.value):
        off, ln = int(pos.value[0]), int(pos.value[1])
        out[name] = unserialize(_decompress_rdb_blob(rdb[off:off + ln]))
    return out


if __name__ == "__main__":  # pragma: no cover - manual inspection helper
    import sys

    db = read_lazyload_db(sys.argv[1])
    for k, v in db.items():
        n = len(v.value) if isinstance(v, RObject) and isinstance(v.value, list) else "?"
        print(k, v.kind if isinstance(v, RObject) else type(v), n)
