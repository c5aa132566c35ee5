"""PyTorch + PEFT peer of fedsa's `generate` bench: greedy generation with `model.generate`.

Random weights of SmolLM2-135M's shape (30 layers, hidden 576, 9 heads sharing 3 key/value
heads, intermediate 1536, vocabulary 49152, tied embeddings, rope theta 1e5; no download), LoRA
r=8 alpha=16 on q_proj/v_proj (unmerged, as fedsa runs it), eval mode, no gradients. 32 new
tokens after each prompt (min_new_tokens = max_new_tokens and no EOS, so every call generates
exactly batch x 32 tokens), the prompt lengths of fedsa's bench (12 to 26 tokens), left
padding with an attention mask for the batch of 8. Per case: warm-up calls, then the median of
the timed calls; the process's peak resident set (VmHWM) after all cases.

Needs: pip install torch transformers peft  (see benches/peer/run.sh)
Run:   python3 benches/peer/generate.py [--threads 2] [--calls 5] [--json]
"""

from peer_common import arguments, median_seconds, report, smollm2_config

PROMPT_LENGTHS = [12, 26, 17, 20, 14, 23, 19, 16]
NEW_TOKENS = 32


def main():
    args = arguments("calls", 5, 1)

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = smollm2_config(bos_token_id=1, eos_token_id=None, pad_token_id=0)
    model = LlamaForCausalLM(config)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    )
    model.eval()
    gen = torch.Generator().manual_seed(2)
    prompts = [torch.randint(100, 40100, (n,), generator=gen) for n in PROMPT_LENGTHS]

    def batch_of(rows):
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = r
            mask[i, width - len(r):] = 1
        return ids, mask

    def call(rows):
        ids, mask = batch_of(rows)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=False,
            pad_token_id=0,
        )
        assert out.shape[1] == ids.shape[1] + NEW_TOKENS

    cases = {
        "batch1": lambda: call(prompts[:1]),
        "batch8": lambda: call(prompts),
        "batch8_one_by_one": lambda: [call([p]) for p in prompts],
    }
    with torch.inference_mode():
        results = {name: median_seconds(run, args.warmup, args.repeats) for name, run in cases.items()}
    report(results, args.json)


if __name__ == "__main__":
    main()
