"""Header text to names: accent folding, the word tokens that keyword rules match, snake_case
column names and their de-duplication.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence


def ascii_fold(text: str) -> str:
    """Strip accents (``Ç`` -> ``C``, ``²`` -> ``2``) and drop what has no ASCII form."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def tokens(text: str) -> list[str]:
    """Upper-case ASCII word tokens of a header. ``?`` (a lost accent in 2019 files) splits nothing:
    it is removed, so ``DIRE?AO`` becomes ``DIREAO``; rules match by prefix, which survives that.
    """
    folded = ascii_fold(text).upper().replace("?", "")
    return re.findall(r"[A-Z0-9]+", folded)


def snake_case(text: str, fallback: str) -> str:
    """snake_case ASCII name for a header; ``fallback`` when nothing usable is left."""
    folded = ascii_fold(text.replace("%", " pct ")).lower()
    name = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")
    if not name:
        return fallback
    if name[0].isdigit():
        # Names that start with a digit need quoting in SQL (Snowflake, Postgres).
        name = f"col_{name}"
    return name


def unique_names(names: Sequence[str], taken: Iterable[str] = ()) -> list[str]:
    """Make names unique by suffixing ``_2``, ``_3``... in order of appearance."""
    seen = set(taken)
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out
