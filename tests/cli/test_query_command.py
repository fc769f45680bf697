"""`trailguard query` / `import` from a user's side: exit statuses, where the API key comes
from, what a locked data directory says, and `--config` after the command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from trailguard.cli import _build_parser, main
from trailguard.store import DuckDBStore

# 4,000 deep: within the 10,000-token limit, so the nesting limit is what answers.
DEEP = "FROM Log SELECT count(*) WHERE " + "(" * 4000 + "1=1" + ")" * 4000
NESTS = "the query nests too deeply (at most 40 levels"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    DuckDBStore(tmp_path / "data").close()
    return tmp_path / "data"


def test_explain_of_a_deeply_nested_query_exits_2_with_the_position(
        capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "query", "--explain", DEEP)
    assert (status, out) == (2, "")
    assert err.startswith("trailguard: error: " + NESTS)
    assert err.rstrip().endswith("found '(' at line 1, column 72")
    assert "Traceback" not in err


def test_a_local_deeply_nested_query_exits_2(capsys: pytest.CaptureFixture[str],
                                             data_dir: Path) -> None:
    status, _, err = run(capsys, "query", "--data-dir", str(data_dir), DEEP)
    assert status == 2
    assert NESTS in err and "column 72" in err


class FakeServer:
    """Stands in for httpx.post: records the request, answers like the NRQL API."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def __call__(self, url: str, **kwargs: Any) -> httpx.Response:
        self.headers = kwargs["headers"]
        return httpx.Response(200, json={"results": [{"count": 3}], "metadata": {}})


def test_url_takes_the_key_from_the_data_dirs_keys_json(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAILGUARD_API_KEY", raising=False)
    (tmp_path / "keys.json").write_text(json.dumps({"api_key": "key-from-keys-json"}))
    server = FakeServer()
    monkeypatch.setattr(httpx, "post", server)
    status, out, _ = run(capsys, "query", "--url", "http://127.0.0.1:9", "--data-dir",
                         str(tmp_path), "--format", "json", "FROM Log SELECT count(*)")
    assert status == 0
    assert server.headers["X-Api-Key"] == "key-from-keys-json"
    assert json.loads(out)["results"] == [{"count": 3}]


def test_url_without_a_key_names_every_way_to_give_one(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAILGUARD_API_KEY", raising=False)
    status, _, err = run(capsys, "query", "--url", "http://127.0.0.1:9", "--data-dir",
                         str(tmp_path), "FROM Log SELECT count(*)")
    assert status == 1
    for way in ("TRAILGUARD_API_KEY", "--data-dir", "TRAILGUARD_DATA_DIR", "config file",
                str(tmp_path / "keys.json")):
        assert way in err


@pytest.fixture()
def held(data_dir: Path) -> Iterator[Path]:
    """`data_dir` held open for writing by another process, as a running server holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from trailguard.store import DuckDBStore; "
         "held = DuckDBStore(sys.argv[1]); print('ready', flush=True); time.sleep(60)"),
         str(data_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield data_dir
    finally:
        holder.kill()
        holder.wait()


def test_a_held_data_dir_gives_advice_that_fits_the_command(
        capsys: pytest.CaptureFixture[str], held: Path, tmp_path: Path) -> None:
    status, _, err = run(capsys, "query", "--data-dir", str(held), "FROM Log SELECT count(*)")
    assert status == 1
    assert "in use by another trailguard process" in err
    assert "to query a running server use --url" in err and "importing" not in err

    trail = tmp_path / "trail.json"
    trail.write_text('{"Records": []}')
    status, _, err = run(capsys, "import", "--data-dir", str(held), str(trail))
    assert status == 1
    assert "stop the server before importing" in err and "--url" not in err


@pytest.mark.parametrize("argv, expected", [
    (["serve", "--config", "after.yaml"], "after.yaml"),
    (["--config", "before.yaml", "serve"], "before.yaml"),
    (["--config", "before.yaml", "serve", "--config", "after.yaml"], "after.yaml"),
    (["serve"], None),
    (["query", "--config", "q.yaml", "FROM Log SELECT count(*)"], "q.yaml"),
    (["import", "--config", "i.yaml", "x.json"], "i.yaml"),
    (["poll", "--once", "--config", "p.yaml"], "p.yaml"),
    (["alerts", "incidents", "--config", "a.yaml"], "a.yaml"),
])
def test_config_is_accepted_before_and_after_the_command(argv: list[str],
                                                         expected: str | None) -> None:
    args = _build_parser().parse_args(argv)
    assert args.config == (Path(expected) if expected else None)


def test_a_local_query_keeps_to_the_configured_memory_limit(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from trailguard.events import LOG, Event

    store = DuckDBStore(tmp_path / "data")
    now = int(time.time() * 1000)
    store.write([Event(LOG, now - n, {"message": f"{n:06d}" + "x" * 2_000}, None)
                 for n in range(20_000)])
    store.close()
    monkeypatch.setenv("TRAILGUARD_STORE_MEMORY_LIMIT", "8MB")

    status, _, err = run(capsys, "query", "--data-dir", str(tmp_path / "data"),
                         "SELECT uniques(message, 5000) FROM Log SINCE 1 day ago")

    assert status != 0
    assert "store_memory_limit" in err and "Traceback" not in err
