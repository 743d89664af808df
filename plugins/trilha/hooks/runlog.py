"""The run log: one MongoDB document per task run, through the Mongo provider's ``MongoHook``.

The Postgres audit is the system of record; the run log is the readable, per-run story (counters,
errors, keys touched). So a run log that cannot be written never fails a task: the hook logs a
warning and the task goes on. The provider's ``MongoHook`` reads its connection in ``__init__``,
so it is only ever built inside ``execute`` (lazily, on the first write).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.providers.mongo.hooks.mongo import MongoHook

from trilha import config

#: How long a write may wait for an unreachable server before it gives up (milliseconds).
SERVER_SELECTION_TIMEOUT_MS = 3000


class RunLogHook:
    """Writes run documents to ``<database>.run_log``; never raises on a Mongo failure.

    :param mongo_conn_id: the Mongo connection.
    :param collection: the collection name.
    """

    def __init__(
        self, mongo_conn_id: str = config.MONGO_CONN_ID, collection: str = config.MONGO_RUN_COLLECTION
    ):
        self.mongo_conn_id = mongo_conn_id
        self.collection = collection
        self.last_error: str | None = None

    @cached_property
    def mongo(self) -> MongoHook:
        hook = MongoHook(mongo_conn_id=self.mongo_conn_id)
        # The provider passes extras to MongoClient: bound how long a dead server can stall a task.
        hook.extras.setdefault("serverSelectionTimeoutMS", SERVER_SELECTION_TIMEOUT_MS)
        hook.extras.setdefault("connectTimeoutMS", SERVER_SELECTION_TIMEOUT_MS)
        return hook

    def _collection(self) -> Any:
        client = self.mongo.get_conn()
        database = self.mongo.connection.schema or config.MONGO_DATABASE
        return client.get_database(database).get_collection(self.collection)

    def write(self, document: dict[str, Any], log: Any) -> str | None:
        """Upsert the document by its ``_id``; return the id, or ``None`` (warning logged) on failure."""
        try:
            coll = self._collection()
            coll.replace_one({"_id": document["_id"]}, document, upsert=True)
            return str(document["_id"])
        except Exception as err:  # the run log is best effort by design: see the module docstring
            self.last_error = f"{type(err).__name__}: {str(err)[:300]}"
            log.warning(
                "run log not written to connection %r (%s); the Postgres audit row is the record",
                self.mongo_conn_id,
                self.last_error,
            )
            return None

    def find(self, query: dict[str, Any], limit: int = 50) -> list[dict[str, Any]]:
        return list(self._collection().find(query).sort("started_at", -1).limit(limit))
