"""Two headless Chromium windows chat through the chat example (engine/examples/chat.rs).

Each window opens the example's own page as a different user (alice, bob) with the
automation parameters: both join "lobby", each says hello once the other is there, and
each sends the other a direct message once it saw the other's hello. Each page POSTs its
outcome here; both must have seen the other's hello and direct message.
Usage: chat_test.py http://127.0.0.1:PAGE_PORT/
"""

import http.server
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

# The pages' POSTs are taken as chromium_test.py takes its page's.
from chromium_test import RESULTS, Handler as Report


def browser(page: str, profile: str) -> subprocess.Popen:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    return subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", page],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(page_url: str) -> int:
    if not (shutil.which("chromium") or os.path.exists("/usr/bin/chromium")):
        print("chat: 0 passed, 1 failed: chromium is not installed")
        return 1
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Report)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    report = f"http://127.0.0.1:{httpd.server_address[1]}/report"
    procs, profiles = [], []
    for me, peer in (("alice", "bob"), ("bob", "alice")):
        profile = tempfile.mkdtemp(prefix=f"wsengine-chat-{me}-")
        profiles.append(profile)
        query = urllib.parse.urlencode({"nick": me, "peer": peer, "report": report})
        procs.append(browser(f"{page_url}?{query}", profile))
    results = []
    try:
        for _ in procs:
            results.append(RESULTS.get(timeout=60))
    except queue.Empty:
        results.append({"nick": "?", "passed": 0, "failed": 1, "error": "no result within 60 s"})
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        httpd.shutdown()
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)
    failed = 0
    for r in results:
        ok = r["failed"] == 0 and r["passed"] == 2
        failed += 0 if ok else 1
        suffix = f": {r['error']}" if r.get("error") else ""
        print(f"chat {r['nick']}: {r['passed']} passed, {r['failed']} failed{suffix}")
        if not ok:
            print(r.get("log", ""))
    return 0 if failed == 0 and len(results) == 2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/"))
