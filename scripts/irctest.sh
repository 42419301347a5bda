#!/usr/bin/env bash
# Runs the public irctest suite (progval/irctest) against warrend's IRC listener, with the
# controller and conftest in tests/irctest/ (docs/IRC.md, "Conformance"). Not part of CI: it
# needs a checkout of irctest, which the project does not ship.
#
#   scripts/irctest.sh [IRCTEST_DIR] [-- extra pytest arguments]
#
# IRCTEST_DIR: a checkout of irctest (default: cloned from GitHub into $WORK/irctest).
# WARREND: the binary (default build-Release/bin/warrend). WORK: scratch (default
# /tmp/warren-irctest). The profile is irctest's usual one; results go to
# $WORK/irctest.xml (JUnit) and a summary line on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/warren-irctest}
IRCTEST=${1:-$WORK/irctest}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
export WARREND=${WARREND:-$ROOT/build-Release/bin/warrend}
[ -x "$WARREND" ] || { echo "no warrend at $WARREND" >&2; exit 2; }
mkdir -p "$WORK"
if [ ! -d "$IRCTEST/irctest" ]; then
  git clone -q https://github.com/progval/irctest "$IRCTEST"
fi
# Debian 12's pytest (7.2) and pluggy (1.0): install them if missing, and put our conftest in place.
if ! /usr/bin/python3 -c "import pytest" 2>/dev/null; then
  apt-get install -y python3-pytest >/dev/null
fi
cp "$ROOT/tests/irctest/conftest.py" "$IRCTEST/conftest.py"
cd "$IRCTEST"
# irctest's usual profile, services included (accounts are registered by the controller).
PROFILE="not implementation-specific and not deprecated and not strict"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(irctest/server_tests)
PYTHONPATH="$ROOT/tests/irctest:$IRCTEST" timeout 3600 /usr/bin/python3 -m pytest \
  -p no:cacheprovider --controller warren_irctest -m "$PROFILE" -q -rfE \
  --junitxml "$WORK/irctest.xml" "${targets[@]}" > "$WORK/irctest.log" 2>&1 || true
tail -n 1 "$WORK/irctest.log"
