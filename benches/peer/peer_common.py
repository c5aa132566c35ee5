"""What the PyTorch peers of the generation, evaluation and decoder-step benches share: the
command line, the timing loop, the peak resident set and SmolLM2-135M's shape."""

import argparse
import json
import statistics
import time


def status_kib(field):
    """A /proc/self/status field (VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def arguments(repeats, default, warmup):
    """--threads, --<repeats> (timed repetitions), --warmup and --json."""
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(f"--{repeats}", dest="repeats", type=int, default=default)
    p.add_argument("--warmup", type=int, default=warmup)
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def median_seconds(run, warmup, repeats):
    """The median wall time of `repeats` calls of `run` after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def smollm2_config(**extra):
    """A transformers LlamaConfig of SmolLM2-135M's shape, as fedsa's benches build it."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        intermediate_size=1536,
        max_position_embeddings=256,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        **extra,
    )


def report(results, as_json):
    """`results` plus the peak resident set, as one JSON line or one line per entry."""
    results = {**results, "peak_kib": status_kib("VmHWM")}
    if as_json:
        print(json.dumps(results))
    else:
        for name, value in results.items():
            print(f"{name}: {value}")
