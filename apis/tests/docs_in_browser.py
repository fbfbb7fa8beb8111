"""Opens the API's /docs page in headless Chromium with every host but the
server's own address unreachable, checks that Swagger UI renders the API,
then uses "Try it out" and "Execute" on GET /health and reads the answer
the page shows. Driven over the DevTools protocol (websocket-client).

usage: docs_in_browser.py BASE_URL SCREENSHOT.png
Prints one JSON line: {"title", "operations", "try_it_out_status", "external_requests"}.
"""

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

base, screenshot = sys.argv[1], sys.argv[2]
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
profile = tempfile.mkdtemp(prefix="docs-browser-")
port = 9333
browser = subprocess.Popen(
    [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}",
        f"--remote-allow-origins=http://127.0.0.1:{port}",
        # The network is off: only the server's loopback address resolves.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,2000",
        "about:blank",
    ],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
try:
    deadline = time.time() + 30
    while True:
        try:
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            page = next(t for t in targets if t["type"] == "page")
            break
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
    counter = [0]
    requests = []

    def send(method, params=None):
        counter[0] += 1
        ws.send(json.dumps({"id": counter[0], "method": method, "params": params or {}}))
        while True:
            message = json.loads(ws.recv())
            if message.get("method") == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
            if message.get("id") == counter[0]:
                return message.get("result", {})

    def evaluate(expression):
        result = send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        return result.get("result", {}).get("value")

    def wait_for(expression, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        return None

    send("Network.enable")
    send("Page.enable")
    send("Page.navigate", {"url": f"{base}/docs"})
    title = wait_for("document.querySelector('.info .title') && document.querySelector('.info .title').innerText")
    operations = wait_for("document.querySelectorAll('.opblock').length")
    # GET /health: open it, "Try it out", "Execute", read the status the page shows.
    evaluate(
        """(() => {
            const path = document.querySelector('.opblock-summary-path[data-path="/health"]');
            const block = path.closest('.opblock');
            block.querySelector('.opblock-summary-control').click();
            return true;
        })()"""
    )
    wait_for("!!document.querySelector('.opblock.is-open .try-out__btn')")
    evaluate("document.querySelector('.opblock.is-open .try-out__btn').click(), true")
    wait_for("!!document.querySelector('.opblock.is-open .execute')")
    evaluate("document.querySelector('.opblock.is-open .execute').click(), true")
    status = wait_for(
        "document.querySelector('.opblock.is-open .live-responses-table tr.response .response-col_status') && "
        "document.querySelector('.opblock.is-open .live-responses-table tr.response .response-col_status').innerText.trim()"
    )
    shot = send("Page.captureScreenshot", {"format": "png"})
    with open(screenshot, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    external = [u for u in requests if not u.startswith(base) and not u.startswith("data:")]
    print(json.dumps({"title": title, "operations": operations, "try_it_out_status": status, "external_requests": external}))
finally:
    browser.kill()
    shutil.rmtree(profile, ignore_errors=True)
