"""Shared fixtures: where the real public data sets live, and small hand-built CRM tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadscore.data.public import DATASETS, missing_message, shared_data_dir

# ../shared/data beside the project, as the brief lays it out; LEADSCORE_SHARED_DATA names another folder.
SHARED_DATA = shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    problems = [message for message in map(missing_message, DATASETS) if message]
    if problems:
        pytest.skip(" ".join(problems))
    return SHARED_DATA


@pytest.fixture
def raw_leads() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3"],
            "created_at": ["2024-01-01T09:00:00Z", "2024-01-02T10:30:00+01:00", "2024-01-03"],
            "owner_id": ["rep_1", "rep_2", None],
            "source": ["web", "referral", "event"],
            "segment": ["SMB", "enterprise", "SMB"],
        }
    )


@pytest.fixture
def raw_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "lead_id": ["L1", "L1", "L2", "L3"],
            "at": ["2024-01-02T10:00:00Z", "2024-01-03T10:00:00Z", "2024-01-04T10:00:00Z", "2024-01-05"],
            "type": ["email_sent", "call", "meeting_scheduled", "custom_thing"],
            "rep_id": ["rep_1", "rep_1", "rep_2", None],
            "duration_s": [None, "120", None, None],
            "scheduled_for": [None, None, "2024-01-10T15:00:00Z", None],
        }
    )
