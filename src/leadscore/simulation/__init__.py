"""A simulated CRM with its ground truth: the demo, the tests and the benchmarks run on it."""
