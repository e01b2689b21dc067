#!/usr/bin/env bash
# Installs every build and run dependency of attnscope from Debian 12 packages.
# Idempotent and non-interactive: safe to run again; installs only what is missing.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git python3
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 (CPU) + a fast BLAS for it
  libhdf5-dev hdf5-tools                      # capture store (C API), h5dump for tests
  libboost-program-options-dev                # CLI option parsing
  catch2 nlohmann-json3-dev                   # tests, JSON (config.json, tokenizer.json)
  libicu-dev                                  # Unicode regex/categories/NFC for tokenizers
  qt6-base-dev qt6-svg-dev xvfb               # viewer and plots (optional parts)
  fonts-dejavu-core                           # the font plots and screenshots are drawn with
  clang libclang-rt-14-dev                    # libFuzzer + ASan/UBSan (tools/fuzz.sh, sanitize.sh)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
