#!/usr/bin/env bash
# Side-by-side decoder training-step benchmark: fedsa (the criterion `decoder_step` bench)
# against PyTorch + PEFT (benches/peer/decoder_step.py) on the same SmolLM2-135M shape, LoRA,
# batch (4 x 96, a 40-token prompt masked out of the loss), optimizer and thread count. Prints
# each side's median step time, the ratio fedsa / PyTorch and both peak resident sets.
#
# The peer's Python packages: see benches/peer/run.sh. Run (a few minutes on 2 cores):
#   PYTHON=.venv-peer/bin/python benches/peer/decoder_step.sh
# THREADS (default 2) sets both sides' thread count. Keep other jobs off the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS
CRITERION_DIR=${CARGO_TARGET_DIR:-target}/criterion/decoder_step

echo "load before: $(uptime)"
fedsa=$(cargo bench -p fedsa-adapters --bench decoder_step -- \
    --warm-up-time 2 --measurement-time 20 --sample-size 10 | tee /dev/stderr)
peer=$("$PYTHON" benches/peer/decoder_step.py --threads "$THREADS" --json)
echo "load after:  $(uptime)"

FEDSA_PEAK=$(grep -o 'peak resident set [0-9]*' <<<"$fedsa" | grep -o '[0-9]*$') \
    PEER="$peer" "$PYTHON" - "$CRITERION_DIR" <<'EOF'
import json, os, sys

with open(os.path.join(sys.argv[1], "4x96", "new", "estimates.json")) as f:
    fedsa = json.load(f)["median"]["point_estimate"] / 1e9
peer = json.loads(os.environ["PEER"])
print()
print(f"decoder step 4x96: fedsa {fedsa:.3f} s, PyTorch {peer['median_s']:.3f} s, "
      f"fedsa / PyTorch {fedsa / peer['median_s']:.2f}; "
      f"peak resident set: fedsa {int(os.environ['FEDSA_PEAK']) / 1024:.0f} MiB, "
      f"PyTorch {peer['peak_kib'] / 1024:.0f} MiB")
EOF
