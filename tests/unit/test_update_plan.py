"""The update's pure decisions: new, current or rejected; versions to prune; what the source says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.update.plan import (
    Action,
    Candidate,
    Recovery,
    catch_up,
    check_sha256,
    check_version,
    decide,
    retry_rejected,
    space_needed,
    stale_parts,
    to_prune,
    version_of,
)
from router.update.source import parse_manifest, plain_candidate

SHA = "ab" * 32


def candidate(fingerprint: str = "f1", version: str = "2") -> Candidate:
    return Candidate(name="saiga", version=version, location="http://h/saiga.gguf", file_name="saiga.gguf",
                     fingerprint=fingerprint)


def test_a_new_fingerprint_is_an_update_and_says_what_is_current() -> None:
    decision = decide(candidate("f2"), {"current": {"version": "1", "fingerprint": "f1"}})
    assert decision.action is Action.update and "current: 1" in decision.why
    assert decide(candidate(), {}).action is Action.update


def test_the_current_fingerprint_is_current() -> None:
    assert decide(candidate("f1"), {"current": {"version": "1", "fingerprint": "f1"}}).action is Action.current


def test_a_rejected_fingerprint_is_not_tried_again_until_it_changes() -> None:
    record = {"rejected": {"f1": {"version": "2", "reason": "cutover rolled back: error rate", "date": "d"}}}
    decision = decide(candidate("f1"), record)
    assert decision.action is Action.rejected and "error rate" in decision.why
    assert decide(candidate("f2"), record).action is Action.update


def test_a_retry_forgets_only_the_rejection_of_the_offered_version() -> None:
    record = {"current": {"version": "1", "fingerprint": "f1"},
              "rejected": {"f2": {"version": "2", "reason": "cutover rolled back: error rate", "date": "d2"},
                           "f0": {"version": "0", "reason": "canary failed", "date": "d0"}}}
    retry = retry_rejected(candidate("f2"), record)
    assert retry.record == {"current": record["current"], "rejected": {"f0": record["rejected"]["f0"]}}
    assert "saiga 2 was rejected on d2" in retry.why and "error rate" in retry.why
    assert decide(candidate("f2"), retry.record).action is Action.update
    assert "f2" in record["rejected"]  # the caller's record is not changed: a dry run writes nothing


@pytest.mark.parametrize(("fingerprint", "says"), [("f1", "already current"), ("f3", "is new (current: 1)")])
def test_a_retry_of_a_version_that_is_not_rejected_is_refused_and_says_why(fingerprint: str, says: str) -> None:
    record = {"current": {"version": "1", "fingerprint": "f1"}, "rejected": {"f0": {"version": "0"}}}
    with pytest.raises(ValueError, match="is not rejected") as refused:
        retry_rejected(candidate(fingerprint), record)
    assert says in str(refused.value) and "rejected earlier: 0" in str(refused.value)
    with pytest.raises(ValueError, match="nothing to retry; run without --retry-rejected"):
        retry_rejected(candidate("f2"), {})


def test_stale_parts_are_every_partial_download_but_the_candidates() -> None:
    names = ["3-saiga.gguf.part", "2-saiga.gguf.part", "4-other.gguf.part", ".write-test-77", "notes.txt"]
    assert stale_parts(names, "3-saiga.gguf.part") == ["2-saiga.gguf.part", "4-other.gguf.part"]
    assert stale_parts([], "3-saiga.gguf.part") == []


@given(st.lists(st.tuples(st.text("abc123", min_size=1, max_size=4), st.floats(0, 1e9)), unique_by=lambda v: v[0]),
       st.integers(1, 5), st.data())
def test_pruning_keeps_the_newest_and_every_protected_version(versions, keep, data) -> None:
    names = [name for name, _ in versions]
    protected = set(data.draw(st.lists(st.sampled_from(names), max_size=2))) if names else set()
    doomed = to_prune(versions, keep, protected)
    newest = [name for name, _ in sorted(versions, key=lambda v: v[1], reverse=True)[:keep]]
    assert not set(doomed) & (protected | set(newest))
    assert set(doomed) | protected | set(newest) == set(names)


def test_versions_from_headers_are_dated_directory_names() -> None:
    dated = version_of("url x etag y", "Sun, 29 Nov 2026 03:00:00 GMT")
    assert dated.startswith("20261129-030000-") and check_version(dated) == dated
    assert version_of("a") != version_of("b") and check_version(version_of("a"))
    assert version_of("a", "not a date") == version_of("a")


@pytest.mark.parametrize("bad", ["", "../x", ".hidden", "a/b", "x" * 65])
def test_a_version_that_cannot_name_a_directory_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot name a directory"):
        check_version(bad)


def test_sha256_is_64_hex_digits() -> None:
    assert check_sha256(SHA.upper()) == SHA
    with pytest.raises(ValueError, match="64 hex digits"):
        check_sha256("abc")


def test_space_needed_counts_what_is_left_to_download() -> None:
    assert space_needed(None, 0) is None
    assert space_needed(1000, 400, margin=10) == 610
    assert space_needed(1000, 1000, margin=0) == 0


def test_a_manifest_names_the_version_file_checksum_and_size() -> None:
    found = parse_manifest({"version": "3", "file": "saiga-v3.gguf", "sha256": SHA, "size": 12},
                           "saiga", "http://h/models/models.json", "http://h/models/models.json")
    assert (found.version, found.location, found.file_name, found.sha256, found.size) == \
        ("3", "http://h/models/saiga-v3.gguf", "saiga-v3.gguf", SHA, 12)
    several = {"models": [{"name": "vistral", "version": "1", "file": "v.gguf"},
                          {"name": "saiga", "version": "7", "file": "s.gguf"}]}
    assert parse_manifest(several, "saiga", "/srv/drop", "/srv/drop/models.json").location == "/srv/drop/s.gguf"


@pytest.mark.parametrize(("manifest", "message"), [
    ({"file": "s.gguf"}, "needs a 'version'"),
    ({"version": "1"}, "needs a 'file'"),
    ({"version": "1", "file": "s.gguf", "sha256": "xyz"}, "64 hex digits"),
    ({"version": "1", "file": "s.gguf", "size": -1}, "whole number"),
    ({"version": "../up", "file": "s.gguf"}, "cannot name a directory"),
    ({"version": "1", "file": "models/.."}, "cannot be the model's file name"),
    ({"models": [{"name": "vistral", "version": "1", "file": "v.gguf"}]}, "no model named 'saiga'"),
    ([1, 2], "expected an object"),
])
def test_a_bad_manifest_says_what_is_wrong(manifest: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_manifest(manifest, "saiga", "http://h/models.json", "http://h/models.json")


def test_a_plain_url_is_judged_by_its_head_answer() -> None:
    headers = {"ETag": '"abc"', "Last-Modified": "Sun, 29 Nov 2026 03:00:00 GMT", "Content-Length": "42"}
    first = plain_candidate("saiga", "http://h/files/saiga%20q4.gguf", headers)
    assert first.size == 42 and first.validator == '"abc"' and first.file_name == "saiga q4.gguf"
    changed = plain_candidate("saiga", "http://h/files/saiga%20q4.gguf", {**headers, "Content-Length": "43"})
    assert changed.fingerprint != first.fingerprint and changed.version != first.version
    with pytest.raises(ValueError, match="publish a models.json"):
        plain_candidate("saiga", "http://h/saiga.gguf", {"Content-Type": "application/octet-stream"})


# -- catching up after a run killed mid-cutover: the router's status and events decide ------------

PATH = "/srv/models/saiga/2/saiga.gguf"
PENDING = {"version": "2", "fingerprint": "f2", "path": PATH, "canary": "green", "since": 10}
OLD = {"model": "/srv/models/saiga/1/saiga.gguf"}


def event(id_: int, kind: str, message: str = "", after: object = None, before: object = None) -> dict:
    return {"id": id_, "kind": kind, "message": message, "after": after, "before": before}


def model_set(id_: int, model: str = PATH, colour: str = "green", before: object = OLD) -> dict:
    return event(id_, "model_set", f"{colour} starts on {model} (llama_cpp) from its next start", {"model": model},
                 before)


def status(phase: str = "idle", rollout: str = "r1", stable: str = "blue", reason: str = "") -> dict:
    return {"stable": stable, "rollout": {"id": rollout, "phase": phase, "reason": reason}}


def test_a_run_killed_before_the_router_got_the_candidate_has_nothing_to_undo() -> None:
    others = [model_set(11, colour="blue"), model_set(12, model="/elsewhere.gguf"), event(13, "note", "x")]
    found = catch_up(PENDING, status(), others)
    assert found.action is Recovery.unset and "never got" in found.why and found.model_event is None


def test_a_candidate_set_but_never_rolled_out_is_given_back_unless_changed_since() -> None:
    found = catch_up(PENDING, status("promoted", "r0"), [model_set(11)])
    assert (found.action, found.model_event, found.before, found.still_candidate) == (Recovery.restore, 11, OLD, True)
    assert "no rollout started" in found.why
    # Someone set another model afterwards (and rolled that out): not ours to give back.
    changed = [model_set(11), model_set(12, model="/srv/other.gguf"), event(13, "rollout_started", "rollout r2 …")]
    found = catch_up(PENDING, status("promoted", "r2"), changed)
    assert found.action is Recovery.restore and not found.still_candidate


@pytest.mark.parametrize(("phase", "action"), [("shadowing", Recovery.running), ("paused", Recovery.running),
                                                ("promoted", Recovery.promoted), ("rolled_back", Recovery.rejected),
                                                ("failed", Recovery.rejected)])
def test_the_routers_current_rollout_says_what_became_of_the_candidate(phase: str, action: Recovery) -> None:
    events = [model_set(11), event(12, "rollout_started", "rollout r1 started by admin: green through 50, 100 %")]
    found = catch_up({**PENDING, "model_event": 11}, status(phase, "r1", reason="green error rate"), events)
    assert (found.action, found.rollout, found.model_event, found.still_candidate) == (action, "r1", 11, True)
    if action is Recovery.rejected:
        assert found.reason == f"cutover {phase.replace('_', ' ')}: green error rate"


def test_a_later_rollout_means_ours_ended_and_its_last_ending_event_decides() -> None:
    events = [model_set(11), event(12, "rollout_started"), event(13, "promoted", "promoted: green …"),
              event(14, "rollback_started"), event(15, "rolled_back", "rolled back: by admin"),
              model_set(16, model="/srv/other.gguf"), event(17, "rollout_started")]
    found = catch_up(PENDING, status("progressing", "r9"), events)
    assert found.action is Recovery.rejected and found.reason == "cutover rolled back: by admin"
    assert not found.still_candidate  # the canary's model changed since: nothing to give back
    promoted = [model_set(11), event(12, "rollout_started"), event(13, "promoted"), event(14, "rollout_started")]
    assert catch_up(PENDING, status("progressing", "r9"), promoted).action is Recovery.promoted


def test_a_known_rollout_id_that_is_not_the_routers_current_one_is_judged_by_the_events() -> None:
    events = [model_set(11), event(12, "rollout_started"), event(13, "rollout_failed", "could not start")]
    found = catch_up({**PENDING, "rollout": "r1"}, status("idle", "r2"), events)
    assert found.action is Recovery.rejected and found.reason == "cutover failed: could not start"


def test_a_restore_after_the_rejection_is_seen_so_it_is_not_done_twice() -> None:
    """Killed after giving the canary its model back, before recording the rejection."""
    reset = event(14, "model_reset", "green starts on its configured model again (update rejected)")
    events = [model_set(11, before=None), event(12, "rollout_started"), event(13, "rollout_failed", "x"), reset]
    found = catch_up(PENDING, status("failed", "r1", reason="x"), events)
    assert found.action is Recovery.rejected and not found.still_candidate and found.before is None
