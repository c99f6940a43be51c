"""The conversion model: cleaning, candidates, calibration, time-ordered validation, leakage guard, training,
metrics, plots, and explanations with their compiled form."""
