#!/usr/bin/env bash
# Side-by-side greedy-generation benchmark: fedsa (the criterion `generate` bench) against
# `transformers`' `model.generate` + PEFT (benches/peer/generate.py) on the same shapes (a
# random SmolLM2-135M-shaped model, LoRA r=8 on q/v), prompts, 32 new tokens and thread count.
# Prints, for one prompt, eight prompts as one batch and eight prompts one call each: the median
# call time of each side, the ratio fedsa / PyTorch, tokens per second, and each side's peak
# resident set.
#
# The peer's Python packages: see benches/peer/run.sh. Run (a few minutes on 2 cores):
#   PYTHON=.venv-peer/bin/python benches/peer/generate.sh
# THREADS (default 2) sets both sides' thread count. Keep other jobs off the machine (the load
# average is printed before and after).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS
CRITERION_DIR=${CARGO_TARGET_DIR:-target}/criterion/generate

echo "load before: $(uptime)"
fedsa=$(cargo bench -p fedsa-adapters --bench generate -- \
    --warm-up-time 2 --measurement-time 20 --sample-size 10 | tee /dev/stderr)
peer=$("$PYTHON" benches/peer/generate.py --threads "$THREADS" --json)
echo "load after:  $(uptime)"

FEDSA_PEAK=$(grep -o 'peak resident set [0-9]*' <<<"$fedsa" | grep -o '[0-9]*$') \
    PEER="$peer" "$PYTHON" - "$CRITERION_DIR" <<'EOF'
import json, os, sys

crit = sys.argv[1]
peer = json.loads(os.environ["PEER"])
tokens = {"batch1": 32, "batch8": 8 * 32, "batch8_one_by_one": 8 * 32}
print()
print("case               fedsa s  PyTorch s  fedsa/PyTorch  fedsa tok/s  PyTorch tok/s")
for case, n in tokens.items():
    with open(os.path.join(crit, case, "new", "estimates.json")) as f:
        fedsa = json.load(f)["median"]["point_estimate"] / 1e9
    p = peer[case]
    print(f"{case:<18} {fedsa:>7.3f}  {p:>9.3f}  {fedsa / p:>13.2f}  {n / fedsa:>11.1f}"
          f"  {n / p:>13.1f}")
print(f"peak resident set: fedsa {int(os.environ['FEDSA_PEAK']) / 1024:.0f} MiB, "
      f"PyTorch {peer['peak_kib'] / 1024:.0f} MiB")
EOF
