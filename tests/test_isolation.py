"""The launcher: results, raises, crashes and hangs of a spawned child come back as data."""

import multiprocessing
import os
import time

from harness.isolation import in_child


def answer(x):
    return {"x": x, "threads": os.environ.get("OMP_NUM_THREADS")}


def raises():
    raise ValueError("bad input in the child")


def aborts():
    os.abort()


def hangs():
    time.sleep(3600)


def run(fn, args=(), tmp_path=None, timeout=30, env=None):
    return in_child(fn, args, timeout_s=timeout, env=env or {}, log_path=tmp_path / "child.log")


def test_result_and_environment(tmp_path):
    outcome = run(answer, (41,), tmp_path, env={"OMP_NUM_THREADS": "3"})
    assert outcome == {"status": "ok", "result": {"x": 41, "threads": "3"}}
    assert "OMP_NUM_THREADS" not in os.environ or os.environ["OMP_NUM_THREADS"] != "3"


def test_raise_is_a_failed_result_with_the_log_kept(tmp_path):
    outcome = run(raises, tmp_path=tmp_path)
    assert outcome["status"] == "failed"
    assert outcome["reason"] == "ValueError: bad input in the child"
    assert "bad input in the child" in (tmp_path / "child.log").read_text()


def test_crash_is_named_by_its_signal(tmp_path):
    outcome = run(aborts, tmp_path=tmp_path)
    assert outcome == {"status": "failed", "reason": "child crashed with SIGABRT"}


def test_hang_times_out_and_the_child_is_ended(tmp_path):
    outcome = run(hangs, tmp_path=tmp_path, timeout=3)
    assert outcome["status"] == "timeout"
    assert "3 s" in outcome["reason"]
    assert multiprocessing.active_children() == []
