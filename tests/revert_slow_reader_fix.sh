#!/usr/bin/env bash
# Puts the audit's slow-reader defect back into a scratch copy of the tree and shows that
# sim/scenarios/slow_reader_presence.toml catches it; the source tree is never touched.
#
# The defect (fixed in 0ed4f4e, tested since 8b82dd6 by Lifecycle.*Presence* in
# tests/core_test.cc): the server walked its list of closed connections while forgetting each
# one, and forgetting one announces its user offline, whose PRESENCE may close a slow reader,
# which appends to the very list being walked: freed memory is read, and the reader closed
# then is never forgotten. Today Server::forget_closed takes the list before walking it and
# goes on until no closed connection is left.
#
#   bash tests/revert_slow_reader_fix.sh [--release] [--seeds N]
#
# Builds warren-sim from the scratch copy (under ASan + UBSan unless --release), runs the
# scenario file with it (it must fail: a sanitizer abort or a named checker, with the seed's
# replay command), then with the tree's own build/bin/warren-sim if there is one (it must
# pass). Exit 0 when both hold. Several minutes: a build of the core, store and simulator.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
release=0
seeds=10
while [ $# -gt 0 ]; do
    case "$1" in
        --release) release=1 ;;
        --seeds) seeds="$2"; shift ;;
        *) echo "usage: $0 [--release] [--seeds N]" >&2; exit 2 ;;
    esac
    shift
done
scenario=sim/scenarios/slow_reader_presence.toml

# shellcheck source=tests/scratch_tree.sh
source "$root/tests/scratch_tree.sh"
scratch_tree "$root" revert

# The revert: walk the live list, clear it afterwards (what the code did before the fix).
python3 - "$scratch" <<'EOF'
import sys
root = sys.argv[1]
def patch(path, old, new):
    p = f"{root}/{path}"
    s = open(p).read()
    if old not in s:
        sys.exit(f"revert: {path} no longer has the code this script reverts; update the script")
    open(p, "w").write(s.replace(old, new, 1))
patch("core/conn/connections.h",
      "    bool any_closed() const { return !closed_.empty(); }",
      "    bool any_closed() const { return !closed_.empty(); }\n"
      "    std::vector<ConnId>& closed_list() { return closed_; }")
patch("core/server.cc",
      "    for (std::vector<ConnId> ids = conns_.take_closed(); !ids.empty(); ids = conns_.take_closed()) {\n"
      "        for (ConnId id : ids) {",
      "    std::vector<ConnId>& ids = conns_.closed_list();\n"
      "    {\n"
      "        for (ConnId id : ids) {")
patch("core/server.cc",
      "            for (auto& a : out.events) emit(std::move(a));\n        }\n    }\n}",
      "            for (auto& a : out.events) emit(std::move(a));\n        }\n    }\n    ids.clear();\n}")
EOF
echo "revert: applied in $scratch (core/server.cc forget_closed walks the live list)"

flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
[ "$release" = 1 ] ||
    flags=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" -DWARREN_SANITIZE=address,undefined)
scratch_build_sim "${flags[@]}"

echo "revert: running $scenario with the defect ($seeds seeds)"
set +e
(cd "$root" && "$scratch/build/bin/warren-sim" run "$scenario" --seeds "$seeds" --jobs 2) \
    > "$scratch/reverted.log" 2>&1
reverted=$?
set -e
grep -vE '^seed [0-9]+: (start|ok)' "$scratch/reverted.log" | head -40
echo "revert: exit $reverted with the defect"
status=0
if [ "$reverted" = 0 ]; then
    echo "revert: FAIL: the scenario passed with the defect back in" >&2
    status=1
fi
todays_build_passes "$root" "$scenario" "$seeds" revert || status=1
exit "$status"
