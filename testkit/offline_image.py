"""The backend image built the way an offline operator builds it, for the tests and the benchmarks.

Starts a Docker engine if none answers (and stops it again afterwards), builds the debootstrap base
image once (reused while it exists), fills compose/wheels from pip's cache, and builds the image.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from router.runtimes.docker import build_image, connect
from router.runtimes.options import DockerOptions

REPO = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> str:
    """Run one of the project's shell scripts; its stdout, or an AssertionError carrying its output."""
    done = subprocess.run(["bash", *args], cwd=REPO, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


@contextmanager
def offline_image(tag: str, engines: str = "llama") -> Iterator[str]:
    """`tag` built from compose/Dockerfile on the offline base, with an engine running meanwhile."""
    engine = run_script("scripts/dockerd.sh", "start")
    try:
        base = run_script("scripts/build-base-image.sh").strip().splitlines()[-1].removeprefix("BASE_IMAGE=")
        run_script("scripts/build-wheels.sh", engines)
        build_image(connect(), DockerOptions(image=tag, base_image=base, engines=engines), on_line=lambda line: None)
        yield tag
    finally:
        if engine.startswith("started"):
            run_script("scripts/dockerd.sh", "stop")
