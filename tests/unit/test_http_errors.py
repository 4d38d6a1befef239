"""422 messages in plain words (bluegreen_common.http_errors.field_errors), built from real pydantic errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from fastapi import FastAPI, Header
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from bluegreen_common.http_errors import field_errors, validation_error_handler
from router.admin.bodies import RolloutBody, WeightsBody


def _as_request_error(model: type[BaseModel], body: Any) -> RequestValidationError:
    """What FastAPI raises for a JSON body `model` refuses: the model's own errors, under `body`."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    errors = [{**err, "loc": ("body", *err["loc"])} for err in caught.value.errors()]
    return RequestValidationError(errors, body=body)


@pytest.mark.parametrize(("value", "message"), [
    (101, "green: Input should be less than or equal to 100"),
    (-1, "green: Input should be greater than or equal to 0"),
    ("abc", "green: Input should be a valid number"),
    (True, "green: Input should be a valid number"),
    (float("nan"), "green: Input should be a finite number"),
])
def test_a_union_with_none_reads_as_its_field(value: Any, message: str) -> None:
    # WeightsBody.green is `Percent | SkipJsonSchema[None]`: pydantic names each member in loc
    # (green.constrained-float, green.none), and "Input should be None" is no help to anyone.
    assert field_errors(_as_request_error(WeightsBody, {"green": value})) == (message, "green")


def _twice(value: int) -> int:
    return value


class Alternatives(BaseModel):
    number_or_word: int | str
    checked: Annotated[int, AfterValidator(_twice)] | Literal["auto"] | None = None
    items: list[int] | None = None
    pair: tuple[int, int] | dict[str, int] | None = None
    # Fields named like pydantic's members stay: they are fields, not members.
    int_: int = Field(0, alias="int")


def test_member_tags_of_every_shape_are_dropped_and_alternatives_folded() -> None:
    exc = _as_request_error(Alternatives, {"number_or_word": [], "checked": "x", "pair": 5})
    message, param = field_errors(exc)
    assert param == "number_or_word"
    assert message == ("number_or_word: Input should be a valid integer, or Input should be a valid string; "
                       "checked: Input should be a valid integer, unable to parse string as an integer, "
                       "or Input should be 'auto'; "
                       "pair: Input should be a valid tuple, or Input should be a valid dictionary")
    for tag in ("int", "str", "function-after", "literal[", "tuple[", "dict[", "none"):
        assert f".{tag}" not in message, message


def test_list_positions_and_real_fields_named_like_members_stay() -> None:
    exc = _as_request_error(Alternatives, {"number_or_word": 1, "items": [1, "x"], "int": "y"})
    assert field_errors(exc) == ("items.1: Input should be a valid integer, unable to parse string as an integer; "
                                 "int: Input should be a valid integer, unable to parse string as an integer",
                                 "items.1")


def test_two_fields_with_the_same_bad_value_stay_two_fields() -> None:
    exc = _as_request_error(WeightsBody, {"green": "x", "blue": "x"})
    assert field_errors(exc) == ("green: Input should be a valid number; blue: Input should be a valid number",
                                 "green")


def test_other_errors_keep_their_words() -> None:
    assert field_errors(_as_request_error(WeightsBody, {"green": 5, "colour": "x"})) == (
        "colour: unknown field; remove it", "colour")
    assert field_errors(_as_request_error(RolloutBody, {"steps": ["a", 200]})) == (
        "steps.0: Input should be a valid number; steps.1: Input should be less than or equal to 100", "steps.0")
    # A model-level refusal has no field: the body is the param.
    message, param = field_errors(_as_request_error(WeightsBody, {}))
    assert param == "body" and message.startswith("body: ") and "exactly one colour" in message


class Event(BaseModel):
    url: str
    time: float


def test_missing_fields_named_like_members_stay_two_fields() -> None:
    # Both errors are `missing` with the same input (the body): two fields, not a union's members.
    assert field_errors(_as_request_error(Event, {})) == (
        "url: required field is missing; time: required field is missing", "url")


def test_names_outside_the_body_are_never_taken_for_members() -> None:
    errors = [{"type": "missing", "loc": ("header", "x-session-id"), "msg": "Field required", "input": None},
              {"type": "int_parsing", "loc": ("query", "int"), "msg": "Input should be a valid integer",
               "input": "x"},
              {"type": "string_type", "loc": ("query", "str"), "msg": "Input should be a valid string", "input": "x"}]
    assert field_errors(RequestValidationError(errors)) == (
        "header.x-session-id: required field is missing; query.int: Input should be a valid integer; "
        "query.str: Input should be a valid string", "header.x-session-id")


def test_a_missing_header_is_named_through_the_handler() -> None:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_error_handler)

    @app.get("/session")
    def session(x_session_id: Annotated[str, Header()]) -> str:
        return x_session_id

    answer = TestClient(app).get("/session")
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "header.x-session-id: required field is missing"


def _app() -> TestClient:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_error_handler)

    @app.put("/admin/weights")
    def put_weights(body: WeightsBody) -> dict[str, int]:
        return {"green_bp": body.green_bp()}

    return TestClient(app)


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "the body is not valid JSON (Expecting value, at line 1, column 1)"),
    ('{"green": 5', "the body is not valid JSON (Expecting ',' delimiter, at line 1, column 12)"),
    ('{"green', "the body is not valid JSON (Unterminated string starting at, at line 1, column 2)"),
    ('{\n  "green": 5,\n}', "the body is not valid JSON (Expecting property name enclosed in double quotes, "
                           "at line 3, column 1)"),
])
def test_a_body_that_is_not_json_is_said_so(content: str, message: str) -> None:
    answer = _app().put("/admin/weights", content=content, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["error"] == {"message": message, "type": "invalid_request_error", "param": "body",
                                      "code": None}


def test_through_the_handler_a_union_reads_as_its_field() -> None:
    answer = _app().put("/admin/weights", content='{"green": 101}', headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["message"], error["param"]) == ("green: Input should be less than or equal to 100", "green")


def test_the_no_token_refusal_recommends_what_the_example_config_does() -> None:
    from router.admin.api import NO_TOKEN

    example = (Path(__file__).resolve().parents[2] / "bluegreen.example.yaml").read_text()
    assert "admin_token: never here; set BLUEGREEN_ADMIN_TOKEN" in example
    assert "set BLUEGREEN_ADMIN_TOKEN in the router's environment" in NO_TOKEN and "config file" not in NO_TOKEN
