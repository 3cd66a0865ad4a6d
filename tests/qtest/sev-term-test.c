/*
 * QTest: SEV guest termination requests become GUEST_PANICKED events
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU runs a confidential guest under the kvm-sim KVM ABI simulator
 * ($KVMSIM_LIB, set by meson).  The simulator's control socket scripts a
 * KVM_EXIT_SYSTEM_EVENT of type KVM_SYSTEM_EVENT_SEV_TERM; the test checks
 * the GUEST_PANICKED event's fields and what -action panic=... makes of
 * the VM.  The tests are the product of two tables: guests[] (one line per
 * confidential guest type) and actions[].
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qnum.h"
#include "../kvm-sim/kvm-sim-client.h"
#include <cpuid.h>

#define OVMF_PATH "/usr/share/ovmf/OVMF.fd"

/* GHCB MSR protocol termination request: set @s, code @c */
#define TERM_MSR(s, c) (0x100 | ((s) << 12) | ((c) << 16))

typedef struct TermGuest {
    const char *name;
    /* -object and -machine options; %u is the C-bit position */
    const char *args_fmt;
} TermGuest;

/*
 * The confidential guest types.  The SEV-SNP guest takes the host's C-bit
 * position (cbitpos left out), as libvirt lets it.
 */
static const TermGuest guests[] = {
    { "sev-es", "-object sev-guest,id=cgs0,policy=0x5,cbitpos=%u,"
      "reduced-phys-bits=1 -machine q35,confidential-guest-support=cgs0" },
    { "snp", "-object sev-snp-guest,id=cgs0,policy=0x30000,"
      "reduced-phys-bits=1 -machine q35,confidential-guest-support=cgs0" },
};

typedef enum TermOutcome {
    TERM_PAUSED,        /* VM stopped in state guest-panicked */
    TERM_EXITS,         /* SHUTDOWN (guest-panic), the process exits */
    TERM_RUNS,          /* the VM keeps running */
} TermOutcome;

typedef struct TermAction {
    const char *name;
    const char *args;
    const char *event_action;   /* GUEST_PANICKED's "action" */
    TermOutcome outcome;
    int exit_status;            /* TERM_EXITS */
} TermAction;

static const TermAction actions[] = {
    { "pause", "-action panic=pause", "pause", TERM_PAUSED },
    { "shutdown", "-action panic=shutdown", "poweroff", TERM_EXITS, 0 },
    { "exit-failure", "-action panic=exit-failure", "poweroff",
      TERM_EXITS, 1 },
    /* what libvirt passes: a panic then pauses the VM */
    { "shutdown-no-shutdown", "-action panic=shutdown -no-shutdown",
      "pause", TERM_PAUSED },
    { "none", "-action panic=none", "run", TERM_RUNS },
};

typedef struct TermCase {
    const TermGuest *guest;
    const TermAction *action;
} TermCase;

typedef KvmSimVM TermVM;

static bool term_vm_start(TermVM *vm, const TermGuest *guest,
                          const char *extra)
{
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    g_autofree char *cgs = NULL;
    g_autofree char *args = NULL;

    if (!g_file_test(OVMF_PATH, G_FILE_TEST_EXISTS)) {
        g_test_skip("no " OVMF_PATH);
        return false;
    }
    /*
     * QEMU 7.2 checks cbitpos against CPUID 0x8000001F of the host, which
     * it executes natively, or 0 where the CPU has no such leaf (as
     * __get_cpuid_count() answers): pass what this host reports.
     */
    __get_cpuid_count(0x8000001f, 0, &eax, &ebx, &ecx, &edx);
    cgs = g_strdup_printf(guest->args_fmt, ebx & 0x3f);
    args = g_strdup_printf("-accel kvm %s -smp 2 -m 256 -bios %s %s",
                           cgs, OVMF_PATH, extra);

    return kvmsim_vm_start(vm, args);
}

static void sim_ok(TermVM *vm, const char *req)
{
    g_autofree char *r = kvmsim_request(vm->ctl, "%s", req);

    g_assert_nonnull(r);
    g_assert_true(g_str_has_prefix(r, "{\"ok\":true"));
}

static char *query_status(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    QDict *ret = qdict_get_qdict(resp, "return");
    char *status;

    g_assert_nonnull(ret);
    status = g_strdup(qdict_get_str(ret, "status"));
    qobject_unref(resp);
    return status;
}

/* Queue a termination request with @value on vCPU 0 */
static void request_term(TermVM *vm, uint64_t value)
{
    g_autofree char *req = g_strdup_printf("exit 0 sev-term 0x%" PRIx64,
                                           value);

    sim_ok(vm, req);
}

/*
 * Wait for GUEST_PANICKED; check the action and the sev-term information.
 * @set/@code < 0: no reason set/code expected; @name NULL: no name
 * expected.  Returns the info's description.
 */
static char *check_panic_event(TermVM *vm, const char *action,
                               bool has_value, uint64_t value,
                               int set, int code, const char *name)
{
    QDict *ev = qtest_qmp_eventwait_ref(vm->qts, "GUEST_PANICKED");
    QDict *data = qdict_get_qdict(ev, "data");
    QDict *info = qdict_get_qdict(data, "info");
    char *description;

    g_assert_cmpstr(qdict_get_str(data, "action"), ==, action);
    g_assert_nonnull(info);
    g_assert_cmpstr(qdict_get_str(info, "type"), ==, "sev-term");
    g_assert_cmpint(qdict_haskey(info, "ghcb-value"), ==, has_value);
    if (has_value) {
        QNum *n = qobject_to(QNum, qdict_get(info, "ghcb-value"));

        g_assert_nonnull(n);
        g_assert_cmphex(qnum_get_uint(n), ==, value);
    }
    g_assert_cmpint(qdict_haskey(info, "reason-set"), ==, set >= 0);
    g_assert_cmpint(qdict_haskey(info, "reason-code"), ==, set >= 0);
    if (set >= 0) {
        g_assert_cmpint(qdict_get_int(info, "reason-set"), ==, set);
        g_assert_cmpint(qdict_get_int(info, "reason-code"), ==, code);
    }
    if (name) {
        g_assert_cmpstr(qdict_get_try_str(info, "name"), ==, name);
    } else {
        g_assert_false(qdict_haskey(info, "name"));
    }
    description = g_strdup(qdict_get_str(info, "description"));
    g_assert_cmpuint(strlen(description), >, 0);
    qobject_unref(ev);
    return description;
}

/* One request, then what the panic action does with the VM */
static void test_action(const void *opaque)
{
    const TermCase *tc = opaque;
    const TermAction *a = tc->action;
    g_autofree char *status = NULL;
    g_autofree char *desc = NULL;
    TermVM vm;

    if (!term_vm_start(&vm, tc->guest, a->args)) {
        return;
    }
    status = query_status(vm.qts);
    g_assert_cmpstr(status, ==, "running");
    g_clear_pointer(&status, g_free);

    /* Linux guest: CPUID validation failed */
    if (a->outcome == TERM_EXITS) {
        /*
         * QEMU may handle the exit and be gone before the simulator's
         * control thread in it has replied.
         */
        g_autofree char *r = kvmsim_request(vm.ctl, "exit 0 sev-term 0x%x",
                                            TERM_MSR(1, 4));

        g_assert_true(!r || g_str_has_prefix(r, "{\"ok\":true"));
    } else {
        request_term(&vm, TERM_MSR(1, 4));
    }
    desc = check_panic_event(&vm, a->event_action, true, TERM_MSR(1, 4),
                             1, 4, "cpuid");
    g_assert_nonnull(strstr(desc, "CPUID"));

    switch (a->outcome) {
    case TERM_PAUSED:
        qtest_qmp_eventwait(vm.qts, "STOP");
        status = query_status(vm.qts);
        g_assert_cmpstr(status, ==, "guest-panicked");
        break;
    case TERM_EXITS: {
        QDict *ev = qtest_qmp_eventwait_ref(vm.qts, "SHUTDOWN");
        QDict *data = qdict_get_qdict(ev, "data");

        g_assert_cmpstr(qdict_get_str(data, "reason"), ==, "guest-panic");
        g_assert_true(qdict_get_bool(data, "guest"));
        qobject_unref(ev);
        qtest_set_expected_status(vm.qts, a->exit_status);
        qtest_wait_qemu(vm.qts);
        /* reaped: qtest_quit() must not wait again */
        g_assert_false(qtest_probe_child(vm.qts));
        break;
    }
    case TERM_RUNS:
        sim_ok(&vm, "wait-exit-consumed 0");
        status = query_status(vm.qts);
        g_assert_cmpstr(status, ==, "running");
        break;
    }
    kvmsim_vm_stop(&vm);
}

/*
 * Each kind of value KVM may pass, under -action panic=pause; "cont"
 * between them (each one is reported while the action stops the VM).
 */
static void test_values(const void *opaque)
{
    const TermGuest *guest = opaque;
    static const struct {
        bool has_value;
        uint64_t value;
        int set, code;
        const char *name;
        const char *in_description;
    } values[] = {
        /* GHCB spec set 0 */
        { true, TERM_MSR(0, 1), 0, 1, "protocol-unsupported", "GHCB" },
        /* Linux: PVALIDATE failed, with reserved high bits set */
        { true, TERM_MSR(1, 2) | 0xabc000000000ULL, 1, 2, "pvalidate",
          "PVALIDATE" },
        /* unknown code in a known set: raw numbers */
        { true, TERM_MSR(1, 0xff), 1, 0xff, NULL, "code 255" },
        /* unknown set */
        { true, TERM_MSR(0xf, 0x80), 0xf, 0x80, NULL, "reason set 15" },
        /* through the GHCB page: the GHCB's GPA, no reason */
        { true, 0x7f000, -1, -1, NULL, "0x7f000" },
        /* an SNP-only MSR request (page state change) KVM refused */
        { true, 0x4000000014ULL, -1, -1, NULL, "0x014" },
        /* no value at all (ndata 0) */
        { false, 0, -1, -1, NULL, "no GHCB value" },
    };
    g_autofree char *status = NULL;
    TermVM vm;
    size_t i;

    if (!term_vm_start(&vm, guest, "-action panic=pause")) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(values); i++) {
        g_autofree char *desc = NULL;

        if (values[i].has_value) {
            request_term(&vm, values[i].value);
        } else {
            sim_ok(&vm, "exit 0 system-event 6 0");
        }
        desc = check_panic_event(&vm, "pause", values[i].has_value,
                                 values[i].value, values[i].set,
                                 values[i].code, values[i].name);
        g_assert_nonnull(strstr(desc, values[i].in_description));
        qtest_qmp_eventwait(vm.qts, "STOP");
        g_free(status);
        status = query_status(vm.qts);
        g_assert_cmpstr(status, ==, "guest-panicked");

        /* The operator lets it run again */
        qobject_unref(qtest_qmp(vm.qts, "{'execute': 'cont'}"));
        qtest_qmp_eventwait(vm.qts, "RESUME");
        g_free(status);
        status = query_status(vm.qts);
        g_assert_cmpstr(status, ==, "running");
    }
    kvmsim_vm_stop(&vm);
}

/*
 * A guest that asks again and again with -action panic=none: it keeps
 * running, and the events are bounded (at most one a second after the
 * first one), not one per request.
 */
static void test_flood(const void *opaque)
{
    const TermGuest *guest = opaque;
    const int requests = 200;
    g_autofree char *status = NULL;
    g_autofree char *desc = NULL;
    int64_t t0, seconds;
    int i, events = 0;
    QDict *ev;
    TermVM vm;

    if (!term_vm_start(&vm, guest, "-action panic=none")) {
        return;
    }
    t0 = g_get_monotonic_time();
    for (i = 0; i < requests; i++) {
        request_term(&vm, TERM_MSR(1, 1));
    }
    sim_ok(&vm, "wait-exit-consumed 0");
    seconds = (g_get_monotonic_time() - t0) / G_USEC_PER_SEC;

    /* A round trip: the events sent before it are now queued */
    status = query_status(vm.qts);
    g_assert_cmpstr(status, ==, "running");
    while ((ev = qtest_qmp_event_ref(vm.qts, "GUEST_PANICKED"))) {
        QDict *data = qdict_get_qdict(ev, "data");
        QDict *info = qdict_get_qdict(data, "info");

        g_assert_cmpstr(qdict_get_str(data, "action"), ==, "run");
        g_assert_cmpstr(qdict_get_str(info, "name"), ==, "page-state-change");
        events++;
        qobject_unref(ev);
    }
    g_assert_cmpint(events, >=, 1);
    g_assert_cmpint(events, <=, seconds + 1);
    g_assert_cmpint(events, <, requests);

    /*
     * Once the interval has passed, the next request is reported again,
     * and its description counts those that were not.  Wait for the
     * event rather than for time: keep asking until it comes.
     */
    for (i = 0; i < 100000; i++) {
        request_term(&vm, TERM_MSR(1, 1));
        sim_ok(&vm, "wait-exit-consumed 0");
        g_free(status);
        status = query_status(vm.qts);
        ev = qtest_qmp_event_ref(vm.qts, "GUEST_PANICKED");
        if (ev) {
            break;
        }
    }
    g_assert_nonnull(ev);
    desc = g_strdup(qdict_get_str(qdict_get_qdict(qdict_get_qdict(ev, "data"),
                                                  "info"), "description"));
    g_assert_nonnull(strstr(desc, "more requests since the last one "
                            "reported"));
    qobject_unref(ev);
    kvmsim_vm_stop(&vm);
}

int main(int argc, char **argv)
{
    size_t g, a;

    g_test_init(&argc, &argv, NULL);
    for (g = 0; g < ARRAY_SIZE(guests); g++) {
        g_autofree char *vpath = NULL;
        g_autofree char *fpath = NULL;

        for (a = 0; a < ARRAY_SIZE(actions); a++) {
            g_autofree char *path = g_strdup_printf("/sev-term/%s/action/%s",
                                                    guests[g].name,
                                                    actions[a].name);
            TermCase *tc = g_new0(TermCase, 1);

            tc->guest = &guests[g];
            tc->action = &actions[a];
            qtest_add_data_func_full(path, tc, test_action, g_free);
        }
        vpath = g_strdup_printf("/sev-term/%s/values", guests[g].name);
        qtest_add_data_func(vpath, &guests[g], test_values);
        fpath = g_strdup_printf("/sev-term/%s/flood", guests[g].name);
        qtest_add_data_func(fpath, &guests[g], test_flood);
    }
    return g_test_run();
}
