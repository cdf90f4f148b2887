"""Benchmarks: scripts that print numbers, not pass/fail (see README.md)."""
