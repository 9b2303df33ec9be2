"""The HTML report in a real browser: headless Chromium driven over the DevTools protocol.

A short run is trained, its report written, and Chromium opens the file with networking
disabled. Checks: every ``<img>`` decodes to a non-empty picture, the page logs no console
error, throws no exception and requests nothing but the file itself and ``data:`` URIs, and
nothing overflows the page width. A screenshot is taken (set ``AEKIT_SCREENSHOT=path.png`` to
keep it). The DevTools websocket is spoken with the standard library only (RFC 6455 text
frames), so no client package is needed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from aekit.cli import main

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--disable-extensions",
                "--mute-audio", "--hide-scrollbars"]


def _find_chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _find_chromium()
    if path:
        return path
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=180,
                           env=env)
            subprocess.run(["apt-get", "install", "-y", "chromium"], check=True,
                           capture_output=True, timeout=300, env=env)
        except (subprocess.SubprocessError, OSError) as e:
            pytest.skip(f"chromium not found and apt-get install chromium failed: {e}")
        path = _find_chromium()
        if path:
            return path
        pytest.skip("chromium not found after apt-get install chromium")
    pytest.skip("chromium not found (/usr/bin/chromium, chromium or chromium-browser on PATH) "
                "and cannot be installed here (not root or no apt-get)")


class DevTools:
    """A minimal Chrome DevTools Protocol client over a websocket (standard library only)."""

    def __init__(self, ws_url: str, timeout: float = 20.0):
        assert ws_url.startswith("ws://"), ws_url
        hostport, _, path = ws_url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"websocket handshake failed: {head[:200]!r}")
        self.next_id = 0
        self.events: list[dict] = []

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _recv(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            op = b0 & 0x0F
            if op == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            if op in (0x9, 0xA):  # ping/pong: no reply needed for this short session
                continue
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def send(self, method: str, **params):
        """Call a DevTools method and return its result; events seen meanwhile are kept."""
        self.next_id += 1
        msg = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        n = len(msg)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(msg)))
        while True:
            r = self._recv()
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})
            self.events.append(r)

    def wait_event(self, method: str, timeout: float = 20.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(self._recv())
        raise TimeoutError(f"no {method} within {timeout} s")

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


@contextlib.contextmanager
def devtools_page(chrome: str, profile: Path, width: int = 1200, height: int = 3000):
    """Start headless Chromium with a fresh profile and yield a DevTools client of its page."""
    proc = subprocess.Popen([chrome, *CHROME_FLAGS, f"--user-data-dir={profile}",
                             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                             f"--window-size={width},{height}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = None
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if proc.poll() is not None or time.monotonic() > end:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                pytest.fail(f"chromium did not open its DevTools port: {err}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        ws = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        client = DevTools(ws)
        for domain in ("Runtime", "Log", "Network", "Page"):
            client.send(f"{domain}.enable")
        client.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                    deviceScaleFactor=1, mobile=False)
        yield client
    finally:
        if client is not None:
            client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


PAGE_CHECK = """(async () => {
  const imgs = [...document.images];
  const widths = await Promise.all(imgs.map(
      i => i.decode().then(() => i.naturalWidth, () => 0)));
  const vw = document.documentElement.clientWidth;
  return {
    images: imgs.length,
    decoded: widths.filter(w => w > 0).length,
    notData: imgs.filter(i => !i.src.startsWith('data:image/png;base64,')).length,
    scripts: document.scripts.length,
    links: document.querySelectorAll('link[href], iframe, object, embed').length,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    overflowX: document.documentElement.scrollWidth - vw,
    wideImages: imgs.filter(i => i.getBoundingClientRect().right > vw + 1).length,
    height: document.documentElement.scrollHeight,
  };
})()"""


def inspect_page(chrome: str, html: Path, profile: Path, screenshot: Path | None = None,
                 full_page: bool = False) -> tuple[dict, list[str]]:
    """Open ``html`` and return (page facts, problems seen: console errors, exceptions,
    failed or non-local requests)."""
    with devtools_page(chrome, profile) as dt:
        dt.send("Page.navigate", url=html.resolve().as_uri())
        dt.wait_event("Page.loadEventFired")
        facts = dt.send("Runtime.evaluate", expression=PAGE_CHECK, awaitPromise=True,
                        returnByValue=True)["result"]["value"]
        if screenshot is not None:
            params = {"format": "png"}
            if full_page:
                h = int(facts["height"])
                params |= {"captureBeyondViewport": True,
                           "clip": {"x": 0, "y": 0, "width": 1200, "height": h, "scale": 1}}
            png = base64.b64decode(dt.send("Page.captureScreenshot", **params)["data"])
            screenshot.write_bytes(png)
        problems = []
        for e in dt.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append(f"console.{p['type']}: {p.get('args')}")
            elif m == "Runtime.exceptionThrown":
                problems.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                problems.append(f"log error: {p['entry'].get('text')} {p['entry'].get('url')}")
            elif m == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:")):
                    problems.append(f"network request: {url}")
            elif m == "Network.loadingFailed":
                problems.append(f"loading failed: {p.get('errorText')}")
    return facts, problems


def test_report_renders_in_chromium(chromium, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--max-iter", "3", "--hidden-layer-sizes", "32",
                 "--output",
                 str(run), "--no-report", "--no-progress"]) == 0
    assert main(["report", str(run)]) == 0
    html = run / "report.html"
    shot = tmp_path / "report.png"
    facts, problems = inspect_page(chromium, html, tmp_path / "profile", shot)
    assert problems == [], problems
    assert facts["images"] >= 10, facts
    assert facts["decoded"] == facts["images"], f"images that did not decode: {facts}"
    assert facts["notData"] == 0 and facts["scripts"] == 0 and facts["links"] == 0, facts
    for sec in ("overview", "metrics", "curves", "pca", "reconstructions", "worst", "codes",
                "traversal", "interpolation", "filters", "activity", "jacobian", "tangents",
                "config"):
        assert sec in facts["sections"], (sec, facts["sections"])
    assert facts["overflowX"] <= 0 and facts["wideImages"] == 0, f"wider than the page: {facts}"
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (1200, 3000), (w, h)
    keep = os.environ.get("AEKIT_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
