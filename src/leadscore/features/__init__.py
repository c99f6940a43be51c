"""Point in time: what was known about each open lead at a cutoff, and the labelled training set built from it."""
