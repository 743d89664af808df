"""Pure domain logic: no Airflow, no I/O (enforced by tests/unit/test_layout.py)."""
