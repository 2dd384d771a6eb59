"""Placeholder package (see README, architecture)."""
