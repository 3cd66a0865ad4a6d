/*
 * AMD SEV-SNP: the initial VMSA of a vCPU, as KVM builds it
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef I386_SEV_SNP_VMSA_H
#define I386_SEV_SNP_VMSA_H

#include "cpu.h"

/* SEV features (VMSA SEV_FEATURES): bit 0, SNP active */
#define SNP_SEV_FEATURE_SNP_ACTIVE      (1ULL << 0)

/**
 * snp_vmsa_build: the VMSA page KVM encrypts for @cpu at SNP_LAUNCH_FINISH
 * @cpu: the vCPU, whose state QEMU hands KVM before the launch finishes
 * @sev_features: the VM's SEV features (KVM_SEV_INIT2's vmsa_features
 * with SNP_ACTIVE)
 * @page: filled with the VMSA page
 *
 * KVM builds the VMSA from what QEMU set with KVM_SET_REGS, _SREGS,
 * _DEBUGREGS, _XCRS, _MSRS and _XSAVE (Linux 6.12, sev_es_sync_vmsa()
 * and svm.c's setters); this applies the same rules to the state QEMU
 * sets, so that QEMU knows the launch digest without asking the firmware.
 */
void snp_vmsa_build(X86CPU *cpu, uint64_t sev_features, uint8_t *page);

#endif
