"""The guardrail's quality measurement on labelled sets it was not tuned on (`make guardrail-eval`)."""
