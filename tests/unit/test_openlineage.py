"""OpenLineage of Trilha tasks without a stack: what a run declares (trilha.domain.touched), the
bound on the number of datasets, the facets the provider's extractor gets from a Trilha operator
(success and failure), the extra links, and that OpenLineage stays off without a transport."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.openlineage.extractors.base import DefaultExtractor
from airflow.sdk.exceptions import AirflowException
from openlineage.client.serde import Serde

from tests.helpers import run_operator
from tests.unit.fakes import FakeAudit, FakeMinio, wired
from trilha.domain import touched
from trilha.domain.manifest import CuratedRecord, DatasetRecord
from trilha.domain.staging import StagingRow
from trilha.operators.base import Counters, TrilhaBaseOperator
from trilha.operators.links import TrilhaOutputLink, TrilhaRunLink, TrilhaTraceLink
from trilha.operators.ol_facets import operator_lineage

SHA_A = "a" * 64
SHA_B = "b" * 64


def as_json(obj: Any) -> Any:
    return json.loads(Serde.to_json(obj))


# what a run declares --------------------------------------------------------------------------------
def test_an_object_is_named_by_its_bucket_and_key() -> None:
    d = touched.obj("staging-data", "inmet/hourly/a.parquet", sha256=SHA_A, rows=3, size=10)
    assert (d.namespace, d.name, d.version, d.rows, d.size, d.files) == (
        "s3://staging-data",
        "inmet/hourly/a.parquet",
        SHA_A,
        3,
        10,
        1,
    )
    assert not d.aggregated
    with pytest.raises(ValueError, match="key: expected an object key"):
        touched.obj("staging-data", "/abs/key")
    with pytest.raises(ValueError, match="bucket: expected a bucket name, got 'a/b'"):
        touched.obj("a/b", "k")


def test_a_data_file_is_named_by_its_uri() -> None:
    docs = [
        {
            "file_path": "s3://curated-data/p/d/_iceberg/t/data/x.parquet",
            "record_count": 3,
            "file_size_in_bytes": 9,
        },
        {"file_path": "file:///tmp/wh/p/d/x.parquet", "record_count": 1, "file_size_in_bytes": 2},
        {"file_path": "gs://bucket/k.parquet", "record_count": None, "file_size_in_bytes": None},
    ]
    got = [(d.namespace, d.name, d.rows, d.size) for d in touched.data_files(docs)]
    assert got == [
        ("s3://curated-data", "p/d/_iceberg/t/data/x.parquet", 3, 9),
        ("file", "/tmp/wh/p/d/x.parquet", 1, 2),
        ("gs://bucket", "k.parquet", None, None),
    ]
    with pytest.raises(ValueError, match="expected a URI"):
        touched.located("/no/scheme")


def test_a_table_is_named_by_its_location_and_versioned_by_its_snapshot() -> None:
    t = touched.table(
        "s3://curated-data/inmet/inmet_hourly/_iceberg/hourly/", "inmet.inmet_hourly__hourly", snapshot_id=42
    )
    assert (t.namespace, t.name, t.table, t.version) == (
        "s3://curated-data",
        "inmet/inmet_hourly/_iceberg/hourly",
        "inmet.inmet_hourly__hourly",
        "42",
    )
    with pytest.raises(ValueError, match="table location"):
        touched.table("file:///tmp/t", "x.y", snapshot_id=1)


def test_a_side_is_exact_up_to_the_limit_and_a_repeat_counts_once() -> None:
    side = touched.Side(limit=3)
    for key in ("p/a", "p/b", "p/a"):
        side.add(touched.obj("b", key, rows=1))
    assert [d.name for d in side.datasets()] == ["p/a", "p/b"]
    assert side.declared == 2
    assert side.first is not None
    assert side.first.name == "p/a"
    assert not side.aggregated


def test_beyond_the_limit_objects_are_aggregated_per_prefix_with_their_counts() -> None:
    side = touched.Side(limit=3)
    for i in range(4):
        side.add(touched.obj("b", f"p/x/{i}.parquet", rows=10, size=100))
    side.add(touched.obj("b", "p/y/0.parquet", rows=1, size=1))
    side.add(touched.obj("c", "top.csv", size=7))
    got = {(d.namespace, d.name): (d.files, d.rows, d.size) for d in side.datasets()}
    assert got == {
        ("s3://b", "p/x/"): (4, 40, 400),
        ("s3://b", "p/y/"): (1, 1, 1),
        ("s3://c", "/"): (1, None, 7),
    }
    assert all(d.aggregated and d.sha256 is None for d in side.datasets())
    assert side.declared == 6


def test_ten_thousand_objects_make_at_most_limit_datasets_that_still_count_them_all() -> None:
    side = touched.Side()
    for i in range(10_000):
        side.add(touched.obj("staging-data", f"proj/ds/station{i % 700}/part{i}.parquet", rows=2))
    out = side.datasets()
    assert len(out) <= touched.LIMIT
    assert sum(d.files for d in out) == 10_000
    assert sum(d.rows or 0 for d in out) == 20_000
    # 700 station folders do not fit in 100: shortened to their parent, one dataset
    assert [d.name for d in out] == ["proj/ds/"]
    assert len(side.groups) <= touched.MAX_GROUPS


def test_tables_are_never_folded_into_a_prefix() -> None:
    side = touched.Side(limit=1)
    side.add(touched.obj("curated-data", "p/d/manifest.json"))
    side.add(touched.table("s3://curated-data/p/d/_iceberg/t", "p.d__t", snapshot_id=1))
    side.add(touched.table("s3://curated-data/p/d/_iceberg/u", "p.d__u", snapshot_id=2))
    names = sorted(d.name for d in side.datasets())
    assert names == ["p/d/", "p/d/_iceberg/t", "p/d/_iceberg/u"]


def test_a_staging_row_reads_its_stored_file_and_writes_its_parquet_and_quarantine() -> None:
    row = StagingRow(
        project_id=1,
        storage_id=2,
        source_bucket="storage-unique",
        source_key="inmet/a.csv",
        source_sha256=SHA_A,
        code_version="c0de",
        dataset="inmet_hourly",
        layout="inmet",
        status="staged",
        reason=None,
        rows_in=10,
        rows_ok=8,
        rows_rejected=2,
        schema={"station": "string", "temp_c": "double"},
        output_bucket="staging-data",
        output_key="inmet/inmet_hourly/a.parquet",
        output_sha256=SHA_B,
        quarantine_key="inmet/inmet_hourly/_quarantine/a.parquet",
        quarantine_sha256="c" * 64,
    )
    ins, outs = touched.staged(row)
    assert [(d.namespace, d.name, d.sha256, d.rows) for d in ins] == [
        ("s3://storage-unique", "inmet/a.csv", SHA_A, 10)
    ]
    assert [(d.name, d.sha256, d.rows) for d in outs] == [
        ("inmet/inmet_hourly/a.parquet", SHA_B, 8),
        ("inmet/inmet_hourly/_quarantine/a.parquet", "c" * 64, 2),
    ]
    assert outs[0].schema == (("station", "string"), ("temp_c", "double"))
    refused = StagingRow(**{**vars(row), "status": "rejected", "output_key": None, "quarantine_key": None})
    ins, outs = touched.staged(refused)
    assert (len(ins), outs, ins[0].rows) == (1, [], None)


def test_a_curated_version_and_its_cut() -> None:
    made = CuratedRecord(
        project_id=1,
        dataset="inmet_hourly",
        version="v0003",
        fingerprint="f",
        inputs=[{"bucket": "staging-data", "key": "p/inmet_hourly/a.parquet", "sha256": SHA_A, "rows": 5}],
        files={},
        bucket="curated-data",
        prefix="p/inmet_hourly/v0003",
        manifest_key="p/inmet_hourly/v0003/manifest.json",
        manifest_sha256=SHA_B,
        run_id="r",
        table_format="iceberg",
        tables={"hourly": {"identifier": "p.inmet_hourly__hourly", "snapshot_id": 7, "rows": 5}},
    )
    ins, outs = touched.curated_version(made, "p", "inmet_hourly")
    assert [(d.namespace, d.name, d.rows) for d in ins] == [
        ("s3://staging-data", "p/inmet_hourly/a.parquet", 5)
    ]
    assert [(d.namespace, d.name, d.version, d.rows) for d in outs] == [
        ("s3://curated-data", "p/inmet_hourly/_iceberg/hourly", "7", 5),
        ("s3://curated-data", "p/inmet_hourly/v0003/manifest.json", SHA_B, None),
    ]
    cut = DatasetRecord(
        project_id=1,
        dataset="inmet_hourly",
        version="v0003-hash-1",
        curated_id=3,
        params={"strategy": "hash"},
        fingerprint="f",
        bucket="datasets",
        prefix="p/inmet_hourly/v0003-hash-1",
        files={
            n: {"key": f"p/x/{n}.parquet", "sha256": SHA_A, "rows": 1, "bytes": 9} for n in ("test", "train")
        },
        manifest_key="p/x/manifest.json",
        manifest_sha256=SHA_B,
        run_id="r",
    )
    cur = {"bucket": "curated-data", "project_prefix": "p", "dataset": "inmet_hourly"}
    ins, outs = touched.dataset_cut(cur, made.tables["hourly"], "hourly", cut)  # type: ignore[index]
    assert [(d.name, d.table, d.version) for d in ins] == [
        ("p/inmet_hourly/_iceberg/hourly", "p.inmet_hourly__hourly", "7")
    ]
    assert [(d.namespace, d.name, d.rows) for d in outs] == [
        ("s3://datasets", "p/x/test.parquet", 1),
        ("s3://datasets", "p/x/train.parquet", 1),
        ("s3://datasets", "p/x/manifest.json", None),
    ]


# facets ------------------------------------------------------------------------------------------
def test_facets_carry_the_sha256_rows_schema_and_table_identity() -> None:
    lineage = touched.Touched()
    lineage.read(touched.obj("storage-unique", "p/a.csv", sha256=SHA_A, rows=10, size=99))
    lineage.wrote(touched.obj("staging-data", "p/a.parquet", sha256=SHA_B, rows=8, schema={"t": "double"}))
    lineage.wrote(
        touched.table("s3://curated-data/p/d/_iceberg/hourly", "p.d__hourly", snapshot_id=7, rows=8)
    )
    lineage.wrote(touched.Dataset("s3://recepcao-raw", "p/old.csv", dropped=True))
    summary = {"counters": {"seen": 1, "new": 1}, "audit_log_id": 12, "run_log_id": "d/r/t/-1/1"}
    ol = operator_lineage(lineage, summary)

    (inp,) = [as_json(d) for d in ol.inputs]
    assert (inp["namespace"], inp["name"]) == ("s3://storage-unique", "p/a.csv")
    assert inp["facets"]["version"]["datasetVersion"] == SHA_A
    assert inp["facets"]["trilha"]["sha256"] == SHA_A
    assert inp["inputFacets"]["inputStatistics"] == {**inp["inputFacets"]["inputStatistics"], "rowCount": 10}
    outs = {d["name"]: d for d in (as_json(o) for o in ol.outputs)}
    staged = outs["p/a.parquet"]
    assert staged["outputFacets"]["outputStatistics"]["rowCount"] == 8
    assert staged["facets"]["version"]["datasetVersion"] == SHA_B
    assert [(f["name"], f["type"]) for f in staged["facets"]["schema"]["fields"]] == [("t", "double")]
    table = outs["p/d/_iceberg/hourly"]
    assert table["namespace"] == "s3://curated-data"
    assert table["facets"]["version"]["datasetVersion"] == "7"
    assert table["facets"]["symlinks"]["identifiers"] == [
        {"namespace": "iceberg://trilha", "name": "p.d__hourly", "type": "TABLE"}
    ]
    assert table["facets"]["catalog"]["framework"] == "iceberg"
    assert "trilha" not in table["facets"]
    assert outs["p/old.csv"]["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "DROP"
    run = as_json(ol.run_facets["trilha"])
    assert (run["counters"], run["audit_log_id"], run["run_log_id"]) == (
        {"seen": 1, "new": 1},
        12,
        "d/r/t/-1/1",
    )
    assert (run["inputs_declared"], run["outputs_declared"]) == (1, 3)
    assert run["_schemaURL"].endswith("#/$defs/TrilhaRunFacet")


def test_an_aggregate_says_how_many_objects_it_stands_for() -> None:
    lineage = touched.Touched(limit=1)
    for i in range(3):
        lineage.wrote(touched.obj("datasets", f"p/v1/{i}.parquet", sha256=SHA_A, rows=2, size=5))
    (out,) = [as_json(d) for d in operator_lineage(lineage, None).outputs]
    assert out["name"] == "p/v1/"
    assert out["facets"]["trilha"] == {
        **out["facets"]["trilha"],
        "objects": 3,
        "aggregated": True,
    }
    assert "sha256" not in out["facets"]["trilha"]  # an aggregate has no digest (None is left out)
    assert "version" not in out["facets"]
    assert out["outputFacets"]["outputStatistics"] == {
        **out["outputFacets"]["outputStatistics"],
        "rowCount": 6,
        "size": 15,
        "fileCount": 3,
    }


# through the provider's extractor, and the extra links ---------------------------------------------
class Declaring(TrilhaBaseOperator):
    """Reads one object and writes one; then fails when told to (after declaring)."""

    def __init__(self, *, fail: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail = fail

    def run(self, context: Any, counters: Counters) -> dict[str, Any]:
        counters.read("storage-unique", "p/in.csv", sha256=SHA_A, size=3)
        counters.wrote("staging-data", "p/out file.parquet", sha256=SHA_B, rows=4)
        if self.fail:
            counters.problem("failed", "p/other.csv", "boom")
        return {}


def declaring(fail: bool = False) -> Declaring:
    op = Declaring(task_id="declare", fail=fail)
    wired(op, FakeAudit(), FakeMinio())
    return op


def names(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_the_providers_extractor_gets_the_declared_datasets_on_success_and_on_failure() -> None:
    ti = SimpleNamespace(task_id="declare")
    op = declaring()
    assert DefaultExtractor(op).extract_on_complete(ti).inputs == []  # type: ignore[union-attr]
    run_operator(op)
    got = DefaultExtractor(op).extract_on_complete(ti)
    assert got is not None
    assert names(got.inputs) == [("s3://storage-unique", "p/in.csv")]
    assert names(got.outputs) == [("s3://staging-data", "p/out file.parquet")]
    assert got.run_facets["trilha"].counters["seen"] == 0

    failing = declaring(fail=True)
    with pytest.raises(AirflowException, match="1 item"):
        run_operator(failing)
    got = DefaultExtractor(failing).extract_on_failure(ti)
    assert got is not None
    assert names(got.outputs) == [("s3://staging-data", "p/out file.parquet")]
    assert got.run_facets["trilha"].counters["failed"] == 1


def test_the_extra_links_search_the_trilha_page_for_the_first_output() -> None:
    op = declaring()
    assert TrilhaOutputLink().get_link(op, ti_key=None) == ""  # nothing ran: no link
    run_operator(op)
    assert TrilhaOutputLink().get_link(op, ti_key=None) == "/trilha/?q=p/out%20file.parquet"
    assert TrilhaTraceLink().get_link(op, ti_key=None) == f"/trilha/?q={SHA_B}"
    assert [type(link) for link in op.operator_extra_links] == [
        TrilhaRunLink,
        TrilhaOutputLink,
        TrilhaTraceLink,
    ]


# disabled unless configured --------------------------------------------------------------------------
def provider_state(extra_env: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if "OPENLINEAGE" not in k}
    env.update(extra_env)
    script = (
        "import json; from airflow.providers.openlineage import conf; "
        "from airflow.providers.openlineage.plugins.openlineage import OpenLineageProviderPlugin as P; "
        "print(json.dumps({'disabled': conf.is_disabled(), 'listeners': len(P.listeners)}))"
    )
    res = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return {**json.loads(res.stdout.strip().splitlines()[-1]), "noise": "openlineage" in res.stderr.lower()}


def test_openlineage_is_off_without_a_transport_and_on_with_one(tmp_path: Any) -> None:
    assert provider_state({}) == {"disabled": True, "listeners": 0, "noise": False}
    transport = json.dumps({"type": "file", "log_file_path": str(tmp_path / "ol.jsonl"), "append": True})
    assert provider_state({"AIRFLOW__OPENLINEAGE__TRANSPORT": transport}) == {
        "disabled": False,
        "listeners": 1,
        "noise": False,
    }


def test_the_links_survive_dag_serialization_with_no_plugin_registering_them() -> None:
    """Airflow 3 stores an operator's own links as ``{name: xcom key}`` and the API server reads the URL
    the worker pushed under that key: no plugin registration is needed (DAG files of every Trilha DAG)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    from tests.dags.test_dag_integrity import DAGS_DIR

    bag = DagBag(dag_folder=str(DAGS_DIR / "reception_promote.py"))
    dag = bag.dags["reception_promote"]
    back = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    links = {link.name: link.xcom_key for link in back.get_task("promote").operator_extra_links}
    assert links == {
        "Trilha: what this run wrote": "_link_TrilhaRunLink",
        "Trilha: output": "_link_TrilhaOutputLink",
        "Trilha: trace": "_link_TrilhaTraceLink",
    }
