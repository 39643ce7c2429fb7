"""The benchmarks' own parsing: wrk's report read into the figures the tables print."""

from __future__ import annotations

import pytest

from bench.model_server import _parse_wrk

WRK_REPORT = """Running 4s test @ http://127.0.0.1:20412/apply
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms    1.12ms  17.46ms   80.11%
    Req/Sec     7.83k   412.06     8.40k    72.50%
  Latency Distribution
     50%    3.87ms
     75%    4.41ms
     90%    5.12ms
     99%    7.47ms
  31136 requests in 4.00s, 5.02MB read
Requests/sec:   7781.92
Transfer/sec:      1.25MB
"""


def test_wrk_report_gives_throughput_and_latency() -> None:
    figures = _parse_wrk(WRK_REPORT)
    assert figures["requests"] == 31136 and figures["errors"] == 0
    assert figures["rows_per_s"] == pytest.approx(31136 / 4.0)
    assert figures["p50"] == pytest.approx(3.87e-3) and figures["p99"] == pytest.approx(7.47e-3)


def test_wrk_errors_are_not_counted_as_answered_rows() -> None:
    report = WRK_REPORT.replace("     50%    3.87ms", "     50%  812.00us").replace(
        "Requests/sec:", "  Socket errors: connect 0, read 2, write 0, timeout 3\n"
                         "  Non-2xx or 3xx responses: 100\nRequests/sec:")
    figures = _parse_wrk(report)
    assert figures["errors"] == 105
    assert figures["rows_per_s"] == pytest.approx((31136 - 105) / 4.0)
    assert figures["p50"] == pytest.approx(812e-6)


def test_an_unreadable_report_is_an_error_naming_it() -> None:
    with pytest.raises(RuntimeError, match="cannot read wrk's output"):
        _parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
