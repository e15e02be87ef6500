"""The built book in headless Chromium: math typeset, frame players move, no errors, nothing fetched from afar.

Not collected by the default run (the name does not start with ``test_``). Run it on a build with

    BOOK_HTML=_build/html .venv/bin/python -m pytest -o addopts="" tests/browser_book.py

One Chromium, driven over the DevTools protocol, visits every page of ``_toc.yml`` served from 127.0.0.1.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

import nbformat
import pytest
import yaml

websocket = pytest.importorskip("websocket", reason="the websocket-client package drives Chromium")

REPO = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((REPO / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [chapter["file"] for part in TOC["parts"] for chapter in part["chapters"]]
HTML = Path(os.environ.get("BOOK_HTML", REPO / "_build" / "html"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"data", "blob", "about"}
PAGE_TIMEOUT_S = 60

pytestmark = [
    pytest.mark.skipif(not (HTML / "index.html").is_file(), reason=f"no built book in {HTML}: set BOOK_HTML"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass


@pytest.fixture(scope="module")
def book_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=HTML))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class DevTools:
    """A minimal client of one page's DevTools websocket: commands, and the events seen meanwhile."""

    def __init__(self, websocket_url: str):
        self.socket = websocket.create_connection(websocket_url, timeout=PAGE_TIMEOUT_S, suppress_origin=True)
        self.last_id = 0
        self.events: list[dict] = []

    def receive(self) -> dict:
        message = json.loads(self.socket.recv())
        if "method" in message:
            self.events.append(message)
        return message

    def send(self, method: str, **params) -> dict:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = self.receive()
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for_event(self, method: str) -> None:
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while not any(event["method"] == method for event in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {PAGE_TIMEOUT_S} s")
            self.receive()

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")


def devtools_port(profile: Path, process: subprocess.Popen) -> int:
    """The port Chromium chose, which it writes to DevToolsActivePort in its profile."""
    deadline = time.monotonic() + 30
    port_file = profile / "DevToolsActivePort"
    while not port_file.is_file() or not port_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chromium did not start: {process.stderr.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return int(port_file.read_text().split()[0])


@pytest.fixture(scope="module")
def browser():
    with tempfile.TemporaryDirectory(prefix="browser-book-", ignore_cleanup_errors=True) as profile:
        command = [CHROMIUM, "--headless", "--remote-debugging-port=0", f"--user-data-dir={profile}"]
        command += ["--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions"]
        command += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
        command += ["--window-size=1280,900", "--no-sandbox" if os.geteuid() == 0 else "--enable-sandbox"]
        process = subprocess.Popen([*command, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            port = devtools_port(Path(profile), process)
            with urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                page = next(target for target in json.load(response) if target["type"] == "page")
            devtools = DevTools(page["webSocketDebuggerUrl"])
            for domain in ("Page", "Runtime", "Network", "Log"):
                devtools.send(f"{domain}.enable")
            yield devtools
            devtools.socket.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def source_has_math(page: str) -> bool:
    """Whether the page's notebook writes math in its markdown: ``$...$``, ``$$...$$`` or ``\\begin{...}``."""
    source = HTML / "_sources" / f"{page}.ipynb"
    if not source.is_file():
        source = REPO / f"{page}.ipynb"
    notebook = nbformat.read(source, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    text = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.DOTALL)  # code spans are no math
    return bool(re.search(r"\$[^$\n]+\$|\\begin\{", text))


WAIT_FOR_MATHJAX = """(async () => {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
      return true;
    }
    if (!document.querySelector('script[src*="mathjax"]')) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
})()"""

MATH_REPORT = r"""(() => {
  const math = [...document.querySelectorAll('.math')];
  const untypeset = math.filter((e) => !e.querySelector('mjx-container')).map((e) => e.textContent.slice(0, 80));
  const errors = [...document.querySelectorAll('mjx-merror')].map((e) => e.textContent.slice(0, 80));
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest('pre, code, script, style, textarea, mjx-container')) continue;
    if (/\\\(|\\\[|\$\$/.test(node.textContent)) raw.push(node.textContent.trim().slice(0, 80));
  }
  return {containers: document.querySelectorAll('mjx-container').length, untypeset, errors, raw};
})()"""

# For every frame player: the shown frame before and after a click on its "Next frame" button.
ADVANCE_PLAYERS = """(async () => {
  const players = [...document.querySelectorAll('div.animation')];
  const moves = [];
  for (const player of players) {
    const image = player.querySelector('img');
    const slider = player.querySelector('input[type="range"]');
    const before = {src: image.src, slider: slider.value};
    player.querySelector('button[title="Next frame"]').click();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await image.decode().catch(() => null);
    moves.push({before, after: {src: image.src, slider: slider.value}, width: image.naturalWidth});
  }
  return moves;
})()"""

WAIT_FOR_WIDGETS = """(async () => {
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  const deadline = Date.now() + 20000;
  let shown = 0;
  while (Date.now() < deadline) {
    shown = [...document.querySelectorAll('.widget-subarea')].filter((e) => e.children.length).length;
    if (shown >= views) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {views, shown};
})()"""


def errors_reported(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and browser log errors (failed loads among them)."""
    errors = []
    for event in events:
        params = event["params"]
        if event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif event["method"] == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            arguments = [str(arg.get("value", arg.get("description"))) for arg in params["args"]]
            errors.append("console: " + " ".join(arguments))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            if params["entry"].get("url", "").endswith("/favicon.ico"):
                continue  # Chromium asks the server root for an icon; the book has none and names none
            errors.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}".strip())
    return errors


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in LOCAL_SCHEMES or parsed.hostname in LOCAL_HOSTS


def requests_leaving_the_machine(events: list[dict]) -> list[str]:
    urls = [event["params"]["request"]["url"] for event in events if event["method"] == "Network.requestWillBeSent"]
    return [url for url in urls if not is_local(url)]


@pytest.mark.parametrize("page", PAGES)
def test_page_reads_offline(browser, book_url, page):
    browser.open(f"{book_url}/{page}.html")
    mathjax_loaded = browser.evaluate(WAIT_FOR_MATHJAX)
    math = browser.evaluate(MATH_REPORT)
    players = browser.evaluate(ADVANCE_PLAYERS)
    widgets = browser.evaluate(WAIT_FOR_WIDGETS)

    problems = []
    if mathjax_loaded is None:
        problems.append("MathJax did not finish typesetting within 30 s")
    if source_has_math(page) and not math["containers"]:
        problems.append("the notebook has math but the page shows no MathJax output")
    problems += [f"math left untypeset: {text!r}" for text in math["untypeset"]]
    problems += [f"MathJax error: {text!r}" for text in math["errors"]]
    problems += [f"raw TeX delimiters in the text: {text!r}" for text in math["raw"]]
    in_file = (HTML / f"{page}.html").read_text().count('<div class="animation">')
    if len(players) != in_file:
        problems.append(f"{in_file} frame players in the HTML file, {len(players)} in the page")
    for i, move in enumerate(players):
        if move["before"]["src"] == move["after"]["src"] or move["after"]["slider"] != "1" or not move["width"]:
            problems.append(f"frame player {i} did not advance to a shown frame: slider {move['after']['slider']}")
    if widgets["shown"] < widgets["views"]:
        problems.append(f"{widgets['views'] - widgets['shown']} of {widgets['views']} widgets were not rendered")
    problems += errors_reported(browser.events)
    problems += [f"request leaves the machine: {url}" for url in requests_leaving_the_machine(browser.events)]
    assert not problems, f"{page}:\n" + "\n".join(problems)
