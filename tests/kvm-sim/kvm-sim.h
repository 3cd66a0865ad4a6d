/*
 * kvm-sim: a simulator of the KVM and SEV/SEV-SNP user ABI (internal header)
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The library is LD_PRELOADed into a process (QEMU or a test).  It hands
 * out file descriptors for /dev/kvm, /dev/sev, VMs, vCPUs and guest_memfd
 * files and implements their ioctls from the kernel's documented ABI.  It
 * does not include QEMU headers and shares no code with QEMU.
 */

#ifndef KVM_SIM_H
#define KVM_SIM_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <pthread.h>
#include <linux/kvm.h>
#include <linux/psp-sev.h>
#include <linux/kvm_para.h>

#define KS_PAGE_SIZE        4096ULL
#define KS_MAX_VCPUS_DEFAULT 64
#define KS_USER_MEM_SLOTS   32764       /* KVM_USER_MEM_SLOTS, x86 6.12 */
#define KS_MEM_MAX_NR_PAGES ((1ULL << 31) - 1) /* KVM_MEM_MAX_NR_PAGES */
#define KS_VCPU_MMAP_PAGES  3           /* kvm_run, PIO page, spare */
#define KS_INITIAL_VMSA_GPA 0xFFFFFFFFF000ULL
#define KS_SHA384_LEN       48
#define KS_GHCB_VERSION_MAX 2
#define KS_GHCB_VERSION_MIN 1
/* SEV features KVM 6.12 accepts in kvm_sev_init.vmsa_features */
#define KS_SVM_SEV_FEAT_SNP_ACTIVE      (1ULL << 0)
#define KS_SVM_SEV_FEAT_DEBUG_SWAP      (1ULL << 5)
#define KS_SUPPORTED_VMSA_FEATURES      KS_SVM_SEV_FEAT_DEBUG_SWAP
/* SNP guest policy bits checked by snp_launch_start() */
#define KS_SNP_POLICY_SMT           (1ULL << 16)
#define KS_SNP_POLICY_RSVD_MBO      (1ULL << 17)
#define KS_SNP_POLICY_DEBUG         (1ULL << 19)
#define KS_SNP_POLICY_SINGLE_SOCKET (1ULL << 20)
#define KS_SNP_POLICY_VALID         (0xffffULL | KS_SNP_POLICY_SMT | \
                                     KS_SNP_POLICY_RSVD_MBO | \
                                     KS_SNP_POLICY_DEBUG | \
                                     KS_SNP_POLICY_SINGLE_SOCKET)
/* x86.c: KVM_MAX_MCE_BANKS; kvm_caps.supported_mce_cap on SVM hosts */
#define KS_MAX_MCE_BANKS            32
#define KS_SUPPORTED_MCE_CAP        ((1ULL << 8) | (1ULL << 24)) /* CTL_P, SER_P */
/* KVM_STATS_NAME_SIZE (include/linux/kvm_types.h, not in the UAPI) */
#define KS_STATS_NAME_SIZE          48
#define KS_CPUID_PAGE_MAX   64          /* entries of an SNP CPUID page */
/* SNP firmware page type of a VMSA page (not a KVM UAPI page type) */
#define KS_SNP_PAGE_TYPE_VMSA 2

typedef enum KsFdKind {
    KS_FD_NONE,
    KS_FD_KVM,
    KS_FD_SEV,
    KS_FD_VM,
    KS_FD_VCPU,
    KS_FD_GMEM,
} KsFdKind;

typedef enum KsExitKind {
    KS_EXIT_HYPERCALL,
    KS_EXIT_MEMORY_FAULT,
    KS_EXIT_SYSTEM_EVENT,
    KS_EXIT_SHUTDOWN,
    KS_EXIT_INTERNAL_ERROR,
} KsExitKind;

typedef struct KsExit {
    KsExitKind kind;
    uint64_t a[19];     /* kind-specific arguments */
    uint32_t n;
    uint64_t repeat;    /* deliver this many (0 = 1), back to back, */
    uint64_t stride;    /* adding stride to a[0] each time */
} KsExit;

/* Legacy SEV guest states of the SEV API (UNINIT, LUPDATE, LSECRET, RUNNING) */
typedef enum KsSevState {
    KS_SEV_UNINIT,
    KS_SEV_LUPDATE,
    KS_SEV_LSECRET,
    KS_SEV_RUNNING,
} KsSevState;

/*
 * The part of KVM's guest FPU state (vcpu->arch.guest_fpu.fpstate) that
 * sev_es_sync_vmsa() reads, as KVM_SET_XSAVE and KVM_SET_FPU leave it
 */
typedef struct KsFpState {
    uint8_t legacy[512];        /* FXSAVE layout: x87, MXCSR, XMM */
    uint8_t ymmh[256];          /* AVX: upper halves of YMM0-15 */
    uint64_t xfeatures;         /* XSTATE_BV of the user components */
} KsFpState;

typedef struct KsVcpu {
    int fd;
    unsigned long id;
    struct kvm_run *run;
    size_t run_size;
    int wake_fd;                /* eventfd written when an exit is queued */
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;         /* as last set, for KVM_GET_FPU */
    struct kvm_xsave xsave;     /* as last set, for KVM_GET_XSAVE */
    KsFpState fps;              /* KVM's copy of the guest FPU */
    struct kvm_xcrs xcrs;
    struct kvm_debugregs dregs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp_state;
    uint32_t guest_debug;
    GHashTable *msrs;           /* index -> value (uint64_t *) */
    struct kvm_cpuid_entry2 *cpuid;
    int ncpuid;
    sigset_t sigmask;
    bool has_sigmask;
    bool protected_state;       /* guest_state_protected */
    uint32_t tsc_khz;
    uint64_t mcg_cap;           /* KVM_X86_SETUP_MCE */
    /* scripted exits */
    GQueue *exits;
    uint64_t queued, delivered, consumed;
    uint64_t stop_seq_at_delivery;
    bool last_hypercall;
    uint64_t hypercall_ret;
    bool have_hypercall_ret;
    /* "query exit-stats" */
    uint64_t hypercall_rets, hypercall_nonzero;
    uint64_t batch_start;       /* "queued" before the last exit request */
    uint64_t batch_first_ns, last_consumed_ns;  /* CLOCK_MONOTONIC */
    bool resumed;               /* re-entered without immediate_exit */
} KsVcpu;

typedef struct KsSlot {
    bool used;
    uint32_t flags;
    uint64_t gpa, size, uaddr;
    int gmem_fd;
    uint64_t gmem_offset;
} KsSlot;

typedef struct KsGmem {
    int fd;
    struct KsVm *vm;
    uint64_t size;
    GHashTable *prepared;       /* page index set of populated pages */
} KsGmem;

typedef struct KsVm {
    int fd;
    unsigned long type;
    GPtrArray *vcpus;           /* KsVcpu *, creation order */
    GHashTable *slots;          /* slot id -> KsSlot * */
    GArray *private_ranges;     /* sorted, disjoint [start, end) in bytes */
    bool irqchip;
    uint64_t hypercall_exit_mask;
    uint64_t stop_seq;          /* VM stops seen (KVM_GET_CLOCK) */
    uint64_t dirty_log_manual;  /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 args */
    /* SEV */
    bool need_init;             /* SEV/SEV-ES/SNP type waiting for INIT2 */
    bool sev_active, es_active;
    uint64_t vmsa_features;
    uint16_t ghcb_version;
    KsSevState sev_state;
    uint32_t sev_handle, sev_policy;
    GChecksum *legacy_measure;  /* stand-in, see README */
    /* SNP */
    bool snp_context, snp_finished;
    uint64_t snp_policy;
    uint8_t digest[KS_SHA384_LEN];
    uint64_t n_measured;
    /* SNP_LAUNCH_FINISH issued: errno result, firmware error, when */
    bool finish_issued;
    long finish_result;
    uint32_t finish_fw_error;
    uint64_t finish_ns;         /* CLOCK_MONOTONIC */
    uint8_t *cpuid_page;        /* the last CPUID page the firmware took */
} KsVm;

typedef struct KsFd {
    KsFdKind kind;
    void *obj;                  /* KsVm, KsVcpu, KsGmem */
} KsFd;

/* global state (kvm-sim.c) */
extern pthread_mutex_t ks_lock;
extern pthread_cond_t ks_cond;
extern KsVm *ks_vm;             /* the (last) VM created */
extern unsigned ks_max_vcpus;
extern bool ks_immediate_exit;

KsFd *ks_fd_lookup(int fd);
int ks_fd_new(KsFdKind kind, void *obj, const char *name, size_t size);
KsVcpu *ks_vcpu_by_index(unsigned idx);
int ks_stats_fd_new(const char *name, const char *id);

void ks_log_json(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
int ks_violation(const char *rule, const char *call, int err, int fw_error,
                 const char *fmt, ...) G_GNUC_PRINTF(5, 6);
int ks_guest_violation(const char *rule, const char *call,
                       const char *fmt, ...) G_GNUC_PRINTF(3, 4);
GString *ks_violations_json(void);
void ks_unknown_ioctl(const char *what, unsigned long req);

/* interposed glibc entry points (kvm-sim.c) without a declaration here */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);

/* kvm-sim-x86.c */
long ks_system_ioctl(unsigned long req, void *arg);
long ks_vm_x86_ioctl(KsVm *vm, unsigned long req, void *arg, bool *handled);
long ks_vcpu_ioctl(KsVcpu *vcpu, unsigned long req, void *arg);
long ks_vcpu_run(KsVcpu *vcpu);
void ks_fpstate_init(KsFpState *f);
long ks_set_xsave(KsVcpu *vcpu, const struct kvm_xsave *x);
void ks_set_fpu(KsVcpu *vcpu, const struct kvm_fpu *fpu);
KsVcpu *ks_vcpu_create(KsVm *vm, unsigned long id);
int ks_check_extension(KsVm *vm, long cap);
void ks_queue_exit(KsVcpu *vcpu, const KsExit *e);
uint64_t ks_now_ns(void);
const struct kvm_cpuid_entry2 *ks_supported_cpuid(int *n);
uint64_t ks_vcpu_msr(KsVcpu *vcpu, uint32_t index, uint64_t dflt);

/* kvm-sim-mem.c */
long ks_set_memory_region(KsVm *vm,
                          const struct kvm_userspace_memory_region2 *m,
                          bool v2);
long ks_create_gmem(KsVm *vm, const struct kvm_create_guest_memfd *g);
long ks_set_memory_attributes(KsVm *vm, const struct kvm_memory_attributes *a);
KsSlot *ks_slot_for_gfn(KsVm *vm, uint64_t gfn);
bool ks_range_private(KsVm *vm, uint64_t start, uint64_t end);
GString *ks_attrs_json(KsVm *vm, uint64_t gpa, uint64_t size);
GString *ks_memslots_json(KsVm *vm);
void ks_log_memory(KsVm *vm, const char *when);
bool ks_vm_has_private_mem(KsVm *vm);
bool ks_vm_has_protected_state(KsVm *vm);
long ks_get_dirty_log(KsVm *vm, struct kvm_dirty_log *d);
long ks_clear_dirty_log(KsVm *vm, struct kvm_clear_dirty_log *c);
long ks_enable_manual_dirty_log(KsVm *vm, const struct kvm_enable_cap *cap);

/* kvm-sim-sev.c */
long ks_memory_encrypt_op(KsVm *vm, struct kvm_sev_cmd *cmd);
long ks_sev_dev_ioctl(unsigned long req, void *arg);
int ks_inject_failure(const char *name, int fw_error, int err,
                      unsigned count);
const char *ks_sev_state_name(KsVm *vm);
long ks_enable_cap_vm(KsVm *vm, struct kvm_enable_cap *cap);

/* kvm-sim-cpuid.c */
bool ks_cpuid_fw_check(uint8_t *page);
void ks_cpuid_guest_rules(uint8_t *page, const char *call);
bool ks_cpuid_guest_read(uint8_t *page, uint32_t fn, uint32_t sub,
                         uint64_t xcr0, uint64_t xss, uint32_t out[4],
                         bool *found);
GString *ks_cpuid_page_json(KsVm *vm);
GString *ks_cpuid_guest_json(KsVm *vm, uint32_t fn, uint32_t sub,
                             uint64_t xcr0, uint64_t xss);

/* kvm-sim-measure.c */
void ks_measure_init(uint8_t digest[KS_SHA384_LEN]);
void ks_measure_page(uint8_t digest[KS_SHA384_LEN], uint8_t page_type,
                     uint64_t gpa, const void *contents);
void ks_build_vmsa(KsVm *vm, KsVcpu *vcpu, uint8_t page[KS_PAGE_SIZE]);
void ks_hex(const uint8_t *b, size_t n, char *out);

/* kvm-sim-ctl.c */
void ks_ctl_start(void);

#endif
