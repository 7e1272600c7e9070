#!/usr/bin/env bash
# Debian packages the test suite needs besides Python: jq (sapporo's run script reads its run
# requests with it). `.ci/run` calls this after `apt-get update`; on a developer machine run it once
# as root. Other parts of the project add their own packages to PACKAGES.
set -euo pipefail
# jq: sapporo's run script. beagle bcftools tabix default-jre-headless: the imputation node
# (imputation-node/install-system.sh installs the same on a node deployed on its own).
PACKAGES=(jq beagle bcftools tabix default-jre-headless)
# --bench: also what `make bench` drives load with (wrk, for the gateway's benchmark).
if [ "${1:-}" = "--bench" ]; then PACKAGES+=(wrk); fi
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
