#!/usr/bin/env bash
# Side-by-side evaluation benchmark: fedsa (the criterion `evaluate` bench) against PyTorch +
# PEFT (benches/peer/evaluate.py) on the same MiniLM-shaped model shape, LoRA, 512 examples,
# eval batch and thread count. Prints the median time of one pass over the 512 examples for
# fedsa's evaluation and its tracked forward, and for PyTorch in the given and in length order;
# the ratios fedsa / PyTorch; each side's peak resident set.
#
# The peer's Python packages: see benches/peer/run.sh. Run (a few minutes on 2 cores):
#   PYTHON=.venv-peer/bin/python benches/peer/evaluate.sh
# THREADS (default 2) sets both sides' thread count. Keep other jobs off the machine (the load
# average is printed before and after).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS
CRITERION_DIR=${CARGO_TARGET_DIR:-target}/criterion/evaluate

echo "load before: $(uptime)"
fedsa=$(cargo bench -p fedsa-adapters --bench evaluate -- \
    --warm-up-time 2 --measurement-time 20 --sample-size 10 | tee /dev/stderr)
peer=$("$PYTHON" benches/peer/evaluate.py --threads "$THREADS" --json)
echo "load after:  $(uptime)"

FEDSA_PEAK=$(grep -o 'peak resident set [0-9]*' <<<"$fedsa" | grep -o '[0-9]*$') \
    PEER="$peer" "$PYTHON" - "$CRITERION_DIR" <<'EOF'
import json, os, sys

crit = sys.argv[1]
peer = json.loads(os.environ["PEER"])
def fedsa(case):
    with open(os.path.join(crit, case, "new", "estimates.json")) as f:
        return json.load(f)["median"]["point_estimate"] / 1e9
ours, tracked = fedsa("512"), fedsa("512_tracked")
print()
print(f"fedsa evaluate (untracked, length order): {ours:.3f} s  ({512 / ours:.0f} examples/s)")
print(f"fedsa tracked eval forward, same batches:  {tracked:.3f} s  (untracked / tracked "
      f"{ours / tracked:.2f})")
for order in ("given", "sorted"):
    p = peer[order]
    print(f"PyTorch, {order:<6} order:                  {p:.3f} s  (fedsa / PyTorch "
          f"{ours / p:.2f})")
print(f"peak resident set: fedsa {int(os.environ['FEDSA_PEAK']) / 1024:.0f} MiB, "
      f"PyTorch {peer['peak_kib'] / 1024:.0f} MiB")
EOF
