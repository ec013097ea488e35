"""Shared runtime every service process uses."""
