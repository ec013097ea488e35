"""Test support code: helpers and small test-only services."""
