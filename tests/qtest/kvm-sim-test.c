/*
 * QTest: QEMU's KVM launch path under the kvm-sim KVM ABI simulator
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU is started with -accel kvm and tests/kvm-sim/libkvmsim.so
 * preloaded ($KVMSIM_LIB, set by meson), so no host KVM is used.  The VM
 * must reach "running" with KVM enabled for 1, 4 and 8 vCPUs, and a
 * scripted reset exit must reach QEMU's reset path.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "../kvm-sim/kvm-sim-client.h"

static void test_kvm_sim_smp(const void *data)
{
    int ncpus = GPOINTER_TO_INT(data);
    const char *lib = getenv("KVMSIM_LIB");
    g_autofree char *dir = NULL;
    g_autofree char *sock = NULL;
    g_autofree char *state = NULL;
    g_autofree char *expect = NULL;
    g_autofree char *r = NULL;
    KvmSimClient *ctl;
    QTestState *qts;
    QDict *resp, *ret;

    if (!lib || !g_file_test(lib, G_FILE_TEST_EXISTS)) {
        g_test_skip("KVMSIM_LIB does not name the kvm-sim library");
        return;
    }
    dir = g_dir_make_tmp("kvm-sim-qtest-XXXXXX", NULL);
    g_assert_nonnull(dir);
    sock = g_build_filename(dir, "ctl", NULL);

    /* only the QEMU child gets the simulator */
    g_setenv("LD_PRELOAD", lib, true);
    g_setenv("KVMSIM_CTL", sock, true);
    qts = qtest_initf("-accel kvm -machine q35 -smp %d -m 256", ncpus);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("KVMSIM_CTL");

    resp = qtest_qmp(qts, "{'execute': 'query-kvm'}");
    ret = qdict_get_qdict(resp, "return");
    g_assert_true(qdict_get_bool(ret, "present"));
    g_assert_true(qdict_get_bool(ret, "enabled"));
    qobject_unref(resp);

    resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    ret = qdict_get_qdict(resp, "return");
    g_assert_cmpstr(qdict_get_str(ret, "status"), ==, "running");
    qobject_unref(resp);

    /* the simulator saw the VM QEMU created */
    ctl = kvmsim_connect(sock);
    g_assert_nonnull(ctl);
    state = kvmsim_request(ctl, "query state");
    expect = g_strdup_printf("\"vcpus\":%d,", ncpus);
    g_assert_nonnull(strstr(state, expect));

    /* a scripted guest reset on the last vCPU reaches QEMU */
    r = kvmsim_request(ctl, "exit %d reset", ncpus - 1);
    g_assert_cmpstr(r, ==, "{\"ok\":true}");
    qtest_qmp_eventwait(qts, "RESET");
    g_free(r);
    r = kvmsim_request(ctl, "wait-exit-consumed %d", ncpus - 1);
    g_assert_cmpstr(r, ==, "{\"ok\":true,\"reentered\":true}");

    resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    ret = qdict_get_qdict(resp, "return");
    g_assert_cmpstr(qdict_get_str(ret, "status"), ==, "running");
    qobject_unref(resp);

    kvmsim_close(ctl);
    qtest_quit(qts);
    unlink(sock);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    static const int smp[] = { 1, 4, 8 };
    int i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < ARRAY_SIZE(smp); i++) {
        g_autofree char *path = g_strdup_printf("/kvm-sim/q35/smp-%d",
                                                smp[i]);
        qtest_add_data_func(path, GINT_TO_POINTER(smp[i]), test_kvm_sim_smp);
    }
    return g_test_run();
}
