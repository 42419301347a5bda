#!/usr/bin/env bash
# Plants "reply before the commit's sync returns" in a scratch copy of the tree and shows that
# the power-loss checker catches it; the source tree is never touched.
#
# The defect: the store is configured with synchronous = "full" but commits as "normal" does,
# returning before the WAL is synced, so the core answers and delivers changes a power loss
# can still take. sim/scenarios/power_loss.toml (synchronous = "full", power lost mid-commit)
# must fail with durability.power_loss_full and print the seed's replay command, within
# 200 seeds; with today's build/bin/warren-sim the same seeds must pass.
#
#   bash tests/plant_reply_before_sync.sh [--seeds N]
#
# Several minutes: a release build of the core, store and simulator in the scratch copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seeds=200
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds="$2"; shift ;;
        *) echo "usage: $0 [--seeds N]" >&2; exit 2 ;;
    esac
    shift
done
scenario=sim/scenarios/power_loss.toml

# shellcheck source=tests/scratch_tree.sh
source "$root/tests/scratch_tree.sh"
scratch_tree "$root" plant

python3 - "$scratch" <<'PY'
import sys
root = sys.argv[1]
path = f"{root}/store/store.cc"
s = open(path).read()
old = '"PRAGMA synchronous=FULL"'
if old not in s:
    sys.exit("plant: store/store.cc no longer sets PRAGMA synchronous=FULL; update the script")
open(path, "w").write(s.replace(old, '"PRAGMA synchronous=NORMAL"', 1))
PY
echo "plant: applied in $scratch (store/store.cc: \"full\" commits without syncing the WAL)"

scratch_build_sim -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"

echo "plant: running $scenario with the defect ($seeds seeds)"
set +e
(cd "$root" && "$scratch/build/bin/warren-sim" run "$scenario" --seeds "$seeds" --jobs 2) \
    > "$scratch/planted.log" 2>&1
planted=$?
set -e
failed=$(grep -cE '^seed [0-9]+: FAIL' "$scratch/planted.log" || true)
first=$(grep -m1 -E '^seed [0-9]+: FAIL' "$scratch/planted.log" || true)
grep -m3 'safety durability.power_loss_full' "$scratch/planted.log" || true
grep -m1 'replay:' "$scratch/planted.log" || true
tail -1 "$scratch/planted.log"
echo "plant: exit $planted with the defect: $failed of $seeds seeds failed, the first: $first"
status=0
if [ "$planted" = 0 ] || ! grep -q 'durability.power_loss_full' "$scratch/planted.log"; then
    echo "plant: FAIL: durability.power_loss_full did not catch the defect" >&2
    status=1
fi
if ! grep -q 'warren-sim run .*--seed [0-9]' "$scratch/planted.log"; then
    echo "plant: FAIL: no replay command was printed" >&2
    status=1
fi
todays_build_passes "$root" "$scenario" "$seeds" plant || status=1
exit "$status"
