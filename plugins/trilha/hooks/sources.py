"""Capture sources: where ``drive_capture`` reads files from, behind one interface.

A :class:`CaptureSource` lists the files under a root lazily (as :class:`SourceFile` records) and
streams the bytes of one file in bounded chunks. Two implementations exist: the Google Drive hook
(:class:`trilha.hooks.drive.TrilhaDriveHook`) and :class:`LocalFolderSource` here, which also serves
synced folders such as an rclone mount of Drive and the demo with no Google account.

The records carry what the source already knows about the content (size, md5, sha256, revision) so
that the caller can skip content it captured before without reading a byte of it.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from trilha.domain.digest import CHUNK_SIZE, Digest, digest_stream
from trilha.exceptions import SourceError

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFile:
    """One file offered by a capture source.

    :param source_kind: ``"drive"`` or ``"local"``.
    :param source_id: the Drive file id, or the absolute local path.
    :param relative_path: the path under the source root with ``/`` separators (on Drive, the folder
        names joined). It is *not* validated here: the caller validates it as an object key.
    :param size: size in bytes; ``None`` for Google-native documents before export.
    :param md5: hex md5 (Drive ``md5Checksum``) or ``None`` when the source does not know it.
    :param sha256: hex sha256 (Drive ``sha256Checksum``) or ``None`` when the source does not know it.
    :param mime_type: the source's MIME type (for Google-native documents, the native type).
    :param modified_time: last modification, RFC 3339 in UTC.
    :param revision: what changes when the content changes: Drive ``headRevisionId`` (or
        ``modifiedTime`` for Google-native documents, which have none); locally ``"<mtime_ns>-<size>"``.
    :param export_mime_type: for Google Docs/Sheets/Slides, the format the content is exported to.
    :param drive_id: the shared drive id when the file lives in a shared drive.
    """

    source_kind: str
    source_id: str
    relative_path: str
    size: int | None
    md5: str | None
    sha256: str | None
    mime_type: str | None
    modified_time: str | None
    revision: str | None
    export_mime_type: str | None = None
    drive_id: str | None = None
    #: Why the entry cannot be captured (a FIFO, a link out of the folder...): the caller records it
    #: as a rejection, so what a folder holds but Trilha does not take is in the audit, not only a log.
    problem: str | None = None

    @classmethod
    def refused(cls, kind: str, path: str, relative_path: str, why: str) -> SourceFile:
        return cls(kind, path, relative_path, None, None, None, None, None, None, problem=why)


@runtime_checkable
class CaptureSource(Protocol):
    """What the capture operator needs from a source: a lazy listing and streamed content."""

    kind: str

    def describe(self) -> str:
        """Say what is being read, for logs and the audit (``"local folder /data/in"``)."""
        ...

    def list_files(self, prefix: str = "") -> Iterator[SourceFile]:
        """Yield every file under the root, recursively, whose ``relative_path`` starts with ``prefix``."""
        ...

    def iter_chunks(self, file: SourceFile, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the content of ``file`` in chunks of at most ``chunk_size`` bytes."""
        ...


@runtime_checkable
class HashesLocally(Protocol):
    """A source whose bytes are local, so that hashing a file costs a read and no transfer: the caller
    lists without checksums, skips what it captured at the same revision, and hashes only the rest."""

    def with_checksums(self, file: SourceFile) -> SourceFile:
        """``file`` with its sha256 and md5 filled in (unchanged when it cannot be hashed)."""
        ...


#: A link to a folder is not an error (the folder itself may be captured elsewhere): it is skipped.
FOLDER_LINK = "symbolic link to a folder: not followed"


def digest_file(path: str | Path, chunk_size: int = CHUNK_SIZE) -> Digest:
    """Hash a local file in one pass (sha256, md5 and size from the same chunks)."""
    with open(path, "rb") as fh:
        return digest_stream(fh, chunk_size)


def is_hidden(name: str) -> bool:
    """Dot-names are tool and OS metadata (``.DS_Store``, ``.git``, ``.Trash-1000``), not data."""
    return name.startswith(".")


def rfc3339_from_ns(ns: int) -> str:
    """Format a POSIX timestamp in nanoseconds like Drive does: ``2024-01-31T12:00:00.123Z``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def folder_may_contain(folder_rel: str, prefix: str) -> bool:
    """Whether a folder (``"a/b/"``) can hold paths starting with ``prefix``, so that it is worth listing."""
    return folder_rel.startswith(prefix) or prefix.startswith(folder_rel)


class LocalFolderSource:
    """A local or synced folder (for example an rclone mount of Drive) as a capture source.

    The listing is recursive and deterministic: depth-first, entries sorted by name in each folder.
    Names starting with a dot (``.DS_Store``, ``.git``, ``.Trash-1000``...) are skipped, files and
    folders alike, because they are tool and OS metadata rather than data. Symbolic links are followed
    only when they point to a file inside the root; links to folders are never followed (they could
    loop, and their files are listed where they really live) and links leading outside the root are
    skipped with a warning, so that the root is the boundary of what gets captured.

    :param root: the folder to capture from. It must exist and be a directory.
    :param compute_checksums: hash every file while listing (sha256 and md5 from one pass), so that the
        caller can skip known content before uploading it. With ``False`` the records carry no
        checksums and the caller hashes while streaming.
    """

    kind: str = "local"

    def __init__(self, root: str | Path, compute_checksums: bool = True) -> None:
        given = Path(root).expanduser()
        if not given.exists():
            raise SourceError(
                f"local folder {str(given)!r}: does not exist; expected an existing directory "
                "(check the folder path parameter, and that the mount or sync is up)"
            )
        if not given.is_dir():
            raise SourceError(
                f"local folder {str(given)!r}: expected a directory, got a file; "
                "give the folder that contains the files to capture"
            )
        # Resolved once, so that containment checks compare real paths even when the root itself is
        # reached through a symlink (a mount point under /mnt, a synced folder under $HOME).
        self.root = given.resolve()
        self.compute_checksums = compute_checksums

    def describe(self) -> str:
        """:return: ``"local folder <absolute root>"``."""
        return f"local folder {self.root}"

    def list_files(self, prefix: str = "") -> Iterator[SourceFile]:
        """Yield the files under the root, lazily and in a stable order.

        A file that disappears while the folder is being listed is skipped with a warning (there is
        nothing left to capture). A file that cannot be hashed (for example no read permission) is
        still yielded, without checksums, so that reading it reports the failure for that file alone.

        :param prefix: keep only files whose ``relative_path`` starts with it; folders that cannot
            match are not even listed.
        """
        yield from self._walk(self.root, "", prefix)

    def _walk(self, folder: Path, folder_rel: str, prefix: str) -> Iterator[SourceFile]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except FileNotFoundError:
            log.warning("local folder %s vanished while it was being listed; skipped", folder)
            return
        except OSError as exc:
            # An unreadable folder would silently hide files: stop, and say which folder to fix.
            raise SourceError(
                f"local folder {str(folder)!r}: cannot be listed ({exc.strerror}); "
                "fix its permissions or move it out of the capture root"
            ) from exc

        for entry in entries:
            if is_hidden(entry.name):
                log.debug("skipped hidden entry %s", entry.path)
                continue
            rel = f"{folder_rel}{entry.name}"
            try:
                if entry.is_symlink():
                    why = self._symlink_problem(Path(entry.path))
                    if why:
                        if why != FOLDER_LINK and rel.startswith(prefix):
                            yield SourceFile.refused(self.kind, entry.path, rel, why)
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    if folder_may_contain(f"{rel}/", prefix):
                        yield from self._walk(Path(entry.path), f"{rel}/", prefix)
                    continue
                elif not entry.is_file(follow_symlinks=False):
                    if rel.startswith(prefix):  # never opened: reading a FIFO would block the run
                        yield SourceFile.refused(
                            self.kind, entry.path, rel, "not a regular file (a FIFO, socket or device)"
                        )
                    continue
                if not rel.startswith(prefix):
                    continue
                record = self._describe_file(Path(entry.path), rel)
            except FileNotFoundError:
                log.warning("local file %s vanished while the folder was being listed; skipped", entry.path)
                continue
            if record is not None:
                yield record

    def _symlink_problem(self, link: Path) -> str | None:
        """Why a symlink is not captured, or ``None`` when it names a regular file inside the root."""
        target = link.resolve()
        if not target.exists():
            return "broken symbolic link: its target does not exist"
        if target.is_dir():
            log.info("skipped symlink to a folder %s: folder links are not followed", link)
            return FOLDER_LINK
        if not target.is_relative_to(self.root):
            # The target is not named: it is outside what the user asked to capture.
            return "symbolic link to a file outside the capture folder: not followed"
        if not target.is_file():
            return "symbolic link to something that is not a regular file (a FIFO, socket or device)"
        return None

    def _describe_file(self, path: Path, rel: str) -> SourceFile | None:
        stat = path.stat()
        listed = SourceFile(
            source_kind=self.kind,
            source_id=str(path),
            relative_path=rel,
            size=stat.st_size,
            md5=None,
            sha256=None,
            mime_type=mimetypes.guess_type(path.name)[0],
            modified_time=rfc3339_from_ns(stat.st_mtime_ns),
            revision=f"{stat.st_mtime_ns}-{stat.st_size}",
        )
        return self.with_checksums(listed) if self.compute_checksums else listed

    def with_checksums(self, file: SourceFile) -> SourceFile:
        """``file`` with its sha256 and md5 (one pass over the bytes), if it is still as listed.

        A file that changed since it was listed, or while it was hashed, comes back without checksums
        and with its new size and revision: checksums of a moving file would describe nothing, and
        the upload then hashes what it really sends. A file that cannot be read comes back without
        checksums too, so that reading it reports the failure for that file alone.

        :raises FileNotFoundError: the file vanished since it was listed.
        """
        path = Path(file.source_id)
        before = path.stat()
        current = f"{before.st_mtime_ns}-{before.st_size}"
        if current != file.revision:
            log.warning("local file %s changed since it was listed; listed without checksums", path)
            return replace(file, size=before.st_size, revision=current, md5=None, sha256=None)
        try:
            digest = digest_file(path)
        except FileNotFoundError:
            raise
        except OSError as exc:
            log.warning("local file %s: cannot be hashed while listing (%s)", path, exc.strerror)
            return file
        after = path.stat()
        if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
            log.warning("local file %s changed while it was hashed; listed without checksums", path)
            return replace(file, size=after.st_size, revision=f"{after.st_mtime_ns}-{after.st_size}")
        return replace(file, md5=digest.md5, sha256=digest.sha256)

    def iter_chunks(self, file: SourceFile, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream a listed file in chunks of at most ``chunk_size`` bytes (memory stays bounded).

        The file must still be the one that was listed: if its size or mtime changed (since it was
        listed, or while it is read) a :class:`SourceError` is raised rather than yielding bytes that
        the listed checksums do not describe. A re-run captures the new content.

        :param file: a record yielded by :meth:`list_files`.
        :param chunk_size: the largest chunk yielded, in bytes.
        :raises SourceError: the file vanished, changed, is unreadable, or lies outside the root.
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size: expected a positive number of bytes, got {chunk_size}")
        path = Path(file.source_id)
        if not path.resolve().is_relative_to(self.root):
            raise SourceError(
                f"local file {file.relative_path!r} ({path}): expected a file inside {self.root}, "
                "got a path outside the capture root"
            )
        try:
            handle = open(path, "rb")  # closed by the with block below
        except FileNotFoundError as exc:
            raise SourceError(
                f"local file {file.relative_path!r} ({path}): vanished since it was listed "
                f"from {self.root}; nothing to capture"
            ) from exc
        except OSError as exc:
            raise SourceError(
                f"local file {file.relative_path!r} ({path}): cannot be opened ({exc.strerror})"
            ) from exc
        with handle:
            self._check_unchanged(handle, file, "since it was listed")
            try:
                while chunk := handle.read(chunk_size):
                    yield chunk
            except OSError as exc:
                raise SourceError(
                    f"local file {file.relative_path!r} ({path}): read failed ({exc.strerror})"
                ) from exc
            self._check_unchanged(handle, file, "while it was read")

    @staticmethod
    def _check_unchanged(handle: BinaryIO, file: SourceFile, when: str) -> None:
        if file.revision is None:
            return
        stat = os.fstat(handle.fileno())
        now = f"{stat.st_mtime_ns}-{stat.st_size}"
        if now != file.revision:
            raise SourceError(
                f"local file {file.relative_path!r} ({file.source_id}): changed {when} "
                f"(expected revision {file.revision}, got {now}); it is skipped now and a re-run captures it"
            )
