#!/usr/bin/env python3
"""A fake Projector HTTP API, for working on the web console without building Rust.

    python3 tests/console/mock_server.py 8765 [--token SECRET] [--verbose]
    node tests/console/drive.mjs http://127.0.0.1:8765 orders /tmp/shot.png "SELECT 1 AS one"

It serves the console's static files from host/src/api/console/ (re-read on every request,
so edit and reload) and fakes the JSON contract the console is built to:

  GET  /api/projections                      {"projections": [P...], "unnamed_reloads": [...], "head": N}
  GET  /api/projections/{name}               P, or 404
  POST /api/projections/{name}/{action}      action in pause, resume, reset, rebuild, rollback
                                             -> {"message": "..."} or 4xx {"error": "..."}
  GET  /api/projections/{name}/dead-letters?limit=N   {"total": N, "dead_letters": [...]}
  POST /api/query {"sql": "..."}             {"columns": [...], "rows": [{...}], "positions": {name: pos}}
  GET  /health, GET /ready

Three projections: `orders` runs and follows the head (the head grows 1000 events/s; pausing
freezes its position so its lag grows), `customers` is in a shadow rebuild that loops, and
`legacy` is stopped. Some values hold HTML on purpose: the console must show it as text.
With --token, every request but the static files needs `Authorization: Bearer SECRET`
(else 401), as the real server does.
Standard library only (Python 3.11).
"""

import json
import math
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

STATIC_DIR = Path(__file__).resolve().parents[2] / "host" / "src" / "api" / "console"
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/console.css": ("console.css", "text/css; charset=utf-8"),
    "/console.js": ("console.js", "text/javascript; charset=utf-8"),
}
START = time.time()
HEAD_RATE = 1000.0  # events per second appended to the fake store
LOCK = threading.Lock()


def now_ms():
    return int(time.time() * 1000)


def head():
    return 50_000 + int((time.time() - START) * HEAD_RATE)


def reload(name, outcome, version, detail, ago_s):
    return {"unix_ms": now_ms() - int(ago_s * 1000), "projection": name, "outcome": outcome,
            "plugin_file": f"{name}.wasm", "from_version": None, "to_version": version,
            "detail": detail}


class Projection:
    def __init__(self, name, version, state):
        self.name, self.version, self.state = name, version, state
        self.paused = False
        self.frozen_at = None          # the position while paused
        self.rebuild_started = None    # time of the rebuild, when one runs
        self.rebuild_kind = None
        self.reloads = [reload(name, "started", version, "loaded at start-up", 300)]
        self.dead = []

    def position(self):
        if self.state == "stopped":
            return 41_250
        if self.frozen_at is not None:
            return self.frozen_at
        t = time.time() - START
        lag = 40 + int(35 * (1 + math.sin(t / 3)))  # wobbles so the sparkline has a shape
        return max(0, head() - lag)

    def view(self):
        h, pos = head(), self.position()
        lag = h - pos
        running = self.state != "stopped"
        rebuild = None
        if self.rebuild_started is not None:
            progress = ((time.time() - self.rebuild_started) / 40) % 1.0
            rpos = int(progress * h)
            rebuild = {"kind": self.rebuild_kind, "version": str(int(self.version) + 1),
                       "position": rpos, "head": h, "progress": progress,
                       "events_per_second": 5000.0,
                       "eta_seconds": (h - rpos) / 5000.0, "projected": rpos, "failed": 0}
        state = self.state
        if self.paused:
            state = "paused"
        elif running and self.rebuild_started is not None and self.rebuild_kind != "shadow":
            state = "rebuilding"
        elif running and lag > 500:
            state = "catching up"
        return {
            "name": self.name, "version": self.version,
            "sha256": "ab12cd34" * 8, "state": state,
            "stopped": ("plugin trapped: <b>unreachable</b> in handle_event"
                        if self.state == "stopped" else None),
            "position": pos, "head": h,
            "lag_events": lag if running else None, "lag_events_exact": True,
            "lag_seconds": round(lag / HEAD_RATE, 3) if running else None,
            "events_per_second": 0.0 if (self.paused or not running) else 987.5,
            "eta_seconds": None if self.paused or not running else 0.1,
            "dead_letters": len(self.dead), "projected": pos - len(self.dead),
            "failed": len(self.dead), "caught_up": running and lag < 500,
            "error": None, "source_error": None, "paused": self.paused,
            "rebuild": rebuild, "reloads": self.reloads, "last_swap_pause_ms": None,
        }


def make_projections():
    orders = Projection("orders", "2", "running")
    orders.dead = [
        {"id": 5120 + i, "stream": f"order-{i + 1}", "revision": 3, "event_type": "OrderShipped",
         "attempts": 1, "first_error": "missing field `address`",
         "last_error": "missing field `address` <script>alert('hostile')</script>",
         "first_failed_unix_ms": now_ms() - 90_000, "last_failed_unix_ms": now_ms() - 60_000}
        for i in range(3)]
    customers = Projection("customers", "5", "running")
    customers.rebuild_started, customers.rebuild_kind = time.time(), "shadow"
    legacy = Projection("legacy", "1", "stopped")
    legacy.reloads.append(reload("legacy", "failed", "1", "trap in init", 120))
    return {p.name: p for p in (orders, customers, legacy)}


PROJECTIONS = make_projections()


def act(p, action):
    """Applies an action; returns (status, body)."""
    if action == "pause":
        if p.paused:
            return 409, {"error": f"{p.name} is already paused"}
        p.frozen_at, p.paused = p.position(), True
        return 200, {"message": f"{p.name} paused at {p.frozen_at}"}
    if action == "resume":
        if p.state == "stopped" and not p.paused:
            p.state = "running"
            return 200, {"message": f"{p.name} started again from its checkpoint"}
        if not p.paused:
            return 409, {"error": f"{p.name} is not paused"}
        p.frozen_at, p.paused = None, False
        return 200, {"message": f"{p.name} resumed"}
    if action in ("reset", "rebuild", "rollback"):
        if p.state == "stopped" and action != "rollback":
            return 409, {"error": f"{p.name} is stopped: roll it back or reload its plugin"}
        p.rebuild_started = time.time()
        p.rebuild_kind = {"reset": "reset", "rebuild": "shadow", "rollback": "rollback"}[action]
        p.reloads.append(reload(p.name, action, p.version, f"{action} asked from the API", 0))
        return 200, {"message": f"{p.name}: {action} started"}
    return 404, {"error": f"no action {action}"}


def query(sql):
    sql = sql.strip()
    if not sql:
        return 400, {"error": "empty query"}
    if re.search(r"\b(insert|update|delete|drop|create)\b", sql, re.I):
        return 400, {"error": "not authorized: the API is read-only"}
    if "syntax" in sql.lower():
        return 400, {"error": 'near "syntax": syntax error'}
    read = [n for n in PROJECTIONS if re.search(rf"\b{re.escape(n)}\.", sql)]
    positions = {n: PROJECTIONS[n].position() for n in read}
    m = re.fullmatch(r"select\s+(\d+)\s+as\s+(\w+)\s*;?", sql, re.I)
    if m:
        return 200, {"columns": [m.group(2)], "rows": [{m.group(2): int(m.group(1))}],
                     "positions": positions}
    if re.match(r"select\s+count\(\*\)", sql, re.I):
        return 200, {"columns": ["n"], "rows": [{"n": 1234}], "positions": positions}
    rows = [{"id": i, "customer": f"c-{i}", "total": 19.5 * i, "note": None} for i in range(1, 4)]
    rows[1]["note"] = '<img src=x onerror="alert(1)">'  # must show as text
    return 200, {"columns": ["id", "customer", "total", "note"], "rows": rows,
                 "positions": positions}


class Handler(BaseHTTPRequestHandler):
    token = None
    verbose = False
    server_version = "projector-mock"

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if self.token is None or urlsplit(self.path).path in STATIC:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        self.send(401, {"error": "missing or wrong API token"})
        return False

    def do_GET(self):
        url = urlsplit(self.path)
        path = url.path
        if path in STATIC:
            name, ctype = STATIC[path]
            return self.send(200, (STATIC_DIR / name).read_bytes(), ctype)
        if not self.authorized():
            return
        if path == "/health":
            return self.send(200, {"status": "alive"})
        if path == "/ready":
            return self.send(200, {"ready": True, "reasons": []})
        with LOCK:
            if path == "/api/projections":
                return self.send(200, {"projections": [p.view() for p in PROJECTIONS.values()],
                                       "unnamed_reloads": [], "head": head()})
            m = re.fullmatch(r"/api/projections/([^/]+)(/dead-letters)?", path)
            if m and m.group(1) in PROJECTIONS:
                p = PROJECTIONS[m.group(1)]
                if not m.group(2):
                    return self.send(200, p.view())
                limit = int(parse_qs(url.query).get("limit", ["100"])[0])
                return self.send(200, {"total": len(p.dead), "dead_letters": p.dead[:limit]})
            if m:
                return self.send(404, {"error": f"no projection {m.group(1)}"})
        self.send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.authorized():
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.send(400, {"error": "the body is not JSON"})
        path = urlsplit(self.path).path
        with LOCK:
            if path == "/api/query":
                return self.send(*query(str(body.get("sql", ""))))
            m = re.fullmatch(r"/api/projections/([^/]+)/(\w+)", path)
            if m:
                p = PROJECTIONS.get(m.group(1))
                if p is None:
                    return self.send(404, {"error": f"no projection {m.group(1)}"})
                return self.send(*act(p, m.group(2)))
        self.send(404, {"error": "not found"})


def main(argv):
    port = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 8765
    if "--token" in argv:
        Handler.token = argv[argv.index("--token") + 1]
    Handler.verbose = "--verbose" in argv
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"mock Projector API on http://127.0.0.1:{port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv)
