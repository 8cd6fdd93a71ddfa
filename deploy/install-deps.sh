#!/usr/bin/env bash
# Installs the Debian 12 packages xsell needs to build, test and run its demo,
# and the jars of the Apache Kafka broker the tests run against.
# Idempotent: installs only what is missing. Works as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  librdkafka-dev libavro-dev librocksdb-dev libcmocka-dev libxxhash-dev
  libmicrohttpd-dev zlib1g-dev libcurl4-openssl-dev libjansson-dev
  kcat curl unzip python3 python3-confluent-kafka python3-avro
  clang libclang-rt-14-dev clang-format
  python3-yaml
  prometheus
  openjdk-17-jre-headless maven
  chromium nodejs python3-jsonschema
)
# npm: Debian's package, unless node came with its own (NodeSource's nodejs
# ships npm and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The real Kafka broker's jars (tests, `make bench`, `make demo KAFKA=real`):
# resolved by Maven once, then cached (tests/kafka/kafka.sh fetch).
fetch_kafka() {
  [ "${XS_KAFKA_TESTS:-ON}" = OFF ] && return 0
  bash "$(dirname "$0")/../tests/kafka/kafka.sh" fetch >/dev/null
}

# The Schema Registry of test_registry (Apicurio Registry, from Maven Central):
# downloaded once, then cached (tests/registry/registry.sh fetch).
fetch_registry() {
  [ "${XS_REGISTRY_TESTS:-ON}" = OFF ] && return 0
  bash "$(dirname "$0")/../tests/registry/registry.sh" fetch >/dev/null
}

# The browser test's playwright-core (tests/browser/package-lock.json), no
# browser download: the test drives Debian's chromium.
npm_deps() {
  local dir
  dir="$(dirname "$0")/../tests/browser"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     ! cmp -s "$dir/package-lock.json" "$dir/.installed-lock.json"; then
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
     cp package-lock.json .installed-lock.json)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  fetch_kafka
  fetch_registry
  npm_deps
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: missing packages (${missing[*]}) and not root, no sudo" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fetch_kafka
fetch_registry
npm_deps
echo "install-deps: done" >&2
