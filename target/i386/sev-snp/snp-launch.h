/*
 * AMD SEV-SNP launch: what is measured, in what order, and the digest
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * The decisions of an SEV-SNP launch, kept apart from the ioctls that
 * carry them out so that tests drive them directly:
 *
 * - snp_launch_plan(): from the firmware's SEV metadata, the list of
 *   SNP_LAUNCH_UPDATE steps (GPA range, page type, where the contents
 *   come from), in the order they are issued;
 * - SnpMeasure: the launch digest the firmware computes from the pages it
 *   is handed (SEV-SNP firmware ABI, SNP_LAUNCH_UPDATE and PAGE_INFO),
 *   and the launch log (one entry per update);
 * - the CPUID page (SEV-SNP firmware ABI, "CPUID Reporting"): built from
 *   the vCPUs' CPUID, and the entries the firmware rejected.
 */

#ifndef I386_SEV_SNP_LAUNCH_H
#define I386_SEV_SNP_LAUNCH_H

#include <linux/kvm.h>

#include "hw/i386/ovmf-info.h"

#define SNP_PAGE_SIZE           0x1000ULL
#define SNP_DIGEST_SIZE         48      /* SHA-384 */

/*
 * Page types of the firmware ABI.  Those KVM takes in SNP_LAUNCH_UPDATE
 * are KVM_SEV_SNP_PAGE_TYPE_* (linux/kvm.h); VMSA pages are measured by
 * KVM itself at SNP_LAUNCH_FINISH.
 */
#define SNP_PAGE_TYPE_VMSA      0x2

/*
 * The GPA of VMSA pages in their PAGE_INFO: KVM measures every vCPU's
 * initial VMSA at this address (the firmware ABI's guidance for
 * hypervisors that do not map the VMSA in the guest).
 */
#define SNP_VMSA_GPA            0xfffffffff000ULL

/* Where the contents of an update come from */
typedef enum SnpSource {
    SNP_SOURCE_NONE,            /* no contents (zero, secrets pages) */
    SNP_SOURCE_FIRMWARE,        /* the firmware image */
    SNP_SOURCE_CPUID,           /* the CPUID page QEMU builds */
    SNP_SOURCE_KERNEL_HASHES,   /* guest memory holding the hash table */
} SnpSource;

typedef struct SnpLaunchStep {
    const char *what;           /* "firmware", or the section type name */
    uint64_t gpa;
    uint64_t len;
    uint8_t page_type;          /* KVM_SEV_SNP_PAGE_TYPE_* */
    SnpSource source;
} SnpLaunchStep;

/**
 * snp_launch_plan: the SNP_LAUNCH_UPDATE steps of a launch
 * @info: the firmware's information block (ovmf_info_parse())
 * @fw_size: size of the firmware image, mapped to end at 4 GiB
 * @kernel_hashes: whether the kernel hashes table was written
 * @steps: filled with SnpLaunchStep
 * @errp: error object
 *
 * The firmware first (normal pages), then each SEV metadata section in
 * the firmware's order: SNP_SEC_MEM and SVSM_CAA as zero pages, the
 * secrets page, the CPUID page, and the kernel hashes area as normal
 * pages when @kernel_hashes, else as zero pages.  Sections that overlap
 * the firmware or each other, or of an unknown type, are an error.
 *
 * Returns: true on success, false with @errp set.
 */
bool snp_launch_plan(const OvmfInfo *info, uint64_t fw_size,
                     bool kernel_hashes, GArray *steps, Error **errp);

typedef struct SnpLaunchLogEntry {
    char *what;
    uint64_t gpa;
    uint64_t len;
    uint8_t page_type;
    bool has_contents;          /* page type with measured contents */
    uint8_t contents[SNP_DIGEST_SIZE];  /* SHA-384 of the whole range */
    uint8_t digest[SNP_DIGEST_SIZE];    /* launch digest after the entry */
} SnpLaunchLogEntry;

typedef struct SnpMeasure {
    uint8_t digest[SNP_DIGEST_SIZE];
    GArray *log;                /* SnpLaunchLogEntry */
    uint64_t pages;
} SnpMeasure;

void snp_measure_init(SnpMeasure *m);
void snp_measure_clear(SnpMeasure *m);

/**
 * snp_measure_range: extend the digest with the pages of an update
 * @m: the measurement
 * @what: the log entry's name
 * @gpa: guest physical address, page aligned
 * @data: the contents handed to the firmware (NORMAL and VMSA pages; NULL
 * for the other page types, whose contents are not measured)
 * @len: length, a multiple of the page size
 * @page_type: KVM_SEV_SNP_PAGE_TYPE_* or SNP_PAGE_TYPE_VMSA
 * @errp: error object
 *
 * Returns: true on success, false with @errp set (bad alignment, contents
 * missing for a measured type, hashing failure).
 */
bool snp_measure_range(SnpMeasure *m, const char *what, uint64_t gpa,
                       const void *data, uint64_t len, uint8_t page_type,
                       Error **errp);

/*
 * The name of a firmware status code (SEV_RET_* of linux/psp-sev.h
 * without the prefix, e.g. "POLICY_FAILURE"), or "unknown status code"
 */
const char *snp_fw_error_name(int code);

/* A digest as lowercase hexadecimal, for logs and QMP */
char *snp_digest_to_hex(const uint8_t *digest);

/* The name of a page type ("normal", "vmsa", ...), NULL if unknown */
const char *snp_page_type_name(uint8_t page_type);

/* ------------------------------------------------------- CPUID page */

#define SNP_CPUID_COUNT_MAX     64
/* The base XSAVE area: XCR0 x87 only; its size, legacy area and header */
#define SNP_CPUID_XSAVE_BASE_XCR0 0x1
#define SNP_CPUID_XSAVE_BASE_SIZE 0x240

typedef struct QEMU_PACKED SnpCpuidEntry {
    uint32_t eax_in;
    uint32_t ecx_in;
    uint64_t xcr0_in;
    uint64_t xss_in;
    uint32_t eax;
    uint32_t ebx;
    uint32_t ecx;
    uint32_t edx;
    uint64_t reserved;
} SnpCpuidEntry;

typedef struct QEMU_PACKED SnpCpuidPage {
    uint32_t count;
    uint32_t reserved1;
    uint64_t reserved2;
    SnpCpuidEntry entries[SNP_CPUID_COUNT_MAX];
    uint8_t padding[SNP_PAGE_SIZE - 16 -
                    SNP_CPUID_COUNT_MAX * sizeof(SnpCpuidEntry)];
} SnpCpuidPage;

/**
 * snp_cpuid_page_build: the CPUID page for the vCPUs' CPUID
 * @page: filled in
 * @entries, @nr: the CPUID entries QEMU gives KVM (KVM_SET_CPUID2)
 * @errp: error object
 *
 * The XSAVE size entries (leaf 0xd, subleaves 0 and 1) are given for the
 * base XSAVE area: XCR0_IN SNP_CPUID_XSAVE_BASE_XCR0 (x87), XSS_IN 0 and
 * EBX SNP_CPUID_XSAVE_BASE_SIZE, one entry each.  That is the one entry a
 * Linux guest uses (arch/x86/coco/sev/shared.c takes only XCR0_IN 1 or 3
 * and XSS_IN 0, and computes the sizes for its XCR0 and IA32_XSS from
 * the entries of subleaves 2-63), the first one OVMF reads (it ignores
 * XCR0_IN and XSS_IN), and what the firmware wants in EBX for XCR0_IN 1.
 * The other registers are as QEMU gives them to KVM.
 *
 * Returns: true on success, false with @errp set when the vCPUs have more
 * leaves than the page holds.
 */
bool snp_cpuid_page_build(SnpCpuidPage *page,
                          const struct kvm_cpuid_entry2 *entries, int nr,
                          Error **errp);

/**
 * snp_cpuid_page_xsave_problem: why a guest cannot read its XSAVE sizes
 * @page: the CPUID page
 *
 * A guest whose CPUID leaf 0 reports leaf 0xd reads 0xd.1 while it boots;
 * a Linux guest (arch/x86/coco/sev/shared.c, snp_cpuid_postprocess())
 * needs XSAVEC or XSAVES there to compute the size it reports, or its
 * CPUID fails and it terminates.  CPU models without XSAVE have no leaf
 * 0xd entry at all.
 *
 * Returns: NULL when the page has that entry, or a sentence saying what
 * is missing.
 */
char *snp_cpuid_page_xsave_problem(const SnpCpuidPage *page);

/**
 * snp_cpuid_page_rejected: the entries the firmware changed
 * @given: the page QEMU handed the firmware
 * @fixed: the page the firmware wrote back after refusing it
 *
 * Returns: one line per rejected leaf/subleaf with the values QEMU gave
 * and those the firmware accepts, or NULL when the pages do not differ.
 */
char *snp_cpuid_page_rejected(const SnpCpuidPage *given,
                              const SnpCpuidPage *fixed);

#endif
