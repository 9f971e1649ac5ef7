# ---- fuzz targets (fuzz/README): libFuzzer with clang ----
# Never part of all, check or distcheck. make fuzz builds the targets into
# the build directory's fuzz/; make fuzz-smoke runs each for FUZZ_SECONDS
# from its seed corpus through fuzz/run.sh, the script CI and people use.
fuzz_names = callback_parse response_parse api_error_parse id_validate builder \
	reader_csv
fuzz_names += listener
fuzz_names += batch
fuzz_programs = fuzz/fuzz_callback_parse$(EXEEXT) fuzz/fuzz_response_parse$(EXEEXT) \
	fuzz/fuzz_api_error_parse$(EXEEXT) fuzz/fuzz_id_validate$(EXEEXT) fuzz/fuzz_builder$(EXEEXT) \
	fuzz/fuzz_reader_csv$(EXEEXT)
fuzz_programs += fuzz/fuzz_listener$(EXEEXT)
fuzz_programs += fuzz/fuzz_batch$(EXEEXT)
# The library's sources that the parsers and the builder need (not the
# client: no curl), compiled again by clang with the fuzzer's instrumentation
# and the sanitizers, never the objects gcc built for libtool.
fuzz_lib_sources = lib/alloc.c lib/error.c lib/version.c lib/ids.c lib/text.c \
	lib/builder.c lib/serialize.c lib/json_load.c lib/parse_response.c \
	lib/parse_error.c lib/parse_callback.c lib/secret.c \
	lib/reader_csv.c
# The listener's judging and the journal it stores into (SQLite: only
# fuzz_listener links it; the archive gives the others no journal object).
fuzz_lib_sources += lib/listener_http.c lib/journal.c lib/tracker.c
fuzz_deps = fuzz/libtsesim_fuzz.a $(top_srcdir)/fuzz/fuzz_ids.h $(top_srcdir)/include/tsesim.h
FUZZ_SECONDS = 60
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Wall -Wextra
fuzz_cc = $(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_srcdir)/include -I$(top_srcdir)/lib $(JANSSON_CFLAGS) \
	$(SQLITE_CFLAGS)
fuzz_link_hint = { echo "make fuzz: linking $@ failed; libFuzzer's runtime comes with clang's \
compiler-rt (Debian 12: apt-get install libclang-rt-14-dev)" >&2; exit 1; }

fuzz/libtsesim_fuzz.a: $(fuzz_lib_sources) $(top_srcdir)/lib/tsesim_int.h $(top_srcdir)/include/tsesim.h
	@if test -z '$(FUZZ_CC)'; then \
	  echo "make fuzz: configure found no clang, which the fuzz targets need (libFuzzer):" >&2; \
	  echo "  install clang (Debian 12: apt-get install clang libclang-rt-14-dev) and run" >&2; \
	  echo "  configure again, or give its path: make fuzz FUZZ_CC=/path/to/clang" >&2; \
	  exit 1; \
	fi
	$(AM_V_at)rm -rf fuzz/obj && $(MKDIR_P) fuzz/obj
	$(AM_V_GEN)for s in $(fuzz_lib_sources); do \
	  o=fuzz/obj/`basename $$s .c`.o; \
	  $(fuzz_cc) -c -o $$o $(top_srcdir)/$$s || exit 1; \
	done
	$(AM_V_at)rm -f $@ && $(AR) cr $@ fuzz/obj/*.o

fuzz/fuzz_callback_parse$(EXEEXT): $(top_srcdir)/fuzz/fuzz_callback_parse.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_callback_parse.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) || $(fuzz_link_hint)
fuzz/fuzz_response_parse$(EXEEXT): $(top_srcdir)/fuzz/fuzz_response_parse.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_response_parse.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) || $(fuzz_link_hint)
fuzz/fuzz_api_error_parse$(EXEEXT): $(top_srcdir)/fuzz/fuzz_api_error_parse.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_api_error_parse.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) || $(fuzz_link_hint)
fuzz/fuzz_id_validate$(EXEEXT): $(top_srcdir)/fuzz/fuzz_id_validate.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_id_validate.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) || $(fuzz_link_hint)
fuzz/fuzz_builder$(EXEEXT): $(top_srcdir)/fuzz/fuzz_builder.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_builder.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) || $(fuzz_link_hint)
fuzz/fuzz_reader_csv$(EXEEXT): $(top_srcdir)/fuzz/fuzz_reader_csv.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_reader_csv.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) || $(fuzz_link_hint)
fuzz/fuzz_listener$(EXEEXT): $(top_srcdir)/fuzz/fuzz_listener.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_listener.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) $(SQLITE_LIBS) || $(fuzz_link_hint)

fuzz/fuzz_batch$(EXEEXT): $(top_srcdir)/fuzz/fuzz_batch.c $(fuzz_deps)
	$(AM_V_CCLD)$(fuzz_cc) -o $@ $(top_srcdir)/fuzz/fuzz_batch.c \
	  fuzz/libtsesim_fuzz.a $(JANSSON_LIBS) || $(fuzz_link_hint)

fuzz: $(fuzz_programs)

# Every target for FUZZ_SECONDS from a scratch copy of its seed corpus
# (fuzz/work/ here; the source tree is never written), all of them even
# when one fails; fails on any crash, leak, sanitizer report or timeout.
fuzz-smoke: fuzz
	@failed=""; \
	for t in $(fuzz_names); do \
	  $(SHELL) $(top_srcdir)/fuzz/run.sh fuzz/fuzz_$$t$(EXEEXT) $(FUZZ_SECONDS) || failed="$$failed $$t"; \
	done; \
	if test -n "$$failed"; then echo "fuzz-smoke: FAILED:$$failed" >&2; exit 1; fi; \
	echo "fuzz-smoke: every target ran $(FUZZ_SECONDS) s without a finding"

clean-local: clean-fuzz
clean-fuzz:
	-rm -rf $(fuzz_programs) fuzz/libtsesim_fuzz.a fuzz/obj fuzz/work
.PHONY: fuzz fuzz-smoke clean-fuzz

EXTRA_DIST += fuzz/README fuzz/run.sh fuzz/json.dict fuzz/fuzz_ids.h \
	fuzz/fuzz_callback_parse.c fuzz/fuzz_response_parse.c fuzz/fuzz_api_error_parse.c \
	fuzz/fuzz_id_validate.c fuzz/fuzz_builder.c fuzz/corpus \
	fuzz/fuzz_reader_csv.c
EXTRA_DIST += fuzz/fuzz_listener.c
EXTRA_DIST += fuzz/fuzz_batch.c
