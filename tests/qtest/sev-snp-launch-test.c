/*
 * QTest: the SEV-SNP launch under the kvm-sim KVM ABI simulator
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * QEMU launches an SEV-SNP guest with the Debian OVMF images (fetched by
 * scripts/qsnp-fetch-ovmf into $QSNP_FIRMWARE_DIR) and 1, 4 and 8 vCPUs
 * under the simulator, which checks every call against the kernel's
 * documented rules and computes the launch digest on its own from what
 * it is handed.  QEMU's digest (query-sev-launch-measure) must equal the
 * simulator's, and the digest of the dry run (dry-run=on, no KVM) must
 * equal both.  (Refusals and injected failures are in
 * sev-snp-guest-test.c.)
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qlist.h"
#include "../kvm-sim/kvm-sim-client.h"

static const char *const images[] = { "OVMF-2022.11.fd", "OVMF-2025.02.fd" };

typedef struct LaunchCase {
    const char *image;
    int smp;
} LaunchCase;

/* The path of a Debian OVMF image, or NULL (the test skipped) */
static char *firmware(const char *image)
{
    const char *dir = g_getenv("QSNP_FIRMWARE_DIR");
    char *path;

    if (!dir) {
        g_test_skip("QSNP_FIRMWARE_DIR is not set (scripts/qsnp test sets"
                    " it)");
        return NULL;
    }
    path = g_build_filename(dir, image, NULL);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_test_skip("firmware image not fetched");
        g_free(path);
        return NULL;
    }
    return path;
}

/* query-sev-launch-measure, as hexadecimal */
static char *launch_digest(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-sev-launch-measure'}");
    g_autofree guchar *raw = NULL;
    GString *hex = g_string_new(NULL);
    gsize len, i;

    raw = g_base64_decode(qdict_get_str(qdict_get_qdict(resp, "return"),
                                        "data"), &len);
    g_assert_cmpuint(len, ==, 48);
    for (i = 0; i < len; i++) {
        g_string_append_printf(hex, "%02x", raw[i]);
    }
    qobject_unref(resp);
    return g_string_free(hex, false);
}

/*
 * query-sev-snp-launch-log: its last digest is the launch digest, and it
 * has one VMSA entry per vCPU after the firmware's pages
 */
static void check_log(QTestState *qts, const char *digest, int smp)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-sev-snp-launch-log'}");
    QList *log = qdict_get_qlist(resp, "return");
    QListEntry *e;
    QDict *last = NULL;
    int vmsas = 0, n = 0;

    QLIST_FOREACH_ENTRY(log, e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));
        const char *type = qdict_get_str(d, "page-type");

        if (n == 0) {
            g_assert_cmpstr(qdict_get_str(d, "what"), ==, "firmware");
            g_assert_cmpstr(type, ==, "normal");
            g_assert_true(qdict_haskey(d, "contents"));
        }
        if (!strcmp(type, "vmsa")) {
            g_assert_cmphex(qdict_get_int(d, "gpa"), ==, 0xfffffffff000ULL);
            vmsas++;
        } else {
            g_assert_cmpint(vmsas, ==, 0);
        }
        last = d;
        n++;
    }
    g_assert_cmpint(vmsas, ==, smp);
    g_assert_nonnull(last);
    g_assert_cmpstr(qdict_get_str(last, "digest"), ==, digest);
    qobject_unref(resp);
}

/* The simulator saw no broken rule and agrees on the digest */
static void check_simulator(KvmSimVM *vm, const char *digest)
{
    g_autofree char *v = kvmsim_request(vm->ctl, "query violations");
    g_autofree char *d = kvmsim_request(vm->ctl, "query digest");
    g_autofree char *want = g_strdup_printf("\"digest\":\"%s\"", digest);

    g_assert_cmpstr(v, ==, "{\"ok\":true,\"violations\":[]}");
    g_assert_nonnull(strstr(d, want));
}

static void assert_running(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-status'}");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "return"),
                                  "status"), ==, "running");
    qobject_unref(resp);
}

/* The dry run of the same launch, without KVM */
static char *dry_run_digest(const char *fw_args, int smp)
{
    QTestState *qts = qtest_initf("-S -machine q35,confidential-guest-support="
                                  "snp0 -object sev-snp-guest,id=snp0,"
                                  "dry-run=on -smp %d -m 512 %s", smp,
                                  fw_args);
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-sev'}");
    char *digest;

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "return"),
                                  "state"), ==, "running");
    qobject_unref(resp);
    digest = launch_digest(qts);
    check_log(qts, digest, smp);
    qtest_quit(qts);
    return digest;
}

/* Launch under the simulator; returns QEMU's digest, checked */
static char *sim_launch(const char *args, int smp)
{
    g_autofree char *full = g_strdup_printf("-accel kvm -machine q35,"
                                            "confidential-guest-support="
                                            "snp0 -smp %d %s", smp, args);
    KvmSimVM vm;
    char *digest;

    if (!kvmsim_vm_start(&vm, full)) {
        return NULL;
    }
    assert_running(vm.qts);
    digest = launch_digest(vm.qts);
    check_simulator(&vm, digest);
    check_log(vm.qts, digest, smp);
    kvmsim_vm_stop(&vm);
    return digest;
}

static void test_launch(const void *opaque)
{
    const LaunchCase *lc = opaque;
    g_autofree char *fw = firmware(lc->image);
    g_autofree char *bios = NULL;
    g_autofree char *args = NULL;
    g_autofree char *digest = NULL;
    g_autofree char *dry = NULL;

    if (!fw) {
        return;
    }
    bios = g_strdup_printf("-bios %s", fw);
    args = g_strdup_printf("-object sev-snp-guest,id=snp0 -m 512 %s", bios);
    digest = sim_launch(args, lc->smp);
    if (!digest) {
        return;
    }
    dry = dry_run_digest(bios, lc->smp);
    g_assert_cmpstr(dry, ==, digest);
}

/*
 * The firmware as a read-only pflash0, as libvirt gives a stateless
 * <loader>: the same pages, so the same digest as with -bios.  And
 * libvirt's command line shape: JSON -object, memory-backend=pc.ram,
 * -sandbox.
 */
static void test_libvirt(void)
{
    g_autofree char *fw = firmware(images[0]);
    g_autofree char *bios = NULL;
    g_autofree char *pflash = NULL;
    g_autofree char *d_bios = NULL;
    g_autofree char *d_pflash = NULL;

    if (!fw) {
        return;
    }
    bios = g_strdup_printf("-object sev-snp-guest,id=snp0 -m 512 -bios %s",
                           fw);
    d_bios = sim_launch(bios, 2);
    if (!d_bios) {
        return;
    }
    pflash = g_strdup_printf(
        "-blockdev '{\"driver\":\"file\",\"filename\":\"%s\","
        "\"node-name\":\"libvirt-pflash0-storage\",\"read-only\":true}'"
        " -machine pflash0=libvirt-pflash0-storage"
        " -object '{\"qom-type\":\"sev-snp-guest\",\"id\":\"snp0\","
        "\"policy\":196608,\"reduced-phys-bits\":1}'"
        " -object '{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\","
        "\"size\":536870912}' -machine memory-backend=pc.ram -m 512"
        " -overcommit mem-lock=off -no-user-config -rtc base=utc"
        " -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
        "resourcecontrol=deny"
        " -device '{\"driver\":\"virtio-serial-pci\",\"id\":\"vs0\"}'", fw);
    d_pflash = sim_launch(pflash, 2);
    g_assert_cmpstr(d_pflash, ==, d_bios);
}

int main(int argc, char **argv)
{
    static const int smp[] = { 1, 4, 8 };
    size_t i, j;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < ARRAY_SIZE(images); i++) {
        for (j = 0; j < ARRAY_SIZE(smp); j++) {
            LaunchCase *lc = g_new0(LaunchCase, 1);
            g_autofree char *path = g_strdup_printf(
                "/sev-snp-launch/%s/smp-%d", images[i], smp[j]);

            lc->image = images[i];
            lc->smp = smp[j];
            qtest_add_data_func_full(path, lc, test_launch, g_free);
        }
    }
    qtest_add_func("/sev-snp-launch/libvirt", test_libvirt);
    return g_test_run();
}
