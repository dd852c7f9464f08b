#!/usr/bin/env bash
# The Redis store's tests start their own redis-server (Debian's package) on a free loopback port. This installs the
# package when it is missing and this machine can (root with apt-get); otherwise it says what to install, and those
# tests fail with the same instruction (they never skip).
set -u
command -v redis-server >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "redis-server is missing: installing Debian's package (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } && exit 0
  echo "apt-get could not install redis-server" >&2
  exit 1
fi
echo "redis-server is missing: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)" >&2
echo "to run the Redis store's tests; the rest of the suite does not need it" >&2
exit 0
