/*
 * py_layout.c - prints the size, and every field's offset and size, of each C struct that
 * the Python package mirrors with ctypes (bindings/python/tsesim,
 * _native.MIRRORED), one line per struct:
 *
 *   tsesim_device_id 24 kind=0:4 id=8:8 kind_name=16:8
 *
 * bindings/python/tests/test_layout.py compares each line with the ctypes
 * class: a size, a field, an offset, a field's width (which padding may
 * hide from the offsets) or a struct that differs fails it. A
 * struct added to the package's mirrors gets a line here, and a field
 * appended to a mirrored struct gets its name here, or the test fails.
 * Built against the installed header alone, as an application would be.
 */
#include <stddef.h>
#include <stdio.h>

#include "tsesim.h"

#define BEGIN(s) printf("%s %lu", #s, (unsigned long)sizeof(s))
#define FIELD(s, f) \
  printf(" %s=%lu:%lu", #f, (unsigned long)offsetof(s, f), (unsigned long)sizeof(((s *)0)->f))
#define END() putchar('\n')

int main(void) {
  BEGIN(tsesim_device_id);
  FIELD(tsesim_device_id, kind);
  FIELD(tsesim_device_id, id);
  FIELD(tsesim_device_id, kind_name);
  END();

  BEGIN(tsesim_api_error);
  FIELD(tsesim_api_error, http_status);
  FIELD(tsesim_api_error, code);
  FIELD(tsesim_api_error, message);
  FIELD(tsesim_api_error, description);
  FIELD(tsesim_api_error, body);
  FIELD(tsesim_api_error, retry_after);
  END();

  BEGIN(tsesim_options);
  FIELD(tsesim_options, version);
  FIELD(tsesim_options, base_url);
  FIELD(tsesim_options, client_id);
  FIELD(tsesim_options, client_secret);
  FIELD(tsesim_options, access_token);
  FIELD(tsesim_options, username);
  FIELD(tsesim_options, password);
  FIELD(tsesim_options, session_token);
  FIELD(tsesim_options, log_fn);
  FIELD(tsesim_options, log_payload);
  FIELD(tsesim_options, log_level);
  FIELD(tsesim_options, connect_timeout_ms);
  FIELD(tsesim_options, timeout_ms);
  FIELD(tsesim_options, ca_file);
  FIELD(tsesim_options, ca_path);
  FIELD(tsesim_options, proxy);
  FIELD(tsesim_options, user_agent);
  FIELD(tsesim_options, max_attempts);
  FIELD(tsesim_options, backoff_base_ms);
  FIELD(tsesim_options, backoff_cap_ms);
  FIELD(tsesim_options, max_response_bytes);
  FIELD(tsesim_options, insecure_plain_http_any_host);
  FIELD(tsesim_options, token_fn);
  FIELD(tsesim_options, token_payload);
  FIELD(tsesim_options, clock_fn);
  FIELD(tsesim_options, sleep_fn);
  FIELD(tsesim_options, time_payload);
  END();

  BEGIN(tsesim_profile_response);
  FIELD(tsesim_profile_response, ids);
  FIELD(tsesim_profile_response, n_ids);
  FIELD(tsesim_profile_response, state);
  FIELD(tsesim_profile_response, profile_status);
  FIELD(tsesim_profile_response, profile_role);
  FIELD(tsesim_profile_response, role);
  END();

  BEGIN(tsesim_callback);
  FIELD(tsesim_callback, request_id);
  FIELD(tsesim_callback, device_ids);
  FIELD(tsesim_callback, n_device_ids);
  FIELD(tsesim_callback, profile);
  FIELD(tsesim_callback, status);
  FIELD(tsesim_callback, status_code);
  FIELD(tsesim_callback, callback_count);
  FIELD(tsesim_callback, max_callback_threshold);
  FIELD(tsesim_callback, fault_code);
  FIELD(tsesim_callback, fault_string);
  FIELD(tsesim_callback, username);
  FIELD(tsesim_callback, password);
  END();

  /* ---- jobs, journal, listener (pyjobs) ---- */
  BEGIN(tsesim_row);
  FIELD(tsesim_row, line);
  FIELD(tsesim_row, eid);
  FIELD(tsesim_row, iccid);
  FIELD(tsesim_row, imei);
  FIELD(tsesim_row, error);
  FIELD(tsesim_row, device);
  END();

  BEGIN(tsesim_job_progress);
  FIELD(tsesim_job_progress, devices);
  FIELD(tsesim_job_progress, queued);
  FIELD(tsesim_job_progress, sending);
  FIELD(tsesim_job_progress, accepted);
  FIELD(tsesim_job_progress, unknown);
  FIELD(tsesim_job_progress, refused);
  FIELD(tsesim_job_progress, chunks);
  FIELD(tsesim_job_progress, chunks_done);
  FIELD(tsesim_job_progress, bytes);
  FIELD(tsesim_job_progress, chunk);
  FIELD(tsesim_job_progress, state);
  FIELD(tsesim_job_progress, request_id);
  FIELD(tsesim_job_progress, error);
  END();

  BEGIN(tsesim_job_options);
  FIELD(tsesim_job_options, version);
  FIELD(tsesim_job_options, chunk_size);
  FIELD(tsesim_job_options, in_flight);
  FIELD(tsesim_job_options, resend_unknown);
  FIELD(tsesim_job_options, rows);
  FIELD(tsesim_job_options, progress_fn);
  FIELD(tsesim_job_options, progress_payload);
  FIELD(tsesim_job_options, stop_fn);
  FIELD(tsesim_job_options, stop_payload);
  END();

  BEGIN(tsesim_job_counts);
  FIELD(tsesim_job_counts, devices);
  FIELD(tsesim_job_counts, queued);
  FIELD(tsesim_job_counts, submitted);
  FIELD(tsesim_job_counts, unknown);
  FIELD(tsesim_job_counts, refused);
  FIELD(tsesim_job_counts, warning);
  FIELD(tsesim_job_counts, success);
  FIELD(tsesim_job_counts, failed);
  FIELD(tsesim_job_counts, invalid);
  FIELD(tsesim_job_counts, callbacks);
  FIELD(tsesim_job_counts, duplicates);
  FIELD(tsesim_job_counts, unmatched);
  END();

  BEGIN(tsesim_device_status);
  FIELD(tsesim_device_status, line);
  FIELD(tsesim_device_status, eid);
  FIELD(tsesim_device_status, iccid);
  FIELD(tsesim_device_status, imei);
  FIELD(tsesim_device_status, state);
  FIELD(tsesim_device_status, request_id);
  FIELD(tsesim_device_status, status);
  FIELD(tsesim_device_status, fault);
  FIELD(tsesim_device_status, error);
  FIELD(tsesim_device_status, callbacks);
  END();

  BEGIN(tsesim_callback_result);
  FIELD(tsesim_callback_result, repeat);
  FIELD(tsesim_callback_result, job);
  FIELD(tsesim_callback_result, line);
  FIELD(tsesim_callback_result, state);
  END();

  BEGIN(tsesim_listener_options);
  FIELD(tsesim_listener_options, version);
  FIELD(tsesim_listener_options, journal);
  FIELD(tsesim_listener_options, address);
  FIELD(tsesim_listener_options, port);
  FIELD(tsesim_listener_options, path);
  FIELD(tsesim_listener_options, username);
  FIELD(tsesim_listener_options, password);
  FIELD(tsesim_listener_options, tls_cert_file);
  FIELD(tsesim_listener_options, tls_key_file);
  FIELD(tsesim_listener_options, max_body_bytes);
  FIELD(tsesim_listener_options, max_connections);
  FIELD(tsesim_listener_options, per_ip_connections);
  FIELD(tsesim_listener_options, timeout_s);
  FIELD(tsesim_listener_options, memory_budget);
  FIELD(tsesim_listener_options, on_callback);
  FIELD(tsesim_listener_options, callback_payload);
  FIELD(tsesim_listener_options, log_fn);
  FIELD(tsesim_listener_options, log_payload);
  FIELD(tsesim_listener_options, log_level);
  END();

  return ferror(stdout) ? 1 : 0;
}
