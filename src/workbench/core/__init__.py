"""The vocabulary every layer shares.

Watson's words, errors, limits, names, the backbone's spec, records, atomic files.
"""
