"""PyTorch + PEFT peer of fedsa's `evaluate` bench: forward-only evaluation of a MiniLM-shaped
BERT classifier with LoRA r=8 alpha=16 on query/value (random weights: 6 layers, hidden 384, 12
heads, intermediate 1536, vocabulary 30522, 2 labels; no download), eval mode under
`torch.inference_mode()`, 2 threads. The 512 examples of fedsa's bench (example i has
8 + 37 i mod 57 tokens, label i mod 2), in batches of 64 padded to the batch's longest with an
attention mask; logits, loss and argmax read back per batch, as an evaluation loop does.
Two orders: `given` (the examples as they come, what a plain DataLoader does) and `sorted` (in
length order, as fedsa batches them). Per order: warm-up passes, then the median of the timed
passes; the peak resident set (VmHWM) after both.

Needs: pip install torch transformers peft  (see benches/peer/run.sh)
Run:   python3 benches/peer/evaluate.py [--threads 2] [--passes 5] [--json]
"""

from peer_common import arguments, median_seconds, report

EXAMPLES = 512
EVAL_BATCH = 64


def main():
    args = arguments("passes", 5, 1)

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    lora = LoraConfig(
        task_type="SEQ_CLS",
        r=8,
        lora_alpha=16,
        target_modules=["query", "value"],
        modules_to_save=["classifier", "pooler"],
    )
    model = get_peft_model(model, lora)
    model.eval()
    examples = [
        [1000 + (131 * i + 17 * j) % 20000 for j in range(8 + (37 * i) % 57)]
        for i in range(EXAMPLES)
    ]
    labels = [i % 2 for i in range(EXAMPLES)]

    def batches(order):
        out = []
        for start in range(0, EXAMPLES, EVAL_BATCH):
            rows = order[start:start + EVAL_BATCH]
            width = max(len(examples[i]) for i in rows)
            ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, : len(examples[i])] = torch.tensor(examples[i])
                mask[r, : len(examples[i])] = 1
            out.append((ids, mask, torch.tensor([labels[i] for i in rows])))
        return out

    orders = {
        "given": list(range(EXAMPLES)),
        "sorted": sorted(range(EXAMPLES), key=lambda i: len(examples[i])),
    }
    results = {}
    with torch.inference_mode():
        for name, order in orders.items():
            data = batches(order)

            def run():
                for ids, mask, y in data:
                    out = model(
                        input_ids=ids,
                        token_type_ids=torch.zeros_like(ids),
                        attention_mask=mask,
                        labels=y,
                    )
                    out.loss.item()
                    out.logits.argmax(-1).tolist()

            results[name] = median_seconds(run, args.warmup, args.repeats)
    report(results, args.json)


if __name__ == "__main__":
    main()
