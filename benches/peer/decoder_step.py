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

from peer_common import arguments, median_seconds, report, smollm2_config

BATCH, PROMPT, SEQ = 4, 40, 96


def main():
    args = arguments("steps", 10, 2)

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = smollm2_config()
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

    report({"median_s": median_seconds(step, args.warmup, args.repeats)}, args.json)


if __name__ == "__main__":
    main()
