"""PyTorch + PEFT peer of fedsa's `train_step` bench: one AdamW step of a MiniLM-shaped BERT.

Random weights (6 layers, hidden 384, 12 heads, intermediate 1536, vocabulary 30522, no
download), LoRA r=8 alpha=16 dropout 0.05 on query/value, sequence classification with 2
labels, pooler + classifier trainable (fedsa's BERT head), AdamW(lr=5e-4, weight_decay=0.01),
gradient clipping at 1.0, train mode, 2 threads. A timed step is forward + backward + clip +
optimizer step + zero_grad. Per batch shape: warm-up steps, then the median of the timed steps,
and the peak resident set (VmHWM), each shape in a fresh subprocess so peaks do not mix.

Like fedsa's encoder, the frozen BERT body has no dropout (hidden/attention dropout 0); the head
keeps dropout 0.1 before the classifier. `--body-dropout 0.1` gives Hugging Face's defaults.

`--model-dir DIR` takes the shape (and weights) of a Hugging Face BERT folder instead of the
MiniLM shape, and `--device cuda` runs on the GPU: each step is then synchronised before its
time is read, and the JSON line adds torch's peak allocated and reserved GPU memory
(scripts/gpu-check uses both).

Needs: pip install torch transformers peft  (see benches/peer/run.sh)
Run:   python3 benches/peer/train_step.py [--sizes 16x32,16x64,32x64] [--steps 10] [--warmup 3]
"""

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = "16x32,16x64,32x64"


def status_kib(field):
    """A /proc/self/status field (VmRSS, VmHWM) in KiB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child(size, args):
    """Times one batch shape in this process; prints one JSON line."""
    import resource

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification

    import_kib = status_kib("VmRSS")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch, seq = (int(x) for x in size.split("x"))
    device = torch.device(args.device)
    if args.model_dir:
        model = BertForSequenceClassification.from_pretrained(
            args.model_dir,
            num_labels=2,
            hidden_dropout_prob=args.body_dropout,
            attention_probs_dropout_prob=args.body_dropout,
            classifier_dropout=0.1,
        )
    else:
        model = None
    config = model.config if model is not None else BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        num_labels=2,
        hidden_dropout_prob=args.body_dropout,
        attention_probs_dropout_prob=args.body_dropout,
        classifier_dropout=0.1,
    )
    if model is None:
        model = BertForSequenceClassification(config)
    lora = LoraConfig(
        task_type="SEQ_CLS",
        r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=["query", "value"],
        modules_to_save=["classifier", "pooler"],
    )
    model = get_peft_model(model, lora).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)

    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1000, 21000, (batch, seq), generator=g).to(device)
    token_type_ids = torch.zeros_like(input_ids)
    attention_mask = torch.ones_like(input_ids)
    labels = (torch.arange(batch) % 2).to(device)
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)
    build_kib = status_kib("VmRSS")

    def step():
        out = model(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            attention_mask=attention_mask,
            labels=labels,
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()

    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
    peak = status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu = {}
    if cuda:
        gpu = {
            "device_name": torch.cuda.get_device_name(device),
            "gpu_max_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20,
            "gpu_max_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20,
        }
    print(
        json.dumps(
            {
                **gpu,
                "size": size,
                "median_s": median,
                "min_s": times[0],
                "max_s": times[-1],
                "import_kib": import_kib,
                "build_kib": build_kib,
                "peak_kib": peak,
                "trainable": sum(p.numel() for p in params),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=SIZES, help="comma-separated BxS shapes")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--body-dropout", type=float, default=0.0)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--model-dir", help="a Hugging Face BERT folder (shape and weights)")
    ap.add_argument("--json", action="store_true", help="one JSON line per shape")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args)
        return
    rows = []
    for size in args.sizes.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", size]
        cmd += ["--warmup", str(args.warmup), "--steps", str(args.steps)]
        cmd += ["--threads", str(args.threads), "--body-dropout", str(args.body_dropout)]
        cmd += ["--device", args.device] + (["--model-dir", args.model_dir] if args.model_dir else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if args.json:
        return
    r0 = rows[0]
    print(f"PyTorch {r0['torch']}, {r0['threads']} threads, {r0['trainable']} trainable parameters")
    print("size    median s   min s    max s    import MiB  build MiB  peak MiB")
    for r in rows:
        print(
            f"{r['size']:<7} {r['median_s']:>8.4f} {r['min_s']:>8.4f} {r['max_s']:>8.4f}"
            f" {r['import_kib'] / 1024:>11.1f} {r['build_kib'] / 1024:>10.1f}"
            f" {r['peak_kib'] / 1024:>9.1f}"
        )


if __name__ == "__main__":
    main()
