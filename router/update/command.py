"""`bluegreen update` from the command line: run one update, print its summary, pick the exit code.

0 updated, already current, already rejected, or a dry run; 2 rejected now (checksum mismatch, or
the cutover rolled back / the canary failed); 1 could not run (source, disk, lock, router, arguments,
--retry-rejected of a version that is not rejected).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from router.admin.client import AdminClient
from router.errors import AdminError
from router.update.errors import UpdateFailed, UpdateRejected
from router.update.update import Follow, Run, Updater, UpdateRequest

EXIT_DONE, EXIT_ERROR, EXIT_REJECTED = 0, 1, 2
# Setting a model stops the colour's old backend first (SIGTERM, SIGKILL after runtime.stop_grace_s).
ROUTER_TIMEOUT_S = 120.0


def summary(run: Run) -> Table:
    table = Table(title="update", box=None, pad_edge=False)
    for column in ("step", "seconds", "result"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for name, seconds, detail in run.steps:
        table.add_row(name, f"{seconds:.1f}", detail)
    if len(run.steps) > 1:
        table.add_row("total", f"{sum(seconds for _, seconds, _ in run.steps):.1f}", "")
    return table


def run_update_command(request: UpdateRequest, follow: Follow, out: Console, console: Console,
                       confirm: Callable[[str], bool] | None) -> int:
    """The exit code of one `bluegreen update`; progress on `console`, the summary on `out`."""
    client = AdminClient(request.router, timeout_s=ROUTER_TIMEOUT_S)
    updater = Updater(request, client, follow, console, confirm)
    try:
        run = updater()
    except UpdateRejected as exc:
        out.print()
        out.print(summary(updater.run))
        out.print(f"[red]rejected:[/] {escape(str(exc))}")
        return EXIT_REJECTED
    except (UpdateFailed, AdminError) as exc:
        out.print()
        out.print(summary(updater.run))
        console.print(f"[red]update could not run:[/] {escape(str(exc))}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.print("stopped; a rollout already started goes on in the router (`bluegreen status --watch`), the "
                      "next run records its outcome (or gives the canary its model back), and a download resumes")
        return EXIT_ERROR
    finally:
        client.close()
    out.print()
    out.print(summary(run))
    out.print(f"[green]{run.outcome}:[/] {escape(run.message)}" if run.outcome else escape(run.message))
    return EXIT_DONE
