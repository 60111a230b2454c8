#!/usr/bin/env bash
# Side-by-side latency against mcp-agent-mail, set up from scratch on a fresh machine:
#   1. bench/.peer-venv: a virtualenv of its own for the peer (its dependency tree, with the 1.x
#      MCP SDK, cannot share .venv, which holds the 2.x SDK our client uses);
#   2. .venv: the official Python MCP SDK 2.x, the one client that drives both servers;
#   3. our release binary;
# then runs bench/compare_peer.py, passing every argument through, e.g.
#   bench/compare_peer.sh --quick
#   bench/compare_peer.sh --iterations 500 --json /tmp/peer.json
# Needs: a Rust toolchain, python3 (3.11+, which mcp-agent-mail requires) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

# The versions the comparison was written and checked against. mcp-agent-mail asks only for
# fastmcp>=2.10.5, which now admits 3.x and 4.x releases that the peer predates; FastMCP is pinned
# too because compare_peer.py starts the peer through FastMCP.run(transport="stdio"), the peer
# itself offering no stdio entry point.
PEER_PACKAGES=('mcp-agent-mail==0.1.0' 'fastmcp==2.13.0.2')

make_venv() {
    if ! python3 -m venv "$1" 2>/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        python3 -m venv "$1"
    fi
}

[ -x .venv/bin/python ] || make_venv .venv
# A no-op, without network, when a matching version is already there.
.venv/bin/pip install --quiet --disable-pip-version-check 'mcp>=2.3,<3'

[ -x bench/.peer-venv/bin/python ] || { echo "==> creating bench/.peer-venv"; make_venv bench/.peer-venv; }
bench/.peer-venv/bin/pip install --quiet --disable-pip-version-check "${PEER_PACKAGES[@]}"

echo "==> cargo build --release --locked"
cargo build --release --locked

.venv/bin/python bench/compare_peer.py "$@"
