"""The archive's captures in a browser, served by pywb (`newsarchive replay`).

pywb pins libraries that break Scrapy, so it lives in its own virtualenv (the user's, made by
`newsarchive setup-replay`, or ``.venv-pywb``, made by ``scripts/dev.sh setup`` in a checkout)
and runs here as a subprocess. Its working directory is a temporary one holding what pywb reads
from local disk: a ``config.yaml`` with one collection, ``archive``; one sorted CDXJ index merged
from the completed crawls' indexes; and the home page templates, which list the archived
articles. The WARCs stay where they are: pywb reads each capture with a ranged read of the local
file or a ranged GET on the bucket (its ``S3Loader``, given the endpoint and credentials through
the standard ``AWS_*`` environment variables).
"""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.capture.cdxj import merge_lines, replays_empty
from crawler.config import ArchiveConfig
from crawler.errors import UsageError
from crawler.readers.listing import complete_crawls, text_records
from crawler.store.backends import ArchiveStore, s3_client_env

COLLECTION = "archive"
TEMPLATES = Path(__file__).parent / "replay_templates"
PYWB_VENV = ".venv-pywb"
PYWB_REQUIREMENTS = ("pywb>=2.10,<2.11", "boto3")  # boto3: pywb reads captures from S3
MERGE_FAN_IN = 256  # index files open at once while merging
READY_TIMEOUT = 60.0


class _Stop(Exception):
    """SIGINT or SIGTERM: stop pywb, clean up, return (the command exits 0)."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop(signum)


@dataclass(frozen=True)
class Serving:
    """What pywb serves, once it answers: its base URL, the crawls, captures and articles."""

    base: str
    crawls: int
    captures: int
    articles: int


def serve(store: ArchiveStore, archive: ArchiveConfig, wayback: str, host: str, port: int,
          ready: Callable[[Serving], None]) -> None:
    """Serve the archive's completed crawls with pywb (the program `wayback`) on host:port, and
    call `ready` once it answers. Returns after SIGINT or SIGTERM, pywb stopped and its
    directory removed; pywb stopping by itself is an error."""
    _check_free(host, port)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    workdir = Path(tempfile.mkdtemp(prefix="newsarchive-replay-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        manifests = complete_crawls(store)
        if not manifests:
            raise UsageError(f"no completed crawls in {store.uri}")
        index = workdir / "index" / f"{COLLECTION}.cdxj"
        captures = build_index(store, manifests, index)
        articles = write_home_page(store, manifests, workdir / "templates")
        write_pywb_config(workdir, index, store.uri)
        proc = subprocess.Popen(
            [wayback, "--bind", host, "--port", str(port)], cwd=workdir,
            env=s3_client_env(archive, workdir), stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent)
        ready(Serving(_wait_ready(proc, host, port), len(manifests), captures, articles))
        code = proc.wait()
        raise UsageError(f"pywb stopped by itself (exit code {code}); its output is above")
    except _Stop:
        return
    finally:
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        if proc is not None:
            _terminate(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        for s, handler in previous.items():
            signal.signal(s, handler)


def find_wayback(explicit: str | None = None) -> str:
    """pywb's server program: the one asked for, else the user's pywb virtualenv (made by
    `setup-replay`), the one beside the running virtualenv (``.venv`` -> ``.venv-pywb``) or in
    this checkout, else ``wayback`` on $PATH."""
    if explicit:
        candidates = [explicit]
    else:
        candidates = [str(_wayback(user_pywb_venv())),
                      str(_wayback(Path(sys.prefix).parent / PYWB_VENV)),
                      str(_wayback(Path(__file__).resolve().parents[2] / PYWB_VENV)),
                      shutil.which("wayback") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise UsageError(f"pywb not found (looked for {', '.join(c for c in candidates if c)}); "
                     "`newsarchive setup-replay` installs it, or pass --pywb")


def user_pywb_venv() -> Path:
    """The user's pywb virtualenv: ``$XDG_DATA_HOME/newsarchive/pywb-venv``, by default under
    ``~/.local/share`` (the XDG base directory rules: a relative $XDG_DATA_HOME is ignored)."""
    data = os.environ.get("XDG_DATA_HOME", "")
    root = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"
    return root / "newsarchive" / "pywb-venv"


def setup_pywb(venv: Path) -> Path:
    """Create the pywb virtualenv `venv` (or update it) and install pywb into it; returns its
    `wayback`. For an installation without a checkout, where scripts/dev.sh is not at hand."""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install",
                        "--disable-pip-version-check", *PYWB_REQUIREMENTS], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UsageError(f"setting up pywb in {venv} failed ({exc}); its output is above"
                         ) from None
    return _wayback(venv)


def _wayback(venv: Path) -> Path:
    return venv / "bin" / "wayback"


def build_index(store: ArchiveStore, manifests: Iterable[dict[str, Any]], out: Path) -> int:
    """Fetch the crawls' CDXJ files and merge them into one sorted index; returns its lines.

    pywb cannot read a plain CDXJ from S3, and one merged file answers a lookup with one
    binary search instead of one per crawl shard.
    """
    parts = out.parent / "parts"
    parts.mkdir(parents=True)
    paths = []
    for manifest in manifests:
        for entry in manifest["files"]:
            if entry["kind"] == "index":
                path = parts / f"{len(paths):08d}.cdxj"
                with store.open(entry["key"]) as src, open(path, "wb") as dst:
                    dst.writelines(line for line in src if not replays_empty(line))
                paths.append(path)
    return merge_sorted(paths, out)


def merge_sorted(paths: list[Path], out: Path, fan_in: int = MERGE_FAN_IN) -> int:
    """Merge sorted line files into `out`, never more than `fan_in` open; returns the lines."""
    level = 0
    while len(paths) > fan_in:
        level += 1
        batches = [paths[i:i + fan_in] for i in range(0, len(paths), fan_in)]
        paths = [out.with_name(f"{out.name}.{level}.{n}") for n in range(len(batches))]
        for batch, merged in zip(batches, paths, strict=True):
            _merge(batch, merged)
    return _merge(paths, out)


def _merge(paths: list[Path], out: Path) -> int:
    with ExitStack() as stack, open(out, "wb") as dst:
        lines = merge_lines([stack.enter_context(open(path, "rb")) for path in paths],
                            dst.write)
    for path in paths:
        path.unlink()
    return lines


def write_home_page(store: ArchiveStore, manifests: list[dict[str, Any]], templates: Path
                    ) -> int:
    """pywb's home page templates: ours, and the article table (newest crawl first) it includes.

    The table is plain HTML for Jinja to include as is: every value is HTML-escaped and its
    braces written as character references, so an archived title can never be template code.
    """
    shutil.copytree(TEMPLATES, templates)
    count = 0
    with open(templates / "articles.html", "w", encoding="utf-8") as out:
        for record in text_records(store, reversed(manifests)):
            timestamp = "".join(c for c in record.get("fetched_at") or "" if c.isdigit())[:14]
            href = f"{COLLECTION}/{timestamp}/{record['url']}"
            out.write(f'<tr><td>{_text(record.get("date") or "")}</td>'
                      f'<td><a href="{_text(href)}">{_text(record.get("title") or record["url"])}'
                      f'</a></td><td>{_text(record.get("outlet") or "")}</td>'
                      f'<td class="url">{_text(record["url"])}</td></tr>\n')
            count += 1
    return count


def _text(value: str) -> str:
    return html.escape(value).replace("{", "&#123;").replace("}", "&#125;")


def write_pywb_config(workdir: Path, index: Path, archive_uri: str) -> None:
    """pywb's ``config.yaml`` (JSON is YAML): the one collection, its index and WARC root.

    The index's ``filename`` is a WARC's archive key, so the WARC root is the archive itself:
    a directory, or ``s3://bucket/prefix/``.
    """
    config = {
        "collections": {COLLECTION: {"index_paths": str(index),
                                     "archive_paths": archive_uri.rstrip("/") + "/"}},
        "enable_auto_colls": False,
    }
    (workdir / "config.yaml").write_text(json.dumps(config, indent=2), "utf-8")


def _check_free(host: str, port: int) -> None:
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _die_with_parent() -> None:
    """Linux: the kernel stops pywb if this process dies without cleaning up (SIGKILL)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_ready(proc: subprocess.Popen[bytes], host: str, port: int) -> str:
    """Wait until pywb serves the collection; returns the base URL to print."""
    local = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    base = f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for us
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UsageError(f"pywb exited with code {proc.returncode} before serving; its "
                             "output is above")
        try:
            with opener.open(f"{base}/collinfo.json", timeout=5) as response:
                routes = json.load(response)
        except OSError:
            time.sleep(0.2)
            continue
        if COLLECTION not in routes.get("fixed", []):
            raise UsageError(f"pywb did not load the {COLLECTION!r} collection; its output "
                             "is above")
        return base
    raise UsageError(f"pywb did not answer on {base} within {READY_TIMEOUT:.0f} s")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
