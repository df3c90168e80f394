"""``genrec serve``'s API docs work without internet: ``/docs`` (Swagger UI) and ``/redoc``
load their files from the server itself, never from a CDN. Checked on the HTML, and in
headless Chromium with every host but 127.0.0.1 unreachable and a network log of every
request the page made."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

import genrec  # noqa: E402
from genrec.serve import app as serve_app  # noqa: E402
from genrec.serve import create_app  # noqa: E402
from genrec.testing import make_synthetic_dataset  # noqa: E402

CHROMIUM = next(
    (
        p
        for p in (
            os.environ.get("GENREC_CHROMIUM"),
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
            shutil.which("google-chrome"),
        )
        if p
    ),
    None,
)
URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
ABSOLUTE = re.compile(r"""["'(](https?:)?//[^"')\s]+""")


@pytest.fixture(scope="module")
def model() -> Any:
    ds = make_synthetic_dataset(n_users=30, n_items=20, seed=4)
    return genrec.get_model("popularity")().fit(ds)


def _local_only(html: str) -> list[str]:
    """The URLs that ``html`` loads (src/href), after checking none is on another host."""
    urls = URL_ATTR.findall(html)
    assert not ABSOLUTE.findall(html), ABSOLUTE.findall(html)
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
    return urls


@pytest.mark.skipif(serve_app.docs_assets_dir() is None, reason="fastapi-offline not installed")
def test_docs_and_redoc_reference_only_local_files(model):
    with TestClient(create_app({"popularity": model})) as client:
        for page in ("/docs", "/redoc"):
            resp = client.get(page)
            assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
            urls = _local_only(resp.text)
            assert urls, page
            for url in urls:  # every file it needs is served
                assert client.get(url).status_code == 200, url
            assert "/openapi.json" in resp.text
        assert "fonts.googleapis" not in client.get("/redoc").text
        for page in ("/docs", "/redoc"):  # the browser may fetch nothing from another host
            csp = client.get(page).headers["content-security-policy"]
            assert "default-src 'self'" in csp and "http" not in csp
        assert '"validatorUrl": null' in client.get("/docs").text
        assert client.get("/openapi.json").json()["info"]["title"] == "genrec"
        assert 'href="/redoc"' in client.get("/").text  # the web demo links both


def test_docs_without_the_assets_package_still_points_somewhere(model, monkeypatch):
    monkeypatch.setattr(serve_app, "docs_assets_dir", lambda: None)
    with TestClient(create_app({"popularity": model})) as client:
        resp = client.get("/docs")
        assert resp.status_code == 200
        _local_only(resp.text)
        assert "genrec[serve]" in resp.text and 'href="/openapi.json"' in resp.text


def test_unknown_user_hint_names_the_json_field(model):
    with TestClient(create_app({"popularity": model})) as client:
        resp = client.post("/recommend", json={"user_id": 987654, "k": 3})
        assert resp.status_code == 404
        detail = resp.json()["detail"]
        assert "987654" in detail and '"on_unknown": "popular"' in detail


# ---------------------------------------------------------------------- headless Chromium
@pytest.fixture(scope="module")
def live_server(model) -> Iterator[str]:
    app = create_app({"popularity": model})
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (make browser)")
@pytest.mark.skipif(serve_app.docs_assets_dir() is None, reason="fastapi-offline not installed")
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_render_offline_in_chromium(live_server, tmp_path, page):
    netlog = tmp_path / "netlog.json"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        # offline: no host resolves except the local server
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=15000",
        "--dump-dom",
    ]
    for _ in range(3):  # virtual time can run out on a loaded machine: retry
        proc = subprocess.run(
            [CHROMIUM, *flags, live_server + page],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        # the API's operations were rendered from /openapi.json by the local script
        if "/recommend" in proc.stdout:
            break
    assert "/recommend" in proc.stdout, proc.stdout[-2000:]
    requests = page_requests(netlog)
    assert any(u.startswith(live_server) for u in requests), sorted(requests)[:10]
    foreign = sorted(u for u in requests if urlparse(u).hostname != "127.0.0.1")
    assert not foreign, foreign


def page_requests(netlog: Path) -> set[str]:
    """URLs of the requests made by web content (not Chromium's own background requests,
    whose initiator is "not an origin") in a ``--log-net-log`` file."""
    text = netlog.read_text().rstrip()
    try:
        events = json.loads(text)["events"]
    except json.JSONDecodeError:  # a log cut short lacks its closing brackets
        events = json.loads(text.rstrip(",") + "]}")["events"]
    out = set()
    for event in events:
        params = event.get("params") or {}
        url, initiator = params.get("url"), params.get("initiator")
        if url and "method" in params and initiator != "not an origin":
            out.add(url)
    return out
