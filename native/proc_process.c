/*
 * What attribution still reads of a process from /proc when its BPF record cannot name it alone
 * (the first process of an executable, docs/attribution.md): one call, no libuv or promise hops,
 * every file relative to one descriptor of /proc/PID (a pid reused in between cannot mix two
 * processes' files). All of it is printed by the kernel without waiting for the process or a file
 * system: stat (start time), status (effective uid), and the exe link, either read as a link or,
 * to learn the executable's path, opened with O_PATH: its descriptor's link and fdinfo (mount id,
 * inode) name the very file the path names, without a race against an exec. An O_PATH open asks
 * nothing of the file's file system but on NFS (a revalidation): the caller asks for it only for
 * files on local file systems.
 */
#define _GNU_SOURCE /* O_PATH */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addon.h"
#include "nl.h"

/* Reads a small /proc file relative to `dir` into buf (NUL-terminated); its length or -1. */
static ssize_t read_at(int dir, const char *name, char *buf, size_t size) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  return n;
}

/* Field 22 of stat (start time in clock ticks), counted after the name's closing parenthesis. */
static const char *start_time(char *stat) {
  char *at = strrchr(stat, ')');
  if (at == NULL || at[1] != ' ') return NULL;
  at += 2;
  for (int field = 0; field < 19; field++) {
    at = strchr(at, ' ');
    if (at == NULL) return NULL;
    at++;
  }
  char *end = strchr(at, ' ');
  if (end != NULL) *end = 0;
  return *at ? at : NULL;
}

static void set_element(napi_env env, napi_value array, uint32_t at, napi_value value) {
  napi_set_element(env, array, at, value);
}

/*
 * procProcess(pid, learn) -> [startTime (string), exe link, exe mount id, exe inode (string),
 * effective uid] | null when /proc/PID cannot be opened (the process is gone); an element is
 * undefined when its read failed. With learn, the exe is opened O_PATH (mount id and inode given);
 * without, only its link is read.
 */
napi_value proc_process(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, v;
  uint32_t pid;
  bool learn = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &pid) != napi_ok || pid == 0 ||
      napi_get_value_bool(env, argv[1], &learn) != napi_ok) {
    napi_throw_type_error(env, NULL, "procProcess(pid, learn)");
    return NULL;
  }
  char name[64], text[4096];
  snprintf(name, sizeof name, "/proc/%u", pid);
  napi_get_null(env, &result);
  int dir = open(name, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return result;
  napi_create_array_with_length(env, 5, &result);
  if (read_at(dir, "stat", text, sizeof text) > 0) {
    const char *start = start_time(text);
    if (start != NULL) {
      napi_create_string_latin1(env, start, NAPI_AUTO_LENGTH, &v);
      set_element(env, result, 0, v);
    }
  }
  if (!learn) {
    ssize_t n = readlinkat(dir, "exe", text, sizeof text);
    if (n > 0 && n < (ssize_t)sizeof text) {
      napi_create_string_utf8(env, text, (size_t)n, &v);
      set_element(env, result, 1, v);
    }
  } else {
    int fd = openat(dir, "exe", O_PATH | O_CLOEXEC);
    if (fd >= 0) {
      char fdinfo[512];
      snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
      ssize_t n = readlink(name, text, sizeof text);
      snprintf(name, sizeof name, "/proc/self/fdinfo/%d", fd);
      int info = open(name, O_RDONLY | O_CLOEXEC);
      ssize_t info_len = info < 0 ? -1 : read(info, fdinfo, sizeof fdinfo - 1);
      if (info >= 0) close(info);
      close(fd);
      if (n > 0 && n < (ssize_t)sizeof text) {
        napi_create_string_utf8(env, text, (size_t)n, &v);
        set_element(env, result, 1, v);
      }
      const char *mnt = info_len > 0 ? (fdinfo[info_len] = 0, strstr(fdinfo, "mnt_id:")) : NULL;
      const char *ino = info_len > 0 ? strstr(fdinfo, "\nino:") : NULL;
      if (n > 0 && mnt != NULL && ino != NULL) {
        napi_create_double(env, (double)strtol(mnt + 7, NULL, 10), &v);
        set_element(env, result, 2, v);
        char decimal[24];
        int len = snprintf(decimal, sizeof decimal, "%llu", strtoull(ino + 5, NULL, 10));
        napi_create_string_latin1(env, decimal, (size_t)len, &v);
        set_element(env, result, 3, v);
      }
    }
  }
  if (read_at(dir, "status", text, sizeof text) > 0) {
    const char *uid = strstr(text, "\nUid:");
    unsigned real, effective;
    if (uid != NULL && sscanf(uid + 5, "%u %u", &real, &effective) == 2) {
      napi_create_uint32(env, effective, &v);
      set_element(env, result, 4, v);
    }
  }
  close(dir);
  return result;
}
