/*
 * AMD SEV-SNP launch: what is measured, in what order, and the digest
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <linux/psp-sev.h>

#include "qemu/bswap.h"
#include "crypto/hash.h"
#include "snp-launch.h"

QEMU_BUILD_BUG_ON(sizeof(SnpCpuidEntry) != 48);
QEMU_BUILD_BUG_ON(sizeof(SnpCpuidPage) != SNP_PAGE_SIZE);

#define FOUR_GIB    0x100000000ULL

/* ----------------------------------------------------- firmware codes */

/* The names of the firmware's status codes: those of linux/psp-sev.h */
#define SNP_FW_ERR(name) [SEV_RET_##name] = #name
static const char *const snp_fw_error_names[] = {
    SNP_FW_ERR(SUCCESS), SNP_FW_ERR(INVALID_PLATFORM_STATE),
    SNP_FW_ERR(INVALID_GUEST_STATE), SNP_FW_ERR(INVALID_CONFIG),
    SNP_FW_ERR(INVALID_LEN), SNP_FW_ERR(ALREADY_OWNED),
    SNP_FW_ERR(INVALID_CERTIFICATE), SNP_FW_ERR(POLICY_FAILURE),
    SNP_FW_ERR(INACTIVE), SNP_FW_ERR(INVALID_ADDRESS),
    SNP_FW_ERR(BAD_SIGNATURE), SNP_FW_ERR(BAD_MEASUREMENT),
    SNP_FW_ERR(ASID_OWNED), SNP_FW_ERR(INVALID_ASID),
    SNP_FW_ERR(WBINVD_REQUIRED), SNP_FW_ERR(DFFLUSH_REQUIRED),
    SNP_FW_ERR(INVALID_GUEST), SNP_FW_ERR(INVALID_COMMAND), SNP_FW_ERR(ACTIVE),
    SNP_FW_ERR(HWSEV_RET_PLATFORM), SNP_FW_ERR(HWSEV_RET_UNSAFE),
    SNP_FW_ERR(UNSUPPORTED), SNP_FW_ERR(INVALID_PARAM),
    SNP_FW_ERR(RESOURCE_LIMIT), SNP_FW_ERR(SECURE_DATA_INVALID),
    SNP_FW_ERR(INVALID_PAGE_SIZE), SNP_FW_ERR(INVALID_PAGE_STATE),
    SNP_FW_ERR(INVALID_MDATA_ENTRY), SNP_FW_ERR(INVALID_PAGE_OWNER),
    SNP_FW_ERR(AEAD_OFLOW), SNP_FW_ERR(EXIT_RING_BUFFER),
    SNP_FW_ERR(RMP_INIT_REQUIRED), SNP_FW_ERR(BAD_SVN),
    SNP_FW_ERR(BAD_VERSION), SNP_FW_ERR(SHUTDOWN_REQUIRED),
    SNP_FW_ERR(UPDATE_FAILED), SNP_FW_ERR(RESTORE_REQUIRED),
    SNP_FW_ERR(RMP_INITIALIZATION_FAILED), SNP_FW_ERR(INVALID_KEY),
};
#undef SNP_FW_ERR

const char *snp_fw_error_name(int code)
{
    if (code < 0 || code >= ARRAY_SIZE(snp_fw_error_names) ||
        !snp_fw_error_names[code]) {
        return "unknown status code";
    }
    return snp_fw_error_names[code];
}

/* --------------------------------------------------------------- plan */

static bool snp_plan_add(GArray *steps, const char *what, uint64_t gpa,
                         uint64_t len, uint8_t type, SnpSource source,
                         Error **errp)
{
    guint i;

    for (i = 0; i < steps->len; i++) {
        const SnpLaunchStep *s = &g_array_index(steps, SnpLaunchStep, i);

        if (gpa < s->gpa + s->len && s->gpa < gpa + len) {
            error_setg(errp, "the firmware's SEV metadata section '%s' at"
                       " 0x%" PRIx64 "-0x%" PRIx64 " overlaps '%s' at"
                       " 0x%" PRIx64 "-0x%" PRIx64, what, gpa,
                       gpa + len - 1, s->what, s->gpa, s->gpa + s->len - 1);
            return false;
        }
    }
    g_array_append_val(steps, ((SnpLaunchStep) {
        .what = what, .gpa = gpa, .len = len, .page_type = type,
        .source = source,
    }));
    return true;
}

bool snp_launch_plan(const OvmfInfo *info, uint64_t fw_size,
                     bool kernel_hashes, GArray *steps, Error **errp)
{
    const OvmfSevSection *sec;
    size_t nr, i;

    g_array_set_size(steps, 0);
    if (!fw_size || fw_size > FOUR_GIB || fw_size % SNP_PAGE_SIZE) {
        error_setg(errp, "SEV-SNP firmware size 0x%" PRIx64 " is not a"
                   " multiple of 4 KiB below 4 GiB", fw_size);
        return false;
    }
    if (!ovmf_info_get_sev_sections(info, &sec, &nr, errp)) {
        error_prepend(errp, "SEV-SNP needs the firmware's SEV metadata: ");
        return false;
    }
    snp_plan_add(steps, "firmware", FOUR_GIB - fw_size, fw_size,
                 KVM_SEV_SNP_PAGE_TYPE_NORMAL, SNP_SOURCE_FIRMWARE,
                 &error_abort);

    for (i = 0; i < nr; i++) {
        const char *what = ovmf_sev_section_type_name(sec[i].type);
        uint8_t type;
        SnpSource source = SNP_SOURCE_NONE;

        switch (sec[i].type) {
        case OVMF_SECTION_TYPE_SNP_SEC_MEM:
        case OVMF_SECTION_TYPE_SVSM_CAA:
            type = KVM_SEV_SNP_PAGE_TYPE_ZERO;
            break;
        case OVMF_SECTION_TYPE_SNP_SECRETS:
            type = KVM_SEV_SNP_PAGE_TYPE_SECRETS;
            break;
        case OVMF_SECTION_TYPE_CPUID:
            type = KVM_SEV_SNP_PAGE_TYPE_CPUID;
            source = SNP_SOURCE_CPUID;
            break;
        case OVMF_SECTION_TYPE_SNP_KERNEL_HASHES:
            if (kernel_hashes) {
                type = KVM_SEV_SNP_PAGE_TYPE_NORMAL;
                source = SNP_SOURCE_KERNEL_HASHES;
            } else {
                type = KVM_SEV_SNP_PAGE_TYPE_ZERO;
            }
            break;
        default:
            error_setg(errp, "the firmware's SEV metadata section %zu has"
                       " type 0x%x, which QEMU does not know how to launch",
                       i, sec[i].type);
            return false;
        }
        if ((sec[i].type == OVMF_SECTION_TYPE_CPUID ||
             sec[i].type == OVMF_SECTION_TYPE_SNP_SECRETS) &&
            sec[i].size != SNP_PAGE_SIZE) {
            error_setg(errp, "the firmware's SEV metadata section '%s' is"
                       " 0x%x bytes; it must be one page (0x%llx)", what,
                       sec[i].size, SNP_PAGE_SIZE);
            return false;
        }
        if (!snp_plan_add(steps, what, sec[i].base, sec[i].size, type,
                          source, errp)) {
            return false;
        }
    }
    return true;
}

/* --------------------------------------------------------- measuring */

/*
 * PAGE_INFO (SEV-SNP firmware ABI, SNP_LAUNCH_UPDATE): the structure whose
 * SHA-384 becomes the new launch digest for each page.
 */
typedef struct QEMU_PACKED SnpPageInfo {
    uint8_t digest_cur[SNP_DIGEST_SIZE];
    uint8_t contents[SNP_DIGEST_SIZE];
    uint16_t length;
    uint8_t page_type;
    uint8_t imi_page;
    uint8_t vmpl3_perms;
    uint8_t vmpl2_perms;
    uint8_t vmpl1_perms;
    uint8_t reserved;
    uint64_t gpa;
} SnpPageInfo;
QEMU_BUILD_BUG_ON(sizeof(SnpPageInfo) != 0x70);

static const char *const snp_page_type_names[] = {
    [KVM_SEV_SNP_PAGE_TYPE_NORMAL] = "normal",
    [SNP_PAGE_TYPE_VMSA] = "vmsa",
    [KVM_SEV_SNP_PAGE_TYPE_ZERO] = "zero",
    [KVM_SEV_SNP_PAGE_TYPE_UNMEASURED] = "unmeasured",
    [KVM_SEV_SNP_PAGE_TYPE_SECRETS] = "secrets",
    [KVM_SEV_SNP_PAGE_TYPE_CPUID] = "cpuid",
};

const char *snp_page_type_name(uint8_t page_type)
{
    return page_type < ARRAY_SIZE(snp_page_type_names) ?
           snp_page_type_names[page_type] : NULL;
}

char *snp_digest_to_hex(const uint8_t *digest)
{
    GString *s = g_string_sized_new(2 * SNP_DIGEST_SIZE);
    int i;

    for (i = 0; i < SNP_DIGEST_SIZE; i++) {
        g_string_append_printf(s, "%02x", digest[i]);
    }
    return g_string_free(s, false);
}

static bool snp_page_type_measures_contents(uint8_t page_type)
{
    return page_type == KVM_SEV_SNP_PAGE_TYPE_NORMAL ||
           page_type == SNP_PAGE_TYPE_VMSA;
}

static bool snp_sha384(const void *data, size_t len,
                       uint8_t out[SNP_DIGEST_SIZE], Error **errp)
{
    uint8_t *result = out;
    size_t result_len = SNP_DIGEST_SIZE;

    return qcrypto_hash_bytes(QCRYPTO_HASH_ALG_SHA384, data, len, &result,
                              &result_len, errp) == 0;
}

static void snp_log_entry_clear(gpointer p)
{
    g_free(((SnpLaunchLogEntry *)p)->what);
}

void snp_measure_init(SnpMeasure *m)
{
    memset(m->digest, 0, sizeof(m->digest));
    m->pages = 0;
    m->log = g_array_new(false, true, sizeof(SnpLaunchLogEntry));
    g_array_set_clear_func(m->log, snp_log_entry_clear);
}

void snp_measure_clear(SnpMeasure *m)
{
    if (m->log) {
        g_array_free(m->log, true);
        m->log = NULL;
    }
}

bool snp_measure_range(SnpMeasure *m, const char *what, uint64_t gpa,
                       const void *data, uint64_t len, uint8_t page_type,
                       Error **errp)
{
    bool contents = snp_page_type_measures_contents(page_type);
    SnpLaunchLogEntry e = {
        .gpa = gpa, .len = len, .page_type = page_type,
        .has_contents = contents,
    };
    uint8_t digest[SNP_DIGEST_SIZE];
    uint64_t off;

    if (!snp_page_type_name(page_type) || !len ||
        (gpa | len) % SNP_PAGE_SIZE || (contents && !data)) {
        error_setg(errp, "SEV-SNP launch update '%s': GPA 0x%" PRIx64
                   ", length 0x%" PRIx64 ", page type %u cannot be measured",
                   what, gpa, len, page_type);
        return false;
    }
    if (contents && !snp_sha384(data, len, e.contents, errp)) {
        return false;
    }

    memcpy(digest, m->digest, sizeof(digest));
    for (off = 0; off < len; off += SNP_PAGE_SIZE) {
        SnpPageInfo info = {
            .length = cpu_to_le16(sizeof(SnpPageInfo)),
            .page_type = page_type,
            .gpa = cpu_to_le64(gpa + off),
        };

        memcpy(info.digest_cur, digest, sizeof(digest));
        if (contents &&
            !snp_sha384((const uint8_t *)data + off, SNP_PAGE_SIZE,
                        info.contents, errp)) {
            return false;
        }
        if (!snp_sha384(&info, sizeof(info), digest, errp)) {
            return false;
        }
    }
    memcpy(m->digest, digest, sizeof(digest));
    m->pages += len / SNP_PAGE_SIZE;

    memcpy(e.digest, digest, sizeof(digest));
    e.what = g_strdup(what);
    g_array_append_val(m->log, e);
    return true;
}

/* -------------------------------------------------------- CPUID page */

bool snp_cpuid_page_build(SnpCpuidPage *page,
                          const struct kvm_cpuid_entry2 *entries, int nr,
                          Error **errp)
{
    int i;

    memset(page, 0, sizeof(*page));
    if (nr > SNP_CPUID_COUNT_MAX) {
        error_setg(errp, "the vCPUs have %d CPUID leaves and subleaves; the"
                   " SEV-SNP CPUID page holds at most %d: use a CPU model"
                   " with fewer features", nr, SNP_CPUID_COUNT_MAX);
        return false;
    }
    for (i = 0; i < nr; i++) {
        SnpCpuidEntry *e = &page->entries[i];

        e->eax_in = entries[i].function;
        if (entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) {
            e->ecx_in = entries[i].index;
        }
        e->eax = entries[i].eax;
        e->ebx = entries[i].ebx;
        e->ecx = entries[i].ecx;
        e->edx = entries[i].edx;
        /* the base XSAVE size, for XCR0 = x87 and no IA32_XSS */
        if (entries[i].function == 0xd && entries[i].index <= 1) {
            e->xcr0_in = SNP_CPUID_XSAVE_BASE_XCR0;
            e->xss_in = 0;
            e->ebx = SNP_CPUID_XSAVE_BASE_SIZE;
        }
    }
    page->count = nr;
    return true;
}

/* CPUID.(EAX=0xd,ECX=1):EAX XSAVEC and XSAVES */
#define SNP_CPUID_XSAVEC (1u << 1)
#define SNP_CPUID_XSAVES (1u << 3)

char *snp_cpuid_page_xsave_problem(const SnpCpuidPage *page)
{
    uint32_t max_leaf = 0, i;
    const SnpCpuidEntry *d1 = NULL;

    for (i = 0; i < MIN(page->count, SNP_CPUID_COUNT_MAX); i++) {
        const SnpCpuidEntry *e = &page->entries[i];

        if (e->eax_in == 0) {
            max_leaf = e->eax;
        }
        if (e->eax_in == 0xd && e->ecx_in == 1 && !d1) {
            d1 = e;
        }
    }
    if (max_leaf < 0xd) {
        return NULL;
    }
    if (!d1) {
        return g_strdup("the CPU model reports CPUID leaf 0xd but has no"
                        " XSAVE, so the CPUID page has no leaf 0xd subleaf 1:"
                        " a Linux guest's CPUID 0xd.1 fails and the guest"
                        " terminates; use a CPU model with XSAVE and XSAVEC,"
                        " e.g. -cpu EPYC");
    }
    if (!(d1->eax & (SNP_CPUID_XSAVEC | SNP_CPUID_XSAVES))) {
        return g_strdup("CPUID leaf 0xd subleaf 1 has neither XSAVEC nor"
                        " XSAVES: a Linux guest's CPUID 0xd.1 fails and the"
                        " guest terminates; use a CPU model with XSAVEC,"
                        " e.g. -cpu EPYC");
    }
    return NULL;
}

char *snp_cpuid_page_rejected(const SnpCpuidPage *given,
                              const SnpCpuidPage *fixed)
{
    g_autoptr(GString) s = g_string_new(NULL);
    uint32_t i;

    if (fixed->count != given->count) {
        g_string_append_printf(s, "the page has %u entries, the firmware"
                               " accepts %u\n", given->count, fixed->count);
    }
    for (i = 0; i < MIN(given->count, SNP_CPUID_COUNT_MAX); i++) {
        const SnpCpuidEntry *g = &given->entries[i];
        const SnpCpuidEntry *f = &fixed->entries[i];

        if (!memcmp(g, f, sizeof(*g))) {
            continue;
        }
        g_string_append_printf(s, "CPUID leaf 0x%x subleaf 0x%x: QEMU gave"
                               " eax=0x%08x ebx=0x%08x ecx=0x%08x"
                               " edx=0x%08x, the firmware accepts"
                               " eax=0x%08x ebx=0x%08x ecx=0x%08x"
                               " edx=0x%08x\n", g->eax_in, g->ecx_in,
                               g->eax, g->ebx, g->ecx, g->edx,
                               f->eax, f->ebx, f->ecx, f->edx);
    }
    if (!s->len) {
        return NULL;
    }
    g_string_truncate(s, s->len - 1);
    return g_string_free(g_steal_pointer(&s), false);
}
