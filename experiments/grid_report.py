#!/usr/bin/env python3
"""The tables of docs/RESULTS.md's comparison grid, made from what is committed under
experiments/results/grid/ (experiments/grid.py writes it): nothing in them is typed by hand.

Every figure is a mean ± sample standard deviation over the seeds of a cell (n given; "±–" for
one seed) of the run's client means: unweighted (each client once, the FedSA-LoRA paper's
headline) and weighted by the clients' test examples, at the last evaluated round and at the
best one (the round with the highest mean). A difference between two methods is called beyond
the spread only when their ranges over seeds do not overlap; paired (same seed = same
partition and initialisation), when every seed's difference has the same sign and their mean
exceeds their standard deviation. Neither verdict is given on fewer than 3 seeds.

docs/RESULTS.md holds the generated blocks between `<!-- BEGIN grid:NAME -->` and
`<!-- END grid:NAME -->`; this script rewrites them in place (the prose around them is not
touched), and the per-client tables go to docs/results/grid-clients.md.

Usage:
  experiments/grid_report.py            rewrite the blocks and docs/results/grid-clients.md
  experiments/grid_report.py --check    exit 1 if either is not what the results give
  experiments/grid_report.py --print    print every block instead
"""
import json
import os
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("GRID_RESULTS", ROOT / "experiments" / "results" / "grid"))
DOC = ROOT / "docs" / "RESULTS.md"
CLIENTS_DOC = ROOT / "docs" / "results" / "grid-clients.md"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grid  # noqa: E402  (the cell definitions: one source for names and order)

LABELS = {
    "fedit-lora": "FedIT (LoRA)",
    "ffa-lora": "FFA-LoRA",
    "fedsa-lora": "FedSA-LoRA",
    "local-lora": "local (LoRA)",
    "fedit-rslora": "FedIT (rsLoRA)",
    "fedsa-rslora": "FedSA-rsLoRA",
    "fedit-vera": "FedIT (VeRA)",
    "fedsa-vera": "FedSA-VeRA",
    "fedex-lora": "FedEx-LoRA",
    "rolora": "RoLoRA",
    "fedsvd": "FedSVD",
    "feddpa": "FedDPA",
    "fedsa-lora-released": "FedSA-LoRA, released-code mode",
    "flora": "FLoRA",
    "flexlora": "FlexLoRA",
    "hetlora": "HetLoRA",
}
# A verdict on a difference needs every seed of the grid.
MIN_SEEDS = 3
LEVEL_LABELS = {
    "dir0.5": "Dirichlet 0.5",
    "dir0.1": "Dirichlet 0.1",
    "iid": "IID",
    "key": "by movie",
}


def load():
    """{(method, setting): {seed: run}} of every finished cell."""
    cells = defaultdict(dict)
    for c in grid.cells():
        d = RESULTS / c.run
        if not (d / "summary.json").is_file():
            continue
        run = {
            "cell": c,
            "summary": json.loads((d / "summary.json").read_text()),
            "metrics": [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()],
        }
        if (d / "analyze.json").is_file():
            run["analyze"] = json.loads((d / "analyze.json").read_text())
        cells[(c.method.name, c.setting)][c.seed] = run
    return cells


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return m, sd, len(xs), min(xs), max(xs)


def fmt(s, scale=100.0, digits=2):
    if s is None:
        return "–"
    m, sd, _, _, _ = s
    sd_text = "–" if sd is None else f"{scale * sd:.{digits}f}"
    return f"{scale * m:.{digits}f} ± {sd_text}"


def measure(run, name, which):
    v = run["summary"]["means"][name]
    return v[which] if v else None


def per_round_mib(run):
    s, rounds = run["summary"], run["summary"]["rounds"]
    return (s["total_bytes_up"] + s["total_bytes_down"]) / rounds / 2**20


def epsilon(run):
    eps = [r["privacy"]["epsilon"] for r in run["metrics"] if r["kind"] == "round" and r.get("privacy")]
    return eps[-1] if eps else None


def overall_table(cells, setting_of_level, methods):
    """Methods x levels: best-round unweighted accuracy / macro-F1."""
    levels = [lv for lv in grid.LEVELS if any((m, setting_of_level(lv)) in cells for m in methods)]
    head = "| method | " + " | ".join(f"{LEVEL_LABELS[lv]}: acc / F1" for lv in levels) + " |"
    out = [head, "|---" * (len(levels) + 1) + "|"]
    for m in methods:
        row = []
        for lv in levels:
            runs = cells.get((m, setting_of_level(lv)), {}).values()
            if not runs:
                row.append("not run yet")
                continue
            acc = stats([measure(r, "accuracy", "best") for r in runs])
            f1 = stats([measure(r, "macro_f1", "best") for r in runs])
            row.append(f"{fmt(acc)} / {fmt(f1)} (n={acc[2]})")
        out.append(f"| {LABELS[m]} | " + " | ".join(row) + " |")
    return "\n".join(out)


def setting_table(cells, setting, methods):
    """Every measure of one setting, one row per method."""
    cols = [
        ("acc last", "accuracy", "last"),
        ("acc best", "accuracy", "best"),
        ("F1 last", "macro_f1", "last"),
        ("F1 best", "macro_f1", "best"),
        ("w-acc last", "weighted_accuracy", "last"),
        ("w-acc best", "weighted_accuracy", "best"),
        ("w-F1 last", "weighted_f1", "last"),
        ("w-F1 best", "weighted_f1", "best"),
    ]
    dp = any(cells.get((m, setting)) and epsilon(next(iter(cells[(m, setting)].values()))) for m in methods)
    head = "| method | n | " + " | ".join(c[0] for c in cols) + " | MiB/round | wall s |"
    if dp:
        head += " ε |"
    out = [head, "|---" * (len(cols) + 4 + dp) + "|"]
    for m in methods:
        runs = list(cells.get((m, setting), {}).values())
        if not runs:
            continue
        row = [fmt(stats([measure(r, n, w) for r in runs])) for _, n, w in cols]
        mib = stats([per_round_mib(r) for r in runs])
        wall = stats([r["summary"]["seconds"] for r in runs])
        line = f"| {LABELS[m]} | {len(runs)} | " + " | ".join(row)
        line += f" | {mib[0]:.2f} | {wall[0]:.0f} |"
        if dp:
            eps = stats([epsilon(r) for r in runs])
            line += f" {eps[0]:.2f} |" if eps else " – |"
        out.append(line)
    if len(out) == 2:
        return "No run of this setting has finished yet."
    return "\n".join(out)


def compare(cells, setting, a, b, name="accuracy", setting_b=None):
    """FedSA-style claim check: a above b? Returns one Markdown row or None. With `setting_b`,
    b's runs come from that setting (the same method with and without privacy, say); seeds
    still pair, since a seed fixes the partition and the initialisation in both."""
    ra, rb = cells.get((a, setting), {}), cells.get((b, setting_b or setting), {})
    if not ra or not rb:
        return None
    xa = [measure(r, name, "best") for r in ra.values()]
    xb = [measure(r, name, "best") for r in rb.values()]
    sa, sb = stats(xa), stats(xb)
    seeds = sorted(set(ra) & set(rb))
    paired = [measure(ra[s], name, "best") - measure(rb[s], name, "best") for s in seeds]
    if len(xa) < MIN_SEEDS or len(xb) < MIN_SEEDS:
        verdict = f"fewer than {MIN_SEEDS} seeds: none yet"
    elif sa[3] > sb[4]:
        verdict = "above, beyond the spread"
    elif sb[3] > sa[4]:
        verdict = "below, beyond the spread"
    else:
        verdict = "inside the spread"
    # Paired: the same seed is the same partition and initialisation, so the per-seed
    # difference removes how hard each seed's partition is. A difference in every seed of the
    # same sign, larger on average than its own standard deviation.
    sp = stats(paired)
    if len(paired) < MIN_SEEDS:
        pverdict = f"fewer than {MIN_SEEDS} seeds: none yet"
    elif all(d > 0 for d in paired) and sp[0] > sp[1]:
        pverdict = "above in every seed"
    elif all(d < 0 for d in paired) and -sp[0] > sp[1]:
        pverdict = "below in every seed"
    else:
        pverdict = "inside the paired spread"
    diffs = ", ".join(f"{100 * d:+.2f}" for d in paired)
    where = f"{setting} vs {setting_b}" if setting_b else setting
    return (
        f"| {LABELS[a]} vs {LABELS[b] if b != a else 'itself'} | {where} | {fmt(sa)} | {fmt(sb)} | "
        f"{100 * (sa[0] - sb[0]):+.2f} | {verdict} | {diffs} | {pverdict} |"
    )


def pairs_table(cells, pairs, settings, name="accuracy", empty="No pair of methods has finished yet.", short=None):
    """One `compare` row per pair and setting that has runs of both. A pair may carry a third
    item, the setting of its second method."""
    short = short or ("acc" if name == "accuracy" else "F1")
    head = (
        f"| comparison | setting | first: best {short} | second: best {short} | difference | "
        "ranges over seeds | paired, per seed | paired verdict |\n|---|---|---|---|---|---|---|---|"
    )
    rows = [
        r
        for setting, setting_pairs in settings(pairs)
        for a, b, *other in setting_pairs
        if (r := compare(cells, setting, a, b, name, *other))
    ]
    return head + "\n" + "\n".join(rows) if rows else empty


def claims_table(cells, name="accuracy"):
    pairs = [
        ("fedsa-lora", "fedit-lora"),
        ("fedsa-lora", "ffa-lora"),
        ("fedsa-lora", "local-lora"),
        ("fedsa-rslora", "fedit-rslora"),
        ("fedsa-vera", "fedit-vera"),
        ("fedsa-lora-released", "fedsa-lora"),
    ]

    def settings(pairs):
        return [(f"{lv}-c3", pairs) for lv in grid.LEVELS] + [("dir0.5-c10", pairs[:3])]

    return pairs_table(cells, pairs, settings, name)


def ranks_pairs_table(cells, name="accuracy"):
    """The heterogeneous-rank methods against each other and against local training."""
    pairs = [
        ("flexlora", "flora"),
        ("hetlora", "flora"),
        ("hetlora", "flexlora"),
        ("flora", "local-lora"),
        ("flexlora", "local-lora"),
        ("hetlora", "local-lora"),
    ]

    def settings(pairs):
        return [("dir0.5-c3-r4-8-16", pairs)]

    return pairs_table(cells, pairs, settings, name, "No run of this setting has finished yet.")


def newer_table(cells, name="accuracy"):
    """The field's newer methods against FedIT (the plain baseline) and FedSA-LoRA."""
    pairs = [(m, b) for m in ["fedex-lora", "rolora", "fedsvd", "feddpa"] for b in ["fedit-lora", "fedsa-lora"]]

    def settings(pairs):
        return [(f"{lv}-c3", pairs) for lv in grid.LEVELS]

    return pairs_table(cells, pairs, settings, name, "No run of these methods has finished yet.")


def privacy_pairs_table(cells, name="accuracy"):
    """Under client-level DP: FedSA-LoRA against FedIT and FFA-LoRA at each noise level, and
    what the noise costs each method against its own ten-client run without it."""
    methods = ["fedsa-lora", "fedit-lora", "ffa-lora"]

    pairs = [("fedsa-lora", "fedit-lora"), ("fedsa-lora", "ffa-lora")] + [(m, m, "dir0.5-c10") for m in methods]

    def settings(pairs):
        return [(f"dir0.5-c10-dp{sigma:g}", pairs) for sigma in (0.5, 1.0)]

    return pairs_table(cells, pairs, settings, name, "No run of this setting has finished yet.")


def generation_pairs_table(cells):
    """The generation comparison's claims, by best-round exact match."""
    pairs = [("fedsa-lora", "fedit-lora"), ("fedsa-lora", "ffa-lora"), ("fedit-lora", "ffa-lora")]

    def settings(pairs):
        return [("gen-dir0.5-c3", pairs)]

    return pairs_table(cells, pairs, settings, "accuracy", "No generation run has finished yet.", short="EM")


def asymmetry_table(cells):
    head = (
        "| run | level | n | A cosine | B cosine | A subspace | B subspace | A > B (cosine), seeds |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for m in ("fedit-lora", "local-lora"):
        for lv in grid.LEVELS:
            runs = [r for r in cells.get((m, f"{lv}-c3"), {}).values() if "analyze" in r]
            if not runs:
                continue
            a_cos = stats([r["analyze"]["mean_a"]["cosine"] for r in runs])
            b_cos = stats([r["analyze"]["mean_b"]["cosine"] for r in runs])
            a_sub = stats([r["analyze"]["mean_a"]["subspace"] for r in runs])
            b_sub = stats([r["analyze"]["mean_b"]["subspace"] for r in runs])
            wins = sum(r["analyze"]["mean_a"]["cosine"] > r["analyze"]["mean_b"]["cosine"] for r in runs)
            rows.append(
                f"| {LABELS[m]} | {LEVEL_LABELS[lv]} | {len(runs)} | {fmt(a_cos, 1, 3)} | {fmt(b_cos, 1, 3)} "
                f"| {fmt(a_sub, 1, 3)} | {fmt(b_sub, 1, 3)} | {wins} of {len(runs)} |"
            )
    return head + "\n" + "\n".join(rows) if rows else "No FedIT or local run has finished yet."


def generation_table(cells):
    """The generation comparison: exact match (unweighted and weighted client means, last and
    best round), the clients' mean token accuracy at the last round, bytes and wall time."""
    setting = "gen-dir0.5-c3"
    cols = [("accuracy", "last"), ("accuracy", "best"), ("weighted_accuracy", "last"), ("weighted_accuracy", "best")]
    head = "| method | n | EM last | EM best | w-EM last | w-EM best | token acc last | MiB/round | wall s |"
    out = [head, "|---" * 9 + "|"]
    for m in grid.GEN:
        runs = list(cells.get((m, setting), {}).values())
        if not runs:
            continue
        row = [fmt(stats([measure(r, n, w) for r in runs])) for n, w in cols]
        tok = stats(
            [
                sum(cl["extra"]["token_accuracy"] for cl in r["summary"]["clients"] if cl)
                / max(1, sum(1 for cl in r["summary"]["clients"] if cl))
                for r in runs
            ]
        )
        mib = stats([per_round_mib(r) for r in runs])
        wall = stats([r["summary"]["seconds"] for r in runs])
        out.append(
            f"| {LABELS[m]} | {len(runs)} | " + " | ".join(row) + f" | {fmt(tok)} | {mib[0]:.2f} | {wall[0]:.0f} |"
        )
    if len(out) == 2:
        return "No generation run has finished yet."
    return "\n".join(out)


def progress(cells):
    all_cells = grid.cells()
    done = sum(1 for c in all_cells if c.seed in cells.get((c.method.name, c.setting), {}))
    return f"{done} of {len(all_cells)} cells of the grid are in experiments/results/grid/."


def clients_doc(cells):
    out = [
        "# The comparison grid, client by client",
        "",
        "Generated by `experiments/grid_report.py` from `experiments/results/grid/`: each",
        "client's test accuracy / macro-F1 (%) at the last evaluated round, and its number of",
        "test examples, per finished run.",
        "",
    ]
    for c in grid.cells():
        run = cells.get((c.method.name, c.setting), {}).get(c.seed)
        if not run:
            continue
        clients = run["summary"]["clients"]
        out.append(f"## {c.run}")
        out.append("")
        out.append("| client | accuracy | macro-F1 | test examples |")
        out.append("|---|---|---|---|")
        for k, cl in enumerate(clients):
            if cl is None:
                out.append(f"| {k} | – | – | – |")
                continue
            out.append(
                f"| {k} | {100 * cl['accuracy']:.2f} | {100 * cl['macro_f1']:.2f} | {cl['num_examples']} |"
            )
        out.append("")
    return "\n".join(out)


def blocks(cells):
    paper = grid.PAPER + grid.VARIANTS + grid.NEWER
    b = {
        "progress": progress(cells),
        "overview": overall_table(cells, lambda lv: f"{lv}-c3", paper),
        "claims": claims_table(cells),
        "claims-f1": claims_table(cells, "macro_f1"),
        "newer": newer_table(cells),
        "newer-f1": newer_table(cells, "macro_f1"),
        "ranks-pairs": ranks_pairs_table(cells),
        "ranks-pairs-f1": ranks_pairs_table(cells, "macro_f1"),
        "asymmetry": asymmetry_table(cells),
        "generation": generation_table(cells),
        "generation-pairs": generation_pairs_table(cells),
        "privacy-pairs": privacy_pairs_table(cells),
        "privacy-pairs-f1": privacy_pairs_table(cells, "macro_f1"),
        "ten-clients": setting_table(cells, "dir0.5-c10", grid.PAPER),
        "ranks": setting_table(cells, "dir0.5-c3-r4-8-16", ["flora", "flexlora", "hetlora", "local-lora"]),
        "privacy": "\n\n".join(
            f"Noise multiplier {sigma:g}, clipping norm 0.5:\n\n"
            + setting_table(cells, f"dir0.5-c10-dp{sigma:g}", ["fedit-lora", "ffa-lora", "fedsa-lora"])
            for sigma in (0.5, 1.0)
        ),
    }
    for lv in grid.LEVELS:
        b[f"setting-{lv}"] = setting_table(cells, f"{lv}-c3", paper)
    return b


def rewrite(doc: str, generated: dict) -> str:
    for name, body in generated.items():
        pattern = re.compile(
            rf"(<!-- BEGIN grid:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- END grid:{re.escape(name)} -->)", re.S
        )
        doc = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), doc)
    return doc


def main() -> int:
    cells = load()
    generated = blocks(cells)
    if "--print" in sys.argv:
        for name, body in generated.items():
            print(f"<!-- BEGIN grid:{name} -->\n{body}\n<!-- END grid:{name} -->\n")
        return 0
    doc = DOC.read_text()
    new_doc = rewrite(doc, generated)
    new_clients = clients_doc(cells) + "\n"
    if "--check" in sys.argv:
        stale = [p for p, old, new in [(DOC, doc, new_doc), (CLIENTS_DOC, CLIENTS_DOC.read_text() if CLIENTS_DOC.exists() else "", new_clients)] if old != new]
        for p in stale:
            print(f"{p.relative_to(ROOT)} is not what experiments/results/grid/ gives: run experiments/grid_report.py", file=sys.stderr)
        return 1 if stale else 0
    DOC.write_text(new_doc)
    CLIENTS_DOC.write_text(new_clients)
    return 0


if __name__ == "__main__":
    sys.exit(main())
