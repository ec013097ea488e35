"""Envoy front door: renders the edge proxy configuration for the local stack and compose."""
