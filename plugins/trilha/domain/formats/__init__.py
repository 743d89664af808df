"""Parsers for the files that reach staging: INMET yearly station files (three layouts), INMET
BDMEP exports, and generic delimited text.

Pure functions over bytes: no Airflow, no network, no object storage. Layouts are detected from
content, never from file names. See :func:`parse_file`.
"""

from __future__ import annotations

from trilha.domain.formats.detect import LAYOUTS, detect_layout, parse_file
from trilha.domain.formats.measurements import HOURLY_COLUMNS, HOURLY_MEASUREMENTS, STATION_COLUMNS
from trilha.domain.formats.parsed import LINE_NUMBER_COLUMN, REJECTED_SCHEMA, ParsedFile

__all__ = [
    "HOURLY_COLUMNS",
    "HOURLY_MEASUREMENTS",
    "LAYOUTS",
    "LINE_NUMBER_COLUMN",
    "REJECTED_SCHEMA",
    "STATION_COLUMNS",
    "ParsedFile",
    "detect_layout",
    "parse_file",
]
