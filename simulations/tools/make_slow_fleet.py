#!/usr/bin/env python3
"""Make a slow fleet: five-minute fleet CPU with a gentle daily cycle (deterministic; rerun to
regenerate).

Issue 24's second class of load: a fleet's average CPU, aggregated every five minutes, that rises
and falls with the day over hours, with little noise. A policy that removes one node per cooldown
walks down every evening's slope one node at a time, hours apart; the HPA, sizing on the ratio,
takes fewer and larger steps. This script takes three weeks of NAB's NYC taxi passenger counts
(30-minute buckets, see ../README.md), interpolates them to five minutes, maps the daily range
onto per-node CPU between about 0.22 and 0.62 on 20 nodes (a fleet that never idles), and
multiplies by mild autocorrelated noise (relative sd 0.03, lag-1 correlation 0.5), as a fleet
average of many machines is smooth.

Usage: python3 simulations/tools/make_slow_fleet.py   (from the repository root)
"""
import csv
import random
from datetime import datetime, timedelta

SOURCE = "simulations/traces/nyc_taxi.csv"
OUT = "simulations/traces/derived/taxi_slow_fleet_5m.csv"
DAYS = 21
LOW, HIGH = 0.22, 0.62
RSD, PHI = 0.03, 0.5


def main():
    with open(SOURCE) as f:
        rows = [(datetime.strptime(r["timestamp"], "%Y-%m-%d %H:%M:%S"), float(r["value"])) for r in csv.DictReader(f)]
    rows = rows[: DAYS * 48 + 1]
    lo = min(v for _, v in rows)
    hi = max(v for _, v in rows)
    rng = random.Random(2402)
    e = 0.0
    out = []
    for (t0, v0), (_, v1) in zip(rows, rows[1:]):
        for k in range(6):
            v = v0 + (v1 - v0) * k / 6
            level = LOW + (HIGH - LOW) * (v - lo) / (hi - lo)
            e = PHI * e + (1 - PHI * PHI) ** 0.5 * rng.gauss(0.0, RSD)
            out.append((t0 + timedelta(minutes=5 * k), level * (1.0 + e)))
    with open(OUT, "w", newline="") as f:
        f.write("timestamp,value\n")
        for t, v in out:
            f.write(f"{t.strftime('%Y-%m-%d %H:%M:%S')},{v:.4f}\n")
    print(f"{OUT}: {len(out)} samples from {out[0][0]} to {out[-1][0]}")


if __name__ == "__main__":
    main()
