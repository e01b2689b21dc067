#!/usr/bin/env python3
"""Build the attnscope sample-model corpus from unpacked Debian packages.

Standard library only.  Called by tools/samples/extract_corpus.sh, which
downloads the .deb files with ``apt-get download`` and unpacks each one with
``dpkg-deb -x`` into ``<pkgs>/<package-name>/``.  This script then

  * extracts plain English text from each package (R data, SWORD modules,
    dictd files, reStructuredText sources, plain text),
  * cleans it (UTF-8, NFC, markup noise removed, whitespace normalised),
  * splits it into documents (chapters, dictionary pages, doc files/sections),
  * caps the large sources to a byte budget (deterministic, hash-selected),
  * holds out 2% (valid) and 1% (test) of each source at document level,
  * shuffles every split deterministically (sha256 keys with a fixed seed),
  * writes train.txt / valid.txt / test.txt (+ gzip copies for carrying),
    manifest.json, and samples/corpus/SOURCES.md.

Output format of the .txt files: UTF-8; every document is followed by a line
holding only ``<|endoftext|>``.  That string never occurs inside a document.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import io
import json
import os
import re
import struct
import sys
import unicodedata
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rdata  # noqa: E402

EOT = "<|endoftext|>"
SEED = 20240603          # fixed; changing it changes every output hash
VALID_FRAC = 0.02
TEST_FRAC = 0.01
MAX_DOC_BYTES = 16384    # longer documents are split at paragraph boundaries
MIN_DOC_BYTES = 200      # shorter documents are dropped (tables of contents, stubs)

# Source name -> (Debian package, byte budget or None for "everything")
SOURCES = {
    "austen": ("r-cran-janeaustenr", None),
    "kjv": ("sword-text-kjv", None),
    "web": ("sword-text-web", None),
    "gcide": ("dict-gcide", 12_000_000),
    "jargon": ("jargon-text", None),
    "linuxdoc": ("linux-doc-6.1", 18_000_000),
    "pydoc": ("python3.11-doc", None),
}

LICENSES = {
    "r-cran-janeaustenr": "MIT (package); the six novels themselves are public domain",
    "sword-text-kjv": "public domain (outside the UK; see copyright file)",
    "sword-text-web": "public domain ('World English Bible' is a trademark of eBible.org)",
    "dict-gcide": "GPL-2+ (GCIDE); derived from Webster's 1913 (public domain) and WordNet 1.5",
    "jargon-text": "public domain (Jargon File 4.4.7)",
    "linux-doc-6.1": "GPL-2 (Linux kernel documentation)",
    "python3.11-doc": "PSF License Agreement (Python documentation; see copyright file)",
}

DESCRIPTIONS = {
    "austen": "Jane Austen's six completed novels (R data in janeaustenr/data/Rdata.rdb, read without R)",
    "kjv": "King James Version Bible (SWORD zText module engKJV2006eb, OSIS markup stripped)",
    "web": "World English Bible incl. deuterocanon (SWORD zText module engWEB2015eb, OSIS stripped)",
    "gcide": "GNU Collaborative International Dictionary of English (dictd gcide.dict.dz), pages of entries",
    "jargon": "The Jargon File 4.4.7 (jargon.txt.gz), groups of entries",
    "linuxdoc": "Linux 6.1 kernel documentation sources (Documentation/**/*.rst.gz and *.txt.gz, "
                "translations excluded), markup stripped",
    "pydoc": "Python 3.11 documentation reST sources (html/_sources/**/*.rst.txt), markup stripped",
}


# ----------------------------------------------------------------------------
# generic text helpers
# ----------------------------------------------------------------------------

_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\ufeff]")
_SPACES = {"\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
           "\u2028": "\n", "\u2029": "\n\n", "\r\n": "\n", "\r": "\n"}


def decode_bytes(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("cp1252", errors="replace")


def normalise(text: str) -> str:
    """NFC, no control characters, tidy whitespace, max one blank line."""
    text = unicodedata.normalize("NFC", text)
    for a, b in _SPACES.items():
        text = text.replace(a, b)
    text = _CTRL.sub("", text)
    text = text.replace(EOT, "")
    lines = []
    for line in text.split("\n"):
        line = line.rstrip()
        # leading tabs -> 4 spaces each, inner tabs -> one space
        m = re.match(r"^[\t ]*", line)
        lead = m.group(0).replace("\t", "    ")
        body = re.sub(r"\t+", " ", line[m.end():])
        lines.append(lead + body if body else "")
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def reflow(paragraph: str) -> str:
    return " ".join(w for w in paragraph.split())


def split_long(text: str, max_bytes: int = MAX_DOC_BYTES) -> list[str]:
    """Split at paragraph (then line) boundaries into pieces of <= max_bytes."""
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    units = text.split("\n\n")
    sep = "\n\n"
    if len(units) == 1:
        units = text.split("\n")
        sep = "\n"
    pieces, cur, cur_len = [], [], 0
    for u in units:
        ul = len(u.encode("utf-8")) + len(sep)
        if cur and cur_len + ul > max_bytes:
            pieces.append(sep.join(cur))
            cur, cur_len = [], 0
        cur.append(u)
        cur_len += ul
    if cur:
        pieces.append(sep.join(cur))
    out = []
    for p in pieces:
        if sep == "\n\n" and len(p.encode("utf-8")) > max_bytes and "\n" in p:
            out.extend(split_long_lines(p, max_bytes))
        else:
            out.append(p)
    return out


def split_long_lines(text: str, max_bytes: int) -> list[str]:
    pieces, cur, cur_len = [], [], 0
    for u in text.split("\n"):
        ul = len(u.encode("utf-8")) + 1
        if cur and cur_len + ul > max_bytes:
            pieces.append("\n".join(cur))
            cur, cur_len = [], 0
        cur.append(u)
        cur_len += ul
    if cur:
        pieces.append("\n".join(cur))
    return pieces


def group_entries(entries: list[str], target: int, sep: str = "\n\n") -> list[str]:
    """Concatenate consecutive short entries into documents of >= target bytes."""
    docs, cur, cur_len = [], [], 0
    for e in entries:
        cur.append(e)
        cur_len += len(e.encode("utf-8")) + len(sep)
        if cur_len >= target:
            docs.append(sep.join(cur))
            cur, cur_len = [], 0
    if cur:
        docs.append(sep.join(cur))
    return docs


def key(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in (SEED,) + parts).encode()).hexdigest()


# ----------------------------------------------------------------------------
# Jane Austen (r-cran-janeaustenr)
# ----------------------------------------------------------------------------

AUSTEN_TITLES = {
    "sensesensibility": "Sense and Sensibility", "prideprejudice": "Pride and Prejudice",
    "mansfieldpark": "Mansfield Park", "emma": "Emma", "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}


def extract_austen(root: Path) -> list[tuple[str, str]]:
    base = root / "usr/lib/R/site-library/janeaustenr/data/Rdata"
    db = rdata.read_lazyload_db(str(base))
    docs = []
    for name in sorted(db):
        obj = db[name]
        if not (isinstance(obj, rdata.RObject) and obj.kind == "STRSXP"):
            continue
        lines = [ln or "" for ln in obj.value]
        # paragraphs: runs of non-empty lines
        paras, cur = [], []
        for ln in lines:
            if ln.strip():
                cur.append(ln)
            elif cur:
                paras.append(reflow(" ".join(cur)))
                cur = []
        if cur:
            paras.append(reflow(" ".join(cur)))
        chapters, cur = [], []
        for p in paras:
            if re.match(r"^(CHAPTER|Chapter)\s+[0-9IVXLC]+\.?$", p) and cur:
                chapters.append(cur)
                cur = []
            cur.append(p)
        if cur:
            chapters.append(cur)
        if len(chapters) > 1 and len(" ".join(chapters[0])) < 500:
            chapters[1] = chapters[0] + chapters[1]  # title page goes with chapter 1
            chapters = chapters[1:]
        for i, ch in enumerate(chapters):
            # Austen's emphasis is marked _like this_ in the Gutenberg text
            text = "\n\n".join(ch)
            text = re.sub(r"(?<![\w_])_([^_\n]+?)_(?![\w_])", r"\1", text)
            docs.append((f"austen/{name}/{i:03d}", text))
    return docs


# ----------------------------------------------------------------------------
# SWORD zText modules (sword-text-kjv, sword-text-web)
# ----------------------------------------------------------------------------

def _sword_testament(moddir: Path, testament: str) -> str:
    bzs = (moddir / f"{testament}.bzs").read_bytes()
    bzv = (moddir / f"{testament}.bzv").read_bytes()
    bzz = (moddir / f"{testament}.bzz").read_bytes()
    blocks: dict[int, bytes] = {}

    def block(b: int) -> bytes:
        if b not in blocks:
            off, size, _usize = struct.unpack_from("<III", bzs, b * 12)
            blocks[b] = zlib.decompress(bzz[off:off + size])
        return blocks[b]

    out = []
    for i in range(len(bzv) // 10):
        b, off, size = struct.unpack_from("<IIH", bzv, i * 10)
        if size == 0:
            continue
        out.append(decode_bytes(block(b)[off:off + size]))
    return " ".join(out)


def _osis_to_text(s: str) -> str:
    s = re.sub(r"<note\b[^>]*/>", "\x01", s)
    s = re.sub(r"<note\b[^>]*>.*?</note>", "\x01", s, flags=re.S)
    s = re.sub(r"<title\b[^>]*>(.*?)</title>", r"\n\n\1\n\n", s, flags=re.S)
    s = re.sub(r"<div\b[^>]*type=\"x-p\"[^>]*sID=[^>]*/>", "\n\n", s)
    s = re.sub(r"<div\b[^>]*sID=[^>]*type=\"x-p\"[^>]*/>", "\n\n", s)
    s = re.sub(r"<(p|lg)\b[^>]*>", "\n\n", s)
    s = re.sub(r"</(p|lg)>", "\n\n", s)
    s = re.sub(r"<lb\b[^>]*/>", "\n", s)
    s = re.sub(r"<l\b[^>]*eID=[^>]*/>|</l>", "\n", s)
    s = re.sub(r"<l\b[^>]*sID=[^>]*/>|<l\b[^>]*>", "\n", s)
    s = re.sub(r"<[^>]+>", "", s)
    s = html.unescape(s)
    s = re.sub(r"(?<=\w)\x01+(?=\w)", " ", s).replace("\x01", "")  # a note between two words
    s = s.replace("¶", "")
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in s.split("\n")]
    s = "\n".join(lines)
    s = re.sub(r"\n{3,}", "\n\n", s)
    return s.strip()


def extract_sword(root: Path, src: str) -> list[tuple[str, str]]:
    mods = sorted((root / "usr/share/sword/modules/texts/ztext").iterdir())
    if len(mods) != 1:
        raise SystemExit(f"{src}: expected exactly one zText module, found {mods}")
    moddir = mods[0]
    docs = []
    for testament in ("ot", "nt"):
        if not (moddir / f"{testament}.bzs").exists():
            continue
        raw = _sword_testament(moddir, testament)
        # book names from the USFM header milestone that precedes each book
        raw = re.sub(r"<milestone\b[^>]*n=\"([^\"]+)\"[^>]*type=\"x-usfm-h\"[^>]*/>",
                     lambda m: f"\x00BOOK {m.group(1)}\x00", raw)
        raw = re.sub(r"<milestone\b[^>]*type=\"x-usfm-h\"[^>]*n=\"([^\"]+)\"[^>]*/>",
                     lambda m: f"\x00BOOK {m.group(1)}\x00", raw)

        def chap(m: re.Match) -> str:
            attrs = m.group(1)
            if "eID=" in attrs:
                return ""
            n = re.search(r"\bn=\"([^\"]+)\"", attrs)
            oid = re.search(r"osisID=\"([^\"]+)\"", attrs)
            num = n.group(1) if n else (oid.group(1).rsplit(".", 1)[-1] if oid else "?")
            return f"\x00CHAP {num}\x00"

        raw = re.sub(r"<chapter\b([^>]*)>", chap, raw)
        book = "?"
        pending_intro = ""
        chapter_no = None
        buf: list[str] = []

        def flush() -> None:
            nonlocal pending_intro
            if chapter_no is None:
                return
            body = _osis_to_text("".join(buf))
            if not body:
                return
            head = f"{book} {chapter_no}"
            text = (pending_intro + "\n\n" if pending_intro else "") + head + "\n\n" + body
            pending_intro = ""
            docs.append((f"{src}/{testament}/{book}/{chapter_no}", text))

        for part in re.split(r"(\x00[A-Z]+ [^\x00]*\x00)", raw):
            if part.startswith("\x00BOOK "):
                flush()
                buf, chapter_no = [], None
                book = part[6:-1].strip()
            elif part.startswith("\x00CHAP "):
                if chapter_no is None and buf:
                    intro = _osis_to_text("".join(buf))
                    pending_intro = intro if len(intro) > 0 else ""
                else:
                    flush()
                buf, chapter_no = [], part[6:-1].strip()
            else:
                buf.append(part)
        flush()
    return docs


# ----------------------------------------------------------------------------
# GCIDE (dict-gcide)
# ----------------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(s: str) -> int:
    v = 0
    for c in s:
        v = v * 64 + _B64.index(c)
    return v


def _clean_gcide_entry(e: str) -> str:
    lines = e.rstrip("\n").split("\n")
    # the first span also holds the file's front matter: start at the headword line
    for i, ln in enumerate(lines[:40]):
        if re.match(r"^\S.*\\[^\\]+\\", ln):
            lines = lines[i:]
            break
    out = []
    for ln in lines:
        st = ln.strip()
        # stand-alone source tags: [1913 Webster], [WordNet 1.5 +PJC], [Obs.] ...
        if re.fullmatch(r"\[[^\[\]]{1,60}\]", st):
            continue
        out.append(ln)
    text = "\n".join(out)
    head, _, rest = text.partition("\n")
    # headword line: drop pronunciation \Ab*ase"\ and (pron codes [e^])
    head = re.sub(r"\s*\\[^\\\n]*\\", "", head)
    head = re.sub(r"\s*\([^()\n]*\[[^\]]*\][^()\n]*\)", "", head)
    text = head + ("\n" + rest if rest else "")
    text = re.sub(r"\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"(?<=\s)\?(?=[\s,;.)])", "", text)  # "Gr. ? to appear": Greek lost in conversion
    # leftover pronunciation/etymology letter codes: [=ae] [e^] [.a] [imac] [ae] [oe]
    text = text.replace("[ae]", "æ").replace("[oe]", "œ").replace("[AE]", "Æ").replace("[OE]", "Œ")
    text = re.sub(r"\[(?:[=^`'~\".]([a-zA-Z]{1,2})|([a-zA-Z]{1,2})[=^`'~\"]|([a-zA-Z])(?:mac|breve|cr))\]",
                  lambda m: m.group(1) or m.group(2) or m.group(3), text)
    paras = [reflow(p) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n".join(paras)


def extract_gcide(root: Path) -> list[tuple[str, str]]:
    d = root / "usr/share/dictd"
    with gzip.open(d / "gcide.dict.dz", "rb") as f:  # dictzip is gzip-compatible
        data = f.read()
    spans = set()
    with open(d / "gcide.index", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-"):
                continue
            spans.add((_b64(parts[1]), _b64(parts[2])))
    entries = []
    for off, ln in sorted(spans):
        e = _clean_gcide_entry(decode_bytes(data[off:off + ln]))
        if len(e) > 20:
            entries.append(e)
    pages = group_entries(entries, 4000)
    return [(f"gcide/p{i:05d}", p) for i, p in enumerate(pages)]


# ----------------------------------------------------------------------------
# Jargon File (jargon-text)
# ----------------------------------------------------------------------------

def extract_jargon(root: Path) -> list[tuple[str, str]]:
    p = root / "usr/share/doc/jargon-text/jargon.txt.gz"
    with gzip.open(p, "rb") as f:
        text = decode_bytes(f.read())
    text = text.replace("═", "").replace("─", "")
    lines = text.split("\n")
    # the table of contents (everything before the first chapter body) is dropped
    start = 0
    for i, ln in enumerate(lines):
        if ln.strip() == "Welcome to the Jargon File" and i > 20:
            start = i
            break
    lines = lines[start:]
    # entries start with a line like "   :gobble: vt." ; other blocks are prose
    entries, cur = [], []
    for ln in lines:
        if re.match(r"^\s{0,4}:[^:\s][^:]*:", ln) and cur:
            entries.append("\n".join(cur))
            cur = []
        cur.append(ln)
    if cur:
        entries.append("\n".join(cur))
    cleaned = []
    for e in entries:
        e = re.sub(r"\{([^{}]*)\}", r"\1", e)
        m = re.match(r"^\s*:([^:]+):\s*(.*)$", e.split("\n", 1)[0])
        paras = [reflow(p) for p in re.split(r"\n\s*\n", e) if p.strip()]
        if m and paras:
            paras[0] = f"{m.group(1)}: {m.group(2)}".rstrip(": ").rstrip() if m.group(2) else m.group(1)
            paras[0] = reflow(paras[0])
        cleaned.append("\n\n".join(paras))
    docs = group_entries([c for c in cleaned if c.strip()], 3000, sep="\n\n")
    return [(f"jargon/{i:04d}", d) for i, d in enumerate(docs)]


# ----------------------------------------------------------------------------
# reStructuredText cleaning (kernel and Python docs)
# ----------------------------------------------------------------------------

# directives whose argument is the interesting text (API signatures)
KEEP_ARG = {
    "function", "method", "classmethod", "staticmethod", "class", "exception", "data",
    "attribute", "decorator", "decoratormethod", "describe", "option", "cmdoption",
    "envvar", "opcode", "pdbcommand", "coroutinefunction", "coroutinemethod",
    "abstractmethod", "property", "object", "c:function", "c:macro", "c:type", "c:struct",
    "c:member", "c:var", "c:enum", "c:enumerator", "c:union", "c:data", "c:func",
    "cpp:function", "cpp:class", "cpp:type", "cfunction", "cmacro", "ctype", "cmember",
    "cvar", "rubric", "topic", "sidebar", "glossary", "productionlist", "tabularcolumns",
}
LABEL = {
    "note": "Note:", "warning": "Warning:", "important": "Important:", "tip": "Tip:",
    "caution": "Caution:", "attention": "Attention:", "hint": "Hint:", "danger": "Danger:",
    "error": "Error:", "seealso": "See also:", "impl-detail": "CPython implementation detail:",
    "admonition": "",
}
VERSION_LABEL = {
    "versionadded": "New in version {}.", "versionchanged": "Changed in version {}:",
    "deprecated": "Deprecated since version {}:", "deprecated-removed": "Deprecated since version {}:",
}
DROP_ALL = {
    "toctree", "index", "raw", "include", "literalinclude", "image", "figure", "kernel-doc",
    "kernel-feat", "kernel-abi", "kernel-include", "contents", "sectionauthor", "moduleauthor",
    "currentmodule", "module", "program", "default-domain", "c:namespace", "c:namespace-push",
    "c:namespace-pop", "cssclass", "role", "highlight", "only", "testsetup", "testcleanup",
    "audit-event", "audit-event-table", "availability", "miscnews", "limited-api-list",
    "sectnum", "default-role", "csv-table", "graphviz", "kfigure", "kernel-figure",
    "kernel-render", "digraph", "flat-table", "maintainers-include", "autosummary",
    "automodule", "autoclass", "autofunction", "jira", "code-block-caption", "unicode",
    "tabularcolumns_", "ifconfig", "productionlist_", "opcode_", "pep-index", "tocdepth",
}
LITERAL_BODY = {"code-block", "code", "sourcecode", "doctest", "testcode", "testoutput",
                "parsed-literal", "math", "productionlist"}

_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s?(.*)$")
_COMMENT = re.compile(r"^(\s*)\.\.(\s|$)")
_ADORN = re.compile(r"^\s*([=\-~^\"'`#*+:._<>])\1{2,}\s*$")
_TABLE_RULE = re.compile(r"^\s*(\+[-=+:]+\+|=+(\s+=+)+|-+(\s+-+)+)\s*$")
_OPTION = re.compile(r"^\s+:[\w-]+:( .*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _role(m: re.Match) -> str:
    role, inner = m.group(1), m.group(2)
    inner = inner.strip()
    t = re.match(r"^(.*?)\s*<([^<>]+)>$", inner, flags=re.S)
    if t and t.group(1):
        inner = t.group(1)
    elif t:
        inner = t.group(2)
    if inner.startswith("!"):
        inner = inner[1:]
    if inner.startswith("~"):
        inner = inner[1:].rsplit(".", 1)[-1]
    r = role.split(":")[-1]
    if r == "pep":
        return f"PEP {inner}"
    if r == "rfc":
        return f"RFC {inner}"
    if r in ("func", "meth") and not inner.endswith(")"):
        inner += "()"
    return inner


def _inline(line: str) -> str:
    line = re.sub(r":((?:[\w-]+:)*[\w-]+):`([^`]+)`", _role, line)
    line = re.sub(r"`([^`<>]+?)\s*<[^<>`]+>`__?", r"\1", line)   # `text <url>`_
    line = re.sub(r"`([^`]+)`__?(?!\w)", r"\1", line)           # `ref`_
    line = re.sub(r"``([^`]+)``", r"\1", line)                   # ``literal``
    line = re.sub(r"(?<![\w`])`([^`]+)`(?![\w`])", r"\1", line)  # `default role`
    line = re.sub(r"(?<![\w*])\*\*(\S(?:[^*]*?\S)?)\*\*(?![\w*])", r"\1", line)
    line = re.sub(r"(?<![\w*\\])\*(\S(?:[^*]*?\S)?)\*(?![\w*])", r"\1", line)
    line = re.sub(r"(?<![\w_])([A-Za-z][\w-]*[A-Za-z0-9])_(?=[\s.,;:!?)]|$)", r"\1", line)
    line = re.sub(r"\|([\w -]+)\|", r"\1", line) if "|" in line and not line.strip().startswith("|") else line
    line = line.replace("\\ ", "").replace("\\*", "*").replace("\\_", "_")
    return line


def _block(lines: list[str], i: int, base: int) -> tuple[list[str], int]:
    """Lines after index i that belong to a construct at indent `base`."""
    j = i + 1
    body = []
    while j < len(lines):
        ln = lines[j]
        if ln.strip() and _indent(ln) <= base:
            break
        body.append(ln)
        j += 1
    while body and not body[-1].strip():
        body.pop()
        j -= 1
    return body, j


def _dedent(body: list[str], to: int) -> list[str]:
    ind = min((_indent(b) for b in body if b.strip()), default=to)
    shift = max(0, ind - to)
    return [b[shift:] if b.strip() else "" for b in body]


def clean_rst(text: str) -> str:
    lines = normalise(text).split("\n")
    text = "\n".join(_rst_lines(lines))
    # roles and literals whose text wraps onto the next line
    text = re.sub(r":((?:[\w-]+:)*[\w-]+):`([^`]+)`", _role, text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return normalise(text)


def _rst_lines(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        st = ln.strip()
        ind = _indent(ln)
        m = _DIRECTIVE.match(ln)
        if m:
            name, arg = m.group(2).lower(), m.group(3).strip()
            body, j = _block(lines, i, ind)
            # options directly after the directive line
            k = 0
            while k < len(body) and _OPTION.match(body[k]):
                k += 1
            body = body[k:]  # drop the directive's :options:
            if name in DROP_ALL or name.startswith("kernel-"):
                pass
            elif name in LITERAL_BODY:
                if name == "productionlist" and arg:
                    out.append(" " * ind + arg)
                out.append("")
                out.extend(" " * (ind + 4) + b if b.strip() else "" for b in _dedent(body, 0))
                out.append("")
            else:
                head = ""
                if name in VERSION_LABEL:
                    ver, _, rest = arg.partition(" ")
                    head = VERSION_LABEL[name].format(ver) + (" " + rest if rest else "")
                elif name in LABEL:
                    head = (LABEL[name] + " " + arg).strip()
                elif name in KEEP_ARG or ":" in name:
                    head = arg
                else:
                    head = arg  # unknown directive: keep its argument text
                if head:
                    out.append(" " * ind + _inline(head))
                if body:
                    sub = _rst_lines(_dedent(body, ind))
                    if head and sub and sub[0].strip():
                        pass
                    out.extend(sub)
                out.append("")
            i = j
            continue
        if re.match(r"^\s*\.\.\s+_[^:]*:", ln) or re.match(r"^\s*\.\.\s+\|[^|]+\|", ln):
            _, i = _block(lines, i, ind)  # target / substitution definition
            continue
        fm = re.match(r"^(\s*)\.\.\s+\[([^\]]+)\]\s*(.*)$", ln)
        if fm:  # footnote / citation
            body, j = _block(lines, i, ind)
            text = fm.group(3) + " " + " ".join(b.strip() for b in body)
            out.append(fm.group(1) + f"[{fm.group(2)}] " + _inline(text.strip()))
            i = j
            continue
        if _COMMENT.match(ln):
            _, i = _block(lines, i, ind)
            continue
        if _ADORN.match(ln) or _TABLE_RULE.match(ln):
            i += 1
            continue
        if re.match(r"^\s*:(Author|Authors|Copyright|Last updated|Date|Version|Revision|"
                    r"Original|Maintainer|Contact|Updated|Status|Abstract|SPDX[^:]*):", ln, re.I):
            i += 1
            continue
        if st.endswith("::") and not st.startswith(".."):
            # paragraph introducing a literal block
            intro = ln.rstrip()[:-2].rstrip()
            if intro.strip():
                out.append(_inline(intro if intro.endswith((":", " ")) else intro + ":"))
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            if i < len(lines) and _indent(lines[i]) > ind:
                body, j = _block(lines, i - 1, ind)
                out.append("")
                out.extend(b if b.strip() else "" for b in body)
                out.append("")
                i = j
            continue
        out.append(_inline(ln) if st else "")
        i += 1
    return out


def _mostly_english(text: str) -> bool:
    """English prose with some code: few non-ASCII characters, mostly letters,
    and paragraphs that are not just headings (e.g. index pages whose
    kernel-doc / toctree directives were removed)."""
    if not text:
        return False
    non_ascii = sum(1 for c in text if ord(c) > 127)
    if non_ascii / len(text) >= 0.02:
        return False
    nonspace = re.sub(r"\s", "", text)
    if sum(c.isalpha() for c in nonspace) < 0.5 * len(nonspace):
        return False
    paras = [p for p in text.split("\n\n") if p.strip()]
    return sum(len(p) for p in paras) / max(1, len(paras)) >= 40


def extract_linuxdoc(root: Path) -> list[tuple[str, str]]:
    base = root / "usr/share/doc/linux-doc-6.1/Documentation"
    docs = []
    files = sorted(p for p in base.rglob("*.gz")
                   if (p.name.endswith(".rst.gz") or p.name.endswith(".txt.gz"))
                   and "translations" not in p.relative_to(base).parts)
    for p in files:
        rel = p.relative_to(base).as_posix()[:-3]
        with gzip.open(p, "rb") as f:
            raw = decode_bytes(f.read())
        text = clean_rst(raw)  # the .txt files are mostly reST too
        for k, piece in enumerate(split_long(text)):
            if _mostly_english(piece):
                docs.append((f"linuxdoc/{rel}#{k}", piece))
    return docs


def extract_pydoc(root: Path) -> list[tuple[str, str]]:
    base = root / "usr/share/doc/python3.11/html/_sources"
    docs = []
    skip = re.compile(r"^(genindex|py-modindex|search|contents|copyright|license|bugs|about)\b")
    for p in sorted(base.rglob("*.rst.txt")):
        rel = p.relative_to(base).as_posix()
        if skip.match(rel) or rel.startswith("whatsnew/changelog"):
            continue
        text = clean_rst(decode_bytes(p.read_bytes()))
        for k, piece in enumerate(split_long(text)):
            if _mostly_english(piece):
                docs.append((f"pydoc/{rel}#{k}", piece))
    return docs


EXTRACTORS = {
    "austen": extract_austen,
    "kjv": lambda r: extract_sword(r, "kjv"),
    "web": lambda r: extract_sword(r, "web"),
    "gcide": extract_gcide,
    "jargon": extract_jargon,
    "linuxdoc": extract_linuxdoc,
    "pydoc": extract_pydoc,
}


# ----------------------------------------------------------------------------
# assembly
# ----------------------------------------------------------------------------

def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_split(path: Path, docs: list[tuple[str, str, str]]) -> None:
    data = "".join(text + "\n" + EOT + "\n" for _src, _id, text in docs).encode("utf-8")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def gzip_copy(src: Path, dst: Path) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as g:
        g.write(src.read_bytes())
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pkgs", required=True, type=Path, help="dir with one unpacked package per subdir")
    ap.add_argument("--debs", required=True, type=Path, help="dir with the .deb files (for SOURCES.md)")
    ap.add_argument("--out", required=True, type=Path, help="output dir (build-corpus)")
    ap.add_argument("--sources-md", type=Path, help="write SOURCES.md here")
    ap.add_argument("--deb-info", type=Path, help="TSV: package, version, deb file (from the shell script)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    all_docs: dict[str, list[tuple[str, str]]] = {}
    stats: dict[str, dict] = {}
    seen: set[str] = set()
    for src, (pkg, budget) in SOURCES.items():
        root = args.pkgs / pkg
        if not root.is_dir():
            raise SystemExit(f"missing unpacked package {root}")
        raw_docs = EXTRACTORS[src](root)
        docs, dropped_small, dropped_dup = [], 0, 0
        for did, text in raw_docs:
            text = normalise(text)
            for k, piece in enumerate(split_long(text)):
                pid = did if k == 0 else f"{did}~{k}"
                if len(piece.encode("utf-8")) < MIN_DOC_BYTES:
                    dropped_small += 1
                    continue
                h = hashlib.sha256(piece.encode("utf-8")).hexdigest()
                if h in seen:
                    dropped_dup += 1
                    continue
                seen.add(h)
                docs.append((pid, piece))
        docs.sort(key=lambda d: key(src, d[0]))
        total = sum(len(t.encode("utf-8")) for _, t in docs)
        if budget is not None and total > budget:
            kept, acc = [], 0
            for d in docs:
                if acc >= budget:
                    break
                kept.append(d)
                acc += len(d[1].encode("utf-8"))
            docs = kept
        all_docs[src] = docs
        stats[src] = {"package": pkg, "available_bytes": total, "docs_dropped_short": dropped_small,
                      "docs_dropped_duplicate": dropped_dup, "budget_bytes": budget}
        print(f"[corpus] {src:9s} {len(docs):6d} docs  {sum(len(t.encode()) for _, t in docs):>11,d} bytes"
              f"  (available {total:,d})", file=sys.stderr)

    splits: dict[str, list[tuple[str, str, str]]] = {"train": [], "valid": [], "test": []}
    for src, docs in all_docs.items():
        total = sum(len(t.encode("utf-8")) for _, t in docs)
        acc = 0
        for did, text in docs:  # already in hash order
            b = len(text.encode("utf-8"))
            if acc < VALID_FRAC * total:
                split = "valid"
            elif acc < (VALID_FRAC + TEST_FRAC) * total:
                split = "test"
            else:
                split = "train"
            acc += b
            splits[split].append((src, did, text))
        for split in splits:
            sel = [t for s, _, t in splits[split] if s == src]
            stats[src][f"{split}_docs"] = len(sel)
            stats[src][f"{split}_bytes"] = sum(len(t.encode("utf-8")) for t in sel)

    files = {}
    carry = args.out / "carry"
    carry.mkdir(exist_ok=True)
    for split, docs in splits.items():
        docs.sort(key=lambda d: key("shuffle", split, d[0], d[1]))
        p = args.out / f"{split}.txt"
        write_split(p, docs)
        gz = carry / f"{split}.txt.gz"
        gzip_copy(p, gz)
        files[split] = {"path": p.name, "bytes": p.stat().st_size, "docs": len(docs),
                        "sha256": sha256_file(p), "gz_bytes": gz.stat().st_size,
                        "gz_sha256": sha256_file(gz)}
        print(f"[corpus] {split:5s}: {len(docs):6d} docs {p.stat().st_size:>11,d} bytes  "
              f"sha256 {files[split]['sha256'][:16]}", file=sys.stderr)

    debs = []
    if args.deb_info and args.deb_info.exists():
        for line in args.deb_info.read_text().splitlines():
            pkg, ver, fn = line.split("\t")
            copyright_path = args.pkgs / pkg / "usr/share/doc" / pkg / "copyright"
            lic_fields = []
            ctext = copyright_path.read_text(encoding="utf-8", errors="replace") if copyright_path.exists() else ""
            if ctext.startswith("Format:"):  # machine-readable (DEP-5) copyright file
                for ln in ctext.splitlines():
                    m = re.match(r"^License:\s*(\S.{0,60})$", ln)
                    if m and m.group(1).strip() not in lic_fields:
                        lic_fields.append(m.group(1).strip())
            debs.append({"package": pkg, "version": ver, "deb": Path(fn).name,
                         "copyright_license_fields": lic_fields,
                         "deb_sha256": sha256_file(args.debs / Path(fn).name),
                         "copyright_sha256": sha256_file(copyright_path) if copyright_path.exists() else None,
                         "license": LICENSES.get(pkg, "see copyright file")})

    manifest = {"seed": SEED, "valid_frac": VALID_FRAC, "test_frac": TEST_FRAC,
                "max_doc_bytes": MAX_DOC_BYTES, "min_doc_bytes": MIN_DOC_BYTES,
                "separator": EOT, "files": files, "sources": stats, "packages": debs,
                "documents": {split: [[s, d] for s, d, _ in docs] for split, docs in splits.items()}}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    write_sources_md(args.out / "SOURCES.md", manifest)
    if args.sources_md:
        write_sources_md(args.sources_md, manifest)


def write_sources_md(path: Path, m: dict) -> None:
    L = []
    L.append("# Sample-model corpus: sources")
    L.append("")
    L.append("Generated by `tools/samples/extract_corpus.sh` (do not edit by hand). The corpus itself is "
             "not committed: it is rebuilt into `build-corpus/` (git-ignored) from the Debian 12 "
             "packages below, fetched with `apt-get download` and unpacked with `dpkg-deb -x`.")
    L.append("")
    L.append("## Packages")
    L.append("")
    L.append("| package | version | license | `License:` fields of its copyright file | .deb sha256 |")
    L.append("| --- | --- | --- | --- | --- |")
    for d in m["packages"]:
        fields = ", ".join(d["copyright_license_fields"]) or "(free-form text)"
        L.append(f"| {d['package']} | {d['version']} | {d['license']} | {fields} | `{d['deb_sha256'][:16]}…` |")
    L.append("")
    L.append("Full license texts: `usr/share/doc/<package>/copyright` inside each package "
             "(`build-corpus/pkgs/<package>/usr/share/doc/<package>/copyright` after a run).")
    L.append("")
    L.append("## What is taken from each package")
    L.append("")
    for src, s in m["sources"].items():
        L.append(f"- **{src}** ({s['package']}): {DESCRIPTIONS[src]}.")
    L.append("")
    L.append("## Bytes per source (UTF-8, after cleaning)")
    L.append("")
    L.append("| source | available | budget | train | valid | test | train docs | valid docs | test docs |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    tot = {"available_bytes": 0, "train_bytes": 0, "valid_bytes": 0, "test_bytes": 0,
           "train_docs": 0, "valid_docs": 0, "test_docs": 0}
    for src, s in m["sources"].items():
        for k in tot:
            tot[k] += s[k]
        budget = f"{s['budget_bytes']:,}" if s["budget_bytes"] else "all"
        L.append(f"| {src} | {s['available_bytes']:,} | {budget} | {s['train_bytes']:,} | {s['valid_bytes']:,} | "
                 f"{s['test_bytes']:,} | {s['train_docs']:,} | {s['valid_docs']:,} | {s['test_docs']:,} |")
    L.append(f"| **total** | {tot['available_bytes']:,} | | {tot['train_bytes']:,} | {tot['valid_bytes']:,} | "
             f"{tot['test_bytes']:,} | {tot['train_docs']:,} | {tot['valid_docs']:,} | {tot['test_docs']:,} |")
    L.append("")
    L.append("## Output files (`build-corpus/`)")
    L.append("")
    L.append("| file | bytes | documents | sha256 |")
    L.append("| --- | ---: | ---: | --- |")
    for split, f in m["files"].items():
        L.append(f"| {f['path']} | {f['bytes']:,} | {f['docs']:,} | `{f['sha256']}` |")
    for split, f in m["files"].items():
        L.append(f"| carry/{f['path']}.gz | {f['gz_bytes']:,} | | `{f['gz_sha256']}` |")
    L.append("")
    L.append("## Processing")
    L.append("")
    L.append("- Text normalised to UTF-8 NFC; control characters removed; tabs expanded; at most one "
             "blank line in a row; reST directives, roles, comments, section adornments and table "
             "rules removed (API signatures and admonition text kept); SWORD OSIS tags and footnotes "
             "removed; dictionary pronunciation codes and source tags removed; prose paragraphs reflowed.")
    L.append(f"- Documents: novel chapters, Bible chapters, dictionary pages (~4 KB of consecutive "
             f"entries), Jargon File groups (~3 KB), one documentation file each; documents over "
             f"{m['max_doc_bytes']:,} bytes are split at paragraph boundaries; documents under "
             f"{m['min_doc_bytes']} bytes and exact duplicates are dropped.")
    L.append(f"- Sources with a budget keep the documents that come first in sha256 order (seed {m['seed']}).")
    L.append(f"- Hold-out per source at document level, in sha256 order: the first {m['valid_frac']:.0%} of "
             f"bytes go to valid, the next {m['test_frac']:.0%} to test, the rest to train; each split is "
             f"then shuffled by sha256 key (seed {m['seed']}).")
    L.append(f"- File format: each document is followed by a line holding only `{m['separator']}`; the "
             f"string never occurs inside a document.")
    L.append("")
    path.write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
