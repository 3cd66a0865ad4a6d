/*
 * Tests of the OVMF information block parser (hw/i386/ovmf-info.c)
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "hw/i386/ovmf-info.h"
#include "ovmf-info-fuzz.h"

#define IMG_SIZE        0x10000
#define TRAILER         18      /* u16 length + GUID */
#define META_AT         0x1000  /* where the builder puts the ASEV header */

/* A synthetic image: entries are added downwards from the footer */
typedef struct Builder {
    uint8_t *img;
    size_t size;
    size_t pos;                 /* lowest byte of the table so far */
} Builder;

static void put_guid(uint8_t *p, const char *str)
{
    QemuUUID g;

    g_assert_cmpint(qemu_uuid_parse(str, &g), ==, 0);
    g = qemu_uuid_bswap(g);
    memcpy(p, &g, sizeof(g));
}

static void builder_init(Builder *b)
{
    b->size = IMG_SIZE;
    b->img = g_malloc0(b->size);
    b->pos = b->size - OVMF_TABLE_FOOTER_OFFSET - TRAILER;
}

/* An entry with explicit length field */
static void add_entry_len(Builder *b, const char *guid, const void *data,
                          size_t len, uint16_t len_field)
{
    b->pos -= TRAILER;
    put_guid(b->img + b->pos + 2, guid);
    stw_le_p(b->img + b->pos, len_field);
    b->pos -= len;
    memcpy(b->img + b->pos, data, len);
}

static void add_entry(Builder *b, const char *guid, const void *data,
                      size_t len)
{
    add_entry_len(b, guid, data, len, len + TRAILER);
}

static void add_u32(Builder *b, const char *guid, uint32_t v)
{
    uint8_t d[4];

    stl_le_p(d, v);
    add_entry(b, guid, d, sizeof(d));
}

static void add_area(Builder *b, const char *guid, uint32_t base,
                     uint32_t size)
{
    uint8_t d[8];

    stl_le_p(d, base);
    stl_le_p(d + 4, size);
    add_entry(b, guid, d, sizeof(d));
}

/* Close the table with the footer; the length is that of the table */
static void builder_finish_len(Builder *b, uint16_t tot_len)
{
    size_t f = b->size - OVMF_TABLE_FOOTER_OFFSET - TRAILER;

    stw_le_p(b->img + f, tot_len);
    put_guid(b->img + f + 2, OVMF_TABLE_FOOTER_GUID);
}

static void builder_finish(Builder *b)
{
    builder_finish_len(b, b->size - OVMF_TABLE_FOOTER_OFFSET - b->pos);
}

/* The ASEV header at META_AT with @nr sections from @s */
static void put_metadata(Builder *b, const OvmfSevSection *s, uint32_t nr,
                         uint32_t nr_field, uint32_t version)
{
    uint8_t *p = b->img + META_AT;
    uint32_t i;

    memcpy(p, OVMF_SEV_METADATA_SIGNATURE, 4);
    stl_le_p(p + 4, OVMF_SEV_METADATA_HEADER_SIZE +
             nr * OVMF_SEV_METADATA_SECTION_SIZE);
    stl_le_p(p + 8, version);
    stl_le_p(p + 12, nr_field);
    for (i = 0; i < nr; i++) {
        uint8_t *q = p + 16 + i * OVMF_SEV_METADATA_SECTION_SIZE;

        stl_le_p(q, s[i].base);
        stl_le_p(q + 4, s[i].size);
        stl_le_p(q + 8, s[i].type);
    }
}

static const OvmfSevSection good_sections[] = {
    { 0x800000, 0x9000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
    { 0x80a000, 0x3000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
    { 0x80d000, 0x1000, OVMF_SECTION_TYPE_SNP_SECRETS },
    { 0x80e000, 0x1000, OVMF_SECTION_TYPE_CPUID },
    { 0x80f000, 0x1000, OVMF_SECTION_TYPE_SVSM_CAA },
    { 0x810000, 0x10000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
    { 0x820000, 0x1000, OVMF_SECTION_TYPE_SNP_KERNEL_HASHES },
};

/* A well-formed image with every entry; @meta_offset is the entry value */
static void build_good(Builder *b, uint32_t meta_offset)
{
    builder_init(b);
    add_u32(b, OVMF_SEV_ES_RESET_BLOCK_GUID, 0x0080b004);
    add_area(b, OVMF_SEV_SECRET_GUID, 0x80d000, 0x1000);
    add_area(b, OVMF_SEV_HASH_TABLE_GUID, 0x820000, 0x400);
    add_u32(b, OVMF_SEV_METADATA_GUID, meta_offset);
    add_u32(b, OVMF_TDX_METADATA_OFFSET_GUID, 0x840);
    builder_finish(b);
    put_metadata(b, good_sections, ARRAY_SIZE(good_sections),
                 ARRAY_SIZE(good_sections), OVMF_SEV_METADATA_VERSION);
}

static void test_good(void)
{
    Builder b;
    OvmfInfo info;
    OvmfApResetVector rv;
    const OvmfSevSection *s;
    size_t n, len;
    uint32_t base, size;
    const uint8_t *data;
    QemuUUID tdx;

    build_good(&b, IMG_SIZE - META_AT);
    g_assert_true(ovmf_info_parse(b.img, b.size, &info, &error_abort));
    g_assert_true(info.found);
    g_assert_false(info.legacy);
    g_assert_cmpuint(info.nr_entries, ==, 5);

    g_assert_true(ovmf_info_ap_reset_vector(&info, &rv, &error_abort));
    g_assert_cmphex(rv.addr, ==, 0x0080b004);
    g_assert_cmphex(rv.cs_selector, ==, 0xf000);
    g_assert_cmphex(rv.cs_base, ==, 0x00800000);
    g_assert_cmphex(rv.ip, ==, 0xb004);

    g_assert_true(ovmf_info_sev_secret_area(&info, &base, &size,
                                            &error_abort));
    g_assert_cmphex(base, ==, 0x80d000);
    g_assert_cmphex(size, ==, 0x1000);
    g_assert_true(ovmf_info_sev_hash_table(&info, &base, &size,
                                           &error_abort));
    g_assert_cmphex(base, ==, 0x820000);
    g_assert_cmphex(size, ==, 0x400);

    g_assert_cmpint(qemu_uuid_parse(OVMF_TDX_METADATA_OFFSET_GUID, &tdx),
                    ==, 0);
    g_assert_true(ovmf_info_find(&info, &tdx, &data, &len));
    g_assert_cmpuint(len, ==, 4);
    g_assert_cmphex(ldl_le_p(data), ==, 0x840);
    g_assert_false(ovmf_info_find_str(&info, "not-a-guid", NULL, NULL));

    g_assert_true(ovmf_info_get_sev_sections(&info, &s, &n, &error_abort));
    g_assert_cmpuint(info.metadata_version, ==, 1);
    g_assert_cmpuint(n, ==, ARRAY_SIZE(good_sections));
    g_assert_cmpint(memcmp(s, good_sections, sizeof(good_sections)), ==, 0);
    g_assert_cmpstr(ovmf_sev_section_type_name(0x10), ==,
                    "SNP_KERNEL_HASHES");
    g_assert_null(ovmf_sev_section_type_name(5));

    ovmf_info_clear(&info);
    g_assert_null(info.table);
    g_free(b.img);
}

static void test_not_ovmf(void)
{
    uint8_t small[16] = { 0 };
    g_autofree uint8_t *img = g_malloc0(IMG_SIZE);
    OvmfInfo info;
    OvmfApResetVector rv;
    Error *err = NULL;

    g_assert_true(ovmf_info_parse(small, sizeof(small), &info, &error_abort));
    g_assert_false(info.found);
    g_assert_true(ovmf_info_parse(img, IMG_SIZE, &info, &error_abort));
    g_assert_false(info.found);
    g_assert_false(ovmf_info_ap_reset_vector(&info, &rv, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "no SEV-ES reset block"));
    error_free(err);
    ovmf_info_clear(&info);
}

static void test_empty_table(void)
{
    Builder b;
    OvmfInfo info;
    const OvmfSevSection *s;
    size_t n;
    Error *err = NULL;

    builder_init(&b);
    builder_finish(&b);
    g_assert_true(ovmf_info_parse(b.img, b.size, &info, &error_abort));
    g_assert_true(info.found);
    g_assert_cmpuint(info.nr_entries, ==, 0);
    g_assert_false(ovmf_info_get_sev_sections(&info, &s, &n, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "no SEV metadata"));
    error_free(err);
    ovmf_info_clear(&info);
    g_free(b.img);
}

/* The lone reset block of firmware older than the GUIDed table */
static void test_legacy_reset_block(void)
{
    g_autofree uint8_t *img = g_malloc0(IMG_SIZE);
    uint8_t *end = img + IMG_SIZE - OVMF_TABLE_FOOTER_OFFSET;
    OvmfInfo info;
    OvmfApResetVector rv;

    put_guid(end - 16, OVMF_SEV_ES_RESET_BLOCK_GUID);
    stw_le_p(end - TRAILER, 4 + TRAILER);
    stl_le_p(end - TRAILER - 4, 0x0080b004);
    g_assert_true(ovmf_info_parse(img, IMG_SIZE, &info, &error_abort));
    g_assert_true(info.legacy);
    g_assert_true(ovmf_info_ap_reset_vector(&info, &rv, &error_abort));
    g_assert_cmphex(rv.ip, ==, 0xb004);
    ovmf_info_clear(&info);

    stw_le_p(end - TRAILER, 2);
    g_assert_false(ovmf_info_parse(img, IMG_SIZE, &info, NULL));
    stw_le_p(end - TRAILER, 0xffff);
    g_assert_false(ovmf_info_parse(img, IMG_SIZE, &info, NULL));
}

/* Parsing @b fails, the error contains @msg */
static void assert_table_error(Builder *b, const char *msg)
{
    OvmfInfo info;
    Error *err = NULL;

    g_assert_false(ovmf_info_parse(b->img, b->size, &info, &err));
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), msg)) {
        g_error("error '%s' lacks '%s'", error_get_pretty(err), msg);
    }
    g_assert_null(info.table);
    error_free(err);
    g_free(b->img);
}

static void test_bad_table(void)
{
    Builder b;
    uint8_t d[4] = { 0 };

    /* table length larger than the image */
    builder_init(&b);
    add_u32(&b, OVMF_SEV_ES_RESET_BLOCK_GUID, 0x0080b004);
    builder_finish_len(&b, 0xffff);
    b.size = 0x1000;
    memmove(b.img, b.img + IMG_SIZE - b.size, b.size);
    assert_table_error(&b, "larger than the image");

    /* table length less than its footer */
    builder_init(&b);
    builder_finish_len(&b, 17);
    assert_table_error(&b, "less than its footer");

    /* zero-length entry */
    builder_init(&b);
    add_entry_len(&b, OVMF_SEV_SECRET_GUID, d, 4, 0);
    builder_finish(&b);
    assert_table_error(&b, "has length 0");

    /* entry shorter than its trailer */
    builder_init(&b);
    add_entry_len(&b, OVMF_SEV_SECRET_GUID, d, 4, 17);
    builder_finish(&b);
    assert_table_error(&b, "has length 17");

    /* entry longer than the table (overlaps what is below the table) */
    builder_init(&b);
    add_u32(&b, OVMF_SEV_ES_RESET_BLOCK_GUID, 0x0080b004);
    add_entry_len(&b, OVMF_SEV_SECRET_GUID, d, 4, 200);
    builder_finish(&b);
    assert_table_error(&b, "beyond the table start");

    /* table length ending inside an entry: stray bytes */
    builder_init(&b);
    add_u32(&b, OVMF_SEV_ES_RESET_BLOCK_GUID, 0x0080b004);
    builder_finish_len(&b, TRAILER + 22 + 5);
    assert_table_error(&b, "stray bytes");

    /* the same GUID twice */
    builder_init(&b);
    add_u32(&b, OVMF_SEV_ES_RESET_BLOCK_GUID, 0x0080b004);
    add_u32(&b, OVMF_SEV_ES_RESET_BLOCK_GUID, 0x0080b004);
    builder_finish(&b);
    assert_table_error(&b, "appears twice");
}

/* Entries that parse but whose values are unusable */
static void test_bad_entries(void)
{
    Builder b;
    OvmfInfo info;
    OvmfApResetVector rv;
    uint32_t base, size;
    Error *err = NULL;
    uint8_t d[4] = { 0 };

    builder_init(&b);
    add_entry(&b, OVMF_SEV_ES_RESET_BLOCK_GUID, d, 2);
    add_entry(&b, OVMF_SEV_SECRET_GUID, d, 4);
    builder_finish(&b);
    g_assert_true(ovmf_info_parse(b.img, b.size, &info, &error_abort));
    g_assert_false(ovmf_info_ap_reset_vector(&info, &rv, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "has 2 bytes, needs 4"));
    g_clear_pointer(&err, error_free);
    g_assert_false(ovmf_info_sev_secret_area(&info, &base, &size, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "has 4 bytes, needs 8"));
    g_clear_pointer(&err, error_free);
    g_assert_false(ovmf_info_sev_hash_table(&info, &base, &size, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "no SEV hash table"));
    g_clear_pointer(&err, error_free);
    ovmf_info_clear(&info);
    g_free(b.img);

    builder_init(&b);
    add_u32(&b, OVMF_SEV_ES_RESET_BLOCK_GUID, 0);
    builder_finish(&b);
    g_assert_true(ovmf_info_parse(b.img, b.size, &info, &error_abort));
    g_assert_false(ovmf_info_ap_reset_vector(&info, &rv, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "address is zero"));
    g_clear_pointer(&err, error_free);
    ovmf_info_clear(&info);
    g_free(b.img);
}

/*
 * Metadata that fails: the table parses (SEV and SEV-ES go on), the
 * sections accessor reports @msg.
 */
static void assert_metadata_error(Builder *b, const char *msg)
{
    OvmfInfo info;
    const OvmfSevSection *s;
    size_t n;
    Error *err = NULL;

    g_assert_true(ovmf_info_parse(b->img, b->size, &info, &error_abort));
    g_assert_true(info.has_metadata);
    g_assert_false(ovmf_info_get_sev_sections(&info, &s, &n, &err));
    if (!strstr(error_get_pretty(err), msg)) {
        g_error("error '%s' lacks '%s'", error_get_pretty(err), msg);
    }
    g_assert_cmpuint(info.nr_sections, ==, 0);
    error_free(err);
    ovmf_info_clear(&info);
    g_free(b->img);
}

static void test_bad_metadata(void)
{
    Builder b;
    OvmfSevSection s[2];
    uint8_t d[2] = { 0 };

    build_good(&b, IMG_SIZE + 1);
    assert_metadata_error(&b, "outside the 0x10000-byte image");
    build_good(&b, 8);
    assert_metadata_error(&b, "outside the");
    build_good(&b, 0xffffffff);
    assert_metadata_error(&b, "outside the");
    build_good(&b, IMG_SIZE - META_AT + 4);
    assert_metadata_error(&b, "lacks its signature");

    builder_init(&b);
    add_entry(&b, OVMF_SEV_METADATA_GUID, d, 2);
    builder_finish(&b);
    assert_metadata_error(&b, "has 2 bytes, needs 4");

    /* section list longer than the header's length says */
    build_good(&b, IMG_SIZE - META_AT);
    stl_le_p(b.img + META_AT + 12, ARRAY_SIZE(good_sections) + 1);
    assert_metadata_error(&b, "more than its length");
    build_good(&b, IMG_SIZE - META_AT);
    stl_le_p(b.img + META_AT + 12, 0xffffffff);
    assert_metadata_error(&b, "more than its length");

    /* header length past the image end, or shorter than the header */
    build_good(&b, IMG_SIZE - META_AT);
    stl_le_p(b.img + META_AT + 4, IMG_SIZE - META_AT + 1);
    assert_metadata_error(&b, "is not within");
    build_good(&b, IMG_SIZE - META_AT);
    stl_le_p(b.img + META_AT + 4, 15);
    assert_metadata_error(&b, "is not within");

    build_good(&b, IMG_SIZE - META_AT);
    stl_le_p(b.img + META_AT + 8, 2);
    assert_metadata_error(&b, "version 2 is not supported");

    /* sections */
    s[0] = (OvmfSevSection) { 0x800000, 0x2000, 1 };
    s[1] = (OvmfSevSection) { 0x801000, 0x1000, 3 };
    build_good(&b, IMG_SIZE - META_AT);
    put_metadata(&b, s, 2, 2, 1);
    assert_metadata_error(&b, "overlap");

    s[1] = (OvmfSevSection) { 0x7ff000, 0x2000, 3 };
    build_good(&b, IMG_SIZE - META_AT);
    put_metadata(&b, s, 2, 2, 1);
    assert_metadata_error(&b, "overlap");

    s[1] = (OvmfSevSection) { 0x900800, 0x1000, 3 };
    build_good(&b, IMG_SIZE - META_AT);
    put_metadata(&b, s, 2, 2, 1);
    assert_metadata_error(&b, "is not aligned");

    s[1] = (OvmfSevSection) { 0x900000, 0x10, 3 };
    build_good(&b, IMG_SIZE - META_AT);
    put_metadata(&b, s, 2, 2, 1);
    assert_metadata_error(&b, "is not aligned");

    s[1] = (OvmfSevSection) { 0x900000, 0, 3 };
    build_good(&b, IMG_SIZE - META_AT);
    put_metadata(&b, s, 2, 2, 1);
    assert_metadata_error(&b, "is empty");

    s[1] = (OvmfSevSection) { 0x900000, 0x1000, 5 };
    build_good(&b, IMG_SIZE - META_AT);
    put_metadata(&b, s, 2, 2, 1);
    assert_metadata_error(&b, "unknown type 0x5");

    s[1] = (OvmfSevSection) { 0xfffff000, 0x2000, 1 };
    build_good(&b, IMG_SIZE - META_AT);
    put_metadata(&b, s, 2, 2, 1);
    assert_metadata_error(&b, "crosses 4 GiB");
}

/*
 * Deterministic replay: the fuzz target's checks on seeded mutations of
 * the well-formed image's last 4 KiB and its metadata.
 */
static void test_fuzz_replay(void)
{
    Builder b;
    GRand *rand = g_rand_new_with_seed(0x0f3f);
    g_autofree uint8_t *img = NULL;
    int i, j;

    build_good(&b, IMG_SIZE - META_AT);
    img = g_malloc(b.size);
    for (i = 0; i < 20000; i++) {
        size_t size = b.size - g_rand_int_range(rand, 0, 8) * 0x800;

        memcpy(img, b.img + b.size - size, size);
        for (j = g_rand_int_range(rand, 1, 6); j > 0; j--) {
            size_t at = g_rand_boolean(rand) ?
                size - 1 - g_rand_int_range(rand, 0, 0x100) :
                META_AT - (b.size - size) + g_rand_int_range(rand, 0, 0x80);

            if (at < size) {
                img[at] = g_rand_int_range(rand, 0, 256);
            }
        }
        ovmf_info_fuzz_one(img, size);
        ovmf_info_fuzz_one(img + size - 0x80, 0x80);
    }
    g_rand_free(rand);
    g_free(b.img);
}

/* Real Debian images: the path of @name, or NULL (test skipped) */
static char *firmware_path(const char *name, const char *fallback,
                           size_t size)
{
    const char *dir = g_getenv("QSNP_FIRMWARE_DIR");
    g_autofree char *path = NULL;
    struct stat st;

    if (dir) {
        path = g_build_filename(dir, name, NULL);
    } else if (fallback) {
        path = g_strdup(fallback);
    }
    if (!path || stat(path, &st) < 0 || st.st_size != size) {
        g_autofree char *msg = g_strdup_printf(
            "%s not found (QSNP_FIRMWARE_DIR, scripts/qsnp-fetch-ovmf)",
            path ? path : name);
        g_test_skip(msg);
        return NULL;
    }
    return g_steal_pointer(&path);
}

static void check_debian_image(const char *path, bool svsm)
{
    g_autofree gchar *img = NULL;
    gsize size;
    OvmfInfo info;
    OvmfApResetVector rv;
    const OvmfSevSection *s;
    size_t n, len;
    uint32_t base, area_size;
    const uint8_t *data;
    const OvmfSevSection bookworm[] = {
        { 0x800000, 0x9000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
        { 0x80a000, 0x3000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
        { 0x80d000, 0x1000, OVMF_SECTION_TYPE_SNP_SECRETS },
        { 0x80e000, 0x1000, OVMF_SECTION_TYPE_CPUID },
        { 0x80f000, 0x11000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
    };
    const OvmfSevSection trixie[] = {
        { 0x800000, 0x9000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
        { 0x80a000, 0x3000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
        { 0x80d000, 0x1000, OVMF_SECTION_TYPE_SNP_SECRETS },
        { 0x80e000, 0x1000, OVMF_SECTION_TYPE_CPUID },
        { 0x80f000, 0x1000, OVMF_SECTION_TYPE_SVSM_CAA },
        { 0x810000, 0x10000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
    };
    const OvmfSevSection *want = svsm ? trixie : bookworm;
    size_t nr_want = svsm ? ARRAY_SIZE(trixie) : ARRAY_SIZE(bookworm);

    g_assert_true(g_file_get_contents(path, &img, &size, NULL));
    g_assert_true(ovmf_info_parse((uint8_t *)img, size, &info,
                                  &error_abort));
    g_assert_true(info.found);
    g_assert_false(info.legacy);
    g_assert_true(ovmf_info_ap_reset_vector(&info, &rv, &error_abort));
    g_assert_cmphex(rv.addr, ==, 0x0080b004);
    g_assert_cmphex(rv.cs_base, ==, 0x00800000);
    g_assert_cmphex(rv.ip, ==, 0xb004);
    /* OvmfPkgX64 leaves the SEV hash table and secret area empty */
    g_assert_true(ovmf_info_sev_secret_area(&info, &base, &area_size,
                                            &error_abort));
    g_assert_cmphex(base, ==, 0);
    g_assert_true(ovmf_info_sev_hash_table(&info, &base, &area_size,
                                           &error_abort));
    g_assert_cmphex(base, ==, 0);
    g_assert_true(ovmf_info_find_str(&info, OVMF_SEV_METADATA_GUID,
                                     &data, &len));
    g_assert_cmphex(ldl_le_p(data), ==, svsm ? 0x548 : 0x52c);
    g_assert_true(ovmf_info_find_str(&info, OVMF_TDX_METADATA_OFFSET_GUID,
                                     NULL, NULL));
    g_assert_true(ovmf_info_get_sev_sections(&info, &s, &n, &error_abort));
    g_assert_cmpuint(n, ==, nr_want);
    g_assert_cmpint(memcmp(s, want, n * sizeof(*s)), ==, 0);
    ovmf_info_clear(&info);
}

static void test_debian_bookworm(void)
{
    g_autofree char *path = firmware_path("OVMF-2022.11.fd",
                                          "/usr/share/ovmf/OVMF.fd",
                                          2 * MiB);

    if (path) {
        check_debian_image(path, false);
    }
}

static void test_debian_trixie(void)
{
    g_autofree char *path = firmware_path("OVMF-2025.02.fd", NULL, 4 * MiB);

    if (path) {
        check_debian_image(path, true);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ovmf-info/good", test_good);
    g_test_add_func("/ovmf-info/not-ovmf", test_not_ovmf);
    g_test_add_func("/ovmf-info/empty-table", test_empty_table);
    g_test_add_func("/ovmf-info/legacy-reset-block", test_legacy_reset_block);
    g_test_add_func("/ovmf-info/bad-table", test_bad_table);
    g_test_add_func("/ovmf-info/bad-entries", test_bad_entries);
    g_test_add_func("/ovmf-info/bad-metadata", test_bad_metadata);
    g_test_add_func("/ovmf-info/fuzz-replay", test_fuzz_replay);
    g_test_add_func("/ovmf-info/debian-bookworm", test_debian_bookworm);
    g_test_add_func("/ovmf-info/debian-trixie", test_debian_trixie);
    return g_test_run();
}
