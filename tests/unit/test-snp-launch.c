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

/*
 * The entry a Linux 6.12 guest reads for CPUID @fn/@sub
 * (arch/x86/coco/sev/shared.c, snp_cpuid_get_validated_func()): the first
 * with that leaf and subleaf; for 0xd.0 and 0xd.1 only with XCR0_IN 1 or
 * 3 and XSS_IN 0.  -1 if none.
 */
static int linux_entry(const SnpCpuidPage *page, uint32_t fn, uint32_t sub)
{
    uint32_t i;

    for (i = 0; i < page->count; i++) {
        const SnpCpuidEntry *e = &page->entries[i];

        if (e->eax_in != fn || e->ecx_in != sub) {
            continue;
        }
        if (fn == 0xd && sub <= 1 &&
            ((e->xcr0_in != 1 && e->xcr0_in != 3) || e->xss_in)) {
            continue;
        }
        return i;
    }
    return -1;
}

/* The entry OVMF reads (CcExitVcHandler.c GetCpuidFw()): the first one */
static int ovmf_entry(const SnpCpuidPage *page, uint32_t fn, uint32_t sub)
{
    uint32_t i;

    for (i = 0; i < page->count; i++) {
        if (page->entries[i].eax_in == fn && page->entries[i].ecx_in == sub) {
            return i;
        }
    }
    return -1;
}

/*
 * The XSAVE size the guest computes for @xcr0 (snp_cpuid_calc_xsave_size()):
 * 0x240 and, from the 0xd.2-63 entries, the end of the furthest component
 * (standard format) or the sum of their sizes (compacted); 0 if one has
 * no entry
 */
static uint32_t guest_xsave_size(const SnpCpuidPage *page, uint64_t xcr0,
                                 bool compacted)
{
    uint64_t found = 0;
    uint32_t size = 0x240, i;

    for (i = 0; i < page->count; i++) {
        const SnpCpuidEntry *e = &page->entries[i];

        if (e->eax_in != 0xd || e->ecx_in < 2 || e->ecx_in >= 64 ||
            !(xcr0 & (1ULL << e->ecx_in)) || (found & (1ULL << e->ecx_in))) {
            continue;
        }
        found |= 1ULL << e->ecx_in;
        size = compacted ? size + e->eax : MAX(size, e->eax + e->ebx);
    }
    return found == (xcr0 & ~3ULL) ? size : 0;
}

/*
 * The page for what KVM 6.12 reports on an EPYC Milan host: the XSAVE
 * leaves (x87, SSE, AVX, PKRU) are read by the guest as it expects
 */
static void test_cpuid_page(void)
{
    struct kvm_cpuid_entry2 e[SNP_CPUID_COUNT_MAX + 1] = {
        { .function = 0, .eax = 0x10 },
        { .function = 1, .eax = 0xa00f11, .ecx = 0xfef83203,
          .edx = 0x178bfbff },
        { .function = 0xd, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x207, .ebx = 0x988, .ecx = 0x988 },
        { .function = 0xd, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0xf, .ebx = 0x348 },
        { .function = 0xd, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x100, .ebx = 0x240 },
        { .function = 0xd, .index = 9, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x8, .ebx = 0x980 },
        { .function = 0x80000000, .eax = 0x80000021 },
        { .function = 0x8000001f, .eax = 0x1b, .ebx = 0x51 },
    };
    g_autofree SnpCpuidPage *page = g_new0(SnpCpuidPage, 1);
    g_autofree SnpCpuidPage *fixed = NULL;
    g_autofree char *why = NULL;
    const SnpCpuidEntry *d0, *d1;
    Error *err = NULL;
    int i0, i1;

    g_assert_true(snp_cpuid_page_build(page, e, 8, &error_abort));
    g_assert_cmpuint(page->count, ==, 8);
    g_assert_cmphex(page->entries[3].ecx_in, ==, 1);
    g_assert_cmphex(page->entries[1].xcr0_in, ==, 0);

    /* Linux and OVMF read the same 0xd.0 and 0xd.1 entries */
    i0 = linux_entry(page, 0xd, 0);
    i1 = linux_entry(page, 0xd, 1);
    g_assert_cmpint(i0, ==, 2);
    g_assert_cmpint(i1, ==, 3);
    g_assert_cmpint(ovmf_entry(page, 0xd, 0), ==, i0);
    g_assert_cmpint(ovmf_entry(page, 0xd, 1), ==, i1);
    d0 = &page->entries[i0];
    d1 = &page->entries[i1];
    /* for the base XSAVE area: XCR0 x87, no IA32_XSS, 0x240 bytes */
    g_assert_cmphex(d0->xcr0_in, ==, 1);
    g_assert_cmphex(d0->xss_in, ==, 0);
    g_assert_cmphex(d0->ebx, ==, 0x240);
    g_assert_cmphex(d1->xcr0_in, ==, 1);
    g_assert_cmphex(d1->xss_in, ==, 0);
    g_assert_cmphex(d1->ebx, ==, 0x240);
    /* the features as KVM gives them: XCR0 0x207, XSAVEC for 0xd.1 */
    g_assert_cmphex(d0->eax, ==, 0x207);
    g_assert_cmphex(d0->ecx, ==, 0x988);
    g_assert_cmphex(d0->edx, ==, 0);
    g_assert_cmphex(d1->eax, ==, 0xf);
    /* the sizes the guest computes for XCR0 0x207 are KVM's */
    g_assert_cmphex(guest_xsave_size(page, d0->eax, false), ==, 0x988);
    g_assert_cmphex(guest_xsave_size(page, d0->eax, true), ==, 0x348);
    g_assert_cmphex(guest_xsave_size(page, 1, false), ==, 0x240);
    g_assert_null(snp_cpuid_page_xsave_problem(page));

    fixed = g_memdup2(page, sizeof(*page));
    g_assert_null(snp_cpuid_page_rejected(page, fixed));
    fixed->entries[1].ecx &= ~0x80000000u;
    why = snp_cpuid_page_rejected(page, fixed);
    g_assert_cmpstr(why, ==, "CPUID leaf 0x1 subleaf 0x0: QEMU gave"
                    " eax=0x00a00f11 ebx=0x00000000 ecx=0xfef83203"
                    " edx=0x178bfbff, the firmware accepts eax=0x00a00f11"
                    " ebx=0x00000000 ecx=0x7ef83203 edx=0x178bfbff");

    g_assert_false(snp_cpuid_page_build(page, e, SNP_CPUID_COUNT_MAX + 1,
                                        &err));
    error_free_or_abort(&err);
}

/* A CPU model without XSAVE, or without XSAVEC and XSAVES, is warned of */
static void test_cpuid_page_xsave_problem(void)
{
    struct kvm_cpuid_entry2 e[] = {
        { .function = 0, .eax = 0xd },
        { .function = 0xd, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x3, .ebx = 0x240, .ecx = 0x240 },
        { .function = 0xd, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x1 },
    };
    g_autofree SnpCpuidPage *page = g_new0(SnpCpuidPage, 1);
    g_autofree char *why = NULL;

    /* 0xd.1 with XSAVEOPT only */
    g_assert_true(snp_cpuid_page_build(page, e, 3, &error_abort));
    why = snp_cpuid_page_xsave_problem(page);
    g_assert_nonnull(strstr(why, "neither XSAVEC nor XSAVES"));
    g_clear_pointer(&why, g_free);
    /* no leaf 0xd at all (-cpu qemu64) */
    g_assert_true(snp_cpuid_page_build(page, e, 1, &error_abort));
    why = snp_cpuid_page_xsave_problem(page);
    g_assert_nonnull(strstr(why, "has no XSAVE"));
    /* leaf 0xd out of range */
    e[0].eax = 0xc;
    g_assert_true(snp_cpuid_page_build(page, e, 1, &error_abort));
    g_assert_null(snp_cpuid_page_xsave_problem(page));
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
    g_test_add_func("/snp-launch/cpuid-page/xsave-problem",
                    test_cpuid_page_xsave_problem);
    return g_test_run();
}
