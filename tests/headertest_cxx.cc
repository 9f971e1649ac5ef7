// headertest_cxx.cc - the public header from C++11 (extern "C" guards, no
// C-only constructs); the checks are headertest.c's.
#define HEADERTEST_LANG "C++11"
#include "headertest.c"
