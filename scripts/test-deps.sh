#!/usr/bin/env bash
# Installs the Debian packages the tests drive, when missing (as root, else
# through sudo): chromium for the browser tests (e2e/matrix_test.go,
# e2e/dashboard_browser_test.go), and podman, runc and podman-compose for
# the container tests (e2e/container_test.go), which build the image and
# run it. `make test` runs it first, so a fresh machine with Go, Node and
# make needs nothing else.
set -euo pipefail
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi
apt_install() { # options and packages
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
updated=
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  "${sudo[@]}" apt-get update -qq && updated=1
  apt_install --no-install-recommends chromium
fi
if ! command -v podman-compose >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  echo "installing Debian's podman, runc and podman-compose for the container tests"
  [ -n "$updated" ] || "${sudo[@]}" apt-get update -qq
  apt_install podman runc podman-compose # with the packages podman recommends for its networks
fi
