"""Which requests a drill gives a bad answer: the rate, the warm-up, and errors taking precedence."""

from __future__ import annotations

import pytest

from model_backends.config import AnswerFault, FaultOptions
from model_backends.faults import FaultInjector, FaultKind


def _answers(options: FaultOptions, requests: int = 400) -> list[AnswerFault]:
    injector = FaultInjector(options)
    return [injector.decide().answer for _ in range(requests)]


@pytest.mark.parametrize("fault", [AnswerFault.empty, AnswerFault.latin, AnswerFault.repeat])
def test_every_answer_is_bad_at_the_default_rate(fault: AnswerFault) -> None:
    options = FaultOptions(answer=fault)
    assert options.enabled and options.answer_rate == 1.0
    assert set(_answers(options)) == {fault}


@pytest.mark.parametrize(("rate", "low", "high"), [(0.0, 0, 0), (0.25, 70, 130), (0.5, 160, 240)])
def test_answer_rate_is_a_share_of_requests(rate: float, low: int, high: int) -> None:
    bad = _answers(FaultOptions(answer=AnswerFault.latin, answer_rate=rate, seed=7)).count(AnswerFault.latin)
    assert low <= bad <= high


def test_warm_up_requests_are_clean_and_errors_come_first() -> None:
    injector = FaultInjector(FaultOptions(answer=AnswerFault.empty, after_requests=2))
    assert [injector.decide().answer for _ in range(3)] == [AnswerFault.none, AnswerFault.none, AnswerFault.empty]
    erroring = FaultInjector(FaultOptions(answer=AnswerFault.empty, error_rate=1.0)).decide()
    assert (erroring.kind, erroring.answer) == (FaultKind.error, AnswerFault.none)


def test_no_bad_answer_leaves_seeded_drills_unchanged() -> None:
    plain = FaultInjector(FaultOptions(error_rate=0.3, hang_rate=0.2, seed=3))
    with_none = FaultInjector(FaultOptions(error_rate=0.3, hang_rate=0.2, seed=3, answer=AnswerFault.none))
    assert [plain.decide() for _ in range(50)] == [with_none.decide() for _ in range(50)]
    assert not FaultOptions(answer=AnswerFault.none).enabled
