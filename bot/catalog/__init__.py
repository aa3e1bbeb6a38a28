"""The help-desk catalog, loaded from ``catalog.yml``.

Everything that names a category, request type, ítem or retired option reads it
from here, so that a catalog change is an edit of the YAML file (plus training
examples) and never a code change.
"""

from bot.catalog.loading import CATALOG_PATH, get_catalog, load_catalog_file, parse_catalog
from bot.catalog.model import (
    FIELD_KINDS,
    WEEKDAYS,
    BusinessHours,
    Catalog,
    CatalogError,
    Category,
    Country,
    FieldSpec,
    Named,
    OpenSpan,
    Option,
    Redirect,
    RequestType,
    RetiredOption,
    best_matches,
)

__all__ = [
    "CATALOG_PATH",
    "FIELD_KINDS",
    "WEEKDAYS",
    "BusinessHours",
    "Catalog",
    "CatalogError",
    "Category",
    "Country",
    "FieldSpec",
    "Named",
    "OpenSpan",
    "Option",
    "Redirect",
    "RequestType",
    "RetiredOption",
    "best_matches",
    "get_catalog",
    "load_catalog_file",
    "parse_catalog",
]
