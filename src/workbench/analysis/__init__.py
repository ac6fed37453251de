"""Pure computation on arrays and records.

Heads, calibration, the familiarity gate, the general model, plots, interpretation.
"""
