"""`python -m tooling.guardrail_eval.fit_exemplars [--check]`: the exemplar calibration file.

Fits the local classifier's calibration on its exemplars (see
`services.guardrail.classifier.local_fit`) and writes it next to the exemplar file, or with
`--check` only verifies that it matches the exemplars.
"""

from __future__ import annotations

import argparse
import json
import sys

from services.core.embeddings.factory import classifier_model
from services.guardrail.classifier.local_fit import MODULE, FittedParams, fit, fit_path
from services.guardrail.classifier.local_index import (
    EXEMPLARS_PATH,
    Exemplars,
    default_cache_dir,
    embed_exemplars,
)


def main(argv: list[str] | None = None) -> int:
    """Fits and writes (or checks) the parameters of the default exemplar file."""
    parser = argparse.ArgumentParser(description="Fit the local guardrail classifier.")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    exemplars = Exemplars.load(EXEMPLARS_PATH)
    target = fit_path(EXEMPLARS_PATH)
    if args.check:
        current = FittedParams.from_json(target.read_text()) if target.exists() else None
        if current is None or current.exemplars_sha256 != exemplars.sha256:
            print(f"{target} is out of date: run python -m {MODULE}", file=sys.stderr)
            return 1
        print(f"{target} matches {EXEMPLARS_PATH.name}")
        return 0
    provider = classifier_model()
    matrix = embed_exemplars(exemplars, provider, default_cache_dir())
    params = fit(exemplars, matrix, provider.model_id)
    target.write_text(params.to_json())
    print(json.dumps({"written": str(target), **params.leave_one_out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
