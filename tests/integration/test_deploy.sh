#!/usr/bin/env bash
# Offline checks of deploy/ (YAML, kustomize, config files, systemd unit,
# Dockerfile); nothing is built into an image or started. See deploy/check.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash deploy/check.sh "${XS_BIN_DIR:-build/bin}"
