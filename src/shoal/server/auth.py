"""Who may call the server: bearer tokens and a username/password handshake.

Every call carries an ``authorization`` header, checked before the call runs (a
gRPC server middleware, so no RPC handler can forget it):

* ``Bearer <token>``: one of the configured tokens, or a session token that the
  handshake issued;
* on the Handshake call only, ``Basic base64(user:password)`` (what Flight SQL
  clients such as ADBC and JDBC send for a username and password): when it matches
  a configured user, the answer carries ``authorization: Bearer <session token>``
  and the client sends that from then on.

Anything else is refused with UNAUTHENTICATED before the handler runs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import pyarrow.flight as flight

from shoal.server.config import AuthMode, ServerConfig

#: How long a session token from the handshake stays valid.
SESSION_SECONDS = 12 * 3600


class CallerMiddleware(flight.ServerMiddleware):  # type: ignore[misc]
    """The authenticated caller of one call; on a handshake, the token it was issued."""

    def __init__(self, user: str, issued_token: str | None = None):
        self.user = user
        self._issued = issued_token

    def sending_headers(self) -> dict[str, str]:
        if self._issued is None:
            return {}
        return {"authorization": f"Bearer {self._issued}"}


class HeaderOnlyAuthHandler(flight.ServerAuthHandler):  # type: ignore[misc]
    """Lets the Handshake call through (pyarrow refuses it when no handler is set).

    Credentials travel in headers and are checked by ``AuthMiddlewareFactory`` before
    any handler runs, the handshake's included; this handler adds no check of its own.
    """

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    def __init__(self, config: ServerConfig):
        self._mode = config.auth
        self._tokens = tuple(config.tokens)
        self._users = dict(config.users)
        self._sessions: dict[str, tuple[str, float]] = {}  # token -> (user, expiry)
        self._lock = threading.Lock()

    def start_call(self, info: Any, headers: Mapping[str, Any]) -> CallerMiddleware | None:
        if self._mode is AuthMode.NONE:
            return CallerMiddleware("anonymous")
        values = headers.get("authorization") or headers.get("Authorization") or []
        header = _text(values[0]) if values else ""
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and info.method == flight.FlightMethod.HANDSHAKE:
            user = self._check_password(credential.strip())
            token = secrets.token_urlsafe(32)
            with self._lock:
                now = time.monotonic()
                self._sessions = {t: s for t, s in self._sessions.items() if s[1] > now}
                self._sessions[token] = (user, now + SESSION_SECONDS)
            return CallerMiddleware(user, issued_token=token)
        if scheme == "bearer":
            return CallerMiddleware(self._check_token(credential.strip()))
        if info.method == flight.FlightMethod.HANDSHAKE and not header:
            # A client that handshakes with no credentials (some do, before sending
            # their bearer token on every call) learns nothing and gets no token.
            return CallerMiddleware("anonymous")
        raise flight.FlightUnauthenticatedError(
            "authentication required: send 'authorization: Bearer <token>'"
            + (" or log in with a username and password" if self._users else "")
        )

    def _check_token(self, token: str) -> str:
        for known in self._tokens:
            if hmac.compare_digest(token.encode(), known.encode()):
                return "token"
        with self._lock:
            session = self._sessions.get(token)
        if session is not None and session[1] > time.monotonic():
            return session[0]
        raise flight.FlightUnauthenticatedError("invalid or expired bearer token")

    def _check_password(self, credential: str) -> str:
        # Some clients (Go's Flight client) leave out the base64 padding.
        padded = credential + "=" * (-len(credential) % 4)
        try:
            user, sep, password = base64.b64decode(padded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise flight.FlightUnauthenticatedError("malformed Basic credentials") from None
        expected = self._users.get(user) if sep else None
        # Compare even for unknown users, so timing does not tell which names exist.
        if not hmac.compare_digest(password.encode(), (expected or "\0" * 16).encode()) or (
            expected is None
        ):
            raise flight.FlightUnauthenticatedError("invalid username or password")
        return user


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)
