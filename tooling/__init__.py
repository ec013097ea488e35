"""Tooling around the services: what developers and operators run, never imported by a service."""
