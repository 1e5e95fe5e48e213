#!/usr/bin/env bash
# The README's test command: runs every test (`cargo test --workspace`, arguments passed on) on a
# fresh machine of this kind without a manual step. It starts the machine's PostgreSQL cluster
# when one is installed but stopped (with none at all, the test harness starts a private cluster
# from the PostgreSQL binaries itself), and installs Debian's chromium and chromium-driver for the
# two browser tests (unless CHROMIUM and CHROMEDRIVER name another pair), gdal-bin for the
# download test and poppler-utils for the printed map when they are missing: as root, or through sudo when it needs no password;
# otherwise it stops at once and prints the one command to run. The sign-in browser test's
# identity provider (oidc-provider, from the npm registry) is installed with `npm ci` into
# tests/support/oidc when it is not there yet; Node.js comes from Debian's nodejs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1 \
    && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    || echo "could not start the PostgreSQL $version cluster; the tests will start a private one"
fi

# Debian packages the tests use as real clients: chromium and chromium-driver (the browser
# tests), gdal-bin (downloads read by GDAL's ogrinfo), poppler-utils (printed pages read by
# pdftotext).
missing=()
if ! { [ -x "${CHROMIUM:-/usr/bin/chromium}" ] && [ -x "${CHROMEDRIVER:-/usr/bin/chromedriver}" ]; }; then
  missing+=(chromium chromium-driver)
fi
command -v ogrinfo >/dev/null 2>&1 || missing+=(gdal-bin)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  else
    echo "the tests need Debian's ${missing[*]}; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]} for the tests (from Debian's archive)"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get install -y "${missing[@]}" \
    || { "${as_root[@]}" apt-get update && "${as_root[@]}" apt-get install -y "${missing[@]}"; }
fi

# The identity provider the sign-in browser test runs: the versions package-lock.json pins.
if [ ! -d tests/support/oidc/node_modules/oidc-provider ]; then
  echo "installing the test identity provider (oidc-provider) into tests/support/oidc"
  npm ci --prefix tests/support/oidc --no-audit --no-fund
fi

exec cargo test --workspace "$@"
