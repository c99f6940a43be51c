"""The public data sets that notebooks, benchmarks and some tests read, and what to download when one is absent.

They are read where they lie, ``../shared/data`` beside the project (``LEADSCORE_SHARED_DATA`` names another
folder), and never copied into the project. A user's clone has no ``../shared``: :func:`public_file` then says
what to download, from where, and where to put it.

Run ``python -m leadscore.data.public DATASET`` to check one from a shell: it prints the instructions and exits
with 1 when the data set is absent (``make notebooks`` uses it to skip a notebook it cannot run).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

SHARED_DATA_ENV = "LEADSCORE_SHARED_DATA"


@dataclass(frozen=True, kw_only=True)
class PublicDataset:
    """A public data set: its title, the file that must be there, where to get it and how to lay it out."""

    title: str
    main_file: str
    source: str
    how: str


DATASETS: dict[str, PublicDataset] = {
    "uci_bank_marketing": PublicDataset(
        title="UCI Bank Marketing (CC BY 4.0)",
        main_file="bank-additional-full.csv",
        source="https://archive.ics.uci.edu/dataset/222/bank+marketing",
        how="download bank+marketing.zip, unzip it and the bank-additional.zip inside it, and put "
        "bank-additional-full.csv (and bank-additional-names.txt)",
    ),
    "maven_crm_sales_opportunities": PublicDataset(
        title="Maven Analytics' CRM Sales Opportunities (public demo data)",
        main_file="sales_pipeline.csv",
        source="https://mavenanalytics.io/data-playground (search for 'CRM Sales Opportunities')",
        how="download the zip and put its sales_pipeline.csv, sales_teams.csv, accounts.csv, products.csv and "
        "data_dictionary.csv",
    ),
}


def shared_data_dir() -> Path:
    """``LEADSCORE_SHARED_DATA``, else ``../shared/data`` beside the project (or beside the working folder)."""
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").exists():  # installed from a wheel: look beside the working folder
        root = Path.cwd()
    return root.parent / "shared" / "data"


def missing_message(dataset: str) -> str | None:
    """What to download and where when ``dataset`` is absent; None when it is there.

    Examples
    --------
    >>> import os; os.environ["LEADSCORE_SHARED_DATA"] = "/nonexistent"
    >>> print(missing_message("uci_bank_marketing"))  # doctest: +ELLIPSIS
    /nonexistent/uci_bank_marketing/bank-additional-full.csv is missing: ... or set LEADSCORE_SHARED_DATA ...
    >>> del os.environ["LEADSCORE_SHARED_DATA"]
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown public data set {dataset!r}; known: {sorted(DATASETS)}")
    spec = DATASETS[dataset]
    path = shared_data_dir() / dataset / spec.main_file
    if path.is_file():
        return None
    return (
        f"{path} is missing: {spec.title} is not in this checkout. Get it from {spec.source}: {spec.how} in "
        f"{path.parent}/, or set {SHARED_DATA_ENV} to the folder that holds {dataset}/."
    )


def public_file(dataset: str, name: str | None = None) -> Path:
    """The path of a public data set's file (its main file by default).

    Raises
    ------
    FileNotFoundError
        With what to download and where, when the data set is absent.
    """
    problem = missing_message(dataset)
    if problem:
        raise FileNotFoundError(problem)
    return shared_data_dir() / dataset / (name or DATASETS[dataset].main_file)


if __name__ == "__main__":
    problems = [m for m in map(missing_message, sys.argv[1:] or DATASETS) if m]
    for message in problems:
        print(message, file=sys.stderr)
    sys.exit(1 if problems else 0)
