"""Random-weight BERT folders and a long-text CSV for scripts/gpu-check, made with the local
transformers (no download): `tiny-bert` (2 layers, hidden 64) for the parity run, and
`bert-large` (24 layers, hidden 1024, 16 heads, intermediate 4096: BERT-large's shape) or, for
the dry run, `bert-mini` (MiniLM's shape: 6 layers, hidden 384) for the timing. Each folder gets
the carried tokenizer (tokenizer.json, vocab.txt: BERT's uncased vocabulary of 30522).
`long.csv` holds texts of 200 random vocabulary words, so that every example tokenizes past 128
tokens, with alternating labels.

Usage: python3 scripts/gpu_check_models.py WORK TOKENIZER_DIR {large|mini}
"""
import random
import shutil
import sys
from pathlib import Path

SHAPES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    "mini": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
DESCRIPTION = {
    "tiny": "random 2-layer BERT (hidden 64)",
    "mini": "random MiniLM-shaped BERT (6 layers, hidden 384)",
    "large": "random BERT-large-shaped model (24 layers, hidden 1024, 16 heads)",
}


def make(folder: Path, shape: str, tokenizer: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, **SHAPES[shape])
    model = BertModel(config, add_pooling_layer=True)
    model.save_pretrained(folder, safe_serialization=True)
    # A note for the report; fedsa ignores keys it does not know in config.json.
    import json

    cfg = json.loads((folder / "config.json").read_text())
    cfg["_fedsa_shape"] = DESCRIPTION[shape]
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    for name in ("tokenizer.json", "vocab.txt"):
        shutil.copy(tokenizer / name, folder / name)


def main() -> None:
    work, tokenizer, shape = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    work.mkdir(parents=True, exist_ok=True)
    make(work / "tiny-bert", "tiny", tokenizer)
    make(work / f"bert-{shape}", shape, tokenizer)
    words = [w for w in (tokenizer / "vocab.txt").read_text().split("\n") if w.isalpha()]
    rng = random.Random(0)
    with open(work / "long.csv", "w") as f:
        f.write("text,label\n")
        for i in range(1000):
            f.write(" ".join(rng.choice(words) for _ in range(200)) + f",{i % 2}\n")


if __name__ == "__main__":
    main()
