"""What the benchmark scripts share: where the checkout, its virtualenv's commands and the
shared site generator are, a free port, and `newsarchive` run so that it reports its peak RSS."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_SITE_SCRIPT = ROOT.parent / "shared" / "benchmarks" / "site" / "make_site.py"

# `newsarchive` itself (crawler.cli.main:main), reporting its peak RSS on stderr as it exits.
NEWSARCHIVE = [sys.executable, "-c", "import sys\nfrom crawler.cli.main import main\n"
               "try:\n    sys.exit(main(sys.argv[1:]))\nfinally:\n"
               "    print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0],"
               " file=sys.stderr)"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
