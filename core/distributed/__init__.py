"""``--engine ray``: scoring and sharded fitting on a Ray cluster (the optional ``xadt[ray]``).

Nothing here imports Ray at import time; :func:`ray_session` imports it when a run starts, so
``import xadt`` and ``xadt --version`` never pay for it and a missing Ray is one line.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType

from xadt.errors import XadtError

__all__ = ["INSTALL_HINT", "import_ray", "ray_session", "user_error"]

INSTALL_HINT = "pip install 'xadt[ray]'"
"""How to install the optional Ray engine."""


def import_ray() -> ModuleType:
    """The ``ray`` module, with Ray Data importable.

    Raises:
        XadtError: Ray (or Ray Data) is not installed; the message says how to install it.
    """
    try:
        ray = importlib.import_module("ray")
        importlib.import_module("ray.data")
    except ImportError:
        msg = f"--engine ray needs Ray: {INSTALL_HINT}"
        raise XadtError(msg) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray connected to the cluster at ``address`` (``auto``, ``ray://host:10001``, ...), or a
    local Ray on this machine when ``address`` is None; yields the ``ray`` module.

    A Ray that is already initialised (a notebook, a test) is used as it is and left running;
    one started here is shut down on exit. ``num_cpus`` caps a local Ray's CPUs.

    Raises:
        XadtError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = import_ray()
    # Ray's progress and start-up chatter would bury xadt's own one-line messages.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    # Workers inherit the environment; keep each to one BLAS thread unless the user chose.
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            runtime_env={"env_vars": env},
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray"
        msg = f"--address {where}: cannot start or reach Ray ({str(exc).splitlines()[0]})"
        raise XadtError(msg) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def user_error(exc: BaseException) -> XadtError | None:
    """The ``XadtError`` that a Ray failure wraps (a worker's user error), as a plain one-line
    error for the CLI; None when the failure is not one."""
    seen: BaseException | None = exc
    while seen is not None:
        inner = getattr(seen, "cause", None)
        if isinstance(inner, XadtError):
            return XadtError(str(inner.args[0]) if inner.args else str(inner))
        if isinstance(seen, XadtError) and type(seen).__module__.startswith("xadt"):
            return XadtError(str(seen.args[0]) if seen.args else str(seen))
        seen = seen.__cause__ or seen.__context__
    return None
