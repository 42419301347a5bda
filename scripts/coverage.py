#!/usr/bin/env python3
"""Per-folder line and branch coverage of a test run, from a tree built with WARREN_COVERAGE=ON.

    scripts/coverage.py BUILD_DIR [--min-core PERCENT] [--html DIR]

Runs gcovr (Debian's) over the .gcda files that running the suite left in BUILD_DIR, counting
Warren's own sources only (not tests/, bench/, fuzz/ or generated files), and prints one line
per top-level folder: lines covered, lines, percent, and the same for branches (throw and
unreachable branches excluded, since no test can take a compiler's exception edges). Fails
(exit 1) when core/ is under --min-core percent of lines (default 90). --html also writes a
browsable report per file.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--min-core", type=float, default=90.0)
    ap.add_argument("--html")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = os.path.abspath(args.build_dir)
    with tempfile.TemporaryDirectory() as tmp:
        summary = os.path.join(tmp, "summary.json")
        skip = [os.path.join(root, d) + "/" for d in ("tests", "bench", "fuzz")] + [build + "/"]
        cmd = ["gcovr", "-r", root, build, "-j", str(os.cpu_count() or 1),
               "--exclude-throw-branches", "--exclude-unreachable-branches",
               "--json-summary", summary,
               # gcov runs in the build directory first: the objects name their sources
               # relative to it (CCACHE_BASEDIR); otherwise gcovr runs it up to five times
               # per object until the sources resolve.
               "--object-directory", build]
        for path in skip:
            cmd += ["-e", re.escape(path)]
        if args.html:
            os.makedirs(args.html, exist_ok=True)
            cmd += ["--html-details", os.path.join(args.html, "index.html")]
        subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL)
        with open(summary) as f:
            files = json.load(f)["files"]
    if not files:
        sys.exit(f"no coverage data under {args.build_dir}: build it with -DWARREN_COVERAGE=ON "
                 "and run the tests first")
    per = collections.defaultdict(lambda: [0, 0, 0, 0])
    for f in files:
        row = per[f["filename"].split("/")[0] + "/"]
        row[0] += f["line_covered"]
        row[1] += f["line_total"]
        row[2] += f["branch_covered"]
        row[3] += f["branch_total"]
    pct = lambda a, b: 100.0 * a / b if b else 100.0
    print(f"coverage {'folder':<12} {'lines':>13} {'%':>6}   {'branches':>13} {'%':>6}")
    for folder, (lc, lt, bc, bt) in sorted(per.items()):
        print(f"coverage {folder:<12} {lc:>6}/{lt:<6} {pct(lc, lt):5.1f}%   "
              f"{bc:>6}/{bt:<6} {pct(bc, bt):5.1f}%")
    core = per.get("core/", [0, 0, 0, 0])
    if pct(core[0], core[1]) < args.min_core:
        print(f"core/ line coverage {pct(core[0], core[1]):.1f}% is under {args.min_core}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
