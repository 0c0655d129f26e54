#!/usr/bin/env python3
"""Write the hand-made traces of simulations/examples/ (issue 14): no recorded data is used.

- hot-node-guard.csv: one Bigtable cluster recorded on 6 nodes. `cpu` is the average per-node
  CPU, `cpu_hottest` the hottest node's. For two hours both are ordinary; then the average falls
  to a quarter (scale-in looks safe) while one node stays at 95% for three hours (a hot tablet);
  then the hot node cools too.
- instance-hot-cluster.csv: a replicated instance of three clusters, each recorded on 4 nodes.
  `c2` takes the application's writes and runs hot from hour 2 to hour 5; `c1` and `c3` serve
  little throughout (the hot cluster is not the first column, so a replay that read only the
  first would miss it).

A small deterministic wobble (a sine) keeps the series from being flat lines.
Run from the repository root: python3 simulations/tools/make_examples.py
"""
import math
from datetime import datetime, timedelta

START = datetime(2024, 1, 1)


def rows(minutes, *columns):
    for i in range(minutes):
        t = START + timedelta(minutes=i)
        yield t.strftime("%Y-%m-%d %H:%M:%S"), [f(i) for f in columns]


def wobble(i, amp, period=17.0):
    return amp * math.sin(i / period * 2 * math.pi)


def write(path, header, minutes, *columns):
    with open(path, "w") as f:
        f.write("# Hand-made by simulations/tools/make_examples.py; see simulations/examples/README.md\n")
        f.write(header + "\n")
        for ts, vals in rows(minutes, *columns):
            f.write(ts + "," + ",".join(f"{v:.4f}" for v in vals) + "\n")


def cpu(i):
    return (0.55 if i < 120 else 0.25) + wobble(i, 0.02)


def hottest(i):
    if i < 120:
        return 0.75 + wobble(i, 0.03, 23.0)
    if i < 300:
        return 0.95 + wobble(i, 0.01, 23.0)
    return 0.40 + wobble(i, 0.02, 23.0)


def hot(i):
    return (0.9 if 120 <= i < 300 else 0.4) + wobble(i, 0.02)


def replica(level):
    return lambda i: level + wobble(i, 0.01, 29.0)


write("simulations/examples/hot-node-guard.csv", "timestamp,cpu,cpu_hottest", 8 * 60, cpu, hottest)
write("simulations/examples/instance-hot-cluster.csv", "timestamp,c1,c2,c3", 8 * 60, replica(0.15), hot, replica(0.12))
