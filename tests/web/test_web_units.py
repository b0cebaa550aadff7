"""Pieces of the server without HTTP: the database allow-list, links, the refresh of a run being written."""

from __future__ import annotations

import os
import time

from pytomo.web import views
from pytomo.web.app import Site
from pytomo.web.catalog import Catalog, run_id


def _db(folder, name):
    path = folder / f"{name}.pytomo_database.db"
    path.write_bytes(b"")
    return path


def test_catalog_lists_newest_first_and_knows_only_its_files(tmp_path):
    old, new = _db(tmp_path, "a"), _db(tmp_path, "b")
    os.utime(old, (time.time() - 100, time.time() - 100))
    (tmp_path / "notes.db").write_bytes(b"")
    (tmp_path / "elsewhere").mkdir()
    extra = _db(tmp_path / "elsewhere", "c")  # given with -f, outside the folder
    os.utime(extra, (time.time() - 50, time.time() - 50))
    cat = Catalog(tmp_path, extra)
    assert [e.path for e in cat.entries()] == [new, extra, old]
    assert cat.default().path == extra  # -f is shown first
    assert cat.get(run_id(old)).path == old
    assert cat.get(run_id(tmp_path / "notes.db")) is None and cat.get("0" * 16) is None
    assert all(len(e.id) == 16 and str(e.path) not in e.id for e in cat.entries())


def test_a_wal_file_alone_does_not_make_a_run_live(tmp_path):
    """Another reader's -wal file beside a run is not a writer: no "being written", no refresh (see
    tests/web/test_web_story.py for a real writer's lock)."""
    db = _db(tmp_path, "live")
    site = Site(Catalog(tmp_path), cache_dir=tmp_path / "cache")
    (tmp_path / f"{db.name}-wal").write_bytes(b"")
    entry = Catalog(tmp_path).entries()[0]
    page = str(site.render.header(views.base_page(entry, "/", "Main")))
    assert not entry.live and 'http-equiv="refresh"' not in page


def test_only_web_links_become_links():
    assert views.safe_href("https://example.test/watch?v=1") == "https://example.test/watch?v=1"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "//evil", None, 3):
        assert views.safe_href(bad) is None
    assert views.link("/videos", db="ab", page=2) == "/videos?db=ab&page=2"


def test_every_series_of_a_chart_gets_its_own_label():
    from pytomo.web import svg

    names = [f"2001:db8::{i:x} icmp-raw" for i in range(9)] + ["127.0.0.1 tcp-connect"]
    doc = svg.chart("RTT samples", "probe", "ms", [(n, [(1.0, float(i))]) for i, n in enumerate(names)], dots=True)
    for n in names:
        assert f">{n}</text>" in doc
    places = svg.legend_places(names)
    for (x1, r1), (x2, r2), n in zip(places, places[1:], names, strict=False):
        assert r2 > r1 or x2 >= x1 + len(n) * 6.5  # never on top of the previous label
    assert all(x + 6.5 * len(n) <= svg.WIDTH_PX for (x, _r), n in zip(places, names, strict=True))


def test_a_finished_database_stays_open_in_its_thread_until_the_file_changes(tmp_path):
    import sqlite3

    path = tmp_path / "r.pytomo_database.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE pytomo_crawl_2013_01_24_18_23_56 (ID TIMESTAMP, DownloadTime real)")
    conn.commit()
    conn.close()
    entry = Catalog(tmp_path).entries()[0]
    with views.Db(entry) as first:
        pass
    with views.Db(entry) as again:
        assert again.conn is first.conn and again.pooled  # kept open, not reopened
        assert again.conn.execute("SELECT count(*) FROM pytomo_crawl_2013_01_24_18_23_56").fetchone()[0] == 0
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO pytomo_crawl_2013_01_24_18_23_56 VALUES ('2013-01-24 18:24:00', 3.5)")
    conn.commit()
    conn.close()
    os.utime(path, (time.time() + 5, time.time() + 5))
    changed = Catalog(tmp_path).entries()[0]
    with views.Db(changed) as fresh:
        assert fresh.conn is not first.conn  # a new version of the file: opened again, never read stale
        assert fresh.conn.execute("SELECT count(*) FROM pytomo_crawl_2013_01_24_18_23_56").fetchone()[0] == 1


def test_the_memo_drops_the_least_recently_used_value_not_everything(tmp_path, monkeypatch):
    from pytomo.web import app

    monkeypatch.setattr(app, "MEMO_ENTRIES", 3)
    site = Site(Catalog(tmp_path), cache_dir=tmp_path / "cache")
    computed = []

    def value(k):
        return site.remember((k,), lambda: computed.append(k) or k)

    for k in "abc":
        value(k)
    value("a")  # used again: now the most recent
    value("d")  # drops b, the least recently used
    value("a")
    value("c")
    value("b")
    assert computed == ["a", "b", "c", "d", "b"]
