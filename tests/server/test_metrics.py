"""The Prometheus text format written by hand."""

from __future__ import annotations

from confidently.server.metrics import Metrics


def test_prometheus_text_format():
    metrics = Metrics()
    metrics.request("/v1/classify", "POST", 200, 0.03)
    metrics.request("/v1/classify", "POST", 200, 2.0)
    metrics.batch("alpha", ["automate", "review", "automate"])
    metrics.batch(None, [None])
    text = metrics.render(queued_texts=5)
    lines = text.splitlines()
    assert "# TYPE confidently_request_duration_seconds histogram" in lines
    assert 'confidently_requests_total{route="/v1/classify",method="POST",status="200"} 2.0' in lines
    assert 'confidently_request_duration_seconds_bucket{route="/v1/classify",le="0.05"} 1.0' in lines
    assert 'confidently_request_duration_seconds_bucket{route="/v1/classify",le="+Inf"} 2.0' in lines
    assert 'confidently_request_duration_seconds_sum{route="/v1/classify"} 2.03' in lines
    assert 'confidently_batch_size_texts_bucket{le="2"} 1.0' in lines
    assert 'confidently_batch_size_texts_bucket{le="4"} 2.0' in lines
    assert 'confidently_texts_total{adapter="alpha"} 3.0' in lines
    assert 'confidently_decisions_total{adapter="alpha",decision="automate"} 2.0' in lines
    assert 'confidently_decisions_total{adapter="(base)",decision="none"} 1.0' in lines
    assert lines[-1] == "confidently_queued_texts 5"
    assert text.endswith("\n")


def test_label_values_are_escaped():
    metrics = Metrics()
    metrics.request('/a"b\\c\nd', "GET", 404, 0.001)
    assert 'route="/a\\"b\\\\c\\nd"' in metrics.render(0)
