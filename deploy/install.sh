#!/usr/bin/env bash
# Install the daemon for the current user on a Raspberry Pi or a laptop (Debian/Ubuntu/Raspberry Pi OS):
# builds .venv (compiles llama.cpp once), writes an example config if there is none, installs and starts
# a systemd user service. Run from the repo root: bash deploy/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
make install
cfg="${XDG_CONFIG_HOME:-$HOME/.config}/assistant/config.toml"
if [ ! -f "$cfg" ]; then
  mkdir -p "$(dirname "$cfg")"
  cp deploy/config.example.toml "$cfg"
  echo "wrote $cfg"
fi
unit="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/assistant.service"
mkdir -p "$(dirname "$unit")"
sed "s#%h/assistant#$repo#" deploy/assistant.service > "$unit"
if command -v systemctl >/dev/null && systemctl --user daemon-reload 2>/dev/null; then
  systemctl --user enable --now assistant
  echo "assistant is running: systemctl --user status assistant; logs: journalctl --user -u assistant"
else
  echo "no systemd user session here; run it by hand: $repo/.venv/bin/assistant serve"
fi
