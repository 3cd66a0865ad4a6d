/*
 * Unit tests of the SEV guest termination request decoder
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "../../target/i386/sev-snp/ghcb-term.h"

/*
 * The pairs the decoder must know, written out independently of its table:
 * GHCB specification set 0, and Linux 6.12's set 1.
 */
static const struct {
    unsigned set, code;
    const char *name;
} expected[] = {
    { 0, 0, "general-request" },
    { 0, 1, "protocol-unsupported" },
    { 0, 2, "snp-unsupported" },
    { 1, 0, "ghcb-registration" },
    { 1, 1, "page-state-change" },
    { 1, 2, "pvalidate" },
    { 1, 3, "not-vmpl0" },
    { 1, 4, "cpuid" },
    { 1, 5, "cpuid-hypervisor" },
    { 1, 6, "secrets-page" },
    { 1, 7, "no-svsm" },
    { 1, 8, "svsm-vmpl0" },
    { 1, 9, "svsm-caa" },
};

static const char *expected_name(unsigned set, unsigned code)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(expected); i++) {
        if (expected[i].set == set && expected[i].code == code) {
            return expected[i].name;
        }
    }
    return NULL;
}

/* Bits above 23 that a hostile guest may set */
static const uint64_t high_bits[] = {
    0, 1ULL << 24, 0xffffffffff000000ULL,
};

/* Every (set, code) pair of the 4-bit x 8-bit space */
static void test_whole_space(void)
{
    unsigned set, code, known = 0;
    size_t h;

    for (set = 0; set <= 0xf; set++) {
        for (code = 0; code <= 0xff; code++) {
            for (h = 0; h < ARRAY_SIZE(high_bits); h++) {
                uint64_t v = GHCB_MSR_TERM_VALUE(set, code) | high_bits[h];
                const char *name = expected_name(set, code);
                g_autofree char *text = NULL;
                g_autofree char *raw = NULL;
                GhcbTermInfo t;

                g_assert_cmphex(v & 0xfff, ==, 0x100);
                ghcb_term_decode(true, v, &t);
                g_assert_cmpint(t.kind, ==, GHCB_TERM_KIND_MSR_REQUEST);
                g_assert_true(t.has_value);
                g_assert_cmphex(t.value, ==, v);
                g_assert_cmphex(t.ghcb_info, ==, 0x100);
                g_assert_cmpuint(t.set, ==, set);
                g_assert_cmpuint(t.code, ==, code);
                text = ghcb_term_describe(&t);
                raw = g_strdup_printf("reason set %u ", set);
                /* The raw numbers are always in the words */
                g_assert_true(g_str_has_prefix(text, raw));
                g_free(raw);
                raw = g_strdup_printf(" code %u", code);
                g_assert_nonnull(strstr(text, raw));
                if (name) {
                    g_assert_nonnull(t.reason);
                    g_assert_cmpstr(t.reason->name, ==, name);
                    g_assert_cmpuint(t.reason->set, ==, set);
                    g_assert_cmpuint(t.reason->code, ==, code);
                    g_assert_nonnull(strstr(text, name));
                    g_assert_null(strstr(text, "unknown"));
                    if (h == 0) {
                        known++;
                    }
                } else {
                    g_assert_null(t.reason);
                    g_assert_null(ghcb_term_lookup(set, code));
                    g_assert_nonnull(strstr(text, "unknown reason"));
                }
            }
        }
    }
    g_assert_cmpuint(known, ==, ARRAY_SIZE(expected));
}

/* The table holds exactly the expected pairs, each once, names unique */
static void test_table(void)
{
    size_t i, j;

    g_assert_cmpuint(ghcb_term_reasons_count, ==, ARRAY_SIZE(expected));
    for (i = 0; i < ghcb_term_reasons_count; i++) {
        const GhcbTermReason *r = &ghcb_term_reasons[i];

        g_assert_nonnull(r->name);
        g_assert_nonnull(r->description);
        g_assert_cmpuint(strlen(r->name), >, 0);
        g_assert_cmpuint(strlen(r->description), >, 0);
        g_assert_cmpuint(r->set, <=, 0xf);
        g_assert_cmpstr(expected_name(r->set, r->code), ==, r->name);
        g_assert_true(ghcb_term_lookup(r->set, r->code) == r);
        for (j = i + 1; j < ghcb_term_reasons_count; j++) {
            g_assert_cmpstr(ghcb_term_reasons[j].name, !=, r->name);
            g_assert_cmpstr(ghcb_term_reasons[j].description, !=,
                            r->description);
            g_assert_false(ghcb_term_reasons[j].set == r->set &&
                           ghcb_term_reasons[j].code == r->code);
        }
    }
}

/* No value from KVM (ndata == 0) */
static void test_no_value(void)
{
    g_autofree char *text = NULL;
    GhcbTermInfo t;

    ghcb_term_decode(false, 0x100, &t);
    g_assert_cmpint(t.kind, ==, GHCB_TERM_KIND_NO_VALUE);
    g_assert_false(t.has_value);
    g_assert_null(t.reason);
    text = ghcb_term_describe(&t);
    g_assert_nonnull(strstr(text, "no GHCB value"));
}

/* A request through the GHCB page: KVM passes the GHCB GPA, no reason */
static void test_ghcb_page(void)
{
    static const uint64_t gpas[] = { 0, 0x1000, 0x7ffff000ULL,
                                     0xfffffffffffff000ULL };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(gpas); i++) {
        g_autofree char *text = NULL;
        g_autofree char *hex = NULL;
        GhcbTermInfo t;

        ghcb_term_decode(true, gpas[i], &t);
        g_assert_cmpint(t.kind, ==, GHCB_TERM_KIND_GHCB_PAGE);
        g_assert_true(t.has_value);
        g_assert_cmphex(t.value, ==, gpas[i]);
        g_assert_null(t.reason);
        text = ghcb_term_describe(&t);
        hex = g_strdup_printf("0x%" PRIx64, gpas[i]);
        g_assert_nonnull(strstr(text, "GHCB page"));
        g_assert_nonnull(strstr(text, hex));
    }
}

/* Every other GHCBInfo: reported raw, never a reason */
static void test_other_ghcb_info(void)
{
    unsigned info;

    for (info = 1; info <= 0xfff; info++) {
        uint64_t v = info | (0xabULL << 16) | (1ULL << 12);
        g_autofree char *text = NULL;
        g_autofree char *hex = NULL;
        GhcbTermInfo t;

        if (info == 0x100) {
            continue;
        }
        ghcb_term_decode(true, v, &t);
        g_assert_cmpint(t.kind, ==, GHCB_TERM_KIND_OTHER_MSR_REQUEST);
        g_assert_cmphex(t.ghcb_info, ==, info);
        g_assert_cmphex(t.value, ==, v);
        g_assert_null(t.reason);
        text = ghcb_term_describe(&t);
        hex = g_strdup_printf("0x%03x", info);
        g_assert_nonnull(strstr(text, hex));
    }
}

/* The requests KVM terminates a non-SNP guest on have words */
static void test_known_msr_requests(void)
{
    static const unsigned infos[] = { 0x010, 0x012, 0x014 };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(infos); i++) {
        g_autofree char *text = NULL;
        GhcbTermInfo t;

        ghcb_term_decode(true, infos[i], &t);
        text = ghcb_term_describe(&t);
        g_assert_nonnull(strstr(text, "SNP"));
        g_assert_null(strstr(text, "unknown"));
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ghcb-term/whole-space", test_whole_space);
    g_test_add_func("/ghcb-term/table", test_table);
    g_test_add_func("/ghcb-term/no-value", test_no_value);
    g_test_add_func("/ghcb-term/ghcb-page", test_ghcb_page);
    g_test_add_func("/ghcb-term/other-ghcb-info", test_other_ghcb_info);
    g_test_add_func("/ghcb-term/known-msr-requests", test_known_msr_requests);
    return g_test_run();
}
