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


def utc_offsets(
    uf: pa.Array | pa.ChunkedArray | None,
    latitude: pa.Array | pa.ChunkedArray | None,
    longitude: pa.Array | pa.ChunkedArray | None,
    n: int,
) -> np.ndarray:
    """The standard UTC offset (hours, ``int8``) of each of ``n`` rows, from its UF and position
    (see the module docstring); a missing column counts as nulls."""
    offsets = np.full(n, _UNKNOWN, dtype=np.int8)
    if uf is not None and n:
        # By distinct value: 27 UFs, not millions of rows.
        encoded = pc.dictionary_encode(pc.cast(uf, pa.string()))
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        per_value = np.asarray(
            [STANDARD_OFFSETS.get(str(v).strip().upper(), _UNKNOWN) for v in encoded.dictionary.to_pylist()]
            or [_UNKNOWN],
            dtype=np.int8,
        )
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        known = ~np.asarray(encoded.indices.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        offsets[known] = per_value[indices[known].astype(np.int64)]
    lat, lon = _floats(latitude, n), _floats(longitude, n)
    unknown = offsets == _UNKNOWN
    with np.errstate(invalid="ignore"):
        nautical = np.clip(np.round(lon / 15.0), MIN_OFFSET, MAX_OFFSET)
    offsets[unknown & ~np.isnan(lon)] = nautical[unknown & ~np.isnan(lon)].astype(np.int8)
    offsets[unknown & np.isnan(lon)] = DEFAULT_OFFSET
    amazonas = np.zeros(n, dtype=bool) if uf is None else _is(uf, "AM")
    offsets[amazonas & _west_of_tabatinga_line(lat, lon)] = -5
    with np.errstate(invalid="ignore"):
        offsets[lon > ISLANDS_EAST_OF] = -2
    return offsets


def _is(uf: pa.Array | pa.ChunkedArray, code: str) -> np.ndarray:
    equal = pc.equal(pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(uf, pa.string()))), code)
    return np.asarray(pc.fill_null(equal, False).to_numpy(zero_copy_only=False), dtype=bool)


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
