"""The web demo in headless Chromium: the page reads its URL parameters, calls the API and
renders both lists, their overlap and the history. Skips without a ``chromium`` binary.

The browser is driven with ``--dump-dom`` (the DOM after the page's scripts ran) and
``--screenshot``; no WebDriver or extra Python package is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import genrec  # noqa: E402
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
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (apt install chromium) to drive the demo"
)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Node:
    """A parsed element: tag, attributes, children and text."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts + [c.text for c in self.children]).strip()

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
        ]

    def by_id(self, ident: str) -> Node:
        found = [n for n in self.iter() if n.attrs.get("id") == ident]
        assert found, f"no element with id {ident!r}"
        return found[0]


class DomParser(HTMLParser):
    """Just enough of an HTML tree builder for Chromium's serialised DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_endtag(self, tag: str) -> None:
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.parts.append(data)


def parse(html: str) -> Node:
    parser = DomParser()
    parser.feed(html)
    return parser.root


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """uvicorn on 127.0.0.1 (a free port) in a background thread, serving three models."""
    ds = make_synthetic_dataset(n_users=40, n_items=30, seq_len=6, seed=3)
    root = tmp_path_factory.mktemp("browser-artifacts")
    paths = [
        genrec.get_model(name)().fit(ds).save(root / name)
        for name in ("ease", "itemknn", "popularity")
    ]
    app = create_app([str(p) for p in paths], ds.items)
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
        yield {"url": f"http://127.0.0.1:{port}", "dataset": ds}
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )


def render(url: str, tmp_path: Path) -> Node:
    """The page's DOM once its scripts finished (``body[data-state]``: done, ready, error)."""
    for _ in range(3):  # virtual time can run out on a loaded machine: retry
        proc = chromium(["--dump-dom", url], tmp_path / "profile")
        assert proc.returncode == 0, proc.stderr[-2000:]
        dom = parse(proc.stdout)
        body = dom.find_all("body")[0]
        if body.attrs.get("data-state") in ("done", "ready", "error"):
            return dom
    raise AssertionError(f"page never finished loading: state {body.attrs.get('data-state')!r}")


def recs(dom: Node, column: str) -> list[Node]:
    return dom.by_id(column).find_all("li", "rec")


def test_compare_two_models_for_a_user(server, tmp_path):
    ds = server["dataset"]
    k, models = 5, ("ease", "popularity")
    # a user whose two lists partly overlap, so highlighting has both cases to show
    for user in (int(u) for u in ds.user_map.external_ids):
        api = {
            m: httpx.post(
                f"{server['url']}/recommend", json={"model": m, "user_id": user, "k": k}
            ).json()
            for m in models
        }
        a = {it["item_id"] for it in api[models[0]]["items"]}
        b = {it["item_id"] for it in api[models[1]]["items"]}
        if 0 < len(a & b) < k:
            break
    else:
        pytest.fail("no user with a partial overlap in the synthetic data")
    query = urlencode({"models": ",".join(models), "user": user, "k": k})
    dom = render(f"{server['url']}/?{query}", tmp_path)
    assert dom.find_all("body")[0].attrs["data-state"] == "done", dom.by_id("error").text

    for column, model in zip(("col-a", "col-b"), models):
        items = recs(dom, column)
        assert "hidden" not in dom.by_id(column).attrs
        assert len(items) == k
        assert [int(li.attrs["data-item-id"]) for li in items] == [
            it["item_id"] for it in api[model]["items"]
        ]
        first = api[model]["items"][0]
        assert first["title"] in items[0].text
        assert first["genres"][0] in items[0].text  # genre tags rendered
        assert dom.by_id(column).find_all("h2")[0].text.startswith(model)

    shared = a & b
    assert "hidden" not in dom.by_id("overlap").attrs
    assert dom.by_id("jaccard").text == f"{len(shared) / len(a | b):.3f}"
    assert dom.by_id("overlap-count").text.startswith(f"{len(shared)} of {k}")
    for column in ("col-a", "col-b"):
        marked = {
            int(li.attrs["data-item-id"]) for li in recs(dom, column) if "shared" in li.classes
        }
        assert marked == shared

    history = dom.by_id("history-list").find_all("li", "chip")
    seen = ds.interactions.loc[ds.interactions["user_id"] == user, "item_id"].tolist()
    assert [int(li.attrs["data-item-id"]) for li in history] == [int(i) for i in seen]
    assert str(len(seen)) in dom.by_id("history-count").text

    shot = tmp_path / "demo-compare.png"
    proc = chromium(
        [f"--screenshot={shot}", "--window-size=1280,1000", f"{server['url']}/?{query}"],
        tmp_path / "profile",
    )
    assert proc.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000
    print(f"\nscreenshot: {shot}")


def test_ad_hoc_history_single_model(server, tmp_path):
    ds = server["dataset"]
    history = [int(i) for i in ds.item_map.external_ids[[0, 1]]]
    query = urlencode({"models": "ease", "history": ",".join(map(str, history)), "k": 4})
    dom = render(f"{server['url']}/?{query}", tmp_path)
    assert dom.find_all("body")[0].attrs["data-state"] == "done", dom.by_id("error").text
    chips = dom.by_id("history-list").find_all("li", "chip")
    assert [int(li.attrs["data-item-id"]) for li in chips] == history
    assert "hidden" not in dom.by_id("history-pane").attrs
    assert "hidden" in dom.by_id("col-b").attrs and "hidden" in dom.by_id("overlap").attrs
    expected = httpx.post(
        f"{server['url']}/recommend", json={"model": "ease", "history": history, "k": 4}
    ).json()
    assert [int(li.attrs["data-item-id"]) for li in recs(dom, "col-a")] == [
        it["item_id"] for it in expected["items"]
    ]


def test_errors_are_shown_not_thrown(server, tmp_path):
    dom = render(f"{server['url']}/?models=ease&user=no-such-user", tmp_path)
    assert dom.find_all("body")[0].attrs["data-state"] == "error"
    error = dom.by_id("error")
    assert "hidden" not in error.attrs and "no-such-user" in error.text


def test_title_autocomplete(server, tmp_path):
    dom = render(f"{server['url']}/?{urlencode({'models': 'ease', 'q': 'item 01'})}", tmp_path)
    assert dom.find_all("body")[0].attrs["data-state"] == "ready", dom.by_id("error").text
    box = dom.by_id("suggestions")
    assert "hidden" not in box.attrs
    titles = [li.text for li in box.find_all("li", "suggestion")]
    assert titles and all("item 01" in t.lower() for t in titles)
    assert "Cluster" in box.text  # genre tags in the suggestions
