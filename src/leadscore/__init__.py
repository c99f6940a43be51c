"""leadscore: predictive lead scoring."""

__version__ = "0.1.0"
