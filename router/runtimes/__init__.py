"""Runtimes: how blue and green are started and stopped.

`none`: the backends run already and are given by URL; `local`: processes on this machine;
`docker`: containers of the project's image.
"""

from __future__ import annotations

from router.errors import RuntimeUnavailable
from router.runtimes.managed import ManagedRuntime
from router.runtimes.options import RuntimeOptions
from router.state import StateStore

__all__ = ["ManagedRuntime", "RuntimeUnavailable", "make_runtime"]


def make_runtime(options: RuntimeOptions, store: StateStore) -> ManagedRuntime | None:
    """The configured runtime, ready to start backends; RuntimeUnavailable when it cannot be."""
    if options.kind == "local":
        from router.runtimes.local import LocalRuntime

        return LocalRuntime(options, store)
    if options.kind == "docker":
        from router.runtimes.docker import DockerRuntime

        runtime = DockerRuntime(options, store)
        runtime.prepare()
        return runtime
    return None
