#!/usr/bin/env python3
"""Runs a Google Benchmark binary and checks each median against bench/budgets.

Usage: check_budgets.py BENCH_BINARY BUDGET_FILE [extra benchmark flags]
Prints measured vs budget for every line and exits 1 if any median exceeds its budget or a
budgeted benchmark did not run.
"""
import json
import subprocess
import sys


def load_budgets(path):
    budgets = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, ns = line.split()
                budgets[name] = float(ns)
    return budgets


def main():
    binary, budget_file = sys.argv[1], sys.argv[2]
    budgets = load_budgets(budget_file)
    out = subprocess.run(
        [binary, "--benchmark_format=json", "--benchmark_repetitions=3",
         "--benchmark_report_aggregates_only=true"] + sys.argv[3:],
        check=True, capture_output=True, text=True).stdout
    medians = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
            medians[b["run_name"]] = b["real_time"] * scale
    failed = False
    print(f"{'benchmark':34} {'median ns':>12} {'budget ns':>12}  ratio")
    for name, budget in budgets.items():
        got = medians.get(name)
        if got is None:
            print(f"{name:34} {'missing':>12} {budget:12.0f}  FAIL")
            failed = True
            continue
        verdict = "ok" if got <= budget else "FAIL"
        failed |= got > budget
        print(f"{name:34} {got:12.0f} {budget:12.0f}  {got / budget:5.2f} {verdict}")
    print("budgets: " + ("FAILED" if failed else "all within bounds"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
