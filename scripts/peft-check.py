#!/usr/bin/env python3
"""Loads a `fedsa export` folder with Hugging Face PEFT on its base model and prints each
label's probability for the given texts, in the same layout as `fedsa predict`, so the two can
be compared side by side.

Needs: pip install torch transformers peft safetensors

Usage: scripts/peft-check.py EXPORT_DIR BASE_MODEL_DIR MAX_LENGTH TEXT...
"""
import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    export, base, max_length, texts = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    labels = json.loads((export / "fedsa_labels.json").read_text())
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(labels))
    model = PeftModel.from_pretrained(model, str(export)).eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
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
