/*
 * Checks of the OVMF information block parser on arbitrary input.
 *
 * Built into test-ovmf-info (deterministic replay) and, with
 * -DOVMF_INFO_LIBFUZZER, into a libFuzzer target (scripts/qsnp-fuzz).
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/i386/ovmf-info.h"
#include "ovmf-info-fuzz.h"

void ovmf_info_fuzz_one(const uint8_t *data, size_t size)
{
    OvmfInfo info;
    OvmfApResetVector rv;
    const OvmfSevSection *s;
    size_t n, i;
    uint32_t base, len;
    Error *err = NULL;

    if (!ovmf_info_parse(data, size, &info, &err)) {
        g_assert(err);
        g_assert(!info.found && !info.table && !info.entries);
        error_free(err);
        return;
    }
    g_assert(!err);
    g_assert(info.table_len <= size);
    for (i = 0; i < info.nr_entries; i++) {
        const OvmfInfoEntry *e = &info.entries[i];

        g_assert(e->data >= info.table);
        g_assert(e->len <= info.table_len);
        g_assert(e->data + e->len <= info.table + info.table_len);
        g_assert(ovmf_info_find(&info, &e->guid, NULL, NULL));
    }
    if (ovmf_info_ap_reset_vector(&info, &rv, &err)) {
        g_assert(rv.addr && rv.cs_base + rv.ip == rv.addr);
    } else {
        g_assert(err);
        g_clear_pointer(&err, error_free);
    }
    if (!ovmf_info_sev_hash_table(&info, &base, &len, &err)) {
        g_clear_pointer(&err, error_free);
    }
    if (!ovmf_info_sev_secret_area(&info, &base, &len, &err)) {
        g_clear_pointer(&err, error_free);
    }
    if (ovmf_info_get_sev_sections(&info, &s, &n, &err)) {
        g_assert(info.has_metadata && !info.metadata_err);
        for (i = 0; i < n; i++) {
            g_assert(ovmf_sev_section_type_name(s[i].type));
            g_assert(s[i].size && !(s[i].base % OVMF_SEV_SECTION_ALIGN));
            g_assert((uint64_t)s[i].base + s[i].size <= (1ULL << 32));
        }
    } else {
        g_assert(err);
        g_assert(!info.has_metadata || info.metadata_err);
        g_clear_pointer(&err, error_free);
    }
    ovmf_info_clear(&info);
}

#ifdef OVMF_INFO_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ovmf_info_fuzz_one(data, size);
    return 0;
}
#endif
