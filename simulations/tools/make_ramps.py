#!/usr/bin/env python3
"""Insert event ramps into a bundled minute-level trace (deterministic; rerun to regenerate).

Issue 24's first class of load: scheduled events that raise one-minute load 2-3x over 30-60
minutes, several times a week at irregular times, so a weekly profile cannot see them coming.
This script multiplies `derived/rds_noisy_1m.csv` (itself NAB's RDS CPU with minute-level noise,
see derived/README.md) by such events: each climbs linearly from 1x to its peak (2-3x) over
20-60 minutes, holds 30-90 minutes, and falls back over 15-30 minutes. The noise of the source
stays proportional to the load, as it does in real request traffic.

Usage: python3 simulations/tools/make_ramps.py   (from the repository root)
"""
import csv
import random

SOURCE = "simulations/traces/derived/rds_noisy_1m.csv"
OUT = "simulations/traces/derived/rds_ramps_1m.csv"


def events(n_minutes, seed):
    """(start, rise, hold, fall, peak) in minutes: about four a week, never overlapping."""
    rng = random.Random(seed)
    out, t = [], 6 * 60
    while True:
        t += rng.randint(20 * 60, 60 * 60)
        rise, hold, fall = rng.randint(20, 60), rng.randint(30, 90), rng.randint(15, 30)
        if t + rise + hold + fall >= n_minutes:
            return out
        out.append((t, rise, hold, fall, rng.uniform(2.0, 3.0)))
        t += rise + hold + fall


def factor(i, evs):
    for start, rise, hold, fall, peak in evs:
        if start <= i < start + rise:
            return 1.0 + (peak - 1.0) * (i - start + 1) / rise
        if start + rise <= i < start + rise + hold:
            return peak
        if start + rise + hold <= i < start + rise + hold + fall:
            return peak - (peak - 1.0) * (i - start - rise - hold + 1) / fall
    return 1.0


def main():
    with open(SOURCE) as f:
        rows = [(r["timestamp"], float(r["value"])) for r in csv.DictReader(f)]
    evs = events(len(rows), seed=24)
    with open(OUT, "w", newline="") as f:
        f.write("timestamp,value\n")
        for i, (t, v) in enumerate(rows):
            f.write(f"{t},{v * factor(i, evs):.4f}\n")
    print(f"{OUT}: {len(rows)} samples, {len(evs)} ramps at minutes {[e[0] for e in evs]}")


if __name__ == "__main__":
    main()
