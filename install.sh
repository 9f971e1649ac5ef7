#!/usr/bin/env bash
# Builds libtsesim in _build/ and installs it, as the README shows:
#   bash install.sh [PREFIX]      PREFIX defaults to /usr/local
# It never configures in the source tree (that would stop every build in
# _build/, .ci/quickstart's included). It installs as you when you may write
# to PREFIX, as root when you are root, and through sudo otherwise; without
# sudo it says what to run as root. After an install as root it runs
# ldconfig, so that programs find libtsesim.so.0; for a prefix the dynamic
# linker does not search, it prints what to set. The build tools and
# libraries must be there: `bash .ci/quickstart check` installs them.
set -euo pipefail
prefix=${1:-/usr/local}
case "$prefix" in
  /*) ;;
  *) echo "install.sh: PREFIX must be an absolute path, not \"$prefix\"" >&2; exit 2 ;;
esac
src=$(cd "$(dirname "$0")" && pwd)
cd "$src"
if [ -f config.status ]; then
  echo "install.sh: $src was configured in the source tree (config.status is there)," >&2
  echo "  which stops any build in _build/. Run 'make distclean' in $src, then this again." >&2
  exit 1
fi

[ -x configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] || autoreconf -fi
mkdir -p _build
cd _build
if [ ! -f Makefile ]; then
  ../configure --quiet --prefix="$prefix"
elif [ "$(sed -n 's/^prefix = //p' Makefile)" != "$prefix" ]; then
  # libtool writes the library directory into what it links (libtsesim.la,
  # the programs' run path): a build for another prefix is linked again.
  ../configure --quiet --prefix="$prefix"
  make clean >/dev/null
fi
make -j"$(nproc)"

# May we write everywhere make install writes? (The nearest existing parent
# of each directory must be writable.)
may_write() {
  local d
  for d in "$prefix" "$prefix/lib" "$prefix/bin" "$prefix/include" "$prefix/share"; do
    while [ ! -e "$d" ]; do d=$(dirname "$d"); done
    [ -w "$d" ] || return 1
  done
}

as=""
if [ "$(id -u)" -ne 0 ] && ! may_write; then
  if command -v sudo >/dev/null 2>&1; then
    as=sudo
  else
    echo "install.sh: built in $src/_build, but installing to $prefix needs root and there" >&2
    echo "  is no sudo. As root, run:" >&2
    echo "    make -C '$src/_build' install && ldconfig" >&2
    echo "  or install to a prefix of your own: bash '$src/install.sh' \"\$HOME/.local\"" >&2
    exit 1
  fi
fi
$as make install

libdir=$prefix/lib
if [ "$(id -u)" -eq 0 ] || [ "$as" = sudo ]; then
  # libtool only links the library into place; the dynamic linker's cache is
  # ours to update.
  ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
  $as "$ldconfig"
fi
found=$( (/sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null || true) |
  grep -F "=> $libdir/libtsesim.so.0" || true)
echo "install.sh: libtsesim installed to $prefix"
if [ -z "$found" ]; then
  echo "install.sh: the dynamic linker does not search $libdir; before running programs:"
  echo "  export LD_LIBRARY_PATH=\"$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
fi
if ! PKG_CONFIG_PATH= pkg-config --exists thingspace-esim 2>/dev/null ||
  [ "$(PKG_CONFIG_PATH= pkg-config --variable=prefix thingspace-esim 2>/dev/null)" != "$prefix" ]; then
  echo "install.sh: for pkg-config and the simulator:"
  echo "  export PKG_CONFIG_PATH=\"$libdir/pkgconfig\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}\""
  echo "  export PATH=\"$prefix/bin:\$PATH\""
fi
