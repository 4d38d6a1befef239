"""One update run: check → download → verify → hand to the router → cutover → record the outcome.

A real run first prunes partial downloads of versions no longer offered and, with --retry-rejected,
forgets the offered version's rejection: both under the lock, both said on the console.

Every step that changes something is also a router event (`update_*`, next to the router's own
`model_set` and rollout events), so `bluegreen events` tells the whole story in one place; the
console shows progress and ends with a summary of the steps and their times.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from router.admin.client import AdminClient
from router.errors import AdminError
from router.rollout.machine import FINISHED, Phase
from router.update.download import fetch, verify
from router.update.errors import UpdateFailed, UpdateRejected
from router.update.history import ModelsDir
from router.update.lock import UpdateLock
from router.update.plan import Action, Candidate, check_sha256, decide, retry_rejected
from router.update.source import check_source

REJECTED = frozenset({Phase.rolled_back, Phase.failed})  # phases that end a rollout without promoting
NO_RUNTIME = ("the router does not start the backends (runtime.kind none), so it cannot start the canary on a new "
              "file; run the router with runtime.kind local or docker, or start the new model yourself and run "
              "`bluegreen cutover`")


@dataclass(frozen=True)
class UpdateRequest:
    router: str
    source: str
    name: str
    models_dir: Path
    sha256: str | None = None
    engine: str | None = None
    steps: list[float] | None = None
    interval_s: float | None = None
    keep: int = 3
    dry_run: bool = False
    timeout_s: float = 60.0
    retry_rejected: bool = False  # forget the rejection of the version the source offers, then update


class Outcome(StrEnum):
    updated = "updated"
    current = "already current"
    already_rejected = "already rejected"
    planned = "dry run"


@dataclass
class Run:
    """What happened, step by step, for the summary."""

    steps: list[tuple[str, float, str]] = field(default_factory=list)
    outcome: Outcome | None = None
    message: str = ""

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """Time a step; the caller appends its one-line result to the yielded list."""
        started, detail = time.monotonic(), [""]
        try:
            yield detail
        finally:
            self.steps.append((name, time.monotonic() - started, detail[-1]))


Follow = Callable[[AdminClient, int], dict[str, Any]]


class Updater:
    def __init__(self, request: UpdateRequest, client: AdminClient, follow: Follow, console: Console,
                 confirm: Callable[[str], bool] | None = None) -> None:
        self.request, self.client, self.follow, self.console = request, client, follow, console
        self.confirm = confirm  # None: do not ask (--yes)
        self.models = ModelsDir(request.models_dir, request.name)
        self.run = Run()

    def note(self, kind: str, message: str) -> None:
        self.console.print(f"[bold]{kind}[/]: {message}")
        if not self.request.dry_run:
            self.client.note(kind, message)

    def __call__(self) -> Run:
        request = self.request
        with self.run.step("check") as detail:
            status = self.client.status()
            canary = "green" if status["stable"] == "blue" else "blue"
            candidate = self._candidate()
            record, retried = self._record(candidate)
            decision = decide(candidate, record)
            detail.append(decision.why + (f" (retried: {retried})" if retried else ""))
        if decision.action is not Action.update:
            self.note("update_checked", decision.why)
            return self._done(Outcome.current if decision.action is Action.current else Outcome.already_rejected,
                              decision.why)
        if "runtime" not in status:
            raise UpdateFailed(NO_RUNTIME)
        if status["phase"] not in FINISHED:
            raise UpdateFailed(f"a rollout is {status['phase']} on the router; let it end (`bluegreen status`) and run "
                               "again")
        if request.dry_run:
            size = f"{candidate.size / 1e6:.1f} MB" if candidate.size is not None else "unknown size"
            forget = f"Would forget that {retried} and try it again. " if retried else ""
            plan = (f"{forget}{decision.why}. Would download {candidate.location} ({size}) to "
                    f"{self.models.installed(candidate)}, verify "
                    f"{'sha256 ' + candidate.sha256[:12] + '…' if candidate.sha256 else 'its size only (no sha256)'}, "
                    f"start {canary} on it and run a cutover {status['stable']} → {canary}")
            return self._done(Outcome.planned, plan)  # the summary prints it
        self.models.prepare()
        with UpdateLock(self.models.lock_path):
            return self._update(candidate, canary)

    def _record(self, candidate: Candidate) -> tuple[dict[str, Any], str]:
        """The record the decision reads, and (--retry-rejected) the rejection to forget: only read here;
        a real run forgets it under the lock."""
        record = self.models.read()
        if not self.request.retry_rejected:
            return record, ""
        try:
            retry = retry_rejected(candidate, record)
        except ValueError as exc:
            raise UpdateFailed(str(exc)) from exc
        return retry.record, retry.why

    def _candidate(self) -> Candidate:
        request = self.request
        with httpx.Client(timeout=request.timeout_s) as http:
            candidate = check_source(request.source, request.name, http)
        if request.sha256 is not None:
            given = check_sha256(request.sha256)
            if candidate.sha256 is not None and candidate.sha256 != given:
                raise UpdateFailed(f"--sha256 {given[:12]}… differs from the manifest's {candidate.sha256[:12]}…; "
                                   "drop --sha256 or fix the manifest")
            candidate = dataclasses.replace(candidate, sha256=given,
                                            fingerprint=f"{candidate.fingerprint} sha256 {given}")
        return candidate

    def _update(self, candidate: Candidate, canary: str) -> Run:
        started = time.monotonic()
        removed = self.models.prune_staging(candidate)
        if removed:  # a summary row only when there was something to clean
            cleaned = "removed stale partial downloads: " + ", ".join(f"{name} ({size / 1e6:.1f} MB)"
                                                                      for name, size in removed)
            self.run.steps.append(("clean staging", time.monotonic() - started, cleaned))
            self.console.print(cleaned)
        if self.request.retry_rejected:
            retried = self.models.retry(candidate)
            self.note("update_retried", f"forgot that {retried} (--retry-rejected); trying it again")
        decision = decide(candidate, self.models.read())  # a run that held the lock before may have done it
        if decision.action is not Action.update:
            return self._done(Outcome.current if decision.action is Action.current else Outcome.already_rejected,
                              decision.why)
        self.note("update_checked", f"{decision.why}; source {candidate.location}")
        with self.run.step("download") as detail:
            fetched = self._download(candidate)
            resumed = f", resumed at {fetched.resumed_from} bytes" if fetched.resumed_from else ""
            detail.append(f"{fetched.size} bytes, {fetched.received} transferred{resumed}")
        self.note("update_downloaded", f"{candidate.name} {candidate.version}: {fetched.size} bytes in "
                                       f"{fetched.seconds:.1f} s ({fetched.received} transferred{resumed})")
        with self.run.step("verify") as detail:
            try:
                verify(fetched, candidate.sha256)
            except UpdateRejected as exc:
                detail.append("checksum mismatch")
                self.note("update_rejected", f"{candidate.name} {candidate.version}: {exc}")
                raise
            path = self.models.install(fetched.path, candidate)
            detail.append(f"sha256 {fetched.sha256[:12]}… → {path}")
        self.note("update_verified", f"{candidate.name} {candidate.version}: sha256 {fetched.sha256} "
                                     f"({'matches the source' if candidate.sha256 else 'no published checksum'}); "
                                     f"installed as {path}")
        if self.confirm is not None and not self.confirm(f"Start {canary} on {path} and run a cutover to it?"):
            raise UpdateFailed(f"not confirmed; {path} stays installed and the next run goes on from there")
        return self._cutover(candidate, canary, path.resolve())

    def _download(self, candidate: Candidate) -> Any:
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(f"{candidate.name} {candidate.version}", total=candidate.size)
            return fetch(candidate, self.models.staging(candidate),
                         lambda done, total: progress.update(task, completed=done, total=total),
                         timeout_s=self.request.timeout_s)

    def _cutover(self, candidate: Candidate, canary: str, path: Path) -> Run:
        request = self.request
        with self.run.step("hand to router") as detail:
            answer = self.client.set_model(canary, str(path), request.engine,
                                           reason=f"update {candidate.name} {candidate.version}")
            detail.append(answer["event"]["message"])
        before: dict[str, str] | None = answer["before"]
        with self.run.step("cutover") as detail:
            try:
                self.client.start_rollout(request.steps, request.interval_s)
            except AdminError:
                self._restore(canary, before)
                raise
            final = self.follow(self.client, answer["event"]["id"])
            rollout = final["rollout"]
            reason = rollout.get("reason", "")
            detail.append(rollout["phase"] + (f": {reason}" if reason and reason != rollout["phase"] else ""))
        phase = rollout["phase"]
        if phase == "promoted":
            self.models.promoted(candidate, path)
            pruned = self.models.prune(request.keep)
            kept = f"; pruned {', '.join(pruned)}" if pruned else ""
            message = f"{candidate.name} {candidate.version} promoted: {canary} serves it to every session{kept}"
            self.note("update_promoted", message)
            return self._done(Outcome.updated, message)
        if phase in REJECTED:
            reason = f"cutover {phase.replace('_', ' ')}: {rollout.get('reason', '')}"
            self.models.rejected(candidate, reason)
            self._restore(canary, before)
            self.note("update_rejected", f"{candidate.name} {candidate.version} rejected ({reason}); "
                                         f"{final['stable']} keeps serving; not tried again until the source changes")
            raise UpdateRejected(reason)
        raise UpdateFailed(f"stopped following the rollout while it was {phase}; it goes on in the router "
                           "(`bluegreen status --watch`) and its outcome is not recorded here")

    def _restore(self, canary: str, before: dict[str, str] | None) -> None:
        """Give the canary colour back the model it had, so no later cutover starts the rejected one."""
        try:
            if before:
                self.client.set_model(canary, before["model"], before.get("engine"), reason="update rejected")
            else:
                self.client.reset_model(canary)
        except AdminError as exc:
            self.console.print(f"[yellow]could not give {canary} its previous model back:[/] {exc}")

    def _done(self, outcome: Outcome, message: str) -> Run:
        self.run.outcome, self.run.message = outcome, message
        return self.run
