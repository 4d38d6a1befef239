"""What both programs of the distribution share: settings loading, error bodies, process handling.

`model_backends` and `router` meet only over HTTP and the command line; the few helpers both need
live here so that neither imports the other.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bluegreen-llm")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0"
