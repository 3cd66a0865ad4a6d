/*
 * kvm-sim: interposition of open/ioctl/close, file descriptors, logging
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * open() and open64() are defined here under their own names: no
 * fortify wrappers, no redirection of open to open64.
 */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kvm-sim.h"

pthread_mutex_t ks_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t ks_cond = PTHREAD_COND_INITIALIZER;
KsVm *ks_vm;
unsigned ks_max_vcpus = KS_MAX_VCPUS_DEFAULT;
bool ks_immediate_exit = true;

static GHashTable *ks_fds;          /* fd -> KsFd * */
static GPtrArray *ks_violations;    /* JSON strings */
static GHashTable *ks_unknown;      /* requests already logged */
static int ks_log_fd = -1;
static pthread_once_t ks_once = PTHREAD_ONCE_INIT;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);

__attribute__((constructor))
static void ks_init(void)
{
    const char *s;

    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    ks_fds = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                   g_free);
    ks_violations = g_ptr_array_new_with_free_func(g_free);
    ks_unknown = g_hash_table_new(g_direct_hash, g_direct_equal);
    s = getenv("KVMSIM_VCPU_MAX");
    if (s && atoi(s) > 0) {
        ks_max_vcpus = atoi(s);
    }
    s = getenv("KVMSIM_NO_IMMEDIATE_EXIT");
    if (s && *s && strcmp(s, "0")) {
        ks_immediate_exit = false;
    }
}

/* environment read when /dev/kvm or /dev/sev is first opened */
static void ks_late_init(void)
{
    const char *s = getenv("KVMSIM_LOG");

    if (s && *s) {
        ks_log_fd = real_open(s, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                              0644);
    }
    /* KVMSIM_FAIL=CMDNAME:FW_ERROR[:ERRNO[:COUNT]],...: as "fail" requests */
    s = getenv("KVMSIM_FAIL");
    if (s && *s) {
        g_auto(GStrv) list = g_strsplit(s, ",", -1);
        int i;

        for (i = 0; list[i]; i++) {
            g_auto(GStrv) f = g_strsplit(list[i], ":", 4);

            if (f[0] && f[1]) {
                ks_inject_failure(f[0], (int)g_ascii_strtoll(f[1], NULL, 0),
                                  f[2] ? atoi(f[2]) : EIO,
                                  f[2] && f[3] ? atoi(f[3]) : 1);
            }
        }
    }
    ks_ctl_start();
}

/* ------------------------------------------------------------ logging */

void ks_log_json(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *line = NULL;

    if (ks_log_fd < 0) {
        return;
    }
    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* one write per line so concurrent writers do not interleave */
    {
        g_autofree char *nl = g_strconcat(line, "\n", NULL);
        if (write(ks_log_fd, nl, strlen(nl)) < 0) {
            /* logging is best effort */
        }
    }
}

/* stderr line, log line, list for "query violations" */
static void G_GNUC_PRINTF(6, 0)
ks_record(const char *rule, const char *call, int err, int fw_error,
          bool guest, const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    g_autofree char *esc = g_strescape(msg, NULL);
    char *json;

    if (guest) {
        fprintf(stderr, "kvm-sim: rule %s: %s: %s (guest rule: the call "
                "succeeds)\n", rule, call, msg);
    } else {
        fprintf(stderr, "kvm-sim: rule %s: %s: %s (errno %d, fw_error %d)\n",
                rule, call, msg, err, fw_error);
    }
    json = g_strdup_printf("{\"violation\":\"%s\",\"rule\":\"%s\","
                           "\"call\":\"%s\",\"errno\":%d,\"fw_error\":%d%s}",
                           esc, rule, call, err, fw_error,
                           guest ? ",\"guest\":true" : "");
    ks_log_json("%s", json);
    g_ptr_array_add(ks_violations, json);
}

/*
 * Record a rule violation.  Returns -err so callers can "return
 * ks_violation(...)".
 */
int ks_violation(const char *rule, const char *call, int err, int fw_error,
                 const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ks_record(rule, call, err, fw_error, false, fmt, ap);
    va_end(ap);
    return -err;
}

/*
 * Record a guest-side rule (G-xx) broken by something the kernel and the
 * firmware accept: the call succeeds; stderr, log and "query violations"
 * say what the guest would do.  Returns 0.
 */
int ks_guest_violation(const char *rule, const char *call,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ks_record(rule, call, 0, 0, true, fmt, ap);
    va_end(ap);
    return 0;
}

GString *ks_violations_json(void)
{
    GString *s = g_string_new("[");
    guint i;

    for (i = 0; i < ks_violations->len; i++) {
        g_string_append_printf(s, "%s%s", i ? "," : "",
                               (char *)g_ptr_array_index(ks_violations, i));
    }
    g_string_append_c(s, ']');
    return s;
}

void ks_unknown_ioctl(const char *what, unsigned long req)
{
    gpointer key = GSIZE_TO_POINTER(req);

    if (!g_hash_table_contains(ks_unknown, key)) {
        g_hash_table_add(ks_unknown, key);
        fprintf(stderr, "kvm-sim: unsupported %s ioctl 0x%lx\n", what, req);
        ks_log_json("{\"unknown_ioctl\":\"0x%lx\",\"on\":\"%s\"}", req, what);
    }
}

/* ------------------------------------------------------------ fds */

KsFd *ks_fd_lookup(int fd)
{
    if (fd < 0 || !ks_fds) {
        return NULL;
    }
    return g_hash_table_lookup(ks_fds, GINT_TO_POINTER(fd));
}

/*
 * Every descriptor handed out is a real memfd, so that close, fcntl,
 * poll, mmap (vCPU kvm_run) and fallocate (guest_memfd) work unchanged.
 * Called with ks_lock held.
 */
int ks_fd_new(KsFdKind kind, void *obj, const char *name, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    KsFd *f;

    if (fd < 0) {
        return -errno;
    }
    if (size && ftruncate(fd, size) < 0) {
        int e = errno;
        real_close(fd);
        return -e;
    }
    f = g_new0(KsFd, 1);
    f->kind = kind;
    f->obj = obj;
    g_hash_table_replace(ks_fds, GINT_TO_POINTER(fd), f);
    return fd;
}

/*
 * KVM_GET_STATS_FD (kvm_main.c kvm_vcpu_ioctl_get_stats_fd(),
 * kvm_vm_ioctl_get_stats_fd(); layout: binary_stats.c kvm_stats_read()):
 * a read-only descriptor holding the header, the id string and the
 * descriptors.  The simulator keeps no statistics: num_desc is 0.
 */
int ks_stats_fd_new(const char *name, const char *id)
{
    struct kvm_stats_header h = {
        .name_size = KS_STATS_NAME_SIZE,
        .id_offset = sizeof(h),
        .desc_offset = sizeof(h) + KS_STATS_NAME_SIZE,
        .data_offset = sizeof(h) + KS_STATS_NAME_SIZE,
    };
    char idbuf[KS_STATS_NAME_SIZE] = { 0 };
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        return -errno;
    }
    g_strlcpy(idbuf, id, sizeof(idbuf));
    /* pwrite: the file offset stays 0 for read() */
    if (pwrite(fd, &h, sizeof(h), 0) != sizeof(h) ||
        pwrite(fd, idbuf, sizeof(idbuf), sizeof(h)) != sizeof(idbuf) ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
              F_SEAL_SEAL) < 0) {
        int e = errno;
        real_close(fd);
        return -e;
    }
    return fd;
}

KsVcpu *ks_vcpu_by_index(unsigned idx)
{
    if (!ks_vm || idx >= ks_vm->vcpus->len) {
        return NULL;
    }
    return g_ptr_array_index(ks_vm->vcpus, idx);
}

/* ------------------------------------------------------------ VM */

static KsVm *ks_vm_create(unsigned long type)
{
    KsVm *vm = g_new0(KsVm, 1);

    vm->type = type;
    vm->vcpus = g_ptr_array_new();
    vm->slots = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                      g_free);
    vm->private_ranges = g_array_new(FALSE, FALSE, sizeof(uint64_t) * 2);
    /* svm_vm_init(): protected VM types wait for KVM_SEV_INIT2 */
    vm->need_init = type != KVM_X86_DEFAULT_VM;
    ks_measure_init(vm->digest);
    return vm;
}

#define KS_SUPPORTED_VM_TYPES ((1u << KVM_X86_DEFAULT_VM) | \
                               (1u << KVM_X86_SEV_VM) | \
                               (1u << KVM_X86_SEV_ES_VM) | \
                               (1u << KVM_X86_SNP_VM))

static long ks_kvm_ioctl(unsigned long req, void *arg)
{
    switch (req) {
    case KVM_CREATE_VM: {
        unsigned long type = (unsigned long)arg;
        KsVm *vm;
        int fd;

        if (type >= 32 || !(KS_SUPPORTED_VM_TYPES & (1u << type))) {
            return ks_violation("R-01", "KVM_CREATE_VM", EINVAL, 0,
                                "VM type %lu not in KVM_CAP_VM_TYPES 0x%x",
                                type, KS_SUPPORTED_VM_TYPES);
        }
        vm = ks_vm_create(type);
        fd = ks_fd_new(KS_FD_VM, vm, "kvm-sim-vm", 0);
        if (fd < 0) {
            return fd;
        }
        vm->fd = fd;
        ks_vm = vm;
        ks_log_json("{\"call\":\"KVM_CREATE_VM\",\"type\":%lu,\"result\":%d}",
                    type, fd);
        return fd;
    }
    default:
        return ks_system_ioctl(req, arg);
    }
}

static long ks_vm_ioctl(KsVm *vm, unsigned long req, void *arg)
{
    bool handled = false;
    long r;

    switch (req) {
    case KVM_CREATE_VCPU: {
        unsigned long id = (unsigned long)arg;
        KsVcpu *v;
        guint i;

        if (id >= ks_max_vcpus) {
            return ks_violation("R-31", "KVM_CREATE_VCPU", EINVAL, 0,
                                "vCPU id %lu >= KVM_CAP_MAX_VCPU_ID %u",
                                id, ks_max_vcpus);
        }
        for (i = 0; i < vm->vcpus->len; i++) {
            v = g_ptr_array_index(vm->vcpus, i);
            if (v->id == id) {
                return ks_violation("R-31", "KVM_CREATE_VCPU", EEXIST, 0,
                                    "vCPU id %lu exists", id);
            }
        }
        v = ks_vcpu_create(vm, id);
        if (!v) {
            return -ENOMEM;
        }
        return v->fd;
    }
    case KVM_CHECK_EXTENSION:
        return ks_check_extension(vm, (long)arg);
    case KVM_SET_USER_MEMORY_REGION: {
        struct kvm_userspace_memory_region *m = arg;
        struct kvm_userspace_memory_region2 m2 = {
            .slot = m->slot, .flags = m->flags,
            .guest_phys_addr = m->guest_phys_addr,
            .memory_size = m->memory_size,
            .userspace_addr = m->userspace_addr,
        };
        return ks_set_memory_region(vm, &m2, false);
    }
    case KVM_SET_USER_MEMORY_REGION2:
        return ks_set_memory_region(vm, arg, true);
    case KVM_CREATE_GUEST_MEMFD:
        return ks_create_gmem(vm, arg);
    case KVM_SET_MEMORY_ATTRIBUTES:
        return ks_set_memory_attributes(vm, arg);
    case KVM_GET_DIRTY_LOG:
        return ks_get_dirty_log(vm, arg);
    case KVM_CLEAR_DIRTY_LOG:
        return ks_clear_dirty_log(vm, arg);
    case KVM_MEMORY_ENCRYPT_OP:
        return ks_memory_encrypt_op(vm, arg);
    case KVM_MEMORY_ENCRYPT_REG_REGION:
    case KVM_MEMORY_ENCRYPT_UNREG_REGION:
        if (!vm->sev_active) {
            return -ENOTTY;
        }
        return 0;
    case KVM_ENABLE_CAP:
        return ks_enable_cap_vm(vm, arg);
    default:
        r = ks_vm_x86_ioctl(vm, req, arg, &handled);
        if (handled) {
            return r;
        }
        ks_unknown_ioctl("vm", req);
        return -ENOTTY;
    }
}

static long ks_gmem_ioctl(KsGmem *g, unsigned long req, void *arg)
{
    ks_unknown_ioctl("guest_memfd", req);
    return -ENOTTY;
}

/* ------------------------------------------------------------ interposition */

static int ks_open_dev(const char *path, int flags)
{
    KsFdKind kind;
    int fd;

    if (!path) {
        return -2;
    }
    if (!strcmp(path, "/dev/kvm")) {
        kind = KS_FD_KVM;
    } else if (!strcmp(path, "/dev/sev")) {
        kind = KS_FD_SEV;
    } else {
        return -2;
    }
    pthread_once(&ks_once, ks_late_init);
    pthread_mutex_lock(&ks_lock);
    fd = ks_fd_new(kind, NULL, kind == KS_FD_KVM ? "kvm-sim-kvm" :
                   "kvm-sim-sev", 0);
    pthread_mutex_unlock(&ks_lock);
    if (fd >= 0 && !(flags & O_CLOEXEC)) {
        fcntl(fd, F_SETFD, 0);
    }
    if (fd < 0) {
        errno = -fd;
        return -1;
    }
    return fd;
}

#define KS_OPEN_BODY(call)                                  \
    do {                                                    \
        mode_t mode = 0;                                    \
        int fd;                                             \
        if (flags & (O_CREAT | O_TMPFILE)) {                \
            va_list ap;                                     \
            va_start(ap, flags);                            \
            mode = va_arg(ap, mode_t);                      \
            va_end(ap);                                     \
        }                                                   \
        fd = ks_open_dev(path, flags);                      \
        if (fd != -2) {                                     \
            return fd;                                      \
        }                                                   \
        return call;                                        \
    } while (0)

int open(const char *path, int flags, ...)
{
    KS_OPEN_BODY(real_open(path, flags, mode));
}

int open64(const char *path, int flags, ...)
{
    KS_OPEN_BODY(real_open(path, flags, mode));
}

int __open_2(const char *path, int flags)
{
    int fd = ks_open_dev(path, flags);

    return fd != -2 ? fd : real_open(path, flags);
}

int __open64_2(const char *path, int flags)
{
    int fd = ks_open_dev(path, flags);

    return fd != -2 ? fd : real_open(path, flags);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    KS_OPEN_BODY(real_openat(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    KS_OPEN_BODY(real_openat(dirfd, path, flags, mode));
}

int close(int fd)
{
    if (ks_fds) {
        pthread_mutex_lock(&ks_lock);
        g_hash_table_remove(ks_fds, GINT_TO_POINTER(fd));
        pthread_mutex_unlock(&ks_lock);
    }
    return real_close(fd);
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    void *arg;
    KsFd *f;
    long r;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    /* the kernel takes the request as unsigned int (QEMU passes an int) */
    req = (unsigned int)req;

    pthread_mutex_lock(&ks_lock);
    f = ks_fd_lookup(fd);
    if (!f) {
        pthread_mutex_unlock(&ks_lock);
        return real_ioctl(fd, req, arg);
    }
    switch (f->kind) {
    case KS_FD_KVM:
        r = ks_kvm_ioctl(req, arg);
        break;
    case KS_FD_SEV:
        r = ks_sev_dev_ioctl(req, arg);
        break;
    case KS_FD_VM:
        r = ks_vm_ioctl(f->obj, req, arg);
        break;
    case KS_FD_VCPU:
        if (req == KVM_RUN) {
            /* drops and retakes ks_lock while it blocks */
            r = ks_vcpu_run(f->obj);
        } else {
            r = ks_vcpu_ioctl(f->obj, req, arg);
        }
        break;
    case KS_FD_GMEM:
        r = ks_gmem_ioctl(f->obj, req, arg);
        break;
    default:
        r = -ENOTTY;
    }
    pthread_mutex_unlock(&ks_lock);
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return r;
}
