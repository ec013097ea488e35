"""`python -m tooling.guardrail_eval --dev PATH [--dev PATH] --test PATH [--out FILE]`: the
guardrail's report.

Each half (development halves first, then the frozen test sets) runs through Layer A (the rule
set), Layer B (the local classifier, or Claude when ANTHROPIC_API_KEY is set) and the decision of
the worker for a trusted (VERIFIED) author. A test half is frozen: read its numbers, never tune on
them. A development half that is not yet among the training posts is a measurement too, once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.guardrail.classifier.base import Classifier
from services.guardrail.rules.engine import default_ruleset
from tooling.guardrail_eval import dataset, report, runner


def _classifier() -> Classifier:
    from services.guardrail.classifier.local import LocalClassifier

    classifier = LocalClassifier()
    classifier.load()
    return classifier


async def _run(args: argparse.Namespace) -> list[str]:
    rules = default_ruleset()
    classifier = _classifier()
    lines = [
        "# Guardrail evaluation",
        "",
        f"Rule set {rules.version}; Layer B `{classifier.name}`; trusted (VERIFIED) author. "
        "Shares are k/n with a 95 % Wilson interval. The learned parts (Layer A's intent check, "
        "Layer B's intent head) are fitted on the training posts (`make guardrail-fit`): on a "
        "development half among them the numbers are in-sample; on one not yet trained on, and "
        "on the frozen test set, they are a measurement.",
        "",
    ]
    everything = []
    halves = [("Development half", path) for path in args.dev]
    halves += [("Frozen test set", path) for path in args.test]
    for name, path in halves:
        items = dataset.load(path)
        everything += items
        results = await runner.evaluate(items, rules, classifier)
        lines += report.markdown(f"{name} ({path.name})", results)
        lines.append("")
    speed = report.latency(rules, everything)
    lines.append(
        f"Layer A on {report.LATENCY_CHARS}-character texts: p50 {speed['p50']:.3f} ms, "
        f"p99 {speed['p99']:.3f} ms ({report.LATENCY_RUNS} runs)."
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Evaluates every half given and prints (or writes) the markdown report."""
    parser = argparse.ArgumentParser(description="Evaluate the guardrail on its labelled sets.")
    parser.add_argument(
        "--dev",
        type=Path,
        action="append",
        required=True,
        help="a development half (JSONL; may repeat)",
    )
    parser.add_argument(
        "--test",
        type=Path,
        action="append",
        default=[],
        help="a frozen test set (JSONL; may repeat); leave them out while tuning",
    )
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    args = parser.parse_args(argv)
    text = "\n".join(asyncio.run(_run(args))) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"report written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
