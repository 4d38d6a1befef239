"""One update run: check → download → verify → hand to the router → cutover → record the outcome.

A run killed mid-cutover leaves a "pending" entry in update.json; every run first catches it up from
the router's status and events (record the outcome it missed, give the canary its model back, or
follow the rollout still going), under the lock. A real run then prunes partial downloads of versions
no longer offered and, with --retry-rejected, forgets the offered version's rejection: both under the
lock, both said on the console.

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
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from router.admin.client import AdminClient
from router.errors import AdminError, RouterUnreachable
from router.rollout.machine import FINISHED, Phase
from router.update.download import fetch, verify
from router.update.errors import UpdateFailed, UpdateRejected
from router.update.history import ModelsDir
from router.update.lock import UpdateLock, held_by
from router.update.plan import Action, Candidate, CatchUp, Recovery, catch_up, check_sha256, decide, retry_rejected
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
        self.caught_rejection: str | None = None  # a stopped run's rejection this run recorded (catch-up)

    def note(self, kind: str, message: str) -> None:
        self.console.print(f"[bold]{kind}[/]: {message}")
        if not self.request.dry_run:
            self.client.note(kind, message)

    def __call__(self) -> Run:
        request = self.request
        pending = self.models.pending()
        if pending is not None:  # a run was killed mid-cutover: settle that first, from the router's word
            if request.dry_run:
                holder = held_by(self.models.lock_path)
                if holder is not None:  # not killed: still going
                    return self._done(Outcome.planned, f"Another update (PID {holder}) is mid-cutover of "
                                                       f"{pending.get('version', '?')}; it records its own outcome")
                return self._done(Outcome.planned, self._plan_catch_up(pending))
            self.models.prepare()
            with UpdateLock(self.models.lock_path):
                self._catch_up()
        with self.run.step("check") as detail:
            status = self.client.status()
            canary = "green" if status["stable"] == "blue" else "blue"
            candidate = self._candidate()
            record, retried = self._record(candidate)
            decision = decide(candidate, record)
            detail.append(decision.why + (f" (retried: {retried})" if retried else ""))
        if decision.action is Action.rejected and self.caught_rejection is not None:
            # The rejection a stopped run missed was recorded just now: this run reports it (exit 2).
            self.note("update_checked", decision.why)
            raise UpdateRejected(f"{self.caught_rejection} (the cutover of a stopped run, recorded now)")
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
        self._catch_up()  # a run that held the lock meanwhile may have been killed mid-cutover
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
        """Hand the canary the candidate and run the cutover. update.json holds a "pending" entry from
        before the router is asked until the outcome is recorded, so a run killed anywhere in between
        is caught up by the next one (_catch_up)."""
        request = self.request
        latest = self.client.latest_events(1)
        self.models.set_pending(fresh=True, version=candidate.version, fingerprint=candidate.fingerprint,
                                path=str(path), location=candidate.location, canary=canary,
                                since=latest[-1]["id"] if latest else 0,
                                date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
        with self.run.step("hand to router") as detail:
            try:
                answer = self.client.set_model(canary, str(path), request.engine,
                                               reason=f"update {candidate.name} {candidate.version}")
            except RouterUnreachable:
                raise  # it may have been done: the next run reads the router's events and knows
            except AdminError:
                self.models.clear_pending()  # refused: nothing changed
                raise
            detail.append(answer["event"]["message"])
        before: dict[str, str] | None = answer["before"]
        self.models.set_pending(model_event=answer["event"]["id"], before=before)
        with self.run.step("cutover") as detail:
            try:
                started = self.client.start_rollout(request.steps, request.interval_s)
            except RouterUnreachable:
                raise  # it may have started (and even failed already): the next run reads what happened
            except AdminError:  # refused: no rollout started
                if self._restore(canary, before, "update: the rollout did not start"):
                    self.models.clear_pending()
                raise
            self.models.set_pending(rollout=started["rollout"]["id"])
            final = self.follow(self.client, answer["event"]["id"])
            rollout = final["rollout"]
            reason = rollout.get("reason", "")
            detail.append(rollout["phase"] + (f": {reason}" if reason and reason != rollout["phase"] else ""))
        phase = rollout["phase"]
        if phase == "promoted":
            message = self._promoted(candidate, canary, path)
            self.note("update_promoted", message)
            return self._done(Outcome.updated, message)
        if phase in REJECTED:
            reason = f"cutover {phase.replace('_', ' ')}: {rollout.get('reason', '')}"
            self.note("update_rejected", self._rejected(candidate, canary, before, reason, final["stable"]))
            raise UpdateRejected(reason)
        raise UpdateFailed(f"stopped following the rollout while it was {phase}; it goes on in the router "
                           "(`bluegreen status --watch`) and the next `bluegreen update` records its outcome")

    def _promoted(self, candidate: Candidate, canary: str, path: Path) -> str:
        """Record the promotion (which ends the pending entry) and prune; what happened, in words."""
        self.models.promoted(candidate, path)
        pruned = self.models.prune(self.request.keep)
        kept = f"; pruned {', '.join(pruned)}" if pruned else ""
        return f"{candidate.name} {candidate.version} promoted: {canary} serves it to every session{kept}"

    def _rejected(self, candidate: Candidate, canary: str, before: dict[str, Any] | None, reason: str,
                  stable: str) -> str:
        """Give the canary its model back, then record the rejection (which ends the pending entry). When
        the router refuses to give it back, the entry stays and the next run tries again."""
        given_back = canary == stable or self._restore(canary, before)
        if given_back:
            self.models.rejected(candidate, reason)
        return (f"{candidate.name} {candidate.version} rejected ({reason}); {stable} keeps serving; not tried again "
                "until the source changes" + ("" if given_back else f"; {canary} still points at it: the next run "
                                                                    "gives it its previous model back"))

    def _restore(self, canary: str, before: dict[str, Any] | None, reason: str = "update rejected") -> bool:
        """Give the canary colour back the model it had, so no later cutover starts the rejected one;
        whether the router did."""
        try:
            if before:
                self.client.set_model(canary, before["model"], before.get("engine"), reason=reason)
            else:
                self.client.reset_model(canary)
        except AdminError as exc:
            self.console.print(f"[yellow]could not give {canary} its previous model back:[/] {escape(str(exc))}")
            return False
        return True

    # -- catching up after a killed run ------------------------------------------------------------

    def _read_catch_up(self, pending: dict[str, Any]) -> tuple[CatchUp, str]:
        """What became of the pending cutover, and the router's stable colour now."""
        status = self.client.status()  # first: a rollout started after it shows in the events read next
        return catch_up(pending, status, self.client.events_after(int(pending.get("since", 0)))), status["stable"]

    def _plan_catch_up(self, pending: dict[str, Any]) -> str:
        """--dry-run: what the next real run would settle first (it changes nothing)."""
        found, _ = self._read_catch_up(pending)
        then = {Recovery.unset: "would forget the pending cutover",
                Recovery.restore: "would give the canary its previous model back" if found.still_candidate
                else "would forget the pending cutover (the canary's model was changed since)",
                Recovery.running: "would follow it to its end and record the outcome",
                Recovery.promoted: "would record the promotion",
                Recovery.rejected: "would record the rejection" + (" and give the canary its previous model back"
                                                                   if found.still_candidate else "")}[found.action]
        with self.run.step("catch up") as detail:
            detail.append(f"{found.action}: {found.why}")
        return (f"A run stopped mid-cutover: {found.why}; a real run {then}, then decides on the source. Run without "
                "--dry-run to settle it")

    def _catch_up(self) -> None:
        """Settle the cutover a killed run left pending (under the lock), from the router's status and events:
        record a promotion or rejection it missed, give the canary its previous model back, or follow the
        rollout still going. Each is an `update_recovered` event and a summary row."""
        pending = self.models.pending()
        if pending is None:
            return
        with self.run.step("catch up") as detail:
            found, stable = self._read_catch_up(pending)
            candidate = Candidate(name=self.request.name, version=str(pending.get("version", "?")),
                                  location=str(pending.get("location", "")), file_name=Path(pending["path"]).name,
                                  fingerprint=str(pending["fingerprint"]))
            canary, path = str(pending["canary"]), Path(pending["path"])
            before = found.before if found.model_event is not None else pending.get("before")
            action, reason = found.action, found.reason
            if action is Recovery.running:
                self.console.print(f"following the rollout a stopped run started: {found.why}")
                final = self.follow(self.client, found.model_event or int(pending.get("since", 0)))
                phase, stable = final["rollout"]["phase"], final["stable"]
                action = Recovery.promoted if phase == "promoted" else Recovery.rejected
                reason = f"cutover {phase.replace('_', ' ')}: {final['rollout'].get('reason', '')}"
            if action is Recovery.promoted:
                done = self._promoted(candidate, canary, path)
            elif action is Recovery.rejected:
                self.caught_rejection = f"{candidate.name} {candidate.version} rejected: {reason}"
                if not found.still_candidate:
                    self.models.rejected(candidate, reason)
                    done = (f"{candidate.name} {candidate.version} rejected ({reason}); {canary}'s model was changed "
                            "since, so it is left as it is")
                else:
                    done = self._rejected(candidate, canary, before, reason, stable)
                    if self.models.pending() is not None:
                        raise UpdateFailed(f"{done}; run again once the router accepts the change")
            elif found.still_candidate and canary != stable:
                if not self._restore(canary, before, "update stopped before its rollout"):
                    raise UpdateFailed(f"{found.why}, and the router refused to give {canary} its previous model "
                                       "back; run again once it accepts")
                self.models.clear_pending()
                done = f"gave {canary} its previous model back"
            else:
                self.models.clear_pending()
                done = "nothing to undo" if action is Recovery.unset else f"{canary}'s model was changed since; left as it is"
            followed = "followed it to its end: " if found.action is Recovery.running else ""
            detail.append(f"{found.action}{f' → {action}' if action != found.action else ''}: {done}")
        self.note("update_recovered", f"a run stopped mid-cutover: {found.why}; {followed}{done}")

    def _done(self, outcome: Outcome, message: str) -> Run:
        self.run.outcome, self.run.message = outcome, message
        return self.run
