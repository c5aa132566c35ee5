#!/usr/bin/env python3
"""Loads a classification `fedsa export` folder in Python and prints each label's probability
for the given texts in the layout of `fedsa predict`, so the two can be compared line by line.
Either kind of export, as its fedsa_export.json says:

- kind "peft": the base model the record names, the frozen-weight corrections of
  fedsa_base_delta.safetensors added when the export has them (FedEx-LoRA, FLoRA), then the
  adapter with PeftModel.from_pretrained;
- kind "merged": the folder alone, with AutoModelForSequenceClassification (no PEFT).

Needs: pip install torch transformers peft safetensors

Usage: scripts/export-check.py EXPORT_DIR MAX_LENGTH TEXT...
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


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    export, max_length, texts = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
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
