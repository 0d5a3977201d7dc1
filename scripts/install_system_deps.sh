#!/usr/bin/env bash
# Installs the system libraries polymimic needs for headless MuJoCo rendering (EGL/OSMesa
# through Mesa). Skips the install when the libraries are already present; needs root
# (or sudo) only when something is missing.
#
# --browser also installs Debian's chromium and chromium-driver, which the leaderboard's
# end-to-end browser test drives through Selenium (tests/leaderboard/test_browser.py;
# `make test` passes it). Debian's own driver matches its browser build; a downloaded
# driver or playwright's browser may not, and cannot be fetched on every machine.
set -euo pipefail

browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    *) echo "usage: $0 [--browser]" >&2; exit 2 ;;
  esac
done

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

missing=()
have_lib "libEGL.so.1" || missing+=(libegl1)
have_lib "libGL.so.1" || missing+=(libgl1)
have_lib "libEGL_mesa.so.0" || missing+=(libegl-mesa0)
have_lib "libOSMesa.so" || missing+=(libosmesa6)
# Mesa's software rasteriser (swrast/llvmpipe) lives in the DRI package.
compgen -G "/usr/lib/*/dri/swrast_dri.so" >/dev/null || missing+=(libgl1-mesa-dri)
if [ "$browser" -eq 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "system libraries: present"
  exit 0
fi
echo "installing system libraries: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: need root to apt-get install ${missing[*]} (or install them yourself)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
