#!/usr/bin/env bash
# The test command: installs missing prerequisites, then runs every unit and
# integration test of the workspace (integration tests start their own broker
# and PostgreSQL on free ports).
set -euo pipefail
cd "$(dirname "$0")"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
scripts/install-prereqs.sh
cargo test --workspace --locked "$@"
