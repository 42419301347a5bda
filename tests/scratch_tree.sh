# Sourced by the scripts that put a defect into a scratch copy of the tree and show which test
# catches it (tests/revert_slow_reader_fix.sh, tests/plant_reply_before_sync.sh); the source
# tree is never touched.
#
#   scratch_tree ROOT NAME    sets $scratch to a new folder holding the working tree as it is
#                             (new files too, without build trees or ignored files), removed
#                             when the script exits
#   scratch_build_sim FLAGS…  configures $scratch/build with FLAGS and builds warren-sim there
#                             (ccache keyed to the scratch folder); on failure prints the end of
#                             the build log and exits 2
#   todays_build_passes ROOT SCENARIO SEEDS NAME
#                             runs the scenario with the tree's own build/bin/warren-sim, if
#                             there is one: false if it fails there

scratch_tree() {
    local root=$1 name=$2
    scratch=$(mktemp -d "/tmp/warren-$name.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        xargs -0 cp --parents -t "$scratch")
}

scratch_build_sim() {
    export CCACHE_BASEDIR="$scratch" CCACHE_NOHASHDIR=1
    if ! { cmake -S "$scratch" -B "$scratch/build" -G Ninja "$@" -DWARREN_BUILD_BENCH=OFF &&
            cmake --build "$scratch/build" -j "$(nproc)" --target warren-sim; } > "$scratch/build.log" 2>&1; then
        tail -30 "$scratch/build.log"
        echo "the scratch build failed" >&2
        exit 2
    fi
}

todays_build_passes() {
    local root=$1 scenario=$2 seeds=$3 name=$4 today
    [ -x "$root/build/bin/warren-sim" ] || return 0
    set +e
    (cd "$root" && build/bin/warren-sim run "$scenario" --seeds "$seeds" --jobs 2) \
        > "$scratch/today.log" 2>&1
    today=$?
    set -e
    tail -1 "$scratch/today.log"
    echo "$name: exit $today with today's code (build/bin/warren-sim)"
    if [ "$today" != 0 ]; then
        echo "$name: FAIL: the scenario fails with today's code" >&2
        return 1
    fi
}
