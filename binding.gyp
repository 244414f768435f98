{
  "targets": [
    {
      "target_name": "warden_kernel",
      "sources": [
        "native/addon.c",
        "native/nl.c",
        "native/nfqueue.c",
        "native/nflog.c",
        "native/sock_diag.c",
        "native/udp_flows.c",
        "native/bpf_attr.c",
        "native/bpf_btf.c",
        "native/bpf_cache.c",
        "native/bpf_tuple.c",
        "native/bpf_guard.c",
        "native/proc_process.c",
        "native/ifname.c",
        "native/nft_counters.c"
      ],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
