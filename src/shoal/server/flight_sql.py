"""An Arrow Flight SQL server over a shoal ``Connection``.

The RPCs and what they do here:

* ``GetFlightInfo(CommandStatementQuery)``: plans the query (errors come back now, not
  at fetch time), keeps it under a fresh handle and answers one endpoint whose
  ticket is ``TicketStatementQuery(handle)`` and the result's schema.
* ``DoGet(TicketStatementQuery)``: starts the query (``Connection.stream``) and sends
  each batch as the tasks make it. gRPC's flow control holds a slow reader's batches
  back, the stream's bounded buffer then holds the tasks back: the result is never
  gathered first. Rows and bytes sent are counted against the server's limits; a
  client that goes away closes the stream's generator, which cancels the query.
* ``GetSchema``: the schema of a query (or prepared statement) without running it.
* Prepared statements: ``DoAction(CreatePreparedStatement)`` plans what it can and
  returns a handle with the result and parameter schemas; ``DoPut`` with
  ``CommandPreparedStatementQuery`` binds one row of parameter values;
  ``GetFlightInfo(CommandPreparedStatementQuery)`` then works like a statement;
  ``DoAction(ClosePreparedStatement)`` forgets it.
* ``GetSqlInfo``, ``GetCatalogs``, ``GetDbSchemas``, ``GetTables`` (with schemas),
  ``GetTableTypes``: see ``metadata.py``; their ticket is the command itself.
* ``DoAction(shoal.status)``: the server's counters as JSON (``status.py``).

Any other command is answered UNIMPLEMENTED with its name. shoal's errors go back as
Flight errors of the matching gRPC status whose message starts with the error's type.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from shoal.api.connection import Connection, PreparedQuery
from shoal.errors import (
    AccessDeniedError,
    QueryCancelledError,
    QueryTimeoutError,
    ResourceError,
    ResultLimitError,
    ShoalError,
    UnsupportedError,
    UserError,
)
from shoal.server import flight_sql_pb2 as pb
from shoal.server import metadata
from shoal.server.auth import AuthMiddlewareFactory, HeaderOnlyAuthHandler
from shoal.server.config import Limits, ServerConfig
from shoal.server.status import QueryOutcome, ServerStatus
from shoal.sql.statements import StatementKind

_TYPE_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."
#: The custom action that returns the server's counters.
STATUS_ACTION = "shoal.status"
#: A planned statement not fetched within this many seconds is forgotten.
STATEMENT_TTL_SECONDS = 600.0
#: Batches are sent in slices of about this many bytes: gRPC clients refuse messages
#: over a maximum (16 MiB by default in Go's, hence ADBC's), and the engine's batches
#: (131072 rows) of wide rows are larger than that.
MESSAGE_BYTES = 4 << 20

M = TypeVar("M", bound=Message)
_log = logging.getLogger("shoal.server")


@dataclass
class _Statement:
    """A query planned by GetFlightInfo, waiting for its DoGet."""

    sql: str
    params: list[Any] | None
    created: float = field(default_factory=time.monotonic)
    # The plan made for GetFlightInfo's schema, run by DoGet (queries are planned once).
    prepared: PreparedQuery | None = None
    # EXPLAIN and COPY run when planned (they are short); their answer waits here.
    table: pa.Table | None = None


@dataclass
class _Prepared:
    sql: str
    parameter_count: int
    params: list[Any] | None = None


class FlightSqlServer(flight.FlightServerBase):  # type: ignore[misc]
    """Serve ``con``'s tables over Flight SQL with ``config``'s security and limits.

    The server listens as soon as it is made; ``serve()`` blocks until ``shutdown()``.
    COPY targets are confined to ``config.allowed_dirs`` (``Connection.restrict_writes``).
    """

    def __init__(self, con: Connection, config: ServerConfig):
        scheme = "grpc+tls" if config.tls else "grpc+tcp"
        tls: list[tuple[bytes, bytes]] = []
        if config.tls:
            assert config.tls_cert is not None and config.tls_key is not None
            with open(config.tls_cert, "rb") as c, open(config.tls_key, "rb") as k:
                tls.append((c.read(), k.read()))
        location = f"{scheme}://{config.host}:{config.port}"
        super().__init__(
            location,
            tls_certificates=tls or None,
            auth_handler=HeaderOnlyAuthHandler(),
            middleware={"auth": AuthMiddlewareFactory(config)},
        )
        self.con = con
        self.config = config
        self.limits: Limits = config.limits
        self.status_counters = ServerStatus()
        con.restrict_writes(config.allowed_dirs)
        self._statements: dict[bytes, _Statement] = {}
        self._prepared: dict[bytes, _Prepared] = {}
        self._lock = threading.Lock()
        self.location = f"{scheme}://{config.host}:{self.port}"

    def status(self) -> dict[str, int | float]:
        return self.status_counters.snapshot()

    # ------------------------------------------------------------------ RPCs

    def get_flight_info(self, context: Any, descriptor: flight.FlightDescriptor) -> Any:
        return _guard(lambda: self._flight_info(descriptor))

    def get_schema(self, context: Any, descriptor: flight.FlightDescriptor) -> Any:
        return _guard(lambda: flight.SchemaResult(self._schema_of(_command(descriptor))))

    def do_get(self, context: Any, ticket: flight.Ticket) -> Any:
        return _guard(lambda: self._do_get(context, ticket))

    def do_put(
        self,
        context: Any,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        _guard(lambda: self._do_put(descriptor, reader))

    def do_action(self, context: Any, action: flight.Action) -> Iterator[bytes]:
        return iter(_guard(lambda: self._do_action(action)))

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [
            ("CreatePreparedStatement", "plan a query with ? or $n parameters"),
            ("ClosePreparedStatement", "forget a prepared statement"),
            (STATUS_ACTION, "the server's query counters, as JSON"),
        ]

    def list_flights(self, context: Any, criteria: bytes) -> Iterator[flight.FlightInfo]:
        return iter(())

    def do_exchange(self, context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
        raise flight.FlightServerError("DoExchange is not supported by this server")

    # ------------------------------------------------------------ statements

    def _flight_info(self, descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        command = _command(descriptor)
        if isinstance(command, pb.CommandStatementQuery):
            handle, schema = self._plan(command.query, None)
        elif isinstance(command, pb.CommandPreparedStatementQuery):
            prepared = self._prepared_statement(command.prepared_statement_handle)
            handle, schema = self._plan(prepared.sql, prepared.params)
        else:
            # Metadata commands: the ticket is the command; the answer is made at DoGet.
            schema = self._schema_of(command)
            return _info(descriptor, schema, _pack(command))
        return _info(descriptor, schema, _pack(pb.TicketStatementQuery(statement_handle=handle)))

    def _plan(self, sql: str, params: list[Any] | None) -> tuple[bytes, pa.Schema]:
        statement = _Statement(sql, params)
        if self._runs_at_once(sql):
            statement.table = self.con.sql(sql, params, timeout=self.limits.timeout).to_arrow()
            schema = statement.table.schema
        else:
            statement.prepared = self.con.prepare(sql, params)
            schema = _result_schema(statement.prepared)
        handle = uuid.uuid4().bytes
        with self._lock:
            now = time.monotonic()
            stale = [
                h for h, s in self._statements.items() if now - s.created > STATEMENT_TTL_SECONDS
            ]
            for h in stale:
                del self._statements[h]
            self._statements[handle] = statement
        return handle, schema

    def _runs_at_once(self, sql: str) -> bool:
        """EXPLAIN, COPY and the other statements that are no query run when planned
        (their result is made then); a query is prepared and streamed at DoGet."""
        return self.con.statement_kind(sql) is not StatementKind.QUERY

    def _query_schema(self, sql: str, params: Sequence[Any] | None) -> pa.Schema:
        return _result_schema(self.con.prepare(sql, params))

    def _schema_of(self, command: Message) -> pa.Schema:
        if isinstance(command, pb.CommandStatementQuery):
            if self._runs_at_once(command.query):
                raise UnsupportedError(
                    "the schema of a statement that is no query (EXPLAIN, COPY, CREATE …) before running it"
                )
            return self._query_schema(command.query, None)
        if isinstance(command, pb.CommandPreparedStatementQuery):
            prepared = self._prepared_statement(command.prepared_statement_handle)
            return self._query_schema(prepared.sql, prepared.params)
        if isinstance(command, pb.CommandGetSqlInfo):
            return metadata.SQL_INFO_SCHEMA
        if isinstance(command, pb.CommandGetCatalogs):
            return metadata.CATALOGS_SCHEMA
        if isinstance(command, pb.CommandGetDbSchemas):
            return metadata.DB_SCHEMAS_SCHEMA
        if isinstance(command, pb.CommandGetTables):
            return (
                metadata.TABLES_WITH_SCHEMA_SCHEMA
                if command.include_schema
                else metadata.TABLES_SCHEMA
            )
        if isinstance(command, pb.CommandGetTableTypes):
            return metadata.TABLE_TYPES_SCHEMA
        raise _unimplemented(type(command).__name__)

    def _do_get(self, context: Any, ticket: flight.Ticket) -> Any:
        command = _unpack_any(ticket.ticket)
        if isinstance(command, pb.TicketStatementQuery):
            with self._lock:
                statement = self._statements.pop(command.statement_handle, None)
            if statement is None:
                raise UserError("unknown or already fetched statement ticket")
            if statement.table is not None:
                return flight.RecordBatchStream(statement.table)
            return self._stream(context, statement)
        return flight.RecordBatchStream(self._metadata_table(command))

    def _stream(self, context: Any, statement: _Statement) -> flight.GeneratorStream:
        assert statement.prepared is not None
        stream = self.con.run_prepared(statement.prepared, timeout=self.limits.timeout)
        self.status_counters.query_started()
        return flight.GeneratorStream(stream.schema, self._batches(context, stream))

    def _batches(self, context: Any, stream: Any) -> Iterator[pa.RecordBatch]:
        """The stream's batches within the limits; the query's end is counted once."""
        limits = self.limits
        rows = nbytes = 0
        outcome = QueryOutcome.CLIENT_GONE
        try:
            for batch in _slices(stream, MESSAGE_BYTES):
                rows += batch.num_rows
                nbytes += batch.nbytes
                if limits.max_result_rows is not None and rows > limits.max_result_rows:
                    raise ResultLimitError(
                        f"the result has more than {limits.max_result_rows} rows, this "
                        "server's max_result_rows; add a LIMIT or a narrower filter"
                    )
                if limits.max_result_bytes is not None and nbytes > limits.max_result_bytes:
                    raise ResultLimitError(
                        f"the result is larger than {limits.max_result_bytes} bytes, this "
                        "server's max_result_bytes; select fewer rows or columns"
                    )
                if context.is_cancelled():
                    break
                yield batch
            else:
                outcome = QueryOutcome.FINISHED
        except ResultLimitError as err:
            outcome = QueryOutcome.OVER_LIMIT
            raise _flight_error(err) from err
        except QueryTimeoutError as err:
            outcome = QueryOutcome.TIMED_OUT
            raise _flight_error(err) from err
        except ShoalError as err:
            outcome = QueryOutcome.FAILED
            raise _flight_error(err) from err
        except Exception as err:
            outcome = QueryOutcome.FAILED
            raise _internal_error(err) from err
        finally:
            # Reached when the query ended, failed, or the client went away (gRPC stops
            # pulling and the generator is closed): stop the tasks either way.
            stream.close()
            self.status_counters.query_ended(outcome, rows, nbytes)

    def _metadata_table(self, command: Message) -> pa.Table:
        if isinstance(command, pb.CommandGetSqlInfo):
            return metadata.sql_info(
                list(command.info), not self.con.writes_allowed(), self.limits.timeout
            )
        if isinstance(command, pb.CommandGetCatalogs):
            return metadata.catalogs()
        if isinstance(command, pb.CommandGetDbSchemas):
            return metadata.db_schemas(
                _optional(command, "catalog"), _optional(command, "db_schema_filter_pattern")
            )
        if isinstance(command, pb.CommandGetTables):
            return metadata.tables(
                self.con.catalog,
                _optional(command, "catalog"),
                _optional(command, "db_schema_filter_pattern"),
                _optional(command, "table_name_filter_pattern"),
                command.table_types,
                command.include_schema,
            )
        if isinstance(command, pb.CommandGetTableTypes):
            return metadata.table_types()
        raise _unimplemented(type(command).__name__)

    # ---------------------------------------------------- prepared statements

    def _do_action(self, action: flight.Action) -> list[bytes]:
        kind = action.type
        body = action.body.to_pybytes() if action.body is not None else b""
        if kind == "CreatePreparedStatement":
            request = _unpack_any(body, pb.ActionCreatePreparedStatementRequest)
            return [_pack(self._create_prepared(request.query))]
        if kind == "ClosePreparedStatement":
            close = _unpack_any(body, pb.ActionClosePreparedStatementRequest)
            with self._lock:
                self._prepared.pop(close.prepared_statement_handle, None)
            return []
        if kind == STATUS_ACTION:
            return [json.dumps(self.status()).encode()]
        raise _unimplemented(f"action {kind}")

    def _create_prepared(self, sql: str) -> pb.ActionCreatePreparedStatementResult:
        count = self.con.parameter_count(sql)  # also rejects text that does not parse
        dataset = b""
        if count == 0 and not self._runs_at_once(sql):
            dataset = self._query_schema(sql, None).serialize().to_pybytes()
        # Parameter types are only known from the values bound (any type is accepted).
        parameters = pa.schema([pa.field(f"${i + 1}", pa.null()) for i in range(count)])
        handle = uuid.uuid4().bytes
        with self._lock:
            self._prepared[handle] = _Prepared(sql, count)
        return pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle,
            dataset_schema=dataset,
            parameter_schema=parameters.serialize().to_pybytes(),
        )

    def _prepared_statement(self, handle: bytes) -> _Prepared:
        with self._lock:
            prepared = self._prepared.get(handle)
        if prepared is None:
            raise UserError("unknown or closed prepared statement")
        return prepared

    def _do_put(
        self, descriptor: flight.FlightDescriptor, reader: flight.MetadataRecordBatchReader
    ) -> None:
        command = _command(descriptor)
        if not isinstance(command, pb.CommandPreparedStatementQuery):
            raise _unimplemented(f"DoPut of {type(command).__name__}")
        prepared = self._prepared_statement(command.prepared_statement_handle)
        values = reader.read_all()
        if values.num_rows > 1:
            raise UnsupportedError(
                f"binding {values.num_rows} rows of parameters to a query (bind one row)"
            )
        row = [column[0].as_py() for column in values.columns] if values.num_rows else []
        if len(row) != prepared.parameter_count:
            raise UserError(
                f"the query has {prepared.parameter_count} parameter(s), {len(row)} given"
            )
        prepared.params = row


# --------------------------------------------------------------- protocol helpers


def _slices(batches: Iterator[pa.RecordBatch], target: int) -> Iterator[pa.RecordBatch]:
    """Each batch as zero-copy slices of about ``target`` bytes (IPC writes only the
    sliced part of each buffer)."""
    for batch in batches:
        size = batch.nbytes
        if size <= target or batch.num_rows < 2:
            yield batch
            continue
        step = max(1, batch.num_rows * target // size)
        for start in range(0, batch.num_rows, step):
            yield batch.slice(start, step)


class _Unimplemented(ShoalError):
    """A Flight SQL command or action this server does not handle."""


def _unimplemented(what: str) -> _Unimplemented:
    return _Unimplemented(f"{what} is not implemented by the shoal Flight SQL server")


_COMMANDS: dict[str, type[Message]] = {
    cls.DESCRIPTOR.name: cls
    for cls in (
        pb.CommandGetSqlInfo,
        pb.CommandGetCatalogs,
        pb.CommandGetDbSchemas,
        pb.CommandGetTables,
        pb.CommandGetTableTypes,
        pb.CommandStatementQuery,
        pb.CommandPreparedStatementQuery,
        pb.TicketStatementQuery,
    )
}


def _command(descriptor: flight.FlightDescriptor) -> Message:
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        raise _unimplemented("path descriptors (send a Flight SQL command)")
    return _unpack_any(descriptor.command)


def _unpack_any(data: bytes, expected: type[M] | None = None) -> Any:
    wrapper = any_pb2.Any()
    try:
        wrapper.ParseFromString(data)
    except DecodeError:
        raise UserError("the request is not a Flight SQL command") from None
    if not wrapper.type_url.startswith(_TYPE_PREFIX):
        raise UserError(f"not a Flight SQL command: {wrapper.type_url or 'empty'}")
    name = wrapper.type_url[len(_TYPE_PREFIX) :]
    cls = expected if expected is not None else _COMMANDS.get(name)
    if cls is None or cls.DESCRIPTOR.name != name:
        raise _unimplemented(name)
    message = cls()
    wrapper.Unpack(message)
    return message


def _pack(message: Message) -> bytes:
    wrapper = any_pb2.Any()
    wrapper.Pack(message)
    return wrapper.SerializeToString()


def _optional(message: Message, name: str) -> str | None:
    return getattr(message, name) if message.HasField(name) else None


def _result_schema(prepared: PreparedQuery) -> pa.Schema:
    """The result's schema with the user-facing column names (as ``QueryStream.schema``)."""
    fields = prepared.graph.root.fragment.schema
    names = prepared.logical.output_names
    return pa.schema([f.with_name(n) for f, n in zip(fields, names, strict=True)])


def _info(descriptor: flight.FlightDescriptor, schema: pa.Schema, ticket: bytes) -> Any:
    endpoint = flight.FlightEndpoint(ticket, [])
    return flight.FlightInfo(schema, descriptor, [endpoint], -1, -1)


T = TypeVar("T")


def _guard(call: Callable[[], T]) -> T:
    """Run a handler; shoal's errors leave as Flight errors."""
    try:
        return call()
    except ShoalError as err:
        raise _flight_error(err) from err
    except (flight.FlightError, pa.ArrowNotImplementedError):
        raise
    except Exception as err:
        raise _internal_error(err) from err


def _internal_error(err: Exception) -> Exception:
    """A failure that is not shoal's own error (a bug): logged here with its traceback,
    sent to the client as INTERNAL with its type and message only."""
    _log.error("internal error in a Flight SQL call", exc_info=err)
    return flight.FlightInternalError(f"internal error: {type(err).__name__}: {err}")


def _flight_error(err: ShoalError) -> Exception:
    """The Flight error (hence gRPC status) for a shoal error; the message names its type.

    Flight's own error classes are used wherever one fits: pyarrow sends the Python
    traceback along with any other exception, and a client has no use for the
    server's internals. Only UNIMPLEMENTED has no Flight class (``ArrowNotImplementedError``).
    """
    message = f"{type(err).__name__}: {err}"
    if isinstance(err, _Unimplemented):
        return pa.ArrowNotImplementedError(message)
    if isinstance(err, AccessDeniedError):
        return flight.FlightUnauthorizedError(message)
    if isinstance(err, QueryTimeoutError):
        return flight.FlightTimedOutError(message)
    if isinstance(err, QueryCancelledError):
        return flight.FlightCancelledError(message)
    if isinstance(err, UserError | ResultLimitError | ResourceError):
        return flight.FlightServerError(message)
    return flight.FlightInternalError(message)
