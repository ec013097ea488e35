"""Guardrail quality evidence: the labeled evaluation set and the checks run on it."""
