#!/usr/bin/env bash
# The binding tests: build the library, the `ronde` binary and
# `uniffi-bindgen` from the workspace, generate the Python module (and
# check that Kotlin and Swift generate), then run pytest against a
# `ronde node` process. Nothing is downloaded: the Python side needs only
# the standard library and pytest (Debian's python3-pytest).
#
#   bash crates/ffi/tests/python/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/../../../.."

target="${CARGO_TARGET_DIR:-target}"
profile_dir="$target/debug"
python="${PYTHON:-/usr/bin/python3}"

# The library on its own, as an app builds it: in one command with the
# `ronde` binary, Cargo would unify the node's features and give it QUIC,
# which the phone library leaves out (docs/mobile.md "Transports").
cargo build --locked -p ronde-ffi
cargo build --locked -p ronde -p uniffi-bindgen

lib="$profile_dir/libronde_ffi.so"
out="$target/ffi-bindings"
rm -rf "$out"
for lang in python kotlin swift; do
  "$profile_dir/uniffi-bindgen" generate --no-format --library "$lib" \
    --language "$lang" --out-dir "$out/$lang" >/dev/null
done
test -s "$out/kotlin/uniffi/ronde/ronde.kt"
test -s "$out/swift/ronde.swift"
test -s "$out/swift/rondeFFI.h"
echo "Kotlin and Swift sources generated in $out"
cp "$lib" "$out/python/"

export RONDE_BIN="$profile_dir/ronde"
export RONDE_PY="$out/python"
exec "$python" -m pytest -q -p no:cacheprovider crates/ffi/tests/python "$@"
