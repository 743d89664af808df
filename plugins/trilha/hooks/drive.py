"""Google Drive as a capture source (``drive_capture``) and as the dataset export target.

:class:`TrilhaDriveHook` extends the Google provider's :class:`GoogleDriveHook`: the provider owns the
connection, the credentials and the client (built lazily by ``get_conn()``); this module adds a
recursive listing that carries Drive's own checksums, streamed downloads and exports in bounded
chunks, and a verified, idempotent upload of dataset files.

Decisions, so that nobody has to rediscover them:

* **Google-native files** have no binary content and are exported: Sheets to XLSX (a CSV export holds
  only the first sheet, so it would drop data silently), Docs and Slides to PDF. The extension is
  added to ``relative_path`` unless the name already ends with it. Other native types (Forms, Maps,
  Sites, Drawings...) are skipped with a log line: they have no export that belongs in a data lake.
  Exports are not byte-stable (the same Sheet can export to different bytes), so their
  ``revision`` is Drive's ``modifiedTime``, which the caller can compare instead of the content.
* **Shortcuts** are skipped with a log line. Their target can live outside the folder that was asked
  for (capturing it would widen the capture silently), a shortcut to a folder can make a cycle, and a
  target inside the folder is captured where it lives anyway.
* **Names** are Drive's: Unicode and spaces kept. A ``/`` inside a Drive name would fake a folder
  level, so it becomes ``_``. Drive allows two items with the same name in one folder; the second
  and later ones (in ``name, createdTime`` order) get `` (<file id>)`` before the extension, so two
  different files never share a ``relative_path``.
"""

from __future__ import annotations

import io
import json
import mimetypes
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

# _escape_drive_query_value: the provider's escaping of values inside a Drive ``q=`` string literal
# (backslash, then quote). Reused rather than copied, so that a fix in the provider reaches us too.
from airflow.providers.google.suite.hooks.drive import GoogleDriveHook, _escape_drive_query_value
from airflow.sdk.exceptions import AirflowNotFoundException
from google.auth.exceptions import DefaultCredentialsError
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload, MediaIoBaseUpload

from trilha.domain.digest import CHUNK_SIZE
from trilha.domain.keys import validate_relative_name
from trilha.exceptions import ConnectionSetupError, ExportTooLargeError, IntegrityError, SourceError
from trilha.hooks.sources import SourceFile, digest_file, folder_may_contain

if TYPE_CHECKING:
    from collections.abc import Iterator

    from trilha.hooks.sources import CaptureSource

FOLDER_MIME = "application/vnd.google-apps.folder"
SHORTCUT_MIME = "application/vnd.google-apps.shortcut"
GOOGLE_APPS_MIME_PREFIX = "application/vnd.google-apps."
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: Google-native type -> (export MIME type, file extension added to the relative path).
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "application/vnd.google-apps.spreadsheet": (XLSX_MIME, ".xlsx"),
    "application/vnd.google-apps.document": ("application/pdf", ".pdf"),
    "application/vnd.google-apps.presentation": ("application/pdf", ".pdf"),
}

#: What a listing asks Drive for: exactly the fields a :class:`SourceFile` is made of.
LIST_FIELDS = (
    "nextPageToken, files(id, name, mimeType, size, md5Checksum, sha256Checksum, "
    "modifiedTime, headRevisionId, driveId, trashed)"
)

#: Drive's largest page.
PAGE_SIZE = 1000

#: Drive refuses to download these, whatever the number of retries.
_UNDOWNLOADABLE_REASONS = frozenset(
    {"fileNotDownloadable", "cannotDownloadFile", "cannotDownloadAbusiveFile", "cannotExportFile"}
)


class DriveConnectionError(ConnectionSetupError, SourceError):
    """The Google connection is missing or has no usable credentials; the message names the conn id.

    It is a :class:`SourceError` too, so that a caller handling source failures handles this one.
    """


def drive_error_reasons(exc: HttpError) -> frozenset[str]:
    """Read the machine reasons (``exportSizeLimitExceeded``...) out of a Drive error body.

    Drive v3 puts them in ``error.errors[].reason``; newer responses may carry ``error.details[].reason``.
    The HTTP status alone cannot tell "too large to export" from "not shared with you".

    :param exc: the error raised by the API client.
    """
    try:
        data = json.loads(exc.content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return frozenset()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return frozenset()
    items = [*(error.get("errors") or []), *(error.get("details") or [])]
    return frozenset(
        item["reason"] for item in items if isinstance(item, dict) and isinstance(item.get("reason"), str)
    )


def _clean_name(name: str, file_id: str) -> str:
    # A "/" in a Drive name is legal but would read as a folder level in a relative path.
    return name.replace("/", "_") if name else file_id


def _disambiguate(rel: str, file_id: str) -> str:
    folder, _, base = rel.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    if not stem:  # no extension, or a dot-name such as ".env"
        stem, dot, ext = base, "", ""
    renamed = f"{stem} ({file_id}){dot}{ext}"
    return f"{folder}/{renamed}" if folder else renamed


class TrilhaDriveHook(GoogleDriveHook):
    """Google Drive through the Google provider: a :class:`~trilha.hooks.sources.CaptureSource`, an uploader.

    The connection is a ``google_cloud_platform`` connection (service-account key in its extra); the
    Drive folder must be shared with that account. The API client is built on first use.

    :param gcp_conn_id: the Google connection id.
    :param folder_id: the Drive folder to capture (the last part of the folder's URL). Needed by
        :meth:`list_files` only.
    :param drive_id: the shared drive that holds the folder. Optional: when the folder is in a shared
        drive, its id is read from the folder itself.
    :param kwargs: passed to :class:`GoogleDriveHook` (``api_version``, ``impersonation_chain``).
    :raises DriveConnectionError: the connection id is not defined.
    """

    conn_name_attr = "gcp_conn_id"
    default_conn_name = "trilha_google"
    conn_type = "google_cloud_platform"
    hook_name = "Trilha Google Drive"

    kind: str = "drive"

    def __init__(
        self,
        gcp_conn_id: str = "trilha_google",
        folder_id: str | None = None,
        drive_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            # The provider reads the connection's extra here (not the client: that stays lazy).
            super().__init__(gcp_conn_id=gcp_conn_id, **kwargs)
        except AirflowNotFoundException as exc:
            raise DriveConnectionError(
                f"Google connection {gcp_conn_id!r}: not defined; create a google_cloud_platform "
                "connection with that id whose extra holds a service-account key (keyfile_dict or "
                f"key_path), in airflow_settings.yaml or as AIRFLOW_CONN_{gcp_conn_id.upper()}, "
                "and share the Drive folder with that service account"
            ) from exc
        self.folder_id = folder_id
        self.drive_id = drive_id

    def get_conn(self) -> Any:
        """Return the Drive v3 client, built on first use by the provider.

        :raises DriveConnectionError: the connection carries no credentials and none are found in the
            environment.
        """
        try:
            return super().get_conn()
        except DefaultCredentialsError as exc:
            raise DriveConnectionError(
                f"Google connection {self.gcp_conn_id!r}: no credentials found; put a service-account "
                "key in its extra (keyfile_dict or key_path)"
            ) from exc

    def describe(self) -> str:
        """:return: ``"drive folder <id>"``, plus the shared drive when one was given."""
        where = f"drive folder {self.folder_id}"
        return f"{where} in shared drive {self.drive_id}" if self.drive_id else where

    # ------------------------------------------------------------------ listing

    def _list_params(self, query: str, drive_id: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "q": query,
            "fields": LIST_FIELDS,
            "pageSize": PAGE_SIZE,
            # A stable order makes listings, and so the duplicate-name suffixes, reproducible.
            "orderBy": "name,createdTime",
            "spaces": "drive",
            "supportsAllDrives": True,
            "includeItemsFromAllDrives": True,
        }
        if drive_id:
            params.update(corpora="drive", driveId=drive_id)
        return params

    def _iter_children(
        self, folder_id: str, drive_id: str | None, extra_query: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Yield the non-trashed items of one folder, fetching pages only as they are consumed."""
        query = f"'{_escape_drive_query_value(folder_id)}' in parents and trashed = false{extra_query}"
        files = self.get_conn().files()
        page_token: str | None = None
        while True:
            params = self._list_params(query, drive_id)
            if page_token:
                params["pageToken"] = page_token
            response = files.list(**params).execute(num_retries=self.num_retries)
            yield from response.get("files", [])
            page_token = response.get("nextPageToken")
            if not page_token:
                return

    def _folder_drive_id(self, folder_id: str, expected_drive_id: str | None) -> str | None:
        """Check that ``folder_id`` is a live folder and return the shared drive it belongs to.

        Listing a shared-drive folder needs ``corpora="drive"`` and its ``driveId``; reading the id from
        the folder saves the user from having to know it.
        """
        try:
            meta = (
                self.get_conn()
                .files()
                .get(fileId=folder_id, fields="id, name, mimeType, driveId, trashed", supportsAllDrives=True)
                .execute(num_retries=self.num_retries)
            )
        except HttpError as exc:
            if exc.status_code == 404:
                raise SourceError(
                    f"Drive folder {folder_id!r}: not found; check the folder id (the last part of the "
                    f"folder's URL) and that the folder is shared with the service account of "
                    f"connection {self.gcp_conn_id!r}"
                ) from exc
            raise
        if meta.get("mimeType") != FOLDER_MIME:
            raise SourceError(
                f"Drive folder {folder_id!r}: expected a folder, got {meta.get('mimeType')!r} "
                f"named {meta.get('name')!r}"
            )
        if meta.get("trashed"):
            raise SourceError(f"Drive folder {folder_id!r} ({meta.get('name')!r}): it is in the trash")
        folder_drive = meta.get("driveId")
        if expected_drive_id and folder_drive and folder_drive != expected_drive_id:
            raise SourceError(
                f"Drive folder {folder_id!r}: expected it in shared drive {expected_drive_id!r}, got shared "
                f"drive {folder_drive!r}; fix drive_id or leave it empty"
            )
        drive_id: str | None = expected_drive_id or folder_drive
        return drive_id

    def list_files(self, prefix: str = "") -> Iterator[SourceFile]:
        """Yield the files under :attr:`folder_id`, breadth-first over sub-folders, lazily.

        Trashed items are skipped. Files without ``md5Checksum``/``sha256Checksum`` are yielded with
        ``None`` checksums: the caller hashes them while downloading.

        :param prefix: keep only files whose ``relative_path`` starts with it; sub-folders that cannot
            match are not listed.
        :raises SourceError: no folder id was given, or it is not a folder this connection can see.
        """
        if not self.folder_id:
            raise SourceError(
                f"{type(self).__name__}: no folder_id; pass the id of the Drive folder to capture"
            )
        drive_id = self._folder_drive_id(self.folder_id, self.drive_id)
        self.log.info("listing %s (shared drive: %s, prefix %r)", self.describe(), drive_id, prefix)
        queue: deque[tuple[str, str]] = deque([(self.folder_id, "")])
        seen: set[str] = set()
        folders = 0
        while queue:
            folder_id, folder_rel = queue.popleft()
            folders += 1
            for item in self._iter_children(folder_id, drive_id):
                if item.get("trashed"):
                    continue
                file_id: str = item["id"]
                name = _clean_name(item.get("name", ""), file_id)
                mime: str = item.get("mimeType", "")
                if mime == FOLDER_MIME:
                    sub = f"{folder_rel}{name}/"
                    if folder_may_contain(sub, prefix):
                        queue.append((file_id, sub))
                    continue
                if mime == SHORTCUT_MIME:
                    self.log.info(
                        "skipped shortcut %s%s (%s): shortcuts are not followed", folder_rel, name, file_id
                    )
                    continue
                export = EXPORT_FORMATS.get(mime)
                if export is None and mime.startswith(GOOGLE_APPS_MIME_PREFIX):
                    self.log.info(
                        "skipped %s%s (%s): Google type %s has no content or export to capture",
                        folder_rel,
                        name,
                        file_id,
                        mime,
                    )
                    continue
                if export is not None and not name.lower().endswith(export[1]):
                    name += export[1]
                rel = f"{folder_rel}{name}"
                if rel in seen:
                    renamed = _disambiguate(rel, file_id)
                    self.log.warning(
                        "two Drive items are named %s; %s is listed as %s", rel, file_id, renamed
                    )
                    rel = renamed
                seen.add(rel)
                if rel.startswith(prefix):
                    yield self._source_file(item, rel, export)
        self.log.info("listed %s folders of %s", folders, self.describe())

    def _source_file(self, item: dict[str, Any], rel: str, export: tuple[str, str] | None) -> SourceFile:
        native = export is not None
        size = item.get("size")
        return SourceFile(
            source_kind=self.kind,
            source_id=item["id"],
            relative_path=rel,
            # Drive's size, md5 and sha256 describe the stored blob; an export is other bytes.
            size=None if native or size is None else int(size),
            md5=None if native else item.get("md5Checksum"),
            sha256=None if native else item.get("sha256Checksum"),
            mime_type=item.get("mimeType"),
            modified_time=item.get("modifiedTime"),
            revision=item.get("modifiedTime") if native else item.get("headRevisionId"),
            export_mime_type=export[0] if export else None,
            drive_id=item.get("driveId"),
        )

    # ------------------------------------------------------------------ content

    def iter_chunks(self, file: SourceFile, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream a file's content (or its export) in chunks of at most ``chunk_size`` bytes.

        Binary files are fetched with ranged ``get_media`` requests of ``chunk_size`` bytes; Google
        documents with ``export_media`` in :attr:`SourceFile.export_mime_type`.

        :param file: a record yielded by :meth:`list_files`.
        :param chunk_size: the largest chunk yielded, in bytes.
        :raises ExportTooLargeError: Drive refused the export (it exports at most 10 MB).
        :raises SourceError: the file vanished (404) or Drive refuses to let it be downloaded.
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size: expected a positive number of bytes, got {chunk_size}")
        if file.source_kind != self.kind:
            raise SourceError(
                f"{file.relative_path!r}: expected a file listed from Drive, "
                f"got source kind {file.source_kind!r}"
            )
        if file.export_mime_type:
            request = (
                self.get_conn().files().export_media(fileId=file.source_id, mimeType=file.export_mime_type)
            )
        else:
            request = self.get_media_request(file_id=file.source_id)
        buffer = io.BytesIO()
        downloader = MediaIoBaseDownload(buffer, request, chunksize=chunk_size)
        done = False
        while not done:
            try:
                _, done = downloader.next_chunk(num_retries=self.num_retries)
            except HttpError as exc:
                mapped = self._download_error(file, exc)
                if mapped is None:
                    raise
                raise mapped from exc
            data = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            # An export ignores the Range header and arrives whole: re-cut it to the promised size.
            for start in range(0, len(data), chunk_size):
                yield data[start : start + chunk_size]

    def _download_error(self, file: SourceFile, exc: HttpError) -> SourceError | None:
        """Turn the Drive refusals that a retry cannot fix into domain errors; ``None`` for the rest."""
        what = f"Drive file {file.relative_path!r} ({file.source_id})"
        reasons = drive_error_reasons(exc)
        if "exportSizeLimitExceeded" in reasons:
            return ExportTooLargeError(
                f"{what}: Drive refused to export it as {file.export_mime_type} "
                "(exportSizeLimitExceeded: Drive exports at most 10 MB); download it from Drive in that "
                "format and capture it as a regular file, or split the document"
            )
        if exc.status_code == 404:
            return SourceError(f"{what}: vanished since it was listed (HTTP 404); nothing to capture")
        refused = reasons & _UNDOWNLOADABLE_REASONS
        if refused:
            return SourceError(
                f"{what}: Drive refuses to download it ({', '.join(sorted(refused))}: {exc.reason}); "
                "check that its owner allows downloads and copies for the connection's account"
            )
        return None

    # ------------------------------------------------------------------ upload (dataset export)

    def upload_files(self, local_paths: list[tuple[Path, str]], parent_folder_id: str) -> list[str]:
        """Upload local files under a Drive folder, creating sub-folders as needed.

        Re-running is safe: a file whose name already exists in its folder with the same md5 is kept
        as is; with other content, the new bytes become a new revision of that file (Drive keeps the
        old one in its revision history) instead of a second file with the same name. Every upload is
        resumable and checked against the md5 that Drive reports back.

        :param local_paths: pairs of (local file, path under the folder with ``/`` separators,
            e.g. ``"train/part-0.parquet"``).
        :param parent_folder_id: the Drive folder to upload into.
        :return: the Drive file ids, in the order of ``local_paths``.
        :raises InvalidKeyError: a remote path is absolute, has ``..`` segments or control characters.
        :raises IntegrityError: Drive reports another md5 than the local file's.
        """
        for _, remote in local_paths:
            validate_relative_name(remote, what="Drive upload path")
        # The export target is not the capture folder: its shared drive comes from the folder alone.
        drive_id = self._folder_drive_id(parent_folder_id, None)
        folder_ids: dict[str, str] = {"": parent_folder_id}
        file_ids: list[str] = []
        for done, (local, remote) in enumerate(local_paths, start=1):
            directory, _, name = remote.rpartition("/")
            parent = self._ensure_folder(directory, folder_ids, drive_id)
            file_ids.append(self._upload_one(Path(local), name, parent, drive_id))
            self.log.info(
                "uploaded %s of %s files to Drive folder %s", done, len(local_paths), parent_folder_id
            )
        return file_ids

    def _ensure_folder(self, directory: str, folder_ids: dict[str, str], drive_id: str | None) -> str:
        """Return the id of ``directory`` under the upload root, creating missing levels.

        Folder ids are cached per upload, so each level is looked up once rather than once per file.
        """
        if directory in folder_ids:
            return folder_ids[directory]
        parent_dir, _, name = directory.rpartition("/")
        parent = self._ensure_folder(parent_dir, folder_ids, drive_id)
        query = f" and name = '{_escape_drive_query_value(name)}' and mimeType = '{FOLDER_MIME}'"
        existing = next(self._iter_children(parent, drive_id, query), None)
        if existing is not None:
            folder_id: str = existing["id"]
        else:
            created = (
                self.get_conn()
                .files()
                .create(
                    body={"name": name, "mimeType": FOLDER_MIME, "parents": [parent]},
                    fields="id",
                    supportsAllDrives=True,
                )
                .execute(num_retries=self.num_retries)
            )
            folder_id = created["id"]
            self.log.info("created Drive folder %s (%s)", directory, folder_id)
        folder_ids[directory] = folder_id
        return folder_id

    def _upload_one(self, local: Path, name: str, parent: str, drive_id: str | None) -> str:
        digest = digest_file(local)
        query = f" and name = '{_escape_drive_query_value(name)}'"
        existing = next(
            (
                item
                for item in self._iter_children(parent, drive_id, query)
                if not str(item.get("mimeType", "")).startswith(GOOGLE_APPS_MIME_PREFIX)
            ),
            None,
        )
        if existing is not None and existing.get("md5Checksum") == digest.md5:
            self.log.info("Drive file %s (%s) already has this content; kept", name, existing["id"])
            return str(existing["id"])
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        files = self.get_conn().files()
        with open(local, "rb") as handle:
            media = MediaIoBaseUpload(handle, mimetype=mime, chunksize=CHUNK_SIZE, resumable=True)
            fields = "id, md5Checksum, size"
            if existing is not None:
                request = files.update(
                    fileId=existing["id"], media_body=media, fields=fields, supportsAllDrives=True
                )
            else:
                request = files.create(
                    body={"name": name, "parents": [parent]},
                    media_body=media,
                    fields=fields,
                    supportsAllDrives=True,
                )
            response = request.execute(num_retries=self.num_retries)
        # Nothing leaves the lake unverified: Drive's md5 of what it stored must be ours.
        if response.get("md5Checksum") != digest.md5:
            raise IntegrityError(
                f"Drive file {response.get('id')!r} uploaded from {local}: expected md5 {digest.md5}, "
                f"got {response.get('md5Checksum')!r}"
            )
        self.log.info(
            "%s %s as Drive file %s (%s bytes)",
            "updated" if existing is not None else "uploaded",
            local,
            response["id"],
            digest.size,
        )
        return str(response["id"])


if TYPE_CHECKING:
    # mypy proves here that the hook satisfies the protocol the capture operator programs against.
    def _is_capture_source(hook: TrilhaDriveHook) -> CaptureSource:
        return hook
