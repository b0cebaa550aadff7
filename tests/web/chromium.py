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


# The page's layout at the emulated size, in page coordinates: the viewport's width and the document's scroll width; the
# menu's, main column's and summary's rectangles; each box of the main column (a child of main, a table, figure or
# image) as shown, cut to the boxes that scroll around it; each alert's rectangle, text lines and words.
LAYOUT_JS = """(() => {
  const rect = e => { const r = e.getBoundingClientRect();
    return {left: r.left + scrollX, top: r.top + scrollY, right: r.right + scrollX, bottom: r.bottom + scrollY}; };
  const where = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
  const shown = e => { let r = rect(e);
    for (let p = e.parentElement; p && p.tagName !== 'MAIN'; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX !== 'visible') { const c = rect(p);
        r = {left: Math.max(r.left, c.left), top: r.top, right: Math.min(r.right, c.right), bottom: r.bottom}; } }
    return r; };
  const lines = e => {  // the text's lines: the middles of its fragments, those less than 8 px apart on one line
    const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT), range = document.createRange(), mids = [];
    for (let t = walk.nextNode(); t; t = walk.nextNode()) { range.selectNodeContents(t);
      for (const r of range.getClientRects()) if (r.width > 1) mids.push((r.top + r.bottom) / 2); }
    mids.sort((a, b) => a - b);
    return mids.filter((m, i) => i === 0 || m - mids[i - 1] >= 8).length; };
  const one = q => { const e = document.querySelector(q); return e ? rect(e) : null; };
  const main = document.querySelector('main');
  const boxes = main ? Array.from(new Set([...main.children, ...main.querySelectorAll('table, figure, img, svg')]))
                     : [];
  return JSON.stringify({
    innerWidth: innerWidth, clientWidth: document.documentElement.clientWidth,
    scrollWidth: document.documentElement.scrollWidth,
    menu: one('nav.menu'), main: one('main'), summary: one('aside.summary'), header: one('header.top'),
    skip: Array.from(document.querySelectorAll('a.skip')).map(a => a.getAttribute('href')),
    boxes: boxes.filter(e => e.getClientRects().length).map(e => ({what: where(e), rect: shown(e)})),
    alerts: Array.from(document.querySelectorAll('ul.alerts li, p.allgood')).map(e => ({
      text: e.innerText.slice(0, 60), rect: rect(e), lines: lines(e),
      words: e.innerText.split(/\\s+/).filter(Boolean).length})),
  });
})()"""
# axe-core's rules as axe.run() enables them by default (WCAG 2.0 to 2.2 A and AA, best practices), only violations
AXE_RUN_JS = """axe.run(document, {resultTypes: ['violations']}).then(r =>
  JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), impact: n.impact, summary: n.failureSummary,
                              html: n.html.slice(0, 200)}))}))))"""


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

    def evaluate(self, expression: str, await_promise: bool = False):
        """The value of a JavaScript expression in the page (of the promise it gives, with ``await_promise``)."""
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"evaluate: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """Emulate a screen of ``width`` × ``height`` CSS pixels (a phone's, which honours the viewport meta tag,
        with ``mobile``) for the next loads."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile, screenWidth=width, screenHeight=height)
        self.call("Emulation.setTouchEmulationEnabled", enabled=mobile, maxTouchPoints=5 if mobile else 1)

    def layout(self) -> dict:
        """What the page's layout looks like at the emulated size: see ``LAYOUT_JS``."""
        return json.loads(self.evaluate(LAYOUT_JS))

    def axe(self, source: Path) -> list[dict]:
        """axe-core's violations on the loaded page: its script (``axe.min.js``) evaluated in the page over
        DevTools (the page's CSP allows no script; DevTools is not bound by it), then ``axe.run()`` on the document.
        Each violation: rule id, impact, help, and its nodes' targets, impacts, summaries and markup."""
        if not self.evaluate("typeof window.axe === 'object'"):
            self.evaluate(source.read_text(encoding="utf-8") + "\n;true")
        return json.loads(self.evaluate(AXE_RUN_JS, await_promise=True))

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
