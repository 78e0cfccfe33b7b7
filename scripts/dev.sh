#!/usr/bin/env bash
# One entry point for a fresh machine (Debian 12, Python 3.11):
#   scripts/dev.sh demo   set everything up, then run `newsarchive demo`
#   scripts/dev.sh test   set everything up, then run the linters (ruff, the import layers) and
#                         the whole test suite
#   scripts/dev.sh setup  set up only (.venv with newsarchive and its test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian packages: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup() {
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv python3-pip
    fi
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    # the shared-crawl tests start Debian's redis-server on a port of their own
    apt_install redis-server
    setup_replay
}

# `newsarchive replay` runs pywb from its own virtualenv: pywb 2.10 pins old redis, werkzeug and
# pyOpenSSL and brings brotlipy, which break Scrapy. boto3 lets it read captures from S3.
# Debian's chromium is the browser the replay tests drive; ReplayWeb.page (its built ui.js and
# sw.js, unpacked in .replaywebpage/package) is the player they open exported WACZs in. Its npm
# package is unpacked, not installed: the built files need none of its dependencies.
REPLAYWEBPAGE_VERSION=2.5.3

setup_replay() {
    if ! .venv-pywb/bin/python -c 'import boto3, importlib.metadata as m
assert m.version("pywb").startswith("2.10.")' 2>/dev/null; then
        "$PYTHON" -m venv .venv-pywb
        .venv-pywb/bin/python -m pip install -q --upgrade pip
        .venv-pywb/bin/python -m pip install -q "pywb>=2.10,<2.11" boto3
    fi
    apt_install chromium fonts-dejavu-core  # the replay tests' web font
    if ! grep -qs "\"version\": \"$REPLAYWEBPAGE_VERSION\"" .replaywebpage/package/package.json
    then
        command -v npm >/dev/null || apt_install npm
        rm -rf .replaywebpage && mkdir .replaywebpage
        npm pack --silent --pack-destination .replaywebpage \
            "replaywebpage@$REPLAYWEBPAGE_VERSION" >/dev/null
        tar -xzf ".replaywebpage/replaywebpage-$REPLAYWEBPAGE_VERSION.tgz" -C .replaywebpage
    fi
}

case "${1:-}" in
    setup)
        setup ;;
    demo)
        shift; setup
        exec .venv/bin/newsarchive demo "$@" ;;
    test)
        shift; setup
        .venv/bin/ruff check .
        .venv/bin/lint-imports
        exec .venv/bin/python -m pytest "$@" ;;
    *)
        echo "usage: scripts/dev.sh setup|demo|test [args...]" >&2
        exit 2 ;;
esac
