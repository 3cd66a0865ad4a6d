/*
 * kvm-sim: x86 KVM ioctls (system, VM, vCPU) and KVM_RUN
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Nothing is executed: vCPU state is stored as set and returned as got,
 * and KVM_RUN blocks until the control socket queues an exit.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "kvm-sim.h"

/* ------------------------------------------------------------ CPUID */

#define SIG_IDX KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/*
 * An AMD EPYC (family 19h, Milan)-like set, as KVM 6.12's
 * KVM_GET_SUPPORTED_CPUID (cpuid.c __do_cpuid_func()) reports it on such
 * a host (rule R-43):
 * - 0xd.0: the XCR0 KVM permits (x87, SSE, AVX here), EBX = ECX = their
 *   standard-format size; 0xd.1: XSAVEOPT, XSAVEC, XGETBV1, XSAVES, EBX
 *   their compacted size (no supervisor state: SVM's supported_xss is 0);
 *   0xd.2: AVX, 256 bytes at 0x240.
 * - 0x80000008 EAX: PhysAddrSize is the raw MAXPHYADDR (48) since SEV
 *   needs NPT (tdp_enabled), virtual 48, GuestPhysAddrSize 48.
 * - 0x8000001F: SEV, SEV-ES and SEV-SNP (sev_set_cpu_caps()), C-bit 51;
 *   EBX[11:6], "PA bits reduction", is 0 and EBX[31:12] (VMPLs) cleared.
 */
static const struct kvm_cpuid_entry2 ks_cpuid[] = {
    { .function = 0x0, .eax = 0x10, .ebx = 0x68747541, .ecx = 0x444d4163,
      .edx = 0x69746e65 },
    { .function = 0x1, .eax = 0x00a00f11, .ebx = 0x00000800,
      .ecx = 0xf7fa3203, .edx = 0x178bfbff },
    /* EDX: FSRM (bit 4), which Milan has and kvm_set_cpu_caps() passes */
    { .function = 0x7, .index = 0, .flags = SIG_IDX, .eax = 0,
      .ebx = 0x219c07a9, .ecx = 0x00000004, .edx = 0x00000010 },
    { .function = 0xd, .index = 0, .flags = SIG_IDX, .eax = 0x7,
      .ebx = 0x340, .ecx = 0x340 },
    { .function = 0xd, .index = 1, .flags = SIG_IDX, .eax = 0xf,
      .ebx = 0x340 },
    { .function = 0xd, .index = 2, .flags = SIG_IDX, .eax = 0x100,
      .ebx = 0x240 },
    { .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b,
      .ecx = 0x564b4d56, .edx = 0x4d },
    { .function = 0x40000001, .eax = 0x01000efb },
    { .function = 0x80000000, .eax = 0x8000001f, .ebx = 0x68747541,
      .ecx = 0x444d4163, .edx = 0x69746e65 },
    { .function = 0x80000001, .eax = 0x00a00f11, .ecx = 0x00c003fb,
      .edx = 0x2fd3fbff },
    { .function = 0x80000007, .edx = 0x100 },
    { .function = 0x80000008, .eax = 0x303030, .ebx = 0x0 },
    { .function = 0x8000001f, .eax = 0x1a, .ebx = 51, .ecx = 509,
      .edx = 100 },
};

const struct kvm_cpuid_entry2 *ks_supported_cpuid(int *n)
{
    *n = G_N_ELEMENTS(ks_cpuid);
    return ks_cpuid;
}

static long ks_get_cpuid(struct kvm_cpuid2 *c)
{
    if (c->nent < G_N_ELEMENTS(ks_cpuid)) {
        c->nent = G_N_ELEMENTS(ks_cpuid);
        return -E2BIG;
    }
    c->nent = G_N_ELEMENTS(ks_cpuid);
    memcpy(c->entries, ks_cpuid, sizeof(ks_cpuid));
    return 0;
}

/* ------------------------------------------------------------ MSRs */

static const uint32_t ks_msr_list[] = {
    0x10, 0x3b, 0x48, 0x174, 0x175, 0x176, 0x1a0, 0x277, 0xda0,
    0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102,
    0xc0000103, 0xc0010117, 0xc001011f,
    0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03, 0x4b564d04,
};

static long ks_msr_index_list(struct kvm_msr_list *l)
{
    uint32_t n = G_N_ELEMENTS(ks_msr_list);

    if (l->nmsrs < n) {
        l->nmsrs = n;
        return -E2BIG;
    }
    l->nmsrs = n;
    memcpy(l->indices, ks_msr_list, sizeof(ks_msr_list));
    return 0;
}

uint64_t ks_vcpu_msr(KsVcpu *vcpu, uint32_t index, uint64_t dflt)
{
    uint64_t *v = g_hash_table_lookup(vcpu->msrs, GUINT_TO_POINTER(index));

    return v ? *v : dflt;
}

/* ------------------------------------------------------------ caps */

int ks_check_extension(KsVm *vm, long cap)
{
    switch (cap) {
    case KVM_CAP_USER_MEMORY:
    case KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
    case KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
    case KVM_CAP_SET_TSS_ADDR:
    case KVM_CAP_EXT_CPUID:
    case KVM_CAP_MP_STATE:
    case KVM_CAP_IRQCHIP:
    case KVM_CAP_IRQFD:
    case KVM_CAP_IRQFD_RESAMPLE:
    case KVM_CAP_IOEVENTFD:
    case KVM_CAP_IOEVENTFD_ANY_LENGTH:
    case KVM_CAP_IRQ_INJECT_STATUS:
    case KVM_CAP_SIGNAL_MSI:
    case KVM_CAP_PIT2:
    case KVM_CAP_PIT_STATE2:
    case KVM_CAP_XSAVE:
    case KVM_CAP_XCRS:
    case KVM_CAP_DEBUGREGS:
    case KVM_CAP_VCPU_EVENTS:
    case KVM_CAP_GET_TSC_KHZ:
    case KVM_CAP_TSC_DEADLINE_TIMER:
    case KVM_CAP_SET_IDENTITY_MAP_ADDR:
    case KVM_CAP_SYNC_MMU:
    case KVM_CAP_INTERNAL_ERROR_DATA:
    case KVM_CAP_SET_GUEST_DEBUG:
    case KVM_CAP_EXT_EMUL_CPUID:
    case KVM_CAP_USER_MEMORY2:
    case KVM_CAP_SYS_ATTRIBUTES:
    case KVM_CAP_SPLIT_IRQCHIP:
    case KVM_CAP_TSC_CONTROL:
    case KVM_CAP_X86_ROBUST_SINGLESTEP:
    case KVM_CAP_BINARY_STATS_FD:
        return 1;
    case KVM_CAP_MCE:
        return KS_MAX_MCE_BANKS;
    case KVM_CAP_IMMEDIATE_EXIT:
        return ks_immediate_exit;
    case KVM_CAP_IRQ_ROUTING:
        return 4096;
    case KVM_CAP_NR_MEMSLOTS:
        return KS_USER_MEM_SLOTS;
    case KVM_CAP_NR_VCPUS:
    case KVM_CAP_MAX_VCPUS:
    case KVM_CAP_MAX_VCPU_ID:
        return ks_max_vcpus;
    case KVM_CAP_ADJUST_CLOCK:
        return KVM_CLOCK_TSC_STABLE;
    case KVM_CAP_READONLY_MEM:
        /* x86.c: kvm ? kvm_arch_has_readonly_mem(kvm) : 1 */
        return vm ? !ks_vm_has_protected_state(vm) : 1;
    case KVM_CAP_VM_TYPES:
        return (1 << KVM_X86_DEFAULT_VM) | (1 << KVM_X86_SEV_VM) |
               (1 << KVM_X86_SEV_ES_VM) | (1 << KVM_X86_SNP_VM);
    case KVM_CAP_MEMORY_ATTRIBUTES:
        return (!vm || ks_vm_has_private_mem(vm)) ?
               KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
    case KVM_CAP_GUEST_MEMFD:
        return !vm || ks_vm_has_private_mem(vm);
    case KVM_CAP_EXIT_HYPERCALL:
        return 1 << KVM_HC_MAP_GPA_RANGE;
    case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
        /* arch/x86/include/asm/kvm_host.h: KVM_DIRTY_LOG_MANUAL_CAPS */
        return KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
               KVM_DIRTY_LOG_INITIALLY_SET;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ MCE */

/*
 * x86.c kvm_vcpu_ioctl_x86_setup_mce(): 1 to KVM_MAX_MCE_BANKS banks in
 * bits 7:0, no capability bit outside kvm_caps.supported_mce_cap (bits
 * 7:0 and 23:16 are not capability bits).
 */
static long ks_setup_mce(KsVcpu *v, uint64_t mcg_cap)
{
    unsigned banks = mcg_cap & 0xff;

    if (!banks || banks > KS_MAX_MCE_BANKS) {
        return ks_violation("R-33", "KVM_X86_SETUP_MCE", EINVAL, 0,
                            "vCPU %lu: mcg_cap 0x%" G_GINT64_MODIFIER "x has "
                            "%u banks, 1 to %u allowed", v->id, mcg_cap,
                            banks, KS_MAX_MCE_BANKS);
    }
    if (mcg_cap & ~(KS_SUPPORTED_MCE_CAP | 0xffULL | 0xff0000ULL)) {
        return ks_violation("R-33", "KVM_X86_SETUP_MCE", EINVAL, 0,
                            "vCPU %lu: mcg_cap 0x%" G_GINT64_MODIFIER "x, "
                            "supported 0x%llx", v->id, mcg_cap,
                            KS_SUPPORTED_MCE_CAP);
    }
    v->mcg_cap = mcg_cap;
    return 0;
}

/* ------------------------------------------------------------ system */

long ks_system_ioctl(unsigned long req, void *arg)
{
    switch (req) {
    case KVM_GET_API_VERSION:
        return KVM_API_VERSION;
    case KVM_CHECK_EXTENSION:
        return ks_check_extension(NULL, (long)arg);
    case KVM_GET_VCPU_MMAP_SIZE:
        return KS_VCPU_MMAP_PAGES * KS_PAGE_SIZE;
    case KVM_GET_SUPPORTED_CPUID:
        return ks_get_cpuid(arg);
    case KVM_GET_EMULATED_CPUID: {
        struct kvm_cpuid2 *c = arg;
        c->nent = 0;
        return 0;
    }
    case KVM_GET_MSR_INDEX_LIST:
        return ks_msr_index_list(arg);
    case KVM_GET_MSR_FEATURE_INDEX_LIST: {
        struct kvm_msr_list *l = arg;
        l->nmsrs = 0;
        return 0;
    }
    case KVM_X86_GET_MCE_CAP_SUPPORTED: {
        /* x86.c kvm_arch_dev_ioctl(): kvm_caps.supported_mce_cap (SVM) */
        uint64_t cap = KS_SUPPORTED_MCE_CAP;

        memcpy(arg, &cap, sizeof(cap));
        return 0;
    }
    case KVM_HAS_DEVICE_ATTR:
    case KVM_GET_DEVICE_ATTR: {
        struct kvm_device_attr *a = arg;
        uint64_t v;

        if (a->group == 0 && a->attr == KVM_X86_XCOMP_GUEST_SUPP) {
            v = 0x7;
        } else if (a->group == KVM_X86_GRP_SEV &&
                   a->attr == KVM_X86_SEV_VMSA_FEATURES) {
            v = KS_SUPPORTED_VMSA_FEATURES;
        } else {
            return -ENXIO;
        }
        if (req == KVM_GET_DEVICE_ATTR) {
            memcpy((void *)(uintptr_t)a->addr, &v, sizeof(v));
        }
        return 0;
    }
    default:
        ks_unknown_ioctl("system", req);
        return -ENOTTY;
    }
}

/* ------------------------------------------------------------ VM (x86) */

long ks_vm_x86_ioctl(KsVm *vm, unsigned long req, void *arg, bool *handled)
{
    *handled = true;
    switch (req) {
    case KVM_SET_TSS_ADDR:
    case KVM_SET_IDENTITY_MAP_ADDR:
    case KVM_SET_NR_MMU_PAGES:
    case KVM_IRQFD:
    case KVM_IOEVENTFD:
    case KVM_SET_GSI_ROUTING:
    case KVM_SET_IRQCHIP:
    case KVM_SET_PIT2:
    case KVM_SET_CLOCK:
    case KVM_REINJECT_CONTROL:
    case KVM_SET_TSC_KHZ:
    case KVM_SET_BOOT_CPU_ID:
    case KVM_X86_SET_MSR_FILTER:
        return 0;
    case KVM_CREATE_IRQCHIP:
        if (vm->irqchip) {
            return -EEXIST;
        }
        vm->irqchip = true;
        return 0;
    case KVM_CREATE_PIT2:
        return 0;
    case KVM_IRQ_LINE_STATUS: {
        struct kvm_irq_level *l = arg;
        l->status = 1;
        return 0;
    }
    case KVM_IRQ_LINE:
        return 0;
    case KVM_SIGNAL_MSI:
        return 1;
    case KVM_GET_IRQCHIP: {
        struct kvm_irqchip *c = arg;
        memset(&c->chip, 0, sizeof(c->chip));
        return 0;
    }
    case KVM_GET_PIT2: {
        struct kvm_pit_state2 *p = arg;
        memset(p, 0, sizeof(*p));
        return 0;
    }
    case KVM_GET_CLOCK: {
        struct kvm_clock_data *c = arg;

        /*
         * QEMU reads the clock when the VM stops (kvmclock's run state
         * handler): "wait-exit-consumed" uses that to see a vCPU that
         * will not re-enter KVM_RUN after an exit.
         */
        vm->stop_seq++;
        pthread_cond_broadcast(&ks_cond);
        memset(c, 0, sizeof(*c));
        c->clock = g_get_monotonic_time() * 1000;
        c->flags = KVM_CLOCK_TSC_STABLE;
        return 0;
    }
    case KVM_GET_TSC_KHZ:
        return 2000000;
    case KVM_GET_STATS_FD: {
        g_autofree char *id = g_strdup_printf("kvm-%d", getpid());

        return ks_stats_fd_new("kvm-sim-vm-stats", id);
    }
    default:
        *handled = false;
        return -ENOTTY;
    }
}

/* ------------------------------------------------------------ vCPU */

/* Register state of a vCPU after KVM_CREATE_VCPU (kvm_vcpu_reset). */
static void ks_vcpu_reset_state(KsVcpu *v)
{
    struct kvm_segment cs = {
        .base = 0xffff0000, .limit = 0xffff, .selector = 0xf000,
        .type = 0xb, .present = 1, .s = 1,
    };
    struct kvm_segment ds = {
        .limit = 0xffff, .type = 0x3, .present = 1, .s = 1,
    };
    struct kvm_segment tr = { .limit = 0xffff, .type = 0xb, .present = 1 };
    struct kvm_segment ldt = { .limit = 0xffff, .type = 0x2, .present = 1 };
    uint32_t *xs;

    v->regs.rip = 0xfff0;
    v->regs.rflags = 0x2;
    v->regs.rdx = 0x00a00f11;
    v->sregs.cs = cs;
    v->sregs.ds = v->sregs.es = v->sregs.fs = v->sregs.gs = v->sregs.ss = ds;
    v->sregs.tr = tr;
    v->sregs.ldt = ldt;
    v->sregs.gdt.limit = 0xffff;
    v->sregs.idt.limit = 0xffff;
    v->sregs.cr0 = 0x60000010;
    v->sregs.apic_base = 0xfee00000 | (v->id == 0 ? 0x900 : 0x800);
    v->fpu.fcw = 0x37f;
    v->fpu.mxcsr = 0x1f80;
    xs = (uint32_t *)v->xsave.region;
    xs[0] = 0x37f;
    xs[6] = 0x1f80;
    ks_fpstate_init(&v->fps);
    v->xcrs.nr_xcrs = 1;
    v->xcrs.xcrs[0].xcr = 0;
    v->xcrs.xcrs[0].value = 1;
    v->dregs.dr6 = 0xffff0ff0;
    v->dregs.dr7 = 0x400;
    v->mp_state.mp_state = v->id == 0 ? KVM_MP_STATE_RUNNABLE :
                           KVM_MP_STATE_UNINITIALIZED;
}

KsVcpu *ks_vcpu_create(KsVm *vm, unsigned long id)
{
    KsVcpu *v = g_new0(KsVcpu, 1);
    size_t size = KS_VCPU_MMAP_PAGES * KS_PAGE_SIZE;
    int fd;

    v->id = id;
    v->msrs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                    g_free);
    v->exits = g_queue_new();
    v->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fd = ks_fd_new(KS_FD_VCPU, v, "kvm-sim-vcpu", size);
    if (fd < 0 || v->wake_fd < 0) {
        return NULL;
    }
    v->fd = fd;
    v->run_size = size;
    v->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (v->run == MAP_FAILED) {
        return NULL;
    }
    v->tsc_khz = 2000000;
    v->mcg_cap = KS_MAX_MCE_BANKS;      /* kvm_arch_vcpu_create() */
    ks_vcpu_reset_state(v);
    g_ptr_array_add(vm->vcpus, v);
    ks_log_json("{\"call\":\"KVM_CREATE_VCPU\",\"id\":%lu,\"result\":%d}",
                id, fd);
    return v;
}

/*
 * 6.12 x86.c refuses to get/set register state of a vCPU whose state is
 * protected (after LAUNCH_UPDATE_VMSA / SNP LAUNCH_FINISH) in VM types
 * with protected state (SEV-ES and SNP created with KVM_SEV_INIT2).
 */
static bool ks_state_locked(KsVcpu *v, const char *call, int *r)
{
    if (v->protected_state && ks_vm && ks_vm_has_protected_state(ks_vm)) {
        *r = ks_violation("R-32", call, EINVAL, 0,
                          "vCPU %lu state is protected", v->id);
        return true;
    }
    return false;
}

/* copy register state in or out unless it is protected */
static long ks_state_copy(KsVcpu *v, const char *call, void *dst,
                          const void *src, size_t n)
{
    int r;

    if (ks_state_locked(v, call, &r)) {
        return r;
    }
    memcpy(dst, src, n);
    return 0;
}

long ks_vcpu_ioctl(KsVcpu *v, unsigned long req, void *arg)
{
    long r;

    switch (req) {
    case KVM_GET_REGS:
        return ks_state_copy(v, "KVM_GET_REGS", arg, &v->regs,
                             sizeof(v->regs));
    case KVM_SET_REGS:
        return ks_state_copy(v, "KVM_SET_REGS", &v->regs, arg,
                             sizeof(v->regs));
    case KVM_GET_SREGS:
        return ks_state_copy(v, "KVM_GET_SREGS", arg, &v->sregs,
                             sizeof(v->sregs));
    case KVM_SET_SREGS:
        return ks_state_copy(v, "KVM_SET_SREGS", &v->sregs, arg,
                             sizeof(v->sregs));
    case KVM_GET_XCRS:
        return ks_state_copy(v, "KVM_GET_XCRS", arg, &v->xcrs,
                             sizeof(v->xcrs));
    case KVM_SET_XCRS:
        return ks_state_copy(v, "KVM_SET_XCRS", &v->xcrs, arg,
                             sizeof(v->xcrs));
    case KVM_GET_DEBUGREGS:
        return ks_state_copy(v, "KVM_GET_DEBUGREGS", arg, &v->dregs,
                             sizeof(v->dregs));
    case KVM_SET_DEBUGREGS:
        return ks_state_copy(v, "KVM_SET_DEBUGREGS", &v->dregs, arg,
                             sizeof(v->dregs));
    case KVM_GET_FPU:
        return ks_state_copy(v, "KVM_GET_FPU", arg, &v->fpu, sizeof(v->fpu));
    case KVM_SET_FPU:
        r = ks_state_copy(v, "KVM_SET_FPU", &v->fpu, arg, sizeof(v->fpu));
        if (!r) {
            ks_set_fpu(v, &v->fpu);
        }
        return r;
    case KVM_GET_XSAVE:
        return ks_state_copy(v, "KVM_GET_XSAVE", arg, &v->xsave,
                             sizeof(v->xsave));
    case KVM_SET_XSAVE: {
        int locked;

        if (ks_state_locked(v, "KVM_SET_XSAVE", &locked)) {
            return locked;
        }
        return ks_set_xsave(v, arg);
    }
    case KVM_GET_LAPIC:
        memcpy(arg, &v->lapic, sizeof(v->lapic));
        return 0;
    case KVM_SET_LAPIC:
        memcpy(&v->lapic, arg, sizeof(v->lapic));
        return 0;
    case KVM_GET_VCPU_EVENTS:
        memcpy(arg, &v->events, sizeof(v->events));
        return 0;
    case KVM_SET_VCPU_EVENTS:
        memcpy(&v->events, arg, sizeof(v->events));
        return 0;
    case KVM_GET_MP_STATE:
        memcpy(arg, &v->mp_state, sizeof(v->mp_state));
        return 0;
    case KVM_SET_MP_STATE:
        memcpy(&v->mp_state, arg, sizeof(v->mp_state));
        return 0;
    case KVM_GET_MSRS:
    case KVM_SET_MSRS: {
        struct kvm_msrs *m = arg;
        uint32_t i;

        for (i = 0; i < m->nmsrs; i++) {
            uint32_t idx = m->entries[i].index;
            if (req == KVM_GET_MSRS) {
                uint64_t d = idx == 0x277 ? 0x0007040600070406ULL : 0;
                m->entries[i].data = ks_vcpu_msr(v, idx, d);
            } else {
                uint64_t *p = g_new(uint64_t, 1);
                *p = m->entries[i].data;
                g_hash_table_replace(v->msrs, GUINT_TO_POINTER(idx), p);
            }
        }
        return m->nmsrs;
    }
    case KVM_SET_CPUID2: {
        struct kvm_cpuid2 *c = arg;
        g_free(v->cpuid);
        v->cpuid = g_memdup2(c->entries, c->nent * sizeof(c->entries[0]));
        v->ncpuid = c->nent;
        return 0;
    }
    case KVM_GET_CPUID2: {
        struct kvm_cpuid2 *c = arg;
        if (c->nent < (uint32_t)v->ncpuid) {
            c->nent = v->ncpuid;
            return -E2BIG;
        }
        c->nent = v->ncpuid;
        memcpy(c->entries, v->cpuid, v->ncpuid * sizeof(c->entries[0]));
        return 0;
    }
    case KVM_SET_SIGNAL_MASK: {
        struct kvm_signal_mask *m = arg;
        if (!m) {
            v->has_sigmask = false;
            return 0;
        }
        if (m->len != 8) {
            return -EINVAL;
        }
        sigemptyset(&v->sigmask);
        memcpy(&v->sigmask, m->sigset, 8);
        v->has_sigmask = true;
        return 0;
    }
    case KVM_SET_GUEST_DEBUG: {
        struct kvm_guest_debug *d = arg;
        v->guest_debug = d->control;
        return 0;
    }
    case KVM_GET_TSC_KHZ:
        return v->tsc_khz;
    case KVM_SET_TSC_KHZ:
        v->tsc_khz = (unsigned long)arg;
        return 0;
    case KVM_X86_SETUP_MCE:
        return ks_setup_mce(v, *(uint64_t *)arg);
    case KVM_GET_STATS_FD: {
        g_autofree char *id = g_strdup_printf("kvm-%d/vcpu-%lu", getpid(),
                                              v->id);

        return ks_stats_fd_new("kvm-sim-vcpu-stats", id);
    }
    case KVM_NMI:
    case KVM_INTERRUPT:
    case KVM_SMI:
    case KVM_KVMCLOCK_CTRL:
    case KVM_TPR_ACCESS_REPORTING:
    case KVM_SET_VAPIC_ADDR:
    case KVM_ENABLE_CAP:
        return 0;
    default:
        ks_unknown_ioctl("vcpu", req);
        return -ENOTTY;
    }
}

/* ------------------------------------------------------------ exits */

uint64_t ks_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void ks_queue_exit(KsVcpu *v, const KsExit *e)
{
    uint64_t one = 1;

    g_queue_push_tail(v->exits, g_memdup2(e, sizeof(*e)));
    v->batch_start = v->queued;
    v->queued += e->repeat ? e->repeat : 1;
    if (write(v->wake_fd, &one, sizeof(one)) < 0) {
        /* counter saturated: a wakeup is pending anyway */
    }
}

static long ks_deliver_exit(KsVcpu *v, KsExit *e)
{
    struct kvm_run *run = v->run;
    long r = 0;
    uint32_t i;

    v->last_hypercall = false;
    switch (e->kind) {
    case KS_EXIT_HYPERCALL:
        run->exit_reason = KVM_EXIT_HYPERCALL;
        memset(&run->hypercall, 0, sizeof(run->hypercall));
        run->hypercall.nr = KVM_HC_MAP_GPA_RANGE;
        run->hypercall.args[0] = e->a[0];
        run->hypercall.args[1] = e->a[1];
        run->hypercall.args[2] = e->a[2];
        run->hypercall.flags = KVM_EXIT_HYPERCALL_LONG_MODE;
        run->hypercall.ret = 0;
        v->last_hypercall = true;
        break;
    case KS_EXIT_MEMORY_FAULT:
        run->exit_reason = KVM_EXIT_MEMORY_FAULT;
        run->memory_fault.gpa = e->a[0];
        run->memory_fault.size = e->a[1];
        /* a[3]: flags a later kernel may add, for tests of the VMM */
        run->memory_fault.flags =
            (e->a[2] ? KVM_MEMORY_EXIT_FLAG_PRIVATE : 0) | e->a[3];
        r = -EFAULT;
        break;
    case KS_EXIT_SYSTEM_EVENT:
        run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
        memset(&run->system_event, 0, sizeof(run->system_event));
        run->system_event.type = e->a[0];
        run->system_event.ndata = e->n;
        for (i = 0; i < e->n && i < 16; i++) {
            run->system_event.data[i] = e->a[1 + i];
        }
        break;
    case KS_EXIT_SHUTDOWN:
        run->exit_reason = KVM_EXIT_SHUTDOWN;
        break;
    case KS_EXIT_INTERNAL_ERROR:
        run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
        memset(&run->internal, 0, sizeof(run->internal));
        run->internal.suberror = e->a[0];
        break;
    }
    if (v->delivered == v->batch_start) {
        v->batch_first_ns = ks_now_ns();
    }
    v->delivered++;
    v->stop_seq_at_delivery = ks_vm ? ks_vm->stop_seq : 0;
    ks_log_json("{\"exit\":%u,\"vcpu\":%lu}", run->exit_reason, v->id);
    return r;
}

/*
 * KVM_RUN: deliver a queued exit, or block until one is queued or a
 * signal arrives.  Signals are blocked while the queue and
 * immediate_exit are checked, then ppoll() waits with the mask KVM_RUN
 * would run with (KVM_SET_SIGNAL_MASK if set, else the thread's), so a
 * kick between the check and the wait is not lost.
 * Called with ks_lock held; returns with it held.
 */
long ks_vcpu_run(KsVcpu *v)
{
    struct kvm_run *run = v->run;
    sigset_t all, old;
    long r;

    /* QEMU re-entered KVM_RUN: the previous exit has been handled. */
    if (v->consumed < v->delivered) {
        if (v->last_hypercall) {
            v->hypercall_ret = run->hypercall.ret;
            v->have_hypercall_ret = true;
            v->hypercall_rets++;
            v->hypercall_nonzero += v->hypercall_ret != 0;
            ks_log_json("{\"hypercall_ret\":%" G_GUINT64_FORMAT
                        ",\"vcpu\":%lu}", v->hypercall_ret, v->id);
        }
        v->consumed = v->delivered;
        v->last_hypercall = false;
        v->last_consumed_ns = ks_now_ns();
        /* with immediate_exit set KVM_RUN returns at once: no resumption */
        v->resumed = !run->immediate_exit;
        /* waiters wait for the last exit queued: no wakeup per exit */
        if (v->consumed == v->queued) {
            pthread_cond_broadcast(&ks_cond);
        }
    } else if (!v->resumed && !run->immediate_exit) {
        /*
         * QEMU re-entered with immediate_exit set after the last exit (an
         * exit request was pending), went back to its main loop, and now
         * runs the guest on: a waiter sees the resumption it waits for.
         */
        v->resumed = true;
        pthread_cond_broadcast(&ks_cond);
    }
    run->apic_base = v->sregs.apic_base;
    run->cr8 = v->sregs.cr8;
    run->if_flag = !!(v->regs.rflags & 0x200);
    run->ready_for_interrupt_injection = 1;

    sigfillset(&all);
    for (;;) {
        struct pollfd pfd = { .fd = v->wake_fd, .events = POLLIN };
        uint64_t cnt;
        KsExit *e;
        int pr, perr;

        pthread_sigmask(SIG_SETMASK, &all, &old);
        e = g_queue_peek_head(v->exits);
        if (e) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            r = ks_deliver_exit(v, e);
            if (e->repeat > 1) {
                /* the next of a batch: same exit, a[0] moved by stride */
                e->repeat--;
                e->a[0] += e->stride;
            } else {
                g_free(g_queue_pop_head(v->exits));
            }
            return r;
        }
        if (run->immediate_exit) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            run->exit_reason = KVM_EXIT_INTR;
            return -EINTR;
        }
        pthread_mutex_unlock(&ks_lock);
        pr = ppoll(&pfd, 1, NULL, v->has_sigmask ? &v->sigmask : &old);
        perr = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_mutex_lock(&ks_lock);
        if (pr < 0 && perr == EINTR) {
            run->exit_reason = KVM_EXIT_INTR;
            return -EINTR;
        }
        if (read(v->wake_fd, &cnt, sizeof(cnt)) < 0) {
            /* spurious wakeup */
        }
    }
}
