#!/usr/bin/env bash
# Debian packages the test suite needs besides Python: jq (sapporo's run script reads its run
# requests with it). `.ci/run` calls this after `apt-get update`; on a developer machine run it once
# as root. Other parts of the project add their own packages to PACKAGES.
set -euo pipefail
PACKAGES=(jq)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
