#!/usr/bin/env bash
# Side-by-side training-step benchmark: fedsa (the criterion `train_step` bench and the
# `step_memory` bench) against a PyTorch + PEFT peer (benches/peer/train_step.py) of the same
# shape, batch, optimizer and thread count. Prints, per batch shape 16x32, 16x64 and 32x64:
# the median step time of each, the ratio fedsa / PyTorch, and each one's peak resident set.
#
# The peer's Python packages (PyPI only; the default torch wheel is the CUDA build, about 5 GB,
# and runs on CPU):
#   python3 -m venv .venv-peer && .venv-peer/bin/pip install torch transformers peft
# Run (from anywhere; a few minutes on 2 cores):
#   PYTHON=.venv-peer/bin/python benches/peer/run.sh
# PYTHON defaults to python3. THREADS (default 2) sets both sides' thread count: candle through
# RAYON_NUM_THREADS, PyTorch through torch.set_num_threads. Timings share the machine: keep other
# jobs off it (the load average is printed before and after). Peaks are whole-process VmHWM; the
# last column gives each process's resident set once the model is built (PyTorch's includes
# the torch/transformers/peft libraries, printed separately as "imports").
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
export RAYON_NUM_THREADS=$THREADS
SIZES=(16x32 16x64 32x64)
CRITERION_DIR=${CARGO_TARGET_DIR:-target}/criterion/train_step

echo "load before: $(uptime)"
cargo bench -p fedsa-adapters --bench train_step -- \
    --warm-up-time 2 --measurement-time 15 --sample-size 10
mem=""
for s in "${SIZES[@]}"; do
    mem+="$(cargo bench -p fedsa-adapters --bench step_memory -- "$s" | grep "^$s ")"$'\n'
done
peer=$("$PYTHON" benches/peer/train_step.py --sizes "$(IFS=,; echo "${SIZES[*]}")" \
    --threads "$THREADS" --json)
echo "load after:  $(uptime)"

FEDSA_MEM="$mem" PEER="$peer" "$PYTHON" - "$CRITERION_DIR" "${SIZES[@]}" <<'EOF'
import json, os, sys

crit, sizes = sys.argv[1], sys.argv[2:]
mem = {}
for line in os.environ["FEDSA_MEM"].split("\n"):
    if line.strip():
        size, *kv = line.split()
        mem[size] = {k: int(v) for k, v in (x.split("=") for x in kv)}
peer = {r["size"]: r for r in map(json.loads, os.environ["PEER"].strip().splitlines())}
print()
print("size    fedsa s  PyTorch s  fedsa/PyTorch  fedsa peak MiB  PyTorch peak MiB"
      "  (built: fedsa / PyTorch MiB; imports)")
for s in sizes:
    with open(os.path.join(crit, s, "new", "estimates.json")) as f:
        fedsa = json.load(f)["median"]["point_estimate"] / 1e9
    p = peer[s]
    print(f"{s:<7} {fedsa:>7.4f}  {p['median_s']:>9.4f}  {fedsa / p['median_s']:>13.2f}"
          f"  {mem[s]['peak_kib'] / 1024:>14.1f}  {p['peak_kib'] / 1024:>16.1f}"
          f"  ({mem[s]['build_kib'] / 1024:.1f} / {p['build_kib'] / 1024:.1f};"
          f" {p['import_kib'] / 1024:.1f})")
EOF
