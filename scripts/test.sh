#!/usr/bin/env bash
# The whole test suite, as root: what CI runs (.ci/run) and what README tells you to run.
#
#   1. scripts/install-test-deps.sh   system packages and the reference popa3d
#   2. compliance/gen-fixtures.py --check   fixtures and golden/MANIFEST up to date
#   3. cargo fmt --all --check
#   4. cargo clippy --workspace --all-targets -- -D warnings
#   5. cargo test --workspace --all-targets -- --include-ignored
#      (tests that need root and the reference binary are #[ignore]d in a plain
#      `cargo test`; here they run)
#
# The last line printed is cargo test's summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: must run as root: the differential tests run the reference popa3d" >&2
    echo "in a private mount namespace (unshare, mount), and scripts/install-test-deps.sh uses apt-get." >&2
    echo "Without root, run the unprivileged part with: cargo test --workspace" >&2
    exit 1
fi

scripts/install-test-deps.sh
python3 compliance/gen-fixtures.py --check
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The inner halves of tests that re-run themselves in a namespace or child process are
# skipped here: their outer tests run them where they mean something and check them.
cargo test --workspace --all-targets -- --include-ignored \
    --skip inside_namespace:: --skip child_side_of_drop_test
