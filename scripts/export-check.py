#!/usr/bin/env python3
"""Loads a `fedsa export` folder in Python and prints what fedsa prints for the same inputs, so
the two can be compared line by line: for a classification export each label's probability
for every text (the layout of `fedsa predict`), for a generation export the greedy
continuation of every prompt (the layout of `fedsa generate`). Either kind of export, as its
fedsa_export.json says:

- kind "peft": the base model the record names (a GGUF base through transformers'
  `gguf_file=`, which dequantizes it as fedsa does), the frozen-weight corrections of
  fedsa_base_delta.safetensors added when the export has them (FedEx-LoRA, FLoRA), then the
  adapter with PeftModel.from_pretrained;
- kind "merged": the folder alone (no PEFT); a generation export of a GGUF base takes its
  tokenizer from the GGUF, as the record says.

Needs: pip install torch transformers peft safetensors (and gguf for a GGUF base)
(It replaces the earlier peft-check.py, which took the base folder as an argument.)

Usage: scripts/export-check.py EXPORT_DIR MAX_LENGTH TEXT...   (MAX_LENGTH: classification;
       for generation it is the number of new tokens, as `fedsa generate --max-new-tokens`)
"""
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def load(export: Path, labels: list) -> tuple:
    record = json.loads((export / "fedsa_export.json").read_text())
    if record["kind"] == "merged":
        model = AutoModelForSequenceClassification.from_pretrained(str(export))
        return model.eval(), AutoTokenizer.from_pretrained(str(export))
    from peft import PeftModel

    base = record["base_loader"]["folder"]
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(labels))
    deltas = export / "fedsa_base_delta.safetensors"
    if deltas.exists():
        from safetensors.torch import load_file

        state = model.state_dict()
        with torch.no_grad():
            for name, delta in load_file(str(deltas)).items():
                state[name].add_(delta)
    model = PeftModel.from_pretrained(model, str(export))
    return model.eval(), AutoTokenizer.from_pretrained(base)


def base_args(record: dict) -> tuple:
    """The folder and keyword arguments that load the record's base with transformers."""
    loader = record["base_loader"]
    if loader["format"] == "gguf":
        return loader["folder"], {"gguf_file": loader["gguf_file"]}
    return loader["folder"], {}


def generate(export: Path, record: dict, max_new_tokens: int, prompts: list) -> None:
    from transformers import AutoModelForCausalLM

    folder, kwargs = base_args(record)
    if record["kind"] == "merged":
        model = AutoModelForCausalLM.from_pretrained(str(export), torch_dtype=torch.float32)
        if (export / "tokenizer.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(str(export))
        else:
            tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    else:
        from peft import PeftModel

        model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, **kwargs)
        model = PeftModel.from_pretrained(model, str(export))
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    model.eval()
    fmt = record["prompt_format"]
    stop = fmt["stop_token_ids"]
    torch.set_num_threads(2)
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer.encode(fmt["template"].replace("{prompt}", prompt, 1), add_special_tokens=False)
            if fmt["bos_token_id"] is not None:
                ids = [fmt["bos_token_id"]] + ids
            out = model.generate(
                torch.tensor([ids]),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=stop[0],
            )[0][len(ids):].tolist()
            out = [t for t in out if t not in stop]
            print(prompt)
            print(f"  -> {tokenizer.decode(out, skip_special_tokens=True).strip()}")


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    export, max_length, texts = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    record = json.loads((export / "fedsa_export.json").read_text())
    if record["task"] == "generation":
        generate(export, record, max_length, texts)
        return
    labels = json.loads((export / "fedsa_labels.json").read_text())
    model, tokenizer = load(export, labels)
    torch.set_num_threads(2)
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            probs = torch.softmax(model(**enc).logits[0], dim=-1).tolist()
            best = max(range(len(probs)), key=probs.__getitem__)
            print(text)
            for i, (label, p) in enumerate(zip(labels, probs)):
                mark = "*" if i == best else " "
                print(f"  {mark} {label:<12} {p:.4f}")


if __name__ == "__main__":
    main()
