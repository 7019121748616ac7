#!/usr/bin/env bash
# One entry point for a fresh machine (Debian 12, Python 3.11, Rust installed).
#   bash scripts/dev.sh demo   set everything up, then transcribe the bundled sample
#   bash scripts/dev.sh test   set everything up, then lint and run every test (cargo + pytest)
#   bash scripts/dev.sh setup  only the set-up
# Set SKIP_APT=1 to skip system packages, SLOW=1 to include the long test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python

APT_PACKAGES=(espeak-ng sox libsox-fmt-all ffmpeg libsndfile1 zlib1g-dev pkg-config postgresql chromium)

log() { printf '\n==> %s\n' "$*"; }

setup_system() {
  [ "${SKIP_APT:-0}" = 1 ] && return 0
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing system packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

setup_python() {
  if [ ! -x "$PY" ]; then
    log "creating virtual environment $VENV"
    python3 -m venv "$VENV"
  fi
  "$PY" -m pip install -q --upgrade pip
  log "building the native core and installing the package (release build)"
  "$PY" -m pip install -q "maturin>=1.7,<2"
  VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH "$VENV/bin/maturin" develop --release --extras test -q
}

setup() {
  setup_system
  setup_python
}

run_tests() {
  log "cargo fmt --check / clippy -D warnings / cargo test"
  cargo fmt --all -- --check
  cargo clippy --all-targets -q -- -D warnings
  cargo clippy --all-targets --features python -q -- -D warnings
  cargo test -q
  log "ruff / mypy"
  "$VENV/bin/ruff" check python tests bench
  "$VENV/bin/ruff" format --check python tests bench
  "$VENV/bin/mypy" python/whisper_cascade
  "$PY" -m mypy.stubtest whisper_cascade._native --allowlist tests/stubtest/allowlist.txt
  log "pytest with coverage"
  local extra=()
  [ "${SLOW:-0}" = 1 ] && extra+=(--run-slow)
  "$PY" -m pytest -q --cov=whisper_cascade --cov-report=term-missing:skip-covered \
    --cov-fail-under=90 "${extra[@]}" "$@"
}

cmd=${1:-test}
shift || true
case "$cmd" in
  setup) setup ;;
  test) setup; run_tests "$@" ;;
  demo) setup; "$VENV/bin/whisper-cascade" demo "$@" ;;
  *) echo "usage: bash scripts/dev.sh [setup|test|demo]" >&2; exit 2 ;;
esac
