"""API keys for agents and operators: generation, storage and the authentication lookup."""
