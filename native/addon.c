/*
 * Warden's kernel binding (N-API, C, kernel headers only): NFQUEUE (nfqueue.c), NFLOG (nflog.c),
 * exact sock_diag lookups (sock_diag.c), attribution by cgroup BPF programs (bpf_attr.c) and the
 * reaping of destroyed UDP sockets' conntrack flows (udp_flows.c), and one-call reads of a process
 * in /proc for attribution (proc_process.c). src/kernel/native.ts is its only user.
 */
#include "addon.h"

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
      {"queueOpen", NULL, queue_open, NULL, NULL, NULL, napi_default, NULL},
      {"queueVerdict", NULL, queue_verdict, NULL, NULL, NULL, napi_default, NULL},
      {"queueStats", NULL, queue_stats, NULL, NULL, NULL, napi_default, NULL},
      {"queueClose", NULL, queue_close, NULL, NULL, NULL, napi_default, NULL},
      {"logOpen", NULL, log_open, NULL, NULL, NULL, napi_default, NULL},
      {"logStats", NULL, log_stats, NULL, NULL, NULL, napi_default, NULL},
      {"logClose", NULL, log_close, NULL, NULL, NULL, napi_default, NULL},
      {"socketLookup", NULL, socket_lookup, NULL, NULL, NULL, napi_default, NULL},
      {"udpFlowsOpen", NULL, udp_flows_open, NULL, NULL, NULL, napi_default, NULL},
      {"udpFlowsStats", NULL, udp_flows_stats, NULL, NULL, NULL, napi_default, NULL},
      {"udpFlowsClose", NULL, udp_flows_close, NULL, NULL, NULL, napi_default, NULL},
      {"bpfAttributionOpen", NULL, bpf_attribution_open, NULL, NULL, NULL, napi_default, NULL},
      {"bpfAttributionEntries", NULL, bpf_attribution_entries, NULL, NULL, NULL, napi_default, NULL},
      {"bpfAttributionDirect", NULL, bpf_attribution_direct, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCgroupPrograms", NULL, bpf_cgroup_programs, NULL, NULL, NULL, napi_default, NULL},
      {"bpfAttributionClose", NULL, bpf_attribution_close, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCacheInsert", NULL, bpf_cache_insert, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCacheGeneration", NULL, bpf_cache_generation, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCacheStats", NULL, bpf_cache_stats, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCacheDrain", NULL, bpf_cache_drain, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCacheWatch", NULL, bpf_cache_watch, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCacheWatchArm", NULL, bpf_cache_watch_arm, NULL, NULL, NULL, napi_default, NULL},
      {"bpfCacheWatchClose", NULL, bpf_cache_watch_close, NULL, NULL, NULL, napi_default, NULL},
      {"bpfTupleOpen", NULL, bpf_tuple_open_js, NULL, NULL, NULL, napi_default, NULL},
      {"bpfTupleLookup", NULL, bpf_tuple_lookup, NULL, NULL, NULL, napi_default, NULL},
      {"bpfTupleStats", NULL, bpf_tuple_stats, NULL, NULL, NULL, napi_default, NULL},
      {"bpfTupleClose", NULL, bpf_tuple_close, NULL, NULL, NULL, napi_default, NULL},
      {"procProcess", NULL, proc_process, NULL, NULL, NULL, napi_default, NULL},
      {"interfaceName", NULL, interface_name, NULL, NULL, NULL, napi_default, NULL},
      {"counterDump", NULL, counter_dump, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
