"""Importers for CRM exports that are not an event log (e.g. one-row-per-deal opportunity snapshots)."""

from leadscore.data.importers.opportunities import (
    MAVEN_MAPPING,
    ImportedOpportunities,
    OpportunityMapping,
    load_maven,
    opportunities_to_crm,
)

__all__ = ["MAVEN_MAPPING", "ImportedOpportunities", "OpportunityMapping", "load_maven", "opportunities_to_crm"]
