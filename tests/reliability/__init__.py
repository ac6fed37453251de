"""Regression tests for the reliability campaign's defects (issue 13): crashes, malformed input, memory and disk."""
