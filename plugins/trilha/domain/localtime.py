"""Local standard time of Brazilian weather stations: the UTC offset that defines a station's day.

INMET stamps every observation in UTC; a Brazilian user's "day" is the local one. The daily tables
use each station's **local standard time**, a fixed offset (no daylight saving) taken from its UF,
and from its longitude where the UF is not one zone:

* UTC-2: the oceanic islands (Fernando de Noronha, Atol das Rocas, Sao Pedro e Sao Paulo, Trindade
  e Martim Vaz), i.e. any station east of :data:`ISLANDS_EAST_OF` whatever its UF;
* UTC-5: Acre, and the west of Amazonas (west of the Tabatinga-Porto Acre line, the legal limit);
* UTC-4: the rest of Amazonas, Roraima, Rondonia, Mato Grosso, Mato Grosso do Sul;
* UTC-3: every other UF (Brasilia time).

Why fixed standard offsets for every year: it is the meteorological convention (a climatological
day must mean the same 24 hours in every year of a series), and Brazil's legal time changed under
the data (daylight saving in the south-east until 2019; western Para at UTC-4 until 2008; Acre and
west Amazonas at UTC-4 from 2008 to 2013). Applying those changes would make some days 23 or 25
hours long and shift a station's day by an hour from one year to the next. The offsets are today's
standard zones, applied to the whole history.

A station whose UF is unknown (a BDMEP export, another source) gets its nautical zone from its
longitude (``round(longitude / 15)``, bounded to Brazil's -5..-2); without a longitude, Brasilia
time (UTC-3). Offsets are in whole hours, as Brazil's have been since 1914.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Standard UTC offset (hours) of each UF, before the longitude rules below.
STANDARD_OFFSETS: dict[str, int] = {
    **dict.fromkeys(("AC",), -5),
    **dict.fromkeys(("AM", "RR", "RO", "MT", "MS"), -4),
    **dict.fromkeys(
        (
            "PA", "AP", "TO", "MA", "PI", "CE", "RN", "PB", "PE", "AL", "SE", "BA",
            "MG", "ES", "RJ", "SP", "PR", "SC", "RS", "GO", "DF",
        ),
        -3,
    ),
}  # fmt: skip
#: East of this longitude lies no mainland (Ponta do Seixas, the easternmost point, is at -34.79):
#: the oceanic islands, on UTC-2.
ISLANDS_EAST_OF = -34.5
#: The legal limit of Amazonas' UTC-5 west: the line from Tabatinga to Porto Acre (lat, lon).
_TABATINGA = (-4.2347, -69.9386)
_PORTO_ACRE = (-9.5878, -67.5328)
#: Brasilia time: a station with neither UF nor longitude.
DEFAULT_OFFSET = -3
#: The offsets' range in Brazil: a local day lies within [UTC midnight + 2 h, UTC midnight + 5 h + 1 day).
MIN_OFFSET, MAX_OFFSET = -5, -2
_UNKNOWN = 99


def _west_of_tabatinga_line(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """True where a point lies west of the Tabatinga-Porto Acre line (extended beyond its ends)."""
    (lat1, lon1), (lat2, lon2) = _TABATINGA, _PORTO_ACRE
    with np.errstate(invalid="ignore"):
        line_lon = lon1 + (latitude - lat1) * (lon2 - lon1) / (lat2 - lat1)
        return np.asarray(longitude < line_lon, dtype=bool)


def _floats(column: pa.Array | pa.ChunkedArray | None, n: int) -> np.ndarray:
    if column is None:
        return np.full(n, np.nan)
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _by_uf(uf: pa.Array | pa.ChunkedArray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's offset from its UF alone (:data:`_UNKNOWN` when not a known UF) and whether it is
    in Amazonas; by distinct value, chunk by chunk (staged UFs are dictionary-encoded: 27 values,
    not millions of strings)."""
    offsets = np.full(n, _UNKNOWN, dtype=np.int8)
    amazonas = np.zeros(n, dtype=bool)
    if uf is None or n == 0:
        return offsets, amazonas
    chunks = uf.chunks if isinstance(uf, pa.ChunkedArray) else [uf]
    start = 0
    for chunk in chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        names = [str(v).strip().upper() if v is not None else "" for v in encoded.dictionary.to_pylist()]
        per_value = np.asarray([STANDARD_OFFSETS.get(v, _UNKNOWN) for v in names] + [_UNKNOWN], np.int8)
        in_am = np.asarray([v == "AM" for v in names] + [False], dtype=bool)
        # A null UF points at the extra last entry (unknown).
        indices = pc.fill_null(encoded.indices, len(names)).to_numpy(zero_copy_only=False).astype(np.int64)
        end = start + len(chunk)
        offsets[start:end] = per_value[indices]
        amazonas[start:end] = in_am[indices]
        start = end
    return offsets, amazonas


def utc_offsets(
    uf: pa.Array | pa.ChunkedArray | None,
    latitude: pa.Array | pa.ChunkedArray | None,
    longitude: pa.Array | pa.ChunkedArray | None,
    n: int,
) -> np.ndarray:
    """The standard UTC offset (hours, ``int8``) of each of ``n`` rows, from its UF and position
    (see the module docstring); a missing column counts as nulls."""
    offsets, amazonas = _by_uf(uf, n)
    lat, lon = _floats(latitude, n), _floats(longitude, n)
    unknown = offsets == _UNKNOWN
    located = ~np.isnan(lon)
    with np.errstate(invalid="ignore"):
        nautical = np.clip(np.round(lon / 15.0), MIN_OFFSET, MAX_OFFSET)
        offsets[unknown & located] = nautical[unknown & located].astype(np.int8)
        offsets[unknown & ~located] = DEFAULT_OFFSET
        offsets[amazonas & _west_of_tabatinga_line(lat, lon)] = -5
        offsets[lon > ISLANDS_EAST_OF] = -2
    return offsets


def utc_offset(uf: str | None, latitude: float | None = None, longitude: float | None = None) -> int:
    """One station's standard UTC offset (see :func:`utc_offsets`)."""
    return int(
        utc_offsets(
            pa.array([uf], pa.string()),
            pa.array([latitude], pa.float64()),
            pa.array([longitude], pa.float64()),
            1,
        )[0]
    )
