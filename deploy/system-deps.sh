#!/usr/bin/env bash
# Debian packages the daemon and its tests use: espeak-ng (text-to-speech), chromium (browser tests),
# libportaudio2 (microphone), shellcheck and systemd (tests/operations/test_deploy.py: shellcheck on deploy/*.sh,
# systemd-analyze verify on the unit). Idempotent: installs only what is missing, and only as root with apt-get;
# otherwise it prints what to install and carries on (the tests that need a package skip with a reason).
set -u
PKGS=(espeak-ng chromium libportaudio2 sox tmux shellcheck systemd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >/tmp/assistant-apt.log 2>&1 \
    || echo "warning: apt-get install failed (see /tmp/assistant-apt.log); tests needing ${missing[*]} will skip"
else
  echo "note: missing system packages ${missing[*]} (sudo apt-get install ${missing[*]}); tests needing them skip"
fi
exit 0
