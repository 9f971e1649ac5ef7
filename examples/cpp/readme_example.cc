#include <tsesim.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

struct Free {  // each handle's deleter is the library's own free function
  void operator()(tsesim_client *p) const noexcept { tsesim_client_free(p); }
  void operator()(tsesim_request *p) const noexcept { tsesim_request_free(p); }
  void operator()(tsesim_rows *p) const noexcept { tsesim_rows_free(p); }
  void operator()(tsesim_journal *p) const noexcept { tsesim_journal_close(p); }
  void operator()(tsesim_listener *p) const noexcept { tsesim_listener_stop(p); }
};
template <class T>
using Handle = std::unique_ptr<T, Free>;

struct Global {  // tsesim_global_init for as long as main runs
  Global() {
    if (tsesim_global_init() != TSESIM_OK) throw std::runtime_error("tsesim_global_init");
  }
  ~Global() { tsesim_global_cleanup(); }
};

void check(tsesim_code rc, const std::string &what, const char *why) {
  if (rc != TSESIM_OK) throw std::runtime_error(what + ": " + tsesim_code_name(rc) + ": " + why);
}

// Calls create(&p) and returns p owned; on failure throws with the reason.
template <class T, class Create>
Handle<T> make(Create create, const std::string &what, const char *why) {
  T *p = nullptr;
  check(create(&p), what, why);
  return Handle<T>(p);
}

extern "C" {
// On the listener's writer thread, after the commit: an exception must never
// leave a hook, so it is caught here.
static void on_callback(const tsesim_callback *, const tsesim_callback_result *r, void *) noexcept {
  try {
    if (!r->repeat && r->job) std::cout << "callback line " << r->line << ' ' << r->state << '\n';
  } catch (...) {
  }
}
}

int main(int argc, char **argv) {
  if (argc != 4) {
    std::cerr << "usage: readme_example BASE_URL DEVICES.csv JOURNAL\n";
    return 2;
  }
  const char *account = "0000123456-00001", *job = "readme";
  char err[TSESIM_ERRBUF_SIZE] = "";
  try {
    Global global;  // declared first: cleaned up after every handle
    auto req = make<tsesim_request>(
        [&](auto **p) { return tsesim_request_new_v2(p, account, err); }, "request", err);
    auto rows = make<tsesim_rows>(
        [&](auto **p) { return tsesim_rows_read_csv(p, req.get(), argv[2], err); }, argv[2], err);
    auto journal = make<tsesim_journal>(
        [&](auto **p) { return tsesim_journal_open(p, argv[3], err); }, argv[3], err);

    tsesim_listener_options lo = TSESIM_LISTENER_OPTIONS_INIT;  // never {}: version 0
    lo.journal = argv[3];  // each callback is committed there before its 200
    lo.username = "listener", lo.password = "listener-secret";
    lo.on_callback = on_callback;
    auto listener = make<tsesim_listener>(
        [&](auto **p) { return tsesim_listener_start(p, &lo, err); }, "listener", err);
    std::string url =
        "http://127.0.0.1:" + std::to_string(tsesim_listener_port(listener.get())) + "/callbacks";

    tsesim_options o = TSESIM_OPTIONS_INIT;
    o.base_url = argv[1];
    o.client_id = "sim-key", o.client_secret = "sim-secret";  // OAuth
    o.username = "sim-user", o.password = "sim-pass";         // M2M session
    auto client = make<tsesim_client>([&](auto **p) { return tsesim_client_new_v2(p, &o, err); },
                                      "client", err);
    tsesim_code rc = tsesim_client_register_callback(client.get(), account, nullptr, url.c_str(),
                                                     lo.username, lo.password);
    check(rc, "register", tsesim_client_errmsg(client.get()));  // errmsg: after the call

    tsesim_job_options jo = TSESIM_JOB_OPTIONS_INIT;
    jo.rows = rows.get();  // every row recorded with its line
    rc = tsesim_job_submit(client.get(), journal.get(), job, req.get(), &jo);
    if (rc != TSESIM_E_UNKNOWN_OUTCOME)  // that one the callbacks resolve: wait
      check(rc, "submit", tsesim_client_errmsg(client.get()));
    tsesim_job_counts c{};
    rc = tsesim_job_wait(journal.get(), job, 60000, &c);
    listener.reset();  // drains and joins its threads: no on_callback after this
    std::cout << "devices " << c.devices << " success " << c.success << " failed " << c.failed
              << " invalid " << c.invalid << '\n';
    return rc == TSESIM_OK ? 0 : 1;
  } catch (const std::exception &e) {
    std::cerr << "readme_example: " << e.what() << '\n';
    return 1;
  }
}
