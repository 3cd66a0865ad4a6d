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
 * scripted reset exit must reach QEMU's reset path.  An SEV-ES guest
 * (the base's sev-guest object) must go through the legacy launch
 * commands to "running".
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "../kvm-sim/kvm-sim-client.h"
#include <cpuid.h>

#define OVMF_PATH "/usr/share/ovmf/OVMF.fd"

/* Start QEMU with the simulator preloaded; *sock gets the control socket */
static QTestState *kvmsim_qtest_start(const char *lib, char **dir,
                                      char **sock, const char *args)
{
    QTestState *qts;

    *dir = g_dir_make_tmp("kvm-sim-qtest-XXXXXX", NULL);
    g_assert_nonnull(*dir);
    *sock = g_build_filename(*dir, "ctl", NULL);
    /* only the QEMU child gets the simulator */
    g_setenv("LD_PRELOAD", lib, true);
    g_setenv("KVMSIM_CTL", *sock, true);
    qts = qtest_init(args);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("KVMSIM_CTL");
    return qts;
}

static const char *kvmsim_lib(void)
{
    const char *lib = getenv("KVMSIM_LIB");

    if (!lib || !g_file_test(lib, G_FILE_TEST_EXISTS)) {
        g_test_skip("KVMSIM_LIB does not name the kvm-sim library");
        return NULL;
    }
    return lib;
}

static void assert_running(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    QDict *ret = qdict_get_qdict(resp, "return");

    g_assert_cmpstr(qdict_get_str(ret, "status"), ==, "running");
    qobject_unref(resp);
}

static void test_kvm_sim_smp(const void *data)
{
    int ncpus = GPOINTER_TO_INT(data);
    const char *lib = kvmsim_lib();
    g_autofree char *dir = NULL;
    g_autofree char *sock = NULL;
    g_autofree char *args = NULL;
    g_autofree char *state = NULL;
    g_autofree char *expect = NULL;
    g_autofree char *r = NULL;
    KvmSimClient *ctl;
    QTestState *qts;
    QDict *resp, *ret;

    if (!lib) {
        return;
    }
    args = g_strdup_printf("-accel kvm -machine q35 -smp %d -m 256", ncpus);
    qts = kvmsim_qtest_start(lib, &dir, &sock, args);

    resp = qtest_qmp(qts, "{'execute': 'query-kvm'}");
    ret = qdict_get_qdict(resp, "return");
    g_assert_true(qdict_get_bool(ret, "present"));
    g_assert_true(qdict_get_bool(ret, "enabled"));
    qobject_unref(resp);
    assert_running(qts);

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
    assert_running(qts);

    kvmsim_close(ctl);
    qtest_quit(qts);
    unlink(sock);
    rmdir(dir);
}

/*
 * QEMU 7.2 checks cbitpos against the host's CPUID 0x8000001F, executed
 * natively (not through KVM): pass what this host reports.
 */
static void test_kvm_sim_sev_es(void)
{
    const char *lib = kvmsim_lib();
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    g_autofree char *dir = NULL;
    g_autofree char *sock = NULL;
    g_autofree char *args = NULL;
    g_autofree char *state = NULL;
    KvmSimClient *ctl;
    QTestState *qts;
    QDict *resp, *ret;

    if (!lib) {
        return;
    }
    if (!g_file_test(OVMF_PATH, G_FILE_TEST_EXISTS)) {
        g_test_skip("no " OVMF_PATH);
        return;
    }
    __get_cpuid(0x8000001f, &eax, &ebx, &ecx, &edx);
    args = g_strdup_printf("-accel kvm -machine q35,confidential-guest-"
                           "support=sev0 -object sev-guest,id=sev0,"
                           "cbitpos=%u,reduced-phys-bits=1,policy=0x5 "
                           "-smp 2 -m 256 -bios " OVMF_PATH, ebx & 0x3f);
    qts = kvmsim_qtest_start(lib, &dir, &sock, args);

    resp = qtest_qmp(qts, "{'execute': 'query-sev'}");
    ret = qdict_get_qdict(resp, "return");
    g_assert_true(qdict_get_bool(ret, "enabled"));
    g_assert_cmpstr(qdict_get_str(ret, "state"), ==, "running");
    g_assert_cmpint(qdict_get_int(ret, "policy"), ==, 5);
    qobject_unref(resp);
    assert_running(qts);

    ctl = kvmsim_connect(sock);
    g_assert_nonnull(ctl);
    state = kvmsim_request(ctl, "query state");
    g_assert_nonnull(strstr(state, "\"sev_state\":\"finished\",\"es\":true"));

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
    qtest_add_func("/kvm-sim/q35/sev-es", test_kvm_sim_sev_es);
    return g_test_run();
}
