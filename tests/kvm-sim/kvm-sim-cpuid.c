/*
 * kvm-sim: the SNP CPUID page, as the firmware checks it and as its
 * consumers (the Linux guest, OVMF) read it
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Page layout (SNP firmware ABI, CPUID page; Linux 6.12
 * arch/x86/coco/sev/shared.c struct snp_cpuid_table): u32 count, u32 and
 * u64 reserved, then up to 64 entries of 48 bytes: u32 eax_in, u32
 * ecx_in, u64 xcr0_in, u64 xss_in, u32 eax, ebx, ecx, edx, u64 reserved.
 *
 * The firmware's XSAVE checks are part of rule R-18 (kvm-sim-sev.c
 * refuses the page).  The guest's rules (G-xx) do not change any ioctl
 * result: the firmware accepts such a page, and the guest fails later.
 * They are recorded as violations (see README.md).
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>
#include "kvm-sim.h"

#define KS_CPUID_HDR            16
#define KS_CPUID_FN_SIZE        48
#define KS_XSAVE_LEGACY_SIZE    0x240   /* legacy area + XSAVE header */
#define KS_XSAVEC               (1u << 1)       /* CPUID 0xd.1 EAX */
#define KS_XSAVES               (1u << 3)
#define KS_XFEATURE_FPSSE       0x3ULL

typedef struct __attribute__((packed)) KsCpuidFn {
    uint32_t eax_in, ecx_in;
    uint64_t xcr0_in, xss_in;
    uint32_t eax, ebx, ecx, edx;
    uint64_t reserved;
} KsCpuidFn;

G_STATIC_ASSERT(sizeof(KsCpuidFn) == KS_CPUID_FN_SIZE);

static uint32_t ks_cpuid_count(const uint8_t *page)
{
    uint32_t n;

    memcpy(&n, page, 4);
    return MIN(n, KS_CPUID_PAGE_MAX);
}

static KsCpuidFn *ks_cpuid_fn(uint8_t *page, uint32_t i)
{
    return (KsCpuidFn *)(page + KS_CPUID_HDR + i * KS_CPUID_FN_SIZE);
}

/* arch/x86/include/asm/cpuid.h: cpuid_function_is_indexed() */
static bool ks_cpuid_indexed(uint32_t fn)
{
    switch (fn) {
    case 0x4: case 0x7: case 0xb: case 0xd: case 0xf: case 0x10:
    case 0x12: case 0x14: case 0x17: case 0x18: case 0x1d: case 0x1e:
    case 0x1f: case 0x24: case 0x8000001d:
        return true;
    }
    return false;
}

/*
 * Size and standard-format offset of XSAVE component @i on the simulated
 * platform (its KVM_GET_SUPPORTED_CPUID leaf 0xd.i), false if it has none
 */
static bool ks_xsave_component(uint32_t i, uint32_t *size, uint32_t *off)
{
    const struct kvm_cpuid_entry2 *sup;
    int n, j;

    sup = ks_supported_cpuid(&n);
    for (j = 0; j < n; j++) {
        if (sup[j].function == 0xd && sup[j].index == i && sup[j].eax) {
            *size = sup[j].eax;
            *off = sup[j].ebx;
            return true;
        }
    }
    return false;
}

/* XSAVE area size for the components @mask, standard or compacted */
static uint32_t ks_xsave_size(uint64_t mask, bool compacted)
{
    uint32_t total = KS_XSAVE_LEGACY_SIZE, size, off;
    int i;

    for (i = 2; i < 64; i++) {
        if (!(mask & (1ULL << i)) || !ks_xsave_component(i, &size, &off)) {
            continue;
        }
        total = compacted ? total + size : MAX(total, off + size);
    }
    return total;
}

/*
 * R-18, the firmware's XSAVE checks (AMD's SEV firmware source,
 * github.com/amd/AMD-ASPFW fw/psp_bl_uapps/sev_uapp/src/cpuid_lookup.c:
 * sanitize_cpuid_list(), FN0000000D_X00_CUSTOM(),
 * FN0000000D_X01_CUSTOM()): an entry of a standard or extended leaf with
 * a non-zero reserved field; 0xd.0 without x87 and SSE in EAX; 0xd.0 EBX
 * other than the standard-format size of XCR0_IN's components; 0xd.1
 * EBX other than the compacted size of XCR0_IN | XSS_IN's.  Corrected
 * in place, as the firmware does.  Returns false if anything was wrong.
 */
bool ks_cpuid_fw_check(uint8_t *page)
{
    uint32_t i, n = ks_cpuid_count(page);
    bool ok = true;

    for (i = 0; i < n; i++) {
        KsCpuidFn *e = ks_cpuid_fn(page, i);
        uint32_t want;

        if (e->eax_in > 0xffff &&
            (e->eax_in < 0x80000000 || e->eax_in > 0x8000ffff)) {
            continue;           /* not checked by the firmware */
        }
        if (e->reserved) {
            ok = false;
        }
        if (e->eax_in != 0xd || e->ecx_in > 1) {
            continue;
        }
        if (e->ecx_in == 0) {
            if ((e->eax & KS_XFEATURE_FPSSE) != KS_XFEATURE_FPSSE) {
                e->eax |= KS_XFEATURE_FPSSE;
                ok = false;
            }
            want = ks_xsave_size(e->xcr0_in, false);
        } else {
            want = ks_xsave_size(e->xcr0_in | e->xss_in, true);
        }
        if (e->ebx != want) {
            e->ebx = want;
            ok = false;
        }
    }
    return ok;
}

/* ------------------------------------------------ the guest's view */

/*
 * The entry a Linux 6.12 guest uses for CPUID @fn/@sub, or -1
 * (shared.c: snp_cpuid_get_validated_func()): the first one with that
 * leaf (and subleaf, for indexed leaves); for 0xd.0 and 0xd.1 only one
 * for the base XSAVE size, XCR0_IN 1 or 3 and XSS_IN 0.
 */
static int ks_cpuid_linux_entry(uint8_t *page, uint32_t fn, uint32_t sub)
{
    uint32_t i, n = ks_cpuid_count(page);

    for (i = 0; i < n; i++) {
        KsCpuidFn *e = ks_cpuid_fn(page, i);

        if (e->eax_in != fn || (ks_cpuid_indexed(fn) && e->ecx_in != sub)) {
            continue;
        }
        if (fn == 0xd && sub <= 1 &&
            ((e->xcr0_in != 1 && e->xcr0_in != 3) || e->xss_in)) {
            continue;
        }
        return i;
    }
    return -1;
}

/*
 * The entry OVMF uses (edk2 OvmfPkg/Library/CcExitLib/CcExitVcHandler.c
 * GetCpuidFw(), 2022.11 and later): the first with that leaf and
 * subleaf; XCR0_IN and XSS_IN are ignored ("Unused").
 */
static int ks_cpuid_ovmf_entry(uint8_t *page, uint32_t fn, uint32_t sub)
{
    uint32_t i, n = ks_cpuid_count(page);

    for (i = 0; i < n; i++) {
        KsCpuidFn *e = ks_cpuid_fn(page, i);

        if (e->eax_in == fn && (!ks_cpuid_indexed(fn) || e->ecx_in == sub)) {
            return i;
        }
    }
    return -1;
}

/*
 * The XSAVE size a Linux guest computes for the components @mask
 * (snp_cpuid_calc_xsave_size()): 0x240, plus, for each component 2..63
 * the first 0xd.i entry of the page: its size (compacted) or the end of
 * its standard-format area.  0 when a component has no entry.
 */
static uint32_t ks_cpuid_linux_xsave_size(uint8_t *page, uint64_t mask,
                                          bool compacted, uint64_t *missing)
{
    uint32_t i, n = ks_cpuid_count(page), size = KS_XSAVE_LEGACY_SIZE;
    uint64_t found = 0;

    for (i = 0; i < n; i++) {
        KsCpuidFn *e = ks_cpuid_fn(page, i);
        uint64_t bit;

        if (e->eax_in != 0xd || e->ecx_in < 2 || e->ecx_in >= 64) {
            continue;
        }
        bit = 1ULL << e->ecx_in;
        if (!(mask & bit) || (found & bit)) {
            continue;
        }
        found |= bit;
        size = compacted ? size + e->eax : MAX(size, e->eax + e->ebx);
    }
    *missing = (mask & ~KS_XFEATURE_FPSSE) & ~found;
    return *missing ? 0 : size;
}

/* The range maximum a Linux guest takes for @fn (setup_cpuid_table()) */
static bool ks_cpuid_in_range(uint8_t *page, uint32_t fn)
{
    uint32_t i, n = ks_cpuid_count(page);
    uint32_t std = 0, hyp = 0, ext = 0;

    for (i = 0; i < n; i++) {
        KsCpuidFn *e = ks_cpuid_fn(page, i);

        if (e->eax_in == 0) {
            std = e->eax;
        } else if (e->eax_in == 0x40000000) {
            hyp = e->eax;
        } else if (e->eax_in == 0x80000000) {
            ext = e->eax;
        }
    }
    return fn <= std || (fn >= 0x40000000 && fn <= hyp) ||
           (fn >= 0x80000000 && fn <= ext);
}

/*
 * What a Linux 6.12 guest's CPUID instruction returns for @fn/@sub with
 * XCR0 @xcr0 and IA32_XSS @xss, from the page alone (snp_cpuid(),
 * snp_cpuid_postprocess()).  Fields the guest takes from the hypervisor
 * or from CR4 (0x1 EBX[31:24], EDX[9], ECX[27]; 0x7 ECX[4]; 0xb EDX;
 * 0x8000001e) are left as the page has them.  Returns false when the
 * guest's CPUID fails (the guest terminates).
 */
bool ks_cpuid_guest_read(uint8_t *page, uint32_t fn, uint32_t sub,
                         uint64_t xcr0, uint64_t xss, uint32_t out[4],
                         bool *found)
{
    int i = ks_cpuid_linux_entry(page, fn, sub);
    uint64_t missing;
    uint32_t size;

    memset(out, 0, 4 * sizeof(out[0]));
    *found = i >= 0;
    if (!ks_cpuid_count(page)) {
        return false;           /* setup_cpuid_table() terminates */
    }
    if (i >= 0) {
        KsCpuidFn *e = ks_cpuid_fn(page, i);

        out[0] = e->eax;
        out[1] = e->ebx;
        out[2] = e->ecx;
        out[3] = e->edx;
    } else if (!ks_cpuid_in_range(page, fn)) {
        return true;            /* out of range: zeros, no postprocessing */
    }
    if (fn != 0xd || sub > 1) {
        return true;
    }
    if (sub == 1) {
        if (!(out[0] & (KS_XSAVEC | KS_XSAVES))) {
            return false;
        }
        if (!(out[0] & KS_XSAVES)) {
            xss = 0;            /* IA32_XSS is read only with XSAVES */
        }
    } else {
        xss = 0;
    }
    size = ks_cpuid_linux_xsave_size(page, xcr0 | xss, sub == 1, &missing);
    if (!size) {
        return false;
    }
    out[1] = size;
    return true;
}

/* ------------------------------------------------ the guest's rules */

static void ks_cpuid_0xd_rules(uint8_t *page, uint32_t sub,
                               const char *call)
{
    int lin = ks_cpuid_linux_entry(page, 0xd, sub);
    int ovmf = ks_cpuid_ovmf_entry(page, 0xd, sub);

    if (lin < 0 && ks_cpuid_in_range(page, 0xd)) {
        if (ovmf >= 0) {
            KsCpuidFn *e = ks_cpuid_fn(page, ovmf);

            ks_guest_violation("G-02", call,
                               "leaf 0xd subleaf %u: no entry with XCR0_IN 1"
                               " or 3 and XSS_IN 0 (entry %d has XCR0_IN "
                               "0x%" G_GINT64_MODIFIER "x, XSS_IN 0x%"
                               G_GINT64_MODIFIER "x): a Linux guest ignores"
                               " it and reads zeros%s", sub, ovmf,
                               e->xcr0_in, e->xss_in,
                               sub ? ", so its CPUID 0xd.1 fails" : "");
        } else {
            ks_guest_violation("G-02", call,
                               "leaf 0xd subleaf %u: no entry, though leaf"
                               " 0 reports leaves up to 0xd: a Linux guest"
                               " reads zeros%s", sub,
                               sub ? ", so its CPUID 0xd.1 fails" : "");
        }
    }
    if (lin >= 0 && ovmf != lin) {
        ks_guest_violation("G-03", call,
                           "leaf 0xd subleaf %u: OVMF reads entry %d (the "
                           "first), a Linux guest entry %d (XCR0_IN 1 or "
                           "3, XSS_IN 0)", sub, ovmf, lin);
    }
    if (sub == 1 && lin >= 0 &&
        !(ks_cpuid_fn(page, lin)->eax & (KS_XSAVEC | KS_XSAVES))) {
        ks_guest_violation("G-04", call,
                           "leaf 0xd subleaf 1: EAX 0x%x has neither "
                           "XSAVEC nor XSAVES: the guest's CPUID 0xd.1 "
                           "fails", ks_cpuid_fn(page, lin)->eax);
    }
}

/*
 * G-01..G-06 on a CPUID page the firmware accepted: record what would
 * break a Linux 6.12 guest or OVMF reading it.  The call succeeds.
 */
void ks_cpuid_guest_rules(uint8_t *page, const char *call)
{
    uint64_t xcr0 = 0, xss = 0, missing;
    uint32_t out[4];
    bool found;
    int i;

    if (!ks_cpuid_count(page)) {
        ks_guest_violation("G-01", call, "the CPUID page has no entries: a"
                           " Linux guest terminates (setup_cpuid_table)");
        return;
    }
    ks_cpuid_0xd_rules(page, 0, call);
    ks_cpuid_0xd_rules(page, 1, call);

    /* G-05: every component the guest may enable has its 0xd.i entry */
    i = ks_cpuid_linux_entry(page, 0xd, 0);
    if (i >= 0) {
        xcr0 = ks_cpuid_fn(page, i)->eax |
               (uint64_t)ks_cpuid_fn(page, i)->edx << 32;
    }
    i = ks_cpuid_linux_entry(page, 0xd, 1);
    if (i >= 0 && (ks_cpuid_fn(page, i)->eax & KS_XSAVES)) {
        xss = ks_cpuid_fn(page, i)->ecx |
              (uint64_t)ks_cpuid_fn(page, i)->edx << 32;
    }
    ks_cpuid_linux_xsave_size(page, xcr0 | xss, false, &missing);
    if (missing) {
        ks_guest_violation("G-05", call,
                           "XSAVE components 0x%" G_GINT64_MODIFIER "x are"
                           " supported by leaf 0xd subleaf 0/1 but have no"
                           " leaf 0xd entry of their own: the guest's "
                           "CPUID 0xd.0/0xd.1 fails once it enables them",
                           missing);
    }

    /* G-06: the early #VC handler's SEV checks (do_vc_no_ghcb()) */
    ks_cpuid_guest_read(page, 0x80000000, 0, 1, 0, out, &found);
    if (out[0] < 0x8000001f) {
        ks_guest_violation("G-06", call,
                           "leaf 0x80000000 EAX 0x%x < 0x8000001f: a Linux "
                           "guest terminates", out[0]);
    }
    ks_cpuid_guest_read(page, 0x8000001f, 0, 1, 0, out, &found);
    if (!(out[0] & (1u << 1))) {
        ks_guest_violation("G-06", call,
                           "leaf 0x8000001f EAX 0x%x lacks SEV (bit 1): a "
                           "Linux guest terminates", out[0]);
    }
}

/* ------------------------------------------------ control socket */

/* "query cpuid-page": the last CPUID page the firmware accepted */
GString *ks_cpuid_page_json(KsVm *vm)
{
    GString *s = g_string_new("{\"ok\":true,\"count\":");
    uint32_t i, n;

    if (!vm->cpuid_page) {
        g_string_append(s, "0,\"entries\":[]}");
        return s;
    }
    n = ks_cpuid_count(vm->cpuid_page);
    g_string_append_printf(s, "%u,\"entries\":[", n);
    for (i = 0; i < n; i++) {
        KsCpuidFn *e = ks_cpuid_fn(vm->cpuid_page, i);

        g_string_append_printf(s, "%s{\"leaf\":%u,\"subleaf\":%u,"
                               "\"xcr0_in\":%" G_GUINT64_FORMAT ",\"xss_in\":%"
                               G_GUINT64_FORMAT ",\"eax\":%u,\"ebx\":%u,"
                               "\"ecx\":%u,\"edx\":%u}", i ? "," : "",
                               e->eax_in, e->ecx_in, e->xcr0_in, e->xss_in,
                               e->eax, e->ebx, e->ecx, e->edx);
    }
    g_string_append(s, "]}");
    return s;
}

/* "query cpuid-guest LEAF SUBLEAF [XCR0 [XSS]]" */
GString *ks_cpuid_guest_json(KsVm *vm, uint32_t fn, uint32_t sub,
                             uint64_t xcr0, uint64_t xss)
{
    GString *s = g_string_new(NULL);
    uint32_t out[4];
    bool found, ok;

    if (!vm->cpuid_page) {
        g_string_append(s, "{\"ok\":false,\"error\":\"no CPUID page\"}");
        return s;
    }
    ok = ks_cpuid_guest_read(vm->cpuid_page, fn, sub, xcr0, xss, out,
                             &found);
    g_string_append_printf(s, "{\"ok\":true,\"fails\":%s,\"found\":%s,"
                           "\"eax\":%u,\"ebx\":%u,\"ecx\":%u,\"edx\":%u}",
                           ok ? "false" : "true", found ? "true" : "false",
                           out[0], out[1], out[2], out[3]);
    return s;
}
