"""The simulated CRM's shared types: its attribute tables, the team and the leads as arrays.

They live apart from :mod:`leadscore.simulation.simulator` so that the behaviour model
(:mod:`leadscore.simulation.behaviour`) can use them without importing the simulator that calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadscore.simulation.process import LeadDrivers

SOURCES = (
    ("web", 0.28, 0.0),
    ("paid_ads", 0.20, -0.45),
    ("outbound", 0.20, -0.7),
    ("referral", 0.11, 0.9),
    ("event", 0.11, 0.15),
    ("partner", 0.10, 0.6),
)
SEGMENTS = (("SMB", 0.58, 0.15), ("mid-market", 0.30, 0.0), ("enterprise", 0.12, -0.25))
SEGMENT_PACE = {"SMB": 1.3, "mid-market": 1.0, "enterprise": 0.6}
SEGMENT_SIZE = {"SMB": (35, 0.8, 2, 199), "mid-market": (500, 0.6, 200, 1999), "enterprise": (6000, 0.9, 2000, 200_000)}
SEGMENT_DEAL = {"SMB": 6_000, "mid-market": 28_000, "enterprise": 120_000}
COUNTRIES = (
    ("US", 0.33, 0.05),
    ("GB", 0.12, 0.05),
    ("DE", 0.10, 0.0),
    ("FR", 0.08, 0.0),
    ("ES", 0.07, 0.0),
    ("NL", 0.05, 0.05),
    ("CA", 0.07, 0.05),
    ("AU", 0.05, 0.0),
    ("BR", 0.07, -0.15),
    ("MX", 0.06, -0.15),
)
INDUSTRIES = (
    ("software", 0.24, 0.3),
    ("finance", 0.12, 0.0),
    ("healthcare", 0.10, -0.1),
    ("retail", 0.12, -0.15),
    ("manufacturing", 0.13, 0.05),
    ("education", 0.08, -0.3),
    ("logistics", 0.08, 0.0),
    ("media", 0.07, -0.1),
    ("public_sector", 0.06, -0.35),
)
AD_CAMPAIGNS = (("google_search", 0.5), ("linkedin_ads", 0.3), ("meta_ads", 0.2))
# A lead's quality (log scale) = QUALITY_SHIFT + ATTRIBUTE_WEIGHT * attribute effects + INTEREST_WEIGHT * interest.


@dataclass(kw_only=True)
class Team:
    """The salespeople: ids, skill (log scale), share of new leads, activity and diligence."""

    rep_id: np.ndarray
    skill: np.ndarray
    load: np.ndarray
    activity: np.ndarray
    diligence: np.ndarray


@dataclass(kw_only=True)
class LeadTable:
    """The leads as arrays (codes index the attribute tuples above), plus their hidden drivers."""

    created_s: np.ndarray
    owner: np.ndarray
    source: np.ndarray
    segment: np.ndarray
    country: np.ndarray
    industry: np.ndarray
    company_size: np.ndarray
    campaign: np.ndarray  # an index into campaigns, -1 for none
    campaigns: tuple[str, ...]
    interest: np.ndarray  # latent, standard normal: drives both behaviour and the pipeline
    deal_value: np.ndarray
    drivers: LeadDrivers

    @property
    def source_name(self) -> np.ndarray:
        return np.array([s[0] for s in SOURCES], dtype=object)[self.source]
