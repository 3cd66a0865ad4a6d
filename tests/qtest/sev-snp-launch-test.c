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
 * equal both.  The same with each AMD EPYC model added to QEMU 7.2's
 * (models[]) at 1, 4, 8 and 64 vCPUs, whose digests must also equal the
 * dry run's of an older model with the same CPUID signature (the VMSA's
 * RDX is the only part of the launch a model changes) and differ from
 * that of another stepping, and with a libvirt-shaped command line.
 * (Refusals and injected failures are in sev-snp-guest-test.c; the
 * models' CPUID in epyc-models-test.c.)
 */

#include "qemu/osdep.h"
#include <cpuid.h>
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "qapi/error.h"
#include "qapi/qmp/qjson.h"
#include "qapi/qmp/qlist.h"
#include "qapi/qmp/qnum.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qemu/uuid.h"
#include "../kvm-sim/kvm-sim-client.h"

static const char *const images[] = { "OVMF-2022.11.fd", "OVMF-2025.02.fd" };

/*
 * A CPU model with XSAVE and XSAVEC, without which the CPUID page cannot
 * give a Linux guest its XSAVE leaves (the simulator's rule G-02)
 */
#define SNP_CPU "-cpu EPYC"

/*
 * The EPYC models QEMU 7.2 did not have, each with a model of the same
 * family, model and stepping (a command line: EPYC-Genoa's signature
 * is new)
 */
static const struct {
    const char *name;
    const char *same_signature;
} models[] = {
    { "EPYC-v4", "EPYC-v1" },
    { "EPYC-Rome-v3", "EPYC-Rome-v1" },
    { "EPYC-Rome-v4", "EPYC-Rome-v1" },
    { "EPYC-Milan-v2", "EPYC-Milan-v1" },
    { "EPYC-Genoa", "EPYC-Milan-v1,model=17,stepping=0" },
};

typedef struct LaunchCase {
    const char *image;
    int smp;
    const char *cpu;            /* NULL: SNP_CPU */
    const char *same_signature;
} LaunchCase;

/*
 * -cpu for @cpu, given after SNP_CPU, which it replaces (the last -cpu
 * counts).  check=off: the simulated host lacks many features of the
 * newer models, and QEMU would warn about each one for each vCPU; what
 * reaches KVM is epyc-models-test's concern.
 */
static char *cpu_arg(const char *cpu)
{
    return cpu ? g_strdup_printf("-cpu %s,check=off", cpu) : g_strdup("");
}

/* The path of a Debian OVMF image, or NULL (the test skipped) */
static char *firmware(const char *image)
{
    char *path = kvmsim_ovmf_image(image, false);

    if (!path) {
        g_test_skip("firmware image not fetched (scripts/qsnp test fetches"
                    " it into $QSNP_FIRMWARE_DIR)");
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

/* One entry of the simulator's "query cpuid-page" reply, as a QDict */
static QDict *sim_cpuid_entry(KvmSimVM *vm, int leaf, int subleaf)
{
    g_autofree char *r = kvmsim_request(vm->ctl, "query cpuid-page");
    QDict *page = qobject_to(QDict, qobject_from_json(r, &error_abort));
    QDict *found = NULL;
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(page, "entries"), e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(d, "leaf") == leaf &&
            qdict_get_int(d, "subleaf") == subleaf && !found) {
            found = qdict_clone_shallow(d);
        }
    }
    qobject_unref(page);
    g_assert_nonnull(found);
    return found;
}

/*
 * The CPUID page the simulator's firmware accepted has the XSAVE leaves
 * as a guest reads them: 0xd.0 and 0xd.1 for the base size (XCR0_IN 1,
 * XSS_IN 0, EBX 0x240), and the guest's CPUID 0xd.0 and 0xd.1, for the
 * XCR0 the page reports, succeed with the sizes of those components
 */
static void check_cpuid_page(KvmSimVM *vm)
{
    QDict *d0 = sim_cpuid_entry(vm, 0xd, 0);
    QDict *d1 = sim_cpuid_entry(vm, 0xd, 1);
    QDict *g0, *g1;
    g_autofree char *r0 = NULL;
    g_autofree char *r1 = NULL;
    uint64_t xcr0;

    g_assert_cmpint(qdict_get_int(d0, "xcr0_in"), ==, 1);
    g_assert_cmpint(qdict_get_int(d0, "xss_in"), ==, 0);
    g_assert_cmphex(qdict_get_int(d0, "ebx"), ==, 0x240);
    g_assert_cmpint(qdict_get_int(d1, "xcr0_in"), ==, 1);
    g_assert_cmpint(qdict_get_int(d1, "xss_in"), ==, 0);
    g_assert_cmphex(qdict_get_int(d1, "ebx"), ==, 0x240);
    xcr0 = qdict_get_int(d0, "eax") | (uint64_t)qdict_get_int(d0, "edx") << 32;
    g_assert_cmphex(xcr0 & 0x7, ==, 0x7);       /* x87, SSE, AVX */

    r0 = kvmsim_request(vm->ctl, "query cpuid-guest 0xd 0 0x%" PRIx64, xcr0);
    r1 = kvmsim_request(vm->ctl, "query cpuid-guest 0xd 1 0x%" PRIx64, xcr0);
    g0 = qobject_to(QDict, qobject_from_json(r0, &error_abort));
    g1 = qobject_to(QDict, qobject_from_json(r1, &error_abort));
    g_assert_true(qdict_get_bool(g0, "found"));
    g_assert_false(qdict_get_bool(g0, "fails"));
    g_assert_true(qdict_get_bool(g1, "found"));
    g_assert_false(qdict_get_bool(g1, "fails"));
    /* the standard size for XCR0 is what 0xd.0 ECX reports for all */
    g_assert_cmphex(qdict_get_int(g0, "ebx"), ==, qdict_get_int(d0, "ecx"));
    g_assert_cmphex(qdict_get_int(g1, "ebx"), >, 0x240);
    qobject_unref(g0);
    qobject_unref(g1);
    qobject_unref(d0);
    qobject_unref(d1);
}

/*
 * The simulator saw no broken rule (the kernel's, the firmware's, and the
 * guest's reading of the CPUID page; or only @injected failures, rule
 * R-30), agrees on the digest, which covers the VMSAs with the SEV
 * features KVM_SEV_INIT2 was given (QEMU gives none: the VM's are
 * SNP_ACTIVE only, 0x1), and has the CPUID page the guest expects
 */
static void check_simulator_injected(KvmSimVM *vm, const char *digest,
                                     int injected)
{
    g_autofree char *v = kvmsim_request(vm->ctl, "query violations");
    g_autofree char *d = kvmsim_request(vm->ctl, "query digest");
    g_autofree char *st = kvmsim_request(vm->ctl, "query state");
    g_autofree char *want = g_strdup_printf("\"digest\":\"%s\"", digest);
    const char *p = v;
    int n = 0;

    while ((p = strstr(p, "\"rule\":"))) {
        g_assert_true(g_str_has_prefix(p, "\"rule\":\"R-30\""));
        p++;
        n++;
    }
    g_assert_cmpint(n, ==, injected);
    g_assert_nonnull(strstr(d, want));
    g_assert_nonnull(strstr(st, "\"vmsa_features\":1,"));
    check_cpuid_page(vm);
}

static void check_simulator(KvmSimVM *vm, const char *digest)
{
    check_simulator_injected(vm, digest, 0);
}

static void assert_running(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-status'}");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "return"),
                                  "status"), ==, "running");
    qobject_unref(resp);
}

/* query-sev: the launch is done, with the (simulated) firmware's ABI */
static void check_query_sev(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-sev'}");
    QDict *ret = qdict_get_qdict(resp, "return");

    g_assert_true(qdict_get_bool(ret, "enabled"));
    g_assert_cmpstr(qdict_get_str(ret, "state"), ==, "running");
    g_assert_cmpint(qdict_get_int(ret, "api-major"), ==, 1);
    g_assert_cmpint(qdict_get_int(ret, "api-minor"), ==, 55);
    g_assert_cmpint(qdict_get_int(ret, "policy"), ==, 0x30000);
    g_assert_cmpstr(qdict_get_str(ret, "sev-type"), ==, "sev-snp");
    g_assert_cmpint(qdict_get_int(ret, "snp-policy"), ==, 0x30000);
    qobject_unref(resp);
}

/* The dry run of the same launch, without KVM */
static char *dry_run_digest(const char *fw_args, int smp)
{
    QTestState *qts = qtest_initf("-S -machine q35,confidential-guest-support="
                                  "snp0 -object sev-snp-guest,id=snp0,"
                                  "dry-run=on " SNP_CPU " -smp %d -m 512 %s",
                                  smp, fw_args);
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

/* Start an SNP guest (object snp0 in @args) under the simulator */
static bool sim_start(KvmSimVM *vm, int smp, const char *args)
{
    g_autofree char *full = g_strdup_printf("-accel kvm -machine q35,"
                                            "confidential-guest-support="
                                            "snp0 " SNP_CPU " -smp %d %s",
                                            smp, args);

    return kvmsim_vm_start(vm, full);
}

/*
 * The memory slots of an SNP guest: the firmware at the top of 4 GiB in
 * private memory (a slot with a guest_memfd), the ISA BIOS range below
 * 1 MiB shared (its own RAM, a copy of the firmware's last 128 KiB: KVM
 * binds a guest_memfd range to one slot), whatever the firmware path
 */
static void check_memslots(KvmSimVM *vm)
{
    g_autofree char *r = kvmsim_request(vm->ctl, "query memslots");
    QDict *resp = qobject_to(QDict, qobject_from_json(r, &error_abort));
    QListEntry *e;
    bool isa_bios = false, fw = false;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "memslots"), e) {
        /* [slot, gpa, size, flags, guest_memfd, offset] */
        int64_t f[6];
        QListEntry *x;
        int n = 0;
        uint64_t gpa, size;
        int64_t gmem;

        QLIST_FOREACH_ENTRY(qobject_to(QList, qlist_entry_obj(e)), x) {
            g_assert_cmpint(n, <, ARRAY_SIZE(f));
            f[n++] = qnum_get_int(qobject_to(QNum, qlist_entry_obj(x)));
        }
        g_assert_cmpint(n, ==, ARRAY_SIZE(f));
        gpa = f[1];
        size = f[2];
        gmem = f[4];

        if (gpa == 0xe0000) {
            g_assert_cmphex(size, ==, 0x20000);
            g_assert_cmpint(gmem, ==, -1);
            isa_bios = true;
        }
        if (gpa + size == 4 * GiB) {
            g_assert_cmpint(gmem, >=, 0);
            fw = true;
        }
    }
    g_assert_true(isa_bios);
    g_assert_true(fw);
    qobject_unref(resp);
}

/* Launch under the simulator; returns QEMU's digest, checked */
static char *sim_launch(const char *args, int smp)
{
    KvmSimVM vm;
    char *digest;

    if (!sim_start(&vm, smp, args)) {
        return NULL;
    }
    assert_running(vm.qts);
    check_query_sev(vm.qts);
    digest = launch_digest(vm.qts);
    check_simulator(&vm, digest);
    check_memslots(&vm);
    check_log(vm.qts, digest, smp);
    kvmsim_vm_stop(&vm);
    return digest;
}

static void test_launch(const void *opaque)
{
    const LaunchCase *lc = opaque;
    g_autofree char *fw = firmware(lc->image);
    g_autofree char *cpu = cpu_arg(lc->cpu);
    g_autofree char *bios = NULL;
    g_autofree char *args = NULL;
    g_autofree char *digest = NULL;
    g_autofree char *dry = NULL;

    if (!fw) {
        return;
    }
    bios = g_strdup_printf("-bios %s %s", fw, cpu);
    args = g_strdup_printf("-object sev-snp-guest,id=snp0 -m 512 %s", bios);
    digest = sim_launch(args, lc->smp);
    if (!digest) {
        return;
    }
    dry = dry_run_digest(bios, lc->smp);
    g_assert_cmpstr(dry, ==, digest);
    if (lc->same_signature) {
        g_autofree char *other = cpu_arg(lc->same_signature);
        g_autofree char *args2 = g_strdup_printf("-bios %s %s", fw, other);
        g_autofree char *dry2 = dry_run_digest(args2, lc->smp);

        g_assert_cmpstr(dry2, ==, digest);
    }
    if (lc->same_signature && lc->smp == 1) {
        /* and the signature does change it: another stepping */
        g_autofree char *args3 = g_strdup_printf("-bios %s %s,stepping=15",
                                                 fw, cpu);
        g_autofree char *dry3 = dry_run_digest(args3, lc->smp);

        g_assert_cmpstr(dry3, !=, digest);
    }
}

/*
 * The firmware as a read-only pflash0, as libvirt gives a stateless
 * <loader>: the same pages, so the same digest as with -bios.  And
 * libvirt's command line shape: JSON -object, memory-backend=pc.ram,
 * -sandbox, and -cpu with the model of the domain's <cpu> (@opaque, or
 * SNP_CPU).
 */
static void test_libvirt(const void *opaque)
{
    const char *model = opaque;
    g_autofree char *fw = firmware(images[0]);
    g_autofree char *cpu = model ? g_strdup_printf("-cpu %s", model) :
                                   g_strdup("");
    g_autofree char *bios = NULL;
    g_autofree char *pflash = NULL;
    g_autofree char *d_bios = NULL;
    g_autofree char *d_pflash = NULL;

    if (!fw) {
        return;
    }
    bios = g_strdup_printf("-object sev-snp-guest,id=snp0 -m 512 -bios %s"
                           " %s", fw, cpu);
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
        " -device '{\"driver\":\"virtio-serial-pci\",\"id\":\"vs0\"}'"
        " %s", fw, cpu);
    d_pflash = sim_launch(pflash, 2);
    g_assert_cmpstr(d_pflash, ==, d_bios);
}

/*
 * An SEV-SNP guest cannot be reset: a reset request from the guest ends
 * it as a shutdown (reason guest-reset); with -no-shutdown, as libvirt
 * runs QEMU, the VM stays stopped in state shutdown.
 */
static void test_reset(void)
{
    g_autofree char *fw = firmware(images[0]);
    g_autofree char *args = NULL;
    g_autofree char *r = NULL;
    QDict *ev, *resp;
    KvmSimVM vm;

    if (!fw) {
        return;
    }
    args = g_strdup_printf("-object sev-snp-guest,id=snp0 -no-shutdown"
                           " -m 512 -bios %s", fw);
    if (!sim_start(&vm, 2, args)) {
        return;
    }
    r = kvmsim_request(vm.ctl, "exit 1 reset");
    g_assert_cmpstr(r, ==, "{\"ok\":true}");
    ev = qtest_qmp_eventwait_ref(vm.qts, "SHUTDOWN");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "reason"), ==,
                    "guest-reset");
    qobject_unref(ev);
    resp = qtest_qmp(vm.qts, "{'execute': 'query-status'}");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "return"),
                                  "status"), ==, "shutdown");
    qobject_unref(resp);
    kvmsim_vm_stop(&vm);
}

/*
 * SNP_LAUNCH_UPDATE that KVM asks to repeat (EAGAIN) or that a signal
 * interrupted (EINTR) is repeated: the launch goes on, with the same
 * digest as without.
 */
static void test_update_retried(void)
{
    static const char *const fail[] = {
        "KVM_SEV_SNP_LAUNCH_UPDATE:0:11:3", "KVM_SEV_SNP_LAUNCH_UPDATE:0:4:100",
    };
    static const int count[] = { 3, 100 };
    g_autofree char *fw = firmware(images[0]);
    g_autofree char *args = NULL;
    g_autofree char *plain = NULL;
    size_t i;

    if (!fw) {
        return;
    }
    args = g_strdup_printf("-object sev-snp-guest,id=snp0 -m 512 -bios %s",
                           fw);
    plain = sim_launch(args, 1);
    if (!plain) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(fail); i++) {
        g_autofree char *digest = NULL;
        KvmSimVM vm;

        g_setenv("KVMSIM_FAIL", fail[i], true);
        g_assert_true(sim_start(&vm, 1, args));
        g_unsetenv("KVMSIM_FAIL");
        assert_running(vm.qts);
        digest = launch_digest(vm.qts);
        g_assert_cmpstr(digest, ==, plain);
        check_simulator_injected(&vm, digest, count[i]);
        kvmsim_vm_stop(&vm);
    }
}

/* The entry of leaf @leaf (subleaf 0) in the CPUID page in guest RAM */
static void cpuid_page_entry(QTestState *qts, uint32_t leaf, uint32_t *ebx)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-sev-snp-launch-log'}");
    g_autofree uint8_t *page = g_malloc(4096);
    uint64_t gpa = 0;
    QListEntry *e;
    uint32_t i, n;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "return"), e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(d, "page-type"), "cpuid")) {
            gpa = qdict_get_int(d, "gpa");
        }
    }
    qobject_unref(resp);
    g_assert_cmphex(gpa, !=, 0);
    /* QEMU's copy, as it handed it to SNP_LAUNCH_UPDATE */
    qtest_memread(qts, gpa, page, 4096);
    n = ldl_le_p(page);
    g_assert_cmpuint(n, <=, 64);
    for (i = 0; i < n; i++) {
        const uint8_t *ent = page + 16 + 48 * i;

        if (ldl_le_p(ent) == leaf && ldl_le_p(ent + 4) == 0) {
            *ebx = ldl_le_p(ent + 28);
            return;
        }
    }
    g_error("no CPUID page entry for leaf 0x%x", leaf);
}

/*
 * The host CPU's C-bit position, or 0 when its CPUID has no leaf
 * 0x8000001F (above its highest leaf a CPU answers with other data)
 */
static uint32_t host_cbitpos(void)
{
    unsigned a = 0, b = 0, c = 0, d = 0;

    __get_cpuid(0x8000001f, &a, &b, &c, &d);
    return b & 0x3f;
}

/*
 * CPUID 0x8000001F EBX of the guest: the C-bit position (the host CPU's
 * unless cbitpos is given) and reduced-phys-bits (1 unless given), which
 * is also what query-sev-capabilities reports
 */
static void test_cpuid_mem_encrypt(void)
{
    static const struct {
        const char *props;
        uint32_t reduced;
    } cases[] = {
        { "", 1 },
        { ",reduced-phys-bits=5", 5 },
    };
    g_autofree char *fw = firmware(images[0]);
    size_t i;

    if (!fw) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *args = g_strdup_printf(
            "-object sev-snp-guest,id=snp0%s -m 512 -bios %s",
            cases[i].props, fw);
        uint32_t ebx = 0;
        QDict *resp;
        KvmSimVM vm;

        if (!sim_start(&vm, 1, args)) {
            return;
        }
        cpuid_page_entry(vm.qts, 0x8000001f, &ebx);
        g_assert_cmpuint((ebx >> 6) & 0x3f, ==, cases[i].reduced);
        g_assert_cmpuint(ebx & 0x3f, ==, host_cbitpos());
        resp = qtest_qmp(vm.qts, "{'execute': 'qom-get', 'arguments':"
                         " {'path': '/objects/snp0',"
                         " 'property': 'reduced-phys-bits'}}");
        g_assert_cmpint(qdict_get_int(resp, "return"), ==, cases[i].reduced);
        qobject_unref(resp);
        if (!*cases[i].props) {
            resp = qtest_qmp(vm.qts,
                             "{'execute': 'query-sev-capabilities'}");
            g_assert_cmpint(qdict_get_int(qdict_get_qdict(resp, "return"),
                                          "reduced-phys-bits"), ==,
                            cases[i].reduced);
            qobject_unref(resp);
        }
        kvmsim_vm_stop(&vm);
    }
}

/*
 * Guest exits QEMU cannot handle stop the VM (internal-error): QEMU
 * says why and, as the vCPUs' state is protected, does not read their
 * registers for the dump.
 */
static void test_guest_errors(void)
{
    static const struct {
        const char *exit;
        const char *expect;
    } cases[] = {
        /* a memory fault with a flag Linux 6.12 does not define */
        { "exit 0 memory-fault 0x200000 0x1000 1 0x10",
          "KVM_EXIT_MEMORY_FAULT private access: at 0x200000+0x1000:"
          " unknown flags 0x10" },
        /* KVM_INTERNAL_ERROR_EMULATION */
        { "exit 1 internal-error 1", "emulation failure" },
    };
    g_autofree char *fw = firmware(images[0]);
    size_t i;

    if (!fw) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *dir = g_dir_make_tmp("snp-guest-err-XXXXXX", NULL);
        g_autofree char *log = g_build_filename(dir, "stderr", NULL);
        g_autofree char *args = g_strdup_printf(
            "-object sev-snp-guest,id=snp0 -m 512 -bios %s 2>%s", fw, log);
        g_autofree char *r = NULL;
        g_autofree char *v = NULL;
        g_autofree char *err = NULL;
        QDict *resp;
        KvmSimVM vm;

        if (!sim_start(&vm, 2, args)) {
            return;
        }
        r = kvmsim_request(vm.ctl, "%s", cases[i].exit);
        g_assert_cmpstr(r, ==, "{\"ok\":true}");
        g_free(r);
        r = kvmsim_request(vm.ctl, "wait-exit-consumed %c",
                           cases[i].exit[5]);
        g_assert_nonnull(strstr(r, "{\"ok\":true,\"reentered\":false,"));
        resp = qtest_qmp(vm.qts, "{'execute': 'query-status'}");
        g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "return"),
                                      "status"), ==, "internal-error");
        qobject_unref(resp);
        v = kvmsim_request(vm.ctl, "query violations");
        g_assert_cmpstr(v, ==, "{\"ok\":true,\"violations\":[]}");
        kvmsim_vm_stop(&vm);
        g_assert_true(g_file_get_contents(log, &err, NULL, NULL));
        g_assert_nonnull(strstr(err, cases[i].expect));
        g_assert_nonnull(strstr(err, "the register state is protected by"
                                " the guest's memory encryption"));
        unlink(log);
        rmdir(dir);
    }
}

/* ------------------------------------------------- kernel hashes */

/*
 * Debian ships no OVMF build with a kernel hashes area (edk2's
 * OvmfPkg/AmdSev): a synthetic 64 KiB image stands in for it.  Nothing
 * executes it; it only has the information block the launch reads.
 */
#define FW_SIZE         0x10000
#define HASHES_GPA      0x80f000

static void put_guid(uint8_t *p, const char *text)
{
    QemuUUID uuid;

    g_assert_cmpint(qemu_uuid_parse(text, &uuid), ==, 0);
    uuid = qemu_uuid_bswap(uuid);       /* GUIDs are stored little-endian */
    memcpy(p, &uuid, 16);
}

/* One entry of the table, ending at @end: data, u16 length, GUID */
static size_t put_entry(uint8_t *img, size_t end, const char *guid,
                        const void *data, size_t len)
{
    size_t start = end - 18 - len;

    memcpy(img + start, data, len);
    stw_le_p(img + end - 18, len + 18);
    put_guid(img + end - 16, guid);
    return start;
}

static char *make_firmware(const char *dir)
{
    static const uint32_t sections[][3] = {
        { 0x800000, 0x9000, 1 },            /* SNP_SEC_MEM */
        { 0x80d000, 0x1000, 2 },            /* SNP_SECRETS */
        { 0x80e000, 0x1000, 3 },            /* CPUID */
        { HASHES_GPA, 0x1000, 0x10 },       /* SNP_KERNEL_HASHES */
    };
    g_autofree uint8_t *img = g_malloc0(FW_SIZE);
    char *path = g_build_filename(dir, "fw.fd", NULL);
    size_t asev = 0x1000, pos, table_end = FW_SIZE - 0x20, i;
    uint8_t data[8];

    /* SEV metadata ("ASEV" header and its sections) */
    memcpy(img + asev, "ASEV", 4);
    stl_le_p(img + asev + 4, 16 + 12 * ARRAY_SIZE(sections));
    stl_le_p(img + asev + 8, 1);
    stl_le_p(img + asev + 12, ARRAY_SIZE(sections));
    for (i = 0; i < ARRAY_SIZE(sections); i++) {
        stl_le_p(img + asev + 16 + 12 * i, sections[i][0]);
        stl_le_p(img + asev + 20 + 12 * i, sections[i][1]);
        stl_le_p(img + asev + 24 + 12 * i, sections[i][2]);
    }
    /* the table, from its footer backwards */
    pos = table_end - 18;
    stl_le_p(data, 0xfffff000);
    pos = put_entry(img, pos, "00f771de-1a7e-4fcb-890e-68c77e2fb44e", data, 4);
    stl_le_p(data, FW_SIZE - asev);
    pos = put_entry(img, pos, "dc886566-984a-4798-a75e-5585a7bf67cc", data, 4);
    stl_le_p(data, HASHES_GPA);
    stl_le_p(data + 4, 0x400);
    pos = put_entry(img, pos, "7255371f-3a3b-4b04-927b-1da6efa8d454", data, 8);
    stw_le_p(img + table_end - 18, table_end - pos);
    put_guid(img + table_end - 16, "96b582de-1fb2-45f7-baea-a366c55a082d");

    g_assert_true(g_file_set_contents(path, (char *)img, FW_SIZE, NULL));
    return path;
}

/* A Linux boot protocol 2.06 image, as much as QEMU's loader reads */
static char *make_kernel(const char *dir)
{
    g_autofree uint8_t *k = g_malloc0(8192);
    char *path = g_build_filename(dir, "bzImage", NULL);
    size_t i;

    for (i = 0; i < 8192; i++) {
        k[i] = i * 7;
    }
    k[0x1f1] = 4;                       /* setup sectors */
    stw_le_p(k + 0x1fe, 0xaa55);
    stl_le_p(k + 0x202, 0x53726448);    /* "HdrS" */
    stw_le_p(k + 0x206, 0x0206);
    k[0x211] = 0x01;                    /* LOADED_HIGH */
    g_assert_true(g_file_set_contents(path, (char *)k, 8192, NULL));
    return path;
}

static void sha256(const void *data, size_t len, uint8_t *out)
{
    g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);
    gsize n = 32;

    g_checksum_update(c, data, len);
    g_checksum_get_digest(c, out, &n);
}

static void put_hash_entry(uint8_t *p, const char *guid, const void *data,
                           size_t len)
{
    put_guid(p, guid);
    stw_le_p(p + 16, 50);
    sha256(data, len, p + 18);
}

/*
 * The kernel hashes page as the SEV hash table layout says it must be:
 * header GUID, length 168, then cmdline, initrd and kernel entries (GUID,
 * length 50, SHA-256), zero up to the end of the page.
 */
static char *expected_hashes_page(const char *kernel, const char *cmdline)
{
    g_autofree uint8_t *page = g_malloc0(4096);
    g_autofree gchar *k = NULL;
    gsize klen;
    char *hex;

    g_assert_true(g_file_get_contents(kernel, &k, &klen, NULL));
    put_guid(page, "9438d606-4f22-4cc9-b479-a793d411fd21");
    stw_le_p(page + 16, 168);
    put_hash_entry(page + 18, "97d02dd8-bd20-4c94-aa78-e7714d36ab2a",
                   cmdline, strlen(cmdline) + 1);
    put_hash_entry(page + 68, "44baf731-3a2f-4bd7-9af1-41e29169781d", "", 0);
    put_hash_entry(page + 118, "4de79437-abd2-427f-b835-d5b172d2045b",
                   k, klen);
    hex = g_compute_checksum_for_data(G_CHECKSUM_SHA384, page, 4096);
    return hex;
}

/* The log entry of the kernel hashes area */
static QDict *hashes_entry(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-sev-snp-launch-log'}");
    QListEntry *e;
    QDict *found = NULL;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "return"), e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(d, "what"), "SNP_KERNEL_HASHES")) {
            found = qdict_clone_shallow(d);
        }
    }
    qobject_unref(resp);
    g_assert_nonnull(found);
    return found;
}

static void test_kernel_hashes(void)
{
    g_autofree char *dir = g_dir_make_tmp("snp-hashes-XXXXXX", NULL);
    g_autofree char *fw = make_firmware(dir);
    g_autofree char *kernel = make_kernel(dir);
    g_autofree char *expect = expected_hashes_page(kernel, "console=ttyS0");
    g_autofree char *args = NULL;
    g_autofree char *plain = NULL;
    g_autofree char *digest = NULL;
    QTestState *qts;
    QDict *e;
    KvmSimVM vm;

    /* with -kernel: the table's page is measured, contents as expected */
    args = g_strdup_printf("-object sev-snp-guest,id=snp0,kernel-hashes=on"
                           " -m 512 -bios %s -kernel %s -append console=ttyS0",
                           fw, kernel);
    if (!sim_start(&vm, 1, args)) {
        goto out;
    }
    digest = launch_digest(vm.qts);
    check_simulator(&vm, digest);
    e = hashes_entry(vm.qts);
    g_assert_cmpstr(qdict_get_str(e, "page-type"), ==, "normal");
    g_assert_cmphex(qdict_get_int(e, "gpa"), ==, HASHES_GPA);
    g_assert_cmpstr(qdict_get_str(e, "contents"), ==, expect);
    qobject_unref(e);
    kvmsim_vm_stop(&vm);

    /* the dry run measures the same */
    qts = qtest_initf("-S -machine q35,confidential-guest-support=snp0"
                      " -object sev-snp-guest,id=snp0,kernel-hashes=on,"
                      "dry-run=on " SNP_CPU " -m 512 -bios %s -kernel %s"
                      " -append console=ttyS0", fw, kernel);
    plain = launch_digest(qts);
    g_assert_cmpstr(plain, ==, digest);
    qtest_quit(qts);
    g_free(plain);

    /* without -kernel: zero pages, another digest */
    qts = qtest_initf("-S -machine q35,confidential-guest-support=snp0"
                      " -object sev-snp-guest,id=snp0,kernel-hashes=on,"
                      "dry-run=on " SNP_CPU " -m 512 -bios %s", fw);
    e = hashes_entry(qts);
    g_assert_cmpstr(qdict_get_str(e, "page-type"), ==, "zero");
    g_assert_false(qdict_haskey(e, "contents"));
    qobject_unref(e);
    plain = launch_digest(qts);
    g_assert_cmpstr(plain, !=, digest);
    qtest_quit(qts);

out:
    unlink(fw);
    unlink(kernel);
    rmdir(dir);
}

/* ------------------------------------------------- dirty rate */

/* Wait until query-dirty-rate reports the measurement done */
static void wait_dirty_rate(QTestState *qts, const char *mode)
{
    for (;;) {
        QDict *resp = qtest_qmp(qts, "{'execute': 'query-dirty-rate'}");
        QDict *ret = qdict_get_qdict(resp, "return");
        bool done = !strcmp(qdict_get_str(ret, "status"), "measured");

        if (done) {
            g_assert_cmpstr(qdict_get_str(ret, "mode"), ==, mode);
        }
        qobject_unref(resp);
        if (done) {
            return;
        }
    }
}

/*
 * calc-dirty-rate in every mode on an SNP guest: dirty-bitmap starts
 * dirty logging on guest RAM, whose guest_memfd slots KVM can neither
 * log nor change; QEMU must not re-issue them (which KVM refuses, and
 * QEMU aborted on).  dirty-ring is not enabled and is refused.  QEMU
 * stays up, the VM running, and the simulator saw no broken rule.
 */
static void test_dirty_rate(void)
{
    static const char *const modes[] = { "page-sampling", "dirty-bitmap" };
    g_autofree char *fw = firmware(images[0]);
    g_autofree char *args = NULL;
    g_autofree char *v = NULL;
    QDict *resp;
    KvmSimVM vm;
    size_t i;

    if (!fw) {
        return;
    }
    args = g_strdup_printf("-object sev-snp-guest,id=snp0 -m 512 -bios %s",
                           fw);
    if (!sim_start(&vm, 2, args)) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(modes); i++) {
        resp = qtest_qmp(vm.qts, "{'execute': 'calc-dirty-rate', 'arguments':"
                         " {'calc-time': 1, 'mode': %s}}", modes[i]);
        g_assert_true(qdict_haskey(resp, "return"));
        qobject_unref(resp);
        wait_dirty_rate(vm.qts, modes[i]);
        assert_running(vm.qts);
    }
    resp = qtest_qmp(vm.qts, "{'execute': 'calc-dirty-rate', 'arguments':"
                     " {'calc-time': 1, 'mode': 'dirty-ring'}}");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"), ==,
                    "mode dirty-ring is not enabled, use other method"
                    " instead.");
    qobject_unref(resp);
    assert_running(vm.qts);
    v = kvmsim_request(vm.ctl, "query violations");
    g_assert_cmpstr(v, ==, "{\"ok\":true,\"violations\":[]}");
    kvmsim_vm_stop(&vm);
}

int main(int argc, char **argv)
{
    static const int smp[] = { 1, 4, 8 };
    static const int model_smp[] = { 1, 4, 8, 64 };
    size_t i, j, m;

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
    for (m = 0; m < ARRAY_SIZE(models); m++) {
        g_autofree char *lv = g_strdup_printf("/sev-snp-launch/%s/libvirt",
                                              models[m].name);

        for (i = 0; i < ARRAY_SIZE(images); i++) {
            for (j = 0; j < ARRAY_SIZE(model_smp); j++) {
                LaunchCase *lc = g_new0(LaunchCase, 1);
                g_autofree char *path = g_strdup_printf(
                    "/sev-snp-launch/%s/%s/smp-%d", models[m].name,
                    images[i], model_smp[j]);

                lc->image = images[i];
                lc->smp = model_smp[j];
                lc->cpu = models[m].name;
                lc->same_signature = models[m].same_signature;
                qtest_add_data_func_full(path, lc, test_launch, g_free);
            }
        }
        qtest_add_data_func(lv, models[m].name, test_libvirt);
    }
    qtest_add_data_func("/sev-snp-launch/libvirt", NULL, test_libvirt);
    qtest_add_func("/sev-snp-launch/kernel-hashes", test_kernel_hashes);
    qtest_add_func("/sev-snp-launch/reset", test_reset);
    qtest_add_func("/sev-snp-launch/dirty-rate", test_dirty_rate);
    qtest_add_func("/sev-snp-launch/update-retried", test_update_retried);
    qtest_add_func("/sev-snp-launch/cpuid-mem-encrypt",
                   test_cpuid_mem_encrypt);
    qtest_add_func("/sev-snp-launch/guest-errors", test_guest_errors);
    return g_test_run();
}
