"""Write a comparison down: `model_comparison.json` for machines, a self-contained `report.html` for people.

The HTML carries its charts as inline SVG and its style inline: it opens from a mail attachment
or an air-gapped machine just as well.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any

from router.quality import svg
from router.quality.compare import COLOURS, AnswerRecord, CompareOptions, Endpoint, QuestionResult
from router.quality.summary import Summary, figure_rows, fmt
from router.quality.verdict import CompareLimits, Verdict

JSON_NAME = "model_comparison.json"
HTML_NAME = "report.html"


@dataclass(frozen=True)
class ComparisonRun:
    """Everything one `bluegreen compare` run found, as written to its report."""

    started_at: str  # ISO 8601
    duration_s: float
    endpoints: dict[str, Endpoint]
    options: CompareOptions
    limits: CompareLimits
    results: list[QuestionResult]
    summary: Summary
    verdict: Verdict


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def _answer_dict(answer: AnswerRecord) -> dict[str, Any]:
    body = asdict(answer)
    body.pop("colour")
    if answer.checks is not None:
        body["checks"]["failures"] = list(answer.checks.failures)
    return body


def _question_dict(result: QuestionResult) -> dict[str, Any]:
    pair = result.pair
    return {
        "question": result.question.text, "reference": result.question.reference, "area": result.question.area,
        "repeat": result.repeat,
        **{colour: _answer_dict(result.answers[colour]) for colour in COLOURS if colour in result.answers},
        "pair": asdict(pair) if pair is not None else None,
    }


def comparison_document(run: ComparisonRun) -> dict[str, Any]:
    verdict = run.verdict
    document: dict[str, Any] = _rounded({
        "started_at": run.started_at,
        "duration_s": run.duration_s,
        "endpoints": {colour: {"url": e.url, "api": e.api.value} for colour, e in run.endpoints.items()},
        "options": asdict(run.options),
        "limits": asdict(run.limits),
        "summary": asdict(run.summary),
        "verdict": {"outcome": verdict.outcome.value, "regressed": verdict.regressed, "reasons": list(verdict.reasons),
                    "findings": [asdict(f) for f in verdict.findings]},
        "questions": [_question_dict(result) for result in run.results],
    })
    return document


def write_json(run: ComparisonRun, out_dir: Path) -> Path:
    path = out_dir / JSON_NAME
    path.write_text(json.dumps(comparison_document(run), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


# ---- HTML -------------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:10px 14px;border-radius:6px;font-size:15px}
.passed{background:#e5f5e9;border:1px solid #2e9d4f} .regressed{background:#fbe7e7;border:1px solid #c62828}
.inconclusive{background:#fff6e0;border:1px solid #d39b00}
.bad{color:#c62828;font-weight:bold} .charts{display:flex;flex-wrap:wrap;gap:12px}
.answer{max-width:420px;white-space:pre-wrap} code{font-size:12px}
"""


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{cell}</td>' if i >= numeric_from else f"<td>{cell}</td>" for i, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _charts(run: ComparisonRun) -> list[str]:
    answered = {colour: [r.answers[colour] for r in run.results if colour in r.answers and r.answers[colour].ok]
                for colour in COLOURS}
    lengths = [(float(len(p.answers["blue"].answer.strip())), float(len(p.answers["green"].answer.strip())))
               for p in run.results if p.pair is not None]
    similarity = [c for r in run.results if (pair := r.pair) is not None and (c := pair.chrf) is not None]
    reference = {f"{colour} vs reference": [a.chrf_reference for a in answers if a.chrf_reference is not None]
                 for colour, answers in answered.items()}
    return [
        svg.histogram({c: [a.time_s for a in answered[c]] for c in COLOURS}, "Request latency per colour", "seconds"),
        svg.histogram({c: [a.ttft_s for a in answered[c] if a.ttft_s is not None] for c in COLOURS},
                      "Time to first token per colour", "seconds"),
        svg.scatter(lengths, "Answer length, blue vs green", "blue, characters", "green, characters"),
        svg.histogram({"green": similarity}, "chrF similarity, green vs blue", "chrF (0–100)", x_range=(0, 100)),
        svg.histogram({name.split()[0]: values for name, values in reference.items()},
                      "chrF against the reference answers", "chrF (0–100)", x_range=(0, 100)),
    ]


def _answer_cell(answer: AnswerRecord | None) -> str:
    if answer is None:
        return "–"
    if not answer.ok:
        return f'<span class="bad">{escape(answer.error or "failed")}</span>'
    flags = answer.checks.failures if answer.checks else ()
    badge = f'<div class="bad">{escape(", ".join(flags))}</div>' if flags else ""
    figures = (f"<div><code>{answer.time_s:.2f} s · ttft {fmt(answer.ttft_s, digits=2)} s · "
               f"{answer.tokens if answer.tokens is not None else '?'} tok · {escape(answer.finish_reason or '?')}"
               "</code></div>")
    return f'{badge}<div class="answer">{escape(answer.answer)}</div>{figures}'


def _question_rows(run: ComparisonRun) -> list[list[str]]:
    rows = []
    for result in run.results:
        pair = result.pair
        chrf_pair = fmt(pair.chrf, digits=1) if pair is not None else "–"
        rows.append([
            escape(result.question.text) + (f" <small>(#{result.repeat + 1})</small>" if run.options.repeats > 1 else ""),
            _answer_cell(result.answers.get("blue")), _answer_cell(result.answers.get("green")), chrf_pair,
        ])
    return rows


def render_html(run: ComparisonRun) -> str:
    verdict, summary = run.verdict, run.summary
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in verdict.reasons)
    findings = [[escape(f.name), escape(f.reason), "ok" if f.passed else '<span class="bad">breach</span>']
                for f in verdict.findings]
    setup = ", ".join(f"{colour}: <code>{escape(e.url)}</code>" for colour, e in run.endpoints.items())
    pair = summary.pair
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model comparison: blue vs green</title>
<style>{STYLE}</style></head><body>
<h1>Model comparison: blue vs green</h1>
<p>{setup}<br>started {escape(run.started_at)}, took {run.duration_s:.1f} s; {len(run.results)} question runs
({run.options.repeats} repeat(s)), max_tokens {run.options.max_tokens}, concurrency {run.options.concurrency} per colour.</p>
<div class="verdict {verdict.outcome.value}"><b>Verdict: {escape(verdict.outcome.value)}</b><ul>{reasons}</ul></div>
<h2>Summary</h2>
{_table(["", "blue", "green"], [list(row) for row in figure_rows(summary.blue, summary.green)])}
<p>Pairs answered by both: {pair.pairs}; median length ratio green/blue {fmt(pair.length_ratio_p50, digits=2)};
median chrF green vs blue {fmt(pair.chrf_p50, digits=1)}.</p>
<h2>Checks</h2>
{_table(["check", "finding", "result"], findings, numeric_from=3)}
<h2>Charts</h2>
<div class="charts">{"".join(_charts(run))}</div>
<h2>Answers</h2>
{_table(["question", "blue", "green", "chrF"], _question_rows(run), numeric_from=3)}
</body></html>
"""


def write_html(run: ComparisonRun, out_dir: Path) -> Path:
    path = out_dir / HTML_NAME
    path.write_text(render_html(run), encoding="utf-8")
    return path
