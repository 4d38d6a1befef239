"""Drive load with `wrk` (C, event loop, one thread) when it is installed.

On a 2-core machine the Python load generator spends about as much CPU per request as a small
server, so at high concurrency it competes with the proxy it measures; wrk costs a fraction of
that. A Lua script sends the benchmark's POST with one session id per slot (like the Python
generator's one per connection) and prints the figures as JSON at the end.
Install: `apt-get install wrk`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """
local body = [==[%(body)s]==]
local requests = {}
local next_one = 0
init = function(args)
  for n = 0, %(sessions)d - 1 do
    requests[n] = wrk.format("POST", "%(path)s", {["Host"] = wrk.headers["Host"],
      ["Content-Type"] = "application/json", ["X-Session-ID"] = "bench-" .. n}, body)
  end
end
request = function()
  next_one = (next_one + 1) %% %(sessions)d
  return requests[next_one]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format('WRK-RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, "p99_us": %%.1f, ' ..
    '"socket_errors": %%d, "status_errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    elapsed_s: float
    p50_s: float
    p99_s: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_script(path: str, body: bytes, sessions: int) -> str:
    text = body.decode()
    if "]==]" in text or '"' in path:
        raise ValueError("the body or path cannot be quoted for the wrk script")
    return SCRIPT % {"body": text, "path": path, "sessions": sessions}


def parse(output: str) -> WrkResult:
    """The figures from the script's `done` line."""
    for line in output.splitlines():
        if line.startswith("WRK-RESULT "):
            data = json.loads(line.removeprefix("WRK-RESULT "))
            return WrkResult(requests=data["requests"], elapsed_s=data["duration_us"] / 1e6, p50_s=data["p50_us"] / 1e6,
                             p99_s=data["p99_us"] / 1e6, errors=data["socket_errors"] + data["status_errors"])
    raise RuntimeError(f"wrk printed no result:\n{output}")


def run_wrk(port: int, path: str, body: bytes, concurrency: int, duration_s: float, threads: int = 1) -> WrkResult:
    """`concurrency` keep-alive connections from `threads` wrk threads for `duration_s` seconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(path, body, max(concurrency, 1)))
    try:
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
             "-s", script.name, f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, timeout=duration_s + 60, check=False)
    finally:
        Path(script.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse(done.stdout)
