/*
 * Unit tests of the SEV firmware status table
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include <linux/psp-sev.h>

#include "target/i386/sev-fw-status.h"

static void test_names(void)
{
    g_assert_cmpstr(sev_fw_status_name(0x00), ==, "SUCCESS");
    g_assert_cmpstr(sev_fw_status_name(0x03), ==, "INVALID_CONFIG");
    g_assert_cmpstr(sev_fw_status_name(0x07), ==, "POLICY_FAILURE");
    g_assert_cmpstr(sev_fw_status_name(0x16), ==, "INVALID_PARAM");
    g_assert_cmpstr(sev_fw_status_name(0x1d), ==, "AEAD_OFLOW");
    g_assert_cmpstr(sev_fw_status_name(0x1f), ==, "EXIT_RING_BUFFER");
    g_assert_cmpstr(sev_fw_status_name(0x27), ==, "INVALID_KEY");
}

/* The base's texts, unchanged; the SNP codes' of the same table */
static void test_descriptions(void)
{
    g_assert_cmpstr(sev_fw_status_description(SEV_RET_SUCCESS), ==, "");
    g_assert_cmpstr(sev_fw_status_description(SEV_RET_POLICY_FAILURE), ==,
                    "Policy is not allowed");
    g_assert_cmpstr(sev_fw_status_description(SEV_RET_INVALID_PARAM), ==,
                    "Invalid parameter");
    g_assert_cmpstr(sev_fw_status_description(SEV_RET_SECURE_DATA_INVALID),
                    ==, "Part-specific integrity check failure");
    g_assert_cmpstr(sev_fw_status_description(SEV_RET_INVALID_PAGE_STATE),
                    ==, "Invalid page state");
    g_assert_cmpstr(sev_fw_status_description(SEV_RET_INVALID_KEY), ==,
                    "Invalid key");
}

/* Every code of linux/psp-sev.h has a name and a description */
static void test_every_code(void)
{
    int code;

    for (code = SEV_RET_SUCCESS; code < SEV_RET_MAX; code++) {
        bool hole = code == 0x1e;   /* not in enum sev_ret_code */

        g_assert_cmpint(!strcmp(sev_fw_status_name(code),
                                "unknown status code"), ==, hole);
        g_assert_cmpint(!strcmp(sev_fw_status_description(code),
                                "unknown error"), ==, hole);
    }
}

static void test_unknown(void)
{
    g_assert_cmpstr(sev_fw_status_name(0x1e), ==, "unknown status code");
    g_assert_cmpstr(sev_fw_status_name(SEV_RET_MAX), ==,
                    "unknown status code");
    g_assert_cmpstr(sev_fw_status_name(-1), ==, "unknown status code");
    g_assert_cmpstr(sev_fw_status_name(0x10000), ==, "unknown status code");
    g_assert_cmpstr(sev_fw_status_description(0x1e), ==, "unknown error");
    g_assert_cmpstr(sev_fw_status_description(SEV_RET_MAX), ==,
                    "unknown error");
    g_assert_cmpstr(sev_fw_status_description(-1), ==, "unknown error");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sev-fw-status/names", test_names);
    g_test_add_func("/sev-fw-status/descriptions", test_descriptions);
    g_test_add_func("/sev-fw-status/every-code", test_every_code);
    g_test_add_func("/sev-fw-status/unknown", test_unknown);
    return g_test_run();
}
