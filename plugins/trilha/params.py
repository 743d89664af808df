"""The Params of Trilha's DAGs: what a user fills in on the Airflow UI's trigger form.

The Airflow 3 form treats a Param as required when its JSON-schema ``type`` does not admit ``null``:
an empty ``Param("", type="string")`` shows a red ``*`` and keeps the Trigger button disabled. So
every value that may be left empty is declared nullable here (default ``None``), and only what a run
cannot do without is required. DAG templates read an optional Param as ``{{ params.x or '' }}``,
because Jinja renders ``None`` as the text ``None``.

The patterns repeat the checks of :mod:`trilha.domain.keys`, so the form refuses a bad value before a run is
made; the operators still validate, because a run can also be started from the CLI or the REST API.
Light on purpose: DAG files import this at parse time.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

#: The form's groups. Params without a section go in the form's default one, shown first.
NEW_PROJECT = "New project"
ADVANCED = "Advanced"
EXPORT = "Export"

#: :func:`trilha.domain.keys.validate_project_prefix` as a JSON-schema pattern.
PROJECT_PREFIX_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: A key prefix is relative: no leading '/', no backslash (the rest is checked by the operator).
KEY_PREFIX_PATTERN = r"^[^/\\][^\\]*$"


def optional(description: str, *, section: str | None = None, **schema: Any) -> Param:
    """A string the user may leave empty (``None``); ``schema`` applies when it is filled in."""
    if section:
        schema["section"] = section
    return Param(None, type=["null", "string"], description=description, **schema)


def project(required: bool = True, can_create: bool = True) -> dict[str, Param]:
    """``project``, and ``project_prefix`` to create a new project when the DAG ``can_create`` one.

    :param required: ``False`` makes the project a filter: empty means every project.
    """
    if not required:
        return {"project": optional("Only this project; empty = every project.", maxLength=200)}
    name = {
        "project": Param(
            "inmet",
            type="string",
            minLength=1,
            maxLength=200,
            title="Project",
            description="Required. The project's name in projects_registry (free text, at most 200 chars).",
        )
    }
    if not can_create:
        return name
    return {
        **name,
        "project_prefix": optional(
            "Only to create a new project: its key prefix (1-63 of a-z, 0-9, '_' or '-'). "
            "Leave empty for an existing project.",
            section=NEW_PROJECT,
            pattern=PROJECT_PREFIX_PATTERN,
        ),
    }


def dataset(description: str | None = None) -> dict[str, Param]:
    """``dataset``: required (default ``inmet_hourly``) when the DAG says what it does with it in
    ``description``; without one, a filter: empty means every dataset."""
    if description is None:
        return {
            "dataset": optional(
                "Only this dataset (for example inmet_hourly); empty = every dataset.", maxLength=200
            )
        }
    return {
        "dataset": Param(
            "inmet_hourly",
            type="string",
            minLength=1,
            maxLength=200,
            title="Dataset",
            description=description,
        )
    }


def relative_prefix(description: str, *, section: str | None = ADVANCED) -> Param:
    """An object key prefix the user may leave empty: relative (see :data:`KEY_PREFIX_PATTERN`),
    at most 1024 characters."""
    return optional(description, section=section, pattern=KEY_PREFIX_PATTERN, maxLength=1024)


def key_prefix(what: str) -> dict[str, Param]:
    """``key_prefix``: a relative key prefix that narrows the run; empty means everything."""
    return {"key_prefix": relative_prefix(what)}


def batch_size(what: str, default: int) -> dict[str, Param]:
    """``batch_size``: how many ``what`` one mapped task works on. The results are the same whatever
    it is; smaller batches spread the work over more tasks (and workers), larger ones cost fewer."""
    return {
        "batch_size": Param(
            default,
            type="integer",
            minimum=1,
            maximum=100_000,
            title="Batch size",
            description=f"{what} per mapped task. The result is the same whatever it is; smaller batches "
            "spread the work over more tasks (and Celery workers).",
            section=ADVANCED,
        )
    }


def min_hours_for_daily(default: int) -> dict[str, Param]:
    """``min_hours_for_daily``: the completeness rule of the curated daily tables."""
    return {
        "min_hours_for_daily": Param(
            default,
            type="integer",
            minimum=1,
            maximum=24,
            title="Hours for a daily figure",
            description="Daily tables: a day's sum, mean, minimum or maximum from fewer valid hours than "
            "this is left empty (its hours_with_* count is kept; the radiation sum is exempt, INMET leaves "
            "night hours blank). Changing it rewrites the curated tables whole as a new version.",
            section=ADVANCED,
        )
    }
