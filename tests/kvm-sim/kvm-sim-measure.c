/*
 * kvm-sim: SEV-SNP launch digest and VMSA construction
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The launch digest follows the SEV-SNP firmware ABI specification
 * (SNP_LAUNCH_UPDATE, "PAGE_INFO"): for each page,
 *   digest = SHA-384(PAGE_INFO), PAGE_INFO being 0x70 bytes:
 *     0x00 DIGEST_CUR[48]  0x30 CONTENTS[48]  0x60 LENGTH u16 = 0x70
 *     0x62 PAGE_TYPE u8    0x63 IMI_PAGE u8   0x64 VMPL3/2/1_PERMS u8 x3
 *     0x67 reserved        0x68 GPA u64
 * CONTENTS is SHA-384 of the page for NORMAL and VMSA pages and zero for
 * ZERO, UNMEASURED, SECRETS and CPUID pages.  SHA-384 is GLib's GChecksum.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "kvm-sim.h"

#define KS_PAGE_INFO_LEN 0x70

void ks_measure_init(uint8_t digest[KS_SHA384_LEN])
{
    memset(digest, 0, KS_SHA384_LEN);
}

static void ks_sha384(const void *data, size_t len, uint8_t out[KS_SHA384_LEN])
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA384);
    gsize n = KS_SHA384_LEN;

    g_checksum_update(c, data, len);
    g_checksum_get_digest(c, out, &n);
    g_checksum_free(c);
}

void ks_measure_page(uint8_t digest[KS_SHA384_LEN], uint8_t page_type,
                     uint64_t gpa, const void *contents)
{
    uint8_t info[KS_PAGE_INFO_LEN] = { 0 };
    uint16_t len = KS_PAGE_INFO_LEN;

    memcpy(info, digest, KS_SHA384_LEN);
    if (contents) {
        ks_sha384(contents, KS_PAGE_SIZE, info + 0x30);
    }
    memcpy(info + 0x60, &len, 2);
    info[0x62] = page_type;
    info[0x63] = 0;                 /* IMI_PAGE: not a migration image */
    /* 0x64..0x66 VMPL3/2/1 permissions: 0 (KVM runs guests at VMPL0) */
    memcpy(info + 0x68, &gpa, 8);
    ks_sha384(info, sizeof(info), digest);
}

void ks_hex(const uint8_t *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", b[i]);
    }
    out[2 * n] = 0;
}

/* ------------------------------------------------------------ VMSA */

/* struct sev_es_save_area offsets (arch/x86/include/asm/svm.h, 6.12) */
enum {
    VMSA_ES = 0x00, VMSA_CS = 0x10, VMSA_SS = 0x20, VMSA_DS = 0x30,
    VMSA_FS = 0x40, VMSA_GS = 0x50, VMSA_GDTR = 0x60, VMSA_LDTR = 0x70,
    VMSA_IDTR = 0x80, VMSA_TR = 0x90, VMSA_CPL = 0xcb, VMSA_EFER = 0xd0,
    VMSA_XSS = 0x140, VMSA_CR4 = 0x148, VMSA_CR3 = 0x150, VMSA_CR0 = 0x158,
    VMSA_DR7 = 0x160, VMSA_DR6 = 0x168, VMSA_RFLAGS = 0x170,
    VMSA_RIP = 0x178, VMSA_RSP = 0x1d8, VMSA_RAX = 0x1f8,
    VMSA_STAR = 0x200, VMSA_LSTAR = 0x208, VMSA_CSTAR = 0x210,
    VMSA_SFMASK = 0x218, VMSA_KERNEL_GS_BASE = 0x220,
    VMSA_SYSENTER_CS = 0x228, VMSA_SYSENTER_ESP = 0x230,
    VMSA_SYSENTER_EIP = 0x238, VMSA_CR2 = 0x240, VMSA_G_PAT = 0x268,
    VMSA_PKRU = 0x2e8, VMSA_RCX = 0x308, VMSA_RDX = 0x310, VMSA_RBX = 0x318,
    VMSA_RBP = 0x328, VMSA_RSI = 0x330, VMSA_RDI = 0x338, VMSA_R8 = 0x340,
    VMSA_SEV_FEATURES = 0x3b0, VMSA_XCR0 = 0x3e8,
    VMSA_X87_DP = 0x400, VMSA_MXCSR = 0x408, VMSA_X87_FTW = 0x40c,
    VMSA_X87_FSW = 0x40e, VMSA_X87_FCW = 0x410, VMSA_X87_FOP = 0x412,
    VMSA_X87_RIP = 0x418, VMSA_FPREG_X87 = 0x420, VMSA_FPREG_XMM = 0x470,
    VMSA_FPREG_YMM = 0x570, VMSA_END = 0x670,
};

#define X86_CR0_NW (1ULL << 29)
#define X86_CR0_CD (1ULL << 30)
#define X86_CR4_MCE (1ULL << 6)
#define EFER_SVME (1ULL << 12)
#define PAT_DEFAULT 0x0007040600070406ULL

static void put64(uint8_t *p, unsigned off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static void put32(uint8_t *p, unsigned off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static void put16(uint8_t *p, unsigned off, uint16_t v)
{
    memcpy(p + off, &v, 2);
}

/* ------------------------------------------------------------ FPU */

/* the FXSAVE/XSAVE layout of struct kvm_xsave and of KVM's fpstate */
#define FX_MXCSR        24      /* u32 MXCSR, u32 MXCSR_MASK */
#define FX_XMM          160     /* XFEATURE_SSE: XMM0-15, 256 bytes */
#define XSAVE_HDR       512     /* u64 XSTATE_BV, u64 XCOMP_BV, 48 reserved */
#define XSAVE_YMM       576     /* XFEATURE_YMM, standard format */
#define XFEATURE_FP     (1ULL << 0)
#define XFEATURE_SSE    (1ULL << 1)
#define XFEATURE_YMM    (1ULL << 2)
#define MXCSR_DEFAULT   0x1f80
#define MXCSR_FEATURE_MASK 0xffffu      /* with DAZ, as on every SNP host */

/* fpu_alloc_guest_fpstate(), fpstate_init_user(): FCW 0x37f, MXCSR 0x1f80 */
void ks_fpstate_init(KsFpState *f)
{
    uint16_t fcw = 0x37f;
    uint32_t mxcsr = MXCSR_DEFAULT;

    memset(f, 0, sizeof(*f));
    memcpy(f->legacy, &fcw, 2);
    memcpy(f->legacy + FX_MXCSR, &mxcsr, 4);
}

/* XCR0 bits KVM supports here: KVM_GET_SUPPORTED_CPUID 0xd.0 EDX:EAX */
static uint64_t ks_supported_xcr0(void)
{
    const struct kvm_cpuid_entry2 *sup;
    int n, i;

    sup = ks_supported_cpuid(&n);
    for (i = 0; i < n; i++) {
        if (sup[i].function == 0xd && sup[i].index == 0) {
            return sup[i].eax | (uint64_t)sup[i].edx << 32;
        }
    }
    return XFEATURE_FP | XFEATURE_SSE;
}

/*
 * KVM_SET_XSAVE: x86.c kvm_vcpu_ioctl_x86_set_xsave(), fpu/core.c
 * fpu_copy_uabi_to_guest_fpstate(), fpu/xstate.c copy_uabi_to_xstate()
 * and validate_user_xstate_header().  R-41 refuses a header with
 * components KVM does not support, a compacted format (XCOMP_BV), reserved
 * header bytes, or reserved MXCSR bits (checked when x87, SSE or AVX is
 * given).  Only the components set in XSTATE_BV are copied (MXCSR with x87,
 * or alone with SSE or AVX); the others keep what KVM had.  XSTATE_BV
 * replaces the user components of KVM's header, so AVX state given
 * earlier is gone (sev_es_sync_vmsa() then writes zeroes).
 */
long ks_set_xsave(KsVcpu *v, const struct kvm_xsave *x)
{
    const uint8_t *src = (const uint8_t *)x->region;
    const char *call = "KVM_SET_XSAVE";
    uint64_t bv, comp, sup = ks_supported_xcr0();
    uint32_t mxcsr;
    unsigned i;

    memcpy(&bv, src + XSAVE_HDR, 8);
    memcpy(&comp, src + XSAVE_HDR + 8, 8);
    memcpy(&mxcsr, src + FX_MXCSR, 4);
    if (bv & ~sup) {
        return ks_violation("R-41", call, EINVAL, 0,
                            "XSTATE_BV 0x%" G_GINT64_MODIFIER "x has "
                            "components outside the supported XCR0 0x%"
                            G_GINT64_MODIFIER "x", bv, sup);
    }
    if (comp) {
        return ks_violation("R-41", call, EINVAL, 0,
                            "XCOMP_BV 0x%" G_GINT64_MODIFIER "x: userspace "
                            "must use the standard format", comp);
    }
    for (i = XSAVE_HDR + 16; i < XSAVE_HDR + 64; i++) {
        if (src[i]) {
            return ks_violation("R-41", call, EINVAL, 0,
                                "reserved byte %u of the XSAVE header is "
                                "not zero", i - XSAVE_HDR);
        }
    }
    if ((bv & (XFEATURE_FP | XFEATURE_SSE | XFEATURE_YMM)) &&
        (mxcsr & ~MXCSR_FEATURE_MASK)) {
        return ks_violation("R-41", call, EINVAL, 0,
                            "MXCSR 0x%x sets reserved bits", mxcsr);
    }
    memcpy(&v->xsave, x, sizeof(v->xsave));
    if ((bv & (XFEATURE_SSE | XFEATURE_YMM)) && !(bv & XFEATURE_FP)) {
        memcpy(v->fps.legacy + FX_MXCSR, src + FX_MXCSR, 8);
    }
    if (bv & XFEATURE_FP) {
        memcpy(v->fps.legacy, src, FX_XMM);     /* includes MXCSR */
    }
    if (bv & XFEATURE_SSE) {
        memcpy(v->fps.legacy + FX_XMM, src + FX_XMM, 256);
    }
    if (bv & XFEATURE_YMM) {
        memcpy(v->fps.ymmh, src + XSAVE_YMM, sizeof(v->fps.ymmh));
    }
    v->fps.xfeatures = bv;
    return 0;
}

/*
 * KVM_SET_FPU: x86.c kvm_arch_vcpu_ioctl_set_fpu() writes x87 and XMM
 * into KVM's copy, not MXCSR, and leaves XSTATE_BV as it was
 */
void ks_set_fpu(KsVcpu *v, const struct kvm_fpu *f)
{
    uint8_t *fx = v->fps.legacy;
    uint16_t ftw = f->ftwx;

    memcpy(fx + 32, f->fpr, 128);
    memcpy(fx + 0, &f->fcw, 2);
    memcpy(fx + 2, &f->fsw, 2);
    memcpy(fx + 4, &ftw, 2);
    memcpy(fx + 6, &f->last_opcode, 2);
    memcpy(fx + 8, &f->last_ip, 8);
    memcpy(fx + 16, &f->last_dp, 8);
    memcpy(fx + FX_XMM, f->xmm, 256);
}

/* svm.c: svm_set_segment() packs a kvm_segment into a VMCB segment */
static void put_seg(uint8_t *p, unsigned off, const struct kvm_segment *s)
{
    uint16_t attrib = (s->type & 0xf) | (s->s & 1) << 4 | (s->dpl & 3) << 5 |
                      ((s->present & 1) && !s->unusable) << 7 |
                      (s->avl & 1) << 8 | (s->l & 1) << 9 |
                      (s->db & 1) << 10 | (s->g & 1) << 11;

    put16(p, off, s->selector);
    put16(p, off + 2, attrib);
    put32(p, off + 4, s->limit);
    put64(p, off + 8, s->base);
}

static void put_dt(uint8_t *p, unsigned off, const struct kvm_dtable *d)
{
    put32(p, off + 4, d->limit);
    put64(p, off + 8, d->base);
}

/*
 * ks_build_vmsa: the VMSA page KVM 6.12 would encrypt for this vCPU at
 * LAUNCH_UPDATE_VMSA / SNP_LAUNCH_FINISH (sev.c: sev_es_sync_vmsa(),
 * which copies the VMCB save area that svm.c built from the register
 * ioctls, then syncs GPRs, XCR0, PKRU, XSS, DR6, SEV features and, for
 * VM types other than DEFAULT, the x87/SSE/AVX state).
 *
 * Sources of the fields (see README.md "VMSA"):
 *   KVM_SET_SREGS: es cs ss ds fs gs ldt tr (svm_set_segment packing),
 *       gdt idt (base, limit), cpl = ss.dpl, efer | SVME,
 *       cr0 without CD/NW (KVM_X86_QUIRK_CD_NW_CLEARED), cr2, cr3,
 *       cr4 | MCE (host CR4.MCE, svm_set_cr4)
 *   KVM_SET_REGS: rax..r15, rip, rflags
 *   KVM_SET_DEBUGREGS: dr6, dr7
 *   KVM_SET_XCRS: xcr0
 *   KVM_SET_MSRS: star lstar cstar sfmask kernel_gs_base sysenter_cs/esp/eip
 *       g_pat (default 0x0007040600070406), xss
 *   KVM's copy of the guest FPU as KVM_SET_XSAVE / KVM_SET_FPU left it
 *       (ks_set_xsave()): x87 control/status/tag/opcode/pointers, mxcsr,
 *       st0-7, xmm0-15; ymm0-15 upper halves if its XSTATE_BV has AVX;
 *       pkru 0 (no PKU here)
 *   KVM_SEV_INIT2 / VM type: sev_features
 * Everything else in the page is zero.
 */
void ks_build_vmsa(KsVm *vm, KsVcpu *v, uint8_t p[KS_PAGE_SIZE])
{
    const struct kvm_sregs *s = &v->sregs;
    const struct kvm_regs *r = &v->regs;
    const uint64_t gpr[8] = { r->r8, r->r9, r->r10, r->r11, r->r12, r->r13,
                              r->r14, r->r15 };
    uint64_t xcr0 = 1;
    uint32_t i;

    memset(p, 0, KS_PAGE_SIZE);
    put_seg(p, VMSA_ES, &s->es);
    put_seg(p, VMSA_CS, &s->cs);
    put_seg(p, VMSA_SS, &s->ss);
    put_seg(p, VMSA_DS, &s->ds);
    put_seg(p, VMSA_FS, &s->fs);
    put_seg(p, VMSA_GS, &s->gs);
    put_dt(p, VMSA_GDTR, &s->gdt);
    put_seg(p, VMSA_LDTR, &s->ldt);
    put_dt(p, VMSA_IDTR, &s->idt);
    put_seg(p, VMSA_TR, &s->tr);
    p[VMSA_CPL] = s->ss.dpl & 3;
    put64(p, VMSA_EFER, s->efer | EFER_SVME);
    put64(p, VMSA_CR4, s->cr4 | X86_CR4_MCE);
    put64(p, VMSA_CR3, s->cr3);
    put64(p, VMSA_CR0, s->cr0 & ~(X86_CR0_CD | X86_CR0_NW));
    put64(p, VMSA_CR2, s->cr2);
    put64(p, VMSA_DR7, v->dregs.dr7);
    put64(p, VMSA_DR6, v->dregs.dr6);
    put64(p, VMSA_RFLAGS, r->rflags);
    put64(p, VMSA_RIP, r->rip);
    put64(p, VMSA_RSP, r->rsp);
    put64(p, VMSA_RAX, r->rax);
    put64(p, VMSA_RCX, r->rcx);
    put64(p, VMSA_RDX, r->rdx);
    put64(p, VMSA_RBX, r->rbx);
    put64(p, VMSA_RBP, r->rbp);
    put64(p, VMSA_RSI, r->rsi);
    put64(p, VMSA_RDI, r->rdi);
    for (i = 0; i < 8; i++) {
        put64(p, VMSA_R8 + 8 * i, gpr[i]);
    }
    put64(p, VMSA_STAR, ks_vcpu_msr(v, 0xc0000081, 0));
    put64(p, VMSA_LSTAR, ks_vcpu_msr(v, 0xc0000082, 0));
    put64(p, VMSA_CSTAR, ks_vcpu_msr(v, 0xc0000083, 0));
    put64(p, VMSA_SFMASK, ks_vcpu_msr(v, 0xc0000084, 0));
    put64(p, VMSA_KERNEL_GS_BASE, ks_vcpu_msr(v, 0xc0000102, 0));
    put64(p, VMSA_SYSENTER_CS, ks_vcpu_msr(v, 0x174, 0));
    put64(p, VMSA_SYSENTER_ESP, ks_vcpu_msr(v, 0x175, 0));
    put64(p, VMSA_SYSENTER_EIP, ks_vcpu_msr(v, 0x176, 0));
    put64(p, VMSA_G_PAT, ks_vcpu_msr(v, 0x277, PAT_DEFAULT));
    put64(p, VMSA_XSS, ks_vcpu_msr(v, 0xda0, 0));
    for (i = 0; i < v->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
        if (v->xcrs.xcrs[i].xcr == 0) {
            xcr0 = v->xcrs.xcrs[i].value;
        }
    }
    put64(p, VMSA_XCR0, xcr0);
    put64(p, VMSA_SEV_FEATURES, vm->vmsa_features);

    /*
     * PKRU: vcpu->arch.pkru, which only KVM_SET_XSAVE with XSTATE_BV bit 9
     * sets; the simulated platform has no PKU (R-41 refuses bit 9), so 0.
     */
    if (vm->type == KVM_X86_DEFAULT_VM) {
        /* KVM_SEV_ES_INIT: FPU state is not part of the VMSA */
        return;
    }
    /* KVM's copy of the guest FPU, whatever XSTATE_BV says (x87, SSE) */
    {
        const uint8_t *x = v->fps.legacy;

        memcpy(p + VMSA_X87_FCW, x + 0, 2);
        memcpy(p + VMSA_X87_FSW, x + 2, 2);
        memcpy(p + VMSA_X87_FTW, x + 4, 2);     /* i387.twd, u16 */
        memcpy(p + VMSA_X87_FOP, x + 6, 2);
        memcpy(p + VMSA_X87_RIP, x + 8, 8);
        memcpy(p + VMSA_X87_DP, x + 16, 8);
        memcpy(p + VMSA_MXCSR, x + FX_MXCSR, 4);
        for (i = 0; i < 8; i++) {
            memcpy(p + VMSA_FPREG_X87 + i * 8, x + 32 + i * 16, 8);
            memcpy(p + VMSA_FPREG_X87 + 64 + i * 2, x + 32 + i * 16 + 8, 2);
        }
        memcpy(p + VMSA_FPREG_XMM, x + FX_XMM, 256);
    }
    /* get_xsave_addr(XFEATURE_YMM): only if KVM's XSTATE_BV has AVX */
    if (v->fps.xfeatures & XFEATURE_YMM) {
        memcpy(p + VMSA_FPREG_YMM, v->fps.ymmh, 256);
    }
}
