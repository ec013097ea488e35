"""GuardrailService: the three-layer check every piece of agent content passes."""
