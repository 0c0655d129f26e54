#!/usr/bin/env python3
"""Print the README's results table from simulations/expected/*.json (the reviewed output of
`ebbflow simulate --json` for every bundled scenario; regenerate those first with
`UPDATE_GOLDEN=1 cargo test --test simulations`).

Usage: python3 simulations/tools/results_table.py   (from the repository root)
"""
import glob
import json
import os

PEERS = ["hpa", "linear", "stepwise"]  # the real algorithms (not the oracles, not static-peak)

rows, tot = [], {}


def add(key, value):
    tot[key] = tot.get(key, 0) + value


for path in sorted(glob.glob("simulations/expected/*.json")):
    name = os.path.basename(path)[:-5]
    if name == "default":  # the same scenario as ec2-step-to-saturation
        continue
    runs = {r["algorithm"]: r for r in json.load(open(path))}
    algs = [list(runs)[0]] + PEERS
    o30 = runs["oracle-30"]["nodeMinutes"]
    acts = lambda r: r["scaleOuts"] + r["scaleIns"]
    cost = [runs[a]["nodeMinutes"] / o30 for a in algs]
    over = [runs[a]["minutesOverLimit"] for a in algs]
    rows.append((name, cost, over, acts(runs[algs[0]]), acts(runs["hpa"])))
    add("o", o30)
    for i, a in enumerate(algs):
        add(("n", i), runs[a]["nodeMinutes"])
        add(("l", i), over[i])
    add("pa", acts(runs[algs[0]]))
    add("ha", acts(runs["hpa"]))

n = len(PEERS) + 1
print("| scenario | cost / oracle-30 (policy / HPA / linear / stepwise) | minutes over limit (policy / HPA / linear / stepwise) | scale actions (policy / HPA) |")
print("|---|---|---|---|")
for name, cost, over, pa, ha in rows:
    # The policy's figure in bold where no peer has fewer minutes over the limit.
    best = over[0] <= min(over[1:])
    pol = f"**{over[0]:.0f}**" if best else f"{over[0]:.0f}"
    print(f"| {name} | {' / '.join(f'{c:.3f}' for c in cost)} | {pol} / {' / '.join(f'{o:.0f}' for o in over[1:])} | {pa} / {ha} |")
means = [sum(r[1][i] for r in rows) / len(rows) for i in range(n)]
costs = " / ".join(f"{tot[('n', i)] / tot['o']:.3f}" for i in range(n))
overs = " / ".join(f"{tot[('l', i)]:.0f}" for i in range(n))
print(f"| **all {len(rows)}** (node-minutes summed; mean of ratios in brackets) | **{costs}** ({' / '.join(f'{m:.3f}' for m in means)}) | **{overs}** | **{tot['pa']} / {tot['ha']}** |")
