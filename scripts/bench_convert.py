"""`model-backend convert` on a generated checkpoint far larger than the tiny ones: time and peak memory.

An untrained Mistral-architecture checkpoint (bfloat16, in several shards, as Vistral's is) is
generated once under --work; then `model-backend convert` runs as its own process for each
--outtype, and the kernel's high-water mark of that process gives its peak resident memory. The
tiny model's conversion is measured the same way: the fixed cost of the program (Python, numpy,
gguf; torch too for bfloat16), which does not grow with the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

console = Console(width=120)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    returncode: int
    seconds: float
    peak_rss_bytes: int
    output: str


def high_water_mark(pid: int) -> int:
    """VmHWM of a running process: its own peak RSS since exec (0 once it is gone).

    Not ru_maxrss: Linux carries the parent's high-water mark across fork and exec into it, so a
    child of a large process (pytest with torch loaded) would report its parent's peak.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(command: list[str], interval_s: float = 0.01) -> Measurement:
    """Run `command` to its end; its wall time and peak RSS (VmHWM, read until it exits)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read() if process.stdout else b""))
    reader.start()
    peak = 0
    while process.poll() is None:
        peak = max(peak, high_water_mark(process.pid))
        time.sleep(interval_s)
    reader.join()
    return Measurement(process.returncode, time.perf_counter() - started, peak, b"".join(chunks).decode(errors="replace"))


def convert_command(hf_dir: Path, out: Path, outtype: str, threads: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "model_backends.cli", "convert", str(hf_dir), str(out),
               "--outtype", outtype, "--force"]
    return command + (["--threads", str(threads)] if threads else [])


def checkpoint_bytes(hf_dir: Path) -> int:
    return sum(p.stat().st_size for p in hf_dir.glob("*.safetensors"))


def generate(hf_dir: Path, args: argparse.Namespace) -> None:
    """The untrained checkpoint, reused when one of the same shape is there."""
    from model_backends.tiny.spec import TinySpec
    from model_backends.tiny.untrained import save_untrained

    spec = TinySpec(hidden_size=args.hidden, intermediate_size=args.ffn, num_layers=args.layers,
                    num_heads=args.heads, num_kv_heads=args.kv_heads, rope_theta=1_000_000.0)
    wanted = {"spec": asdict(spec), "dtype": args.dtype, "shard": args.shard_size}
    marker = hf_dir / "bench.json"
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return
    console.print(f"generating an untrained {args.layers}-layer checkpoint (hidden {args.hidden}, {args.dtype}) …")
    started = time.perf_counter()
    save_untrained(hf_dir, spec, dtype=args.dtype, max_shard_size=args.shard_size)
    marker.write_text(json.dumps(wanted))
    console.print(f"generated in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench-convert")
    parser.add_argument("--models", type=Path, default=REPO / ".cache" / "tiny-models")
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--ffn", type=int, default=5632)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--shard-size", default="500MB")
    parser.add_argument("--outtype", action="append", help="repeatable [default: f16 and q4_k_m]")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    outtypes = args.outtype or ["f16", "q4_k_m"]

    from model_backends.tiny.build import build_tiny_models

    tiny = build_tiny_models(args.models)
    hf_dir = args.work / "checkpoint"
    generate(hf_dir, args)
    size = checkpoint_bytes(hf_dir)
    shards = len(list(hf_dir.glob("*.safetensors")))
    console.print(f"checkpoint: {size / MIB:,.0f} MiB in {shards} shard(s), {args.dtype}")

    table = Table(title="model-backend convert: time and peak resident memory (one process per row)")
    for column in ("model", "outtype", "time s", "peak RSS MiB", "checkpoint MiB", "RSS / checkpoint",
                   "output MiB"):
        table.add_column(column, justify="left" if column in ("model", "outtype") else "right")
    runs = [("tiny (fixed cost)", tiny.hf_dir, "f16")] + [("generated", hf_dir, t) for t in outtypes]
    for label, source, outtype in runs:
        out = args.work / f"{label.split()[0]}-{outtype}.gguf"
        console.print(f"converting {label} to {outtype} …")
        result = measure(convert_command(source, out, outtype, args.threads))
        if result.returncode != 0:
            console.print(result.output)
            raise SystemExit(f"convert failed with exit code {result.returncode}")
        source_size = checkpoint_bytes(source)
        table.add_row(label, outtype, f"{result.seconds:.1f}", f"{result.peak_rss_bytes / MIB:,.0f}",
                      f"{source_size / MIB:,.1f}", f"{result.peak_rss_bytes / source_size:.2f}",
                      f"{out.stat().st_size / MIB:,.1f}")
        out.unlink()
    console.print(table)
    console.print("One tensor is in memory at a time, so peak RSS is the program's fixed cost (plus torch's, "
                  "about 230 MiB, when the checkpoint is bfloat16) and a few tensors' worth, whatever the "
                  "checkpoint's size. Times depend on the disk and on free cores (the quantizer uses all).")

if __name__ == "__main__":
    main()
