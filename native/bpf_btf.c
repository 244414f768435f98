/*
 * The few kernel structure offsets the attribution programs need to copy a process's command line
 * (task_struct.mm, mm_struct.arg_start and arg_end), read from the kernel's own type information
 * (/sys/kernel/btf/vmlinux) without libbpf: a linear walk of the BTF type section. Any surprise
 * (no BTF, a member not found) gives "unknown", and the programs then record no command line.
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
  if (mm_off < 0 || start_off < 0 || end_off < 0 || mm_off > 65535 || start_off > 65535 || end_off > 65535)
    goto done;
  out->task_mm = (int32_t)mm_off;
  out->mm_arg_start = (int32_t)start_off;
  out->mm_arg_end = (int32_t)end_off;
  out->known = 1;
  ok = 0;
done:
  free(b.types);
  free(data);
  close(fd);
  return ok;
}
