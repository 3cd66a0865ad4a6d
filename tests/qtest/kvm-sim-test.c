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
    g_autofree char *args = NULL;
    g_autofree char *state = NULL;
    g_autofree char *expect = NULL;
    g_autofree char *r = NULL;
    KvmSimVM vm;
    KvmSimClient *ctl;
    QTestState *qts;
    QDict *resp, *ret;

    args = g_strdup_printf("-accel kvm -machine q35 -smp %d -m 256", ncpus);
    if (!kvmsim_vm_start(&vm, args)) {
        return;
    }
    qts = vm.qts;
    ctl = vm.ctl;

    resp = qtest_qmp(qts, "{'execute': 'query-kvm'}");
    ret = qdict_get_qdict(resp, "return");
    g_assert_true(qdict_get_bool(ret, "present"));
    g_assert_true(qdict_get_bool(ret, "enabled"));
    qobject_unref(resp);
    assert_running(qts);

    /* the simulator saw the VM QEMU created */
    state = kvmsim_request(ctl, "query state");
    expect = g_strdup_printf("\"vcpus\":%d,", ncpus);
    g_assert_nonnull(strstr(state, expect));

    /* a scripted guest reset on the last vCPU reaches QEMU */
    r = kvmsim_request(ctl, "exit %d reset", ncpus - 1);
    g_assert_cmpstr(r, ==, "{\"ok\":true}");
    qtest_qmp_eventwait(qts, "RESET");
    g_free(r);
    r = kvmsim_request(ctl, "wait-exit-consumed %d", ncpus - 1);
    g_assert_nonnull(strstr(r, "{\"ok\":true,\"reentered\":true,"));
    assert_running(qts);

    kvmsim_vm_stop(&vm);
}

/*
 * QEMU 7.2 checks cbitpos against the host's CPUID 0x8000001F, executed
 * natively (not through KVM), or 0 where the CPU has no such leaf (as
 * __get_cpuid() answers): pass what this host reports.
 */
static void test_kvm_sim_sev_es(void)
{
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    g_autofree char *args = NULL;
    g_autofree char *state = NULL;
    KvmSimVM vm;
    QTestState *qts;
    QDict *resp, *ret;

    if (!g_file_test(OVMF_PATH, G_FILE_TEST_EXISTS)) {
        g_test_skip("no " OVMF_PATH);
        return;
    }
    __get_cpuid(0x8000001f, &eax, &ebx, &ecx, &edx);
    args = g_strdup_printf("-accel kvm -machine q35,confidential-guest-"
                           "support=sev0 -object sev-guest,id=sev0,"
                           "cbitpos=%u,reduced-phys-bits=1,policy=0x5 "
                           "-smp 2 -m 256 -bios " OVMF_PATH, ebx & 0x3f);
    if (!kvmsim_vm_start(&vm, args)) {
        return;
    }
    qts = vm.qts;

    resp = qtest_qmp(qts, "{'execute': 'query-sev'}");
    ret = qdict_get_qdict(resp, "return");
    g_assert_true(qdict_get_bool(ret, "enabled"));
    g_assert_cmpstr(qdict_get_str(ret, "state"), ==, "running");
    g_assert_cmpint(qdict_get_int(ret, "policy"), ==, 5);
    qobject_unref(resp);
    assert_running(qts);

    state = kvmsim_request(vm.ctl, "query state");
    g_assert_nonnull(strstr(state, "\"sev_state\":\"finished\",\"es\":true"));

    kvmsim_vm_stop(&vm);
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
