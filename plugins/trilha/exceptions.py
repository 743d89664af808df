"""Domain errors. Every message points at the evidence: the file, key, field or row involved."""

from __future__ import annotations


class TrilhaError(Exception):
    """Base class of every error Trilha raises on purpose."""


class InvalidKeyError(TrilhaError, ValueError):
    """An object key or name that must not enter the lake (``..``, absolute, control characters...)."""


class InvalidProjectError(TrilhaError, ValueError):
    """A project name or prefix that is malformed, unknown, or already taken by another project."""


class SettingsError(TrilhaError, ValueError):
    """``airflow_settings.yaml`` is malformed; the message names the entry and the field."""


class MigrationError(TrilhaError):
    """A schema migration failed; the message names the migration file."""


class IntegrityError(TrilhaError):
    """A copy or upload whose size or checksum does not match what was expected."""


class ObjectMissingError(TrilhaError):
    """An object the audit records is not in its bucket; the message names the bucket and key."""


class SourceError(TrilhaError):
    """A capture source (Drive folder, local folder) cannot be read as asked."""


class ExportTooLargeError(SourceError):
    """A Google Docs/Sheets/Slides file is larger than Drive's export limit."""


class ObjectWriteError(TrilhaError):
    """The S3 server refused to store one object (after botocore's retries) while it answers other
    requests: a per-item failure, unlike an unreachable endpoint or refused credentials. The message
    names the object and the server's answer."""


class ConnectionSetupError(TrilhaError):
    """A connection is missing or points at something unreachable; the message names the conn id."""


class ParseError(TrilhaError, ValueError):
    """A file matches no known layout or cannot be parsed; the message names the file and line."""


class ReconcileError(TrilhaError, ValueError):
    """A reconcile that cannot run as asked (an unknown project, a bad parameter); the message says
    what was expected."""
