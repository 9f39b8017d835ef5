"""The Ray session a process's Ray connections share: started or joined once, lazily.

``import ray`` happens here and only when a connection asks for ``runtime="ray"``:
the embedded default never imports Ray. ``address`` picks what to join:

  None            an already initialized Ray in this process, else a new local Ray
                  for this process (stopped when the process exits)
  "auto"          the Ray cluster already running on this machine (``ray start --head``)
  "host:port"     that cluster's GCS
  "ray://h:port"  a Ray Client server

A local Ray that shoal starts listens on 127.0.0.1 only. Ray binds its servers to
the address it advertises for the node, and on Linux it advertises a reachable
interface address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes it use the
loopback address (as it does on a laptop); that has to be in the environment before
Ray is first imported, which is why it is set here, before the import. Its worker
processes run at normal priority (Ray's default is nice 15). Token
authentication stays as Ray configures it (``RAY_AUTH_MODE``, on by default: Ray
then keeps a token in ``~/.ray/auth_token`` or ``$RAY_AUTH_TOKEN_PATH``).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from shoal.errors import UserError

_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayUnavailableError(UserError):
    """``runtime="ray"`` was asked for but Ray is not installed or cannot be reached."""


@dataclass(frozen=True)
class RaySession:
    address: str  # the GCS address ("127.0.0.1:port") or the Ray Client address
    started_here: bool  # shoal started this Ray (and owns it) rather than joining one
    client: bool  # connected through Ray Client (ray://)


_lock = threading.Lock()
_session: RaySession | None = None


def import_ray(loopback: bool = False) -> Any:
    """``import ray``, with a clear error when the extra is not installed.

    ``loopback``: Ray is about to be started on this machine alone; if this is its
    first import, make it advertise and bind 127.0.0.1. (Not when joining a cluster:
    the setting also changes which address the driver believes it has.)
    """
    if loopback and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RayUnavailableError("runtime='ray' needs Ray: pip install 'shoal[ray]'") from err
    return ray


def ensure_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    temp_dir: str | None = None,
) -> RaySession:
    """Join (or start) this process's Ray session; later calls return the same one.

    ``num_cpus``, ``object_store_memory`` and ``temp_dir`` size a local Ray that shoal
    starts (``address=None`` and no Ray yet); they are ignored when joining a cluster.
    """
    global _session
    with _lock:
        ray = import_ray(loopback=address is None)
        if _session is not None and ray.is_initialized():
            return _session
        if ray.is_initialized():
            _session = RaySession(_gcs_address(ray), started_here=False, client=_is_client(ray))
            return _session
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if address is None:
            kwargs.update(address="local", include_dashboard=False)
            # Ray starts its workers at nice 15, below every other process of the
            # caller's session; here the workers do the query the caller waits for.
            kwargs["_system_config"] = {"worker_niceness": 0}
            if num_cpus is not None:
                kwargs["num_cpus"] = num_cpus
            if object_store_memory is not None:
                kwargs["object_store_memory"] = object_store_memory
            if temp_dir is not None:
                kwargs["_temp_dir"] = temp_dir
        else:
            _check_address(address)
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as err:
            where = "a local Ray" if address is None else f"the Ray cluster at {address!r}"
            raise RayUnavailableError(f"could not start or join {where}: {err}") from err
        _session = RaySession(
            _gcs_address(ray) if not _is_client(ray) else str(address),
            started_here=address is None,
            client=_is_client(ray),
        )
        return _session


def shutdown_session() -> None:
    """Leave the Ray session (and stop it if shoal started it)."""
    global _session
    with _lock:
        if "ray" in sys.modules:
            ray = sys.modules["ray"]
            if ray.is_initialized():
                ray.shutdown()
        _session = None


def _check_address(address: str) -> None:
    if not isinstance(address, str) or not address.strip():
        raise UserError(
            f"address must be None, 'auto', 'host:port' or 'ray://host:port', got {address!r}"
        )


def _is_client(ray: Any) -> bool:
    return bool(ray.util.client.ray.is_connected())


def _gcs_address(ray: Any) -> str:
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # noqa: BLE001 - Ray Client has no GCS address to show
        return "ray-client"


__all__ = ["RaySession", "RayUnavailableError", "ensure_session", "import_ray", "shutdown_session"]
