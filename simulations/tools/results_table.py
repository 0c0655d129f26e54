#!/usr/bin/env python3
"""Print the README's results table from simulations/expected/*.json (the reviewed output of
`ebbflow simulate --json` for every bundled scenario; regenerate those first with
`UPDATE_GOLDEN=1 cargo test --test simulations`).

Usage: python3 simulations/tools/results_table.py   (from the repository root)
"""
import glob
import json
import os

rows, tot = [], {}
for path in sorted(glob.glob("simulations/expected/*.json")):
    name = os.path.basename(path)[:-5]
    if name == "default":  # the same scenario as ec2-step-to-saturation
        continue
    runs = {r["algorithm"]: r for r in json.load(open(path))}
    algs = list(runs)
    pol, hpa, o30 = runs[algs[0]], runs["hpa"], runs["oracle-30"]
    acts = lambda r: r["scaleOuts"] + r["scaleIns"]
    rows.append((name, pol["nodeMinutes"] / o30["nodeMinutes"], hpa["nodeMinutes"] / o30["nodeMinutes"],
                 pol["minutesOverLimit"], hpa["minutesOverLimit"], acts(pol), acts(hpa)))
    for k, v in [("p", pol["nodeMinutes"]), ("h", hpa["nodeMinutes"]), ("o", o30["nodeMinutes"]),
                 ("pl", pol["minutesOverLimit"]), ("hl", hpa["minutesOverLimit"]), ("pa", acts(pol)), ("ha", acts(hpa))]:
        tot[k] = tot.get(k, 0) + v
print("| scenario | cost / oracle-30 (policy / HPA) | minutes over limit (policy / HPA) | scale actions (policy / HPA) |")
print("|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]:.3f} / {r[2]:.3f} | {r[3]:.0f} / {r[4]:.0f} | {r[5]} / {r[6]} |")
mean_p = sum(r[1] for r in rows) / len(rows)
mean_h = sum(r[2] for r in rows) / len(rows)
print(f"| **all {len(rows)}** (node-minutes summed; mean of ratios in brackets) | **{tot['p']/tot['o']:.3f} / {tot['h']/tot['o']:.3f}** ({mean_p:.3f} / {mean_h:.3f}) | **{tot['pl']:.0f} / {tot['hl']:.0f}** | **{tot['pa']} / {tot['ha']}** |")
