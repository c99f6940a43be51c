"""Data in: the canonical tables and their contracts, reading files, and importers for foreign CRM exports."""
