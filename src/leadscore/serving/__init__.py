"""Serving: the scorer (probability, grade, percentile, reasons), the prioritised list and API keys."""
