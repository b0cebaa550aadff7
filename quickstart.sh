#!/usr/bin/env bash
# Installs everything Pytomo needs on Debian/Ubuntu (system packages, a virtual environment, the package),
# then runs one job:
#   ./quickstart.sh crawl [start_crawl.py options]   a complete crawl of the built-in lab
#   ./quickstart.sh test  [pytest options]           the whole test suite
#   ./quickstart.sh check                            the static checks: ruff (with complexity) and mypy
# Safe to run again at any time: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

job="${1:-}"
case "$job" in
  crawl|test|check) shift ;;
  *) echo "usage: $0 crawl|test|check [options]" >&2; exit 2 ;;
esac

# System packages: build tools for the rrdtool binding, MediaInfo, nginx (a cache server of the lab), ping,
# a font for the graphs, Caddy (an HTTPS cache server of the lab: HTTP/1.1, HTTP/2 and HTTP/3), chromium for the web page tests and the lab's reference players, and node with npm to
# install those players (Debian's npm only where no npm is there: NodeSource's nodejs carries its own).
packages=(python3 python3-venv python3-dev build-essential pkg-config librrd-dev rrdtool libmediainfo0v5 nginx-light
          iputils-ping iproute2 curl fonts-dejavu-core chromium mkvtoolnix lighttpd apache2 caddy nodejs
          $(command -v npm >/dev/null || echo npm))
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "quickstart: installing system packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "quickstart: Python 3.11 or newer is needed; $("$python" --version) found" >&2
  exit 1
fi

# Virtual environment with the package and its test tools, reinstalled only when pyproject.toml changes.
if [ ! -x .venv/bin/python ]; then
  echo "quickstart: creating the virtual environment .venv" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.pytomo-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "quickstart: installing Pytomo and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,build]'
  echo "$want" > "$stamp"
fi

# The lab's reference players (dash.js, Shaka Player, hls.js: pytomo/lab/players), from npm at the versions of its
# package-lock.json, reinstalled only when the lock changes; never fetched at run time, never in the executable.
players="pytomo/lab/players"
players_want="$(sha256sum "$players/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$players/node_modules/.pytomo-installed" 2>/dev/null)" != "$players_want" ]; then
  echo "quickstart: installing the lab's reference players into $players/node_modules" >&2
  npm ci --prefix "$players" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  echo "$players_want" > "$players/node_modules/.pytomo-installed"
fi

case "$job" in
  crawl) exec .venv/bin/python start_crawl.py -s lab -b -t all_time -P 50 -D 5 -S 0 -n 3 "$@" ;;
  test)  exec .venv/bin/python -m pytest "$@" ;;
  check) .venv/bin/python -m ruff check pytomo tests bench build
         exec .venv/bin/python -m mypy pytomo ;;
esac
