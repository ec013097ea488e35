"""End-to-end tests: the agent service as a subprocess behind a real Envoy."""
