"""Headless Chromium driven over the DevTools protocol: load a page, collect console errors, check its images."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
         "--no-default-browser-check", "--disable-features=Translate,OptimizationHints,MediaRouter",
         "--window-size=1400,1000", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]

IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
    src: i.currentSrc || i.src, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"""


def chromium_binary() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageLoad:
    """What one navigation gave."""

    url: str
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed or 4xx/5xx loads
    images: list[dict] = field(default_factory=list)
    text: str = ""
    scripts: int = 0


class Chromium:
    """One headless browser and one tab, driven through its page websocket."""

    def __init__(self, timeout_s: float = 20.0) -> None:
        import websocket  # websocket-client, in the test extras

        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("chromium is not installed")
        self.profile = Path(tempfile.mkdtemp(prefix="pytomo-chromium-"))
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        target = requests.put(f"http://127.0.0.1:{port}/json/new?about:blank", timeout=timeout_s).json()
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout_s,
                                              suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.timeout_s = timeout_s
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        """Send one command and wait for its answer, keeping the events that arrive meanwhile."""
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(method)

    def _wait_event(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if any(e["method"] == name for e in self.events):
                return
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(name)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def load(self, url: str, settle_s: float = 0.2) -> PageLoad:
        """Navigate, wait for the load event (every image fetched), and report what went wrong."""
        self.events = []
        self.call("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")
        end = time.monotonic() + settle_s  # late console messages
        self.ws.settimeout(0.05)
        try:
            while time.monotonic() < end:
                try:
                    msg = json.loads(self.ws.recv())
                except Exception:
                    continue
                if "method" in msg:
                    self.events.append(msg)
        finally:
            self.ws.settimeout(self.timeout_s)
        out = PageLoad(url)
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.errors.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.errors.append(f"console.{p['type']}: {p.get('args')}")
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif e["method"] == "Page.javascriptDialogOpening":
                out.errors.append(f"dialog: {p.get('type')} {p.get('message')}")
            elif e["method"] == "Network.loadingFailed":
                out.errors.append(f"load failed: {p.get('errorText')} {p.get('type')}")
            elif e["method"] == "Network.responseReceived" and p["response"]["status"] >= 400:
                out.errors.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
        out.images = json.loads(self.evaluate(IMAGES_JS) or "[]")
        out.text = self.evaluate("document.body.innerText") or ""
        out.scripts = self.evaluate("document.scripts.length") or 0
        return out

    def screenshot(self, path: Path) -> int:
        """Save the whole page as PNG; returns its size in bytes."""
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return len(data)

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)
