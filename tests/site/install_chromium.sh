#!/usr/bin/env bash
# Debian's chromium for the website's browser tests (`make test-site`), installed when missing.
# Playwright drives it (tests/site/conftest.py); Playwright's own browser download needs a
# network this project's machines do not have, and Debian's package registry is reachable.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
else
    SUDO="sudo"
fi
echo "installing Debian's chromium for the website's browser tests"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: one font family for the screenshots, whatever else the machine has.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version
