#!/usr/bin/env python3
"""The comparison grid: every federated-LoRA method of the workbench on the same data,
partitions, seeds and budget (MiniLM + Rotten Tomatoes). Run by experiments/run.sh.

Each cell is one `fedsa run`. A finished cell's small outputs (config.toml, summary.json,
metrics.jsonl, and for FedIT and local the A/B analysis) are copied into
experiments/results/grid/<run>/, the files every table of docs/RESULTS.md is made from
(experiments/grid_report.py); the run folders themselves stay in experiments/out/grid/
(git-ignored). A cell whose results are there is skipped, an interrupted one resumes from its
last checkpoint, so the grid can be run in parts, stopped and continued over several sessions.
Cells run in priority order: the paper's four rows at its own heterogeneity level first, so
that a partial grid already answers its main question.

The budget, from experiments/budget.sh's learning curves (docs/RESULTS.md, "The training
budget"): at lr 1e-3 one client on the whole corpus reaches 78% accuracy by 100 steps and
81% by 250, while 5e-3 stalls at 69-76% and 2e-2 diverges. Every client here trains
ROUNDS x LOCAL_STEPS = 8 x 15 = 120 steps of batch 16 on its ~1,070 training examples (about
1.8 epochs) at lr 1e-3, and three clients together take 360 steps: the regime where that
curve flattens. VeRA's trainable vectors need the larger rate its paper uses (1e-2) and
rank 256.

Usage:
  experiments/grid.py list [FILTER]       the cells, in run order, and which are done
  experiments/grid.py run [FILTER]        run every cell not yet done (FILTER: a substring of
                                          the run name, e.g. "dir0.5-c3" or "fedsa-lora")
  experiments/grid.py check [FILTER]      write every config and check it with `fedsa partition`
Environment: FEDSA (the binary, default target/release/fedsa), GRID_LIMIT (stop after this
many newly finished cells), GRID_OUT (the run folders' parent, default experiments/out/grid).
"""
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("GRID_OUT", ROOT / "experiments" / "out" / "grid")).resolve()
RESULTS = ROOT / "experiments" / "results" / "grid"
MODEL = "assets/all-MiniLM-L6-v2"
CORPUS = "assets/rotten_tomatoes/rotten_tomatoes_corpus_full.csv"

SEEDS = (1, 2, 3)
MAX_EXAMPLES = 4000
ROUNDS = 8
LOCAL_STEPS = 15
LR = 1e-3
# Ten clients, three sampled per round: each client trains in about 3 of 10 rounds, so the
# run has 2.5 times the rounds to give each client about the same number of local steps.
ROUNDS_C10 = 20


@dataclass(frozen=True)
class Method:
    name: str
    strategy: str
    adapter: str = "lora"
    extra: str = ""  # more lines of the [strategy] table


METHODS = {
    m.name: m
    for m in [
        Method("fedit-lora", "fedit"),
        Method("ffa-lora", "ffa"),
        Method("fedsa-lora", "fedsa"),
        Method("local-lora", "local"),
        Method("fedit-rslora", "fedit", "rslora"),
        Method("fedsa-rslora", "fedsa", "rslora"),
        Method("fedit-vera", "fedit", "vera"),
        Method("fedsa-vera", "fedsa", "vera"),
        Method("fedex-lora", "fedex"),
        Method("rolora", "rolora"),
        Method("fedsvd", "fedsvd"),
        Method("feddpa", "feddpa"),
        # FedSA-LoRA as the released code runs it: B and head come back to the server too
        # (`federate.share_local_model: True`); see docs/RESULTS.md.
        Method("fedsa-lora-released", "fedsa", extra="share_local_model = true"),
        Method("flora", "flora"),
        Method("flexlora", "flexlora"),
        Method("hetlora", "hetlora"),
    ]
}
PAPER = ["fedit-lora", "ffa-lora", "fedsa-lora", "local-lora"]
VARIANTS = ["fedit-rslora", "fedsa-rslora", "fedit-vera", "fedsa-vera"]
NEWER = ["fedex-lora", "rolora", "fedsvd", "feddpa", "fedsa-lora-released"]
LEVELS = ["dir0.5", "dir0.1", "iid", "key"]
# The generation comparison: SmolLM2-135M-Instruct (the pinned GGUF) on the bundled arithmetic
# word problems, 3 clients non-IID over problem kinds, exact match of a greedy answer; the
# budget of examples/gen-*.toml (3 rounds of 8 local steps of batch 4), which one 2-core
# machine runs in about 5 minutes a cell.
GEN = ["fedit-lora", "ffa-lora", "fedsa-lora"]
GEN_MODEL = "assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Cell:
    method: Method
    level: str
    seed: int
    clients: int = 3
    ranks: tuple = ()  # per-client ranks, for the heterogeneous-rank setting
    dp: tuple = ()  # (clip_norm, noise_multiplier)
    tags: tuple = field(default_factory=tuple)
    task: str = "classification"  # or "generation"

    @property
    def setting(self) -> str:
        s = f"{self.level}-c{self.clients}"
        if self.task == "generation":
            s = "gen-" + s
        if self.ranks:
            s += "-r" + "-".join(map(str, self.ranks))
        if self.dp:
            s += f"-dp{self.dp[1]:g}"
        return s

    @property
    def run(self) -> str:
        return f"{self.method.name}-{self.setting}-s{self.seed}"


def cells() -> list:
    out = []
    for s in SEEDS:
        out += [Cell(METHODS[m], "dir0.5", s) for m in PAPER]
    for level in LEVELS[1:]:
        for s in SEEDS:
            out += [Cell(METHODS[m], level, s) for m in PAPER]
    for level in LEVELS:
        for s in SEEDS:
            out += [Cell(METHODS[m], level, s) for m in VARIANTS]
    for level in LEVELS:
        for s in SEEDS:
            out += [Cell(METHODS[m], level, s) for m in NEWER]
    for s in SEEDS:
        out += [Cell(METHODS[m], "dir0.5", s, clients=10) for m in PAPER]
    for s in SEEDS:
        out += [
            Cell(METHODS[m], "dir0.5", s, ranks=(4, 8, 16))
            for m in ["flora", "flexlora", "hetlora", "local-lora"]
        ]
    # Client-level DP where it is meant to be used, clients sampled from many: clipping at
    # C = 0.5, about the norm of one round's update of A at this budget (the mean of three
    # clients' A updates in round 8 of fedit-lora-dir0.5-c3-s1 has norm 0.54, B's 0.51), and
    # two noise levels, whose epsilon each run reports.
    for sigma in (0.5, 1.0):
        for s in SEEDS:
            out += [
                Cell(METHODS[m], "dir0.5", s, clients=10, dp=(0.5, sigma))
                for m in ["fedit-lora", "ffa-lora", "fedsa-lora"]
            ]
    for s in SEEDS:
        out += [Cell(METHODS[m], "dir0.5", s, task="generation") for m in GEN]
    return out


def output_dir() -> str:
    """Where the configs put their runs: relative to the repository root when inside it, so
    the committed config.toml files name no folder of this machine."""
    runs = OUT / "runs"
    try:
        return str(runs.relative_to(ROOT))
    except ValueError:
        return str(runs)


def partition(level: str, clients: int) -> str:
    min_examples = 50 if clients == 3 else 30
    if level == "iid":
        return 'kind = "iid"'
    if level == "key":
        return 'kind = "key"\nkey = "movie_name"'
    return f'kind = "dirichlet"\nalpha = {level[3:]}\nmin_examples = {min_examples}'


def gen_config(c: Cell) -> str:
    """A generation cell: examples/gen-*.toml with the cell's seed, strategy and output folder."""
    return f"""# Generated by experiments/grid.py: {c.method.name} at {c.setting}, seed {c.seed}.
name = "{c.run}"
seed = {c.seed}
device = "cpu"
output_dir = "{output_dir()}"

[task]
kind = "generation"
max_new_tokens = 40

[model]
path = "{GEN_MODEL}"
max_length = 96

[data]
format = "arithmetic"
max_examples = 300
test_fraction = 0.1

[partition]
kind = "dirichlet"
alpha = {c.level[3:]}
min_examples = 40

[federation]
num_clients = {c.clients}
clients_per_round = {c.clients}
rounds = 3

[training]
local_steps = 8
batch_size = 4
eval_batch_size = 8
lr = 1e-3

[adapter]
kind = "lora"
rank = 8
alpha = 16
dropout = 0.05
target_modules = ["q_proj", "v_proj"]

[strategy]
name = "{c.method.strategy}"
aggregator = "fedavg"
"""


def config(c: Cell) -> str:
    if c.task == "generation":
        return gen_config(c)
    m = c.method
    rank, lr = (256, 1e-2) if m.adapter == "vera" else (8, LR)
    rounds = ROUNDS if c.clients == 3 else ROUNDS_C10
    sampled = 3
    eval_every = 2 if c.clients == 3 else 5
    strategy = f'name = "{m.strategy}"\naggregator = "fedavg"' + (f"\n{m.extra}" if m.extra else "")
    text = f"""# Generated by experiments/grid.py: {m.name} at {c.setting}, seed {c.seed}.
name = "{c.run}"
seed = {c.seed}
device = "cpu"
output_dir = "{output_dir()}"

[model]
path = "{MODEL}"
max_length = 64

[data]
format = "rotten_tomatoes"
path = "{CORPUS}"
max_examples = {MAX_EXAMPLES}
test_fraction = 0.2

[partition]
{partition(c.level, c.clients)}

[federation]
num_clients = {c.clients}
clients_per_round = {sampled}
rounds = {rounds}
eval_every = {eval_every}

[training]
local_steps = {LOCAL_STEPS}
batch_size = 16
eval_batch_size = 64
lr = {lr:g}

[adapter]
kind = "{m.adapter}"
rank = {rank}
alpha = 16
dropout = 0.05
target_modules = ["query", "value"]

[strategy]
{strategy}
"""
    if c.ranks:
        text += f"\n[clients]\nrank = [{', '.join(map(str, c.ranks))}]\n"
    if c.dp:
        text += f"\n[privacy]\nclip_norm = {c.dp[0]}\nnoise_multiplier = {c.dp[1]}\ndelta = 1e-5\n"
    return text


def done(c: Cell) -> bool:
    return (RESULTS / c.run / "summary.json").is_file()


def select(argv: list) -> list:
    flt = argv[0] if argv else ""
    return [c for c in cells() if flt in c.run]


def write_config(c: Cell) -> Path:
    path = OUT / "configs" / f"{c.run}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config(c))
    return path


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def fedsa() -> str:
    return os.environ.get("FEDSA", str(ROOT / "target" / "release" / "fedsa"))


def analyze(c: Cell, run_dir: Path, dest: Path) -> None:
    """The A/B asymmetry of runs whose clients train both factors (FedIT and local)."""
    if c.method.name not in ("fedit-lora", "local-lora") or c.ranks or c.dp or c.clients != 3 or c.task != "classification":
        return
    # Relative paths: the report records the run's path, and committed files name no folder
    # of this machine.
    txt = subprocess.run(
        [fedsa(), "analyze", rel(run_dir), "--json-out", rel(dest / "analyze.json")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (dest / "analyze.txt").write_text(txt)


def run_cell(c: Cell) -> bool:
    if c.task == "generation" and not (ROOT / GEN_MODEL).is_file():
        print(f"== {c.run}: {GEN_MODEL} is missing: run scripts/fetch-assets generation", flush=True)
        return False
    cfg = write_config(c)
    run_dir = OUT / "runs" / c.run
    log = OUT / "logs" / f"{c.run}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [fedsa(), "run", str(cfg)]
    if (run_dir / "checkpoints" / "LATEST").is_file() and not (run_dir / "summary.json").is_file():
        args.append("--resume")
    elif not (run_dir / "summary.json").is_file():
        # A folder without a checkpoint holds nothing worth keeping.
        shutil.rmtree(run_dir, ignore_errors=True)
    started = time.monotonic()
    if not (run_dir / "summary.json").is_file():
        with log.open("a") as f:
            rc = subprocess.run(args, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            print(f"== {c.run}: FAILED (exit {rc}), see {log.relative_to(ROOT)}", flush=True)
            return False
    tmp = RESULTS / f".{c.run}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.toml", "metrics.jsonl", "summary.json"):
        shutil.copy(run_dir / name, tmp / name)
    analyze(c, run_dir, tmp)
    # Renamed into place whole: a cell's folder is complete or absent.
    tmp.rename(RESULTS / c.run)
    # docs/RESULTS.md's tables follow the results at once, so the two are committed together.
    subprocess.run([sys.executable, str(ROOT / "experiments" / "grid_report.py")], cwd=ROOT, check=True)
    summary = json.loads((RESULTS / c.run / "summary.json").read_text())
    print(
        f"== {c.run}: mean acc {100 * summary['mean_accuracy']:.2f}, "
        f"F1 {100 * summary['mean_f1']:.2f}, {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return True


def main() -> int:
    verb, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("list", [])
    chosen = select(rest)
    if verb == "list":
        for c in chosen:
            print(f"{'done' if done(c) else '    '}  {c.run}")
        print(f"{sum(map(done, chosen))} of {len(chosen)} cells done")
        return 0
    if verb == "check":
        for c in chosen:
            cfg = write_config(c)
            if c.task == "generation" and not (ROOT / GEN_MODEL).is_file():
                # The config is written (and parses, see tests/tests/examples.rs); checking its
                # partition needs the model's tokenizer.
                print(f"== {c.run}: config written, not checked: {GEN_MODEL} is missing", flush=True)
                continue
            subprocess.run(
                [fedsa(), "partition", str(cfg)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
            )
            print(f"== {c.run}: config ok", flush=True)
        return 0
    if verb != "run":
        print(__doc__, file=sys.stderr)
        return 2
    limit = int(os.environ.get("GRID_LIMIT", "0")) or None
    finished = failed = 0
    for c in chosen:
        if done(c):
            continue
        if run_cell(c):
            finished += 1
        else:
            failed += 1
        if limit and finished >= limit:
            break
    print(f"{finished} cells finished, {failed} failed; {sum(map(done, cells()))} of {len(cells())} done")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
