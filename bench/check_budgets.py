#!/usr/bin/env python3
"""Runs a Google Benchmark binary and checks it against a budget file (bench/budgets*).

Usage: check_budgets.py BENCH_BINARY BUDGET_FILE [extra benchmark flags]

A budget file holds two kinds of lines ('#' starts a comment):
    NAME MAX_NS            the median real time of NAME per iteration is at most MAX_NS
    ratio A B MAX          time(A) / time(B) is at most MAX, both measured in this run
Absolute budgets carry wide slack, since they depend on the machine. Ratios do not: both sides
run in the same process, their repetitions randomly interleaved so that a machine getting
slower or faster in the middle hits both alike, and each side's time is its fastest
repetition (what the code costs when nothing else interferes). A ratio that breaks is measured
once more before it counts, so one burst of noise does not fail CI while a real regression
fails both times.
Prints every figure with its limit and exits 1 if any is over or a budgeted benchmark did not
run.
"""
import json
import re
import subprocess
import sys


def load_budgets(path):
    absolute, ratios = {}, []
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "ratio":
                ratios.append((words[1], words[2], float(words[3])))
            else:
                absolute[words[0]] = float(words[1])
    return absolute, ratios


def run(binary, flags):
    out = subprocess.run([binary, "--benchmark_format=json"] + flags, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["benchmarks"]


def ns(b):
    return b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]


def measure_ratios(binary, ratios, extra):
    names = sorted({n for a, b, _ in ratios for n in (a, b)})
    pattern = "^(" + "|".join(re.escape(n) for n in names) + ")$"
    fastest = {}
    for b in run(binary, [f"--benchmark_filter={pattern}", "--benchmark_repetitions=12",
                          "--benchmark_min_time=0.1", "--benchmark_enable_random_interleaving=true"]
                 + [f for f in extra if not f.startswith("--benchmark_filter")]):
        if b.get("run_type") == "iteration":
            fastest[b["run_name"]] = min(fastest.get(b["run_name"], float("inf")), ns(b))
    return {(a, b): (fastest[a] / fastest[b] if a in fastest and b in fastest else None)
            for a, b, _ in ratios}


def main():
    binary, budget_file, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    absolute, ratios = load_budgets(budget_file)
    failed = False
    if absolute:
        medians = {}
        for b in run(binary, ["--benchmark_repetitions=3",
                              "--benchmark_report_aggregates_only=true"] + extra):
            if b.get("aggregate_name") == "median":
                medians[b["run_name"]] = ns(b)
        print(f"{'benchmark':62} {'median ns':>12} {'budget ns':>12}  ratio")
        for name, budget in absolute.items():
            got = medians.get(name)
            if got is None:
                print(f"{name:62} {'missing':>12} {budget:12.0f}  FAIL")
                failed = True
                continue
            verdict = "ok" if got <= budget else "FAIL"
            failed |= got > budget
            print(f"{name:62} {got:12.0f} {budget:12.0f}  {got / budget:5.2f} {verdict}")
    if ratios:
        got = measure_ratios(binary, ratios, extra)
        over = [(a, b) for a, b, limit in ratios if got[(a, b)] is None or got[(a, b)] > limit]
        if over:
            print("ratio over its limit, measuring again: " + ", ".join(f"{a}/{b}" for a, b in over))
            again = measure_ratios(binary, [r for r in ratios if (r[0], r[1]) in over], extra)
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
    print("budgets: " + ("FAILED" if failed else "all within bounds"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
