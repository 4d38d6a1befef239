"""The admin bodies accept what their JSON Schema allows and refuse what it forbids."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.admin.bodies import RolloutBody, WeightsBody


@pytest.mark.parametrize(("body", "green_bp"), [
    ({"green": 25}, 2500), ({"blue": 75}, 2500), ({"blue": 0}, 10_000), ({"green": 0.01, "reason": "canary"}, 1),
    ({"green": 0.07}, 7),
])
def test_one_colour_sets_the_split(body: dict, green_bp: int) -> None:
    assert WeightsBody.model_validate(body).green_bp() == green_bp


@pytest.mark.parametrize("body", [
    {}, {"green": 25, "blue": 75}, {"green": None}, {"blue": None, "green": 5}, {"green": 12.345}, {"green": "5"},
    {"green": 101}, {"reason": "no share"},
])
def test_anything_else_is_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        WeightsBody.model_validate(body)


def test_weights_schema_says_exactly_one_colour_and_two_decimals() -> None:
    schema = WeightsBody.model_json_schema()
    assert schema["oneOf"] == [{"required": ["green"]}, {"required": ["blue"]}]
    assert schema["properties"]["green"]["multipleOf"] == 0.01 and schema["properties"]["green"]["type"] == "number"


def test_steps_are_a_set_taken_in_increasing_order() -> None:
    assert RolloutBody.model_validate({"steps": [50, 5, 100, 25]}).steps == [5, 25, 50, 100]
    for bad in ([50, 50], [], [0, 50], [5.001]):
        with pytest.raises(ValidationError):
            RolloutBody.model_validate({"steps": bad})
    assert RolloutBody.model_json_schema()["properties"]["steps"]["anyOf"][0]["uniqueItems"] is True
