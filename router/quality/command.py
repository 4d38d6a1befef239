"""`bluegreen compare` end to end: check both URLs, ask the questions with a progress bar, judge,
write the JSON and HTML reports, print the table. The CLI maps the outcome to an exit code (passed 0,
regressed 2, inconclusive 1), and `CompareFailed` (the comparison could not run) to 1.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from router.errors import CompareFailed
from router.quality.compare import (
    COLOURS,
    AnswerRecord,
    CompareOptions,
    Endpoint,
    QuestionResult,
    Unreachable,
    endpoint_of,
    not_ready,
    run_comparison,
    setup_problem,
)
from router.quality.questions import Question, default_questions, load_questions
from router.quality.report import ComparisonRun, write_html, write_json
from router.quality.summary import Summary, summarise
from router.quality.table import summary_table, verdict_view
from router.quality.verdict import CompareLimits, Outcome, Verdict, judge_comparison


@dataclass(frozen=True)
class CompareRequest:
    blue_url: str
    green_url: str
    questions_path: Path | None
    out_dir: Path
    options: CompareOptions
    limits: CompareLimits
    wait_ready_s: float = 60.0  # for a backend whose model is still loading


def _prepare(request: CompareRequest) -> tuple[dict[str, Endpoint], list[Question]]:
    try:
        endpoints = {"blue": endpoint_of(request.blue_url), "green": endpoint_of(request.green_url)}
    except ValueError as exc:
        raise CompareFailed(str(exc)) from exc
    questions = load_questions(request.questions_path) if request.questions_path else default_questions()
    _check_writable(request.out_dir)
    return endpoints, questions


def _check_writable(out_dir: Path) -> None:
    """The output folder exists (created if need be) and takes a file: checked before any question is asked,
    so that an unwritable `--out` costs nothing (a root user writes through permission bits, and /sys or
    /proc refuse files anyway: only writing tells)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompareFailed(f"cannot create the output folder {out_dir}: {exc}") from exc
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".bluegreen-write-check-", dir=out_dir)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:
        raise CompareFailed(f"cannot write the reports into {out_dir}: {exc}") from exc


async def _wait_until_ready(endpoints: dict[str, Endpoint], wait_s: float, console: Console) -> None:
    """Both backends answer `/ready` (a model still loading is waited for, up to `wait_s`)."""
    deadline = time.monotonic() + wait_s
    said = ""
    async with httpx.AsyncClient(trust_env=False) as client:
        while True:
            answers = await asyncio.gather(*(not_ready(client, e) for e in endpoints.values()), return_exceptions=True)
            gone = [f"{colour}: {a}" for colour, a in zip(endpoints, answers, strict=True) if isinstance(a, Unreachable)]
            if gone:
                raise CompareFailed("; ".join(gone))
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            waiting = [f"{colour}: {a}" for colour, a in zip(endpoints, answers, strict=True) if isinstance(a, str)]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise CompareFailed(f"not ready after {wait_s:g} s: " + "; ".join(waiting))
            if (message := "waiting: " + "; ".join(waiting)) != said:
                console.print(message, highlight=False)
                said = message
            await asyncio.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def _ask_all(endpoints: dict[str, Endpoint], questions: list[Question], options: CompareOptions,
             console: Console) -> list[QuestionResult]:
    per_colour = len(questions) * options.repeats
    done = dict.fromkeys(COLOURS, 0)
    failed = dict.fromkeys(COLOURS, 0)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("asking", total=per_colour * len(endpoints))

        def on_answer(answer: AnswerRecord) -> None:
            done[answer.colour] += 1
            failed[answer.colour] += 0 if answer.ok else 1
            status = " · ".join(f"{c} {done[c]}/{per_colour}" + (f" ({failed[c]} failed)" if failed[c] else "")
                                for c in COLOURS)
            progress.update(task, advance=1, description=status)

        try:
            return asyncio.run(run_comparison(endpoints, questions, options, on_answer))
        except KeyboardInterrupt as exc:
            raise CompareFailed("interrupted: no report written") from exc


def judge_run(endpoints: dict[str, Endpoint], results: list[QuestionResult], summary: Summary,
              limits: CompareLimits) -> Verdict:
    """The comparison's verdict, unless a colour's URL was wrong (every request the same 4xx, or none
    connected): then it is inconclusive, so the comparison exits 1 ("could not run"), not 2, and says
    which colour to check. A green that fails with 5xx or timeouts is still judged, and regresses."""
    problems = tuple(problem for colour, endpoint in endpoints.items()
                     if (problem := setup_problem(colour, endpoint,
                                                  [r.answers[colour] for r in results if colour in r.answers])))
    if problems:
        return Verdict(Outcome.inconclusive, problems)
    return judge_comparison(summary, limits)


def run_compare(request: CompareRequest, out: Console, console: Console) -> ComparisonRun:
    """Run the comparison and write its reports; raises `CompareFailed` when it cannot run."""
    endpoints, questions = _prepare(request)
    asyncio.run(_wait_until_ready(endpoints, request.wait_ready_s, console))
    console.print(f"comparing {len(questions)} questions × {request.options.repeats} on blue {endpoints['blue'].url} "
                  f"and green {endpoints['green'].url}")
    started_at, started = datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter()
    results = _ask_all(endpoints, questions, request.options, console)
    summary = summarise(results)
    run = ComparisonRun(started_at, time.perf_counter() - started, endpoints, request.options, request.limits,
                        results, summary, judge_run(endpoints, results, summary, request.limits))
    try:
        paths = [write_json(run, request.out_dir), write_html(run, request.out_dir)]
    except OSError as exc:
        raise CompareFailed(f"cannot write the reports into {request.out_dir}: {exc}") from exc
    out.print(summary_table(summary))
    out.print(verdict_view(run.verdict))
    out.print("reports: " + ", ".join(str(path) for path in paths))
    return run
