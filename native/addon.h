/* The functions the addon exports (see addon.c); each lives in the file named after its subsystem. */
#ifndef WARDEN_ADDON_H
#define WARDEN_ADDON_H
#include <node_api.h>

napi_value queue_open(napi_env env, napi_callback_info info);
napi_value queue_verdict(napi_env env, napi_callback_info info);
napi_value queue_stats(napi_env env, napi_callback_info info);
napi_value queue_close(napi_env env, napi_callback_info info);
napi_value log_open(napi_env env, napi_callback_info info);
napi_value log_stats(napi_env env, napi_callback_info info);
napi_value log_close(napi_env env, napi_callback_info info);
napi_value socket_lookup(napi_env env, napi_callback_info info);
napi_value udp_flows_open(napi_env env, napi_callback_info info);
napi_value udp_flows_stats(napi_env env, napi_callback_info info);
napi_value udp_flows_close(napi_env env, napi_callback_info info);
napi_value bpf_attribution_open(napi_env env, napi_callback_info info);
napi_value bpf_attribution_entries(napi_env env, napi_callback_info info);
napi_value bpf_attribution_direct(napi_env env, napi_callback_info info);
napi_value bpf_cgroup_programs(napi_env env, napi_callback_info info);
napi_value bpf_attribution_close(napi_env env, napi_callback_info info);
napi_value bpf_cache_insert(napi_env env, napi_callback_info info);
napi_value bpf_cache_generation(napi_env env, napi_callback_info info);
napi_value bpf_cache_stats(napi_env env, napi_callback_info info);
napi_value bpf_cache_drain(napi_env env, napi_callback_info info);
napi_value bpf_cache_watch(napi_env env, napi_callback_info info);
napi_value bpf_cache_watch_arm(napi_env env, napi_callback_info info);
napi_value bpf_cache_watch_close(napi_env env, napi_callback_info info);
napi_value bpf_tuple_open_js(napi_env env, napi_callback_info info);
napi_value bpf_tuple_lookup(napi_env env, napi_callback_info info);
napi_value bpf_tuple_stats(napi_env env, napi_callback_info info);
napi_value bpf_tuple_close(napi_env env, napi_callback_info info);
napi_value proc_process(napi_env env, napi_callback_info info);
napi_value interface_name(napi_env env, napi_callback_info info);
napi_value counter_dump(napi_env env, napi_callback_info info);
#endif
