#!/usr/bin/env bash
# Make sure the local services the tests use are up (this machine kind starts them, but a
# stopped one is restarted here so CI does not depend on the state a session left behind).
set -u
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
# Debian's chromium for the dashboard's browser tests (tests/test_dashboard_browser.py drives
# it with playwright; `playwright install` would download a browser and fails offline).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || true
fi
exit 0
