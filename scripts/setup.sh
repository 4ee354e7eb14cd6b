# Sourced by the scripts beside it: makes sure the Debian 12 packages the build needs are
# installed (installs them when run as root, else prints the apt command and stops), then
# configures a build folder. Usage: source scripts/setup.sh; modelpool_configure DIR [cmake args]
set -euo pipefail

MODELPOOL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODELPOOL_PACKAGES=(cmake ninja-build g++ pkg-config libtorch-dev libabsl-dev libfmt-dev catch2
                    libbenchmark-dev nlohmann-json3-dev libutf8proc-dev libsentencepiece-dev
                    prometheus-cpp-dev libcpp-httplib-dev python3 python3-prometheus-client)

# modelpool_require_packages PKG...: installs whichever of PKG... are missing.
modelpool_require_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "modelpool needs these Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# modelpool_configure DIR [cmake args...]: a Release build folder with Ninja.
modelpool_configure() {
  local dir=$1
  shift
  local launcher=()
  # Rebuilds after a change are much quicker through ccache, where it is installed.
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # MODELPOOL_WERROR=ON (as CI sets it) makes warnings in modelpool's own code errors.
  cmake -S "$MODELPOOL_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
    -DMODELPOOL_WERROR="${MODELPOOL_WERROR:-OFF}" "$@" >/dev/null
}

modelpool_require_packages "${MODELPOOL_PACKAGES[@]}"
