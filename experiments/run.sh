#!/usr/bin/env bash
# The comparison grid (experiments/grid.py: its header has the cells, the budget and why):
# every method on the same data, partitions, seeds and budget, run in priority order, each
# finished cell's small outputs copied into experiments/results/grid/<run>/ for committing,
# then the tables of docs/RESULTS.md regenerated from what is there (experiments/grid_report.py)
# and its plots redrawn (experiments/grid_plots.sh).
# Resumable: finished cells are skipped, an interrupted one resumes from its checkpoint.
#
#   scripts/fetch-assets                       # once: the model and corpus
#   scripts/fetch-assets generation            # once more, for the generation cells (SmolLM2)
#   experiments/run.sh                         # every cell not yet done (hours: see grid.py)
#   experiments/run.sh dir0.5-c3               # only the cells whose name holds this
#   GRID_LIMIT=4 experiments/run.sh            # stop after 4 newly finished cells
#   EXPERIMENTS_DRY=1 experiments/run.sh       # write and check every config; train nothing
#   FEDSA=target/debug/fedsa experiments/run.sh   # another build of the binary
#
# The hour-long grid of the earlier docs/RESULTS.md sections is experiments/small_grid.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=assets/all-MiniLM-L6-v2
CORPUS=assets/rotten_tomatoes/rotten_tomatoes_corpus_full.csv
if [[ ! -f $MODEL/model.safetensors || ! -f $CORPUS ]]; then
  echo "missing $MODEL or $CORPUS: run scripts/fetch-assets first" >&2
  exit 1
fi
if [[ -z ${FEDSA:-} ]]; then
  cargo build --release -q -p fedsa-tui --bin fedsa
  export FEDSA=target/release/fedsa
fi
if [[ ${EXPERIMENTS_DRY:-0} == 1 ]]; then
  exec python3 experiments/grid.py check "$@"
fi
status=0
python3 experiments/grid.py run "$@" || status=$?
python3 experiments/grid_report.py >/dev/null
experiments/grid_plots.sh || echo "run.sh: the plots were not redrawn (experiments/grid_plots.sh)" >&2
exit "$status"
