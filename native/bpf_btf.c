/*
 * The few kernel structure offsets the attribution programs need to copy a process's command line
 * (task_struct.mm, mm_struct.arg_start and arg_end), to name its executable file (mm->exe_file's
 * inode and mount) and its effective uid and parent, read from the kernel's own type information
 * (/sys/kernel/btf/vmlinux) without libbpf: a linear walk of the BTF type section. Any surprise
 * (no BTF, a member not found) gives "unknown", and the programs then record no command line (or no
 * executable, no effective uid and parent: each group is known or not on its own).
 */
#include <fcntl.h>
#include <linux/btf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf_attr.h"

typedef struct {
  const struct btf_type **types; /* by type id (1-based) */
  uint32_t count;
  const char *strings;
  uint32_t strings_len;
} btf_index;

static const char *name_of(const btf_index *b, uint32_t off) {
  return off < b->strings_len ? b->strings + off : "";
}

/* Size of the data that follows a type's header, or -1 for an unknown kind. */
static long extra_size(const struct btf_type *t) {
  uint32_t vlen = BTF_INFO_VLEN(t->info);
  switch (BTF_INFO_KIND(t->info)) {
  case BTF_KIND_INT: return 4;
  case BTF_KIND_ARRAY: return sizeof(struct btf_array);
  case BTF_KIND_STRUCT:
  case BTF_KIND_UNION: return (long)vlen * sizeof(struct btf_member);
  case BTF_KIND_ENUM: return (long)vlen * sizeof(struct btf_enum);
  case BTF_KIND_FUNC_PROTO: return (long)vlen * sizeof(struct btf_param);
  case BTF_KIND_VAR: return sizeof(struct btf_var);
  case BTF_KIND_DATASEC: return (long)vlen * sizeof(struct btf_var_secinfo);
  case BTF_KIND_DECL_TAG: return sizeof(struct btf_decl_tag);
  case BTF_KIND_ENUM64: return (long)vlen * sizeof(struct btf_enum64);
  case BTF_KIND_PTR:
  case BTF_KIND_FWD:
  case BTF_KIND_TYPEDEF:
  case BTF_KIND_VOLATILE:
  case BTF_KIND_CONST:
  case BTF_KIND_RESTRICT:
  case BTF_KIND_FUNC:
  case BTF_KIND_FLOAT:
  case BTF_KIND_TYPE_TAG: return 0;
  default: return -1;
  }
}

/* Skips typedefs and qualifiers. */
static const struct btf_type *resolve(const btf_index *b, uint32_t id) {
  for (int depth = 0; depth < 16 && id > 0 && id <= b->count; depth++) {
    const struct btf_type *t = b->types[id];
    uint32_t kind = BTF_INFO_KIND(t->info);
    if (kind != BTF_KIND_TYPEDEF && kind != BTF_KIND_VOLATILE && kind != BTF_KIND_CONST &&
        kind != BTF_KIND_RESTRICT && kind != BTF_KIND_TYPE_TAG)
      return t;
    id = t->type;
  }
  return NULL;
}

/* Byte offset of member `name` in struct/union `t` (searching anonymous members), or -1. */
static long member_offset(const btf_index *b, const struct btf_type *t, const char *name, int depth) {
  uint32_t kind = BTF_INFO_KIND(t->info);
  if (depth > 4 || (kind != BTF_KIND_STRUCT && kind != BTF_KIND_UNION)) return -1;
  const struct btf_member *m = (const struct btf_member *)(t + 1);
  for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++) {
    uint32_t bits = BTF_INFO_KFLAG(t->info) ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
    if (bits % 8 != 0) continue;
    if (m[i].name_off == 0) {
      const struct btf_type *inner = resolve(b, m[i].type);
      long off = inner == NULL ? -1 : member_offset(b, inner, name, depth + 1);
      if (off >= 0) return (long)(bits / 8) + off;
    } else if (strcmp(name_of(b, m[i].name_off), name) == 0) {
      return (long)(bits / 8);
    }
  }
  return -1;
}

static const struct btf_type *find_struct(const btf_index *b, const char *name) {
  for (uint32_t id = 1; id <= b->count; id++) {
    const struct btf_type *t = b->types[id];
    if (BTF_INFO_KIND(t->info) == BTF_KIND_STRUCT && BTF_INFO_VLEN(t->info) > 0 &&
        strcmp(name_of(b, t->name_off), name) == 0)
      return t;
  }
  return NULL;
}

static int in_range(long off) {
  return off >= 0 && off <= 65535;
}

/* Offset of `a.b` (b a member of the struct that member a of `t` is), or -1. */
static long nested_offset(const btf_index *b, const struct btf_type *t, const char *a, const char *inner, const char *name) {
  long outer = member_offset(b, t, a, 0);
  const struct btf_type *s = find_struct(b, inner);
  long off = s == NULL ? -1 : member_offset(b, s, name, 0);
  return outer < 0 || off < 0 ? -1 : outer + off;
}

/*
 * The executable's identity (mm->exe_file: its inode's number, generation, change time and device,
 * the file system's magic, the mount's id as /proc/PID/fdinfo shows it, and its dentry, whose
 * chain of parents and names the programs fold into a fingerprint of the path within the mount). The change time is
 * i_ctime_sec/i_ctime_nsec since 6.11, a struct timespec64 (__i_ctime, i_ctime) before.
 */
static void exe_offsets(const btf_index *b, const struct btf_type *mm, struct bpf_task_offsets *out) {
  const struct btf_type *file = find_struct(b, "file");
  const struct btf_type *inode = find_struct(b, "inode");
  const struct btf_type *sb = find_struct(b, "super_block");
  const struct btf_type *mount = find_struct(b, "mount");
  const struct btf_type *dentry = find_struct(b, "dentry");
  const struct btf_type *qstr = find_struct(b, "qstr");
  if (file == NULL || inode == NULL || sb == NULL || mount == NULL || dentry == NULL || qstr == NULL) return;
  /* The path's names are read as {d_parent, d_name.hash_len} pairs: one read per level. */
  long name = member_offset(b, dentry, "d_name", 0), hash_len = member_offset(b, qstr, "hash_len", 0);
  if (name < 0 || hash_len != 0 || name != member_offset(b, dentry, "d_parent", 0) + 8) return;
  long ctime_sec = member_offset(b, inode, "i_ctime_sec", 0);
  long ctime_nsec = member_offset(b, inode, "i_ctime_nsec", 0);
  if (ctime_sec < 0 || ctime_nsec < 0) {
    ctime_sec = member_offset(b, inode, "__i_ctime", 0);
    if (ctime_sec < 0) ctime_sec = member_offset(b, inode, "i_ctime", 0);
    ctime_nsec = ctime_sec < 0 ? -1 : ctime_sec + 8; /* struct timespec64 { time64_t tv_sec; long tv_nsec; } */
  }
  long mnt = member_offset(b, mount, "mnt", 0);
  long mnt_id = member_offset(b, mount, "mnt_id", 0);
  long values[] = {
      member_offset(b, mm, "exe_file", 0),
      member_offset(b, file, "f_inode", 0),
      nested_offset(b, file, "f_path", "path", "mnt"),
      member_offset(b, inode, "i_ino", 0),
      member_offset(b, inode, "i_sb", 0),
      member_offset(b, inode, "i_generation", 0),
      ctime_sec,
      ctime_nsec,
      member_offset(b, sb, "s_dev", 0),
      member_offset(b, sb, "s_magic", 0),
      mnt < 0 || mnt_id < 0 ? -1 : mnt_id - mnt,
      nested_offset(b, file, "f_path", "path", "dentry"),
      dentry == NULL ? -1 : member_offset(b, dentry, "d_parent", 0),
  };
  int32_t *fields[] = {&out->mm_exe_file,      &out->file_inode,       &out->file_mnt,
                       &out->inode_ino,        &out->inode_sb,         &out->inode_generation,
                       &out->inode_ctime_sec,  &out->inode_ctime_nsec, &out->sb_dev,
                       &out->sb_magic,         &out->vfsmount_mnt_id,  &out->file_dentry,
                       &out->dentry_parent};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    if (!in_range(values[i])) return;
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) *fields[i] = (int32_t)values[i];
  out->exe_known = 1;
}

/* The effective uid (task->real_cred->euid, what /proc/PID/status shows) and the parent's tgid. */
static void cred_offsets(const btf_index *b, const struct btf_type *task, struct bpf_task_offsets *out) {
  const struct btf_type *cred = find_struct(b, "cred");
  if (cred == NULL) return;
  long values[] = {member_offset(b, task, "real_cred", 0), member_offset(b, cred, "euid", 0),
                   member_offset(b, task, "real_parent", 0), member_offset(b, task, "tgid", 0)};
  for (size_t i = 0; i < 4; i++)
    if (!in_range(values[i])) return;
  out->task_real_cred = (int32_t)values[0];
  out->cred_euid = (int32_t)values[1];
  out->task_real_parent = (int32_t)values[2];
  out->task_tgid = (int32_t)values[3];
  out->cred_known = 1;
}

/* The socket's inode and owner, for the connect-time slots (bpf_tuple.c). */
static void sock_offsets(const btf_index *b, struct bpf_task_offsets *out) {
  const struct btf_type *sock = find_struct(b, "sock"), *socket = find_struct(b, "socket");
  const struct btf_type *file = find_struct(b, "file"), *inode = find_struct(b, "inode");
  /* sk_cookie is sock_common's skc_cookie (a #define), in struct sock's __sk_common. */
  const struct btf_type *common = find_struct(b, "sock_common");
  long in_sock = sock == NULL ? -1 : member_offset(b, sock, "__sk_common", 0);
  long in_common = common == NULL ? -1 : member_offset(b, common, "skc_cookie", 0);
  long cookie = in_sock < 0 || in_common < 0 ? -1 : in_sock + in_common;
  if (in_range(cookie)) {
    out->sock_cookie = (int32_t)cookie;
    out->cookie_known = 1;
  }
  if (sock == NULL || socket == NULL || file == NULL || inode == NULL) return;
  long values[] = {member_offset(b, sock, "sk_socket", 0), member_offset(b, sock, "sk_uid", 0),
                   member_offset(b, socket, "file", 0), member_offset(b, file, "f_inode", 0),
                   member_offset(b, inode, "i_ino", 0)};
  int32_t *fields[] = {&out->sock_socket, &out->sock_uid, &out->socket_file, &out->sock_file_inode,
                       &out->sock_inode_ino};
  for (size_t i = 0; i < 5; i++)
    if (!in_range(values[i])) return;
  for (size_t i = 0; i < 5; i++) *fields[i] = (int32_t)values[i];
  out->sock_known = 1;
}

int bpf_btf_offsets(struct bpf_task_offsets *out) {
  memset(out, 0, sizeof *out);
  int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  char *data = NULL;
  int ok = -1;
  btf_index b = {0};
  if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(struct btf_header) || st.st_size > (64 << 20)) goto done;
  data = malloc((size_t)st.st_size);
  if (data == NULL) goto done;
  for (off_t got = 0; got < st.st_size;) {
    ssize_t n = read(fd, data + got, (size_t)(st.st_size - got));
    if (n <= 0) goto done;
    got += n;
  }
  const struct btf_header *h = (const struct btf_header *)data;
  if (h->magic != BTF_MAGIC || (uint64_t)h->hdr_len + h->type_off + h->type_len > (uint64_t)st.st_size ||
      (uint64_t)h->hdr_len + h->str_off + h->str_len > (uint64_t)st.st_size)
    goto done;
  const char *types = data + h->hdr_len + h->type_off;
  b.strings = data + h->hdr_len + h->str_off;
  b.strings_len = h->str_len;
  /* First pass: count; second: index. */
  uint32_t capacity = 1;
  for (uint32_t pos = 0; pos + sizeof(struct btf_type) <= h->type_len; capacity++) {
    long extra = extra_size((const struct btf_type *)(types + pos));
    if (extra < 0) goto done;
    pos += sizeof(struct btf_type) + (uint32_t)extra;
  }
  b.types = calloc(capacity + 1, sizeof *b.types);
  if (b.types == NULL) goto done;
  for (uint32_t pos = 0; pos + sizeof(struct btf_type) <= h->type_len;) {
    const struct btf_type *t = (const struct btf_type *)(types + pos);
    b.types[++b.count] = t;
    pos += sizeof(struct btf_type) + (uint32_t)extra_size(t);
  }
  const struct btf_type *task = find_struct(&b, "task_struct");
  const struct btf_type *mm = find_struct(&b, "mm_struct");
  if (task == NULL || mm == NULL) goto done;
  long mm_off = member_offset(&b, task, "mm", 0);
  long start_off = member_offset(&b, mm, "arg_start", 0);
  long end_off = member_offset(&b, mm, "arg_end", 0);
  if (!in_range(mm_off) || !in_range(start_off) || !in_range(end_off)) goto done;
  out->task_mm = (int32_t)mm_off;
  out->mm_arg_start = (int32_t)start_off;
  out->mm_arg_end = (int32_t)end_off;
  out->known = 1;
  exe_offsets(&b, mm, out);
  cred_offsets(&b, task, out);
  sock_offsets(&b, out);
  ok = 0;
done:
  free(b.types);
  free(data);
  close(fd);
  return ok;
}
