/*
 * OVMF information block: the GUIDed table at the end of an OVMF image
 * and the SEV metadata it points to.
 *
 * Layouts (edk2 OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm and
 * X64/OvmfSevMetadata.asm):
 *
 *   image end - 0x20 - 16:      table footer GUID
 *   image end - 0x20 - 18:      u16 length of the whole table (with footer)
 *   below it, entries read backwards: data | u16 length | GUID, where the
 *   length counts data, length and GUID.
 *
 *   SEV metadata: "ASEV" | u32 length | u32 version | u32 number of
 *   sections, then the sections: u32 base | u32 size | u32 type.
 *
 * All multi-byte values are little-endian.  This file is pure (no device
 * state) so that unit tests and the fuzzer can use it.
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "hw/i386/ovmf-info.h"

#define ENTRY_TRAILER_SIZE (sizeof(uint16_t) + sizeof(QemuUUID))

/* The GUID stored at @p, in the form qemu_uuid_parse() returns */
static QemuUUID read_guid(const uint8_t *p)
{
    QemuUUID guid;

    memcpy(&guid, p, sizeof(guid));
    return qemu_uuid_bswap(guid);
}

static QemuUUID parse_guid(const char *str)
{
    QemuUUID guid;

    if (qemu_uuid_parse(str, &guid) < 0) {
        g_assert_not_reached();
    }
    return guid;
}

/*
 * Walk the entries of @table (@len bytes, the footer excluded) backwards
 * from its end.
 */
static bool parse_entries(OvmfInfo *info, Error **errp)
{
    size_t remaining = info->table_len;
    size_t max = remaining / ENTRY_TRAILER_SIZE;
    size_t n = 0, i;

    info->entries = g_new0(OvmfInfoEntry, MAX(max, 1));
    while (remaining > 0) {
        const uint8_t *end = info->table + remaining;
        uint16_t len;

        if (remaining < ENTRY_TRAILER_SIZE) {
            error_setg(errp, "OVMF table: %zu stray bytes at its start",
                       remaining);
            return false;
        }
        len = lduw_le_p(end - ENTRY_TRAILER_SIZE);
        if (len < ENTRY_TRAILER_SIZE) {
            error_setg(errp, "OVMF table: entry at offset %zu has length %u,"
                       " less than its length and GUID (%zu)",
                       remaining - ENTRY_TRAILER_SIZE, len,
                       ENTRY_TRAILER_SIZE);
            return false;
        }
        if (len > remaining) {
            error_setg(errp, "OVMF table: entry at offset %zu has length %u,"
                       " beyond the table start",
                       remaining - ENTRY_TRAILER_SIZE, len);
            return false;
        }
        assert(n < max);
        info->entries[n].guid = read_guid(end - sizeof(QemuUUID));
        info->entries[n].data = end - len;
        info->entries[n].len = len - ENTRY_TRAILER_SIZE;
        for (i = 0; i < n; i++) {
            if (qemu_uuid_is_equal(&info->entries[i].guid,
                                   &info->entries[n].guid)) {
                g_autofree char *s = qemu_uuid_unparse_strdup(
                    &info->entries[n].guid);
                error_setg(errp, "OVMF table: GUID %s appears twice", s);
                return false;
            }
        }
        n++;
        remaining -= len;
    }
    info->nr_entries = n;
    return true;
}

static int section_cmp(const void *a, const void *b)
{
    const OvmfSevSection *x = a, *y = b;

    return x->base < y->base ? -1 : x->base > y->base;
}

const char *ovmf_sev_section_type_name(uint32_t type)
{
    switch (type) {
    case OVMF_SECTION_TYPE_SNP_SEC_MEM:
        return "SNP_SEC_MEM";
    case OVMF_SECTION_TYPE_SNP_SECRETS:
        return "SNP_SECRETS";
    case OVMF_SECTION_TYPE_CPUID:
        return "CPUID";
    case OVMF_SECTION_TYPE_SVSM_CAA:
        return "SVSM_CAA";
    case OVMF_SECTION_TYPE_SNP_KERNEL_HASHES:
        return "SNP_KERNEL_HASHES";
    default:
        return NULL;
    }
}

/* Parse the SEV metadata that the metadata entry (@data, @len) points to */
static bool parse_metadata(OvmfInfo *info, const uint8_t *image, size_t size,
                           const uint8_t *data, size_t len, Error **errp)
{
    uint32_t offset, hdr_len, nr, i;
    const uint8_t *hdr, *p;
    g_autofree OvmfSevSection *sorted = NULL;

    if (len < sizeof(uint32_t)) {
        error_setg(errp, "OVMF SEV metadata entry has %zu bytes, needs 4",
                   len);
        return false;
    }
    offset = ldl_le_p(data);
    if (offset < OVMF_SEV_METADATA_HEADER_SIZE || offset > size) {
        error_setg(errp, "OVMF SEV metadata offset 0x%" PRIx32 " from the"
                   " end is outside the 0x%zx-byte image", offset, size);
        return false;
    }
    hdr = image + size - offset;
    if (memcmp(hdr, OVMF_SEV_METADATA_SIGNATURE, 4) != 0) {
        error_setg(errp, "OVMF SEV metadata at offset 0x%" PRIx32
                   " from the end lacks its signature "
                   OVMF_SEV_METADATA_SIGNATURE, offset);
        return false;
    }
    hdr_len = ldl_le_p(hdr + 4);
    info->metadata_version = ldl_le_p(hdr + 8);
    nr = ldl_le_p(hdr + 12);
    if (hdr_len < OVMF_SEV_METADATA_HEADER_SIZE || hdr_len > offset) {
        error_setg(errp, "OVMF SEV metadata length 0x%" PRIx32 " is not"
                   " within 0x%x..0x%" PRIx32 " (the image end)", hdr_len,
                   OVMF_SEV_METADATA_HEADER_SIZE, offset);
        return false;
    }
    if (info->metadata_version != OVMF_SEV_METADATA_VERSION) {
        error_setg(errp, "OVMF SEV metadata version %" PRIu32 " is not"
                   " supported (only %d)", info->metadata_version,
                   OVMF_SEV_METADATA_VERSION);
        return false;
    }
    if (nr > (hdr_len - OVMF_SEV_METADATA_HEADER_SIZE) /
        OVMF_SEV_METADATA_SECTION_SIZE) {
        error_setg(errp, "OVMF SEV metadata lists %" PRIu32 " sections,"
                   " more than its length 0x%" PRIx32 " holds", nr, hdr_len);
        return false;
    }

    info->sections = g_new0(OvmfSevSection, MAX(nr, 1));
    p = hdr + OVMF_SEV_METADATA_HEADER_SIZE;
    for (i = 0; i < nr; i++, p += OVMF_SEV_METADATA_SECTION_SIZE) {
        OvmfSevSection *s = &info->sections[i];

        s->base = ldl_le_p(p);
        s->size = ldl_le_p(p + 4);
        s->type = ldl_le_p(p + 8);
        if (!ovmf_sev_section_type_name(s->type)) {
            error_setg(errp, "OVMF SEV metadata section %" PRIu32
                       " has unknown type 0x%" PRIx32, i, s->type);
            return false;
        }
        if (s->size == 0) {
            error_setg(errp, "OVMF SEV metadata section %" PRIu32
                       " (%s at 0x%" PRIx32 ") is empty", i,
                       ovmf_sev_section_type_name(s->type), s->base);
            return false;
        }
        if (s->base % OVMF_SEV_SECTION_ALIGN ||
            s->size % OVMF_SEV_SECTION_ALIGN) {
            error_setg(errp, "OVMF SEV metadata section %" PRIu32
                       " (%s at 0x%" PRIx32 ", size 0x%" PRIx32 ") is not"
                       " aligned to 0x%x", i,
                       ovmf_sev_section_type_name(s->type), s->base, s->size,
                       OVMF_SEV_SECTION_ALIGN);
            return false;
        }
        if ((uint64_t)s->base + s->size > (1ULL << 32)) {
            error_setg(errp, "OVMF SEV metadata section %" PRIu32
                       " (0x%" PRIx32 ", size 0x%" PRIx32 ") crosses 4 GiB",
                       i, s->base, s->size);
            return false;
        }
    }
    info->nr_sections = nr;

    sorted = g_memdup2(info->sections, sizeof(*sorted) * MAX(nr, 1));
    qsort(sorted, nr, sizeof(*sorted), section_cmp);
    for (i = 1; i < nr; i++) {
        if ((uint64_t)sorted[i - 1].base + sorted[i - 1].size >
            sorted[i].base) {
            error_setg(errp, "OVMF SEV metadata sections at 0x%" PRIx32
                       " (size 0x%" PRIx32 ") and 0x%" PRIx32 " overlap",
                       sorted[i - 1].base, sorted[i - 1].size,
                       sorted[i].base);
            info->nr_sections = 0;
            return false;
        }
    }
    return true;
}

bool ovmf_info_parse(const uint8_t *image, size_t size, OvmfInfo *info,
                     Error **errp)
{
    const size_t trailer = OVMF_TABLE_FOOTER_OFFSET + ENTRY_TRAILER_SIZE;
    QemuUUID footer_guid = parse_guid(OVMF_TABLE_FOOTER_GUID);
    QemuUUID reset_guid = parse_guid(OVMF_SEV_ES_RESET_BLOCK_GUID);
    QemuUUID guid;
    const uint8_t *end;
    size_t tot_len;
    const uint8_t *data;
    size_t len;

    memset(info, 0, sizeof(*info));
    if (size < trailer) {
        return true;
    }
    end = image + size - OVMF_TABLE_FOOTER_OFFSET;
    guid = read_guid(end - sizeof(QemuUUID));
    tot_len = lduw_le_p(end - ENTRY_TRAILER_SIZE);

    if (qemu_uuid_is_equal(&guid, &footer_guid)) {
        if (tot_len < ENTRY_TRAILER_SIZE) {
            error_setg(errp, "OVMF table length %zu is less than its"
                       " footer (%zu)", tot_len, ENTRY_TRAILER_SIZE);
            return false;
        }
        /* The entries end where the footer's length field starts */
        end -= ENTRY_TRAILER_SIZE;
        tot_len -= ENTRY_TRAILER_SIZE;
    } else if (qemu_uuid_is_equal(&guid, &reset_guid)) {
        /* A lone SEV-ES reset block, older than the table: one entry */
        if (tot_len < ENTRY_TRAILER_SIZE) {
            error_setg(errp, "OVMF SEV-ES reset block length %zu is less"
                       " than its length and GUID (%zu)", tot_len,
                       ENTRY_TRAILER_SIZE);
            return false;
        }
        info->legacy = true;
    } else {
        return true;
    }
    if (tot_len > (size_t)(end - image)) {
        error_setg(errp, "OVMF table length %zu is larger than the image"
                   " (0x%zx bytes)", tot_len, size);
        return false;
    }

    info->found = true;
    info->table_len = tot_len;
    info->table = g_memdup2(end - tot_len, tot_len);
    if (!parse_entries(info, errp)) {
        ovmf_info_clear(info);
        return false;
    }

    if (ovmf_info_find_str(info, OVMF_SEV_METADATA_GUID, &data, &len)) {
        info->has_metadata = true;
        if (!parse_metadata(info, image, size, data, len,
                            &info->metadata_err)) {
            g_free(info->sections);
            info->sections = NULL;
            info->nr_sections = 0;
        }
    }
    return true;
}

void ovmf_info_clear(OvmfInfo *info)
{
    g_free(info->table);
    g_free(info->entries);
    g_free(info->sections);
    error_free(info->metadata_err);
    memset(info, 0, sizeof(*info));
}

bool ovmf_info_find(const OvmfInfo *info, const QemuUUID *guid,
                    const uint8_t **data, size_t *len)
{
    size_t i;

    for (i = 0; i < info->nr_entries; i++) {
        if (qemu_uuid_is_equal(&info->entries[i].guid, guid)) {
            if (data) {
                *data = info->entries[i].data;
            }
            if (len) {
                *len = info->entries[i].len;
            }
            return true;
        }
    }
    return false;
}

bool ovmf_info_find_str(const OvmfInfo *info, const char *guid,
                        const uint8_t **data, size_t *len)
{
    QemuUUID uuid;

    if (qemu_uuid_parse(guid, &uuid) < 0) {
        return false;
    }
    return ovmf_info_find(info, &uuid, data, len);
}

/* The entry @guid (called @what) with at least @min bytes of data */
static const uint8_t *find_sized(const OvmfInfo *info, const char *guid,
                                 const char *what, size_t min, Error **errp)
{
    const uint8_t *data;
    size_t len;

    if (!ovmf_info_find_str(info, guid, &data, &len)) {
        error_setg(errp, "the firmware has no %s (GUID %s)", what, guid);
        return NULL;
    }
    if (len < min) {
        error_setg(errp, "the firmware's %s has %zu bytes, needs %zu",
                   what, len, min);
        return NULL;
    }
    return data;
}

bool ovmf_info_ap_reset_vector(const OvmfInfo *info, OvmfApResetVector *rv,
                               Error **errp)
{
    const uint8_t *data = find_sized(info, OVMF_SEV_ES_RESET_BLOCK_GUID,
                                     "SEV-ES reset block", 4, errp);
    uint32_t addr;

    if (!data) {
        return false;
    }
    addr = ldl_le_p(data);
    if (!addr) {
        error_setg(errp, "the firmware's SEV-ES reset address is zero");
        return false;
    }
    rv->addr = addr;
    rv->cs_selector = 0xf000;
    rv->cs_base = addr & 0xffff0000;
    rv->ip = addr & 0x0000ffff;
    return true;
}

static bool find_area(const OvmfInfo *info, const char *guid,
                      const char *what, uint32_t *base, uint32_t *size,
                      Error **errp)
{
    const uint8_t *data = find_sized(info, guid, what, 8, errp);

    if (!data) {
        return false;
    }
    *base = ldl_le_p(data);
    *size = ldl_le_p(data + 4);
    return true;
}

bool ovmf_info_sev_hash_table(const OvmfInfo *info, uint32_t *base,
                              uint32_t *size, Error **errp)
{
    return find_area(info, OVMF_SEV_HASH_TABLE_GUID, "SEV hash table area",
                     base, size, errp);
}

bool ovmf_info_sev_secret_area(const OvmfInfo *info, uint32_t *base,
                               uint32_t *size, Error **errp)
{
    return find_area(info, OVMF_SEV_SECRET_GUID, "SEV secret area",
                     base, size, errp);
}

bool ovmf_info_get_sev_sections(const OvmfInfo *info,
                                const OvmfSevSection **sections,
                                size_t *nr_sections, Error **errp)
{
    if (!info->has_metadata) {
        error_setg(errp, "the firmware has no SEV metadata (GUID %s)",
                   OVMF_SEV_METADATA_GUID);
        return false;
    }
    if (info->metadata_err) {
        error_propagate(errp, error_copy(info->metadata_err));
        return false;
    }
    *sections = info->sections;
    *nr_sections = info->nr_sections;
    return true;
}
