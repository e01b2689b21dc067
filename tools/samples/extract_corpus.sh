#!/usr/bin/env bash
# Build the training corpus for attnscope's bundled sample models (issue #3).
#
#   tools/samples/extract_corpus.sh [OUTDIR]        (default OUTDIR: <repo>/build-corpus)
#
# Downloads a fixed set of Debian 12 packages with `apt-get download` (no
# installation), unpacks them with `dpkg-deb -x` under OUTDIR/pkgs, and runs
# tools/samples/corpus_extract.py (Python 3 standard library only) to write
#   OUTDIR/train.txt valid.txt test.txt       the corpus (documents end with a
#                                             line holding only <|endoftext|>)
#   OUTDIR/carry/{train,valid,test}.txt.gz    the same, gzip -n, for the GPU box
#   OUTDIR/manifest.json                      per-document split assignment
#   samples/corpus/SOURCES.md                 packages, licenses, sizes, sha256
#
# Idempotent and non-interactive: .deb files already in OUTDIR/debs are reused,
# unpacked trees and outputs are rebuilt from scratch every run.  Versions are
# pinned to the ones the committed SOURCES.md was made from; when the Debian
# mirror no longer has a pinned version the current candidate is used instead,
# with a loud warning (the output hashes then differ from SOURCES.md).
#
# Environment:
#   CORPUS_DEB_DIR=DIR   take .deb files from DIR instead of downloading
#   CORPUS_UNPINNED=1    accept any version (a cached .deb, else the current candidate)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/build-corpus}" && cd "${1:-$REPO/build-corpus}" && pwd)
DEBS=$OUT/debs
PKGS=$OUT/pkgs
mkdir -p "$DEBS"

# package=version (Debian 12 "bookworm", as of the committed SOURCES.md)
PINNED=(
  "r-cran-janeaustenr=1.0.0-1"
  "sword-text-kjv=14.3-1"
  "sword-text-web=426.0-1"
  "dict-gcide=0.48.5+nmu2"
  "jargon-text=4.4.7-4.1"
  "linux-doc-6.1=6.1.192-2"
  "python3.11-doc=3.11.2-6+deb12u9"
)

log() { printf '[extract_corpus] %s\n' "$*" >&2; }

deb_field() { dpkg-deb -f "$1" "$2"; }

# find a .deb of PACKAGE in DIR, optionally of VERSION; prints its path
find_deb() {
  local dir=$1 pkg=$2 ver=${3:-} f
  shopt -s nullglob
  for f in "$dir"/"${pkg}"_*.deb; do
    [ "$(deb_field "$f" Package)" = "$pkg" ] || continue
    if [ -z "$ver" ] || [ "$(deb_field "$f" Version)" = "$ver" ]; then
      printf '%s\n' "$f"
      shopt -u nullglob
      return 0
    fi
  done
  shopt -u nullglob
  return 1
}

APT_UPDATED=0
apt_download() {  # apt_download SPEC  (run inside $DEBS)
  local spec=$1
  if apt-get -qq -o APT::Sandbox::User=root download "$spec" >/dev/null 2>&1; then
    return 0
  fi
  if [ "$APT_UPDATED" = 0 ] && [ "$(id -u)" = 0 ]; then
    log "apt-get download $spec failed; running apt-get update once"
    apt-get -qq update >/dev/null 2>&1 || true
    APT_UPDATED=1
    apt-get -qq -o APT::Sandbox::User=root download "$spec" >/dev/null 2>&1 && return 0
  fi
  return 1
}

command -v dpkg-deb >/dev/null || { log "dpkg-deb not found (this script needs Debian tools)"; exit 1; }
command -v python3 >/dev/null || { log "python3 not found"; exit 1; }

INFO=$OUT/deb-info.tsv
: > "$INFO.tmp"
for spec in "${PINNED[@]}"; do
  pkg=${spec%%=*}
  ver=${spec#*=}
  [ "${CORPUS_UNPINNED:-0}" = 1 ] && ver=""
  deb=""
  if [ -n "${CORPUS_DEB_DIR:-}" ]; then
    deb=$(find_deb "$CORPUS_DEB_DIR" "$pkg" "$ver" || find_deb "$CORPUS_DEB_DIR" "$pkg" || true)
    [ -n "$deb" ] || { log "no .deb for $pkg in $CORPUS_DEB_DIR"; exit 1; }
    cp -f "$deb" "$DEBS/"
    deb=$DEBS/$(basename "$deb")
  fi
  if [ -z "$deb" ]; then
    deb=$(find_deb "$DEBS" "$pkg" "$ver" || true)
  fi
  if [ -z "$deb" ]; then
    command -v apt-get >/dev/null || { log "apt-get not found and $pkg not in $DEBS"; exit 1; }
    if [ -n "$ver" ]; then
      log "downloading $pkg=$ver"
      if ! (cd "$DEBS" && apt_download "$pkg=$ver"); then
        log "WARNING: $pkg=$ver is not available any more; using the current candidate."
        log "WARNING: the corpus will differ from the committed samples/corpus/SOURCES.md."
        (cd "$DEBS" && apt_download "$pkg") || { log "cannot download $pkg"; exit 1; }
      fi
    else
      log "downloading $pkg (unpinned)"
      (cd "$DEBS" && apt_download "$pkg") || { log "cannot download $pkg"; exit 1; }
    fi
    deb=$(find_deb "$DEBS" "$pkg" "$ver" || find_deb "$DEBS" "$pkg" || true)
    [ -n "$deb" ] || { log "download of $pkg left no .deb in $DEBS"; exit 1; }
  fi
  got=$(deb_field "$deb" Version)
  [ -z "$ver" ] || [ "$got" = "$ver" ] || log "WARNING: $pkg: using version $got instead of pinned $ver"
  rm -rf "$PKGS/$pkg"
  mkdir -p "$PKGS/$pkg"
  dpkg-deb -x "$deb" "$PKGS/$pkg"
  printf '%s\t%s\t%s\n' "$pkg" "$got" "$(basename "$deb")" >> "$INFO.tmp"
  log "unpacked $pkg $got"
done
mv -f "$INFO.tmp" "$INFO"

mkdir -p "$REPO/samples/corpus"
python3 "$REPO/tools/samples/corpus_extract.py" \
  --pkgs "$PKGS" --debs "$DEBS" --out "$OUT" --deb-info "$INFO" \
  --sources-md "$REPO/samples/corpus/SOURCES.md"

log "done: $(du -sh "$OUT/train.txt" | cut -f1) train, $(du -sh "$OUT/carry" | cut -f1) gzip copies in $OUT/carry"
