"""Headless Chromium (a real browser) against a WebSocket echo server.

Serves chromium_page.html on 127.0.0.1, starts Chromium on it, and waits for the page to
POST its result. The page checks that the server accepted `EXTENSION` (e.g.
permessage-deflate, which Chromium always offers), or none when it is not given.
Usage: chromium_test.py ws://127.0.0.1:PORT/ [EXTENSION]
"""

import http.server
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS: "queue.Queue[dict]" = queue.Queue()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if urllib.parse.urlparse(self.path).path != "/page.html":
            self.send_error(404)
            return
        with open(os.path.join(HERE, "chromium_page.html"), "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        RESULTS.put(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main(ws_url: str, extension: str) -> int:
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(browser):
        print("chromium: 0 passed, 1 failed: chromium is not installed")
        return 1
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    page = f"http://127.0.0.1:{httpd.server_address[1]}/page.html?ws={urllib.parse.quote(ws_url)}&ext={urllib.parse.quote(extension)}"
    profile = tempfile.mkdtemp(prefix="wsengine-chromium-")
    proc = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
         # wss:// to a server with a throw-away self-signed certificate.
         "--ignore-certificate-errors",
         "--remote-debugging-port=0", page],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = RESULTS.get(timeout=60)
    except queue.Empty:
        result = {"passed": 0, "failed": 1, "error": "no result from the page within 60 s"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        httpd.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    suffix = f": {result['error']}" if result.get("error") else ""
    name = f"chromium ({extension})" if extension else "chromium"
    print(f"{name}: {result['passed']} passed, {result['failed']} failed{suffix}")
    return 0 if result["failed"] == 0 and result["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001/",
                  sys.argv[2] if len(sys.argv) > 2 else ""))
