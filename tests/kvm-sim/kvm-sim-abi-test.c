/*
 * Tests of the kvm-sim library, driven through ioctls (LD_PRELOADed)
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every rule of README.md is exercised here with an accepted and a
 * rejected case.  The launch digest is checked against a chain computed
 * here with gnutls (the simulator uses GLib): the two share no code.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <glib.h>
#include <gnutls/crypto.h>
#include <linux/kvm.h>
#include <linux/kvm_para.h>
#include <linux/psp-sev.h>
#include "kvm-sim-client.h"

#define PG 4096ULL
#define NPAGES 16
#define POLICY 0x30000ULL

static int kvm_fd = -1, sev_fd = -1;
static KvmSimClient *ctl;
static char *log_path;

/* ------------------------------------------------------------ helpers */

static int vm_new(unsigned long type)
{
    int fd = ioctl(kvm_fd, KVM_CREATE_VM, type);

    g_assert_cmpint(fd, >=, 0);
    return fd;
}

/* run a SEV command; returns 0 or -errno, *fw gets the firmware error */
static int sev_cmd(int vm, uint32_t id, void *data, uint32_t *fw)
{
    struct kvm_sev_cmd c = {
        .id = id, .data = (uintptr_t)data, .sev_fd = sev_fd,
    };
    int r = ioctl(vm, KVM_MEMORY_ENCRYPT_OP, &c);

    if (fw) {
        *fw = c.error;
    }
    return r < 0 ? -errno : r;
}

static int sev_cmd_fd(int vm, uint32_t id, void *data, uint32_t fd)
{
    struct kvm_sev_cmd c = { .id = id, .data = (uintptr_t)data, .sev_fd = fd };

    return ioctl(vm, KVM_MEMORY_ENCRYPT_OP, &c) < 0 ? -errno : 0;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

static char *req(const char *fmt, const char *arg)
{
    char *r;

    r = arg ? kvmsim_request(ctl, fmt, arg) : kvmsim_request(ctl, "%s", fmt);
    g_assert_nonnull(r);
    return r;
}

typedef struct SnpVm {
    int vm, gmem;
    uint8_t *shared;    /* userspace_addr of the slot */
} SnpVm;

/* SNP VM, INIT2, one 16-page guest_memfd slot at GPA 0, all private */
static SnpVm snp_vm_setup(bool all_private)
{
    SnpVm s;
    struct kvm_sev_init init = { 0 };
    struct kvm_create_guest_memfd g = { .size = NPAGES * PG };
    struct kvm_userspace_memory_region2 m = { 0 };
    struct kvm_memory_attributes a = {
        .address = 0, .size = NPAGES * PG,
        .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    };

    s.vm = vm_new(KVM_X86_SNP_VM);
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_INIT2, &init, NULL), ==, 0);
    s.gmem = ioctl(s.vm, KVM_CREATE_GUEST_MEMFD, &g);
    g_assert_cmpint(s.gmem, >=, 0);
    s.shared = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert(s.shared != MAP_FAILED);
    m.slot = 0;
    m.flags = KVM_MEM_GUEST_MEMFD;
    m.memory_size = NPAGES * PG;
    m.userspace_addr = (uintptr_t)s.shared;
    m.guest_memfd = s.gmem;
    g_assert_cmpint(xioctl(s.vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, 0);
    if (all_private) {
        g_assert_cmpint(xioctl(s.vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, 0);
    }
    return s;
}

static int snp_start(int vm, uint64_t policy)
{
    struct kvm_sev_snp_launch_start st = { .policy = policy };

    return sev_cmd(vm, KVM_SEV_SNP_LAUNCH_START, &st, NULL);
}

static int snp_update(int vm, uint64_t gfn, void *src, uint64_t len,
                      uint8_t type, uint32_t *fw,
                      struct kvm_sev_snp_launch_update *out)
{
    struct kvm_sev_snp_launch_update u = {
        .gfn_start = gfn, .uaddr = (uintptr_t)src, .len = len, .type = type,
    };
    int r = sev_cmd(vm, KVM_SEV_SNP_LAUNCH_UPDATE, &u, fw);

    if (out) {
        *out = u;
    }
    return r;
}

static void assert_violation(const char *rule)
{
    g_autofree char *r = req("query violations", NULL);
    g_autofree char *pat = g_strdup_printf("\"rule\":\"%s\"", rule);

    g_assert_nonnull(strstr(r, pat));
}

/* "query violations" so far, to find those a later call adds */
static char *violations_mark(void)
{
    return req("query violations", NULL);
}

/* the violations recorded since @mark (its JSON list items, or "") */
static char *violations_since(const char *mark)
{
    g_autofree char *now = req("query violations", NULL);
    size_t n = strlen(mark) - 2;        /* without "]}" */

    g_assert_cmpint(strncmp(now, mark, n), ==, 0);
    return g_strndup(now + n, strlen(now) - n - 2);
}

static void assert_new_violation(const char *mark, const char *rule)
{
    g_autofree char *v = violations_since(mark);
    g_autofree char *pat = g_strdup_printf("\"rule\":\"%s\"", rule);

    g_assert_nonnull(strstr(v, pat));
}

static void assert_no_new_violation(const char *mark)
{
    g_autofree char *v = violations_since(mark);

    g_assert_cmpstr(v, ==, "");
}

/* ------------------------------------------------ independent digest */

/*
 * SEV-SNP firmware ABI, PAGE_INFO: 0x70 bytes hashed with SHA-384; the
 * result is the next launch digest.  Computed here with gnutls.
 */
typedef struct __attribute__((packed)) PageInfo {
    uint8_t digest_cur[48];
    uint8_t contents[48];
    uint16_t length;
    uint8_t page_type;
    uint8_t imi_page;
    uint8_t vmpl3_perms, vmpl2_perms, vmpl1_perms, reserved;
    uint64_t gpa;
} PageInfo;

G_STATIC_ASSERT(sizeof(PageInfo) == 0x70);

static void test_sha384(const void *d, size_t n, uint8_t out[48])
{
    g_assert_cmpint(gnutls_hash_fast(GNUTLS_DIG_SHA384, d, n, out), ==, 0);
}

static void chain(uint8_t digest[48], uint8_t type, uint64_t gpa,
                  const void *page)
{
    PageInfo pi = { .length = 0x70, .page_type = type, .gpa = gpa };

    memcpy(pi.digest_cur, digest, 48);
    if (page) {
        test_sha384(page, PG, pi.contents);
    }
    test_sha384(&pi, sizeof(pi), digest);
}

static char *hex48(const uint8_t *d)
{
    GString *s = g_string_new("");
    int i;

    for (i = 0; i < 48; i++) {
        g_string_append_printf(s, "%02x", d[i]);
    }
    return g_string_free(s, FALSE);
}

/* ------------------------------------------------------------ tests */

static void test_sha384_known_answer(void)
{
    /* FIPS 180-2 test vector "abc" */
    static const char abc[] = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1"
        "631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7";
    uint8_t d[48];
    g_autofree char *h = NULL;

    test_sha384("abc", 3, d);
    h = hex48(d);
    g_assert_cmpstr(h, ==, abc);
}

static void test_caps(void)
{
    int vm, snp, cpu, ver = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);

    g_assert_cmpint(ver, ==, KVM_API_VERSION);
    g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES), ==,
                    0x1d);
    g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION,
                          KVM_CAP_EXIT_HYPERCALL), ==, 1 << 12);
    g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION,
                          KVM_CAP_X86_ROBUST_SINGLESTEP), ==, 1);
    g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MCE), ==, 32);
    g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION,
                          KVM_CAP_BINARY_STATS_FD), ==, 1);
    /* */
    g_assert_cmpint(ioctl(kvm_fd, KVM_CREATE_VM, 1UL), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    assert_violation("R-01");
    vm = vm_new(KVM_X86_DEFAULT_VM);
    snp = vm_new(KVM_X86_SNP_VM);
    /* */
    cpu = ioctl(vm, KVM_CREATE_VCPU, 3UL);
    g_assert_cmpint(cpu, >=, 0);
    g_assert_cmpint(ioctl(vm, KVM_CREATE_VCPU, 3UL), ==, -1);
    g_assert_cmpint(errno, ==, EEXIST);
    g_assert_cmpint(ioctl(vm, KVM_CREATE_VCPU,
                          (unsigned long)ioctl(kvm_fd, KVM_CHECK_EXTENSION,
                                               KVM_CAP_MAX_VCPU_ID)), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    assert_violation("R-31");
    close(cpu);
    g_assert_cmpint(ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD), ==, 0);
    g_assert_cmpint(ioctl(snp, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD), ==,
                    1);
    g_assert_cmpint(ioctl(snp, KVM_CHECK_EXTENSION,
                          KVM_CAP_MEMORY_ATTRIBUTES), ==,
                    KVM_MEMORY_ATTRIBUTE_PRIVATE);
    g_assert_cmpint(ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM), ==,
                    1);
    g_assert_cmpint(ioctl(snp, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM), ==,
                    0);
    close(vm);
    close(snp);
}

static void test_cpuid(void)
{
    struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + 64 * sizeof(c->entries[0]));
    uint32_t i;
    bool found = false;

    c->nent = 1;
    g_assert_cmpint(xioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c), ==, -E2BIG);
    c->nent = 64;
    g_assert_cmpint(xioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c), ==, 0);
    for (i = 0; i < c->nent; i++) {
        /* */
        if (c->entries[i].function == 0x8000001f) {
            g_assert_cmpint(c->entries[i].eax & 0x1a, ==, 0x1a);
            g_assert_cmpint(c->entries[i].ebx & 0x3f, ==, 51);
            /* no "PA bits reduction", no VMPLs */
            g_assert_cmpint(c->entries[i].ebx >> 6, ==, 0);
            found = true;
        }
        if (c->entries[i].function == 0x80000008) {
            /* raw MAXPHYADDR 48, virtual 48, GuestPhysAddrSize 48 */
            g_assert_cmphex(c->entries[i].eax, ==, 0x303030);
        }
        if (c->entries[i].function == 0xd && c->entries[i].index == 1) {
            g_assert_cmphex(c->entries[i].eax, ==, 0xf);
            g_assert_cmphex(c->entries[i].ebx, ==, 0x340);
        }
    }
    g_assert_true(found);
    g_free(c);
}

/* KVM_X86_GET_MCE_CAP_SUPPORTED, KVM_X86_SETUP_MCE */
static void test_mce(void)
{
    int vm = vm_new(KVM_X86_SNP_VM);
    int cpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    uint64_t sup = 0, cap;

    g_assert_cmpint(cpu, >=, 0);
    g_assert_cmpint(xioctl(kvm_fd, KVM_X86_GET_MCE_CAP_SUPPORTED, &sup), ==,
                    0);
    g_assert_cmphex(sup, ==, (1ULL << 8) | (1ULL << 24));
    /* what QEMU asks for: MCG_CTL_P | MCG_SER_P, 10 banks */
    cap = sup | 10;
    g_assert_cmpint(xioctl(cpu, KVM_X86_SETUP_MCE, &cap), ==, 0);
    cap = 32 | 0x30000;                 /* bits 23:16 are not checked */
    g_assert_cmpint(xioctl(cpu, KVM_X86_SETUP_MCE, &cap), ==, 0);
    cap = sup;                          /* no bank */
    g_assert_cmpint(xioctl(cpu, KVM_X86_SETUP_MCE, &cap), ==, -EINVAL);
    cap = sup | 33;                     /* more than KVM_MAX_MCE_BANKS */
    g_assert_cmpint(xioctl(cpu, KVM_X86_SETUP_MCE, &cap), ==, -EINVAL);
    cap = (1ULL << 27) | 10;            /* MCG_LMCE_P: VMX hosts only */
    g_assert_cmpint(xioctl(cpu, KVM_X86_SETUP_MCE, &cap), ==, -EINVAL);
    assert_violation("R-33");
    close(cpu);
    close(vm);
}

/* KVM_GET_STATS_FD: header, id string, no descriptors; read only */
static void test_stats_fd(void)
{
    int vm = vm_new(KVM_X86_DEFAULT_VM);
    int cpu = ioctl(vm, KVM_CREATE_VCPU, 2UL);
    int fds[2] = { ioctl(vm, KVM_GET_STATS_FD, 0), -1 };
    g_autofree char *vm_id = g_strdup_printf("kvm-%d", getpid());
    g_autofree char *cpu_id = g_strdup_printf("kvm-%d/vcpu-2", getpid());
    int i;

    g_assert_cmpint(cpu, >=, 0);
    fds[1] = ioctl(cpu, KVM_GET_STATS_FD, 0);
    for (i = 0; i < 2; i++) {
        struct kvm_stats_header h;
        char id[48];

        g_assert_cmpint(fds[i], >=, 0);
        g_assert_cmpint(pread(fds[i], &h, sizeof(h), 0), ==, sizeof(h));
        g_assert_cmpint(h.flags, ==, 0);
        g_assert_cmpint(h.name_size, ==, 48);
        g_assert_cmpint(h.num_desc, ==, 0);
        g_assert_cmpint(h.id_offset, ==, sizeof(h));
        g_assert_cmpint(h.desc_offset, ==, sizeof(h) + 48);
        g_assert_cmpint(h.data_offset, ==, h.desc_offset);
        g_assert_cmpint(pread(fds[i], id, sizeof(id), h.id_offset), ==, 48);
        g_assert_cmpstr(id, ==, i ? cpu_id : vm_id);
        g_assert_cmpint(read(fds[i], &h, sizeof(h)), ==, sizeof(h));
        g_assert_cmpint(pwrite(fds[i], "x", 1, 0), ==, -1);
        g_assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
        close(fds[i]);
    }
    close(cpu);
    close(vm);
}

static void test_init_rules(void)
{
    struct kvm_sev_init init = { 0 };
    int vm, cpu;

    /* legacy INIT only on the default VM type */
    vm = vm_new(KVM_X86_SNP_VM);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT, NULL, NULL), ==, -EINVAL);
    assert_violation("R-02");
    /* R-04 flags, R-05 vmsa_features, R-06 ghcb_version */
    init.flags = 1;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EINVAL);
    assert_violation("R-04");
    init.flags = 0;
    init.vmsa_features = 1ULL << 2;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EINVAL);
    assert_violation("R-05");
    init.vmsa_features = 0;
    init.ghcb_version = 3;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EINVAL);
    assert_violation("R-06");
    init.ghcb_version = 2;
    init.vmsa_features = 1ULL << 5;     /* DEBUG_SWAP is supported */
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, 0);
    /* a second INIT2 or legacy commands on an initialized SNP VM */
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EPERM);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_START, NULL, NULL), ==, -EPERM);
    assert_violation("R-09");
    close(vm);

    /* INIT2 on the default VM type */
    vm = vm_new(KVM_X86_DEFAULT_VM);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EINVAL);
    close(vm);

    /* ghcb_version on a plain SEV VM */
    vm = vm_new(KVM_X86_SEV_VM);
    init.vmsa_features = 0;
    init.ghcb_version = 1;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EINVAL);
    init.ghcb_version = 0;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, 0);
    close(vm);

    /* a second INIT2 on an SEV-ES VM */
    vm = vm_new(KVM_X86_SEV_ES_VM);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, 0);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EINVAL);
    assert_violation("R-03");
    close(vm);

    /* after vCPUs were created */
    vm = vm_new(KVM_X86_SEV_ES_VM);
    cpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    g_assert_cmpint(cpu, >=, 0);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT2, &init, NULL), ==, -EINVAL);
    assert_violation("R-07");
    close(cpu);
    close(vm);

    /* SEV commands before INIT */
    vm = vm_new(KVM_X86_DEFAULT_VM);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_FINISH, NULL, NULL), ==,
                    -ENOTTY);
    assert_violation("R-10");
    close(vm);
}

static void test_gmem_attrs(void)
{
    struct kvm_create_guest_memfd g = { .size = 3 * PG };
    struct kvm_memory_attributes a = {
        .address = PG, .size = 2 * PG,
        .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    };
    /* queries are about the VM created last */
    int dvm = vm_new(KVM_X86_DEFAULT_VM), vm = vm_new(KVM_X86_SNP_VM);
    int fd;
    g_autofree char *r = NULL;

    /* */
    g.size = PG + 1;
    g_assert_cmpint(xioctl(vm, KVM_CREATE_GUEST_MEMFD, &g), ==, -EINVAL);
    g.size = 0;
    g_assert_cmpint(xioctl(vm, KVM_CREATE_GUEST_MEMFD, &g), ==, -EINVAL);
    g.size = PG;
    g.flags = 1;
    g_assert_cmpint(xioctl(vm, KVM_CREATE_GUEST_MEMFD, &g), ==, -EINVAL);
    assert_violation("R-23");
    g.flags = 0;
    g.size = 4 * PG;
    fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
    g_assert_cmpint(fd, >=, 0);
    /* a real file: QEMU punches holes into it */
    g_assert_cmpint(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              0, PG), ==, 0);
    close(fd);

    /* */
    g_assert_cmpint(xioctl(dvm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, -EINVAL);
    a.flags = 1;
    g_assert_cmpint(xioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, -EINVAL);
    a.flags = 0;
    a.attributes = 1;
    g_assert_cmpint(xioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, -EINVAL);
    a.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE;
    a.address = 1;
    g_assert_cmpint(xioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, -EINVAL);
    a.address = PG;
    a.size = 0;
    g_assert_cmpint(xioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, -EINVAL);
    assert_violation("R-24");
    a.size = 4 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, 0);
    /* make [2 * PG, 3 * PG) shared again */
    a.address = 2 * PG;
    a.size = PG;
    a.attributes = 0;
    g_assert_cmpint(xioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, 0);
    r = req("query attrs 0 0x6000", NULL);
    g_assert_cmpstr(r, ==, "{\"ok\":true,\"private\":[[4096,4096],"
                    "[12288,8192]],\"shared\":[[0,4096],[8192,4096],"
                    "[20480,4096]]}");
    close(vm);
    close(dvm);
}

static void test_memslots(void)
{
    int vm = vm_new(KVM_X86_SNP_VM), dvm = vm_new(KVM_X86_DEFAULT_VM);
    int vm2 = vm_new(KVM_X86_SNP_VM);
    struct kvm_create_guest_memfd g = { .size = 4 * PG };
    int gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
    int gmem2 = ioctl(vm2, KVM_CREATE_GUEST_MEMFD, &g);
    void *mem = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region2 m = {
        .slot = 1, .flags = KVM_MEM_GUEST_MEMFD, .guest_phys_addr = 0,
        .memory_size = 4 * PG, .userspace_addr = (uintptr_t)mem,
        .guest_memfd = gmem,
    };
    struct kvm_userspace_memory_region m1 = {
        .slot = 1, .flags = KVM_MEM_GUEST_MEMFD, .memory_size = PG,
        .userspace_addr = (uintptr_t)mem,
    };

    /* */
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION, &m1), ==, -EINVAL);
    g_assert_cmpint(xioctl(dvm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EINVAL);
    m.flags = KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EINVAL);
    m.flags = KVM_MEM_READONLY;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EINVAL);
    assert_violation("R-25");
    m1.flags = KVM_MEM_READONLY;
    g_assert_cmpint(xioctl(dvm, KVM_SET_USER_MEMORY_REGION, &m1), ==, 0);
    /* */
    m.flags = KVM_MEM_GUEST_MEMFD;
    m.guest_memfd_offset = 1;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EINVAL);
    assert_violation("R-26");
    /* */
    m.guest_memfd_offset = PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EINVAL);
    m.guest_memfd_offset = 0;
    m.guest_memfd = gmem2;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EINVAL);
    m.guest_memfd = 9999;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EBADF);
    assert_violation("R-27");
    m.guest_memfd = gmem;
    m.memory_size = 2 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, 0);
    /* the same guest_memfd range bound twice */
    m.slot = 2;
    m.guest_phys_addr = 8 * PG;
    m.guest_memfd_offset = PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, -EINVAL);
    m.guest_memfd_offset = 2 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &m), ==, 0);
    /* a slot overlapping another one */
    m1.slot = 3;
    m1.flags = 0;
    m1.guest_phys_addr = 9 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION, &m1), ==, -EEXIST);
    m1.guest_phys_addr = 10 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION, &m1), ==, 0);
    close(gmem);
    close(gmem2);
    close(vm);
    close(vm2);
    close(dvm);
    munmap(mem, 8 * PG);
}

/* what may change on an existing slot, deletion */
static void test_memslot_changes(void)
{
    int vm = vm_new(KVM_X86_SNP_VM);
    struct kvm_create_guest_memfd g = { .size = 4 * PG };
    int gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
    void *mem = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region2 priv = {
        .slot = 1, .flags = KVM_MEM_GUEST_MEMFD, .guest_phys_addr = 0,
        .memory_size = 4 * PG, .userspace_addr = (uintptr_t)mem,
        .guest_memfd = gmem,
    };
    struct kvm_userspace_memory_region2 shared = {
        .slot = 2, .guest_phys_addr = 16 * PG, .memory_size = 4 * PG,
        .userspace_addr = (uintptr_t)mem + 4 * PG,
    };
    g_autofree char *mark = NULL;

    g_assert_cmpint(gmem, >=, 0);
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &priv), ==, 0);
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==, 0);

    /* accepted: dirty logging on and off, the same again, a move */
    mark = violations_mark();
    shared.flags = KVM_MEM_LOG_DIRTY_PAGES;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==, 0);
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==, 0);
    shared.flags = 0;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==, 0);
    shared.guest_phys_addr = 32 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==, 0);
    assert_no_new_violation(mark);

    /* rejected: a guest_memfd slot re-issued unchanged (what QEMU did) */
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &priv), ==,
                    -EINVAL);
    assert_new_violation(mark, "R-26");
    /* ... without KVM_MEM_GUEST_MEMFD, with another size or address */
    priv.flags = 0;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &priv), ==,
                    -EINVAL);
    shared.memory_size = 2 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==,
                    -EINVAL);
    shared.memory_size = 4 * PG;
    shared.userspace_addr += PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==,
                    -EINVAL);
    shared.userspace_addr -= PG;
    /* moved onto the private slot */
    shared.guest_phys_addr = 2 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==,
                    -EEXIST);
    /* deleting a slot that does not exist */
    shared.slot = 7;
    shared.memory_size = 0;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==,
                    -EINVAL);

    /* accepted: a private slot can be deleted, then created again */
    priv.flags = KVM_MEM_GUEST_MEMFD;
    priv.memory_size = 0;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &priv), ==, 0);
    priv.memory_size = 4 * PG;
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &priv), ==, 0);
    close(gmem);
    close(vm);
    munmap(mem, 8 * PG);
}

/* dirty logs exist only for slots with KVM_MEM_LOG_DIRTY_PAGES */
static void test_dirty_log(void)
{
    int vm = vm_new(KVM_X86_SNP_VM);
    struct kvm_create_guest_memfd g = { .size = 4 * PG };
    int gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
    void *mem = mmap(NULL, 132 * PG, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region2 priv = {
        .slot = 1, .flags = KVM_MEM_GUEST_MEMFD, .memory_size = 4 * PG,
        .userspace_addr = (uintptr_t)mem, .guest_memfd = gmem,
    };
    struct kvm_userspace_memory_region2 shared = {
        .slot = 2, .flags = KVM_MEM_LOG_DIRTY_PAGES,
        .guest_phys_addr = 256 * PG, .memory_size = 128 * PG,
        .userspace_addr = (uintptr_t)mem + 4 * PG,
    };
    struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
    uint64_t bitmap[2] = { ~0ULL, ~0ULL };
    struct kvm_dirty_log d = { .slot = 2, .dirty_bitmap = bitmap };
    struct kvm_clear_dirty_log c = { .slot = 2, .num_pages = 64,
                                     .dirty_bitmap = bitmap };

    g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION,
                          KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), ==,
                    KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
                    KVM_DIRTY_LOG_INITIALLY_SET);
    cap.args[0] = KVM_DIRTY_LOG_INITIALLY_SET;  /* without PROTECT_ENABLE */
    g_assert_cmpint(xioctl(vm, KVM_ENABLE_CAP, &cap), ==, -EINVAL);
    cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
                  KVM_DIRTY_LOG_INITIALLY_SET;
    g_assert_cmpint(xioctl(vm, KVM_ENABLE_CAP, &cap), ==, 0);
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &priv), ==, 0);
    g_assert_cmpint(xioctl(vm, KVM_SET_USER_MEMORY_REGION2, &shared), ==, 0);

    /* accepted: the logged slot */
    g_assert_cmpint(xioctl(vm, KVM_GET_DIRTY_LOG, &d), ==, 0);
    g_assert_cmphex(bitmap[0], ==, 0);
    g_assert_cmpint(xioctl(vm, KVM_CLEAR_DIRTY_LOG, &c), ==, 0);
    c.first_page = 64;
    c.num_pages = 64;
    g_assert_cmpint(xioctl(vm, KVM_CLEAR_DIRTY_LOG, &c), ==, 0);
    /* rejected: the guest_memfd slot, a missing one, one out of range */
    d.slot = 1;
    g_assert_cmpint(xioctl(vm, KVM_GET_DIRTY_LOG, &d), ==, -ENOENT);
    d.slot = 5;
    g_assert_cmpint(xioctl(vm, KVM_GET_DIRTY_LOG, &d), ==, -ENOENT);
    d.slot = 1 << 16;
    g_assert_cmpint(xioctl(vm, KVM_GET_DIRTY_LOG, &d), ==, -EINVAL);
    c.slot = 1;
    c.first_page = 0;
    c.num_pages = 4;
    g_assert_cmpint(xioctl(vm, KVM_CLEAR_DIRTY_LOG, &c), ==, -ENOENT);
    /* unaligned start, past the end, a short count not at the end */
    c.slot = 2;
    c.first_page = 1;
    g_assert_cmpint(xioctl(vm, KVM_CLEAR_DIRTY_LOG, &c), ==, -EINVAL);
    c.first_page = 64;
    c.num_pages = 65;
    g_assert_cmpint(xioctl(vm, KVM_CLEAR_DIRTY_LOG, &c), ==, -EINVAL);
    c.first_page = 0;
    c.num_pages = 10;
    g_assert_cmpint(xioctl(vm, KVM_CLEAR_DIRTY_LOG, &c), ==, -EINVAL);
    assert_violation("R-40");
    close(gmem);
    close(vm);
    munmap(mem, 132 * PG);
}

static void test_snp_launch_start(void)
{
    SnpVm s = snp_vm_setup(true);
    struct kvm_sev_snp_launch_start st = { .policy = POLICY, .flags = 1 };
    int dvm = vm_new(KVM_X86_DEFAULT_VM);

    /* */
    g_assert_cmpint(snp_start(dvm, POLICY), ==, -ENOTTY);
    /* */
    g_assert_cmpint(snp_update(s.vm, 0, s.shared, PG,
                               KVM_SEV_SNP_PAGE_TYPE_NORMAL, NULL, NULL),
                    ==, -EINVAL);
    assert_violation("R-13");
    /* */
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_START, &st, NULL), ==,
                    -EINVAL);
    g_assert_cmpint(snp_start(s.vm, 0x10000), ==, -EINVAL);    /* no MBO */
    g_assert_cmpint(snp_start(s.vm, 0x20000), ==, -EINVAL);    /* no SMT */
    g_assert_cmpint(snp_start(s.vm, POLICY | (1 << 20)), ==, -EINVAL);
    g_assert_cmpint(snp_start(s.vm, POLICY | (1 << 18)), ==, -EINVAL);
    assert_violation("R-12");
    /* */
    st.flags = 0;
    g_assert_cmpint(sev_cmd_fd(s.vm, KVM_SEV_SNP_LAUNCH_START, &st, kvm_fd),
                    ==, -EBADF);
    assert_violation("R-11");
    g_assert_cmpint(snp_start(s.vm, POLICY | (1 << 19)), ==, 0);
    g_assert_cmpint(snp_start(s.vm, POLICY), ==, -EINVAL);
    close(s.vm);
    close(s.gmem);
    close(dvm);
}

static void test_snp_launch_update(void)
{
    SnpVm s = snp_vm_setup(false);
    struct kvm_memory_attributes a = {
        .address = 0, .size = 2 * PG,
        .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    };
    struct kvm_sev_snp_launch_update out;
    uint8_t *src = g_malloc0(4 * PG);
    uint32_t fw;

    g_assert_cmpint(snp_start(s.vm, POLICY), ==, 0);
    /* */
    g_assert_cmpint(snp_update(s.vm, 0, src, 100, 1, NULL, NULL), ==, -EINVAL);
    g_assert_cmpint(snp_update(s.vm, 0, src, PG, 2, NULL, NULL), ==, -EINVAL);
    g_assert_cmpint(snp_update(s.vm, 0, src, PG, 7, NULL, NULL), ==, -EINVAL);
    assert_violation("R-14");
    /* outside any guest_memfd slot */
    g_assert_cmpint(snp_update(s.vm, 100, src, PG, 1, NULL, NULL), ==,
                    -EINVAL);
    assert_violation("R-15");
    /* not private */
    g_assert_cmpint(snp_update(s.vm, 0, src, PG, 1, NULL, NULL), ==, -EINVAL);
    assert_violation("R-16");
    g_assert_cmpint(xioctl(s.vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, 0);
    /* partial progress stops at the first shared page */
    memset(src, 0xaa, 4 * PG);
    g_assert_cmpint(snp_update(s.vm, 0, src, 4 * PG, 1, NULL, &out), ==, 0);
    g_assert_cmpint(out.gfn_start, ==, 2);
    g_assert_cmpint(out.len, ==, 2 * PG);
    g_assert_cmpint(out.uaddr, ==, (uintptr_t)src + 2 * PG);
    /* populated twice */
    g_assert_cmpint(snp_update(s.vm, 0, src, PG, 1, NULL, NULL), ==, -EEXIST);
    assert_violation("R-17");
    /* contents reached the guest_memfd */
    {
        uint8_t b[16];
        g_assert_cmpint(pread(s.gmem, b, sizeof(b), PG), ==, sizeof(b));
        g_assert_cmpint(b[0], ==, 0xaa);
    }
    /* injected failure */
    a.address = 2 * PG;
    a.size = 14 * PG;
    g_assert_cmpint(xioctl(s.vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==, 0);
    g_free(req("fail KVM_SEV_SNP_LAUNCH_UPDATE 0x1a", NULL));
    g_assert_cmpint(snp_update(s.vm, 2, src, PG, 1, &fw, NULL), ==, -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_PAGE_STATE);
    assert_violation("R-30");
    g_assert_cmpint(snp_update(s.vm, 2, NULL, PG, 3, &fw, NULL), ==, 0);
    /* R-30 with an errno and a count: the next two commands fail */
    g_free(req("fail KVM_SEV_SNP_LAUNCH_UPDATE 0 11 2", NULL));
    g_assert_cmpint(snp_update(s.vm, 3, src, PG, 1, &fw, NULL), ==, -EAGAIN);
    g_assert_cmpint(fw, ==, 0);
    g_assert_cmpint(snp_update(s.vm, 3, src, PG, 1, &fw, NULL), ==, -EAGAIN);
    g_assert_cmpint(snp_update(s.vm, 3, src, PG, 1, &fw, NULL), ==, 0);
    {
        g_autofree char *x = req("fail KVM_SEV_SNP_LAUNCH_UPDATE 0 11 0",
                                 NULL);
        g_assert_nonnull(strstr(x, "\"ok\":false"));     /* count 0 */
    }
    close(s.vm);
    close(s.gmem);
    g_free(src);
}

static void test_snp_cpuid_page(void)
{
    SnpVm s = snp_vm_setup(true);
    uint32_t *page = g_malloc0(PG);
    uint32_t fw;

    g_assert_cmpint(snp_start(s.vm, POLICY), ==, 0);
    /* one entry: leaf 0x80000001 with an ECX bit the platform lacks */
    page[0] = 1;
    page[4] = 0x80000001;       /* eax_in */
    page[4 + 8] = 0x1;          /* ecx: LAHF */
    page[4 + 8] |= 1u << 2;     /* SVM: not reported by KVM here */
    g_assert_cmpint(snp_update(s.vm, 5, page, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==,
                    -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_PARAM);
    assert_violation("R-18");
    /* the corrected page was written back: the bit is gone */
    g_assert_cmpint(page[4 + 8], ==, 0x1);
    g_assert_cmpint(snp_update(s.vm, 5, page, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    close(s.vm);
    close(s.gmem);
    g_free(page);
}

/* ------------------------------------------------ CPUID page rules */

typedef struct __attribute__((packed)) CpuidFn {
    uint32_t eax_in, ecx_in;
    uint64_t xcr0_in, xss_in;
    uint32_t eax, ebx, ecx, edx;
    uint64_t reserved;
} CpuidFn;

typedef struct CpuidPage {
    uint32_t count, r1;
    uint64_t r2;
    CpuidFn fn[64];
} CpuidPage;

/*
 * A page as a Linux 6.12 guest wants it (the platform's XSAVE is x87,
 * SSE and AVX): leaves up to 0xd and 0x8000001f, 0xd.0 and 0xd.1 for the
 * base size (XCR0_IN 1, EBX 0x240), 0xd.2 for AVX
 */
static CpuidPage *good_cpuid_page(void)
{
    CpuidPage *p = g_malloc0(PG);
    const CpuidFn fn[] = {
        { .eax_in = 0, .eax = 0xd },
        { .eax_in = 0xd, .ecx_in = 0, .xcr0_in = 1, .eax = 0x7,
          .ebx = 0x240, .ecx = 0x340 },
        { .eax_in = 0xd, .ecx_in = 1, .xcr0_in = 1, .eax = 0xf,
          .ebx = 0x240 },
        { .eax_in = 0xd, .ecx_in = 2, .eax = 0x100, .ebx = 0x240 },
        { .eax_in = 0x80000000, .eax = 0x8000001f },
        { .eax_in = 0x8000001f, .eax = 0x1a, .ebx = 51 },
    };

    memcpy(p->fn, fn, sizeof(fn));
    p->count = G_N_ELEMENTS(fn);
    return p;
}

/* "query cpuid-guest": what the guest's CPUID returns, from the page */
static void assert_guest_reads(const char *leaf, const char *expect)
{
    g_autofree char *r = req("query cpuid-guest %s", leaf);

    g_assert_cmpstr(r, ==, expect);
}

/*
 * R-18's XSAVE checks (the firmware's), G-01..G-06 (a Linux guest's and
 * OVMF's), "query cpuid-page" and "query cpuid-guest"
 */
static void test_cpuid_page_rules(void)
{
    SnpVm s = snp_vm_setup(true);
    g_autofree CpuidPage *p = good_cpuid_page();
    g_autofree char *mark = NULL;
    g_autofree char *r = NULL;
    uint32_t fw;
    int gfn = 0;

    g_assert_cmpint(snp_start(s.vm, POLICY), ==, 0);

    /* accepted by the firmware and usable by the guest */
    mark = violations_mark();
    g_assert_cmpint(snp_update(s.vm, gfn++, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    assert_no_new_violation(mark);
    r = req("query cpuid-page", NULL);
    g_assert_nonnull(strstr(r, "\"count\":6,"));
    g_assert_nonnull(strstr(r, "{\"leaf\":13,\"subleaf\":1,\"xcr0_in\":1,"
                            "\"xss_in\":0,\"eax\":15,\"ebx\":576,"));
    /* the guest computes the sizes for its XCR0 */
    assert_guest_reads("0xd 0 1", "{\"ok\":true,\"fails\":false,"
                       "\"found\":true,\"eax\":7,\"ebx\":576,\"ecx\":832,"
                       "\"edx\":0}");
    assert_guest_reads("0xd 0 7", "{\"ok\":true,\"fails\":false,"
                       "\"found\":true,\"eax\":7,\"ebx\":832,\"ecx\":832,"
                       "\"edx\":0}");
    assert_guest_reads("0xd 1 7", "{\"ok\":true,\"fails\":false,"
                       "\"found\":true,\"eax\":15,\"ebx\":832,\"ecx\":0,"
                       "\"edx\":0}");
    /* in range, not in the page: zeros */
    assert_guest_reads("0x6 0", "{\"ok\":true,\"fails\":false,"
                       "\"found\":false,\"eax\":0,\"ebx\":0,\"ecx\":0,"
                       "\"edx\":0}");

    /* G-02: XCR0_IN of all the components, as QEMU gave it */
    p->fn[1].xcr0_in = 7;
    p->fn[1].ebx = 0x340;
    p->fn[2].xcr0_in = 7;
    p->fn[2].ebx = 0x340;
    g_free(mark);
    mark = violations_mark();
    g_assert_cmpint(snp_update(s.vm, gfn++, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    assert_new_violation(mark, "G-02");
    assert_guest_reads("0xd 0 1", "{\"ok\":true,\"fails\":false,"
                       "\"found\":false,\"eax\":0,\"ebx\":576,\"ecx\":0,"
                       "\"edx\":0}");
    assert_guest_reads("0xd 1 1", "{\"ok\":true,\"fails\":true,"
                       "\"found\":false,\"eax\":0,\"ebx\":0,\"ecx\":0,"
                       "\"edx\":0}");

    /* G-03: a base entry, but after another one, which OVMF reads */
    p->fn[6] = p->fn[1];
    p->fn[6].xcr0_in = 1;
    p->fn[6].ebx = 0x240;
    p->count = 7;
    g_free(mark);
    mark = violations_mark();
    g_assert_cmpint(snp_update(s.vm, gfn++, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    assert_new_violation(mark, "G-03");

    /* G-04: neither XSAVEC nor XSAVES; G-05: AVX without its 0xd.2 */
    g_free(p);
    p = good_cpuid_page();
    p->fn[2].eax = 0x1;
    p->fn[3].eax_in = 0x7;      /* 0xd.2 is gone */
    p->fn[3].eax = p->fn[3].ebx = 0;
    g_free(mark);
    mark = violations_mark();
    g_assert_cmpint(snp_update(s.vm, gfn++, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    assert_new_violation(mark, "G-04");
    assert_new_violation(mark, "G-05");
    assert_guest_reads("0xd 0 7", "{\"ok\":true,\"fails\":true,"
                       "\"found\":true,\"eax\":7,\"ebx\":576,\"ecx\":832,"
                       "\"edx\":0}");

    /* G-06: no SEV leaf in range */
    g_free(p);
    p = good_cpuid_page();
    p->fn[4].eax = 0x80000008;
    g_free(mark);
    mark = violations_mark();
    g_assert_cmpint(snp_update(s.vm, gfn++, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    assert_new_violation(mark, "G-06");

    /* G-01: an empty page */
    memset(p, 0, PG);
    g_free(mark);
    mark = violations_mark();
    g_assert_cmpint(snp_update(s.vm, gfn++, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    assert_new_violation(mark, "G-01");

    /* the base entry with the size of all the components */
    g_free(p);
    p = good_cpuid_page();
    p->fn[1].ebx = 0x340;
    g_assert_cmpint(snp_update(s.vm, gfn, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==,
                    -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_PARAM);
    g_assert_cmphex(p->fn[1].ebx, ==, 0x240);   /* corrected */
    /* 0xd.1 EBX for XCR0_IN 7 is 0x340; 0xd.0 without SSE */
    p->fn[2].xcr0_in = 7;
    p->fn[1].eax = 0x5;
    g_assert_cmpint(snp_update(s.vm, gfn, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==,
                    -EIO);
    g_assert_cmphex(p->fn[2].ebx, ==, 0x340);
    g_assert_cmphex(p->fn[1].eax, ==, 0x7);
    /* a reserved field */
    p->fn[4].reserved = 1;
    g_assert_cmpint(snp_update(s.vm, gfn, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==,
                    -EIO);
    assert_violation("R-18");
    p->fn[4].reserved = 0;
    g_assert_cmpint(snp_update(s.vm, gfn, p, PG,
                               KVM_SEV_SNP_PAGE_TYPE_CPUID, &fw, NULL), ==, 0);
    close(s.vm);
    close(s.gmem);
}

/* the VMSA of a reset vCPU as this test expects it (see README "VMSA") */
static void expected_vmsa(uint8_t *p, uint64_t sev_features, uint64_t rdx)
{
    static const struct { uint16_t off, sel, attr; uint32_t limit;
                          uint64_t base; } seg[] = {
        { 0x00, 0, 0x93, 0xffff, 0 }, { 0x10, 0xf000, 0x9b, 0xffff,
                                        0xffff0000 },
        { 0x20, 0, 0x93, 0xffff, 0 }, { 0x30, 0, 0x93, 0xffff, 0 },
        { 0x40, 0, 0x93, 0xffff, 0 }, { 0x50, 0, 0x93, 0xffff, 0 },
        { 0x60, 0, 0, 0xffff, 0 }, { 0x70, 0, 0x82, 0xffff, 0 },
        { 0x80, 0, 0, 0xffff, 0 }, { 0x90, 0, 0x8b, 0xffff, 0 },
    };
    const struct { uint16_t off; uint64_t v; } q[] = {
        { 0xd0, 0x1000 }, { 0x148, 0x40 }, { 0x158, 0x10 }, { 0x160, 0x400 },
        { 0x168, 0xffff0ff0 }, { 0x170, 0x2 }, { 0x178, 0xfff0 },
        { 0x268, 0x0007040600070406ULL }, { 0x310, rdx },
        { 0x3b0, sev_features }, { 0x3e8, 1 },
    };
    uint32_t mxcsr = 0x1f80;
    uint16_t fcw = 0x37f;
    unsigned i;

    memset(p, 0, PG);
    for (i = 0; i < G_N_ELEMENTS(seg); i++) {
        memcpy(p + seg[i].off, &seg[i].sel, 2);
        memcpy(p + seg[i].off + 2, &seg[i].attr, 2);
        memcpy(p + seg[i].off + 4, &seg[i].limit, 4);
        memcpy(p + seg[i].off + 8, &seg[i].base, 8);
    }
    for (i = 0; i < G_N_ELEMENTS(q); i++) {
        memcpy(p + q[i].off, &q[i].v, 8);
    }
    memcpy(p + 0x408, &mxcsr, 4);
    memcpy(p + 0x410, &fcw, 2);
}

static void test_snp_digest_and_finish(void)
{
    SnpVm s = snp_vm_setup(true);
    struct kvm_sev_snp_launch_finish fin = { .flags = 1 };
    struct kvm_debugregs dr;
    struct kvm_regs regs;
    uint8_t digest[48] = { 0 }, vmsa[PG];
    uint8_t *src = g_malloc(2 * PG);
    g_autofree char *hex = NULL;
    g_autofree char *exp = NULL;
    g_autofree char *r = NULL;
    int cpu0, cpu1;
    uint32_t fw;
    unsigned i;

    cpu0 = ioctl(s.vm, KVM_CREATE_VCPU, 0UL);
    cpu1 = ioctl(s.vm, KVM_CREATE_VCPU, 1UL);
    g_assert_cmpint(cpu0, >=, 0);
    g_assert_cmpint(cpu1, >=, 0);
    g_assert_cmpint(snp_start(s.vm, POLICY), ==, 0);
    for (i = 0; i < 2 * PG; i++) {
        src[i] = i * 13 + 1;
    }
    g_assert_cmpint(snp_update(s.vm, 8, src, 2 * PG, 1, NULL, NULL), ==, 0);
    chain(digest, 1, 8 * PG, src);
    chain(digest, 1, 9 * PG, src + PG);
    g_assert_cmpint(snp_update(s.vm, 10, NULL, PG, 3, NULL, NULL), ==, 0);
    chain(digest, 3, 10 * PG, NULL);
    g_assert_cmpint(snp_update(s.vm, 11, src, PG, 4, NULL, NULL), ==, 0);
    chain(digest, 4, 11 * PG, NULL);
    g_assert_cmpint(snp_update(s.vm, 12, src, PG, 5, NULL, NULL), ==, 0);
    chain(digest, 5, 12 * PG, NULL);
    hex = hex48(digest);
    exp = g_strdup_printf("{\"ok\":true,\"digest\":\"%s\",\"pages\":5}", hex);
    r = req("query digest", NULL);
    g_assert_cmpstr(r, ==, exp);

    /* */
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, NULL), ==,
                    -EINVAL);
    fin.flags = 0;
    /* (on the first vCPU: as in KVM, earlier vCPUs would be measured) */
    g_assert_cmpint(xioctl(cpu0, KVM_GET_DEBUGREGS, &dr), ==, 0);
    dr.dr7 = 0x401;
    g_assert_cmpint(xioctl(cpu0, KVM_SET_DEBUGREGS, &dr), ==, 0);
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, NULL), ==,
                    -EINVAL);
    assert_violation("R-21");
    dr.dr7 = 0x400;
    g_assert_cmpint(xioctl(cpu0, KVM_SET_DEBUGREGS, &dr), ==, 0);

    /* the VMSAs: reset state, rdx = the CPU signature QEMU would put */
    g_assert_cmpint(xioctl(cpu0, KVM_GET_REGS, &regs), ==, 0);
    regs.rdx = 0x00a00f11;
    g_assert_cmpint(xioctl(cpu0, KVM_SET_REGS, &regs), ==, 0);
    g_assert_cmpint(xioctl(cpu1, KVM_SET_REGS, &regs), ==, 0);
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, &fw), ==, 0);
    expected_vmsa(vmsa, 1, 0x00a00f11);
    chain(digest, 2, 0xFFFFFFFFF000ULL, vmsa);
    chain(digest, 2, 0xFFFFFFFFF000ULL, vmsa);
    g_clear_pointer(&hex, g_free);
    g_clear_pointer(&exp, g_free);
    g_clear_pointer(&r, g_free);
    hex = hex48(digest);
    exp = g_strdup_printf("{\"ok\":true,\"digest\":\"%s\",\"pages\":7}", hex);
    r = req("query digest", NULL);
    g_assert_cmpstr(r, ==, exp);

    /* the finish was seen, and what memory looked like then */
    g_clear_pointer(&r, g_free);
    r = req("wait-launch-finish 1000", NULL);
    g_assert_nonnull(strstr(r, "{\"ok\":true,\"result\":0,\"fw_error\":0,"
                            "\"t_ns\":"));
    g_clear_pointer(&r, g_free);
    g_clear_pointer(&exp, g_free);
    r = req("query memslots", NULL);
    exp = g_strdup_printf("{\"ok\":true,\"memslots\":[[0,0,%llu,4,%d,0]]}",
                          NPAGES * PG, s.gmem);
    g_assert_cmpstr(r, ==, exp);

    /* register state is protected now */
    g_assert_cmpint(xioctl(cpu0, KVM_GET_REGS, &regs), ==, -EINVAL);
    assert_violation("R-32");
    /* no update after finish */
    g_assert_cmpint(snp_update(s.vm, 13, src, PG, 1, &fw, NULL), ==, -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_GUEST_STATE);
    close(cpu0);
    close(cpu1);
    close(s.vm);
    close(s.gmem);
    g_free(src);
}

/* The digest of a launch that measured one VMSA page, @vmsa */
static void assert_vmsa_digest(const uint8_t *vmsa)
{
    uint8_t digest[48] = { 0 };
    g_autofree char *hex = NULL;
    g_autofree char *exp = NULL;
    g_autofree char *r = NULL;

    chain(digest, 2, 0xFFFFFFFFF000ULL, vmsa);
    hex = hex48(digest);
    exp = g_strdup_printf("{\"ok\":true,\"digest\":\"%s\",\"pages\":1}",
                          hex);
    r = req("query digest", NULL);
    g_assert_cmpstr(r, ==, exp);
}

/*
 * KVM_SET_XSAVE's header checks; the VMSA's x87/SSE/AVX state is
 * KVM's copy, which each KVM_SET_XSAVE changes only for the components
 * in its XSTATE_BV, and KVM_SET_FPU without MXCSR
 */
static void test_xsave_vmsa(void)
{
    SnpVm s = snp_vm_setup(true);
    struct kvm_sev_snp_launch_finish fin = { 0 };
    g_autofree struct kvm_xsave *x = g_malloc0(sizeof(*x));
    struct kvm_fpu fpu = { 0 };
    uint8_t *b = (uint8_t *)x->region, vmsa[PG];
    uint64_t bv;
    uint32_t mxcsr;
    uint16_t fcw;
    int cpu = ioctl(s.vm, KVM_CREATE_VCPU, 0UL);

    g_assert_cmpint(cpu, >=, 0);
    /* rejected: PKRU (no PKU here), compacted format, reserved bits */
    bv = 1ULL << 9;
    memcpy(b + 512, &bv, 8);
    g_assert_cmpint(xioctl(cpu, KVM_SET_XSAVE, x), ==, -EINVAL);
    bv = 0;
    memcpy(b + 512, &bv, 8);
    b[520] = 1;                 /* XCOMP_BV */
    g_assert_cmpint(xioctl(cpu, KVM_SET_XSAVE, x), ==, -EINVAL);
    b[520] = 0;
    b[540] = 1;                 /* reserved header byte */
    g_assert_cmpint(xioctl(cpu, KVM_SET_XSAVE, x), ==, -EINVAL);
    b[540] = 0;
    mxcsr = 0x10000;
    memcpy(b + 24, &mxcsr, 4);
    bv = 1;
    memcpy(b + 512, &bv, 8);
    g_assert_cmpint(xioctl(cpu, KVM_SET_XSAVE, x), ==, -EINVAL);
    assert_violation("R-41");
    /* accepted: MXCSR is not looked at without x87, SSE or AVX */
    bv = 0;
    memcpy(b + 512, &bv, 8);
    g_assert_cmpint(xioctl(cpu, KVM_SET_XSAVE, x), ==, 0);

    /* x87, SSE and AVX given... */
    memset(x, 0, sizeof(*x));
    fcw = 0x1234;
    memcpy(b, &fcw, 2);
    mxcsr = 0x1fa0;
    memcpy(b + 24, &mxcsr, 4);
    memset(b + 160, 0xaa, 16);  /* XMM0 */
    memset(b + 576, 0xbb, 16);  /* YMM0 upper half */
    bv = 0x7;
    memcpy(b + 512, &bv, 8);
    g_assert_cmpint(xioctl(cpu, KVM_SET_XSAVE, x), ==, 0);
    /* ...then SSE alone: x87 stays, MXCSR and XMM change, AVX is gone */
    fcw = 0x5678;
    memcpy(b, &fcw, 2);
    mxcsr = 0x1f80;
    memcpy(b + 24, &mxcsr, 4);
    memset(b + 160, 0xcc, 16);
    bv = 0x2;
    memcpy(b + 512, &bv, 8);
    g_assert_cmpint(xioctl(cpu, KVM_SET_XSAVE, x), ==, 0);

    g_assert_cmpint(snp_start(s.vm, POLICY), ==, 0);
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, NULL), ==,
                    0);
    expected_vmsa(vmsa, 1, 0x00a00f11);
    fcw = 0x1234;
    memcpy(vmsa + 0x410, &fcw, 2);
    memset(vmsa + 0x470, 0xcc, 16);
    assert_vmsa_digest(vmsa);
    close(cpu);
    close(s.vm);
    close(s.gmem);

    /* KVM_SET_FPU: x87 and XMM, not MXCSR */
    s = snp_vm_setup(true);
    cpu = ioctl(s.vm, KVM_CREATE_VCPU, 0UL);
    g_assert_cmpint(cpu, >=, 0);
    fpu.fcw = 0x4321;
    fpu.mxcsr = 0x1fa0;
    memset(fpu.xmm[0], 0xdd, 16);
    g_assert_cmpint(xioctl(cpu, KVM_SET_FPU, &fpu), ==, 0);
    g_assert_cmpint(snp_start(s.vm, POLICY), ==, 0);
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, NULL), ==,
                    0);
    expected_vmsa(vmsa, 1, 0x00a00f11);
    fcw = 0x4321;
    memcpy(vmsa + 0x410, &fcw, 2);
    memset(vmsa + 0x470, 0xdd, 16);
    assert_vmsa_digest(vmsa);
    close(cpu);
    close(s.vm);
    close(s.gmem);
}

static void test_snp_id_block(void)
{
    SnpVm s = snp_vm_setup(true);
    uint8_t id[96] = { 0 }, auth[4096] = { 0 };
    struct kvm_sev_snp_launch_finish fin = {
        .id_block_uaddr = (uintptr_t)id, .id_auth_uaddr = (uintptr_t)auth,
        .id_block_en = 1,
    };
    uint8_t digest[48] = { 0 };
    uint32_t version = 1, fw;
    uint64_t policy = POLICY;

    g_assert_cmpint(snp_start(s.vm, POLICY), ==, 0);
    g_assert_cmpint(snp_update(s.vm, 0, NULL, PG, 3, NULL, NULL), ==, 0);
    chain(digest, 3, 0, NULL);
    memcpy(id + 0x50, &version, 4);
    memcpy(id + 0x58, &policy, 8);
    /* wrong digest */
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, &fw), ==,
                    -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_BAD_MEASUREMENT);
    memcpy(id, digest, 48);
    policy = POLICY | 1;
    memcpy(id + 0x58, &policy, 8);
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, &fw), ==,
                    -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_POLICY_FAILURE);
    assert_violation("R-22");
    policy = POLICY;
    memcpy(id + 0x58, &policy, 8);
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, &fw), ==,
                    0);
    /* a second finish */
    g_assert_cmpint(sev_cmd(s.vm, KVM_SEV_SNP_LAUNCH_FINISH, &fin, &fw), ==,
                    -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_GUEST_STATE);
    close(s.vm);
    close(s.gmem);
}

static void test_legacy_sev_es(void)
{
    int vm = vm_new(KVM_X86_DEFAULT_VM), cpu;
    struct kvm_sev_launch_start st = { .policy = 0x5 };
    struct kvm_sev_launch_update_data up;
    struct kvm_sev_launch_measure me = { 0 };
    uint8_t *buf = g_malloc0(PG), meas[48];
    uint32_t fw;

    g_assert_cmpint(sev_cmd(vm, KVM_SEV_ES_INIT, NULL, NULL), ==, 0);
    /* */
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_INIT, NULL, NULL), ==, -EINVAL);
    assert_violation("R-08");
    cpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    g_assert_cmpint(cpu, >=, 0);
    /* */
    g_assert_cmpint(sev_cmd_fd(vm, KVM_SEV_LAUNCH_START, &st, kvm_fd), ==,
                    -EBADF);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_FINISH, NULL, &fw), ==, -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_GUEST_STATE);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_START, &st, NULL), ==, 0);
    g_assert_cmpint(st.handle, !=, 0);
    up.uaddr = (uintptr_t)buf + 1;
    up.len = 16;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_UPDATE_DATA, &up, &fw), ==,
                    -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_LEN);
    assert_violation("R-28");
    up.uaddr = (uintptr_t)buf;
    up.len = PG;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_UPDATE_DATA, &up, &fw), ==, 0);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_UPDATE_VMSA, NULL, &fw), ==, 0);
    /* legacy ES on the default VM type: state stays readable */
    {
        struct kvm_regs regs;
        g_assert_cmpint(xioctl(cpu, KVM_GET_REGS, &regs), ==, 0);
    }
    /* length query */
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_MEASURE, &me, &fw), ==, -EIO);
    g_assert_cmpint(fw, ==, SEV_RET_INVALID_LEN);
    g_assert_cmpint(me.len, ==, 48);
    me.uaddr = (uintptr_t)meas;
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_MEASURE, &me, &fw), ==, 0);
    g_free(req("fail KVM_SEV_LAUNCH_FINISH 0x13", NULL));
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_FINISH, NULL, &fw), ==, -EIO);
    g_assert_cmpint(fw, ==, 0x13);
    g_assert_cmpint(sev_cmd(vm, KVM_SEV_LAUNCH_FINISH, NULL, &fw), ==, 0);
    close(cpu);
    close(vm);
    g_free(buf);
}

static void test_dev_sev(void)
{
    struct sev_user_data_status st;
    struct sev_user_data_pdh_cert_export ex = { 0 };
    struct sev_issue_cmd c = { .cmd = SEV_PLATFORM_STATUS,
                               .data = (uintptr_t)&st };
    g_autofree uint8_t *pdh = NULL, *chain_buf = NULL;

    g_assert_cmpint(xioctl(sev_fd, SEV_ISSUE_CMD, &c), ==, 0);
    g_assert_cmpint(st.api_major, ==, 1);
    c.cmd = SEV_PDH_CERT_EXPORT;
    c.data = (uintptr_t)&ex;
    g_assert_cmpint(xioctl(sev_fd, SEV_ISSUE_CMD, &c), ==, -EIO);
    g_assert_cmpint(c.error, ==, SEV_RET_INVALID_LEN);
    g_assert_cmpint(ex.pdh_cert_len, >, 0);
    pdh = g_malloc(ex.pdh_cert_len);
    chain_buf = g_malloc(ex.cert_chain_len);
    ex.pdh_cert_address = (uintptr_t)pdh;
    ex.cert_chain_address = (uintptr_t)chain_buf;
    g_assert_cmpint(xioctl(sev_fd, SEV_ISSUE_CMD, &c), ==, 0);
    g_free(req("fail SEV_PLATFORM_STATUS 0x5 1", NULL));
    c.cmd = SEV_PLATFORM_STATUS;
    c.data = (uintptr_t)&st;
    g_assert_cmpint(xioctl(sev_fd, SEV_ISSUE_CMD, &c), ==, -EPERM);
    g_assert_cmpint(c.error, ==, 5);
}

static void test_hypercall_cap(void)
{
    int vm = vm_new(KVM_X86_SNP_VM);
    struct kvm_enable_cap cap = { .cap = KVM_CAP_EXIT_HYPERCALL,
                                  .args[0] = 1ULL << 11 };

    g_assert_cmpint(xioctl(vm, KVM_ENABLE_CAP, &cap), ==, -EINVAL);
    assert_violation("R-29");
    cap.args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE;
    g_assert_cmpint(xioctl(vm, KVM_ENABLE_CAP, &cap), ==, 0);
    close(vm);
}

/* ------------------------------------------------------------ exits */

typedef struct Runner {
    int fd;
    struct kvm_run *run;
    int ret, err;
    GAsyncQueue *done;
} Runner;

static void *run_thread(void *opaque)
{
    Runner *r = opaque;

    r->ret = ioctl(r->fd, KVM_RUN, 0);
    r->err = errno;
    g_async_queue_push(r->done, GINT_TO_POINTER(1));
    return NULL;
}

static void start_run(Runner *r, pthread_t *t)
{
    pthread_create(t, NULL, run_thread, r);
}

static void finish_run(Runner *r, pthread_t t)
{
    g_async_queue_pop(r->done);
    pthread_join(t, NULL);
}

static void ipi(int sig)
{
}

static void test_exits(void)
{
    int vm = vm_new(KVM_X86_SNP_VM);
    int cpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    long sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    Runner r = { .fd = cpu, .done = g_async_queue_new() };
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_EXIT_HYPERCALL,
        .args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
    };
    pthread_t t;
    g_autofree char *x = NULL;
    sigset_t set;

    g_assert_cmpint(cpu, >=, 0);
    r.run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    g_assert(r.run != MAP_FAILED);

    /* immediate_exit */
    r.run->immediate_exit = 1;
    g_assert_cmpint(ioctl(cpu, KVM_RUN, 0), ==, -1);
    g_assert_cmpint(errno, ==, EINTR);
    r.run->immediate_exit = 0;

    /* no hypercall exit unless userspace enabled it */
    x = req("exit 0 hypercall-map-gpa 0x100000 4 0x10", NULL);
    g_assert_nonnull(strstr(x, "\"ok\":false"));
    g_clear_pointer(&x, g_free);
    g_assert_cmpint(xioctl(vm, KVM_ENABLE_CAP, &cap), ==, 0);

    /* hypercall exit, then the value QEMU returned */
    start_run(&r, &t);
    g_free(req("exit 0 hypercall-map-gpa 0x100000 4 0x10", NULL));
    finish_run(&r, t);
    g_assert_cmpint(r.ret, ==, 0);
    g_assert_cmpint(r.run->exit_reason, ==, KVM_EXIT_HYPERCALL);
    g_assert_cmpint(r.run->hypercall.nr, ==, KVM_HC_MAP_GPA_RANGE);
    g_assert_cmpint(r.run->hypercall.args[0], ==, 0x100000);
    g_assert_cmpint(r.run->hypercall.args[1], ==, 4);
    g_assert_cmpint(r.run->hypercall.args[2], ==, 0x10);
    r.run->hypercall.ret = 22;
    /* re-enter; the exit counts as consumed */
    start_run(&r, &t);
    x = req("wait-exit-consumed 0", NULL);
    g_assert_cmpstr(x, ==, "{\"ok\":true,\"reentered\":true,"
                    "\"resumed\":true}");
    g_clear_pointer(&x, g_free);
    x = req("query hypercall-ret 0", NULL);
    g_assert_cmpstr(x, ==, "{\"ok\":true,\"ret\":22}");
    g_clear_pointer(&x, g_free);

    /* memory fault: KVM_RUN fails with EFAULT */
    g_free(req("exit 0 memory-fault 0x200000 0x1000 1", NULL));
    finish_run(&r, t);
    g_assert_cmpint(r.ret, ==, -1);
    g_assert_cmpint(r.err, ==, EFAULT);
    g_assert_cmpint(r.run->exit_reason, ==, KVM_EXIT_MEMORY_FAULT);
    g_assert_cmpint(r.run->memory_fault.gpa, ==, 0x200000);
    g_assert_cmpint(r.run->memory_fault.size, ==, 0x1000);
    g_assert_cmpint(r.run->memory_fault.flags, ==,
                    KVM_MEMORY_EXIT_FLAG_PRIVATE);
    /* with flags a later kernel may add */
    start_run(&r, &t);
    g_free(req("exit 0 memory-fault 0x200000 0x1000 0 0x10", NULL));
    finish_run(&r, t);
    g_assert_cmpint(r.ret, ==, -1);
    g_assert_cmpint(r.err, ==, EFAULT);
    g_assert_cmpint(r.run->memory_fault.flags, ==, 0x10);

    /* internal error */
    g_free(req("exit 0 internal-error 1", NULL));
    g_assert_cmpint(ioctl(cpu, KVM_RUN, 0), ==, 0);
    g_assert_cmpint(r.run->exit_reason, ==, KVM_EXIT_INTERNAL_ERROR);
    g_assert_cmpint(r.run->internal.suberror, ==, 1);

    /* SEV termination request */
    g_free(req("exit 0 sev-term 0x1100", NULL));
    g_assert_cmpint(ioctl(cpu, KVM_RUN, 0), ==, 0);
    g_assert_cmpint(r.run->exit_reason, ==, KVM_EXIT_SYSTEM_EVENT);
    g_assert_cmpint(r.run->system_event.type, ==, KVM_SYSTEM_EVENT_SEV_TERM);
    g_assert_cmpint(r.run->system_event.ndata, ==, 1);
    g_assert_cmpint(r.run->system_event.data[0], ==, 0x1100);
    g_free(req("exit 0 shutdown", NULL));
    g_assert_cmpint(ioctl(cpu, KVM_RUN, 0), ==, 0);
    g_assert_cmpint(r.run->exit_reason, ==, KVM_EXIT_SHUTDOWN);
    g_free(req("exit 0 reset", NULL));
    g_assert_cmpint(ioctl(cpu, KVM_RUN, 0), ==, 0);
    g_assert_cmpint(r.run->system_event.type, ==, KVM_SYSTEM_EVENT_RESET);
    x = req("exit 7 shutdown", NULL);
    g_assert_nonnull(strstr(x, "\"ok\":false"));
    g_clear_pointer(&x, g_free);

    /* a signal unblocked only through KVM_SET_SIGNAL_MASK kicks KVM_RUN */
    {
        struct sigaction sa = { .sa_handler = ipi };
        sigaction(SIGUSR1, &sa, NULL);
    }
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    {
        struct kvm_signal_mask *m = g_malloc0(sizeof(*m) + 8);
        sigset_t cur;

        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        sigdelset(&cur, SIGUSR1);
        m->len = 8;
        memcpy(m->sigset, &cur, 8);
        g_assert_cmpint(xioctl(cpu, KVM_SET_SIGNAL_MASK, m), ==, 0);
        g_free(m);
    }
    start_run(&r, &t);
    /*
     * The thread inherited SIGUSR1 blocked: the signal stays pending until
     * KVM_RUN waits with the mask set above, wherever the thread is now.
     */
    pthread_kill(t, SIGUSR1);
    finish_run(&r, t);
    g_assert_cmpint(r.ret, ==, -1);
    g_assert_cmpint(r.err, ==, EINTR);
    g_assert_cmpint(r.run->exit_reason, ==, KVM_EXIT_INTR);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    munmap(r.run, sz);
    close(cpu);
    close(vm);
    g_async_queue_unref(r.done);
}

/* several exits queued at once, delivered back to back; exit-stats */
static void test_exit_batch(void)
{
    int vm = vm_new(KVM_X86_SNP_VM);
    int cpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    long sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run;
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_EXIT_HYPERCALL,
        .args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
    };
    struct kvm_clock_data clock = { 0 };
    g_autofree char *x = NULL;
    unsigned i;

    g_assert_cmpint(cpu, >=, 0);
    run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    g_assert(run != MAP_FAILED);
    g_assert_cmpint(xioctl(vm, KVM_ENABLE_CAP, &cap), ==, 0);
    x = req("exit 0 hypercall-map-gpa 0x100000 1 0x10 0", NULL);
    g_assert_nonnull(strstr(x, "\"ok\":false"));
    g_clear_pointer(&x, g_free);
    g_free(req("exit 0 hypercall-map-gpa 0x100000 1 0x10 3 0x1000", NULL));
    for (i = 0; i < 3; i++) {
        g_assert_cmpint(ioctl(cpu, KVM_RUN, 0), ==, 0);
        g_assert_cmpint(run->exit_reason, ==, KVM_EXIT_HYPERCALL);
        g_assert_cmphex(run->hypercall.args[0], ==, 0x100000 + i * 0x1000);
        run->hypercall.ret = i == 1 ? 22 : 0;
    }
    /*
     * KVM_RUN with immediate_exit consumes the exit, resumes nothing: the
     * wait goes on until QEMU runs the guest on or stops the VM (seen as
     * KVM_GET_CLOCK), here the latter
     */
    run->immediate_exit = 1;
    g_assert_cmpint(ioctl(cpu, KVM_RUN, 0), ==, -1);
    g_assert_cmpint(errno, ==, EINTR);
    run->immediate_exit = 0;
    x = req("wait-exit-consumed 0 100", NULL);
    g_assert_cmpstr(x, ==, "{\"ok\":false,\"error\":\"timeout\"}");
    g_clear_pointer(&x, g_free);
    g_assert_cmpint(ioctl(vm, KVM_GET_CLOCK, &clock), ==, 0);
    x = req("wait-exit-consumed 0 1000", NULL);
    g_assert_cmpstr(x, ==, "{\"ok\":true,\"reentered\":true,"
                    "\"resumed\":false}");
    g_clear_pointer(&x, g_free);
    x = req("query exit-stats 0", NULL);
    g_assert_nonnull(strstr(x, "{\"ok\":true,\"queued\":3,\"delivered\":3,"
                            "\"consumed\":3,\"hypercall_rets\":3,"
                            "\"hypercall_nonzero\":1,\"batch_first_ns\":"));
    munmap(run, sz);
    close(cpu);
    close(vm);
}

static void test_log(void)
{
    g_autofree char *text = NULL;

    g_assert_true(g_file_get_contents(log_path, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "\"call\":\"KVM_SEV_SNP_LAUNCH_FINISH\""));
    g_assert_nonnull(strstr(text, "\"rule\":\"R-18\""));
    /* what tests/upstream-diff compares */
    g_assert_nonnull(strstr(text, "{\"cpuid_page\":"));
    g_assert_nonnull(strstr(text, "{\"vmsa\":1,\"vcpu_id\":1,\"sha384\":"));
    g_assert_nonnull(strstr(text, "{\"finish_result\":0,"));
    g_assert_nonnull(strstr(text, "{\"memory\":\"at_finish\",\"memslots\":"));
    g_assert_nonnull(strstr(text, "\"gosvw\":\"0000"));
}

int main(int argc, char **argv)
{
    g_autofree char *dir = g_dir_make_tmp("kvm-sim-test-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "ctl", NULL);
    int ret;

    g_test_init(&argc, &argv, NULL);
    if (!getenv("LD_PRELOAD") || !strstr(getenv("LD_PRELOAD"), "kvmsim")) {
        g_test_skip("needs LD_PRELOAD=.../libkvmsim.so");
        return g_test_run();
    }
    log_path = g_build_filename(dir, "log", NULL);
    g_setenv("KVMSIM_CTL", sock, true);
    g_setenv("KVMSIM_LOG", log_path, true);
    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    sev_fd = open("/dev/sev", O_RDWR | O_CLOEXEC);
    g_assert_cmpint(kvm_fd, >=, 0);
    g_assert_cmpint(sev_fd, >=, 0);
    ctl = kvmsim_connect(sock);
    g_assert_nonnull(ctl);

    g_test_add_func("/kvm-sim/sha384-known-answer", test_sha384_known_answer);
    g_test_add_func("/kvm-sim/caps", test_caps);
    g_test_add_func("/kvm-sim/cpuid", test_cpuid);
    g_test_add_func("/kvm-sim/mce", test_mce);
    g_test_add_func("/kvm-sim/stats-fd", test_stats_fd);
    g_test_add_func("/kvm-sim/init-rules", test_init_rules);
    g_test_add_func("/kvm-sim/guest-memfd-attributes", test_gmem_attrs);
    g_test_add_func("/kvm-sim/memslots", test_memslots);
    g_test_add_func("/kvm-sim/memslot-changes", test_memslot_changes);
    g_test_add_func("/kvm-sim/dirty-log", test_dirty_log);
    g_test_add_func("/kvm-sim/snp-launch-start", test_snp_launch_start);
    g_test_add_func("/kvm-sim/snp-launch-update", test_snp_launch_update);
    g_test_add_func("/kvm-sim/snp-cpuid-page", test_snp_cpuid_page);
    g_test_add_func("/kvm-sim/cpuid-page-rules", test_cpuid_page_rules);
    g_test_add_func("/kvm-sim/snp-digest-finish", test_snp_digest_and_finish);
    g_test_add_func("/kvm-sim/xsave-vmsa", test_xsave_vmsa);
    g_test_add_func("/kvm-sim/snp-id-block", test_snp_id_block);
    g_test_add_func("/kvm-sim/legacy-sev-es", test_legacy_sev_es);
    g_test_add_func("/kvm-sim/dev-sev", test_dev_sev);
    g_test_add_func("/kvm-sim/hypercall-cap", test_hypercall_cap);
    g_test_add_func("/kvm-sim/exits", test_exits);
    g_test_add_func("/kvm-sim/exit-batch", test_exit_batch);
    g_test_add_func("/kvm-sim/log", test_log);
    ret = g_test_run();
    kvmsim_close(ctl);
    unlink(sock);
    unlink(log_path);
    rmdir(dir);
    g_free(log_path);
    return ret;
}
