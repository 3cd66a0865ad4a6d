/*
 * OVMF information block: the GUIDed table at the end of an OVMF image
 * and the SEV metadata it points to.
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef HW_I386_OVMF_INFO_H
#define HW_I386_OVMF_INFO_H

#include "qemu/uuid.h"

/*
 * GUIDs of the table and of its entries (edk2 OvmfPkg/ResetVector/Ia16/
 * ResetVectorVtf0.asm).  The image stores them little-endian; these are
 * the textual forms that qemu_uuid_parse() reads.
 */
/* Table footer, 0x20 bytes before the end of the image */
#define OVMF_TABLE_FOOTER_GUID         "96b582de-1fb2-45f7-baea-a366c55a082d"
/* SEV-ES reset block: u32 AP reset address (CS base 31:16, IP 15:0) */
#define OVMF_SEV_ES_RESET_BLOCK_GUID   "00f771de-1a7e-4fcb-890e-68c77e2fb44e"
/* SEV metadata: u32 offset from the end of the image to the "ASEV" header */
#define OVMF_SEV_METADATA_GUID         "dc886566-984a-4798-a75e-5585a7bf67cc"
/* SEV hash table area: u32 base, u32 size */
#define OVMF_SEV_HASH_TABLE_GUID       "7255371f-3a3b-4b04-927b-1da6efa8d454"
/* SEV launch secret area: u32 base, u32 size */
#define OVMF_SEV_SECRET_GUID           "4c2eb361-7d9b-4cc3-8081-127c90d3d294"
/*
 * Intel TDX metadata offset: u32 offset from the end of the image to the
 * "TDVF" descriptor (after the TDX metadata GUID).  Not used by QEMU.
 */
#define OVMF_TDX_METADATA_OFFSET_GUID  "e47a6535-984a-4798-865e-4685a7bf8ec2"

/* Bytes after the table footer GUID: the VTF0 AP entry and reset vector */
#define OVMF_TABLE_FOOTER_OFFSET       0x20

/* SEV metadata ("ASEV") header signature and the version we understand */
#define OVMF_SEV_METADATA_SIGNATURE    "ASEV"
#define OVMF_SEV_METADATA_VERSION      1
/* Size of the ASEV header (signature, length, version, number) */
#define OVMF_SEV_METADATA_HEADER_SIZE  16
/* Size of one section descriptor (base, size, type) */
#define OVMF_SEV_METADATA_SECTION_SIZE 12
/* Sections are page-granular */
#define OVMF_SEV_SECTION_ALIGN         0x1000

typedef enum OvmfSevSectionType {
    OVMF_SECTION_TYPE_SNP_SEC_MEM = 1,
    OVMF_SECTION_TYPE_SNP_SECRETS = 2,
    OVMF_SECTION_TYPE_CPUID = 3,
    OVMF_SECTION_TYPE_SVSM_CAA = 4,
    OVMF_SECTION_TYPE_SNP_KERNEL_HASHES = 0x10,
} OvmfSevSectionType;

typedef struct OvmfSevSection {
    uint32_t base;
    uint32_t size;
    uint32_t type;              /* OvmfSevSectionType */
} OvmfSevSection;

typedef struct OvmfInfoEntry {
    QemuUUID guid;              /* as qemu_uuid_parse() returns it */
    const uint8_t *data;        /* points into OvmfInfo.table */
    size_t len;                 /* data length (entry less length + GUID) */
} OvmfInfoEntry;

typedef struct OvmfInfo {
    /* A footer table (or a lone legacy SEV-ES reset block) was found */
    bool found;
    /* The entries are read from a lone reset block, not from a table */
    bool legacy;
    uint8_t *table;             /* copy of the entries' bytes */
    size_t table_len;
    OvmfInfoEntry *entries;     /* from the end of the table backwards */
    size_t nr_entries;
    /* SEV metadata, when the table has an entry for it */
    bool has_metadata;
    Error *metadata_err;        /* set when the metadata is malformed */
    uint32_t metadata_version;
    OvmfSevSection *sections;
    size_t nr_sections;
} OvmfInfo;

/* The AP reset state that the SEV-ES reset block describes */
typedef struct OvmfApResetVector {
    uint32_t addr;              /* the raw reset address */
    uint16_t cs_selector;
    uint32_t cs_base;
    uint32_t ip;
} OvmfApResetVector;

/**
 * ovmf_info_parse: parse the information block of a firmware image
 * @image: the image, its end is mapped just below 4 GiB
 * @size: size of @image in bytes
 * @info: filled in; release with ovmf_info_clear()
 * @errp: error object
 *
 * An image without the table footer (not OVMF) is no error: @info->found
 * stays false.  A table that does not fit in the image, or whose entries
 * do not tile it, is an error.  Malformed SEV metadata does not fail the
 * parse (SEV and SEV-ES do not use it): ovmf_info_get_sev_sections()
 * reports it.  Nothing outside @image is ever read.
 *
 * Returns: true on success, false with @errp set on a malformed table.
 */
bool ovmf_info_parse(const uint8_t *image, size_t size, OvmfInfo *info,
                     Error **errp);

/* Release what ovmf_info_parse() allocated; @info is then empty. */
void ovmf_info_clear(OvmfInfo *info);

/**
 * ovmf_info_find: look an entry up by GUID
 * @guid: the GUID as qemu_uuid_parse() returns it
 * @data: filled with the entry's data (may be NULL)
 * @len: filled with the data's length (may be NULL)
 *
 * Returns: true when the entry exists.
 */
bool ovmf_info_find(const OvmfInfo *info, const QemuUUID *guid,
                    const uint8_t **data, size_t *len);

/* As ovmf_info_find(), with the GUID in its textual form */
bool ovmf_info_find_str(const OvmfInfo *info, const char *guid,
                        const uint8_t **data, size_t *len);

/**
 * ovmf_info_ap_reset_vector: the AP reset state of the SEV-ES reset block
 *
 * CS selector 0xf000, CS base bits 31:16 and IP bits 15:0 of the reset
 * address, as SEV-ES APs start.  An error when the block is missing, too
 * short or holds address zero.
 */
bool ovmf_info_ap_reset_vector(const OvmfInfo *info, OvmfApResetVector *rv,
                               Error **errp);

/* The SEV hash table area: an error when missing or too short */
bool ovmf_info_sev_hash_table(const OvmfInfo *info, uint32_t *base,
                              uint32_t *size, Error **errp);

/* The SEV launch secret area: an error when missing or too short */
bool ovmf_info_sev_secret_area(const OvmfInfo *info, uint32_t *base,
                               uint32_t *size, Error **errp);

/**
 * ovmf_info_get_sev_sections: the sections of the SEV metadata
 *
 * An error when the image has no SEV metadata or when it is malformed.
 */
bool ovmf_info_get_sev_sections(const OvmfInfo *info,
                                const OvmfSevSection **sections,
                                size_t *nr_sections, Error **errp);

/* The name of a section type, NULL if unknown */
const char *ovmf_sev_section_type_name(uint32_t type);

#endif
