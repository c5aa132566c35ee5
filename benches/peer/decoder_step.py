"""PyTorch + PEFT peer of fedsa's `decoder_step` bench: one AdamW step of a SmolLM2-shaped
causal LM with LoRA.

Random weights of SmolLM2-135M's shape (30 layers, hidden 576, 9 heads sharing 3 key/value
heads, intermediate 1536, vocabulary 49152, tied embeddings, rope theta 1e5; no download), LoRA
r=8 alpha=16 dropout 0.05 on q_proj/v_proj, AdamW(lr=1e-3, weight_decay=0.01) as fedsa's
default, gradient clipping at 1.0, train mode, 2 threads. A batch of 4 sequences of 96 tokens
whose first 40 (the prompt) are masked out of the loss (label -100). A timed step is forward +
backward + clip + optimizer step + zero_grad; warm-up steps, then the median of the timed steps
and the peak resident set (VmHWM).

Needs: pip install torch transformers peft  (see benches/peer/run.sh)
Run:   python3 benches/peer/decoder_step.py [--threads 2] [--steps 10] [--json]
"""

import argparse
import json
import statistics
import time

BATCH, PROMPT, SEQ = 4, 40, 96


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        intermediate_size=1536,
        max_position_embeddings=256,
        rope_theta=100000.0,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(100, 40100, (BATCH, SEQ), generator=g)
    labels = ids.clone()
    labels[:, :PROMPT] = -100

    def step():
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    result = {"median_s": statistics.median(times), "peak_kib": status_kib("VmHWM")}
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
