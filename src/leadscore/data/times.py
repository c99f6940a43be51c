"""Time units shared by every stage: nanoseconds in a day, and timestamps as days since the epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY_NS = 86_400 * 10**9


def epoch_days(stamps) -> np.ndarray:
    """UTC timestamps as days (with fractions) since 1970-01-01, as floats (NaT: NaN): the unit of a date column
    once cleaned and of :attr:`LabelledData.times <leadscore.model.splits.LabelledData>`.

    Examples
    --------
    >>> epoch_days(pd.to_datetime(["1970-01-02 12:00", None], utc=True)).tolist()
    [1.5, nan]
    """
    delta = pd.to_datetime(stamps, utc=True) - pd.Timestamp("1970-01-01", tz="UTC")
    return np.asarray(delta / pd.Timedelta(days=1), dtype=float)
