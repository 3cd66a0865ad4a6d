/*
 * Decoding of SEV-ES/SEV-SNP guest termination requests
 *
 * A guest that cannot go on asks the hypervisor to terminate it with the
 * GHCB "Termination Request" (GHCB MSR protocol: GHCBInfo 0x100, reason
 * code set in bits 15:12, reason code in bits 23:16).  KVM hands the
 * request to userspace as KVM_EXIT_SYSTEM_EVENT/KVM_SYSTEM_EVENT_SEV_TERM
 * with the GHCB MSR value in data[0].  This module turns that value into
 * words; it has no KVM dependency so that it can be unit tested.
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef I386_SEV_SNP_GHCB_TERM_H
#define I386_SEV_SNP_GHCB_TERM_H

/* GHCB MSR protocol: GHCBInfo field, bits 11:0 of the GHCB MSR */
#define GHCB_MSR_INFO_MASK              0xfffULL
/* GHCBInfo of a termination request */
#define GHCB_MSR_TERM_REQ               0x100
#define GHCB_MSR_TERM_SET_SHIFT         12
#define GHCB_MSR_TERM_SET_MASK          0xf
#define GHCB_MSR_TERM_CODE_SHIFT        16
#define GHCB_MSR_TERM_CODE_MASK         0xff

/* Reason code sets */
#define GHCB_TERM_SET_GENERAL           0
#define GHCB_TERM_SET_LINUX             1

/* GHCB MSR value of a termination request with reason set @s, code @c */
#define GHCB_MSR_TERM_VALUE(s, c) \
    (GHCB_MSR_TERM_REQ | \
     (((uint64_t)(s) & GHCB_MSR_TERM_SET_MASK) << GHCB_MSR_TERM_SET_SHIFT) | \
     (((uint64_t)(c) & GHCB_MSR_TERM_CODE_MASK) << GHCB_MSR_TERM_CODE_SHIFT))

/* One known reason: the single table of them is in ghcb-term.c */
typedef struct GhcbTermReason {
    uint8_t set;
    uint8_t code;
    const char *name;           /* short, lower case, dash separated */
    const char *description;    /* one phrase for humans */
} GhcbTermReason;

typedef enum GhcbTermKind {
    /* KVM passed no value (system_event.ndata == 0) */
    GHCB_TERM_KIND_NO_VALUE,
    /* GHCB MSR protocol termination request: set and code are valid */
    GHCB_TERM_KIND_MSR_REQUEST,
    /*
     * Request made through the GHCB page (NAE event Termination Request):
     * the value is the guest physical address of the GHCB, and KVM does not
     * pass the reason on to userspace.
     */
    GHCB_TERM_KIND_GHCB_PAGE,
    /*
     * Any other GHCBInfo: KVM terminated the guest because of a GHCB MSR
     * protocol request it refuses for this guest (e.g. an SNP-only request
     * from an SEV-ES guest).
     */
    GHCB_TERM_KIND_OTHER_MSR_REQUEST,
} GhcbTermKind;

typedef struct GhcbTermInfo {
    GhcbTermKind kind;
    bool has_value;
    uint64_t value;             /* the raw value, if has_value */
    uint16_t ghcb_info;         /* bits 11:0 of value */
    uint8_t set;                /* GHCB_TERM_KIND_MSR_REQUEST only */
    uint8_t code;               /* GHCB_TERM_KIND_MSR_REQUEST only */
    /* The table entry of (set, code), NULL if unknown or not applicable */
    const GhcbTermReason *reason;
} GhcbTermInfo;

/* The table of known reasons, and its length */
extern const GhcbTermReason ghcb_term_reasons[];
extern const size_t ghcb_term_reasons_count;

/* The known reason (set, code), or NULL */
const GhcbTermReason *ghcb_term_lookup(unsigned set, unsigned code);

/*
 * Decode what KVM reported: @has_value is false when system_event.ndata
 * was 0, else @value is system_event.data[0].  Total: every input gives
 * a result.
 */
void ghcb_term_decode(bool has_value, uint64_t value, GhcbTermInfo *info);

/*
 * One sentence in words, without the raw value, e.g.
 * "reason set 1 code 4 (cpuid): CPUID validation failed" or
 * "reason set 7 code 0x23: unknown reason".  Free with g_free().
 */
char *ghcb_term_describe(const GhcbTermInfo *info);

#endif
