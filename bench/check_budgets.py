#!/usr/bin/env python3
"""Runs a Google Benchmark binary and checks it against a budget file (bench/budgets*).

Usage: check_budgets.py BENCH_BINARY BUDGET_FILE [--part=wall|instructions] [extra benchmark flags]

A budget file holds two kinds of lines ('#' starts a comment):
    NAME MAX_NS            the median real time of NAME per iteration is at most MAX_NS
                           (the median of the ratio run's repetitions when a ratio names it)
    ratio A B MAX          time(A) / time(B) is at most MAX, both measured in this run
    instr-ratio A B MAX    instructions(A) / instructions(B) is at most MAX, each counted by
                           callgrind over one iteration of the benchmark's function
Absolute budgets carry wide slack, since they depend on the machine. Ratios do not: both sides
run in the same process, their repetitions randomly interleaved so that a machine getting
slower or faster in the middle hits both alike, and each side's time is its fastest
repetition (what the code costs when nothing else interferes). A ratio that breaks is measured
once more before it counts, so one burst of noise does not fail CI while a real regression
fails both times.
Wall-clock ratios of work of different sizes also measure the machine's caches: a working set
that outgrows them costs more per item on one machine than on another. Instruction ratios do
not, so they hold the algorithmic promise (cost linear in the work) to a tight limit on any
machine, and the wall-clock ratio beside them catches what only memory traffic shows.
Prints every figure with its limit and exits 1 if any is over or a budgeted benchmark did not
run. --part=wall checks only the wall-clock figures, --part=instructions only the instruction
ratios: the latter do not depend on what else the machine runs, so scripts/test.sh measures
them beside other work, and the wall-clock ones alone.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def load_budgets(path):
    absolute, ratios, instr_ratios = {}, [], []
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "ratio":
                ratios.append((words[1], words[2], float(words[3])))
            elif words[0] == "instr-ratio":
                instr_ratios.append((words[1], words[2], float(words[3])))
            else:
                absolute[words[0]] = float(words[1])
    return absolute, ratios, instr_ratios


def run(binary, flags):
    out = subprocess.run([binary, "--benchmark_format=json"] + flags, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["benchmarks"]


def ns(b):
    return b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]


def name_filter(names):
    return "--benchmark_filter=^(" + "|".join(re.escape(n) for n in names) + ")$"


def without_filter(extra):  # the budget file names the benchmarks; a filter given is dropped
    return [f for f in extra if not f.startswith("--benchmark_filter")]


def measure_medians(binary, names, extra):
    """The median real time per iteration of each of NAMES over 3 repetitions. A repetition
    lasts 0.1 s: a microbenchmark runs a million times in that. One that fits fewer than 10
    iterations in it is measured again with the library's default length, since in a fresh
    process its first iterations cost several times the later ones (BM_PipelinedFanout/M:100:
    185 ms against 52 ms)."""
    flags = without_filter(extra)
    medians, fewest = {}, {}
    def measure(subset, length):
        for b in run(binary, [name_filter(subset), "--benchmark_repetitions=3"] + length + flags):
            if b.get("run_type") == "iteration":
                fewest[b["run_name"]] = min(fewest.get(b["run_name"], b["iterations"]),
                                            b["iterations"])
            elif b.get("aggregate_name") == "median":
                medians[b["run_name"]] = ns(b)
    measure(names, ["--benchmark_min_time=0.1"])
    long_ones = [n for n in names if n in fewest and fewest[n] < 10]
    if long_ones:
        measure(long_ones, [])
    return medians


def measure_ratios(binary, ratios, extra):
    """The ratios, and every repetition's time per iteration of each benchmark measured."""
    names = sorted({n for a, b, _ in ratios for n in (a, b)})
    times = {}
    for b in run(binary, [name_filter(names), "--benchmark_repetitions=12",
                          "--benchmark_min_time=0.1", "--benchmark_enable_random_interleaving=true"]
                 + without_filter(extra)):
        if b.get("run_type") == "iteration":
            times.setdefault(b["run_name"], []).append(ns(b))
    fastest = {n: min(t) for n, t in times.items()}
    return {(a, b): (fastest[a] / fastest[b] if a in fastest and b in fastest else None)
            for a, b, _ in ratios}, times


def start_callgrind(binary, name, workdir):
    """Counts the instructions of one iteration of benchmark NAME (its function, setup included:
    the same for every size, so it only lowers a ratio of sizes a little)."""
    out = os.path.join(workdir, re.sub(r"[^A-Za-z0-9]", "_", name))
    function = name.split("/")[0]
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.cg",
         f"--toggle-collect=*{function}*", binary, f"--benchmark_filter=^{re.escape(name)}$",
         "--benchmark_min_time=0.000001", "--benchmark_format=json", f"--benchmark_out={out}.json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, out


def finish_callgrind(proc, out, name):
    _, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"callgrind run of {name} failed:\n{err}")
    runs = [b for b in json.load(open(out + ".json"))["benchmarks"] if b["run_name"] == name]
    if len(runs) != 1 or runs[0]["iterations"] != 1:
        sys.exit(f"callgrind run of {name}: expected one run of one iteration, got {runs}")
    with open(out + ".cg") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    sys.exit(f"callgrind run of {name}: no totals in {out}.cg")


def measure_instr_ratios(binary, ratios):
    names = sorted({n for a, b, _ in ratios for n in (a, b)})
    with tempfile.TemporaryDirectory() as workdir:
        # One valgrind per benchmark, side by side: each is single-threaded.
        started = {n: start_callgrind(binary, n, workdir) for n in names}
        counts = {n: finish_callgrind(p, out, n) for n, (p, out) in started.items()}
    return counts, {(a, b): counts[a] / counts[b] for a, b, _ in ratios}


def main():
    binary, budget_file, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    part = "all"
    for flag in [f for f in extra if f.startswith("--part=")]:
        part = flag.split("=", 1)[1]
        if part not in ("all", "wall", "instructions"):
            sys.exit(f"--part must be wall or instructions, not {part!r}")
        extra.remove(flag)
    absolute, ratios, instr_ratios = load_budgets(budget_file)
    if part == "instructions":
        absolute, ratios = {}, []
    elif part == "wall":
        instr_ratios = []
    failed = False
    # The ratios first: a budgeted benchmark they measure (12 interleaved repetitions) takes
    # its median from there instead of being run again.
    got, ratio_times = measure_ratios(binary, ratios, extra) if ratios else ({}, {})
    if absolute:
        rest = [n for n in absolute if n not in ratio_times]
        medians = measure_medians(binary, rest, extra) if rest else {}
        medians.update({n: statistics.median(ratio_times[n]) for n in absolute
                        if n in ratio_times})
        print(f"{'benchmark':62} {'median ns':>12} {'budget ns':>12}  ratio")
        for name, budget in absolute.items():
            median = medians.get(name)
            if median is None:
                print(f"{name:62} {'missing':>12} {budget:12.0f}  FAIL")
                failed = True
                continue
            verdict = "ok" if median <= budget else "FAIL"
            failed |= median > budget
            print(f"{name:62} {median:12.0f} {budget:12.0f}  {median / budget:5.2f} {verdict}")
    if ratios:
        over = [(a, b) for a, b, limit in ratios if got[(a, b)] is None or got[(a, b)] > limit]
        if over:
            print("ratio over its limit, measuring again: " + ", ".join(f"{a}/{b}" for a, b in over))
            again, _ = measure_ratios(binary, [r for r in ratios if (r[0], r[1]) in over], extra)
            got.update(again)
        print(f"{'same-run ratio':62} {'measured':>12} {'limit':>12}")
        for a, b, limit in ratios:
            r = got[(a, b)]
            if r is None:
                print(f"{a + ' / ' + b:62} {'missing':>12} {limit:12.3f}  FAIL")
                failed = True
                continue
            failed |= r > limit
            print(f"{a + ' / ' + b:62} {r:12.3f} {limit:12.3f}  {'ok' if r <= limit else 'FAIL'}")
    if instr_ratios:
        counts, got = measure_instr_ratios(binary, instr_ratios)
        print(f"{'instruction ratio (callgrind, one iteration each)':62} {'measured':>12} "
              f"{'limit':>12}")
        for a, b, limit in instr_ratios:
            r = got[(a, b)]
            failed |= r > limit
            print(f"{a + ' / ' + b:62} {r:12.3f} {limit:12.3f}  {'ok' if r <= limit else 'FAIL'}"
                  f"  ({counts[a]:,} / {counts[b]:,} instructions)")
    print("budgets: " + ("FAILED" if failed else "all within bounds"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
