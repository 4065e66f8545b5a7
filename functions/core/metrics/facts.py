"""A metric as a definition over a table the user already has (GrowthBook's "fact table").

`MetricDefinition` names a source (a table, a wildcard table, or a SELECT), the unit and time
columns, the value, a filter, and how the analysis aggregates per unit (SUM, COUNT or ANY), caps
it, and where its attribution window and CUPED pre-period lie. `facts_sql` compiles it to one
BigQuery SELECT of `unit_id STRING, event_time TIMESTAMP, value FLOAT64`; the analysis joins those
facts with exposures and does the rest. Authors write SQL fragments, so every fragment is checked
at definition time: no statement separators, no comments, no DDL/DML keyword, and it must parse
(BigQuery dialect) as the kind of SQL its field expects. A refused fragment is a pydantic error
with its own type (`sql_fragment_refused`), so the API answers 422 naming the field.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import sqlglot
import sqlglot.errors
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import Token, TokenType

FACT_COLUMNS = ("unit_id", "event_time", "value")
# Parsing costs about 15 ms per 1,000 characters of SQL (sqlglot in Python): the limits keep the
# checks of one experiment's definitions (all of them together: `text_chars`) well under a second.
MAX_FRAGMENT_CHARS = 2000
MAX_SOURCE_SQL_CHARS = 8000
MAX_EXPERIMENT_SQL_CHARS = 24000
MAX_NESTING = 40  # brackets; the parser recurses per level (and per NOT, CASE ...): a guard, not a budget
METRIC_NAME_PATTERN = r"^[A-Za-z0-9._:@+=-]{1,160}$"
# dataset.table, project.dataset.table or a bare table of the store's own dataset; a BigQuery
# wildcard table (`events_*`) may end in `*`. Names are plain identifiers (project ids: `-` too).
TABLE_PATTERN = re.compile(r"^(?:(?:[A-Za-z][A-Za-z0-9-]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,1023}\.)?"
                           r"[A-Za-z_][A-Za-z0-9_]{0,1023}\*?$")
# Words that change data, schema, permissions or session state. Checked on the SQL tokens, so a
# string literal ('delete_account') or a back-quoted name never trips them.
FORBIDDEN_KEYWORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "CREATE", "DROP", "ALTER", "RENAME", "GRANT",
    "REVOKE", "EXECUTE", "EXEC", "CALL", "DECLARE", "SET", "BEGIN", "COMMIT", "ROLLBACK", "TRANSACTION",
    "EXPORT", "LOAD", "COPY", "ATTACH", "DETACH", "PRAGMA", "INSTALL", "VACUUM", "CLONE", "UNDROP",
})
_RAW_FORBIDDEN = ((";", "a statement separator ';'"), ("--", "a comment '--'"), ("/*", "a comment '/*'"),
                  ("*/", "a comment end '*/'"))
_UNQUOTED = frozenset({TokenType.STRING, TokenType.IDENTIFIER, TokenType.NATIONAL_STRING,
                       TokenType.RAW_STRING, TokenType.BYTE_STRING, TokenType.HEREDOC_STRING})
_OPEN = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSE = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})
_STATEMENTS = (exp.DDL, exp.DML, exp.Command, exp.Transaction, exp.Commit, exp.Rollback, exp.Set, exp.Use)
_BIGQUERY = Dialect.get_or_raise("bigquery")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Aggregation(StrEnum):
    SUM = "SUM"
    COUNT = "COUNT"
    ANY = "ANY"  # 0/1: the unit has at least one fact in the window


def _refuse(message: str) -> PydanticCustomError:
    return PydanticCustomError("sql_fragment_refused", "SQL refused: {reason}", {"reason": message})


def _parse_error(exc: sqlglot.errors.SqlglotError) -> str:
    """The parser's own message, one line, without the terminal highlighting sqlglot adds."""
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        return f"{first.get('description')} (line {first.get('line')}, column {first.get('col')})"
    return _ANSI.sub("", str(exc)).splitlines()[0] if str(exc) else type(exc).__name__


def _screen(text: str, limit: int) -> list[Token]:
    """Separators, comments and DDL/DML keywords, before anything is parsed."""
    if len(text) > limit:
        raise _refuse(f"longer than {limit} characters")
    if not text.strip():
        raise _refuse("empty")
    for needle, what in _RAW_FORBIDDEN:
        if needle in text:
            raise _refuse(f"contains {what}")
    try:
        tokens = sqlglot.tokenize(text, read="bigquery")
    except sqlglot.errors.SqlglotError as exc:
        raise _refuse(_parse_error(exc)) from None
    except Exception as exc:
        raise _refuse(f"could not be tokenized ({type(exc).__name__})") from None
    depth = 0
    for token in tokens:
        depth += token.token_type in _OPEN
        depth -= token.token_type in _CLOSE
        if depth > MAX_NESTING:
            raise _refuse(f"nested deeper than {MAX_NESTING} brackets")
        if token.comments:
            raise _refuse("contains a comment")
        if token.token_type == TokenType.SEMICOLON:
            raise _refuse("contains a statement separator ';'")
        if token.token_type not in _UNQUOTED and token.text.upper() in FORBIDDEN_KEYWORDS:
            raise _refuse(f"contains the keyword {token.text.upper()}")
    return tokens


def _parse(text: str, tokens: list[Token]) -> exp.Expr:
    try:
        parsed = _BIGQUERY.parser().parse(tokens, text)
    except sqlglot.errors.SqlglotError as exc:
        raise _refuse(_parse_error(exc)) from None
    except RecursionError:
        raise _refuse("nested too deeply to parse") from None
    except Exception as exc:  # the parser tripping over garbage is still a refusal, never a 500
        raise _refuse(f"could not be parsed ({type(exc).__name__})") from None
    statements = [p for p in parsed if p is not None]
    if len(statements) != 1:
        raise _refuse("must be exactly one SQL expression")
    tree = statements[0]
    if any(isinstance(node, _STATEMENTS) for node in tree.walk()):
        raise _refuse("contains a statement that is not a query")
    return tree


def _expression(text: str) -> str:
    """A scalar expression or condition: a parenthesised subquery is fine, a bare SELECT or an
    alias is not (the fragment is placed in parentheses inside the facts query)."""
    tree = _parse(text, _screen(text, MAX_FRAGMENT_CHARS))
    if isinstance(tree, exp.Alias) or (isinstance(tree, exp.Query) and not isinstance(tree, exp.Subquery)):
        raise _refuse("must be an expression, not a query or an alias")
    return text


def _query(text: str) -> str:
    if not isinstance(_parse(text, _screen(text, MAX_SOURCE_SQL_CHARS)), exp.Query):
        raise _refuse("must be a SELECT query")
    return text


def _table(text: str) -> str:
    if not TABLE_PATTERN.fullmatch(text):
        raise _refuse("a table is dataset.table (or project.dataset.table), letters, digits and _, "
                      "with an optional trailing * for a wildcard table")
    return text


SqlExpression = Annotated[str, AfterValidator(_expression)]
SqlQuery = Annotated[str, AfterValidator(_query)]
TableRef = Annotated[str, AfterValidator(_table)]
MetricName = Annotated[str, Field(pattern=METRIC_NAME_PATTERN)]


class DefinitionModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricDefinition(DefinitionModel):
    """One metric over the user's own rows; see the module docstring and docs/metrics.md."""

    name: MetricName
    source: TableRef | None = None
    sql: SqlQuery | None = None
    unitColumn: SqlExpression
    timestampColumn: SqlExpression
    valueExpression: SqlExpression = "1"
    where: SqlExpression | None = None
    aggregation: Aggregation = Aggregation.SUM
    cap: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    delayHours: float = Field(default=0, ge=0, le=24 * 365, allow_inf_nan=False)
    windowHours: float | None = Field(default=None, gt=0, le=24 * 365 * 5, allow_inf_nan=False)
    cupedPreDays: int | None = Field(default=None, ge=1, le=365)

    @model_validator(mode="after")
    def _one_source(self) -> MetricDefinition:
        if (self.source is None) == (self.sql is None):
            raise PydanticCustomError("metric_source", "give exactly one of source (a table) and sql (a SELECT)")
        return self


def text_chars(value: Any) -> int:
    """Characters of text anywhere in a JSON value (iterative: hostile nesting costs nothing)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def sql_string(value: str) -> str:
    """A BigQuery string literal for `value` (backslash escapes; `''` is not an escape there)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") + "'"


def _source(defn: MetricDefinition) -> str:
    if defn.source is not None:
        return f"`{defn.source}` AS source"
    return f"({defn.sql}) AS source"


def facts_sql(defn: MetricDefinition, since: str | None = None) -> str:
    """One fact per row of the source that passes `where`, with a unit and a time:
    `unit_id STRING, event_time TIMESTAMP, value FLOAT64` (a NULL value counts as 0).

    `since` names a TIMESTAMP query parameter (`"since"` for `@since`): only facts at or after it,
    and from a wildcard table only the daily shards from the day before it on (a shard's date is
    the property's local date, at most a day off UTC), so a query scans new data, not all history."""
    return _facts(defn, since, strict=False)


def check_sql(defn: MetricDefinition) -> str:
    """The facts query as the definition-time dry run checks it: the same, except that the value
    must already be a number and the time a TIMESTAMP. A CAST accepts a STRING column (or a raw
    microsecond count) and fails on the first row at analysis time; `+ 0` and `TIMESTAMP_ADD` refuse
    it at the dry run."""
    return _facts(defn, None, strict=True)


def _facts(defn: MetricDefinition, since: str | None, strict: bool) -> str:
    unit, time, value = f"({defn.unitColumn})", f"({defn.timestampColumn})", f"({defn.valueExpression})"
    if strict:
        time, value = f"TIMESTAMP_ADD({time}, INTERVAL 0 SECOND)", f"({value} + 0)"
    conditions = [f"({defn.where})"] if defn.where else []
    conditions += [f"{unit} IS NOT NULL", f"{time} IS NOT NULL"]
    if since is not None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", since):
            raise ValueError(f"not a query parameter name: {since!r}")
        conditions.append(f"CAST({time} AS TIMESTAMP) >= @{since}")
        if defn.source is not None and defn.source.endswith("*"):
            conditions.append(f"_TABLE_SUFFIX >= FORMAT_DATE('%Y%m%d', DATE_SUB(DATE(@{since}), INTERVAL 1 DAY))")
    return (f"SELECT CAST({unit} AS STRING) AS unit_id, CAST({time} AS TIMESTAMP) AS event_time, "
            f"COALESCE(CAST({value} AS FLOAT64), 0) AS value "
            f"FROM {_source(defn)} WHERE {' AND '.join(conditions)}")
