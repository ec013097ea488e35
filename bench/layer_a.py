"""Layer A's latency on 2,000-character texts of several kinds, as its latency test measures it.

Run: `.venv/bin/python -m bench.layer_a [--kinds a,b]` (about 6 minutes for all kinds). For each
text, a process of its own evaluates it 20 times to warm up, then ten rounds of 200
evaluations a moment apart, in thread CPU time; a text's figure is its best round's p99.
The README's Layer A table is this command's output; `tests/guardrail/unit/test_layer_a.py`
asserts < 1 ms with the same measure on two benign texts.

Kinds, from the v9 sets (`tests/guardrail/sets`): one harmful post inside aligned posts,
the evaluation report's mixed texts (twelve v9-test posts each), fourteen harmful posts, and
fourteen disguised harmful posts.

`--stream` measures what a service sees instead: texts it has not seen before, each evaluated
once. A process evaluates 200 texts of v9-dev posts (the word cache, as a running worker has it),
then a stream of 400 texts of fourteen v9-test posts drawn at random, each once; three processes
read the same stream and a text's figure is its lowest (a busy neighbour adds to single
readings). Repeating one text, as the per-text measure does, would flatter anything that keeps
state from one evaluation to the next (a lazily built automaton, a cache keyed by content).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tooling.guardrail_eval import dataset
from tooling.guardrail_eval.report import latency_text

ROOT = Path(__file__).parents[1]
SETS = ROOT / "tests" / "guardrail" / "sets"

# Run in a process of its own: in a test session or an evaluation, other threads (the ONNX
# runtime's, event loops) and a large heap share the core and its caches, and would be measured.
MEASURE = """
import gc, json, sys, time
from services.guardrail.rules.engine import default_ruleset
text = sys.stdin.read()
rules = default_ruleset()
for _ in range(20):
    rules.evaluate(text)
gc.collect()
gc.freeze()  # as every service process does after start-up
rounds = []
for _ in range(10):
    time.sleep(0.2)
    samples = []
    for _ in range(200):
        started = time.thread_time()
        rules.evaluate(text)
        samples.append((time.thread_time() - started) * 1000.0)
    samples.sort()
    rounds.append(samples[int(len(samples) * 0.99) - 1])
print(json.dumps(rounds))
"""


def _measured(script: str, given: str, timeout: float) -> list[float]:
    """The figures (ms) `script` prints as JSON, run in a fresh process reading `given`."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=given,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
        cwd=ROOT,
    )
    figures: list[float] = json.loads(done.stdout)
    return figures


def p99_rounds(text: str) -> list[float]:
    """The p99 (ms) of each of ten rounds of 200 evaluations of `text`, in a fresh process."""
    return _measured(MEASURE, text, 120)


STREAM = """
import gc, json, sys, time
from services.guardrail.rules.engine import default_ruleset
texts = json.load(sys.stdin)
rules = default_ruleset()
for text in texts["warm"]:
    rules.evaluate(text)
gc.collect()
gc.freeze()
times = []
for text in texts["stream"]:
    started = time.thread_time()
    rules.evaluate(text)
    times.append((time.thread_time() - started) * 1000.0)
print(json.dumps(times))
"""
STREAM_TEXTS = 400
STREAM_READINGS = 3


def stream_times(warm: list[str], stream: list[str]) -> list[float]:
    """Each `stream` text's CPU time (ms), evaluated once in a fresh process after `warm`."""
    return _measured(STREAM, json.dumps({"warm": warm, "stream": stream}), 300)


def _streams() -> tuple[list[str], dict[str, list[str]]]:
    """The warm-up texts and, per kind, the stream (see the module docstring)."""
    dev = dataset.load(SETS / "v9-dev.jsonl")
    test = dataset.load(SETS / "v9-test.jsonl")
    rng = random.Random(2)  # noqa: S311  # a fixed sample of texts, not a secret

    def drawn(items: list[dataset.Item], count: int) -> list[str]:
        return [latency_text([i.text for i in rng.sample(items, 14)]) for _ in range(count)]

    harmful = [i for i in test if i.label == "harmful"]
    warm = drawn(dev, 200)
    return warm, {
        "any label": drawn(test, STREAM_TEXTS),
        "harmful": drawn(harmful, STREAM_TEXTS),
        "disguised harmful": drawn([i for i in harmful if i.obfuscation], STREAM_TEXTS),
    }


def _stream_table() -> None:
    warm, streams = _streams()
    print("| Stream of 2,000-character texts, each seen once | p50 | p90 | p99 | slowest |")
    print("| --- | --- | --- | --- | --- |")
    for name, stream in streams.items():
        readings = [stream_times(warm, stream) for _ in range(STREAM_READINGS)]
        best = sorted(min(text) for text in zip(*readings, strict=True))
        cut = [best[int(len(best) * q) - 1] for q in (0.5, 0.9, 0.99)]
        print(
            f"| {name} ({len(best)} texts) | "
            + " | ".join(f"{v:.2f} ms" for v in [*cut, best[-1]])
            + " |",
            flush=True,
        )


def _kinds() -> dict[str, Callable[[], list[str]]]:
    test = dataset.load(SETS / "v9-test.jsonl")
    items = dataset.load(SETS / "v9-dev.jsonl") + test
    harmful = [i for i in items if i.label == "harmful"]
    disguised = [i for i in harmful if i.obfuscation]
    aligned = [i.text for i in items if i.label == "aligned"]
    rng = random.Random(1)  # noqa: S311  # a fixed sample of texts, not a secret

    def inside_aligned(post: str) -> str:
        before, after = " ".join(rng.sample(aligned, 8)), " ".join(rng.sample(aligned, 8))
        half = (2000 - len(post)) // 2
        return f"{before[:half]} {post} {after}"[:2000]

    def runs(posts: list[dataset.Item], size: int, step: int) -> list[str]:
        """Texts of `size` consecutive posts, a window every `step` posts."""
        return [
            latency_text([i.text for i in posts[s : s + size]])
            for s in range(0, len(posts) - size + 1, step)
        ]

    return {
        "one harmful post inside aligned posts": lambda: [
            inside_aligned(h.text) for h in rng.sample(harmful, 12)
        ],
        "the evaluation report's mixed texts": lambda: [
            latency_text([i.text for i in test[s : s + 12]]) for s in range(0, len(test), 7)
        ],
        "fourteen harmful posts": lambda: runs(harmful, 14, 14)[:12],
        "fourteen disguised harmful posts": lambda: runs(disguised, 14, 4)[:12],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", help="comma-separated kind names (default: all)")
    parser.add_argument("--stream", action="store_true", help="texts seen once (see above)")
    args = parser.parse_args()
    if args.stream:
        _stream_table()
        return
    kinds = _kinds()
    chosen = args.kinds.split(",") if args.kinds else list(kinds)
    print("| Texts | p99, median over the texts | slowest text | texts over 1 ms |")
    print("| --- | --- | --- | --- |")
    for name in chosen:
        texts = kinds[name]()
        bests = sorted(min(p99_rounds(text)) for text in texts)
        print(
            f"| {name} ({len(texts)} texts) | {statistics.median(bests):.2f} ms "
            f"| {bests[-1]:.2f} ms | {sum(b >= 1.0 for b in bests)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
