"""The OpenLineage facets of a Trilha task: built from what it declared (:mod:`trilha.domain.touched`).

Imported only when the OpenLineage listener asks a task for its lineage (never when a DAG file is
parsed, nor when an operator module is imported): the OpenLineage client is loaded then, and only
when OpenLineage is enabled (a transport configured).

Each dataset gets:
* ``version`` (:class:`DatasetVersionDatasetFacet`): the object's sha256, or the table's snapshot id;
* ``trilha`` (:class:`TrilhaDatasetFacet`): the sha256 itself, and for an aggregate how many objects
  it stands for (see :mod:`trilha.domain.touched` for when objects are aggregated);
* ``schema`` when the operator knew it without reading the data again (staged files);
* ``symlinks`` and ``catalog`` for an Iceberg table (its catalog identifier);
* ``inputStatistics`` / ``outputStatistics``: rows, bytes and files, as far as known.

The run gets ``trilha`` (:class:`TrilhaRunFacet`): the task's counters, its ``meta.audit_log`` id and
run-log id, and how many datasets were declared on each side (more than listed when aggregated).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attr
from airflow.providers.openlineage.extractors.base import OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    catalog_dataset,
    dataset_version_dataset,
    input_statistics_input_dataset,
    lifecycle_state_change_dataset,
    output_statistics_output_dataset,
    schema_dataset,
    symlinks_dataset,
)

from trilha.domain import tables, touched

#: The schema URL of Trilha's own facets: a URN, as no JSON schema is published for them (their fields
#: are the attributes below, documented in docs/operations.md, "OpenLineage").
SCHEMA = "urn:trilha:openlineage:facets:1-0-0"


@attr.define
class TrilhaDatasetFacet(DatasetFacet):
    """Trilha's word on a dataset: the object's sha256, or how many objects an aggregate stands for."""

    sha256: str | None = attr.field(default=None)
    objects: int = attr.field(default=1)
    aggregated: bool = attr.field(default=False)
    _additional_skip_redact: ClassVar[list[str]] = ["sha256", "objects", "aggregated"]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA + "#/$defs/TrilhaDatasetFacet"


@attr.define
class TrilhaRunFacet(RunFacet):
    """The task's counters and where its audit row and run-log document are."""

    counters: dict[str, int] = attr.field(factory=dict)
    audit_log_id: int | None = attr.field(default=None)
    run_log_id: str | None = attr.field(default=None)
    inputs_declared: int = attr.field(default=0)
    outputs_declared: int = attr.field(default=0)
    _additional_skip_redact: ClassVar[list[str]] = [
        "counters",
        "audit_log_id",
        "run_log_id",
        "inputs_declared",
        "outputs_declared",
    ]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA + "#/$defs/TrilhaRunFacet"


def dataset_facets(d: touched.Dataset) -> dict[str, DatasetFacet]:
    """The facets every dataset carries, input or output."""
    facets: dict[str, DatasetFacet] = {}
    if d.version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=d.version)
    if d.table is None:
        facets["trilha"] = TrilhaDatasetFacet(sha256=d.sha256, objects=d.files, aggregated=d.aggregated)
    else:
        facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[
                symlinks_dataset.Identifier(
                    namespace=f"iceberg://{tables.CATALOG_NAME}", name=d.table, type="TABLE"
                )
            ]
        )
        facets["catalog"] = catalog_dataset.CatalogDatasetFacet(
            framework="iceberg", type="sql", name=tables.CATALOG_NAME, source="pyiceberg"
        )
    if d.dropped:
        facets["lifecycleStateChange"] = lifecycle_state_change_dataset.LifecycleStateChangeDatasetFacet(
            lifecycleStateChange=lifecycle_state_change_dataset.LifecycleStateChange.DROP
        )
    if d.schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=name, type=kind, ordinal_position=i)
                for i, (name, kind) in enumerate(d.schema, start=1)
            ]
        )
    return facets


def input_dataset(d: touched.Dataset) -> InputDataset:
    stats = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
        rowCount=d.rows, size=d.size, fileCount=d.files
    )
    return InputDataset(d.namespace, d.name, facets=dataset_facets(d), inputFacets={"inputStatistics": stats})


def output_dataset(d: touched.Dataset) -> OutputDataset:
    stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=d.rows, size=d.size, fileCount=d.files
    )
    return OutputDataset(
        d.namespace, d.name, facets=dataset_facets(d), outputFacets={"outputStatistics": stats}
    )


def operator_lineage(lineage: touched.Touched | None, summary: Mapping[str, Any] | None) -> OperatorLineage:
    """The task's :class:`OperatorLineage`: its declared inputs and outputs, and its run facet.

    :param lineage: what the task declared; ``None`` when it never ran (nothing to report).
    :param summary: ``counters``, ``audit_log_id``, ``run_log_id`` (the task's audit record).
    """
    if lineage is None:
        return OperatorLineage()
    summary = summary or {}
    run = TrilhaRunFacet(
        counters={str(k): int(v) for k, v in (summary.get("counters") or {}).items()},
        audit_log_id=summary.get("audit_log_id"),
        run_log_id=summary.get("run_log_id"),
        inputs_declared=lineage.inputs.declared,
        outputs_declared=lineage.outputs.declared,
    )
    return OperatorLineage(
        inputs=[input_dataset(d) for d in lineage.inputs.datasets()],
        outputs=[output_dataset(d) for d in lineage.outputs.datasets()],
        run_facets={"trilha": run},
    )
