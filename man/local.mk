# Man pages: one man3 page per public function, overviews in man3/man7.
# tests/manpages.sh checks that every exported function has its page.
dist_man_MANS = \
	man/libtsesim.7 \
	man/tsesim-sim.1 \
	man/tsesim.1 \
	man/libtsesim-errors.3 \
	man/libtsesim-thread.3 \
	man/tsesim_version.3 \
	man/tsesim_strerror.3 \
	man/tsesim_code_name.3 \
	man/tsesim_id_validate.3 \
	man/tsesim_request_new.3 \
	man/tsesim_request_new_v2.3 \
	man/tsesim_request_set_service_plan.3 \
	man/tsesim_request_set_verify_checksums.3 \
	man/tsesim_request_add_device.3 \
	man/tsesim_request_add_devices.3 \
	man/tsesim_request_device_count.3 \
	man/tsesim_request_errmsg.3 \
	man/tsesim_request_to_json.3 \
	man/tsesim_request_free.3 \
	man/tsesim_free.3 \
	man/tsesim_response_parse.3 \
	man/tsesim_api_error_parse.3 \
	man/tsesim_api_error_free.3 \
	man/tsesim_callback_parse.3 \
	man/tsesim_callback_free.3 \
	man/tsesim_options_init.3 \
	man/tsesim_global_init.3 \
	man/tsesim_global_cleanup.3 \
	man/tsesim_client_new.3 \
	man/tsesim_client_new_v2.3 \
	man/tsesim_client_register_callback.3 \
	man/tsesim_client_unregister_callback.3 \
	man/tsesim_client_free.3 \
	man/tsesim_client_login.3 \
	man/tsesim_client_logout.3 \
	man/tsesim_client_download.3 \
	man/tsesim_client_errmsg.3 \
	man/tsesim_client_last_error.3 \
	man/tsesim_rows_parse_csv.3 \
	man/tsesim_rows_read_csv.3 \
	man/tsesim_rows_read_csv_fd.3 \
	man/tsesim_rows_count.3 \
	man/tsesim_rows_rejected.3 \
	man/tsesim_rows_get.3 \
	man/tsesim_rows_free.3
# The journal: its three calls, and its file format (section 5, which
# automake installs into man5dir from the suffix).
dist_man_MANS += \
	man/tsesim-journal.5 \
	man/tsesim_journal_open.3 \
	man/tsesim_journal_errmsg.3 \
	man/tsesim_journal_close.3 \
	man/tsesim_journal_set.3 \
	man/tsesim_journal_get.3
# Jobs: a request of any size in chunks, recorded in the journal.
dist_man_MANS += \
	man/tsesim_job_options_init.3 \
	man/tsesim_job_submit.3 \
	man/tsesim_job_record.3
# The callback listener (it owns threads: libtsesim-thread(3)).
dist_man_MANS += \
	man/tsesim_listener_options_init.3 \
	man/tsesim_listener_start.3 \
	man/tsesim_listener_port.3 \
	man/tsesim_listener_stop.3
# The tracker: what the journal knows of a job.
dist_man_MANS += \
	man/tsesim_job_count.3 \
	man/tsesim_job_wait.3 \
	man/tsesim_job_devices.3
