"""What ``maas_deploy`` prints, line by line, from given statuses: the ``--wait`` progress lines
and the one-line summaries of multi-line errors (no ZooKeeper needed)."""

from __future__ import annotations

import pytest

from deploy_client.cli import ProgressPrinter
from maas.model_status import ModelStatus, error_detail, error_headline, quoted
from maas.request import RequestState, RequestStatus

TRACEBACK = ("service exited with code 1; stderr: Traceback (most recent call last):\n"
             '  File "serve.py", line 3, in <module>\n'
             "FileNotFoundError: [Errno 2] No such file or directory: 'model.onnx'")


def test_headline_of_a_traceback_is_its_exception() -> None:
    assert error_headline(TRACEBACK) == ("service exited with code 1; stderr: "
                                         "FileNotFoundError: [Errno 2] No such file or directory: 'model.onnx'")
    assert error_headline("model file is corrupt\nsecond line") == "model file is corrupt"
    assert error_headline(None) == ""


def test_detail_is_the_stderr_and_quoted_keeps_its_order() -> None:
    detail = error_detail(TRACEBACK)
    assert detail.splitlines()[0] == "Traceback (most recent call last):"
    assert quoted(detail).splitlines() == ["    | Traceback (most recent call last):",
                                           '    |   File "serve.py", line 3, in <module>',
                                           "    | FileNotFoundError: [Errno 2] No such file or directory: 'model.onnx'"]
    assert error_detail("service exited with code 3; stderr: model file is corrupt") == ""


def test_progress_prints_each_change_once(capsys: pytest.CaptureFixture[str]) -> None:
    show = ProgressPrinter("dga@1.0")
    accepted = RequestStatus(requestId="r", state=RequestState.ACCEPTED, name="dga", version="1.0", target=2)
    show(None, None)
    show(None, None)
    show(accepted, ModelStatus(name="dga", version="1.0", desired=2, running=2, ready=0))
    show(accepted, ModelStatus(name="dga", version="1.0", desired=2, running=2, ready=0))
    show(accepted, ModelStatus(name="dga", version="1.0", desired=2, running=1, ready=1))
    show(accepted, ModelStatus(name="dga", version="1.0", desired=2, running=1, ready=1, restarts=1,
                               last_error=TRACEBACK, backoff_seconds=2.0))
    assert capsys.readouterr().out.splitlines() == [
        "  dga@1.0: waiting for a controller to take the request…",
        "  dga@1.0: 0/2 ready, 2 starting…",
        "  dga@1.0: 1/2 ready…",
        "  dga@1.0: 1/2 ready… last error (restart 1, next start in 2s): service exited with code 1; stderr: "
        "FileNotFoundError: [Errno 2] No such file or directory: 'model.onnx'",
    ]
