"""Run operators with the asset-event parts of the task context, the way Airflow 3.3 fills them.

``outlet_events`` is the Task SDK's own :class:`OutletEventAccessors`, and what a run emitted is read
back with the task runner's own serializer (the payload a successful task sends to the API server).
An emitted event is handed to a consumer as the scheduler would: an
:class:`AssetEventDagRunReferenceResult` of the layer asset, its extra through JSON (Airflow stores
it in a JSON column), in the Task SDK's :class:`TriggeringAssetEventsAccessor`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.api.datamodels._generated import (
    AssetAliasReferenceAssetEventDagRun,
    AssetReferenceAssetEventDagRun,
)
from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
from airflow.sdk.execution_time.context import OutletEventAccessors, TriggeringAssetEventsAccessor
from airflow.sdk.execution_time.task_runner import _serialize_outlet_events

from tests.helpers import run_operator


@dataclass
class Emitted:
    """One asset event a run added: the asset, the alias it went through, its extra."""

    asset: str
    uri: str
    alias: str
    extra: dict[str, Any]
    run_id: str
    task_id: str

    def consumed(self) -> AssetEventDagRunReferenceResult:
        return AssetEventDagRunReferenceResult(
            asset=AssetReferenceAssetEventDagRun(name=self.asset, uri=self.uri, extra={}),
            extra=json.loads(json.dumps(self.extra)),
            source_task_id=self.task_id,
            source_dag_id="test_dag",
            source_run_id=self.run_id,
            source_map_index=-1,
            source_aliases=[AssetAliasReferenceAssetEventDagRun(name=self.alias)] if self.alias else [],
            timestamp=datetime.now(UTC),
        )


def run_emitting(
    op: Any, triggered_by: Sequence[Emitted] = (), run_id: str | None = None
) -> tuple[dict[str, Any], list[Emitted]]:
    """Run ``op`` with real outlet/triggering accessors; return its summary and what it emitted."""
    import uuid

    run_id = run_id or f"test__{uuid.uuid4().hex[:12]}"
    outlet_events = OutletEventAccessors()
    triggering = TriggeringAssetEventsAccessor.build(e.consumed() for e in triggered_by)
    summary = run_operator(op, run_id=run_id, outlet_events=outlet_events, triggering_asset_events=triggering)
    emitted = []
    for payload in _serialize_outlet_events(outlet_events):
        assert "source_alias_name" in payload, f"a static outlet event was added: {payload}"
        emitted.append(
            Emitted(
                asset=payload["dest_asset_key"]["name"],
                uri=payload["dest_asset_key"]["uri"],
                alias=payload["source_alias_name"],
                extra=dict(payload["extra"]),
                run_id=run_id,
                task_id=op.task_id,
            )
        )
    return dict(summary), emitted


def only(emitted: list[Emitted], asset: str) -> dict[str, Any]:
    """The extra of the one event on ``asset`` (and there must be no other event at all)."""
    assert [e.asset for e in emitted] == [asset], [e.asset for e in emitted]
    (event,) = emitted
    assert event.alias == f"{asset}_changes"
    return event.extra


def project_entry(extra: dict[str, Any], name: str) -> dict[str, Any]:
    (entry,) = [p for p in extra["projects"] if p["name"] == name]
    return entry
