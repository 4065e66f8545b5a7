"""The cloud metric store: BigQuery, through the official client.

Queries run with the store's dataset as default dataset, so the same unqualified table names work
here and in the embedded store. Rows land by streaming inserts with each row's `event_id` as
insert id: BigQuery's de-duplication of those is best effort, so reads de-duplicate anyway
(`schema.deduped`). With BIGQUERY_EMULATOR_HOST set (with its scheme) the client talks to that
emulator anonymously; results are read over REST, never through `to_dataframe`, which would
reach for Google's Storage API host. Statements go through jobs.insert (`client.query`), not
jobs.query: bqemulator 1.4.0 ignores the default dataset of DDL sent through jobs.query.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

from functions.adapters.metric_store import schema
from functions.adapters.metric_store.port import AppendRejected, DryRun, Param, QueryRejected, param_type

EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
BATCH_ROWS = 10_000  # BigQuery's recommended ceiling per insertAll request
RETRY_SECONDS = 30.0  # the client's defaults retry for 10 (API) and 40 (job) minutes: past any function timeout


def _client(project: str, location: str | None) -> bigquery.Client:
    host = os.environ.get(EMULATOR_ENV)
    if host:
        return bigquery.Client(project=project, location=location, credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": host})
    return bigquery.Client(project=project, location=location)


def _utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC, as BigQuery and the embedded store take them."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_value(value: Any) -> Any:
    return _utc(value).isoformat() if isinstance(value, datetime) else value


def _scalar(bq_type: str, value: Any) -> Any:
    if bq_type == "TIMESTAMP":
        return _utc(value)
    return float(value) if bq_type == "FLOAT64" else value


def query_parameter(name: str, value: Param) -> bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter:
    """A named parameter typed from its Python value (see `port.param_type`)."""
    bq_type = param_type(name, value)
    if isinstance(value, list | tuple):
        item = bq_type[len("ARRAY<"):-1]
        return bigquery.ArrayQueryParameter(name, item, [_scalar(item, v) for v in value])
    return bigquery.ScalarQueryParameter(name, bq_type, _scalar(bq_type, value))


def _reason(exc: gexc.GoogleAPICallError) -> str:
    """The engine's own message, without the client's HTTP prefix and job footer."""
    for error in exc.errors or ():
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.message).splitlines()[0]


def _batches(rows: Sequence[Mapping[str, Any]]) -> Iterator[Sequence[Mapping[str, Any]]]:
    for start in range(0, len(rows), BATCH_ROWS):
        yield rows[start:start + BATCH_ROWS]


class BigQueryStore:
    engine = "bigquery"

    def __init__(self, project: str, dataset: str, location: str | None = None,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        """`location` (e.g. "EU", "europe-west1") places a dataset this store creates and its jobs;
        None leaves both to BigQuery (US for a new dataset). Transient errors are retried for at
        most `retry_seconds`, then raised."""
        self.project, self.dataset = project, dataset
        self._dataset_ref = bigquery.DatasetReference(project, dataset)
        self._client = _client(project, location)
        self._retry = bigquery.DEFAULT_RETRY.with_timeout(retry_seconds)
        self._job_retry = DEFAULT_JOB_RETRY.with_timeout(retry_seconds)

    def _query(self, sql: str, config: bigquery.QueryJobConfig) -> bigquery.QueryJob:
        # job_retry=None here: given one, the client wraps the job insert in a fixed 10-minute
        # retry of its own; the bounded job retry applies where the result is awaited instead.
        return self._client.query(sql, job_config=config, retry=self._retry, job_retry=None)

    def ensure_schema(self) -> None:
        dataset = bigquery.Dataset(self._dataset_ref)
        if self._client.location:  # an explicit null location is an error to the emulator
            dataset.location = self._client.location
        self._client.create_dataset(dataset, exists_ok=True, retry=self._retry)
        for table in schema.COLUMNS:
            self._query(schema.ddl(table), self._config()).result(retry=self._retry, job_retry=self._job_retry)

    def append(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Rows are checked first; if BigQuery still refuses a batch, the batches before it have
        landed and a retry of the whole call is safe (reads de-duplicate by event_id)."""
        schema.check_rows(table, rows)
        target = self._dataset_ref.table(table)
        for batch in _batches(rows):
            payload = [{k: _json_value(v) for k, v in row.items()} for row in batch]
            try:
                errors = self._client.insert_rows_json(
                    target, payload, row_ids=[str(row.get("event_id")) for row in batch], retry=self._retry)
            except gexc.BadRequest as exc:
                raise AppendRejected(f"{table}: {_reason(exc)}") from None
            if errors:
                raise AppendRejected(f"{table}: {len(errors)} row(s) refused, first: {errors[0]}")
        return len(rows)

    def _config(self, params: Mapping[str, Param] | None = None, **kwargs: Any) -> bigquery.QueryJobConfig:
        return bigquery.QueryJobConfig(
            default_dataset=self._dataset_ref,
            query_parameters=[query_parameter(k, v) for k, v in (params or {}).items()],
            **kwargs,
        )

    def query(self, sql: str, params: Mapping[str, Param] | None = None) -> list[dict[str, Any]]:
        config = self._config(params)
        try:
            rows = self._query(sql, config).result(retry=self._retry, job_retry=self._job_retry)
            return [dict(row.items()) for row in rows]
        except (gexc.BadRequest, gexc.NotFound) as exc:
            raise QueryRejected(_reason(exc)) from None

    def dry_run(self, sql: str, params: Mapping[str, Param] | None = None) -> DryRun:
        config = self._config(params, dry_run=True, use_query_cache=False)
        try:
            job = self._query(sql, config)
        except (gexc.BadRequest, gexc.NotFound) as exc:
            raise QueryRejected(_reason(exc)) from None
        return DryRun(int(job.total_bytes_processed or 0), tuple(field.name for field in job.schema or ()))

    def close(self) -> None:
        self._client.close()
