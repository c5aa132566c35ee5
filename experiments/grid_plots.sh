#!/usr/bin/env bash
# The `fedsa compare` plots of docs/RESULTS.md's comparison grid, drawn from the committed
# results (experiments/results/grid/) into docs/results/grid-compare-*.png: per setting, its
# methods at seed 1. One seed per plot, so the curves show how the runs learn round by round;
# the tables carry the spread over seeds. A plot whose seed-1 runs are not all in is skipped.
# experiments/run.sh calls this after the tables.
#
#   FEDSA=target/debug/fedsa experiments/grid_plots.sh   # another build of the binary
#   GRID_PLOTS_OUT=experiments/out/plots experiments/grid_plots.sh   # another folder
#   GRID_RESULTS=...                                     # another results folder
# Relative paths are from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
FEDSA="${FEDSA:-target/release/fedsa}"
if [[ ! -x $FEDSA ]]; then
  echo "grid_plots: no fedsa binary at $FEDSA (build it, or set FEDSA)" >&2
  exit 1
fi
RESULTS="${GRID_RESULTS:-experiments/results/grid}"
OUT="${GRID_PLOTS_OUT:-docs/results}"
mkdir -p "$OUT"
PAPER=(fedit-lora ffa-lora fedsa-lora local-lora)
NEWER=(fedit-lora fedsa-lora fedex-lora rolora fedsvd feddpa)
PRIVATE=(fedit-lora ffa-lora fedsa-lora)

plot() { # plot NAME SETTING METHOD...
  local name=$1 setting=$2 runs=() m
  shift 2
  for m in "$@"; do
    [[ -f $RESULTS/$m-$setting-s1/metrics.jsonl ]] || return 0
    runs+=("$RESULTS/$m-$setting-s1")
  done
  "$FEDSA" compare "${runs[@]}" --png "$OUT/grid-compare-$name.png" >/dev/null
}

for setting in dir0.5-c3 dir0.1-c3 iid-c3 key-c3 dir0.5-c10; do
  plot "$setting" "$setting" "${PAPER[@]}"
done
plot newer-dir0.5-c3 dir0.5-c3 "${NEWER[@]}"
plot dp1 dir0.5-c10-dp1 "${PRIVATE[@]}"
plot generation gen-dir0.5-c3 "${PRIVATE[@]}"
