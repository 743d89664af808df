"""dataset_split against the real stack: hash and temporal cuts of a curated version, the manifest
written last with the real sha256 of every file, no rework for the same cut, stable hash
assignment when data is added, clear errors for bad parameters, and the optional Drive export.

Google Drive has no endpoint here: the export test fakes it **at the HTTP boundary** with
:class:`googleapiclient.http.HttpMockSequence` serving Drive v3 JSON to the real ``drive v3`` client
(which replaces ``TrilhaDriveHook.get_conn``); it answers each upload with the md5 of the bytes it
actually received, as Drive does. Everything else (S3 server, audit store) is real.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from airflow.sdk.exceptions import AirflowFailException
from googleapiclient.http import HttpMockSequence

from tests.integration.ingest_support import (
    child_result,
    install_fake_drive,
    list_keys,
    new_scope,
    query,
    read,
    run,
    s3,
    snapshot,
    spawn_child,
    wait_until,
)
from tests.integration.process_support import (
    CURATED,
    DATASETS,
    NAME_2003,
    NAME_2019,
    NAME_2024,
    curated,
    curated_rows,
    curated_table,
    data_lines,
    dataset_rows,
    load,
    object_sha,
    parquet,
    record_writes,
    sample,
    sha,
    split,
    staging,
)
from trilha.domain import lineage

pytestmark = pytest.mark.integration

SPLITS = ("train", "validation", "test")
ROW_HASH = {"strategy": "hash", "group_by": "row"}


def key_set(table: pa.Table) -> set[tuple[str, int]]:
    micros = table.column("observed_at").cast(pa.int64()).to_pylist()
    return set(zip(table.column("wmo_code").to_pylist(), micros, strict=True))


def tables(stack: Any, row: dict[str, Any]) -> dict[str, pa.Table]:
    return {name: parquet(stack, DATASETS, row["files"][name]["key"]) for name in SPLITS}


def only(rows: list[dict[str, Any]], version: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["version"] == version]
    return row


@pytest.fixture(scope="module")
def lake(stack: Any) -> dict[str, Any]:
    """Two INMET yearly files (A807 2019, A701 2024) staged and curated, then cut by a row hash (the
    strategy every hash check below relies on; the default cut is tested on its own)."""
    s = new_scope("split")
    load(stack, s, {NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    run(staging(s))
    run(curated(s, dataset="inmet_hourly"))
    op = split(s, **ROW_HASH)
    written = record_writes(op)
    summary = run(op)
    return {"scope": s, "summary": summary, "written": written}


def test_hash_cut_covers_every_curated_row_once(stack: Any, lake: dict[str, Any]) -> None:
    s, summary = lake["scope"], lake["summary"]
    assert summary["created"] is True
    (cur,) = curated_rows(stack, s)
    row = only(dataset_rows(stack, s), summary["version"])
    # the dataset's first cut, and how: a hash of each row's station and hour
    assert row["version"] == "v0001-hash-station-observed_at"
    assert row["curated_id"] == cur["id"]
    hourly = curated_table(cur, "hourly")
    parts = tables(stack, row)
    total = data_lines(sample(NAME_2019)) + data_lines(sample(NAME_2024))
    assert sum(t.num_rows for t in parts.values()) == hourly.num_rows == total
    keys = {name: key_set(t) for name, t in parts.items()}
    assert keys["train"] | keys["validation"] | keys["test"] == key_set(hourly)
    assert not (keys["train"] & keys["validation"])
    assert not (keys["train"] & keys["test"])
    assert not keys["validation"] & keys["test"]
    # 0.7 / 0.15 / 0.15 of 17544 rows: a fair hash is within a few standard deviations of that
    for name, share in zip(SPLITS, (0.7, 0.15, 0.15), strict=True):
        assert abs(parts[name].num_rows / total - share) < 0.02, (name, parts[name].num_rows)
    assert parts["train"].schema == hourly.schema


def test_manifest_is_written_last_and_names_the_real_bytes(stack: Any, lake: dict[str, Any]) -> None:
    s, summary = lake["scope"], lake["summary"]
    row = only(dataset_rows(stack, s), summary["version"])
    (cur,) = curated_rows(stack, s)
    # The three files go up on threads, in any order; the manifest only once all of them are in place.
    *files, last = lake["written"]
    assert sorted(files) == sorted(f"{row['prefix']}/{n}.parquet" for n in SPLITS)
    assert last == row["manifest_key"]
    raw = read(stack, DATASETS, row["manifest_key"])
    assert sha(raw) == row["manifest_sha256"]
    manifest = json.loads(raw)
    assert manifest["version"] == row["version"] == summary["version"]
    assert manifest["parameters"] == {
        "strategy": "hash",
        "table": "hourly",
        "ratios": [0.7, 0.15, 0.15],
        "key_columns": ["wmo_code", "observed_at"],
    }
    assert (manifest["strategy"], manifest["grouping"]) == ("hash", "hash-station-observed_at")
    assert manifest["content_sha256"] == lineage.fingerprint({n: row["files"][n]["sha256"] for n in SPLITS})
    assert manifest["lineage"]["curated_version"] == cur["version"]
    assert manifest["lineage"]["curated_manifest_sha256"] == cur["manifest_sha256"]
    # the lineage names the curated version and the very snapshot that was cut
    assert manifest["lineage"]["curated_table"] == cur["tables"]["hourly"]
    assert manifest["lineage"]["curated_table"]["snapshot_id"] == cur["tables"]["hourly"]["snapshot_id"]
    assert manifest["files"] == row["files"]
    for name in SPLITS:
        f = manifest["files"][name]
        assert object_sha(stack, DATASETS, f["key"]) == f["sha256"], name
        assert parquet(stack, DATASETS, f["key"]).num_rows == f["rows"] == manifest["rows"][name]
    assert row["rows"] == manifest["rows"] == summary["rows"]


def test_the_same_cut_is_made_once(stack: Any, lake: dict[str, Any]) -> None:
    before = snapshot(stack)
    again = run(split(lake["scope"], **ROW_HASH))
    assert again["created"] is False
    assert again["version"] == lake["summary"]["version"]
    assert again["counters"]["skipped"] == 1
    assert snapshot(stack) == before


def test_a_row_keeps_its_split_when_data_is_added(stack: Any, lake: dict[str, Any]) -> None:
    """A807's 2003 year arrives later: v0002 of the curated data, a new cut whose old rows did not move."""
    s, first = lake["scope"], only(dataset_rows(stack, lake["scope"]), lake["summary"]["version"])
    load(stack, s, {NAME_2003: sample(NAME_2003)})
    run(staging(s))
    assert [v["version"] for v in run(curated(s, dataset="inmet_hourly"))["versions"]] == ["v0002"]
    summary = run(split(s, **ROW_HASH))
    assert summary["created"] is True
    assert re.fullmatch(r"v\d{4}-hash-station-observed_at", summary["version"])
    assert summary["version"] != first["version"]
    second = only(dataset_rows(stack, s), summary["version"])
    old, new = tables(stack, first), tables(stack, second)
    for name in SPLITS:
        assert key_set(old[name]) <= key_set(new[name]), name
    added = sum(new[n].num_rows for n in SPLITS) - sum(old[n].num_rows for n in SPLITS)
    assert added == data_lines(sample(NAME_2003))


def test_temporal_cut_has_nothing_from_the_future(stack: Any, lake: dict[str, Any]) -> None:
    s = lake["scope"]
    summary = run(
        split(
            s,
            strategy="temporal",
            validation_start="2024-05-01",
            test_start="2024-09-01T00:00:00Z",
            curated_version="v0001",
        )
    )
    row = only(dataset_rows(stack, s), summary["version"])
    assert re.fullmatch(r"v\d{4}-temporal", row["version"])
    assert row["strategy"] == "temporal"
    parts = tables(stack, row)
    times = {n: parts[n].column("observed_at") for n in SPLITS}
    validation_at = datetime(2024, 5, 1, tzinfo=UTC)
    test_at = datetime(2024, 9, 1, tzinfo=UTC)
    assert pc.max(times["train"]).as_py() < validation_at <= pc.min(times["validation"]).as_py()
    assert pc.max(times["validation"]).as_py() < test_at <= pc.min(times["test"]).as_py()
    # all of A807's 2019 is train; A701's 2024 is split at the cut-offs, hour by hour
    assert parts["validation"].num_rows == (31 + 30 + 31 + 31) * 24
    assert parts["test"].num_rows == (30 + 31 + 30 + 31) * 24
    assert parts["train"].num_rows == data_lines(sample(NAME_2019)) + (31 + 29 + 31 + 30) * 24
    assert set(parts["test"].column("wmo_code").to_pylist()) == {"A701"}


def test_the_default_cut_is_temporal_and_a_grouped_hash_keeps_station_months_whole(stack: Any) -> None:
    """With the DAG's defaults a time series is cut by time, its cut-off days from the ratios of
    the rows; a hash cut grouped by month puts each station-month in one split, and keeps it there
    when another year arrives."""
    s = new_scope("splitdefault")
    load(stack, s, {NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    run(staging(s))
    run(curated(s, dataset="inmet_hourly"))
    summary = run(split(s))
    row = only(dataset_rows(stack, s), summary["version"])
    assert (row["version"], row["strategy"]) == ("v0001-temporal", "temporal")
    # 70% of 17,544 rows is reached on 26 May 2024 (8,760 + 147 days), 85% on 13 September
    assert (row["params"]["validation_start"], row["params"]["test_start"]) == ("2024-05-27", "2024-09-14")
    assert row["rows"] == {"train": 8760 + 147 * 24, "validation": 110 * 24, "test": 109 * 24}
    parts = tables(stack, row)
    assert pc.max(parts["train"].column("observed_at")).as_py() < datetime(2024, 5, 27, tzinfo=UTC)
    assert pc.min(parts["test"].column("observed_at")).as_py() == datetime(2024, 9, 14, tzinfo=UTC)

    def months(r: dict[str, Any]) -> dict[tuple[str, str], str]:
        owner: dict[tuple[str, str], str] = {}
        for name, t in tables(stack, r).items():
            for code, at in zip(
                t.column("wmo_code").to_pylist(), t.column("observed_at").to_pylist(), strict=True
            ):
                assert owner.setdefault((code, at.strftime("%Y-%m")), name) == name, (code, at)
        return owner

    grouped = run(split(s, strategy="hash"))
    assert grouped["version"] == "v0002-hash-station-month"
    before = months(only(dataset_rows(stack, s), grouped["version"]))
    assert len(before) == 24
    assert set(before.values()) == set(SPLITS)
    load(stack, s, {NAME_2003: sample(NAME_2003)})
    run(staging(s))
    run(curated(s, dataset="inmet_hourly"))
    again = run(split(s, strategy="hash"))
    assert again["version"] == "v0003-hash-station-month"
    after = months(only(dataset_rows(stack, s), again["version"]))
    assert {k: after[k] for k in before} == before
    assert len(after) == 24 + 12


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"ratios": [0.8, 0.3, 0.1]}, ["ratios", "summing to 1", "[0.8, 0.3, 0.1]"]),
        ({"ratios": "[0.5, 0.5]"}, ["ratios", "three"]),
        ({"ratios": "[0.7, abc, 0.1]"}, ["ratios", "three numbers"]),
        ({"strategy": "random"}, ["strategy", "'hash' or 'temporal'", "'random'"]),
        ({"strategy": "temporal", "test_start": "2024-05-01"}, ["both validation_start and test_start"]),
        ({"strategy": "hash", "group_by": "fortnight"}, ["group_by", "'month'", "'fortnight'"]),
        ({"table": "weekly"}, ["table", "'daily'", "'hourly'", "'weekly'"]),
        ({"strategy": "hash", "key_columns": ["wmo_code", "no_such"]}, ["key_columns", "no_such"]),
        ({"time_column": "no_such"}, ["time_column", "'no_such'"]),
        ({"curated_version": "v0099"}, ["no curated version", "'v0099'", "run the curated DAG"]),
        (
            {"strategy": "temporal", "validation_start": "2024-09-01", "test_start": "2024-05-01"},
            ["validation_start <= test_start"],
        ),
        (
            {"strategy": "temporal", "validation_start": "1 May", "test_start": "2024-05-01"},
            ["validation_start", "ISO", "'1 May'"],
        ),
    ],
)
def test_bad_parameters_fail_clearly_and_write_nothing(
    stack: Any, lake: dict[str, Any], kwargs: dict[str, Any], words: list[str]
) -> None:
    before = snapshot(stack)
    with pytest.raises(AirflowFailException) as err:
        run(split(lake["scope"], **kwargs))
    for word in words:
        assert word in str(err.value), str(err.value)
    assert snapshot(stack) == before


def test_unknown_project_fails_with_what_to_run() -> None:
    s = new_scope("nosplit")
    with pytest.raises(AirflowFailException, match=f"project '{s.name}': run the curated DAG first"):
        run(split(s))


def race(tmp_path: Any, op: str, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """Run ``op`` in two processes released at the same instant; their summaries."""
    go = tmp_path / f"go-{op}"
    children = []
    for i in range(2):
        ready = tmp_path / f"ready-{op}{i}"
        job = {"op": op, "kwargs": kwargs, "ready_file": str(ready), "go_file": str(go)}
        children.append((spawn_child(job, tmp_path / f"{op}{i}.log"), ready))
    wait_until(lambda: all(r.exists() for _, r in children), 90, f"both {op} children ready")
    go.write_text("go")
    for i, (proc, _) in enumerate(children):
        assert proc.wait(180) == 0, (tmp_path / f"{op}{i}.log").read_text()[-3000:]
    return [child_result(tmp_path / f"{op}{i}.log") for i in range(2)]


def test_two_runs_at_once_make_one_version_and_one_cut(stack: Any, tmp_path: Any) -> None:
    """Two curated and then two dataset_split processes started together over the same input: one
    curated version, one cut, and every recorded sha256 is the stored object's (no run overwrote
    what the other recorded, and no orphan version was written)."""
    s = new_scope("splitrace")
    load(stack, s, {NAME_2019: sample(NAME_2019)})
    run(staging(s))

    made = race(tmp_path, "curated", {"project": s.name, "dataset": "inmet_hourly"})
    assert sorted(len(r["versions"]) for r in made) == [0, 1]
    assert sum(r["counters"]["skipped"] for r in made) == 1
    (cur,) = curated_rows(stack, s)
    assert cur["version"] == "v0001"
    curated_keys = list_keys(stack, CURATED, f"{s.prefix}/")
    # the objects of one version only: its Iceberg files and its manifest (the loser wrote nothing)
    assert sorted(curated_keys) == sorted([cur["manifest_key"], *(o["key"] for o in cur["objects"])])
    assert object_sha(stack, CURATED, cur["manifest_key"]) == cur["manifest_sha256"]

    cuts = race(tmp_path, "split", {"project": s.name})
    assert sorted(r["created"] for r in cuts) == [False, True]
    assert cuts[0]["version"] == cuts[1]["version"]
    (row,) = dataset_rows(stack, s)
    assert object_sha(stack, DATASETS, row["manifest_key"]) == row["manifest_sha256"]
    assert json.loads(read(stack, DATASETS, row["manifest_key"]))["run_id"] == row["run_id"]
    assert len(list_keys(stack, DATASETS, f"{s.prefix}/")) == 4


# --------------------------------------------------------------------------- Drive export


class DriveEcho(HttpMockSequence):
    """HttpMockSequence whose upload answers carry the md5 and size of the bytes really received."""

    def __init__(self, iterable: list[tuple[dict[str, str], Any]]) -> None:
        super().__init__(iterable)
        self.uploads: list[bytes] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any) -> Any:
        if hasattr(body, "read"):
            body = body.read()
        if method == "PUT":
            self.uploads.append(body)
        resp, content = super().request(uri, method, body, headers, **kw)
        if content == b"ECHO":
            n = len(self.uploads)
            content = json.dumps(
                {"id": f"file-{n}", "md5Checksum": hashlib.md5(body).hexdigest(), "size": str(len(body))}
            ).encode()
        return resp, content


def ok(payload: dict[str, Any]) -> tuple[dict[str, str], str]:
    return {"status": "200", "content-type": "application/json; charset=UTF-8"}, json.dumps(payload)


def upload_round(n: int) -> list[tuple[dict[str, str], Any]]:
    """One file: no file of that name yet, a resumable session, the upload answered with its md5."""
    location = f"https://www.googleapis.com/upload/drive/v3/files?uploadType=resumable&upload_id=U{n}"
    return [
        ok({"files": []}),
        ({"status": "200", "location": location}, ""),
        ({"status": "200", "content-type": "application/json; charset=UTF-8"}, "ECHO"),
    ]


def export_to_empty_folder(folder_id: str) -> list[tuple[dict[str, str], Any]]:
    """Drive's answers to a whole export into an empty folder: the folder, two new sub-folders
    (<dataset>/ and <version>/), then the four files."""
    from trilha.hooks.drive import FOLDER_MIME

    return [
        ok({"id": folder_id, "name": folder_id, "mimeType": FOLDER_MIME, "trashed": False}),
        ok({"files": []}),  # <dataset>/ missing under the export folder
        ok({"id": "f-dataset"}),
        ok({"files": []}),  # <version>/ missing under it
        ok({"id": "f-version"}),
        *[r for n in range(4) for r in upload_round(n)],
    ]


@pytest.fixture
def fake_drive(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``fake_drive(responses)`` serves Drive from a :class:`DriveEcho` and returns it."""
    return lambda responses: install_fake_drive(monkeypatch, DriveEcho(responses))


def test_drive_export_sends_every_file_and_the_manifest_last(
    stack: Any, lake: dict[str, Any], fake_drive: Any
) -> None:
    http = fake_drive(export_to_empty_folder("colab"))
    s = lake["scope"]

    summary = run(split(s, key_columns=["wmo_code"], drive_folder_id="colab", **ROW_HASH))

    row = only(dataset_rows(stack, s), summary["version"])
    assert row["drive_folder_id"] == "colab"
    names = [
        json.loads(body)["name"]
        for uri, method, body, _ in http.request_sequence
        if method == "POST" and parse_qs(urlsplit(uri).query).get("uploadType") == ["resumable"]
    ]
    assert names == ["train.parquet", "validation.parquet", "test.parquet", "manifest.json"]
    assert http.uploads[:3] == [read(stack, DATASETS, row["files"][n]["key"]) for n in SPLITS]
    assert http.uploads[3] == read(stack, DATASETS, row["manifest_key"])
    created = [json.loads(body)["name"] for _, m, body, _ in http.request_sequence if m == "POST" and body]
    assert created[:2] == ["inmet_hourly", summary["version"]]
    # stations are kept whole by a station key: each WMO code is in exactly one split
    parts = tables(stack, row)
    owners = [set(parts[n].column("wmo_code").to_pylist()) for n in SPLITS]
    assert sum(len(o) for o in owners) == 2


def test_a_failed_export_is_done_by_the_rerun_without_a_new_cut(
    stack: Any, lake: dict[str, Any], fake_drive: Any
) -> None:
    """Fake Drive (HttpMockSequence): first a 500 on the export folder, then a working Drive. The
    version is recorded and complete in the lake after the failure; the re-run only exports it."""
    from googleapiclient.errors import HttpError

    s = lake["scope"]
    kwargs = {"ratios": [0.8, 0.1, 0.1], "drive_folder_id": "later"}
    fake_drive([({"status": "500", "content-type": "application/json"}, '{"error": {"code": 500}}')])
    with pytest.raises(HttpError):
        run(split(s, **kwargs))
    (row,) = [r for r in dataset_rows(stack, s) if r["params"].get("ratios") == [0.8, 0.1, 0.1]]
    assert (row["drive_folder_id"], row["drive_exported_at"]) == (None, None)
    assert object_sha(stack, DATASETS, row["manifest_key"]) == row["manifest_sha256"]

    before = snapshot(stack)
    http = fake_drive(export_to_empty_folder("later"))
    again = run(split(s, **kwargs))
    assert (again["created"], again["version"]) == (False, row["version"])
    assert again["counters"]["exported"] == 4
    assert snapshot(stack) == before
    assert http.uploads[3] == read(stack, DATASETS, row["manifest_key"])
    (done,) = [r for r in dataset_rows(stack, s) if r["id"] == row["id"]]
    assert done["drive_folder_id"] == "later"
    assert done["drive_exported_at"] is not None


def test_a_failed_split_upload_writes_no_manifest_and_no_row(stack: Any) -> None:
    """One of the three uploads fails (the store refuses it): the task fails with that error, no
    manifest and no inventory row exist, so readers see no version; the re-run makes it whole."""
    s = new_scope("splitfail")
    load(stack, s, {NAME_2024: sample(NAME_2024)})
    run(staging(s))
    run(curated(s, dataset="inmet_hourly"))
    op = split(s)
    upload_stream = op.minio.upload_stream

    def refuse_validation(bucket: str, key: str, stream: Any, **kwargs: Any) -> Any:
        if key.endswith("/validation.parquet"):
            raise ConnectionError("store unreachable while writing validation.parquet")
        return upload_stream(bucket, key, stream, **kwargs)

    op.minio.upload_stream = refuse_validation
    with pytest.raises(ConnectionError, match="validation.parquet"):
        run(op)
    assert dataset_rows(stack, s) == []

    def manifests() -> list[str]:
        return [k for k in list_keys(stack, DATASETS, s.keys) if k.endswith("/manifest.json")]

    assert manifests() == []
    summary = run(split(s))
    row = only(dataset_rows(stack, s), summary["version"])
    assert manifests() == [row["manifest_key"]]
    assert sorted(row["files"]) == sorted(SPLITS)
    assert {object_sha(stack, DATASETS, f["key"]) for f in row["files"].values()} == {
        f["sha256"] for f in row["files"].values()
    }


@pytest.mark.parametrize("change", ["overwritten", "deleted"])
def test_a_curated_file_changed_behind_the_audits_back_is_not_cut(stack: Any, change: str) -> None:
    """The curated table's data files are checked against the sizes its snapshot's manifests
    recorded: one grown in, or deleted from, the curated bucket stops the split with a message
    naming it (not a pyarrow traceback), and nothing is written."""
    s = new_scope(f"splittamper{change[:3]}")
    load(stack, s, {NAME_2024: sample(NAME_2024)})
    run(staging(s))
    run(curated(s, dataset="inmet_hourly"))
    (cur,) = curated_rows(stack, s)
    (data_file,) = [o["key"] for o in cur["objects"] if "/_iceberg/hourly/data/" in o["key"]]
    if change == "overwritten":
        s3(stack).put_object(Bucket=CURATED, Key=data_file, Body=read(stack, CURATED, data_file) + b"\0")
        expected = rf"curated version v0001: .*{data_file}: expected \d+ bytes \(its manifest\), found"
    else:
        s3(stack).delete_object(Bucket=CURATED, Key=data_file)
        expected = rf"curated version v0001: .*{data_file} is missing; expected the data file"
    before = snapshot(stack)
    with pytest.raises(AirflowFailException, match=expected):
        run(split(s))
    assert dataset_rows(stack, s) == []
    assert snapshot(stack) == before


def test_a_v0001_style_version_made_before_iceberg_keeps_working(stack: Any) -> None:
    """A lake curated before the Iceberg tables has v0001 as Parquet files and a manifest (made here
    as the old operator made it): it is still the latest version while its inputs are unchanged and
    is cut through its manifest's sha256; the first new input makes v0002 as Iceberg tables from
    every staged part, and no row of the old cut changes split."""
    from trilha.domain import lineage, manifest
    from trilha.domain.curate import curate
    from trilha.domain.parquet import parquet_bytes_to_table, table_to_parquet_bytes

    s = new_scope("splitlegacy")
    load(stack, s, {NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    run(staging(s))
    staged = query(
        stack,
        "SELECT i.*, p.id AS pid FROM staging_inventory i JOIN projects_registry p ON p.id = i.project_id "
        "WHERE p.name = %s AND i.status = 'staged'",
        (s.name,),
    )
    inputs = manifest.curated_inputs(staged)
    parts = [parquet_bytes_to_table(read(stack, i["bucket"], i["key"])) for i in inputs]
    base = lineage.curated_prefix(s.prefix, "inmet_hourly", "v0001")
    files = {}
    for name, t in sorted(curate("inmet_hourly", parts).items()):
        data = table_to_parquet_bytes(t)
        key = f"{base}/{name}.parquet"
        s3(stack).put_object(Bucket=CURATED, Key=key, Body=data, Metadata={"sha256": sha(data)})
        files[name] = manifest.file_entry(key, sha(data), t.num_rows, len(data))
    doc = lineage.manifest_bytes({"version": "v0001", "inputs": inputs, "files": files})
    s3(stack).put_object(Bucket=CURATED, Key=f"{base}/manifest.json", Body=doc, Metadata={"sha256": sha(doc)})
    query(
        stack,
        "INSERT INTO curated_inventory (project_id, dataset, version, inputs_fingerprint, inputs_count, "
        "rows, bucket, prefix, inputs, files, manifest_key, manifest_sha256, run_id) VALUES (%s, "
        "'inmet_hourly', 'v0001', %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, 'legacy')",
        (
            staged[0]["pid"],
            lineage.inputs_fingerprint(inputs),
            len(inputs),
            files["hourly"]["rows"],
            CURATED,
            base,
            json.dumps(inputs),
            json.dumps(files),
            f"{base}/manifest.json",
            sha(doc),
        ),
    )
    legacy = run(split(s, **ROW_HASH))
    assert legacy["version"] == "v0001-hash-station-observed_at"
    (old_cut,) = dataset_rows(stack, s)
    total = data_lines(sample(NAME_2019)) + data_lines(sample(NAME_2024))
    assert sum(old_cut["rows"].values()) == total
    manifest_doc = json.loads(read(stack, DATASETS, old_cut["manifest_key"]))
    assert manifest_doc["lineage"]["curated_table"] == files["hourly"]

    # unchanged inputs, but the v0001-style tables were made under an older curated logic (UTC-day
    # daily, stations without history): the next run makes v0002 as Iceberg tables, whole
    assert [v["version"] for v in run(curated(s, dataset="inmet_hourly"))["versions"]] == ["v0002"]
    v2 = only(curated_rows(stack, s), "v0002")
    assert (v2["table_format"], v2["tables"]["daily"]["partitions_rewritten"]) == ("iceberg", "all")
    assert v2["tables"]["hourly"]["rows"] == total
    assert run(curated(s, dataset="inmet_hourly"))["versions"] == []
    load(stack, s, {NAME_2003: sample(NAME_2003)})
    run(staging(s))
    assert [v["version"] for v in run(curated(s, dataset="inmet_hourly"))["versions"]] == ["v0003"]
    v3 = only(curated_rows(stack, s), "v0003")
    assert (v3["table_format"], v3["tables"]["hourly"]["partitions_rewritten"]) == ("iceberg", [2003])
    assert v3["tables"]["hourly"]["rows"] == total + data_lines(sample(NAME_2003))
    new_cut = run(split(s, **ROW_HASH))
    assert new_cut["version"] == "v0002-hash-station-observed_at"
    old_parts = tables(stack, old_cut)
    new_parts = tables(stack, only(dataset_rows(stack, s), new_cut["version"]))
    for name in SPLITS:
        assert key_set(old_parts[name]) <= key_set(new_parts[name]), name
