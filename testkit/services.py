"""The distribution's two programs as subprocesses, for the demo, the benchmarks and the tests.

They run from this interpreter (`python -m …`), so a checkout works without its console scripts on PATH.
"""

from __future__ import annotations

import sys

from bluegreen_common.processes import ServiceProcess


class BackendProcess(ServiceProcess):
    """`model-backend serve` with the given flags."""

    program = (sys.executable, "-m", "model_backends.cli")
    name = "model-backend"


class RouterProcess(ServiceProcess):
    """`bluegreen serve` with the given flags."""

    program = (sys.executable, "-m", "router.admin.cli")
    name = "bluegreen"
