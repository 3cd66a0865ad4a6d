/*
 * QTest: private guest memory conversions under the kvm-sim simulator
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * QEMU runs with -accel kvm,x-private-memory-test=on (a VM type with
 * private memory, allowed under qtest only) and tests/kvm-sim preloaded.
 * The simulator's control socket scripts KVM_HC_MAP_GPA_RANGE hypercall
 * exits and memory faults; the test checks the simulator's memory
 * attributes, QEMU's own view (the machine's x-private-ranges property),
 * the hypercall results, and that hostile requests are refused while
 * QEMU keeps running.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "../kvm-sim/kvm-sim-client.h"

#define EINVAL_RET "18446744073709551594"       /* (uint64_t)-KVM_EINVAL */
#define RAM_MB 256

typedef KvmSimVM Ctx;

static bool start(Ctx *c, const char *extra)
{
    g_autofree char *args = NULL;

    args = g_strdup_printf("-accel kvm,x-private-memory-test=on "
                           "-machine q35,smm=off -m %d %s", RAM_MB,
                           extra ? extra : "");

    return kvmsim_vm_start(c, args);
}

static char *qemu_ranges(Ctx *c)
{
    QDict *resp = qtest_qmp(c->qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': '/machine', "
                            "'property': 'x-private-ranges'}}");
    char *s = g_strdup(qdict_get_str(resp, "return"));

    qobject_unref(resp);
    return s;
}

static uint64_t qemu_counter(Ctx *c, const char *name)
{
    QDict *resp = qtest_qmp(c->qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': '/machine', 'property': %s}}", name);
    uint64_t v = qdict_get_int(resp, "return");

    qobject_unref(resp);
    return v;
}

static char *status(Ctx *c)
{
    QDict *resp = qtest_qmp(c->qts, "{'execute': 'query-status'}");
    char *s = g_strdup(qdict_get_str(qdict_get_qdict(resp, "return"),
                                     "status"));

    qobject_unref(resp);
    return s;
}

/* Queue an exit on vCPU 0 and wait until QEMU has handled it */
static void run_exit(Ctx *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void run_exit(Ctx *c, const char *fmt, ...)
{
    g_autofree char *req = NULL;
    g_autofree char *r = NULL;
    va_list ap;

    va_start(ap, fmt);
    req = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    r = kvmsim_request(c->ctl, "exit 0 %s", req);
    g_assert_cmpstr(r, ==, "{\"ok\":true}");
    g_free(r);
    r = kvmsim_request(c->ctl, "wait-exit-consumed 0");
    g_assert_nonnull(r);
    g_assert_nonnull(strstr(r, "\"ok\":true"));
}

static void assert_hypercall_ret(Ctx *c, const char *ret)
{
    g_autofree char *r = kvmsim_request(c->ctl, "query hypercall-ret 0");
    g_autofree char *expect = g_strdup_printf("{\"ok\":true,\"ret\":%s}",
                                              ret);

    g_assert_cmpstr(r, ==, expect);
}

/* The simulator's private ranges over the first RAM_MB MiB */
static char *sim_private(Ctx *c)
{
    g_autofree char *r = kvmsim_request(c->ctl, "query attrs 0 0x%x",
                                        RAM_MB << 20);
    const char *p, *e;

    g_assert_nonnull(r);
    p = strstr(r, "\"private\":");
    g_assert_nonnull(p);
    p += strlen("\"private\":");
    e = strstr(p, "]]");
    return e ? g_strndup(p, e + 2 - p) : g_strdup("[]");
}

static void assert_views(Ctx *c, const char *qemu, const char *sim)
{
    g_autofree char *q = qemu_ranges(c);
    g_autofree char *s = sim_private(c);

    g_assert_cmpstr(q, ==, qemu);
    g_assert_cmpstr(s, ==, sim);
}

/*
 * q35, 256 MiB: all of it starts private.  The window at 640 KiB - 1 MiB
 * was RAM when the memory map was first built, and memory attributes
 * outlive memory slots, so it stays private although conversions there
 * are refused now.
 */
#define INITIAL_QEMU "0x0+0x10000000"
#define INITIAL_SIM "[[0,268435456]]"

static void test_convert(void)
{
    Ctx c = { 0 };
    g_autofree char *st = NULL;

    if (!start(&c, NULL)) {
        return;
    }
    /* guest RAM starts private, in QEMU and in KVM */
    assert_views(&c, INITIAL_QEMU, INITIAL_SIM);

    /* a 2 MiB piece to shared (attrs: 2M page size, decrypted) */
    run_exit(&c, "hypercall-map-gpa 0x200000 512 0x1");
    assert_hypercall_ret(&c, "0");
    assert_views(&c, "0x0+0x200000 0x400000+0xfc00000",
                 "[[0,2097152],[4194304,264241152]]");

    /* its first 4 KiB page back to private: merges with the range below */
    run_exit(&c, "hypercall-map-gpa 0x200000 1 0x10");
    assert_hypercall_ret(&c, "0");
    assert_views(&c, "0x0+0x201000 0x400000+0xfc00000",
                 "[[0,2101248],[4194304,264241152]]");

    /* a shared access to a private page converts it */
    run_exit(&c, "memory-fault 0x400000 0x1000 0");
    assert_views(&c, "0x0+0x201000 0x401000+0xfbff000",
                 "[[0,2101248],[4198400,264237056]]");

    /* a private access to the rest of the 2 MiB: one range again */
    run_exit(&c, "memory-fault 0x201000 0x1ff000 1");
    run_exit(&c, "hypercall-map-gpa 0x400000 1 0x10");
    assert_hypercall_ret(&c, "0");
    assert_views(&c, INITIAL_QEMU, INITIAL_SIM);

    g_assert_cmpuint(qemu_counter(&c, "x-private-conversions"), ==, 5);
    g_assert_cmpuint(qemu_counter(&c, "x-private-refused"), ==, 0);
    st = status(&c);
    g_assert_cmpstr(st, ==, "running");
    kvmsim_vm_stop(&c);
}

static void test_hostile(void)
{
    static const char *const bad[] = {
        "0x10000000 1 0x0",                     /* above RAM */
        "0xa0000 1 0x0",                        /* VGA window */
        "0xff000 2 0x0",                        /* runs out of RAM */
        "0x200000 0 0x0",                       /* no pages */
        "0x200000 0xffffffffffffffff 0x10",     /* huge */
        "0xfffffffffffff000 2 0x0",             /* wraps */
        "0x200000 0x10000000000000 0x0",        /* size overflows */
        "0x200800 1 0x0",                       /* misaligned */
        "0x200000 1 0x20",                      /* reserved attribute */
        "0x200000 1 0x3",                       /* unknown page size */
    };
    Ctx c = { 0 };
    g_autofree char *st = NULL;
    int i;

    if (!start(&c, NULL)) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree char *s = NULL;

        run_exit(&c, "hypercall-map-gpa %s", bad[i]);
        assert_hypercall_ret(&c, EINVAL_RET);
        /* nothing changed, QEMU runs */
        assert_views(&c, INITIAL_QEMU, INITIAL_SIM);
        s = status(&c);
        g_assert_cmpstr(s, ==, "running");
    }
    g_assert_cmpuint(qemu_counter(&c, "x-private-refused"), ==,
                     ARRAY_SIZE(bad));
    g_assert_cmpuint(qemu_counter(&c, "x-private-conversions"), ==, 0);

    /* a good request after them still works */
    run_exit(&c, "hypercall-map-gpa 0x200000 1 0x0");
    assert_hypercall_ret(&c, "0");

    /* an unresolvable memory fault stops the VM; QEMU stays up */
    run_exit(&c, "memory-fault 0x10000000 0x1000 1");
    st = status(&c);
    g_assert_cmpstr(st, ==, "internal-error");
    kvmsim_vm_stop(&c);
}

/*
 * A memory fault with a flag Linux 6.12 does not define (it knows only
 * KVM_MEMORY_EXIT_FLAG_PRIVATE) is not converted: the VM stops, QEMU
 * stays up
 */
static void test_unknown_fault_flags(void)
{
    Ctx c = { 0 };
    g_autofree char *st = NULL;

    if (!start(&c, NULL)) {
        return;
    }
    run_exit(&c, "memory-fault 0x400000 0x1000 0 0x10");
    assert_views(&c, INITIAL_QEMU, INITIAL_SIM);
    g_assert_cmpuint(qemu_counter(&c, "x-private-conversions"), ==, 0);
    g_assert_cmpuint(qemu_counter(&c, "x-private-refused"), ==, 1);
    st = status(&c);
    g_assert_cmpstr(st, ==, "internal-error");
    kvmsim_vm_stop(&c);
}

/* Migration is blocked: private memory cannot be read by QEMU */
static void test_migration_blocked(void)
{
    Ctx c = { 0 };
    QDict *resp;
    const char *desc;

    if (!start(&c, NULL)) {
        return;
    }
    resp = qtest_qmp(c.qts, "{'execute': 'migrate', 'arguments': "
                     "{'uri': 'exec:cat > /dev/null'}}");
    g_assert_true(qdict_haskey(resp, "error"));
    desc = qdict_get_str(qdict_get_qdict(resp, "error"), "desc");
    g_assert_nonnull(strstr(desc, "private"));
    qobject_unref(resp);
    kvmsim_vm_stop(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/kvm-private-mem/convert", test_convert);
    qtest_add_func("/kvm-private-mem/hostile", test_hostile);
    qtest_add_func("/kvm-private-mem/unknown-fault-flags",
                   test_unknown_fault_flags);
    qtest_add_func("/kvm-private-mem/migration-blocked",
                   test_migration_blocked);
    return g_test_run();
}
