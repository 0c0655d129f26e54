#!/usr/bin/env python3
"""Make a cold start: the first day of a noisy minute-level trace, to be replayed from one node
(deterministic; rerun to regenerate).

Issue 24's third class: a service started (or restored) at one node under load that needs
several. Only the first hour decides it, so the trace is short: a whole two-week replay would
bury those minutes. The source is `derived/elb_noisy_1m.csv` (NAB's ELB request counts with
minute-level noise, see derived/README.md), whose first hour asks for about 13 nodes at 0.65.

Usage: python3 simulations/tools/make_cold_start.py   (from the repository root)
"""
SOURCE = "simulations/traces/derived/elb_noisy_1m.csv"
OUT = "simulations/traces/derived/elb_cold_start_1m.csv"
MINUTES = 24 * 60


def main():
    with open(SOURCE) as f:
        lines = f.read().splitlines()
    with open(OUT, "w", newline="") as f:
        f.write("\n".join(lines[: 1 + MINUTES]) + "\n")
    print(f"{OUT}: {MINUTES} samples from {lines[1].split(',')[0]}")


if __name__ == "__main__":
    main()
