/*
 * AMD SEV-SNP: the initial VMSA of a vCPU, as KVM builds it
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "kvm/kvm_i386.h"
#include "snp-launch.h"
#include "snp-vmsa.h"

/*
 * The VMSA layout: struct sev_es_save_area, Linux 6.12
 * arch/x86/include/asm/svm.h (AMD64 APM vol. 2, table B-4).
 */
typedef struct QEMU_PACKED SnpVmcbSeg {
    uint16_t selector;
    uint16_t attrib;
    uint32_t limit;
    uint64_t base;
} SnpVmcbSeg;

typedef struct QEMU_PACKED SnpVmsa {
    SnpVmcbSeg es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;
    uint64_t pl_ssp[4];
    uint64_t u_cet;
    uint8_t reserved_0xc8[2];
    uint8_t vmpl;
    uint8_t cpl;
    uint8_t reserved_0xcc[4];
    uint64_t efer;
    uint8_t reserved_0xd8[104];
    uint64_t xss, cr4, cr3, cr0, dr7, dr6, rflags, rip;
    uint64_t dr0_3[4];
    uint64_t dr0_3_addr_mask[4];
    uint8_t reserved_0x1c0[24];
    uint64_t rsp, s_cet, ssp, isst_addr, rax, star, lstar, cstar, sfmask;
    uint64_t kernel_gs_base, sysenter_cs, sysenter_esp, sysenter_eip, cr2;
    uint8_t reserved_0x248[32];
    uint64_t g_pat, dbgctl, br_from, br_to, last_excp_from, last_excp_to;
    uint8_t reserved_0x298[80];
    uint32_t pkru, tsc_aux;
    uint8_t reserved_0x2f0[24];
    uint64_t rcx, rdx, rbx, reserved_0x320, rbp, rsi, rdi;
    uint64_t r8_15[8];
    uint8_t reserved_0x380[16];
    uint64_t exit_info[4];
    uint64_t sev_features;
    uint64_t vintr_ctrl, guest_exit_code, virtual_tom, tlb_id, pcpu_id;
    uint64_t event_inj;
    uint64_t xcr0;
    uint8_t reserved_0x3f0[16];
    uint64_t x87_dp;
    uint32_t mxcsr;
    uint16_t x87_ftw, x87_fsw, x87_fcw, x87_fop, x87_ds, x87_cs;
    uint64_t x87_rip;
    uint8_t fpreg_x87[80];
    uint8_t fpreg_xmm[256];
    uint8_t fpreg_ymm[256];
} SnpVmsa;

QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, cpl) != 0xcb);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, xss) != 0x140);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, rsp) != 0x1d8);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, g_pat) != 0x268);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, pkru) != 0x2e8);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, rcx) != 0x308);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, sev_features) != 0x3b0);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, xcr0) != 0x3e8);
QEMU_BUILD_BUG_ON(offsetof(SnpVmsa, x87_dp) != 0x400);
QEMU_BUILD_BUG_ON(sizeof(SnpVmsa) != 0x670);

/* svm.c, svm_set_segment(): a kvm_segment as the VMCB stores it */
static void snp_vmsa_seg(SnpVmcbSeg *d, const SegmentCache *sc)
{
    struct kvm_segment s;

    kvm_segment_from_cache(&s, sc);
    d->selector = s.selector;
    d->attrib = (s.type & 0xf) | (s.s & 1) << 4 | (s.dpl & 3) << 5 |
                ((s.present & 1) && !s.unusable) << 7 | (s.avl & 1) << 8 |
                (s.l & 1) << 9 | (s.db & 1) << 10 | (s.g & 1) << 11;
    d->limit = s.limit;
    d->base = s.base;
}

static void snp_vmsa_dt(SnpVmcbSeg *d, const SegmentCache *sc)
{
    d->limit = sc->limit;
    d->base = sc->base;
}

/* The size of the XSAVE buffer of x86_cpu_xsave_all_areas() */
static uint32_t snp_xsave_len(void)
{
    uint32_t len = sizeof(X86LegacyXSaveArea) + sizeof(X86XSaveHeader);
    size_t i;

    for (i = 0; i < ARRAY_SIZE(x86_ext_save_areas); i++) {
        len = MAX(len, x86_ext_save_areas[i].offset +
                       x86_ext_save_areas[i].size);
    }
    return len;
}

/*
 * sev_es_sync_vmsa() takes the x87, SSE and AVX state from KVM's copy of
 * the guest FPU, in which KVM_SET_XSAVE replaced only the components set
 * in XSTATE_BV (copy_uabi_to_xstate(): MXCSR is part of the x87
 * component, bytes 0-159, and is also copied alone for SSE or AVX); the
 * others keep their initial values (FCW 0x37f, MXCSR 0x1f80, zeroes).
 */
static void snp_vmsa_fpu(X86CPU *cpu, SnpVmsa *v)
{
    uint32_t len = snp_xsave_len();
    g_autofree uint8_t *buf = g_malloc0(len);
    X86LegacyXSaveArea *fx = (X86LegacyXSaveArea *)buf;
    X86XSaveHeader *hdr = (X86XSaveHeader *)(buf + sizeof(*fx));
    const ExtSaveArea *ymm = &x86_ext_save_areas[XSTATE_YMM_BIT];
    uint64_t bv;
    int i;

    x86_cpu_xsave_all_areas(cpu, buf, len);
    bv = hdr->xstate_bv;

    v->x87_fcw = 0x37f;
    v->mxcsr = 0x1f80;
    if (bv & XSTATE_FP_MASK) {
        v->x87_dp = fx->fpdp;
        v->x87_ftw = fx->ftw;
        v->x87_fsw = fx->fsw;
        v->x87_fcw = fx->fcw;
        v->x87_fop = fx->fpop;
        v->x87_rip = fx->fpip;
        for (i = 0; i < 8; i++) {
            const uint8_t *st = (const uint8_t *)&fx->fpregs[i];

            memcpy(v->fpreg_x87 + i * 8, st, 8);
            memcpy(v->fpreg_x87 + 64 + i * 2, st + 8, 2);
        }
    }
    if (bv & (XSTATE_FP_MASK | XSTATE_SSE_MASK | XSTATE_YMM_MASK)) {
        v->mxcsr = fx->mxcsr;
    }
    if (bv & XSTATE_SSE_MASK) {
        memcpy(v->fpreg_xmm, fx->xmm_regs, sizeof(v->fpreg_xmm));
    }
    if ((bv & XSTATE_YMM_MASK) && ymm->offset && ymm->size) {
        memcpy(v->fpreg_ymm, buf + ymm->offset, sizeof(v->fpreg_ymm));
    }
    if (bv & XSTATE_PKRU_MASK) {
        v->pkru = cpu->env.pkru;
    }
}

void snp_vmsa_build(X86CPU *cpu, uint64_t sev_features, uint8_t *page)
{
    CPUX86State *env = &cpu->env;
    SnpVmsa *v = (SnpVmsa *)page;
    int i;

    memset(page, 0, SNP_PAGE_SIZE);

    /* KVM_SET_SREGS */
    snp_vmsa_seg(&v->es, &env->segs[R_ES]);
    snp_vmsa_seg(&v->cs, &env->segs[R_CS]);
    snp_vmsa_seg(&v->ss, &env->segs[R_SS]);
    snp_vmsa_seg(&v->ds, &env->segs[R_DS]);
    snp_vmsa_seg(&v->fs, &env->segs[R_FS]);
    snp_vmsa_seg(&v->gs, &env->segs[R_GS]);
    snp_vmsa_seg(&v->ldtr, &env->ldt);
    snp_vmsa_seg(&v->tr, &env->tr);
    snp_vmsa_dt(&v->gdtr, &env->gdt);
    snp_vmsa_dt(&v->idtr, &env->idt);
    v->cpl = (env->segs[R_SS].flags >> DESC_DPL_SHIFT) & 3;
    v->efer = env->efer | MSR_EFER_SVME;
    /* KVM_X86_QUIRK_CD_NW_CLEARED; svm_set_cr4() keeps the host's MCE */
    v->cr0 = env->cr[0] & ~(uint64_t)(CR0_CD_MASK | CR0_NW_MASK);
    v->cr2 = env->cr[2];
    v->cr3 = env->cr[3];
    v->cr4 = env->cr[4] | CR4_MCE_MASK;

    /* KVM_SET_REGS */
    v->rax = env->regs[R_EAX];
    v->rcx = env->regs[R_ECX];
    v->rdx = env->regs[R_EDX];
    v->rbx = env->regs[R_EBX];
    v->rsp = env->regs[R_ESP];
    v->rbp = env->regs[R_EBP];
    v->rsi = env->regs[R_ESI];
    v->rdi = env->regs[R_EDI];
#ifdef TARGET_X86_64
    for (i = 0; i < 8; i++) {
        v->r8_15[i] = env->regs[8 + i];
    }
#endif
    v->rip = env->eip;
    v->rflags = env->eflags;

    /* KVM_SET_DEBUGREGS, KVM_SET_XCRS */
    v->dr6 = env->dr[6];
    v->dr7 = env->dr[7];
    v->xcr0 = env->xcr0;

    /* KVM_SET_MSRS */
    v->sysenter_cs = env->sysenter_cs;
    v->sysenter_esp = env->sysenter_esp;
    v->sysenter_eip = env->sysenter_eip;
    v->g_pat = env->pat;
    v->star = env->star;
#ifdef TARGET_X86_64
    v->lstar = env->lstar;
    v->cstar = env->cstar;
    v->sfmask = env->fmask;
    v->kernel_gs_base = env->kernelgsbase;
#endif
    v->xss = env->xss;

    /* KVM_SEV_INIT2 */
    v->sev_features = sev_features;

    /* KVM_SET_XSAVE */
    snp_vmsa_fpu(cpu, v);
}
