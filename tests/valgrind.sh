#!/bin/sh
# LOG_COMPILER for make check-valgrind: runs a test program under valgrind,
# failing on any error or leak. libtool's execute mode looks through the
# wrapper scripts of programs linked with the uninstalled shared library.
exec "${top_builddir:-.}/libtool" --mode=execute valgrind --quiet --child-silent-after-fork=yes --leak-check=full \
  --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 "$@"
