#!/usr/bin/env bash
# The Debian packages the imputation node runs: Beagle 5.4 (and Java), bcftools, tabix/bgzip,
# jq (sapporo's run script reads run requests with it). Installs only what is missing (as root,
# after `apt-get update`); with --check, only says whether anything is missing (exit 1 if so).
set -euo pipefail
needed=()
command -v java >/dev/null || needed+=(default-jre-headless)
[[ -f /usr/share/beagle/beagle.jar ]] || needed+=(beagle)
command -v bcftools >/dev/null || needed+=(bcftools)
{ command -v tabix >/dev/null && command -v bgzip >/dev/null; } || needed+=(tabix)
command -v jq >/dev/null || needed+=(jq)
if [[ "${1:-}" == "--check" ]]; then
  ((${#needed[@]} == 0)) || { echo "imputation-node: missing Debian packages: ${needed[*]}"; exit 1; }
  exit 0
fi
if ((${#needed[@]})); then
  echo "imputation-node: installing ${needed[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${needed[@]}"
fi
