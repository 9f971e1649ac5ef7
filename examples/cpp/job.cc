// job.cc - a whole job from C++17: read a device file, start the library's
// callback listener, register it, submit the devices as a job, wait until
// every device is final, print each row and the counts.
//
//   job [--journal DB] [--throw-in-hook] BASE_URL DEVICES.csv [timeout-seconds]
//
// What it shows, for C++ code around the C API (libtsesim(7), C++):
// - every handle lives in a std::unique_ptr whose deleter is the library's
//   free function (tsesim_client_free, tsesim_request_free, tsesim_rows_free,
//   tsesim_journal_close, tsesim_listener_stop), and so does every string the
//   library returns (tsesim_free): an exception or an early return frees it;
// - a guard object holds tsesim_global_init/tsesim_global_cleanup for main;
// - the options are initialised with TSESIM_OPTIONS_INIT and its job and
//   listener equivalents, never with {} (which gives version 0: refused);
// - no exception ever crosses into C: every hook (log_fn, progress_fn,
//   stop_fn, on_callback, device_fn) runs its body through Hooks::run, which
//   catches everything and keeps the first exception; main rethrows it once
//   the C call is over. --throw-in-hook makes on_callback throw on its first
//   call, to show that: the job still ends (every callback is committed and
//   answered), and the exception is reported after it, with exit status 1.
//
// Credentials come from the environment, as for the other examples and the
// tsesim command: TSESIM_CLIENT_ID, TSESIM_CLIENT_SECRET, TSESIM_USERNAME and
// TSESIM_PASSWORD (default: the local simulator's); the listener's from
// TSESIM_LISTENER_USERNAME and TSESIM_LISTENER_PASSWORD, kept in the journal
// the first time so that a resumed job uses what ThingSpace was given.
// The listener binds 127.0.0.1 on a free port, for a local tsesim-sim;
// against ThingSpace it must be public HTTPS (tls_cert_file, tls_key_file,
// or plain HTTP behind a reverse proxy that ends TLS).
// Exit status: 0 when every valid device is final, 1 otherwise, 2 usage.
#include <tsesim.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

constexpr const char *kAccount = "0000123456-00001";
constexpr const char *kJob = "cpp-job";

// ---- handles: one deleter for every type the library hands out ----
struct Free {
  void operator()(tsesim_client *p) const noexcept { tsesim_client_free(p); }
  void operator()(tsesim_request *p) const noexcept { tsesim_request_free(p); }
  void operator()(tsesim_rows *p) const noexcept { tsesim_rows_free(p); }
  void operator()(tsesim_journal *p) const noexcept { tsesim_journal_close(p); }
  void operator()(tsesim_listener *p) const noexcept { tsesim_listener_stop(p); }
  void operator()(char *p) const noexcept { tsesim_free(p); }  // strings the library returns
};
template <class T>
using Handle = std::unique_ptr<T, Free>;

// tsesim_global_init for the life of main: after every handle is gone (it
// is declared first, so it is destroyed last).
class GlobalInit {
 public:
  GlobalInit() {
    if (tsesim_global_init() != TSESIM_OK) throw std::runtime_error("tsesim_global_init failed");
  }
  ~GlobalInit() { tsesim_global_cleanup(); }
  GlobalInit(const GlobalInit &) = delete;
  GlobalInit &operator=(const GlobalInit &) = delete;
};

// A failed call, with its code's name and the library's reason.
class Error : public std::runtime_error {
 public:
  Error(tsesim_code code, const std::string &what)
      : std::runtime_error(what + ": " + tsesim_code_name(code)), code_(code) {}
  tsesim_code code() const noexcept { return code_; }

 private:
  tsesim_code code_;
};

void check(tsesim_code rc, std::string_view what, const char *why) {
  if (rc != TSESIM_OK)
    throw Error(rc, std::string(what) + (why && *why ? std::string(": ") + why : ""));
}

// ---- hooks: nothing thrown in one may leave it, since C cannot unwind ----
class Hooks {
 public:
  // Runs body; an exception is caught here, kept (the first one) and never
  // propagates into the library. The listener's hooks run on its threads,
  // so this is thread-safe.
  template <class F>
  void run(const char *hook, F &&body) noexcept {
    try {
      body();
    } catch (...) {
      keep(hook, std::current_exception());
    }
  }
  // After a C call has returned: throws what a hook threw, if anything.
  void rethrow() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (first_) {
      std::exception_ptr e = first_;
      first_ = nullptr;
      std::rethrow_exception(e);
    }
  }
  const std::string &hook() const { return hook_; }

 private:
  void keep(const char *hook, std::exception_ptr e) noexcept {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = e, hook_ = hook;
    } catch (...) {  // a failed lock or string copy: nothing more can be kept
    }
  }
  std::mutex mutex_;
  std::exception_ptr first_;
  std::string hook_;
};

// What the hooks of each side share, passed as their payload: the calling
// thread's (log_fn of the client, progress_fn, device_fn) and the
// listener's (its log_fn, on_callback), whose exceptions are reported once
// it has stopped.
struct Caller {
  Hooks hooks;
  std::ostringstream table;  // device_fn writes here: one line per row
};
struct Served {
  Hooks hooks;
  bool throw_once = false;
  std::atomic<unsigned long> callbacks{0}, warnings{0};
};

std::atomic<bool> stop_requested{false};  // lock-free: set from a signal handler
static_assert(std::atomic<bool>::is_always_lock_free, "a signal handler may set it");

const char *env_or(const char *name, const char *fallback) {
  const char *v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

// The hooks have C language linkage, as the library's function pointer types
// do (static keeps their names in this file), and are noexcept: should an
// exception ever escape Hooks::run, std::terminate would stop the process
// at the hook rather than unwind through the library's C frames.
extern "C" {

static void on_signal(int) noexcept { stop_requested = true; }

// log_fn: inside the client's calls on the calling thread, or on the
// listener's threads (several at once: std::clog is safe for that).
static void log_line(int level, const char *line, void *payload) noexcept {
  auto *hooks = static_cast<Hooks *>(payload);
  hooks->run("log_fn", [&] { std::clog << "tsesim[" << level << "] " << line << '\n'; });
}

// progress_fn: inside tsesim_job_submit, on the calling thread.
static void progress(const tsesim_job_progress *p, void *payload) noexcept {
  auto *caller = static_cast<Caller *>(payload);
  caller->hooks.run("progress_fn", [&] {
    if (p->chunk < 0) return;  // the once-a-second report
    std::cout << "chunk " << p->chunk << ' ' << p->state;
    if (p->request_id) std::cout << " requestId " << p->request_id;
    if (p->error) std::cout << ": " << p->error;
    std::cout << '\n';
  });
}

// stop_fn: inside tsesim_job_submit; SIGINT stops the job between chunks.
static int stop(void *payload) noexcept {
  (void)payload;
  return stop_requested ? 1 : 0;
}

// on_callback: on the listener's writer thread, after the callback is
// committed to the journal and before it is answered.
static void on_callback(const tsesim_callback *cb, const tsesim_callback_result *r,
                        void *payload) noexcept {
  auto *served = static_cast<Served *>(payload);
  served->hooks.run("on_callback", [&] {
    if (r->repeat) return;
    if (served->callbacks++ == 0 && served->throw_once)
      throw std::runtime_error(std::string("thrown for request ") + cb->request_id);
    if (cb->status_code == TSESIM_STATUS_WARNING) served->warnings++;
  });
}

// device_fn: inside tsesim_job_devices, once per row; non-zero stops it.
static int print_device(const tsesim_device_status *d, void *payload) noexcept {
  auto *caller = static_cast<Caller *>(payload);
  int stop_here = 1;
  caller->hooks.run("device_fn", [&] {
    auto cell = [](const char *s) { return s ? s : "-"; };
    caller->table << d->line << ' ' << cell(d->eid) << ' ' << d->state << ' ' << cell(d->status)
                  << ' ' << d->callbacks;
    if (const char *note = d->fault ? d->fault : d->error) caller->table << ' ' << note;
    caller->table << '\n';
    stop_here = 0;
  });
  return stop_here;
}

}  // extern "C"

namespace {

// The listener credentials the journal keeps: a resumed job must use what
// ThingSpace was registered with. The first run keeps the environment's.
std::string kept_setting(tsesim_journal *journal, const char *key, const char *value) {
  Handle<char> kept;
  {
    char *p = nullptr;  // a copy: freed with tsesim_free
    tsesim_code rc = tsesim_journal_get(journal, key, &p);
    kept.reset(p);
    check(rc, key, tsesim_journal_errmsg(journal));  // errmsg: read after the call
  }
  if (kept) return kept.get();
  tsesim_code rc = tsesim_journal_set(journal, key, value);
  check(rc, key, tsesim_journal_errmsg(journal));
  return value;
}

int run(int argc, char **argv) {
  std::string journal_path = "job.journal";
  Caller caller;
  Served served;
  int a = 1;
  for (; a < argc && std::strncmp(argv[a], "--", 2) == 0; a++) {
    if (std::strcmp(argv[a], "--journal") == 0 && a + 1 < argc)
      journal_path = argv[++a];
    else if (std::strcmp(argv[a], "--throw-in-hook") == 0)
      served.throw_once = true;
    else
      break;
  }
  if (argc - a < 2 || argc - a > 3) {
    std::cerr << "usage: " << argv[0]
              << " [--journal DB] [--throw-in-hook] BASE_URL DEVICES.csv [timeout-seconds]\n";
    return 2;
  }
  const char *base_url = argv[a], *devices = argv[a + 1];
  const long timeout_s = argc - a > 2 ? std::atol(argv[a + 2]) : 60;
  char err[TSESIM_ERRBUF_SIZE] = "";

  GlobalInit global;  // first: destroyed after every handle below
  std::signal(SIGINT, on_signal);

  // 1. The devices: every valid row goes into the request, and the rows
  // keep the rejected ones with their reason (declared after req: the rows
  // read their cells from it, so they are freed first).
  Handle<tsesim_request> req;
  {
    tsesim_request *p = nullptr;
    check(tsesim_request_new_v2(&p, kAccount, err), "request", err);
    req.reset(p);
  }
  Handle<tsesim_rows> rows;
  {
    tsesim_rows *p = nullptr;
    check(tsesim_rows_read_csv(&p, req.get(), devices, err), devices, err);
    rows.reset(p);
  }
  for (std::size_t i = 0; i < tsesim_rows_count(rows.get()); i++) {
    const tsesim_row *row = tsesim_rows_get(rows.get(), i);
    if (row->error) std::cerr << devices << ':' << row->line << ": " << row->error << '\n';
  }

  // 2. The journal: the job's chunks and every callback are kept there.
  Handle<tsesim_journal> journal;
  {
    tsesim_journal *p = nullptr;
    check(tsesim_journal_open(&p, journal_path.c_str(), err), journal_path, err);
    journal.reset(p);
  }
  const std::string listener_user = kept_setting(journal.get(), "app.listener.username",
                                                 env_or("TSESIM_LISTENER_USERNAME", "listener"));
  const std::string listener_pass =
      kept_setting(journal.get(), "app.listener.password",
                   env_or("TSESIM_LISTENER_PASSWORD", "listener-secret"));

  // 3. The listener: it opens the journal file for itself and commits each
  // callback there before it answers 200.
  tsesim_listener_options lo = TSESIM_LISTENER_OPTIONS_INIT;
  lo.journal = journal_path.c_str();
  lo.username = listener_user.c_str();
  lo.password = listener_pass.c_str();
  lo.on_callback = on_callback;
  lo.callback_payload = &served;
  lo.log_fn = log_line;
  lo.log_payload = &served.hooks;
  lo.log_level = 0;  // errors only
  Handle<tsesim_listener> listener;
  {
    tsesim_listener *p = nullptr;
    check(tsesim_listener_start(&p, &lo, err), "listener", err);
    listener.reset(p);
  }
  const std::string url =
      "http://127.0.0.1:" + std::to_string(tsesim_listener_port(listener.get())) + "/callbacks";

  // 4. The client: register the listener, then submit the job (chunks of
  // 10,000 devices, 4 at once).
  tsesim_options o = TSESIM_OPTIONS_INIT;  // never {}: version 0 is refused
  o.base_url = base_url;
  o.client_id = env_or("TSESIM_CLIENT_ID", "sim-key");
  o.client_secret = env_or("TSESIM_CLIENT_SECRET", "sim-secret");
  o.username = env_or("TSESIM_USERNAME", "sim-user");
  o.password = env_or("TSESIM_PASSWORD", "sim-pass");
  o.user_agent = "cpp-job-example";
  o.log_fn = log_line;
  o.log_payload = &caller.hooks;
  o.log_level = 1;  // errors and warnings
  Handle<tsesim_client> client;
  {
    tsesim_client *p = nullptr;
    check(tsesim_client_new_v2(&p, &o, err), "client", err);
    client.reset(p);
  }
  tsesim_code rc = tsesim_client_register_callback(client.get(), kAccount, nullptr, url.c_str(),
                                                   listener_user.c_str(), listener_pass.c_str());
  caller.hooks.rethrow();  // what log_fn threw inside that call, if anything
  check(rc, "register " + url, tsesim_client_errmsg(client.get()));
  std::cout << "listener " << url << " registered\n";

  tsesim_job_options jo = TSESIM_JOB_OPTIONS_INIT;
  jo.rows = rows.get();
  jo.progress_fn = progress;
  jo.progress_payload = &caller;
  jo.stop_fn = stop;
  rc = tsesim_job_submit(client.get(), journal.get(), kJob, req.get(), &jo);
  caller.hooks.rethrow();
  switch (rc) {
    case TSESIM_OK:
      break;
    case TSESIM_E_UNKNOWN_OUTCOME:  // never resent blindly: its callbacks may resolve it
    case TSESIM_E_API:              // a chunk was refused; the others go on
      std::cerr << "job: submit: " << tsesim_code_name(rc) << ": "
                << tsesim_client_errmsg(client.get()) << '\n';
      break;
    default:  // run it again later: it sends only what certainly was not acted on
      check(rc, "submit", tsesim_client_errmsg(client.get()));
  }
  std::cout << "job " << kJob << " submitted: " << tsesim_request_device_count(req.get())
            << " devices\n";

  // 5. Wait until every device is final. Then stop the listener: it drains
  // (every callback answered 200 is in the journal, on_callback has run for
  // each) and joins its threads, so served is read without a race.
  tsesim_job_counts c{};
  const tsesim_code waited = tsesim_job_wait(journal.get(), kJob, timeout_s * 1000L, &c);
  if (waited != TSESIM_E_TIMEOUT) check(waited, "wait", tsesim_journal_errmsg(journal.get()));
  (void)tsesim_client_unregister_callback(client.get(), kAccount, nullptr);
  listener.reset();
  rc = tsesim_job_devices(journal.get(), kJob, print_device, &caller);
  caller.hooks.rethrow();
  check(rc, "devices", tsesim_journal_errmsg(journal.get()));
  std::cout << caller.table.str();
  std::cout << "on_callback " << served.callbacks.load() << " callbacks, " << served.warnings.load()
            << " Warning\n";
  std::cout << "devices " << c.devices << " success " << c.success << " failed " << c.failed
            << " unknown " << c.unknown << " refused " << c.refused << " pending "
            << c.queued + c.submitted + c.warning << " invalid " << c.invalid << '\n';
  try {
    served.hooks.rethrow();  // it ran on the listener's threads: reported now
  } catch (const std::exception &e) {
    std::cerr << "job: " << served.hooks.hook() << " threw: " << e.what() << '\n';
    return 1;
  }
  return waited == TSESIM_OK && c.devices == c.success + c.failed + c.invalid ? 0 : 1;
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception &e) {
    std::cerr << "job: " << e.what() << '\n';
    return 1;
  }
}
