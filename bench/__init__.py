"""Benchmarks of workbench's fast path against the backbone's limit and a naive baseline (`python -m bench`)."""
