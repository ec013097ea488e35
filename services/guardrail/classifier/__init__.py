"""Layer B of the guardrail: classifiers that score alignment, harm and (for solutions) quality."""
