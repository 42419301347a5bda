#!/usr/bin/env python3
"""Instruction-count budgets per layer and per request kind, under callgrind.

Runs warren-bench-instr (bench/instr_workload.cc) under valgrind's callgrind, counting only
the measured phase, and splits the instructions among the core's layers by the source file of
each function that ran:

  framing+decoding   core/protocol/framer*, core/protocol/request*
  validation         core/validate/
  security           core/security/
  chat               core/chat/
  transactions       core/txn/
  monitoring         core/monitor/
  encoding+fan-out   core/protocol/json_codec*, json_writer*, core/conn/
  facade             core/server*, core/admin/, core/ops/, core/*.h
  store              store/ and libsqlite3 (reported per commit and per query)
  harness            bench/, sim/ (the workload's own clients; not part of the server)

Code without a layer of its own (the C++ library, libc, malloc, simdjson) is charged to the
layer that called it: a call's inclusive cost goes to the caller's layer, less the share of it
spent back in owned code (std::function and std::visit call into layers). So the layers add up
to the measured total.

Then it compares each layer's instructions per request, and each request kind's core
instructions per request, with the checked-in baseline (bench/instr-baseline.json): a figure
more than its tolerance (3 % unless the baseline says otherwise) above the baseline fails,
naming the layer. The table also converts the specification's time budgets into instructions
at the instructions per nanosecond this machine ran the same workload at natively.

  instr_budget.py BUILD_BIN_DIR BASELINE                 check (exit 1 on a regression)
  instr_budget.py BUILD_BIN_DIR BASELINE --update --reason "why"   write a new baseline
  instr_budget.py BUILD_BIN_DIR BASELINE --binary warren-bench-instr-slow --expect-fail validation
      the self-test: the slowed variant must fail, and on exactly that layer
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

LAYERS = ["framing+decoding", "validation", "security", "chat", "transactions", "monitoring",
          "encoding+fan-out", "facade"]
CORE = set(LAYERS)

# The budgets the system was specified with, per request (ns).
BUDGET_NS = {
    "validation": 500_000,
    "security": 2_000_000,
    "transactions": 5_000_000,
    "monitoring": 1_000_000,
    "core total": 8_600_000,
}
ERROR_BUDGET_NS = 100_000  # error handling, per refused request
REFUSALS = ["refused_unauthenticated", "refused_bad_request", "refused_rate_limited",
            "refused_not_found"]


def layer_of(path, obj):
    p = path or ""
    if "libsqlite3" in (obj or "") or p.endswith("sqlite3.c"):
        return "store"
    m = re.search(r"(?:^|/)(core|store|bench|sim)/(.*)$", p)
    if not m or p.startswith("/usr/"):
        return None
    top, rest = m.group(1), m.group(2)
    if top == "store":
        return "store"
    if top in ("bench", "sim"):
        return "harness"
    if rest.startswith("protocol/framer") or rest.startswith("protocol/request"):
        return "framing+decoding"
    if rest.startswith("protocol/") or rest.startswith("conn/"):
        return "encoding+fan-out"
    for folder, layer in (("validate/", "validation"), ("security/", "security"),
                          ("chat/", "chat"), ("txn/", "transactions"),
                          ("monitor/", "monitoring")):
        if rest.startswith(folder):
            return layer
    return "facade"


def parse(path):
    """Returns (functions, total): functions maps key -> dict(self, calls, layer)."""
    names = {"fl": {}, "fn": {}, "ob": {}}
    kind_of = {"fl": "fl", "fi": "fl", "fe": "fl", "cfl": "fl", "cfi": "fl", "ob": "ob",
               "cob": "ob", "fn": "fn", "cfn": "fn"}

    def name(key, value):
        table = names[kind_of[key]]
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not m:
            return value
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), "?")

    funcs = {}
    defined = set()
    total = 0
    cur_fl = cur_ob = None
    cur = None
    callee = None
    callee_fl = callee_ob = None
    pending_call = False
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line or line[0] == "#":
                continue
            if line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split(":", 1)[1].split()[0]))
                continue
            if "=" in line and not line[0].isdigit() and line[0] not in "+-*":
                key, _, value = line.partition("=")
                if key in kind_of:
                    v = name(key, value)
                    if key == "fl":
                        cur_fl = v
                    elif key == "ob":
                        cur_ob = v
                    elif key == "fn":
                        cur = (v, cur_fl)
                        funcs.setdefault(cur, {"self": 0, "calls": {}, "file": cur_fl,
                                               "obj": cur_ob})
                        defined.add(cur)
                        callee_fl, callee_ob = cur_fl, cur_ob
                    elif key in ("cfl", "cfi"):
                        callee_fl = v
                    elif key == "cob":
                        callee_ob = v
                    elif key == "cfn":
                        callee = (v, callee_fl)
                elif key == "calls":
                    pending_call = True
                continue
            parts = line.split()
            if len(parts) < 2 or cur is None:
                if pending_call:
                    pending_call = False
                continue
            cost = int(parts[1])
            if pending_call:
                calls = funcs[cur]["calls"]
                calls[callee] = calls.get(callee, 0) + cost
                funcs.setdefault(callee, {"self": 0, "calls": {}, "file": callee[1],
                                          "obj": callee_ob})
                pending_call = False
                callee_fl, callee_ob = cur_fl, cur_ob
            else:
                funcs[cur]["self"] += cost
    # A call names its target by name and file; when the file it gives is not the one the
    # target's own block has, find the target by name.
    by_name = {}
    for key in defined:
        by_name.setdefault(key[0], []).append(key)
    for f in funcs.values():
        fixed = {}
        for callee, cost in f["calls"].items():
            if callee not in defined and len(by_name.get(callee[0], [])) == 1:
                callee = by_name[callee[0]][0]
            fixed[callee] = fixed.get(callee, 0) + cost
        f["calls"] = fixed
    return funcs, total


def attribute(funcs):
    """Instructions per layer (None: code no layer owns that nothing owned called)."""
    for key, f in funcs.items():
        f["layer"] = layer_of(f["file"], f["obj"])
    incl = {k: f["self"] + sum(f["calls"].values()) for k, f in funcs.items()}
    memo = {}

    def unowned_share(key, depth=0):
        # Of one instruction of `key`'s inclusive cost, the share spent outside owned code.
        if key in memo:
            return memo[key]
        f = funcs.get(key)
        if f is None or incl.get(key, 0) == 0:
            return 1.0
        if f["layer"] is not None:
            return 0.0
        if depth > 200:
            return 1.0
        memo[key] = 1.0  # a cycle counts as unowned
        spent = f["self"]
        for callee, cost in f["calls"].items():
            spent += cost * unowned_share(callee, depth + 1)
        memo[key] = min(1.0, spent / incl[key])
        return memo[key]

    layers = {}
    for key, f in funcs.items():
        layer = f["layer"]
        if layer is None:
            continue
        cost = f["self"]
        for callee, c in f["calls"].items():
            if funcs.get(callee, {}).get("layer") is None:
                cost += c * unowned_share(callee)
        layers[layer] = layers.get(layer, 0) + cost
    return layers


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def callgrind(binary, args, workdir, per_call=False):
    out = os.path.join(workdir, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no",
           "--toggle-collect=warren_measured_workload", "--callgrind-out-file=" + out]
    if per_call:
        cmd.append("--dump-after=warren_measured_workload")
    r = run(cmd + [binary] + args)
    info = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    if per_call:
        parts = sorted((p for p in os.listdir(workdir) if p.startswith("callgrind.out.")),
                       key=lambda p: int(p.rsplit(".", 1)[1]))
        return info, [os.path.join(workdir, p) for p in parts]
    return info, [out]


def measure(bin_dir, binary, requests, kind_requests):
    path = os.path.join(bin_dir, binary)
    with tempfile.TemporaryDirectory() as work:
        info, files = callgrind(path, ["--requests", str(requests)], work)
        funcs, total = parse(files[0])
        layers = attribute(funcs)
        mix = info[0]
    n = mix["requests"]
    result = {"requests": n, "total_per_request": total / n,
              "layers": {l: layers.get(l, 0) / n for l in LAYERS}}
    result["layers"]["core total"] = sum(layers.get(l, 0) for l in LAYERS) / n
    result["store"] = {"per_commit": layers.get("store", 0) / max(1, mix["commits"]),
                       "per_query": None}
    result["harness_per_request"] = layers.get("harness", 0) / n
    result["attributed_share"] = sum(layers.values()) / total if total else 0
    # Native speed of the same workload, for the conversion of time budgets.
    best = min(json.loads(run([path, "--requests", str(requests)]).stdout)["elapsed_ns"]
               for _ in range(3))
    result["instructions_per_ns"] = total / best
    memory_bin = os.path.join(bin_dir, "warren-bench-memory")
    if os.path.exists(memory_bin):
        result["memory"] = json.loads(run([memory_bin]).stdout)
    if kind_requests:
        with tempfile.TemporaryDirectory() as work:
            info, files = callgrind(path, ["--per-kind", str(kind_requests)], work, per_call=True)
            kinds = info[0]["kinds_in_order"]
            result["kinds"] = {}
            for kind, file in zip(kinds, files):
                funcs, _ = parse(file)
                layers = attribute(funcs)
                core = sum(layers.get(l, 0) for l in LAYERS)
                result["kinds"][kind] = core / kind_requests
                if kind in ("history_storage", "search"):
                    q = info[0]["queries_by_kind"].get(kind, 0)
                    if q:
                        per = layers.get("store", 0) / q
                        prev = result["store"]["per_query"] or {}
                        prev[kind] = per
                        result["store"]["per_query"] = prev
    return result


def table(result, baseline):
    tol = baseline.get("tolerance", 0.03) if baseline else 0.03
    per_figure = baseline.get("tolerances", {}) if baseline else {}
    ipn = result["instructions_per_ns"]
    rows, failures = [], []

    def check(label, value, base, budget_ns=None):
        t = per_figure.get(label, tol)
        change = (value / base - 1) if base else None
        budget = budget_ns * ipn if budget_ns else None
        ok = change is None or change <= t
        if not ok:
            failures.append(label)
        rows.append((label, value, base, change, budget, value / budget if budget else None,
                     "" if ok else "FAIL"))

    blayers = baseline.get("layers", {}) if baseline else {}
    for layer in LAYERS + ["core total"]:
        check(layer, result["layers"][layer], blayers.get(layer), BUDGET_NS.get(layer))
    bkinds = baseline.get("kinds", {}) if baseline else {}
    for kind, value in result.get("kinds", {}).items():
        check("kind " + kind, value, bkinds.get(kind),
              ERROR_BUDGET_NS if kind in REFUSALS else BUDGET_NS["core total"])
    print(f"instructions per request; this machine ran the workload at {ipn:.2f} instructions/ns; "
          f"{result['attributed_share'] * 100:.1f} % of the measured instructions attributed")
    print(f"{'figure':34} {'instr/req':>10} {'baseline':>10} {'change':>8} "
          f"{'budget (instr)':>15} {'of budget':>10}")
    for label, v, b, ch, bud, ratio, flag in rows:
        print(f"{label:34} {v:10.0f} {b if b is not None else float('nan'):10.0f} "
              f"{(f'{ch * 100:+.2f}%' if ch is not None else 'new'):>8} "
              f"{(f'{bud:,.0f}' if bud else '-'):>15} "
              f"{(f'{ratio:.2e}' if ratio is not None else '-'):>10} {flag}")
    # The "< 5 % extra CPU" of the specification, as a measured share of the core's work.
    share = (result["layers"]["security"] + result["layers"]["monitoring"]) / \
        result["layers"]["core total"]
    share_ok = share < 0.05
    if not share_ok:
        failures.append("security+monitoring share")
    print(f"security + monitoring: {share * 100:.2f} % of the core's instructions "
          f"(specified: under 5 %) {'' if share_ok else 'FAIL'}")
    mem = result.get("memory")
    if mem:
        mb = mem["security_and_monitoring_bytes"] / 1e6
        mem_ok = mb < 10
        if not mem_ok:
            failures.append("memory")
        print(f"security + monitoring state for {mem['users']:,} users in {mem['rooms']:,} rooms: "
              f"{mb:.2f} MB (security {mem['security_bytes'] / 1e6:.2f}, monitoring "
              f"{mem['monitoring_bytes'] / 1e6:.2f}; specified: under 10 MB) "
              f"{'' if mem_ok else 'FAIL'}")
        if "core_bytes_per_idle_connection" in mem:
            print(f"core memory per idle registered connection ({mem['idle_connections']:,} "
                  f"connections): {mem['core_bytes_per_idle_connection']:,} bytes")
    store = result["store"]
    q = store["per_query"] or {}
    print(f"store (SQLite): {store['per_commit']:.0f} instructions per commit; per query: "
          + ", ".join(f"{k} {v:.0f}" for k, v in q.items()))
    print(f"harness (the workload's clients, not the server): "
          f"{result['harness_per_request']:.0f} instructions per request")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("bin_dir")
    ap.add_argument("baseline")
    ap.add_argument("--binary", default="warren-bench-instr")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--kind-requests", type=int, default=150)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--reason")
    ap.add_argument("--expect-fail", metavar="LAYER")
    args = ap.parse_args()
    if args.update and not args.reason:
        ap.error("--update needs --reason \"why the figures changed\"")
    baseline = None
    if os.path.exists(args.baseline):
        with open(args.baseline) as f:
            baseline = json.load(f)
    result = measure(args.bin_dir, args.binary, args.requests,
                     0 if args.expect_fail else args.kind_requests)
    if args.update:
        out = {"reason": args.reason,
               "updated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "workload": {"requests": args.requests, "kind_requests": args.kind_requests},
               "tolerance": baseline.get("tolerance", 0.03) if baseline else 0.03,
               "tolerances": baseline.get("tolerances", {}) if baseline else {},
               "layers": {k: round(v, 1) for k, v in result["layers"].items()},
               "kinds": {k: round(v, 1) for k, v in result.get("kinds", {}).items()}}
        with open(args.baseline, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        table(result, out)
        print(f"wrote {args.baseline}")
        return 0
    if baseline is None:
        print(f"no baseline at {args.baseline}; write one with --update --reason ...")
        return 1
    failures = table(result, baseline)
    if args.expect_fail:
        if failures == [args.expect_fail] or (args.expect_fail in failures and
                                              set(failures) <= {args.expect_fail, "core total"}):
            print(f"as expected, the check rejects {args.binary} and names {args.expect_fail}")
            return 0
        print(f"expected the check to fail on {args.expect_fail} alone, it failed on: {failures}")
        return 1
    if failures:
        print("instruction budget exceeded: " + ", ".join(failures))
        print("if the growth is intended: bench/instr_budget.py ... --update --reason \"why\"")
        return 1
    print("instruction budgets hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
