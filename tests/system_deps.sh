#!/usr/bin/env bash
# System tools the test suite drives: Debian's chromium + chromium-driver (browser tests) and wrk (HTTP load).
# Quiet when all are there; installs the missing ones as root (apt-get update first); otherwise says what to run.
set -euo pipefail

declare -A PACKAGE_OF=([chromium]=chromium [chromedriver]=chromium-driver [wrk]=wrk)
missing=()
for tool in chromium chromedriver wrk; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/system_deps.sh: missing system packages: ${missing[*]}" >&2
    echo "  install them as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing system packages for the tests: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
