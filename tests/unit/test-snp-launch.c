/*
 * Unit tests of the SEV-SNP launch decisions: plan, digest, CPUID page
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "target/i386/sev-snp/snp-launch.h"

/* SHA-384 with GLib, independent of QEMU's crypto layer */
static void sha384(const void *data, size_t len, uint8_t *out)
{
    g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA384);
    gsize n = SNP_DIGEST_SIZE;

    g_checksum_update(c, data, len);
    g_checksum_get_digest(c, out, &n);
    g_assert_cmpuint(n, ==, SNP_DIGEST_SIZE);
}

/* The digest after one page, from the PAGE_INFO byte layout of the ABI */
static void expect_page(uint8_t *digest, uint8_t type, uint64_t gpa,
                        const void *page)
{
    uint8_t info[0x70] = { 0 };

    memcpy(info, digest, SNP_DIGEST_SIZE);
    if (page) {
        sha384(page, SNP_PAGE_SIZE, info + 0x30);
    }
    info[0x60] = 0x70;
    info[0x62] = type;
    stq_le_p(info + 0x68, gpa);
    sha384(info, sizeof(info), digest);
}

static void test_measure(void)
{
    g_autofree uint8_t *pages = g_malloc(2 * SNP_PAGE_SIZE);
    uint8_t expect[SNP_DIGEST_SIZE] = { 0 };
    SnpLaunchLogEntry *e;
    SnpMeasure m;
    Error *err = NULL;

    memset(pages, 0xa5, SNP_PAGE_SIZE);
    memset(pages + SNP_PAGE_SIZE, 0x5a, SNP_PAGE_SIZE);
    snp_measure_init(&m);
    g_assert_true(snp_measure_range(&m, "firmware", 0xffffe000, pages,
                                    2 * SNP_PAGE_SIZE,
                                    KVM_SEV_SNP_PAGE_TYPE_NORMAL,
                                    &error_abort));
    g_assert_true(snp_measure_range(&m, "secrets", 0x80d000, NULL,
                                    SNP_PAGE_SIZE,
                                    KVM_SEV_SNP_PAGE_TYPE_SECRETS,
                                    &error_abort));
    g_assert_true(snp_measure_range(&m, "vmsa-0", SNP_VMSA_GPA, pages,
                                    SNP_PAGE_SIZE, SNP_PAGE_TYPE_VMSA,
                                    &error_abort));
    expect_page(expect, 1, 0xffffe000, pages);
    expect_page(expect, 1, 0xfffff000, pages + SNP_PAGE_SIZE);
    expect_page(expect, 5, 0x80d000, NULL);
    expect_page(expect, 2, SNP_VMSA_GPA, pages);
    g_assert_cmpmem(m.digest, SNP_DIGEST_SIZE, expect, SNP_DIGEST_SIZE);
    g_assert_cmpuint(m.pages, ==, 4);

    g_assert_cmpuint(m.log->len, ==, 3);
    e = &g_array_index(m.log, SnpLaunchLogEntry, 0);
    g_assert_cmpstr(e->what, ==, "firmware");
    g_assert_true(e->has_contents);
    sha384(pages, 2 * SNP_PAGE_SIZE, expect);
    g_assert_cmpmem(e->contents, SNP_DIGEST_SIZE, expect, SNP_DIGEST_SIZE);
    e = &g_array_index(m.log, SnpLaunchLogEntry, 1);
    g_assert_false(e->has_contents);
    g_assert_cmpstr(snp_page_type_name(e->page_type), ==, "secrets");

    /* refused: unaligned, unknown type, contents missing */
    g_assert_false(snp_measure_range(&m, "x", 0x800, pages, SNP_PAGE_SIZE,
                                     KVM_SEV_SNP_PAGE_TYPE_NORMAL, &err));
    error_free_or_abort(&err);
    g_assert_false(snp_measure_range(&m, "x", 0, pages, SNP_PAGE_SIZE, 9,
                                     &err));
    error_free_or_abort(&err);
    g_assert_false(snp_measure_range(&m, "x", 0, NULL, SNP_PAGE_SIZE,
                                     KVM_SEV_SNP_PAGE_TYPE_NORMAL, &err));
    error_free_or_abort(&err);
    g_assert_cmpuint(m.log->len, ==, 3);
    snp_measure_clear(&m);
}

static void test_fw_error_names(void)
{
    g_assert_cmpstr(snp_fw_error_name(0x07), ==, "POLICY_FAILURE");
    g_assert_cmpstr(snp_fw_error_name(0x16), ==, "INVALID_PARAM");
    g_assert_cmpstr(snp_fw_error_name(0x27), ==, "INVALID_KEY");
    g_assert_cmpstr(snp_fw_error_name(0x28), ==, "unknown status code");
    g_assert_cmpstr(snp_fw_error_name(-1), ==, "unknown status code");
}

static OvmfInfo *fake_info(const OvmfSevSection *sec, size_t nr)
{
    OvmfInfo *info = g_new0(OvmfInfo, 1);

    info->found = true;
    info->has_metadata = true;
    info->sections = g_memdup2(sec, nr * sizeof(*sec));
    info->nr_sections = nr;
    return info;
}

static void test_plan(void)
{
    static const OvmfSevSection sec[] = {
        { 0x800000, 0x9000, OVMF_SECTION_TYPE_SNP_SEC_MEM },
        { 0x809000, 0x1000, OVMF_SECTION_TYPE_SNP_SECRETS },
        { 0x80a000, 0x1000, OVMF_SECTION_TYPE_CPUID },
        { 0x80b000, 0x1000, OVMF_SECTION_TYPE_SNP_KERNEL_HASHES },
    };
    g_autoptr(GArray) steps = g_array_new(false, true,
                                          sizeof(SnpLaunchStep));
    OvmfInfo *info = fake_info(sec, ARRAY_SIZE(sec));
    SnpLaunchStep *s;
    Error *err = NULL;

    g_assert_true(snp_launch_plan(info, 0x200000, false, steps,
                                  &error_abort));
    g_assert_cmpuint(steps->len, ==, 5);
    s = &g_array_index(steps, SnpLaunchStep, 0);
    g_assert_cmphex(s->gpa, ==, 0xffe00000);
    g_assert_cmpint(s->source, ==, SNP_SOURCE_FIRMWARE);
    g_assert_cmpint(s->page_type, ==, KVM_SEV_SNP_PAGE_TYPE_NORMAL);
    g_assert_cmpint(g_array_index(steps, SnpLaunchStep, 1).page_type, ==,
                    KVM_SEV_SNP_PAGE_TYPE_ZERO);
    g_assert_cmpint(g_array_index(steps, SnpLaunchStep, 2).page_type, ==,
                    KVM_SEV_SNP_PAGE_TYPE_SECRETS);
    s = &g_array_index(steps, SnpLaunchStep, 3);
    g_assert_cmpint(s->page_type, ==, KVM_SEV_SNP_PAGE_TYPE_CPUID);
    g_assert_cmpint(s->source, ==, SNP_SOURCE_CPUID);
    s = &g_array_index(steps, SnpLaunchStep, 4);
    g_assert_cmpint(s->page_type, ==, KVM_SEV_SNP_PAGE_TYPE_ZERO);

    /* with the hashes written, their page is measured */
    g_assert_true(snp_launch_plan(info, 0x200000, true, steps,
                                  &error_abort));
    s = &g_array_index(steps, SnpLaunchStep, 4);
    g_assert_cmpint(s->page_type, ==, KVM_SEV_SNP_PAGE_TYPE_NORMAL);
    g_assert_cmpint(s->source, ==, SNP_SOURCE_KERNEL_HASHES);

    /* refused: firmware size, overlapping sections, unknown types */
    g_assert_false(snp_launch_plan(info, 0x1800, false, steps, &err));
    error_free_or_abort(&err);
    info->sections[1].base = 0x808000;
    g_assert_false(snp_launch_plan(info, 0x200000, false, steps, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "overlaps"));
    error_free_or_abort(&err);
    info->sections[1].base = 0xfff00000;
    g_assert_false(snp_launch_plan(info, 0x200000, false, steps, &err));
    error_free_or_abort(&err);
    info->sections[1].base = 0x809000;
    info->sections[2].type = 7;
    g_assert_false(snp_launch_plan(info, 0x200000, false, steps, &err));
    error_free_or_abort(&err);
    info->sections[2].type = OVMF_SECTION_TYPE_CPUID;
    info->sections[2].size = 0x2000;
    g_assert_false(snp_launch_plan(info, 0x200000, false, steps, &err));
    error_free_or_abort(&err);
    info->has_metadata = false;
    g_assert_false(snp_launch_plan(info, 0x200000, false, steps, &err));
    error_free_or_abort(&err);

    ovmf_info_clear(info);
    g_free(info);
}

/*
 * The Debian images (scripts/qsnp-fetch-ovmf puts them in
 * $QSNP_FIRMWARE_DIR): their metadata gives a plan without overlaps.
 */
static void test_plan_debian(gconstpointer name)
{
    const char *dir = g_getenv("QSNP_FIRMWARE_DIR");
    g_autofree char *path = g_build_filename(dir ? dir : "", name, NULL);
    g_autoptr(GArray) steps = g_array_new(false, true,
                                          sizeof(SnpLaunchStep));
    g_autofree char *image = NULL;
    OvmfInfo info = { 0 };
    bool cpuid = false, secrets = false;
    gsize size;
    guint i;

    if (!g_file_get_contents(path, &image, &size, NULL)) {
        g_test_skip("firmware image not installed");
        return;
    }
    g_assert_true(ovmf_info_parse((uint8_t *)image, size, &info,
                                  &error_abort));
    g_assert_true(snp_launch_plan(&info, size, false, steps,
                                  &error_abort));
    for (i = 1; i < steps->len; i++) {
        SnpLaunchStep *s = &g_array_index(steps, SnpLaunchStep, i);

        cpuid |= s->page_type == KVM_SEV_SNP_PAGE_TYPE_CPUID;
        secrets |= s->page_type == KVM_SEV_SNP_PAGE_TYPE_SECRETS;
        g_assert_cmphex(s->gpa + s->len, <=, 0x100000000ULL - size);
    }
    g_assert_true(cpuid && secrets);
    ovmf_info_clear(&info);
}

static void test_cpuid_page(void)
{
    struct kvm_cpuid_entry2 e[SNP_CPUID_COUNT_MAX + 1] = { 0 };
    g_autofree SnpCpuidPage *page = g_new0(SnpCpuidPage, 1);
    g_autofree SnpCpuidPage *fixed = NULL;
    g_autofree char *why = NULL;
    Error *err = NULL;

    e[0] = (struct kvm_cpuid_entry2) { .function = 1, .eax = 0xa00f11,
                                       .ecx = 0xfef83203, .edx = 0x178bfbff };
    e[1] = (struct kvm_cpuid_entry2) {
        .function = 0xd, .index = 1,
        .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0xf };
    e[2] = (struct kvm_cpuid_entry2) {
        .function = 0xd, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
        .eax = 0x207, .ebx = 0x988, .ecx = 0x988, .edx = 0x1 };
    g_assert_true(snp_cpuid_page_build(page, e, 3, &error_abort));
    g_assert_cmpuint(page->count, ==, 3);
    g_assert_cmphex(page->entries[1].ecx_in, ==, 1);
    /* 0xd's sizes are for the components 0xd.0 reports */
    g_assert_cmphex(page->entries[1].xcr0_in, ==, 0x100000207ULL);
    g_assert_cmphex(page->entries[2].xcr0_in, ==, 0x100000207ULL);
    g_assert_cmphex(page->entries[0].xcr0_in, ==, 0);

    fixed = g_memdup2(page, sizeof(*page));
    g_assert_null(snp_cpuid_page_rejected(page, fixed));
    fixed->entries[0].ecx &= ~0x80000000u;
    why = snp_cpuid_page_rejected(page, fixed);
    g_assert_cmpstr(why, ==, "CPUID leaf 0x1 subleaf 0x0: QEMU gave"
                    " eax=0x00a00f11 ebx=0x00000000 ecx=0xfef83203"
                    " edx=0x178bfbff, the firmware accepts eax=0x00a00f11"
                    " ebx=0x00000000 ecx=0x7ef83203 edx=0x178bfbff");

    g_assert_false(snp_cpuid_page_build(page, e, SNP_CPUID_COUNT_MAX + 1,
                                        &err));
    error_free_or_abort(&err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snp-launch/measure", test_measure);
    g_test_add_func("/snp-launch/fw-error-names", test_fw_error_names);
    g_test_add_func("/snp-launch/plan", test_plan);
    g_test_add_data_func("/snp-launch/plan/ovmf-2022.11", "OVMF-2022.11.fd",
                         test_plan_debian);
    g_test_add_data_func("/snp-launch/plan/ovmf-2025.02", "OVMF-2025.02.fd",
                         test_plan_debian);
    g_test_add_func("/snp-launch/cpuid-page", test_cpuid_page);
    return g_test_run();
}
