#!/usr/bin/env bash
# The paper's comparison on the bundled corpus (Rotten Tomatoes, all-MiniLM-L6-v2): every method
# at three heterogeneity levels and two client counts, then `fedsa compare` per level and
# `fedsa analyze` (the A/B asymmetry) on the FedIT and local runs.
#
#   methods      FedIT, FFA-LoRA, FedSA-LoRA, rsLoRA, FedSA-rsLoRA, VeRA, FedSA-VeRA, local, and
#                FedSA-LoRA with a shared head (an ablation)
#   levels       Dirichlet alpha 0.1 and 0.5 over labels, and IID
#   clients      3 (all train every round) and 10 (3 sampled per round)
#   = 9 x 3 x 2 = 54 runs, written to experiments/out/runs/<method>-<level>-c<clients>/
#
# Scale, cut to fit a few hours on this 2-core CPU: 1500 examples (20% held out per client),
# sequences of at most 64 tokens, 6 rounds of 3 clients x 6 local steps of batch 16 = 108 local
# steps per run, and an evaluation of every client each round. Measured here (dev build with
# optimised dependencies, the 2 cores shared: load 4-6) a local step took about 2.1 s and a
# round's fixed cost (evaluation, exchange) about 8 s, so a run takes about 4-5 minutes and the
# grid about 3.5-4 hours, plus about 15 minutes of `analyze` (FedIT trains one more local round);
# on an idle machine with the release build, expect roughly half. Runs already complete (with a
# summary.json) are skipped, so the script can be stopped and started again; an interrupted run
# resumes from its last checkpoint. Widen LEVELS (dir1.0) or raise ROUNDS for a longer grid.
#
# Usage (from anywhere; paths are relative to the repository root):
#   scripts/fetch-assets                # once: the model and corpus
#   experiments/small_grid.sh                  # the whole grid, then the reports
#   EXPERIMENTS_SUBSET=small experiments/small_grid.sh  # 4 rounds of 5 local steps, levels dir0.1 and
#                                       # iid, 3 and 10 clients: 36 runs in about an hour and a
#                                       # quarter (the grid docs/RESULTS.md reports)
#   EXPERIMENTS_SUBSET=tiny experiments/small_grid.sh   # one tiny FedIT run (about a minute): checks the pipeline
#   EXPERIMENTS_DRY=1 experiments/small_grid.sh         # write and check every config (its partition); train nothing
#   FEDSA=target/debug/fedsa experiments/small_grid.sh  # use another build of the binary
#   EXPERIMENTS_OUT=/elsewhere experiments/small_grid.sh  # write somewhere else than experiments/out
#   EXPERIMENTS_LEVELS="dir0.1 iid" EXPERIMENTS_CLIENTS="3 10" experiments/small_grid.sh
#                                       # a narrower grid
#
# Output in experiments/out/ (git-ignored; the small and tiny subsets write to
# experiments/out/small/ and experiments/out/tiny/):
#   configs/<run>.toml                  the generated config of every run
#   runs/<run>/                         the run folders
#   compare-<level>-c<n>.{txt,json,png} one comparison per heterogeneity level and client count
#   analyze-<run>.{txt,json,png}        the A/B similarity of every FedIT and local run
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${EXPERIMENTS_OUT:-experiments/out}
SUBSET=${EXPERIMENTS_SUBSET:-full}
DRY=${EXPERIMENTS_DRY:-0}
MODEL=assets/all-MiniLM-L6-v2
CORPUS=assets/rotten_tomatoes/rotten_tomatoes_corpus_full.csv

# Scale of every run (the tiny subset shrinks it to check the pipeline in about a minute).
MAX_EXAMPLES=1500
ROUNDS=6
LOCAL_STEPS=6
read -r -a CLIENT_COUNTS <<<"${EXPERIMENTS_CLIENTS:-3 10}"
# EXPERIMENTS_LEVELS / EXPERIMENTS_CLIENTS narrow the grid (space-separated), e.g. "dir0.1 iid".
read -r -a LEVELS <<<"${EXPERIMENTS_LEVELS:-dir0.1 dir0.5 iid}"
# name strategy adapter: the paper's methods as rows of the same config.
METHODS=(
  "fedit fedit lora"
  "ffa-lora ffa lora"
  "fedsa-lora fedsa lora"
  "rslora fedit rslora"
  "fedsa-rslora fedsa rslora"
  "vera fedit vera"
  "fedsa-vera fedsa vera"
  "local local lora"
  # Not in the paper's table: FedSA-LoRA with the classification head aggregated too. FedSA
  # keeps the head on the client; this row separates what the personal B buys from what a
  # personal head buys under label skew.
  "fedsa-lora-shared-head fedsa-shared-head lora"
)
case "$SUBSET" in
  full) ;;
  small)
    # The grid docs/RESULTS.md reports: two levels, both client counts, about an hour here.
    # (1500 examples: fewer cannot give each of 10 clients 30 at Dirichlet alpha 0.1.)
    MAX_EXAMPLES=1500
    ROUNDS=4
    LOCAL_STEPS=5
    read -r -a LEVELS <<<"${EXPERIMENTS_LEVELS:-dir0.1 iid}"
    OUT=$OUT/small
    ;;
  tiny)
    MAX_EXAMPLES=300
    ROUNDS=2
    LOCAL_STEPS=3
    CLIENT_COUNTS=(3)
    LEVELS=(dir0.5)
    METHODS=("fedit fedit lora")
    OUT=$OUT/tiny
    ;;
  *)
    echo "EXPERIMENTS_SUBSET must be full, small or tiny, not '$SUBSET'" >&2
    exit 2
    ;;
esac

if [[ ! -f $MODEL/model.safetensors || ! -f $CORPUS ]]; then
  echo "missing $MODEL or $CORPUS: run scripts/fetch-assets first" >&2
  exit 1
fi
if [[ -z ${FEDSA:-} ]]; then
  cargo build --release -q -p fedsa-tui --bin fedsa
  FEDSA=target/release/fedsa
fi
mkdir -p "$OUT/configs" "$OUT/runs"

# The [partition] table of a heterogeneity level.
partition() {
  case "$1" in
    iid) printf 'kind = "iid"\n' ;;
    dir*) printf 'kind = "dirichlet"\nalpha = %s\nmin_examples = %s\n' "${1#dir}" "$2" ;;
  esac
}

# The [strategy] table of a method row's strategy.
strategy_table() {
  case "$1" in
    fedsa-shared-head)
      printf 'name = "custom"\naggregator = "fedavg"\n\n[strategy.roles]\n'
      printf 'a = { train = true, share = true }\nb = { train = true, share = false }\n'
      printf 'head = { train = true, share = true }\n'
      ;;
    *) printf 'name = "%s"\naggregator = "fedavg"\n' "$1" ;;
  esac
}

# Writes the config of one run to stdout: method row ($1 $2 $3), level ($4), clients ($5).
config() {
  local name=$1 strategy=$2 adapter=$3 level=$4 clients=$5
  local rank=8 lr=1e-3 sampled=$clients min_examples=50
  # VeRA needs a large rank (its projections are random and frozen) and a larger rate.
  if [[ $adapter == vera ]]; then rank=256 lr=1e-2; fi
  # Ten clients: three train per round, so a round costs what it costs with three.
  if ((clients > 3)); then sampled=3 min_examples=30; fi
  cat <<EOF
# Generated by experiments/small_grid.sh: $name at $level with $clients clients.
name = "$name-$level-c$clients"
seed = 42
device = "cpu"
output_dir = "$OUT/runs"

[model]
path = "$MODEL"
max_length = 64

[data]
format = "rotten_tomatoes"
path = "$CORPUS"
max_examples = $MAX_EXAMPLES
test_fraction = 0.2

[partition]
$(partition "$level" "$min_examples")

[federation]
num_clients = $clients
clients_per_round = $sampled
rounds = $ROUNDS

[training]
local_steps = $LOCAL_STEPS
batch_size = 16
eval_batch_size = 64
lr = $lr

[adapter]
kind = "$adapter"
rank = $rank
alpha = 16
dropout = 0.05
target_modules = ["query", "value"]

[strategy]
$(strategy_table "$strategy")
EOF
}

# Runs one config unless its run is complete; resumes an interrupted one.
run_one() {
  local run=$1 cfg=$OUT/configs/$1.toml dir=$OUT/runs/$1
  if [[ -f $dir/summary.json ]]; then
    echo "== $run: complete, skipped"
    return
  fi
  echo "== $run"
  local started=$SECONDS
  if [[ -f $dir/checkpoints/LATEST ]]; then
    "$FEDSA" run "$cfg" --resume
  else
    # A folder without a checkpoint holds nothing worth keeping.
    rm -rf -- "$dir"
    "$FEDSA" run "$cfg"
  fi
  echo "== $run: $((SECONDS - started)) s"
}

for clients in "${CLIENT_COUNTS[@]}"; do
  for level in "${LEVELS[@]}"; do
    runs=()
    for row in "${METHODS[@]}"; do
      read -r method strategy adapter <<<"$row"
      run="$method-$level-c$clients"
      config "$method" "$strategy" "$adapter" "$level" "$clients" >"$OUT/configs/$run.toml"
      if [[ $DRY == 1 ]]; then
        "$FEDSA" partition "$OUT/configs/$run.toml" >/dev/null && echo "== $run: config ok"
        continue
      fi
      run_one "$run"
      runs+=("$OUT/runs/$run")
    done
    [[ $DRY == 1 ]] && continue
    report=$OUT/compare-$level-c$clients
    "$FEDSA" compare "${runs[@]}" --png "$report.png" --json-out "$report.json" | tee "$report.txt"
  done
done

[[ $DRY == 1 ]] && exit 0

# The A/B asymmetry where both factors train on the clients: FedIT (one local round from its
# last checkpoint, as the paper measures) and local (the checkpoint against the common init).
for dir in "$OUT"/runs/fedit-* "$OUT"/runs/local-*; do
  [[ -f $dir/summary.json ]] || continue
  report=$OUT/analyze-$(basename "$dir")
  "$FEDSA" analyze "$dir" --png "$report.png" --json-out "$report.json" | tee "$report.txt"
done
echo "reports in $OUT/"
