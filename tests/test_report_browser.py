"""The report in a real headless Chromium: sections render, no request leaves the page, no errors.

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (fds 3 and 4,
NUL-separated JSON) with the stdlib only, so every network request and console
message is observed, not guessed from logs. Skips when no ``chromium`` is installed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runfolders import LAPTOP, PI5, make_run

from harness.report.html import render_report, sections
from harness.report.load import load_frames

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)
WIDTH, HEIGHT = 1280, 2000
TIMEOUT_S = 20.0


class DevTools:
    """A minimal CDP client over the pipe; keeps every event it reads."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int) -> None:
        self.proc, self._out, self._in = proc, to_browser, from_browser
        self._buffer, self._next_id = b"", 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(deadline))
        return next(e for e in self.events if e.get("method") == method)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready = select.select([self._in], [], [], max(left, 0))[0]
            if not ready:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()

    def wire_fds() -> None:  # in the child: the pipe ends chromium expects on fds 3 and 4
        a, b = os.dup(to_r), os.dup(from_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    with (tmp_path / "chromium.log").open("w") as log:
        proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=wire_fds,  # the test process runs no threads, so fork+exec is safe
            close_fds=False,
        )
    os.close(to_r)
    os.close(from_w)
    tools = DevTools(proc, to_w, from_r)
    try:
        yield tools
    finally:
        try:
            tools.call("Browser.close")
            proc.wait(timeout=10)
        except (OSError, TimeoutError, EOFError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=10)
        os.close(to_w)
        os.close(from_r)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    make_run(root, LAPTOP, n=40, precisions=("fp16", "int8"))
    make_run(root, PI5, seed=1, n=40, repeats=2, drift=0.02)
    frames = load_frames([root])
    assert frames.problems == ()
    return render_report(frames, tmp_path / "report.html")


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_report_renders_offline_without_errors(
    browser: DevTools, report: Path, tmp_path: Path
) -> None:
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Network", "Runtime", "Log"):
        browser.call(f"{domain}.enable", session)
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=WIDTH,
        height=HEIGHT,
        deviceScaleFactor=1,
        mobile=False,
    )
    url = report.as_uri()
    browser.call("Page.navigate", session, url=url)
    browser.wait_for("Page.loadEventFired")

    def evaluate(expression: str) -> Any:
        reply = browser.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        assert "exceptionDetails" not in reply, reply
        return reply["result"].get("value")

    ids = evaluate("[...document.querySelectorAll('section[id]')].map(s => s.id)")
    assert ids == [sid for sid, _ in sections(load_frames([report.parent / "results"]))]
    assert "precision" in ids
    assert evaluate("document.querySelectorAll('figure svg').length") >= 6

    # Clicking a header sorts the results table by that column.
    p50 = evaluate(
        """(() => {
          const table = document.getElementById('results-table');
          const col = [...table.tHead.rows[0].cells].findIndex(th => th.textContent === 'p50 (ms)');
          table.tHead.rows[0].cells[col].click();
          return [...table.tBodies[0].rows].map(r => r.cells[col].dataset.v);
        })()"""
    )
    numbers = [float(v) for v in p50 if v]
    assert numbers == sorted(numbers)
    assert p50[len(numbers) :] == [""] * (len(p50) - len(numbers))  # unmeasured cells last

    shot = base64.b64decode(browser.call("Page.captureScreenshot", session, format="png")["data"])
    (tmp_path / "shot.png").write_bytes(shot)
    assert _png_size(shot) == (WIDTH, HEIGHT)
    assert len(shot) > 50_000  # text, tables and plots, not a blank page

    browser.call("Emulation.setEmulatedMedia", session, media="print")
    assert evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"

    requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests == [url]
    errors = [
        e["params"]
        for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
