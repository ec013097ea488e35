"""The guardrail's quality on labelled sets it was not tuned on (`make guardrail-eval`)."""
