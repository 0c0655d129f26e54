#!/usr/bin/env python3
"""Make minute-level noisy variants of bundled NAB traces (deterministic; rerun to regenerate).

Real web load sampled every minute scatters around its own 15-minute mean with a relative
standard deviation of about 35% (95th percentile about +59%, 99th about +98%) and has flash
crowds. The NAB traces are 5- or 30-minute aggregates, so they are smoother than that. This
script interpolates a trace to one sample per minute, multiplies it by autocorrelated noise with
a heavier-than-normal tail (a scale mixture: 90% of minutes N(0, 0.85), 10% N(0, 1.9); lag-1
correlation 0.3; relative sd 0.35) and adds a few flash crowds, so that policies can be tested on
the class of load where sizing on the smoothed value alone fails.

Usage: python3 simulations/tools/make_noisy.py   (from the repository root)
"""
import csv
import math
import random
from datetime import datetime, timedelta

RSD = 0.35
PHI = 0.3


def read(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append((datetime.strptime(r["timestamp"], "%Y-%m-%d %H:%M:%S"), float(r["value"])))
    return rows


def per_minute(rows, days):
    """Linear interpolation to one sample a minute over the first `days` days."""
    start = rows[0][0].replace(second=0)
    end = start + timedelta(days=days)
    out, j = [], 0
    t = start
    while t < end and j + 1 < len(rows):
        while j + 1 < len(rows) and rows[j + 1][0] <= t:
            j += 1
        if j + 1 >= len(rows):
            break
        (t0, v0), (t1, v1) = rows[j], rows[j + 1]
        span = (t1 - t0).total_seconds()
        w = 0.0 if span <= 0 else min(1.0, max(0.0, (t - t0).total_seconds() / span))
        out.append((t, v0 + (v1 - v0) * w))
        t += timedelta(minutes=1)
    return out


def noisy(series, seed, crowds):
    rng = random.Random(seed)
    eps = 0.0
    out = []
    for i, (t, v) in enumerate(series):
        scale = 0.85 if rng.random() < 0.9 else 1.9
        eta = rng.gauss(0.0, scale)
        eps = PHI * eps + math.sqrt(1 - PHI * PHI) * eta
        x = v * max(0.02, 1.0 + RSD * eps)
        for start, minutes, factor in crowds:
            if start <= i < start + minutes:
                x *= factor
        out.append((t, x))
    return out


def write(path, series, scale):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        for t, v in series:
            w.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), f"{v * scale:.4f}"])


def crowds_for(seed, n, length):
    rng = random.Random(seed + 1)
    return sorted((rng.randrange(600, length - 600), rng.randrange(10, 40), rng.uniform(2.0, 3.5)) for _ in range(n))


def main():
    # NYC taxi passengers (30-minute buckets), 21 days, as per-node CPU on 10 nodes peaking ~0.6.
    taxi = per_minute(read("simulations/traces/nyc_taxi.csv"), 21)
    peak = max(v for _, v in taxi)
    write("simulations/traces/derived/taxi_noisy_1m.csv", noisy(taxi, 11, crowds_for(11, 8, len(taxi))), 0.6 / peak)
    # RDS CPU % with a daily cycle (5-minute samples), 13 days, as per-node CPU on 20 nodes.
    rds = per_minute(read("simulations/traces/rds_cpu_utilization_e47b3b.csv"), 13)
    write("simulations/traces/derived/rds_noisy_1m.csv", noisy(rds, 23, crowds_for(23, 6, len(rds))), 0.01)
    # ELB requests per 5 minutes (already noisy), 13 days, as per-node CPU on 10 nodes.
    elb = per_minute(read("simulations/traces/elb_request_count_8c0756.csv"), 13)
    write("simulations/traces/derived/elb_noisy_1m.csv", noisy(elb, 37, crowds_for(37, 6, len(elb))), 0.01)


if __name__ == "__main__":
    main()
