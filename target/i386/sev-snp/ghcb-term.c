/*
 * Decoding of SEV-ES/SEV-SNP guest termination requests
 *
 * Reason codes: GHCB specification (AMD pub. 56421), "Termination
 * Request", reason code set 0; reason code set 1 is the one Linux guests
 * use (Linux 6.12, arch/x86/include/asm/sev-common.h).  Names and
 * descriptions are ours.
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "ghcb-term.h"

/* The one table of known termination reasons */
const GhcbTermReason ghcb_term_reasons[] = {
    /* Set 0: general, defined by the GHCB specification */
    { GHCB_TERM_SET_GENERAL, 0, "general-request",
      "general termination request" },
    { GHCB_TERM_SET_GENERAL, 1, "protocol-unsupported",
      "the guest does not support the hypervisor's GHCB protocol versions" },
    { GHCB_TERM_SET_GENERAL, 2, "snp-unsupported",
      "SEV-SNP features the guest needs are not supported" },
    /* Set 1: Linux guests */
    { GHCB_TERM_SET_LINUX, 0, "ghcb-registration",
      "registering the GHCB page with the hypervisor failed" },
    { GHCB_TERM_SET_LINUX, 1, "page-state-change",
      "a page state change failed" },
    { GHCB_TERM_SET_LINUX, 2, "pvalidate",
      "PVALIDATE of guest memory failed" },
    { GHCB_TERM_SET_LINUX, 3, "not-vmpl0",
      "the guest is not running at VMPL0" },
    { GHCB_TERM_SET_LINUX, 4, "cpuid",
      "CPUID information failed validation" },
    { GHCB_TERM_SET_LINUX, 5, "cpuid-hypervisor",
      "CPUID through the hypervisor fallback failed" },
    { GHCB_TERM_SET_LINUX, 6, "secrets-page",
      "the SNP secrets page is missing or unusable" },
    { GHCB_TERM_SET_LINUX, 7, "no-svsm",
      "not at VMPL0 and the secrets page advertises no SVSM" },
    { GHCB_TERM_SET_LINUX, 8, "svsm-vmpl0",
      "an SVSM is advertised but the guest runs at VMPL0" },
    { GHCB_TERM_SET_LINUX, 9, "svsm-caa",
      "the SVSM calling area is not page aligned" },
};
const size_t ghcb_term_reasons_count = ARRAY_SIZE(ghcb_term_reasons);

static const char *const ghcb_term_set_names[] = {
    [GHCB_TERM_SET_GENERAL] = "general",
    [GHCB_TERM_SET_LINUX] = "Linux guest",
};

/*
 * GHCB MSR protocol requests (GHCBInfo) for which KVM terminates a guest
 * that is not an SNP guest instead of answering them.
 */
static const struct {
    uint16_t ghcb_info;
    const char *what;
} ghcb_msr_requests[] = {
    { 0x010, "SNP preferred GHCB GPA request" },
    { 0x012, "SNP GHCB GPA registration request" },
    { 0x014, "SNP page state change request" },
};

const GhcbTermReason *ghcb_term_lookup(unsigned set, unsigned code)
{
    size_t i;

    for (i = 0; i < ghcb_term_reasons_count; i++) {
        if (ghcb_term_reasons[i].set == set &&
            ghcb_term_reasons[i].code == code) {
            return &ghcb_term_reasons[i];
        }
    }
    return NULL;
}

void ghcb_term_decode(bool has_value, uint64_t value, GhcbTermInfo *info)
{
    memset(info, 0, sizeof(*info));
    if (!has_value) {
        info->kind = GHCB_TERM_KIND_NO_VALUE;
        return;
    }
    info->has_value = true;
    info->value = value;
    info->ghcb_info = value & GHCB_MSR_INFO_MASK;
    if (info->ghcb_info == GHCB_MSR_TERM_REQ) {
        info->kind = GHCB_TERM_KIND_MSR_REQUEST;
        info->set = (value >> GHCB_MSR_TERM_SET_SHIFT) &
                    GHCB_MSR_TERM_SET_MASK;
        info->code = (value >> GHCB_MSR_TERM_CODE_SHIFT) &
                     GHCB_MSR_TERM_CODE_MASK;
        info->reason = ghcb_term_lookup(info->set, info->code);
    } else if (info->ghcb_info == 0) {
        /* A GHCB GPA: page aligned, so GHCBInfo is 0 */
        info->kind = GHCB_TERM_KIND_GHCB_PAGE;
    } else {
        info->kind = GHCB_TERM_KIND_OTHER_MSR_REQUEST;
    }
}

static const char *ghcb_msr_request_what(uint16_t ghcb_info)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(ghcb_msr_requests); i++) {
        if (ghcb_msr_requests[i].ghcb_info == ghcb_info) {
            return ghcb_msr_requests[i].what;
        }
    }
    return "unknown request";
}

char *ghcb_term_describe(const GhcbTermInfo *info)
{
    switch (info->kind) {
    case GHCB_TERM_KIND_NO_VALUE:
        return g_strdup("termination request, KVM passed no GHCB value");
    case GHCB_TERM_KIND_MSR_REQUEST:
        if (info->reason) {
            return g_strdup_printf("reason set %u code %u (%s): %s",
                                   info->set, info->code, info->reason->name,
                                   info->reason->description);
        }
        if (info->set < ARRAY_SIZE(ghcb_term_set_names) &&
            ghcb_term_set_names[info->set]) {
            return g_strdup_printf("reason set %u (%s) code %u: "
                                   "unknown reason code",
                                   info->set, ghcb_term_set_names[info->set],
                                   info->code);
        }
        return g_strdup_printf("reason set %u code %u: unknown reason set",
                               info->set, info->code);
    case GHCB_TERM_KIND_GHCB_PAGE:
        return g_strdup_printf("termination request through the GHCB page at "
                               "GPA 0x%" PRIx64 ", KVM does not pass its "
                               "reason on", info->value);
    case GHCB_TERM_KIND_OTHER_MSR_REQUEST:
        return g_strdup_printf("KVM terminated the guest on GHCB MSR protocol "
                               "request 0x%03x (%s)", info->ghcb_info,
                               ghcb_msr_request_what(info->ghcb_info));
    }
    return g_strdup_printf("termination request of unknown kind %d",
                           info->kind);
}
