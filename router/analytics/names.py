"""The question categories, apart from the classifier, so that naming them loads no stemmer."""

from __future__ import annotations

CATEGORIES = ("contracts", "criminal_law", "business_law", "tax_law", "labour_law", "family_law", "housing",
              "administrative", "general")
GENERAL = "general"
