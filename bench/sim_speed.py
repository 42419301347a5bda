#!/usr/bin/env python3
"""The simulator's speed, from outside, and its budget.

Usage: sim_speed.py WARREN_SIM [--runs N]

Three figures, each the best of N runs (the CPU time of warren-sim and its workers, so a busy
machine slows no figure's numerator):
  simulated seconds per CPU second: bench/sim/chat200.toml (200 clients in three rooms for
      10 simulated minutes, slow storage for one), one seed, run in process;
  the same with the network and process faults: bench/sim/chat200_net.toml (chat200 plus
      long-tailed delays, slow readers, a partition, resets, half-open clients, a reconnect
      storm and a graceful restart); the target is within 20 % of the first;
  seeds per CPU second: bench/sim/smoke.toml (200 seeds of a 5-client, 20 s workload with an
      attacker), one worker process, as `warren-sim run` sweeps;
  the storage-fault sweep's seeds per CPU second: sim/scenarios/durability.toml (its first 100
      seeds: 6 users doing everything while commits fail and the process crashes, the store on
      the simulated disk), and the same for sim/scenarios/power_loss.toml (that workload with
      synchronous = full while the power goes out).
Exits 1 if any is under its floor. The floors are a quarter of what a 2-core Debian 12 VM
measured (in FLOORS): CI machines are shared and noisy, so a breach means a large regression,
not noise. The targets of the simulator's design (docs/SIMULATION.md) are printed beside.
"""
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# figure: (floor, target, measured 2026-12-07 on the 2-core VM)
FLOORS = {
    "sim_seconds_per_cpu_second": (40, 200, 213),
    "sim_seconds_per_cpu_second_with_faults": (35, 170, 153),
    "seeds_per_cpu_second": (30, 100, 188),
    # On the simulated disk; before it (SQLite on :memory:, 2026-12-08, same window) 21.5-21.9.
    "durability_seeds_per_cpu_second": (5, 20, 17),
    "power_loss_seeds_per_cpu_second": (4, 15, 18),
}


def cpu_of(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sim = sys.argv[1]
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    chat = os.path.join(HERE, "sim", "chat200.toml")
    smoke = os.path.join(HERE, "sim", "smoke.toml")
    net = os.path.join(HERE, "sim", "chat200_net.toml")
    chat_cpu = min(cpu_of([sim, "run", chat, "--seed", "1", "--in-process"]) for _ in range(runs))
    net_cpu = min(cpu_of([sim, "run", net, "--seed", "1", "--in-process"]) for _ in range(runs))
    smoke_cpu = min(cpu_of([sim, "run", smoke, "--jobs", "1"]) for _ in range(runs))
    scenarios = os.path.join(HERE, "..", "sim", "scenarios")
    sweep_cpu = {
        name: min(cpu_of([sim, "run", os.path.join(scenarios, name + ".toml"), "--seeds", "100",
                          "--jobs", "1"]) for _ in range(runs))
        for name in ("durability", "power_loss")
    }
    figures = {
        "sim_seconds_per_cpu_second": 600.0 / chat_cpu,
        "sim_seconds_per_cpu_second_with_faults": 600.0 / net_cpu,
        "seeds_per_cpu_second": 200.0 / smoke_cpu,
        "durability_seeds_per_cpu_second": 100.0 / sweep_cpu["durability"],
        "power_loss_seeds_per_cpu_second": 100.0 / sweep_cpu["power_loss"],
    }
    failed = False
    for name, value in figures.items():
        floor, target, measured = FLOORS[name]
        ok = value >= floor
        failed |= not ok
        print(f"sim speed {name}: {value:.0f} (floor {floor}, target {target}, "
              f"measured {measured} on 2026-12-07){'' if ok else '  UNDER THE FLOOR'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
