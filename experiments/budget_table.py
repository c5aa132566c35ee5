#!/usr/bin/env python3
"""The table of experiments/budget.sh's learning curves, from what is committed under
experiments/results/budget/: for every learning rate, the test accuracy / macro-F1 (%) of the
one client at each evaluated number of local steps, and the training loss of that round.

Usage: experiments/budget_table.py   (prints Markdown)
"""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "budget"


def curve(run: Path) -> tuple:
    lr = None
    for line in (run / "config.toml").read_text().splitlines():
        if line.startswith("lr = "):
            lr = line.split("=", 1)[1].strip()
    points, steps = {}, 0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["kind"] != "client":
            continue
        steps += r["train"]["steps"] if r["train"] else 0
        if r["eval"]:
            e = r["eval"]
            points[steps] = (100 * e["accuracy"], 100 * e["macro_f1"], r["train"]["loss"])
    return lr, points


def main() -> None:
    curves = [curve(run) for run in sorted(RESULTS.iterdir()) if (run / "summary.json").exists()]
    curves.sort(key=lambda c: float(c[0]))
    steps = sorted({s for _, points in curves for s in points})
    print("| local steps | " + " | ".join(f"lr {lr}: acc / F1 (train loss)" for lr, _ in curves) + " |")
    print("|---" * (len(curves) + 1) + "|")
    for s in steps:
        cells = []
        for _, points in curves:
            p = points.get(s)
            cells.append(f"{p[0]:.2f} / {p[1]:.2f} ({p[2]:.3f})" if p else "–")
        print(f"| {s} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
