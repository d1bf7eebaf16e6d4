"""Headless Chromium for tests, driven over the Chrome DevTools Protocol with the stdlib.

`chromium --remote-debugging-pipe` speaks the protocol as JSON messages, each followed by a
NUL byte, on two inherited file descriptors: it reads commands from fd 3 and writes
replies and events to fd 4. No port is opened (nothing else on the machine can drive the
browser) and no websocket library is needed. Python's subprocess cannot place pipes at
given descriptor numbers, so bash does it (dash, a common `sh`, takes only one-digit descriptors) (`3<&N 4>&M`) before exec'ing the browser.

With `Target.attachToTarget(flatten=True)` every page is a session on that one pipe:
commands carry a `sessionId`, and so do the page's events, which are kept per page.

    with Browser(chromium_binary, tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto("http://127.0.0.1:8000/")
        page.type("textarea", "well argued")
        page.click("button[type=submit]")
        page.wait_for("document.querySelector('.status').textContent.startsWith('saved')")

Timeouts here only keep a broken browser from hanging the test run; no test asserts on time.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--remote-debugging-pipe")


def _above_nine(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class BrowserError(Exception):
    """The browser answered a command with an error, a script threw, or it went away."""


class Browser:
    """One headless Chromium process; close() (or the with-block) ends it."""

    def __init__(self, binary: str, profile: Path, *, width: int = 1280, height: int = 900):
        profile = Path(profile)
        profile.mkdir(parents=True, exist_ok=True)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser's ends move to descriptors above 9 first: were one of them 3 or 4
        # already, `3<&3 3<&-` would close it again.
        to_browser_r, from_browser_w = (_above_nine(to_browser_r), _above_nine(from_browser_w))
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self.log = profile / "chromium.log"  # the browser's own stderr, for a failing test to show
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["bash", "-c", script, binary, *FLAGS, f"--user-data-dir={profile}",
                 f"--window-size={width},{height}", "about:blank"],
                pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []  # events of no page (the browser's own)
        self._pages: dict[str, Page] = {}
        self._closed = False

    # -- the pipe
    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError(f"no answer from the browser (its log: {self.log})")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"the browser closed the pipe (exit {self.proc.poll()}; its log: {self.log})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _file(self, message: dict) -> None:
        """Keep an event with the page it belongs to."""
        page = self._pages.get(message.get("sessionId", ""))
        (page.events if page is not None else self.events).append(message)

    def pump(self, deadline: float) -> None:
        """Read one message (an event) and file it."""
        self._file(self._read(deadline))

    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = 30) -> dict:
        """Send one command and return its result; events read meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
                return reply.get("result", {})
            self._file(reply)

    # -- pages
    def new_page(self) -> "Page":
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        self._pages[session] = page
        for domain in ("Page", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        return page

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.call("Browser.close", timeout=10)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One tab: navigate, run scripts, click and type as a person would (real input events)."""

    def __init__(self, browser: Browser, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, *, timeout: float = 30) -> dict:
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def _wait_event(self, method: str, after: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if event.get("method") == method:
                    return event
            self.browser.pump(deadline)

    def goto(self, url: str, *, timeout: float = 30) -> None:
        """Load `url` and wait for its load event; BrowserError if it cannot be loaded."""
        mark = len(self.events)
        result = self.call("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"cannot load {url}: {result['errorText']}")
        self._wait_event("Page.loadEventFired", mark, timeout)

    def reload(self, *, timeout: float = 30) -> None:
        mark = len(self.events)
        self.call("Page.reload", {"ignoreCache": True}, timeout=timeout)
        self._wait_event("Page.loadEventFired", mark, timeout)

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression (JSON-able values only); BrowserError if it throws."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": await_promise})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            raise BrowserError(f"the script threw: {text}")
        return reply.get("result", {}).get("value")

    def wait_for(self, condition: str, *, timeout: float = 15, interval: float = 0.05) -> Any:
        """Poll a JavaScript expression until it is truthy; its value, or BrowserError. A DOM
        node comes back as {} (falsy here): test for one with `!!`."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(condition)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false: {condition}")
            time.sleep(interval)

    def _center(self, selector: str) -> tuple[float, float]:
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        if box is None:
            raise BrowserError(f"nothing on the page matches {selector!r}")
        return box[0], box[1]

    def click(self, selector: str) -> None:
        """A left click in the middle of the first element matching `selector`."""
        x, y = self._center(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def type(self, selector: str, text: str, *, replace: bool = True) -> None:
        """Focus the element and type `text` into it (input events fire as for a person);
        `replace` selects what is there first, so the typing replaces it."""
        found = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false;"
            f" e.scrollIntoView({{block: 'center'}}); e.focus(); if ({json.dumps(replace)}) e.select(); return true; }})()")
        if not found:
            raise BrowserError(f"nothing on the page matches {selector!r}")
        self.call("Input.insertText", {"text": text})

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors and warnings, and the browser's own error
        log entries (a refused script, a failed request) seen on this page so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params.get("exceptionDetails", {}))[:400])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                found.append(json.dumps(params.get("args", []))[:400])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                found.append(params["entry"].get("text", "")[:400])
        return found
