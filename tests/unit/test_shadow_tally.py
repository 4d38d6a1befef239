"""The shadow tally: pairs of the stable colour's and the canary's answers to the same requests."""

from __future__ import annotations

import json

from router.quality.shadow import ShadowTally, answer_of, shadow_verdict
from router.quality.verdict import Outcome, Sides

RUSSIAN = ("Договор аренды заключается в письменной форме, если срок превышает один год.", "stop")
CLOSE = ("Договор аренды заключается письменно, если его срок больше одного года.", "stop")
ENGLISH = ("The lease must be made in writing when its term is longer than one year, as the code says.", "stop")


def test_pairs_carry_length_ratio_similarity_and_stream_gaps() -> None:
    tally = ShadowTally()
    for _ in range(20):
        tally.add(RUSSIAN, CLOSE, (0.02, 0.05))
    tally.add(RUSSIAN, None, (0.02, None))  # the canary failed: counted against it, no pair figures
    figures = tally.as_dict()
    assert figures["pairs"] == 21 and figures["canary_errors"] == 1
    assert figures["green"]["gap_p95_s"] == 0.05 and figures["blue"]["gap_p95_s"] == 0.02
    assert 0.8 < figures["length_ratio_p50"] < 1.0
    assert 20 < figures["chrf_p50"] < 100  # similar wording, not the same
    assert shadow_verdict(tally, min_pairs=20).outcome is Outcome.passed


def test_stalling_streams_fail_the_shadow_phase() -> None:
    tally = ShadowTally()
    for _ in range(20):
        tally.add(RUSSIAN, RUSSIAN, (0.1, 1.2))
    verdict = shadow_verdict(tally, min_pairs=20)
    assert verdict.outcome is Outcome.regressed
    assert verdict.reasons == ("inter-chunk gap p95: green 1200 ms, 12.0× blue's 100 ms (> 500 ms allowed: 3× blue, "
                               "at least 500 ms) in 20 mirrored requests",)


def test_with_green_stable_the_figures_and_reasons_name_blue_as_the_canary() -> None:
    tally = ShadowTally(sides=Sides(candidate="blue", baseline="green"))
    for _ in range(20):
        tally.add(RUSSIAN, ENGLISH)
    figures = tally.as_dict()
    assert (figures["canary"], figures["stable"]) == ("blue", "green")
    assert figures["blue"]["wrong_language"] == 1.0 and figures["green"]["wrong_language"] == 0.0
    verdict = shadow_verdict(tally, min_pairs=20)
    assert "non-Russian answers: blue 100.0 % > limit 10.0 % (green 0.0 %) in 20 mirrored requests" in verdict.reasons


def test_streamed_and_json_answers_read_alike() -> None:
    legal_stream = "".join(f"data: {json.dumps({'delta': part})}\n\n" for part in ("Договор ", "аренды"))
    legal_stream += f"data: {json.dumps({'delta': '', 'done': True, 'finish_reason': 'stop'})}\n\n"
    assert answer_of("/api/v1/chat/legal", legal_stream.encode()) == ("Договор аренды", "stop")
    body = json.dumps({"answer": "Договор аренды", "finish_reason": "length"}).encode()
    assert answer_of("/api/v1/chat/legal", body) == ("Договор аренды", "length")
    assert answer_of("/api/v1/chat/legal", b'{"error": "model is loading"}') is None


def test_mirrors_a_hanging_canary_never_answered_hold_the_pass_until_they_end() -> None:
    """20 quick answers and 4 mirrors still hanging: the quick ones alone would pass it."""
    tally = ShadowTally()
    for _ in range(20):
        tally.add(RUSSIAN, CLOSE)
    tally.longest_s = 0.3
    held = shadow_verdict(tally, min_pairs=20, overdue=4)
    assert held.outcome is Outcome.inconclusive
    assert held.reasons[0].startswith("4 mirrored requests have waited longer for green's answer than any it gave "
                                      "(0.3 s)")
    assert shadow_verdict(tally, min_pairs=20, overdue=1).outcome is Outcome.passed  # 1 of 21: a pass even so
    for _ in range(4):
        tally.add(RUSSIAN, None)  # the hanging ones end as failures
    assert shadow_verdict(tally, min_pairs=20).outcome is not Outcome.passed
