"""The per-attempt series: plain counts in the proxy's thread, the usual Prometheus exposition when scraped."""

from __future__ import annotations

from prometheus_client import generate_latest

from router.metrics import RouterMetrics


def exposition(metrics: RouterMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_attempts_are_exported_as_counters_histograms_and_gauges() -> None:
    metrics = RouterMetrics()
    for latency in (0.00005, 0.0001, 0.0003, 2.0, 400.0):
        metrics.observe_attempt("green", "/api/v1/chat/legal", 200, latency, latency / 2)
    metrics.observe_attempt("blue", "/api/v1/unknown/route", 503, 0.5, None)
    metrics.attempt_started("blue")
    metrics.attempt_started("blue")
    metrics.attempt_finished("blue")
    text = exposition(metrics)
    assert 'bluegreen_requests_total{code="200",colour="green",route="/api/v1/chat/legal"} 5.0' in text
    assert 'bluegreen_requests_total{code="503",colour="blue",route="other"} 1.0' in text  # a client cannot add routes
    for line in ('bluegreen_request_duration_seconds_bucket{colour="green",le="0.0001"} 2.0',  # a bound counts in it
                 'bluegreen_request_duration_seconds_bucket{colour="green",le="0.0005"} 3.0',
                 'bluegreen_request_duration_seconds_bucket{colour="green",le="300.0"} 4.0',
                 'bluegreen_request_duration_seconds_bucket{colour="green",le="+Inf"} 5.0',
                 'bluegreen_request_duration_seconds_count{colour="green"} 5.0',
                 'bluegreen_time_to_first_token_seconds_bucket{colour="green",le="1.0"} 4.0',
                 'bluegreen_time_to_first_token_seconds_count{colour="blue"} 0.0',  # exported before the first
                 'bluegreen_in_flight_requests{colour="blue"} 1.0',
                 'bluegreen_in_flight_requests{colour="green"} 0.0'):
        assert line in text, line
    assert "bluegreen_request_duration_seconds_sum{colour=\"green\"} 402.00045" in text
