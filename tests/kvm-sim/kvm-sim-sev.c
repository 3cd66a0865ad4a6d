/*
 * kvm-sim: KVM_MEMORY_ENCRYPT_OP (SEV, SEV-ES, SEV-SNP) and /dev/sev
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Each check names its rule (R-xx, see README.md) and the kernel function
 * or document section it follows.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "kvm-sim.h"

#define KS_SEV_FW_BLOB_MAX_SIZE 0x4000
#define KS_LEGACY_MEASURE_LEN   48
#define KS_SEV_CERT_LEN         2084
#define KS_ID_BLOCK_SIZE        96
#define KS_ID_AUTH_SIZE         4096

typedef struct KsInjected {
    int fw_error;
    int err;
    unsigned count;     /* commands still to fail */
} KsInjected;

static GHashTable *ks_injected;     /* command name -> KsInjected */

static const char *ks_cmd_name(uint32_t id)
{
    switch (id) {
    case KVM_SEV_INIT: return "KVM_SEV_INIT";
    case KVM_SEV_ES_INIT: return "KVM_SEV_ES_INIT";
    case KVM_SEV_INIT2: return "KVM_SEV_INIT2";
    case KVM_SEV_LAUNCH_START: return "KVM_SEV_LAUNCH_START";
    case KVM_SEV_LAUNCH_UPDATE_DATA: return "KVM_SEV_LAUNCH_UPDATE_DATA";
    case KVM_SEV_LAUNCH_UPDATE_VMSA: return "KVM_SEV_LAUNCH_UPDATE_VMSA";
    case KVM_SEV_LAUNCH_SECRET: return "KVM_SEV_LAUNCH_SECRET";
    case KVM_SEV_LAUNCH_MEASURE: return "KVM_SEV_LAUNCH_MEASURE";
    case KVM_SEV_LAUNCH_FINISH: return "KVM_SEV_LAUNCH_FINISH";
    case KVM_SEV_GUEST_STATUS: return "KVM_SEV_GUEST_STATUS";
    case KVM_SEV_GET_ATTESTATION_REPORT:
        return "KVM_SEV_GET_ATTESTATION_REPORT";
    case KVM_SEV_SNP_LAUNCH_START: return "KVM_SEV_SNP_LAUNCH_START";
    case KVM_SEV_SNP_LAUNCH_UPDATE: return "KVM_SEV_SNP_LAUNCH_UPDATE";
    case KVM_SEV_SNP_LAUNCH_FINISH: return "KVM_SEV_SNP_LAUNCH_FINISH";
    default: return "KVM_SEV_UNKNOWN";
    }
}

static const char *ks_platform_cmd_name(uint32_t cmd)
{
    switch (cmd) {
    case SEV_PLATFORM_STATUS: return "SEV_PLATFORM_STATUS";
    case SEV_PDH_CERT_EXPORT: return "SEV_PDH_CERT_EXPORT";
    case SEV_GET_ID2: return "SEV_GET_ID2";
    case SNP_PLATFORM_STATUS: return "SNP_PLATFORM_STATUS";
    default: return "SEV_UNKNOWN";
    }
}

int ks_inject_failure(const char *name, int fw_error, int err,
                      unsigned count)
{
    KsInjected *i = g_new(KsInjected, 1);

    if (!ks_injected) {
        ks_injected = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            g_free);
    }
    i->fw_error = fw_error;
    i->err = err ? err : EIO;
    i->count = count ? count : 1;
    g_hash_table_replace(ks_injected, g_strdup(name), i);
    return 0;
}

/* a failure queued with "fail NAME FW_ERROR [ERRNO [COUNT]]" */
static bool ks_take_injected(const char *name, uint32_t *error, long *r)
{
    KsInjected *i = ks_injected ? g_hash_table_lookup(ks_injected, name) :
                    NULL;

    if (!i) {
        return false;
    }
    *error = i->fw_error;
    *r = ks_violation("R-30", name, i->err, i->fw_error,
                      "failure injected through the control socket");
    if (!--i->count) {
        g_hash_table_remove(ks_injected, name);
    }
    return true;
}

const char *ks_sev_state_name(KsVm *vm)
{
    if (vm->snp_finished) {
        return "finished";
    }
    if (vm->snp_context) {
        return "launch-started";
    }
    switch (vm->sev_state) {
    case KS_SEV_LUPDATE:
        return "launch-started";
    case KS_SEV_LSECRET:
        return "launch-measured";
    case KS_SEV_RUNNING:
        return "finished";
    default:
        return vm->sev_active ? "init" : "none";
    }
}

static bool ks_is_sev_fd(uint32_t fd)
{
    KsFd *f = ks_fd_lookup(fd);

    return f && f->kind == KS_FD_SEV;
}

/* ------------------------------------------------------------ INIT */

/* sev.c: __sev_guest_init() */
static long ks_guest_init(KsVm *vm, const char *call,
                          const struct kvm_sev_init *d, unsigned long type)
{
    bool es = type != KVM_X86_SEV_VM;
    uint64_t valid = es ? KS_SUPPORTED_VMSA_FEATURES : 0;

    if (vm->vcpus->len) {
        return ks_violation("R-07", call, EINVAL, 0,
                            "%u vCPUs already created", vm->vcpus->len);
    }
    if (d->flags) {
        return ks_violation("R-04", call, EINVAL, 0, "flags 0x%x not 0",
                            d->flags);
    }
    if (d->vmsa_features & ~valid) {
        return ks_violation("R-05", call, EINVAL, 0,
                            "vmsa_features 0x%llx, supported 0x%llx",
                            (unsigned long long)d->vmsa_features,
                            (unsigned long long)valid);
    }
    if (d->ghcb_version > KS_GHCB_VERSION_MAX || (!es && d->ghcb_version)) {
        return ks_violation("R-06", call, EINVAL, 0,
                            "ghcb_version %u invalid for this VM type",
                            d->ghcb_version);
    }
    if (vm->sev_active) {
        return ks_violation("R-08", call, EINVAL, 0, "already initialized");
    }
    vm->sev_active = true;
    vm->es_active = es;
    vm->vmsa_features = d->vmsa_features;
    vm->ghcb_version = d->ghcb_version;
    if (es && !vm->ghcb_version) {
        vm->ghcb_version = KS_GHCB_VERSION_MAX;
    }
    if (type == KVM_X86_SNP_VM) {
        vm->vmsa_features |= KS_SVM_SEV_FEAT_SNP_ACTIVE;
    }
    vm->need_init = false;
    return 0;
}

/* ------------------------------------------------------------ legacy */

static long ks_legacy(KsVm *vm, struct kvm_sev_cmd *c, const char *call)
{
    void *data = (void *)(uintptr_t)c->data;

    if (!vm->sev_active) {
        return ks_violation("R-10", call, ENOTTY, 0,
                            "SEV is not initialized on this VM");
    }
    switch (c->id) {
    case KVM_SEV_LAUNCH_START: {
        struct kvm_sev_launch_start *p = data;
        if (!ks_is_sev_fd(c->sev_fd)) {
            return ks_violation("R-11", call, EBADF, 0,
                                "sev_fd %u is not /dev/sev", c->sev_fd);
        }
        if (vm->sev_state != KS_SEV_UNINIT) {
            c->error = SEV_RET_INVALID_GUEST_STATE;
            return ks_violation("R-28", call, EIO, c->error,
                                "guest already launched");
        }
        vm->sev_policy = p->policy;
        vm->sev_handle = p->handle = 1;
        vm->sev_state = KS_SEV_LUPDATE;
        vm->legacy_measure = g_checksum_new(G_CHECKSUM_SHA256);
        ks_log_json("{\"call\":\"%s\",\"policy\":%u,\"result\":0}", call,
                    p->policy);
        return 0;
    }
    case KVM_SEV_LAUNCH_UPDATE_DATA: {
        struct kvm_sev_launch_update_data *p = data;
        if (vm->sev_state != KS_SEV_LUPDATE) {
            c->error = SEV_RET_INVALID_GUEST_STATE;
            return ks_violation("R-28", call, EIO, c->error,
                                "not in LUPDATE state");
        }
        if (!p->len || (p->len & 15) || (p->uaddr & 15)) {
            c->error = SEV_RET_INVALID_LEN;
            return ks_violation("R-28", call, EIO, c->error,
                                "uaddr 0x%llx len 0x%x not 16-byte aligned",
                                (unsigned long long)p->uaddr, p->len);
        }
        g_checksum_update(vm->legacy_measure, (void *)(uintptr_t)p->uaddr,
                          p->len);
        ks_log_json("{\"call\":\"%s\",\"len\":%u,\"result\":0}", call,
                    p->len);
        return 0;
    }
    case KVM_SEV_LAUNCH_UPDATE_VMSA: {
        guint i;
        if (!vm->es_active) {
            return ks_violation("R-10", call, ENOTTY, 0, "not an SEV-ES VM");
        }
        if (vm->sev_state != KS_SEV_LUPDATE) {
            c->error = SEV_RET_INVALID_GUEST_STATE;
            return ks_violation("R-28", call, EIO, c->error,
                                "not in LUPDATE state");
        }
        for (i = 0; i < vm->vcpus->len; i++) {
            KsVcpu *v = g_ptr_array_index(vm->vcpus, i);
            uint8_t page[KS_PAGE_SIZE];
            if (v->protected_state || v->guest_debug ||
                (v->dregs.dr7 & ~0x400ULL)) {
                return ks_violation("R-21", call, EINVAL, 0,
                                    "vCPU %lu: protected, guest debug or "
                                    "dr7 0x%llx", v->id,
                                    (unsigned long long)v->dregs.dr7);
            }
            ks_build_vmsa(vm, v, page);
            g_checksum_update(vm->legacy_measure, page, sizeof(page));
            v->protected_state = true;
        }
        ks_log_json("{\"call\":\"%s\",\"vcpus\":%u,\"result\":0}", call,
                    vm->vcpus->len);
        return 0;
    }
    case KVM_SEV_LAUNCH_MEASURE: {
        struct kvm_sev_launch_measure *p = data;
        uint8_t blob[KS_LEGACY_MEASURE_LEN] = { 0 };
        gsize n = 32;

        if (!p->len) {
            /* sev_launch_measure(): length query */
            p->len = KS_LEGACY_MEASURE_LEN;
            c->error = SEV_RET_INVALID_LEN;
            return -EIO;
        }
        if (p->len > KS_SEV_FW_BLOB_MAX_SIZE) {
            return ks_violation("R-28", call, EINVAL, 0, "len %u too big",
                                p->len);
        }
        if (vm->sev_state != KS_SEV_LUPDATE) {
            c->error = SEV_RET_INVALID_GUEST_STATE;
            return ks_violation("R-28", call, EIO, c->error,
                                "not in LUPDATE state");
        }
        if (p->len < KS_LEGACY_MEASURE_LEN) {
            p->len = KS_LEGACY_MEASURE_LEN;
            c->error = SEV_RET_INVALID_LEN;
            return ks_violation("R-28", call, EIO, c->error, "len too small");
        }
        /* stand-in for the firmware's HMAC: SHA-256 of what was loaded */
        g_checksum_get_digest(vm->legacy_measure, blob, &n);
        memcpy((void *)(uintptr_t)p->uaddr, blob, sizeof(blob));
        p->len = KS_LEGACY_MEASURE_LEN;
        vm->sev_state = KS_SEV_LSECRET;
        ks_log_json("{\"call\":\"%s\",\"result\":0}", call);
        return 0;
    }
    case KVM_SEV_LAUNCH_SECRET:
        if (vm->sev_state != KS_SEV_LSECRET) {
            c->error = SEV_RET_INVALID_GUEST_STATE;
            return ks_violation("R-28", call, EIO, c->error,
                                "not in LSECRET state");
        }
        return 0;
    case KVM_SEV_LAUNCH_FINISH:
        if (vm->sev_state != KS_SEV_LSECRET) {
            c->error = SEV_RET_INVALID_GUEST_STATE;
            return ks_violation("R-28", call, EIO, c->error,
                                "not in LSECRET state (LAUNCH_MEASURE "
                                "first)");
        }
        vm->sev_state = KS_SEV_RUNNING;
        ks_log_json("{\"call\":\"%s\",\"result\":0}", call);
        return 0;
    case KVM_SEV_GUEST_STATUS: {
        struct kvm_sev_guest_status *p = data;
        p->handle = vm->sev_handle;
        p->policy = vm->sev_policy;
        p->state = vm->sev_state;
        return 0;
    }
    default:
        ks_unknown_ioctl("KVM_MEMORY_ENCRYPT_OP command", c->id);
        return -EINVAL;
    }
}

/* ------------------------------------------------------------ SNP */

/* sev.c: snp_launch_start() */
static long ks_snp_launch_start(KsVm *vm, struct kvm_sev_cmd *c,
                                const char *call)
{
    struct kvm_sev_snp_launch_start *p = (void *)(uintptr_t)c->data;
    char gosvw[sizeof(p->gosvw) * 2 + 1];

    if (vm->type != KVM_X86_SNP_VM || !vm->sev_active) {
        return ks_violation("R-10", call, ENOTTY, 0,
                            "not an initialized SNP VM");
    }
    if (vm->snp_context) {
        return ks_violation("R-12", call, EINVAL, 0,
                            "launch context already exists");
    }
    if (p->flags) {
        return ks_violation("R-12", call, EINVAL, 0, "flags 0x%x not 0",
                            p->flags);
    }
    if (p->policy & ~KS_SNP_POLICY_VALID) {
        return ks_violation("R-12", call, EINVAL, 0,
                            "policy 0x%llx has bits outside 0x%llx",
                            (unsigned long long)p->policy,
                            (unsigned long long)KS_SNP_POLICY_VALID);
    }
    if (!(p->policy & KS_SNP_POLICY_RSVD_MBO) ||
        !(p->policy & KS_SNP_POLICY_SMT)) {
        return ks_violation("R-12", call, EINVAL, 0,
                            "policy 0x%llx lacks bit 17 (MBO) or 16 (SMT)",
                            (unsigned long long)p->policy);
    }
    if (p->policy & KS_SNP_POLICY_SINGLE_SOCKET) {
        return ks_violation("R-12", call, EINVAL, 0,
                            "policy 0x%llx sets SINGLE_SOCKET",
                            (unsigned long long)p->policy);
    }
    if (!ks_is_sev_fd(c->sev_fd)) {
        return ks_violation("R-11", call, EBADF, 0,
                            "sev_fd %u is not /dev/sev", c->sev_fd);
    }
    vm->snp_context = true;
    vm->snp_policy = p->policy;
    ks_measure_init(vm->digest);
    vm->n_measured = 0;
    ks_hex(p->gosvw, sizeof(p->gosvw), gosvw);
    ks_log_json("{\"call\":\"%s\",\"policy\":%llu,\"gosvw\":\"%s\","
                "\"result\":0}", call, (unsigned long long)p->policy, gosvw);
    return 0;
}

/*
 * CPUID page check (SNP firmware ABI, "CPUID reporting"): the simulator
 * rejects an entry whose feature bits (leaves 0x1 ECX/EDX, 0x7.0
 * EBX/ECX/EDX, 0x80000001 ECX/EDX, 0x8000001F EAX) are not a subset of
 * what KVM_GET_SUPPORTED_CPUID reports, a count above 64, and what
 * ks_cpuid_fw_check() finds in the XSAVE leaves and reserved fields.
 * The corrected page is what the firmware leaves behind.
 */
static bool ks_cpuid_page_ok(uint8_t *page)
{
    uint32_t *count = (uint32_t *)page;
    const struct kvm_cpuid_entry2 *sup;
    const char *reject;
    unsigned int rfn = 0, rreg = 0, rmask = 0;
    int nsup, j;
    uint32_t i;
    bool ok = true;

    if (*count > KS_CPUID_PAGE_MAX) {
        *count = KS_CPUID_PAGE_MAX;
        ok = false;
    }
    sup = ks_supported_cpuid(&nsup);
    /* KVMSIM_CPUID_REJECT=LEAF:REG:MASK, a firmware refusing those bits */
    reject = getenv("KVMSIM_CPUID_REJECT");
    if (reject && sscanf(reject, "%x:%u:%x", &rfn, &rreg, &rmask) != 3) {
        rmask = 0;
    }
    if (!ks_cpuid_fw_check(page)) {
        ok = false;
    }
    for (i = 0; i < *count; i++) {
        uint32_t *e = (uint32_t *)(page + 16 + i * 48);
        uint32_t fn = e[0], idx = e[1];
        uint32_t *out = &e[6];          /* eax, ebx, ecx, edx */
        int regmask;

        if (rmask && fn == rfn && rreg < 4 && (out[rreg] & rmask)) {
            out[rreg] &= ~rmask;
            ok = false;
        }

        switch (fn) {
        case 0x1:
        case 0x80000001:
            regmask = 0xc;
            break;
        case 0x7:
            regmask = idx == 0 ? 0xe : 0;
            break;
        case 0x8000001f:
            regmask = 0x1;
            break;
        default:
            regmask = 0;
        }
        for (j = 0; j < nsup && regmask; j++) {
            const struct kvm_cpuid_entry2 *s = &sup[j];
            uint32_t sv[4] = { s->eax, s->ebx, s->ecx, s->edx };
            int r;

            if (s->function != fn ||
                ((s->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
                 s->index != idx)) {
                continue;
            }
            for (r = 0; r < 4; r++) {
                if ((regmask & (1 << r)) && (out[r] & ~sv[r])) {
                    out[r] &= sv[r];
                    ok = false;
                }
            }
        }
    }
    return ok;
}

/*
 * Log the CPUID page QEMU gave, entry by entry, before the check:
 * {"cpuid_page":GFN,"count":N,"entries":[[function, index, xcr0_in,
 * xss_in, eax, ebx, ecx, edx],...]} (SNP firmware ABI CPUID page layout:
 * count u32 at 0, entries of 48 bytes from offset 16).
 */
static void ks_log_cpuid_page(uint64_t gfn, const uint8_t *page)
{
    uint32_t count, i;
    GString *s = g_string_new("");

    memcpy(&count, page, sizeof(count));
    for (i = 0; i < MIN(count, KS_CPUID_PAGE_MAX); i++) {
        const uint8_t *e = page + 16 + i * 48;
        uint32_t fn, idx, out[4];
        uint64_t xcr0, xss;

        memcpy(&fn, e, 4);
        memcpy(&idx, e + 4, 4);
        memcpy(&xcr0, e + 8, 8);
        memcpy(&xss, e + 16, 8);
        memcpy(out, e + 24, 16);
        g_string_append_printf(s, "%s[%u,%u,%" G_GUINT64_FORMAT ",%"
                               G_GUINT64_FORMAT ",%u,%u,%u,%u]", i ? "," : "",
                               fn, idx, xcr0, xss, out[0], out[1], out[2],
                               out[3]);
    }
    ks_log_json("{\"cpuid_page\":%" G_GUINT64_FORMAT ",\"count\":%u,"
                "\"entries\":[%s]}", gfn, count, s->str);
    g_string_free(s, TRUE);
}

/* sev.c: snp_launch_update(), sev_gmem_post_populate(); kvm_gmem_populate() */
static long ks_snp_launch_update(KsVm *vm, struct kvm_sev_cmd *c,
                                 const char *call)
{
    struct kvm_sev_snp_launch_update *p = (void *)(uintptr_t)c->data;
    KsSlot *slot;
    KsGmem *g;
    KsFd *f;
    uint64_t npages, i;
    long r = 0;
    g_autoptr(GChecksum) contents = g_checksum_new(G_CHECKSUM_SHA384);

    if (vm->type != KVM_X86_SNP_VM || !vm->snp_context) {
        return ks_violation("R-13", call, EINVAL, 0,
                            "no SNP launch context (SNP_LAUNCH_START first)");
    }
    if ((p->len & (KS_PAGE_SIZE - 1)) || p->flags ||
        (p->type != KVM_SEV_SNP_PAGE_TYPE_NORMAL &&
         p->type != KVM_SEV_SNP_PAGE_TYPE_ZERO &&
         p->type != KVM_SEV_SNP_PAGE_TYPE_UNMEASURED &&
         p->type != KVM_SEV_SNP_PAGE_TYPE_SECRETS &&
         p->type != KVM_SEV_SNP_PAGE_TYPE_CPUID)) {
        return ks_violation("R-14", call, EINVAL, 0,
                            "len 0x%llx flags 0x%x type %u",
                            (unsigned long long)p->len, p->flags, p->type);
    }
    if (!ks_is_sev_fd(c->sev_fd)) {
        return ks_violation("R-11", call, EBADF, 0,
                            "sev_fd %u is not /dev/sev", c->sev_fd);
    }
    slot = ks_slot_for_gfn(vm, p->gfn_start);
    if (!slot || !(slot->flags & KVM_MEM_GUEST_MEMFD)) {
        return ks_violation("R-15", call, EINVAL, 0,
                            "gfn 0x%llx is not in a guest_memfd memslot",
                            (unsigned long long)p->gfn_start);
    }
    if (vm->snp_finished) {
        c->error = SEV_RET_INVALID_GUEST_STATE;
        return ks_violation("R-13", call, EIO, c->error,
                            "launch already finished");
    }
    f = ks_fd_lookup(slot->gmem_fd);
    if (!f || f->kind != KS_FD_GMEM) {
        return ks_violation("R-15", call, EFAULT, 0,
                            "guest_memfd of the slot was closed");
    }
    g = f->obj;
    npages = p->len / KS_PAGE_SIZE;
    /* kvm_gmem_populate(): clamp to the end of the memslot */
    npages = MIN(npages, (slot->gpa + slot->size) / KS_PAGE_SIZE -
                 p->gfn_start);
    for (i = 0; i < npages; i++) {
        uint64_t gfn = p->gfn_start + i;
        uint64_t gpa = gfn * KS_PAGE_SIZE;
        int64_t index = (gpa - slot->gpa + slot->gmem_offset) / KS_PAGE_SIZE;
        uint8_t page[KS_PAGE_SIZE];
        void *src = (void *)(uintptr_t)(p->uaddr + i * KS_PAGE_SIZE);

        if (g_hash_table_contains(g->prepared, &index)) {
            r = ks_violation("R-17", call, EEXIST, 0,
                             "gfn 0x%llx already populated",
                             (unsigned long long)gfn);
            break;
        }
        if (!ks_range_private(vm, gpa, gpa + KS_PAGE_SIZE)) {
            r = ks_violation("R-16", call, EINVAL, 0,
                             "gfn 0x%llx is not private "
                             "(KVM_SET_MEMORY_ATTRIBUTES first)",
                             (unsigned long long)gfn);
            break;
        }
        if (ks_take_injected(call, &c->error, &r)) {
            break;
        }
        if (p->type == KVM_SEV_SNP_PAGE_TYPE_ZERO) {
            memset(page, 0, sizeof(page));
        } else {
            memcpy(page, src, sizeof(page));
        }
        if (p->type == KVM_SEV_SNP_PAGE_TYPE_CPUID) {
            ks_log_cpuid_page(gfn, page);
        }
        if (p->type == KVM_SEV_SNP_PAGE_TYPE_CPUID &&
            !ks_cpuid_page_ok(page)) {
            /* sev_gmem_post_populate(): corrected page back to userspace */
            memcpy(src, page, sizeof(page));
            c->error = SEV_RET_INVALID_PARAM;
            r = ks_violation("R-18", call, EIO, c->error,
                             "CPUID page at gfn 0x%llx has entries the "
                             "platform does not support; corrected page "
                             "written back", (unsigned long long)gfn);
            break;
        }
        if (p->type == KVM_SEV_SNP_PAGE_TYPE_CPUID) {
            /* the page the guest will read: its rules (G-xx) */
            g_free(vm->cpuid_page);
            vm->cpuid_page = g_memdup2(page, sizeof(page));
            ks_cpuid_guest_rules(page, call);
        }
        /* copy into the guest_memfd as the kernel does */
        if (pwrite(g->fd, page, sizeof(page), index * KS_PAGE_SIZE) < 0) {
            r = -errno;
            break;
        }
        ks_measure_page(vm->digest, p->type, gpa,
                        p->type == KVM_SEV_SNP_PAGE_TYPE_NORMAL ? page : NULL);
        vm->n_measured++;
        g_hash_table_add(g->prepared, g_memdup2(&index, sizeof(index)));
        g_checksum_update(contents, page, sizeof(page));
    }
    /* contents: SHA-384 of the pages done as given (none for ZERO) */
    ks_log_json("{\"call\":\"%s\",\"gfn\":%llu,\"len\":%llu,\"type\":%u,"
                "\"pages_done\":%llu,\"result\":%ld,\"fw_error\":%u,"
                "\"contents\":\"%s\"}", call,
                (unsigned long long)p->gfn_start, (unsigned long long)p->len,
                p->type, (unsigned long long)i, (r && !i) ? r : 0, c->error,
                i && p->type != KVM_SEV_SNP_PAGE_TYPE_ZERO ?
                g_checksum_get_string(contents) : "");
    if (r && i == 0) {
        return r;
    }
    /* partial progress is success with the remaining range written back */
    p->gfn_start += i;
    p->len -= i * KS_PAGE_SIZE;
    if (p->type != KVM_SEV_SNP_PAGE_TYPE_ZERO) {
        p->uaddr += i * KS_PAGE_SIZE;
    }
    return 0;
}

/*
 * Log a VMSA as built: {"vmsa":N,"vcpu_id":ID,"sha384":"..","words":
 * [[offset, value],...]}, the non-zero 64-bit words of the page.
 */
static void ks_log_vmsa(unsigned n, KsVcpu *v, const uint8_t *page)
{
    GString *s = g_string_new("");
    g_autoptr(GChecksum) h = g_checksum_new(G_CHECKSUM_SHA384);
    unsigned off;

    for (off = 0; off < KS_PAGE_SIZE; off += 8) {
        uint64_t w;

        memcpy(&w, page + off, 8);
        if (w) {
            g_string_append_printf(s, "%s[%u,%" G_GUINT64_FORMAT "]",
                                   s->len ? "," : "", off, w);
        }
    }
    g_checksum_update(h, page, KS_PAGE_SIZE);
    ks_log_json("{\"vmsa\":%u,\"vcpu_id\":%lu,\"sha384\":\"%s\","
                "\"words\":[%s]}", n, v->id, g_checksum_get_string(h), s->str);
    g_string_free(s, TRUE);
}

/* sev.c: snp_launch_finish(), snp_launch_update_vmsa(), sev_es_sync_vmsa() */
static long ks_snp_launch_finish_do(KsVm *vm, struct kvm_sev_cmd *c,
                                    const char *call)
{
    struct kvm_sev_snp_launch_finish *p = (void *)(uintptr_t)c->data;
    char hex[KS_SHA384_LEN * 2 + 1];
    char host_data[sizeof(p->host_data) * 2 + 1];
    long r;
    guint i;

    if (vm->type != KVM_X86_SNP_VM) {
        return ks_violation("R-10", call, ENOTTY, 0, "not an SNP VM");
    }
    if (!vm->snp_context) {
        return ks_violation("R-21", call, EINVAL, 0,
                            "no SNP launch context (SNP_LAUNCH_START first)");
    }
    if (p->flags) {
        return ks_violation("R-21", call, EINVAL, 0, "flags 0x%x not 0",
                            p->flags);
    }
    if (!ks_is_sev_fd(c->sev_fd)) {
        return ks_violation("R-11", call, EBADF, 0,
                            "sev_fd %u is not /dev/sev", c->sev_fd);
    }
    for (i = 0; i < vm->vcpus->len; i++) {
        KsVcpu *v = g_ptr_array_index(vm->vcpus, i);
        uint8_t page[KS_PAGE_SIZE];

        if (v->protected_state || v->guest_debug ||
            (v->dregs.dr7 & ~0x400ULL)) {
            return ks_violation("R-21", call, EINVAL, 0,
                                "vCPU %lu: state already protected, guest "
                                "debug on, or dr7 0x%llx != 0x400", v->id,
                                (unsigned long long)v->dregs.dr7);
        }
        if (ks_take_injected("KVM_SEV_SNP_LAUNCH_UPDATE_VMSA", &c->error,
                             &r)) {
            return r;
        }
        ks_build_vmsa(vm, v, page);
        ks_log_vmsa(i, v, page);
        ks_measure_page(vm->digest, KS_SNP_PAGE_TYPE_VMSA,
                        KS_INITIAL_VMSA_GPA, page);
        vm->n_measured++;
        v->protected_state = true;
    }
    if (p->id_block_en) {
        const uint8_t *id = (const void *)(uintptr_t)p->id_block_uaddr;
        uint32_t version;
        uint64_t policy;

        memcpy(&version, id + 0x50, 4);
        memcpy(&policy, id + 0x58, 8);
        if (version != 1) {
            c->error = SEV_RET_INVALID_PARAM;
            return ks_violation("R-22", call, EIO, c->error,
                                "ID block version %u, expected 1", version);
        }
        if (memcmp(id, vm->digest, KS_SHA384_LEN)) {
            c->error = SEV_RET_BAD_MEASUREMENT;
            return ks_violation("R-22", call, EIO, c->error,
                                "ID block digest differs from the launch "
                                "digest");
        }
        if (policy != vm->snp_policy) {
            c->error = SEV_RET_POLICY_FAILURE;
            return ks_violation("R-22", call, EIO, c->error,
                                "ID block policy 0x%llx != guest policy "
                                "0x%llx", (unsigned long long)policy,
                                (unsigned long long)vm->snp_policy);
        }
    }
    if (vm->snp_finished) {
        c->error = SEV_RET_INVALID_GUEST_STATE;
        return ks_violation("R-21", call, EIO, c->error,
                            "launch already finished");
    }
    vm->snp_finished = true;
    ks_hex(vm->digest, KS_SHA384_LEN, hex);
    ks_hex(p->host_data, sizeof(p->host_data), host_data);
    ks_log_json("{\"call\":\"%s\",\"vcpus\":%u,\"id_block_en\":%u,"
                "\"auth_key_en\":%u,\"vcek_disabled\":%u,"
                "\"host_data\":\"%s\",\"digest\":\"%s\",\"result\":0}",
                call, vm->vcpus->len, p->id_block_en, p->auth_key_en,
                p->vcek_disabled, host_data, hex);
    ks_log_memory(vm, "at_finish");
    return 0;
}

/* Record when SNP_LAUNCH_FINISH was issued and how it ended. */
static long ks_snp_launch_finish(KsVm *vm, struct kvm_sev_cmd *c,
                                 const char *call)
{
    long r = ks_snp_launch_finish_do(vm, c, call);
    char hex[KS_SHA384_LEN * 2 + 1];

    /* the digest so far, also when the command failed (e.g. R-22) */
    ks_hex(vm->digest, KS_SHA384_LEN, hex);
    ks_log_json("{\"finish_result\":%ld,\"fw_error\":%u,\"pages\":%"
                G_GUINT64_FORMAT ",\"digest\":\"%s\"}", r, c->error,
                vm->n_measured, hex);
    vm->finish_issued = true;
    vm->finish_result = r;
    vm->finish_fw_error = c->error;
    vm->finish_ns = ks_now_ns();
    pthread_cond_broadcast(&ks_cond);
    return r;
}

/* sev.c: sev_mem_enc_ioctl() */
long ks_memory_encrypt_op(KsVm *vm, struct kvm_sev_cmd *c)
{
    const char *call;
    long r;

    if (!c) {
        return 0;
    }
    call = ks_cmd_name(c->id);
    c->error = 0;
    if (vm->type == KVM_X86_SNP_VM && vm->sev_active &&
        c->id < KVM_SEV_SNP_LAUNCH_START) {
        return ks_violation("R-09", call, EPERM, 0,
                            "only SNP commands on an SNP VM");
    }
    if (c->id != KVM_SEV_SNP_LAUNCH_UPDATE &&
        ks_take_injected(call, &c->error, &r)) {
        return r;
    }
    switch (c->id) {
    case KVM_SEV_INIT:
    case KVM_SEV_ES_INIT: {
        struct kvm_sev_init d = { 0 };
        if (vm->type != KVM_X86_DEFAULT_VM) {
            return ks_violation("R-02", call, EINVAL, 0,
                                "legacy INIT on VM type %lu (use INIT2)",
                                vm->type);
        }
        if (c->id == KVM_SEV_ES_INIT) {
            d.ghcb_version = KS_GHCB_VERSION_MIN;
        }
        r = ks_guest_init(vm, call, &d, c->id == KVM_SEV_INIT ?
                          KVM_X86_SEV_VM : KVM_X86_SEV_ES_VM);
        ks_log_json("{\"call\":\"%s\",\"result\":%ld}", call, r);
        return r;
    }
    case KVM_SEV_INIT2: {
        struct kvm_sev_init *d = (void *)(uintptr_t)c->data;
        if (!vm->need_init) {
            return ks_violation("R-03", call, EINVAL, 0,
                                "VM type %lu needs no INIT2 or is "
                                "initialized", vm->type);
        }
        r = ks_guest_init(vm, call, d, vm->type);
        ks_log_json("{\"call\":\"%s\",\"vmsa_features\":%llu,"
                    "\"ghcb_version\":%u,\"result\":%ld}", call,
                    (unsigned long long)d->vmsa_features, d->ghcb_version, r);
        return r;
    }
    case KVM_SEV_SNP_LAUNCH_START:
        return ks_snp_launch_start(vm, c, call);
    case KVM_SEV_SNP_LAUNCH_UPDATE:
        return ks_snp_launch_update(vm, c, call);
    case KVM_SEV_SNP_LAUNCH_FINISH:
        return ks_snp_launch_finish(vm, c, call);
    default:
        return ks_legacy(vm, c, call);
    }
}

/* x86.c: kvm_vm_ioctl_enable_cap() */
long ks_enable_cap_vm(KsVm *vm, struct kvm_enable_cap *cap)
{
    switch (cap->cap) {
    case KVM_CAP_EXIT_HYPERCALL:
        if (cap->args[0] & ~(1ULL << KVM_HC_MAP_GPA_RANGE)) {
            return ks_violation("R-29", "KVM_ENABLE_CAP", EINVAL, 0,
                                "KVM_CAP_EXIT_HYPERCALL mask 0x%llx, valid "
                                "0x%llx", (unsigned long long)cap->args[0],
                                1ULL << KVM_HC_MAP_GPA_RANGE);
        }
        vm->hypercall_exit_mask = cap->args[0];
        ks_log_json("{\"call\":\"KVM_ENABLE_CAP\",\"cap\":\"EXIT_HYPERCALL\","
                    "\"mask\":%llu,\"result\":0}",
                    (unsigned long long)cap->args[0]);
        return 0;
    case KVM_CAP_MAX_VCPU_ID:
        if (cap->args[0] > ks_max_vcpus) {
            return -EINVAL;
        }
        return 0;
    case KVM_CAP_SPLIT_IRQCHIP:
    case KVM_CAP_X2APIC_API:
        return 0;
    case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
        return ks_enable_manual_dirty_log(vm, cap);
    default:
        ks_unknown_ioctl("KVM_ENABLE_CAP cap", cap->cap);
        return -EINVAL;
    }
}

/* ------------------------------------------------------------ /dev/sev */

static void ks_fill(void *p, size_t n, uint8_t seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        ((uint8_t *)p)[i] = (uint8_t)(seed + i * 7);
    }
}

/* drivers/crypto/ccp/sev-dev.c: sev_ioctl() */
long ks_sev_dev_ioctl(unsigned long req, void *arg)
{
    struct sev_issue_cmd *in = arg;
    const char *call;
    uint32_t fw = 0;
    void *data;
    long r;

    if (req != SEV_ISSUE_CMD) {
        ks_unknown_ioctl("/dev/sev", req);
        return -ENOTTY;
    }
    call = ks_platform_cmd_name(in->cmd);
    data = (void *)(uintptr_t)in->data;
    in->error = 0;
    if (ks_take_injected(call, &fw, &r)) {
        in->error = fw;
        return r;
    }
    switch (in->cmd) {
    case SEV_PLATFORM_STATUS: {
        struct sev_user_data_status *s = data;
        memset(s, 0, sizeof(*s));
        s->api_major = 1;
        s->api_minor = 55;
        s->state = 1;           /* INIT */
        s->flags = SEV_STATUS_FLAGS_CONFIG_ES;
        s->build = 21;
        return 0;
    }
    case SNP_PLATFORM_STATUS: {
        struct sev_user_data_snp_status s = { 0 };
        s.api_major = 1;
        s.api_minor = 55;
        s.state = 1;
        s.is_rmp_initialized = 1;
        s.build_id = 21;
        memcpy(data, &s, sizeof(s));
        return 0;
    }
    case SEV_PDH_CERT_EXPORT: {
        struct sev_user_data_pdh_cert_export *e = data;
        if (!e->pdh_cert_address || e->pdh_cert_len < KS_SEV_CERT_LEN ||
            !e->cert_chain_address || e->cert_chain_len < 3 * KS_SEV_CERT_LEN) {
            e->pdh_cert_len = KS_SEV_CERT_LEN;
            e->cert_chain_len = 3 * KS_SEV_CERT_LEN;
            in->error = SEV_RET_INVALID_LEN;
            return -EIO;
        }
        ks_fill((void *)(uintptr_t)e->pdh_cert_address, KS_SEV_CERT_LEN, 1);
        ks_fill((void *)(uintptr_t)e->cert_chain_address,
                3 * KS_SEV_CERT_LEN, 2);
        e->pdh_cert_len = KS_SEV_CERT_LEN;
        e->cert_chain_len = 3 * KS_SEV_CERT_LEN;
        return 0;
    }
    case SEV_GET_ID2: {
        struct sev_user_data_get_id2 *g = data;
        if (!g->address || g->length < 64) {
            g->length = 64;
            in->error = SEV_RET_INVALID_LEN;
            return -EIO;
        }
        ks_fill((void *)(uintptr_t)g->address, 64, 3);
        g->length = 64;
        return 0;
    }
    default:
        ks_unknown_ioctl("SEV_ISSUE_CMD command", in->cmd);
        return -EINVAL;
    }
}
