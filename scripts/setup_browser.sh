#!/usr/bin/env bash
# Installs the headless browser that scripts/check_book_browser.py drives:
# Debian's chromium package. Used by the `book` group of scripts/test.sh; safe
# to run again (skips when chromium is already installed). Needs root, as CI
# has; otherwise prints what to run and fails.
#
# The check talks to Chromium over the DevTools protocol (the `websockets`
# package pinned in requirements-dev.txt), so no chromedriver is needed.
#
# Pinned where apt allows: CHROMIUM_VERSION below is installed when the
# archive still offers it. Debian replaces chromium in bookworm-security with
# every upstream security release and drops the previous build, so when the
# pinned version has gone the script installs the candidate instead and says
# so (update the pin then: `apt-cache madison chromium`).
set -euo pipefail

CHROMIUM_VERSION=148.0.7778.167-1~deb12u1

say() { printf 'setup_browser: %s\n' "$*"; }

if command -v chromium >/dev/null 2>&1; then
    say "chromium already installed ($(chromium --version 2>/dev/null || echo '?'))"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    say "chromium is missing; as root: apt-get install -y chromium=${CHROMIUM_VERSION}"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# apt's lists may be missing on a fresh container, or stale.
if ! apt-cache madison chromium 2>/dev/null | grep -q .; then
    say "apt-get update"
    apt-get update -qq
fi
if apt-cache madison chromium | awk '{print $3}' | grep -qxF "$CHROMIUM_VERSION"; then
    spec="chromium=${CHROMIUM_VERSION}"
else
    apt-get update -qq
    if apt-cache madison chromium | awk '{print $3}' | grep -qxF "$CHROMIUM_VERSION"; then
        spec="chromium=${CHROMIUM_VERSION}"
    else
        spec=chromium
        say "warning: chromium ${CHROMIUM_VERSION} is no longer in the archive; installing" \
            "$(apt-cache policy chromium | awk '/Candidate/ {print $2}') (update CHROMIUM_VERSION)"
    fi
fi
say "apt-get install ${spec} (about 100 MB)"
# Another apt run on the machine holds the lock for a while: wait for it.
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "$spec" fonts-dejavu-core >/dev/null
say "installed $(chromium --version)"
