#!/usr/bin/env bash
# Installs the real services the test suite talks to, from Debian's packages:
# PostgreSQL (store tests), Prometheus and Alertmanager (alerting and metrics tests),
# Chromium (review page browser test). Idempotent and quick once installed. It never
# fails the build: when it cannot install (no root, no network) it says so, and the
# tests that need a missing service skip with that reason.
set -uo pipefail

packages=(postgresql prometheus prometheus-alertmanager chromium)
binaries=(/usr/lib/postgresql/*/bin/initdb /usr/bin/prometheus /usr/bin/prometheus-alertmanager /usr/bin/chromium)

missing=()
for i in "${!packages[@]}"; do
  # shellcheck disable=SC2086  # the glob in the binary path is wanted
  if ! ls ${binaries[$i]} >/dev/null 2>&1; then missing+=("${packages[$i]}"); fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "services: postgresql, prometheus, alertmanager and chromium are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "services: cannot install ${missing[*]}: not root and no sudo; tests needing them will skip"
    exit 0
  fi
fi
echo "services: installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
# The packages' own daemons must not start (or stay) on the shared machine: the
# tests start private instances on loopback ports of their own.
printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null && $sudo chmod +x /usr/sbin/policy-rc.d
if $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  echo "services: installed ${missing[*]}"
else
  echo "services: apt-get could not install ${missing[*]}; tests needing them will skip"
fi
$sudo rm -f /usr/sbin/policy-rc.d
exit 0
