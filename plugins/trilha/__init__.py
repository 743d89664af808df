"""Trilha: a governed data lake as Apache Airflow 3 DAGs.

The package is shaped like an Airflow provider: ``hooks`` own every connection and all I/O,
``operators`` are thin and templated, and the remaining modules hold pure domain logic with no
Airflow and no I/O, tested on their own.
"""

from __future__ import annotations

__version__ = "0.1.0"
