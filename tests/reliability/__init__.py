"""Regression tests for the defects of the reliability campaign (issue 13): crashes, malformed input, memory and disk."""
