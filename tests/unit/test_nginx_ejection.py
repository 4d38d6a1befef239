"""What nginx's passive health check holds down, read from access-log lines."""

from __future__ import annotations

from router.dataplanes.nginx_ejection import NginxEjectionWatch
from router.dataplanes.nginx_log import Attempt
from router.weights import Colour

GREEN_OK = [Attempt(Colour.green, 200, 0.1, 0.05)]
GREEN_FAILED_THEN_BLUE = [Attempt(Colour.green, 502, 0.1, None), Attempt(Colour.blue, 200, 0.1, 0.05)]
STRAIGHT_TO_BLUE = [Attempt(Colour.blue, 200, 0.1, 0.05)]


def test_a_skipped_canary_is_ejected_once_and_readmitted_when_reached_again() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=5)
    assert watch.observe(Colour.green, GREEN_OK, 0.0) is None
    assert watch.observe(Colour.green, GREEN_FAILED_THEN_BLUE, 0.1) is None  # a retry is not an ejection
    ejected = watch.observe(Colour.green, STRAIGHT_TO_BLUE, 0.2)
    assert ejected is not None and ejected.colour is Colour.green and ejected.ejected
    assert "green ejected by nginx" in ejected.reason and "straight to blue" in ejected.reason
    assert watch.observe(Colour.green, STRAIGHT_TO_BLUE, 0.3) is None  # said once
    assert watch.ejected == {Colour.green}
    back = watch.observe(Colour.green, GREEN_OK, 4.0)
    assert back is not None and not back.ejected and "readmitted by nginx" in back.reason
    assert watch.ejected == frozenset()


def test_blue_chosen_and_served_says_nothing_about_green() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=5)
    assert watch.observe(Colour.blue, STRAIGHT_TO_BLUE, 0.0) is None
    assert watch.observe(None, STRAIGHT_TO_BLUE, 0.0) is None and watch.observe(Colour.green, [], 0.0) is None
    assert watch.ejected == frozenset()


def test_fail_timeout_without_a_skip_readmits() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=5)
    watch.observe(Colour.green, STRAIGHT_TO_BLUE, 10.0)
    watch.observe(Colour.green, STRAIGHT_TO_BLUE, 12.0)  # still skipped: the timeout counts from here
    assert watch.expire(16.9) == []
    [back] = watch.expire(17.1)
    assert back.colour is Colour.green and not back.ejected and "fail_timeout of 5 s" in back.reason
    assert watch.expire(30.0) == [] and watch.ejected == frozenset()


def test_after_a_promotion_blue_is_the_canary_nginx_skips() -> None:
    watch = NginxEjectionWatch(fail_timeout_s=1)
    change = watch.observe(Colour.blue, GREEN_OK, 0.0)
    assert change is not None and change.colour is Colour.blue and "straight to green" in change.reason


def test_the_reporter_ejects_the_canary_as_the_built_in_plane_does_and_never_the_stable_colour() -> None:
    from router.dataplanes.nginx_ejection import EjectionChange, EjectionReporter
    from router.events import EventDraft
    from router.metrics import RouterMetrics
    from router.traffic import Traffic

    metrics = RouterMetrics()
    traffic = Traffic(5000, Colour.blue, metrics=metrics)
    recorded: list[EventDraft] = []
    report = EjectionReporter(traffic, recorded.append, metrics)

    report(EjectionChange(Colour.blue, True, "blue ejected by nginx"))  # the stable colour: a reload in flight
    report(EjectionChange(Colour.blue, False, "blue readmitted by nginx"))  # never announced: nothing to undo
    assert recorded == [] and traffic.health[Colour.blue].ejection is None

    report(EjectionChange(Colour.green, True, "green ejected by nginx: ..."))
    assert traffic.health[Colour.green].ejection == "green ejected by nginx: ..."
    assert not traffic.available.green  # new requests of the router's own proxy avoid it too
    assert metrics.registry.get_sample_value("bluegreen_ejections_total", {"colour": "green", "reason": "nginx"}) == 1
    report(EjectionChange(Colour.green, False, "green readmitted by nginx"))
    assert traffic.health[Colour.green].ejection is None
    assert [(e.kind, e.after) for e in recorded] == [("backend_ejected", {"colour": "green", "kind": "nginx"}),
                                                     ("backend_readmitted", {"colour": "green", "kind": "nginx"})]


def test_nginx_failures_compare_without_their_timestamps_and_temp_names() -> None:
    from router.dataplanes.nginx import failure_key

    first = ('nginx rejected the config: nginx: [emerg] host not found in upstream "x:1" in '
             '/run/.nginx-ab12cd.conf:80\n2026/11/30 23:50:01 [emerg] 4242#4242: configuration file test failed')
    again = first.replace("ab12cd", "zz99yy").replace("23:50:01", "23:50:02").replace("4242#4242", "4300#4300")
    assert failure_key(first) == failure_key(again) and "host not found" in failure_key(first)
    assert failure_key(first) != failure_key(first.replace('"x:1"', '"y:1"'))


def test_nginx_sync_backs_off_while_nginx_keeps_failing(tmp_path) -> None:
    from router.dataplanes.nginx import NginxDataPlane, NginxOptions
    from router.dataplanes.sync import NginxSync
    from router.traffic import Traffic

    plane = NginxDataPlane(NginxOptions(prefix=tmp_path, conf_path=tmp_path / "nginx.conf"), lambda bp, stable: "")
    sync = NginxSync(plane, Traffic(0), interval_s=0.25, max_backoff_s=5)
    waits = []
    for _ in range(7):
        sync._failed("nginx rejected the config")
        waits.append(sync._backoff_s)
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
