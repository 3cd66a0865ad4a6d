/*
 * QTest: the AMD EPYC CPU models against upstream QEMU's
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * Upstream QEMU 10.0.2's binary ($QSNP_UPSTREAM_QEMU, fetched by
 * "scripts/qsnp upstream") is the reference: for every AMD EPYC model
 * and version,
 *
 *  - definitions: both binaries offer the same EPYC models, aliases and
 *    "-cpu help" descriptions;
 *  - expansion: query-cpu-model-expansion (full, TCG) gives the same
 *    value for every property both binaries have; a property only
 *    upstream has is off or one of the non-model properties listed in
 *    upstream_only[];
 *  - cpuid-tcg: a guest executing CPUID under TCG (a 64 KiB firmware
 *    that executes CPUID for a list of leaves and writes the registers to
 *    the debug console) sees the same signature, brand string, levels,
 *    cache and topology leaves with both binaries (upstream with the
 *    machine type pc-q35-7.2, ours with q35, its alias), at three
 *    topologies.  The feature registers are left out there: TCG emulates
 *    different features in 7.2 and 10.0;
 *  - kvm: QEMU launches an SEV-SNP guest with the model under the kvm-sim
 *    simulator; the CPUID it hands KVM (KVM_SET_CPUID2, read back from
 *    the simulator) has, feature by feature, the features of upstream's
 *    expansion that the simulated host supports (with KVM's defaults
 *    for kvmclock, x2apic, svm, monitor... applied), and the signature,
 *    brand string, cache and topology leaves upstream's guest sees;
 *  - kvm-upstream: when upstream QEMU starts under the simulator, both
 *    binaries hand KVM the same CPUID entries for the model (without
 *    SEV-SNP: upstream checks cbitpos against the real host's CPUID).
 *
 * Both "vendor" and the expansion are pinned to AuthenticAMD: under KVM,
 * QEMU takes the vendor of the CPU it runs on (an Intel machine here),
 * which a preloaded simulator cannot change.
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#include "libqtest.h"
#include "qapi/error.h"
#include "qapi/qmp/qbool.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qjson.h"
#include "qapi/qmp/qlist.h"
#include "qapi/qmp/qnum.h"
#include "qapi/qmp/qstring.h"
#include "qemu/bswap.h"
#include "../kvm-sim/kvm-sim-client.h"

/* Every AMD EPYC model version of upstream QEMU 10.0 */
static const char *const models[] = {
    "EPYC-v1", "EPYC-v2", "EPYC-v3", "EPYC-v4",
    "EPYC-Rome-v1", "EPYC-Rome-v2", "EPYC-Rome-v3", "EPYC-Rome-v4",
    "EPYC-Milan-v1", "EPYC-Milan-v2",
    "EPYC-Genoa-v1",
};

/* The topologies of the CPUID comparisons */
static const char *const topologies[] = {
    "1", "8,sockets=1,cores=4,threads=2", "64,sockets=2,cores=16,threads=2",
};

/*
 * Properties of upstream QEMU 10.0 that 7.2 does not have and that are
 * not off in its expansions of these models: none is a CPUID feature of
 * a model.  x-l1-cache-per-thread and x-amd-topoext-features-only are
 * compatibility properties of 10.0's newest machine types (off with
 * pc-q35-7.2, as the cpuid-tcg cases check: the caches and topology
 * leaves are the same), the others describe the topology or a feature
 * family these models do not have.
 */
static const char *const upstream_only[] = {
    "x-l1-cache-per-thread", "x-amd-topoext-features-only",
    "guest-phys-bits", "module-id", "avx10-version", NULL
};

/* Properties of 7.2 that 10.0 no longer has (off in every model) */
static const char *const ours_only[] = {
    "kvm-no-smi-migration", NULL
};

/*
 * The properties KVM sets for every named CPU model, and TCG's (vme
 * off): the only differences between the expansion of a model under
 * KVM and under TCG.  With svm off, the SVM features (CPUID 0x8000000A
 * EDX) are off too.
 */
static const struct {
    const char *name;
    bool kvm;
} accel_defaults[] = {
    { "kvmclock", true }, { "kvm-nopiodelay", true },
    { "kvm-asyncpf", true }, { "kvm-steal-time", true },
    { "kvm-pv-eoi", true }, { "kvmclock-stable-bit", true },
    { "x2apic", true }, { "kvm-msi-ext-dest-id", false },
    { "acpi", false }, { "monitor", false }, { "svm", false },
    { "vme", true },
    { "npt", false }, { "nrip-save", false }, { "svme-addr-chk", false },
    { "vnmi", false },
};

enum { EAX, EBX, ECX, EDX };

typedef struct Feature {
    const char *name;
    uint32_t leaf, subleaf;
    int reg, bit;
} Feature;

/*
 * The CPUID bit of every feature these models (or KVM's defaults) turn
 * on, from the x86 CPUID documentation (AMD APM volume 3 appendix E,
 * Linux arch/x86/include/asm/cpufeatures.h) and KVM's paravirtual CPUID
 * (Linux Documentation/virt/kvm/x86/cpuid.rst).  The registers named
 * here are compared bit for bit: a bit set by QEMU that no feature
 * explains fails the test.
 */
static const Feature features[] = {
    { "pni", 0x1, 0, ECX, 0 },
    { "pclmulqdq", 0x1, 0, ECX, 1 },
    { "monitor", 0x1, 0, ECX, 3 },
    { "ssse3", 0x1, 0, ECX, 9 },
    { "fma", 0x1, 0, ECX, 12 },
    { "cx16", 0x1, 0, ECX, 13 },
    { "pcid", 0x1, 0, ECX, 17 },
    { "sse4.1", 0x1, 0, ECX, 19 },
    { "sse4.2", 0x1, 0, ECX, 20 },
    { "x2apic", 0x1, 0, ECX, 21 },
    { "movbe", 0x1, 0, ECX, 22 },
    { "popcnt", 0x1, 0, ECX, 23 },
    { "aes", 0x1, 0, ECX, 25 },
    { "xsave", 0x1, 0, ECX, 26 },
    { "avx", 0x1, 0, ECX, 28 },
    { "f16c", 0x1, 0, ECX, 29 },
    { "rdrand", 0x1, 0, ECX, 30 },
    { "hypervisor", 0x1, 0, ECX, 31 },
    { "fpu", 0x1, 0, EDX, 0 },
    { "vme", 0x1, 0, EDX, 1 },
    { "de", 0x1, 0, EDX, 2 },
    { "pse", 0x1, 0, EDX, 3 },
    { "tsc", 0x1, 0, EDX, 4 },
    { "msr", 0x1, 0, EDX, 5 },
    { "pae", 0x1, 0, EDX, 6 },
    { "mce", 0x1, 0, EDX, 7 },
    { "cx8", 0x1, 0, EDX, 8 },
    { "apic", 0x1, 0, EDX, 9 },
    { "sep", 0x1, 0, EDX, 11 },
    { "mtrr", 0x1, 0, EDX, 12 },
    { "pge", 0x1, 0, EDX, 13 },
    { "mca", 0x1, 0, EDX, 14 },
    { "cmov", 0x1, 0, EDX, 15 },
    { "pat", 0x1, 0, EDX, 16 },
    { "pse36", 0x1, 0, EDX, 17 },
    { "clflush", 0x1, 0, EDX, 19 },
    { "mmx", 0x1, 0, EDX, 23 },
    { "fxsr", 0x1, 0, EDX, 24 },
    { "sse", 0x1, 0, EDX, 25 },
    { "sse2", 0x1, 0, EDX, 26 },
    { "arat", 0x6, 0, EAX, 2 },
    { "fsgsbase", 0x7, 0, EBX, 0 },
    { "bmi1", 0x7, 0, EBX, 3 },
    { "avx2", 0x7, 0, EBX, 5 },
    { "smep", 0x7, 0, EBX, 7 },
    { "bmi2", 0x7, 0, EBX, 8 },
    { "erms", 0x7, 0, EBX, 9 },
    { "invpcid", 0x7, 0, EBX, 10 },
    { "avx512f", 0x7, 0, EBX, 16 },
    { "avx512dq", 0x7, 0, EBX, 17 },
    { "rdseed", 0x7, 0, EBX, 18 },
    { "adx", 0x7, 0, EBX, 19 },
    { "smap", 0x7, 0, EBX, 20 },
    { "avx512ifma", 0x7, 0, EBX, 21 },
    { "clflushopt", 0x7, 0, EBX, 23 },
    { "clwb", 0x7, 0, EBX, 24 },
    { "avx512cd", 0x7, 0, EBX, 28 },
    { "sha-ni", 0x7, 0, EBX, 29 },
    { "avx512bw", 0x7, 0, EBX, 30 },
    { "avx512vl", 0x7, 0, EBX, 31 },
    { "avx512vbmi", 0x7, 0, ECX, 1 },
    { "umip", 0x7, 0, ECX, 2 },
    { "pku", 0x7, 0, ECX, 3 },
    { "avx512vbmi2", 0x7, 0, ECX, 6 },
    { "gfni", 0x7, 0, ECX, 8 },
    { "vaes", 0x7, 0, ECX, 9 },
    { "vpclmulqdq", 0x7, 0, ECX, 10 },
    { "avx512vnni", 0x7, 0, ECX, 11 },
    { "avx512bitalg", 0x7, 0, ECX, 12 },
    { "avx512-vpopcntdq", 0x7, 0, ECX, 14 },
    { "la57", 0x7, 0, ECX, 16 },
    { "rdpid", 0x7, 0, ECX, 22 },
    { "fsrm", 0x7, 0, EDX, 4 },
    { "avx512-bf16", 0x7, 1, EAX, 5 },
    { "xsaveopt", 0xd, 1, EAX, 0 },
    { "xsavec", 0xd, 1, EAX, 1 },
    { "xgetbv1", 0xd, 1, EAX, 2 },
    { "xsaves", 0xd, 1, EAX, 3 },
    { "kvmclock", 0x40000001, 0, EAX, 0 },
    { "kvm-nopiodelay", 0x40000001, 0, EAX, 1 },
    { "kvmclock", 0x40000001, 0, EAX, 3 },
    { "kvm-asyncpf", 0x40000001, 0, EAX, 4 },
    { "kvm-steal-time", 0x40000001, 0, EAX, 5 },
    { "kvm-pv-eoi", 0x40000001, 0, EAX, 6 },
    { "kvmclock-stable-bit", 0x40000001, 0, EAX, 24 },
    { "lahf-lm", 0x80000001, 0, ECX, 0 },
    { "svm", 0x80000001, 0, ECX, 2 },
    { "cr8legacy", 0x80000001, 0, ECX, 4 },
    { "abm", 0x80000001, 0, ECX, 5 },
    { "sse4a", 0x80000001, 0, ECX, 6 },
    { "misalignsse", 0x80000001, 0, ECX, 7 },
    { "3dnowprefetch", 0x80000001, 0, ECX, 8 },
    { "osvw", 0x80000001, 0, ECX, 9 },
    { "topoext", 0x80000001, 0, ECX, 22 },
    { "perfctr-core", 0x80000001, 0, ECX, 23 },
    { "syscall", 0x80000001, 0, EDX, 11 },
    { "nx", 0x80000001, 0, EDX, 20 },
    { "mmxext", 0x80000001, 0, EDX, 22 },
    { "fxsr-opt", 0x80000001, 0, EDX, 25 },
    { "pdpe1gb", 0x80000001, 0, EDX, 26 },
    { "rdtscp", 0x80000001, 0, EDX, 27 },
    { "lm", 0x80000001, 0, EDX, 29 },
    { "clzero", 0x80000008, 0, EBX, 0 },
    { "xsaveerptr", 0x80000008, 0, EBX, 2 },
    { "wbnoinvd", 0x80000008, 0, EBX, 9 },
    { "ibpb", 0x80000008, 0, EBX, 12 },
    { "ibrs", 0x80000008, 0, EBX, 14 },
    { "amd-stibp", 0x80000008, 0, EBX, 15 },
    { "stibp-always-on", 0x80000008, 0, EBX, 17 },
    { "amd-ssbd", 0x80000008, 0, EBX, 24 },
    { "amd-psfd", 0x80000008, 0, EBX, 28 },
    { "npt", 0x8000000a, 0, EDX, 0 },
    { "nrip-save", 0x8000000a, 0, EDX, 3 },
    { "vnmi", 0x8000000a, 0, EDX, 25 },
    { "svme-addr-chk", 0x8000000a, 0, EDX, 28 },
    { "no-nested-data-bp", 0x80000021, 0, EAX, 0 },
    { "lfence-always-serializing", 0x80000021, 0, EAX, 2 },
    { "null-sel-clr-base", 0x80000021, 0, EAX, 6 },
    { "auto-ibrs", 0x80000021, 0, EAX, 8 },
};

/*
 * CPUID 0x80000001 EDX repeats these bits of CPUID 1 EDX on AMD CPUs
 * (AMD APM volume 3, appendix E.4.2)
 */
static const int amd_alias_bits[] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 23, 24,
};

/* ------------------------------------------------------ QEMU helpers */

static const char *upstream(void)
{
    const char *up = g_getenv("QSNP_UPSTREAM_QEMU");

    if (!up || !g_file_test(up, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("QSNP_UPSTREAM_QEMU does not name upstream QEMU's"
                    " binary (scripts/qsnp test sets it)");
        return NULL;
    }
    return up;
}

/* Start @binary (ours when NULL) under libqtest */
static QTestState *start(const char *binary, const char *args)
{
    g_autofree char *ours = g_strdup(g_getenv("QTEST_QEMU_BINARY"));
    QTestState *qts;

    if (binary) {
        g_setenv("QTEST_QEMU_BINARY", binary, true);
    }
    qts = qtest_init(args);
    g_setenv("QTEST_QEMU_BINARY", ours, true);
    return qts;
}

/* The full expansion of @model: its properties (a new reference) */
static QDict *expansion(QTestState *qts, const char *model, bool amd)
{
    QDict *resp, *props;

    if (amd) {
        resp = qtest_qmp(qts, "{'execute': 'query-cpu-model-expansion',"
                         " 'arguments': {'type': 'full', 'model':"
                         " {'name': %s, 'props':"
                         " {'vendor': 'AuthenticAMD'}}}}", model);
    } else {
        resp = qtest_qmp(qts, "{'execute': 'query-cpu-model-expansion',"
                         " 'arguments': {'type': 'full', 'model':"
                         " {'name': %s}}}", model);
    }
    g_assert(qdict_haskey(resp, "return"));
    props = qdict_get_qdict(qdict_get_qdict(qdict_get_qdict(resp, "return"),
                                            "model"), "props");
    qobject_ref(props);
    qobject_unref(resp);
    return props;
}

static char *to_json(QObject *o)
{
    GString *s = qobject_to_json(o);

    return g_string_free(s, false);
}

/* ------------------------------------------------------ definitions */

/* query-cpu-definitions: the EPYC models, by name */
static QDict *epyc_definitions(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-cpu-definitions'}");
    QDict *defs = qdict_new();
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "return"), e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));
        const char *name = qdict_get_str(d, "name");

        if (g_str_has_prefix(name, "EPYC")) {
            qdict_put_obj(defs, name, QOBJECT(qobject_ref(d)));
        }
    }
    qobject_unref(resp);
    return defs;
}

/* "-cpu help": the description of each EPYC model, "NAME DESC" lines */
static char *cpu_help(const char *binary)
{
    const char *argv[] = { binary, "-cpu", "help", NULL };
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;
    GString *s = g_string_new(NULL);
    int status, i;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                               NULL, &status, NULL));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    lines = g_strsplit(out, "\n", -1);
    for (i = 0; lines[i]; i++) {
        /* 7.2 prints "x86 NAME  DESC", 10.0 "  NAME  DESC" */
        char *l = g_strstrip(lines[i]);
        g_auto(GStrv) w = NULL;

        if (g_str_has_prefix(l, "x86 ")) {
            l = g_strchug(l + 4);
        }
        if (!g_str_has_prefix(l, "EPYC")) {
            continue;
        }
        w = g_strsplit_set(l, " ", 2);
        g_string_append_printf(s, "%s %s\n", w[0],
                               w[1] ? g_strstrip(w[1]) : "");
    }
    return g_string_free(s, false);
}

static void test_definitions(void)
{
    static const char *const keys[] = {
        "alias-of", "static", "migration-safe", "deprecated", "typename",
    };
    const char *up = upstream();
    g_autofree char *help_ours = NULL;
    g_autofree char *help_up = NULL;
    QTestState *ours, *theirs;
    QDict *d_ours, *d_up;
    const QDictEntry *e;
    size_t i;

    if (!up) {
        return;
    }
    ours = start(NULL, "-machine none -accel tcg");
    theirs = start(up, "-machine none -accel tcg");
    d_ours = epyc_definitions(ours);
    d_up = epyc_definitions(theirs);
    for (e = qdict_first(d_up); e; e = qdict_next(d_up, e)) {
        QDict *a = qobject_to(QDict, qdict_entry_value(e));
        QDict *b = qdict_get_qdict(d_ours, qdict_entry_key(e));

        if (!b) {
            g_test_message("upstream has %s, QEMU does not",
                           qdict_entry_key(e));
        }
        g_assert_nonnull(b);
        for (i = 0; i < ARRAY_SIZE(keys); i++) {
            QObject *x = qdict_get(a, keys[i]), *y = qdict_get(b, keys[i]);

            if (!(x ? y && qobject_is_equal(x, y) : !y)) {
                g_test_message("%s: %s differs", qdict_entry_key(e),
                               keys[i]);
                g_assert_not_reached();
            }
        }
    }
    g_assert_cmpint(qdict_size(d_ours), ==, qdict_size(d_up));
    qobject_unref(d_ours);
    qobject_unref(d_up);
    qtest_quit(ours);
    qtest_quit(theirs);

    help_ours = cpu_help(g_getenv("QTEST_QEMU_BINARY"));
    help_up = cpu_help(up);
    g_assert_cmpstr(help_ours, ==, help_up);
}

/* ------------------------------------------------------ expansion */

/*
 * Every property both have is equal; the others are off, or in the
 * lists of properties only one of the binaries has
 */
static void check_same_model(const char *model, QDict *ours, QDict *up)
{
    const QDictEntry *e;

    for (e = qdict_first(up); e; e = qdict_next(up, e)) {
        const char *k = qdict_entry_key(e);
        QObject *v = qdict_entry_value(e);
        QObject *o = qdict_get(ours, k);

        if (o) {
            if (!qobject_is_equal(o, v)) {
                g_autofree char *a = to_json(o);
                g_autofree char *b = to_json(v);

                g_test_message("%s: %s is %s, upstream %s", model, k, a, b);
                g_assert_not_reached();
            }
        } else if (qobject_type(v) != QTYPE_QBOOL || qbool_get_bool(
                       qobject_to(QBool, v))) {
            if (!g_strv_contains(upstream_only, k)) {
                g_test_message("%s: upstream's %s, which QEMU lacks, is set",
                               model, k);
                g_assert_not_reached();
            }
        }
    }
    for (e = qdict_first(ours); e; e = qdict_next(ours, e)) {
        const char *k = qdict_entry_key(e);

        if (!qdict_haskey(up, k)) {
            g_assert_true(g_strv_contains(ours_only, k));
            g_assert_false(qdict_get_bool(ours, k));
        }
    }
}

static void test_expansion(const void *data)
{
    const char *model = data;
    const char *up = upstream();
    QTestState *ours, *theirs;
    QDict *p_ours, *p_up;

    if (!up) {
        return;
    }
    ours = start(NULL, "-machine none -accel tcg");
    theirs = start(up, "-machine none -accel tcg");
    p_ours = expansion(ours, model, false);
    p_up = expansion(theirs, model, false);
    check_same_model(model, p_ours, p_up);
    qobject_unref(p_ours);
    qobject_unref(p_up);
    qtest_quit(ours);
    qtest_quit(theirs);
}

/* ------------------------------------------------------ guest CPUID */

typedef struct Leaf {
    uint32_t leaf, subleaf;
    uint32_t r[4];
} Leaf;

/*
 * Real-mode code, started by a jump at the reset vector: for each
 * (EAX, ECX) pair of the table at 0x100 up to EAX = 0xffffffff, execute
 * CPUID and write EAX, EBX, ECX, EDX (16 bytes, little-endian) to the
 * debug console (port 0xe9); then write 0 to isa-debug-exit (port 0xf4).
 */
static const uint8_t cpuid_code[] = {
    0xfa,                           /* cli */
    0xbe, 0x00, 0x01,               /* mov $0x100, %si */
    0x2e, 0x66, 0x8b, 0x04,         /* 1: mov %cs:(%si), %eax */
    0x2e, 0x66, 0x8b, 0x4c, 0x04,   /* mov %cs:4(%si), %ecx */
    0x66, 0x83, 0xf8, 0xff,         /* cmp $-1, %eax */
    0x74, 0x27,                     /* je 2f */
    0x0f, 0xa2,                     /* cpuid */
    0x66, 0xa3, 0x00, 0x05,         /* mov %eax, 0x500 */
    0x66, 0x89, 0x1e, 0x04, 0x05,   /* mov %ebx, 0x504 */
    0x66, 0x89, 0x0e, 0x08, 0x05,   /* mov %ecx, 0x508 */
    0x66, 0x89, 0x16, 0x0c, 0x05,   /* mov %edx, 0x50c */
    0x56,                           /* push %si */
    0xbe, 0x00, 0x05,               /* mov $0x500, %si */
    0xb9, 0x10, 0x00,               /* mov $16, %cx */
    0xba, 0xe9, 0x00,               /* mov $0xe9, %dx */
    0xf3, 0x6e,                     /* rep outsb */
    0x5e,                           /* pop %si */
    0x83, 0xc6, 0x08,               /* add $8, %si */
    0xeb, 0xca,                     /* jmp 1b */
    0xb0, 0x00,                     /* 2: mov $0, %al */
    0xe6, 0xf4,                     /* out %al, $0xf4 */
    0xf4,                           /* 3: hlt */
    0xeb, 0xfd,                     /* jmp 3b */
};

#define CPUID_IMAGE_SIZE    0x10000
#define CPUID_TABLE         0x100

/* The leaves the guest reads: basic, hypervisor and extended ranges */
static GArray *cpuid_leaves(void)
{
    GArray *a = g_array_new(false, true, sizeof(Leaf));
    uint32_t f, s, subs;

    for (f = 0; f <= 0x80000028; f++) {
        if (f == 0x21) {
            f = 0x80000000;
        }
        subs = f == 0xd ? 64 : (f == 4 || f == 7 || f == 0xb ||
                                f == 0x8000001d) ? 8 : 1;
        for (s = 0; s < subs; s++) {
            Leaf l = { .leaf = f, .subleaf = s };
            g_array_append_val(a, l);
        }
    }
    return a;
}

static char *cpuid_image(const char *dir, GArray *leaves)
{
    g_autofree uint8_t *img = g_malloc0(CPUID_IMAGE_SIZE);
    char *path = g_build_filename(dir, "cpuid.bin", NULL);
    size_t off = CPUID_TABLE;
    guint i;

    memcpy(img, cpuid_code, sizeof(cpuid_code));
    for (i = 0; i < leaves->len; i++, off += 8) {
        const Leaf *l = &g_array_index(leaves, Leaf, i);

        stl_le_p(img + off, l->leaf);
        stl_le_p(img + off + 4, l->subleaf);
    }
    stl_le_p(img + off, 0xffffffff);
    g_assert_cmpuint(off + 8, <, CPUID_IMAGE_SIZE - 16);
    /* jmp rel16 from the reset vector (offset 0xfff0) to offset 0 */
    img[0xfff0] = 0xe9;
    stw_le_p(img + 0xfff1, 0x10000 - 0xfff3);
    g_assert_true(g_file_set_contents(path, (char *)img, CPUID_IMAGE_SIZE,
                                      NULL));
    return path;
}

/* What a guest of @binary with @cpu and @smp reads with CPUID under TCG */
static GArray *guest_cpuid(const char *binary, const char *machine,
                           const char *cpu, const char *smp)
{
    g_autofree char *dir = g_dir_make_tmp("epyc-cpuid-XXXXXX", NULL);
    g_autofree char *out = g_build_filename(dir, "out", NULL);
    g_autofree char *chardev = g_strdup_printf("file,id=c,path=%s", out);
    g_autofree char *img = NULL;
    g_autofree char *data = NULL;
    GArray *leaves = cpuid_leaves();
    gsize len;
    int status;
    guint i;

    img = cpuid_image(dir, leaves);
    {
        const char *argv[] = {
            binary, "-machine", machine, "-accel", "tcg", "-cpu", cpu,
            "-smp", smp, "-m", "16", "-bios", img, "-nodefaults",
            "-display", "none", "-chardev", chardev,
            "-device", "isa-debugcon,chardev=c",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", NULL
        };

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                                   NULL, NULL, &status, NULL));
    }
    /* isa-debug-exit: exit status (0 << 1) | 1 */
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    g_assert_true(g_file_get_contents(out, &data, &len, NULL));
    g_assert_cmpuint(len, ==, leaves->len * 16);
    for (i = 0; i < leaves->len; i++) {
        Leaf *l = &g_array_index(leaves, Leaf, i);
        int r;

        for (r = 0; r < 4; r++) {
            l->r[r] = ldl_le_p(data + i * 16 + r * 4);
        }
    }
    unlink(out);
    unlink(img);
    rmdir(dir);
    return leaves;
}

static const Leaf *find_leaf(GArray *a, uint32_t leaf, uint32_t subleaf)
{
    guint i;

    for (i = 0; i < a->len; i++) {
        const Leaf *l = &g_array_index(a, Leaf, i);

        if (l->leaf == leaf && l->subleaf == subleaf) {
            return l;
        }
    }
    return NULL;
}

/* Whether @l is within the ranges its CPUID leaf 0 and 0x80000000 give */
static bool in_range(GArray *a, const Leaf *l)
{
    uint32_t max = find_leaf(a, l->leaf & 0x80000000, 0)->r[EAX];

    return l->leaf >= 0x40000000 && l->leaf < 0x80000000 ? false :
           l->leaf <= max;
}

/* Whether register @r of @leaf holds features (compared by name) */
static bool feature_register(uint32_t leaf, uint32_t subleaf, int r)
{
    size_t i;

    if (leaf == 0xd) {
        return true;        /* XSAVE: follows the features' components */
    }
    for (i = 0; i < ARRAY_SIZE(features); i++) {
        if (features[i].leaf == leaf && features[i].subleaf == subleaf &&
            features[i].reg == r) {
            return true;
        }
    }
    return false;
}

static void test_cpuid_tcg(const void *data)
{
    const char *model = data;
    const char *up = upstream();
    size_t t;

    if (!up) {
        return;
    }
    for (t = 0; t < ARRAY_SIZE(topologies); t++) {
        GArray *ours = guest_cpuid(g_getenv("QTEST_QEMU_BINARY"), "q35",
                                   model, topologies[t]);
        GArray *theirs = guest_cpuid(up, "pc-q35-7.2", model, topologies[t]);
        guint i;
        int r;

        for (i = 0; i < theirs->len; i++) {
            const Leaf *u = &g_array_index(theirs, Leaf, i);
            const Leaf *o = &g_array_index(ours, Leaf, i);

            if (!in_range(theirs, u)) {
                continue;
            }
            for (r = 0; r < 4; r++) {
                if (feature_register(u->leaf, u->subleaf, r) ||
                    o->r[r] == u->r[r]) {
                    continue;
                }
                g_test_message("%s -smp %s: CPUID 0x%x.%u register %d is"
                               " 0x%08x, upstream 0x%08x", model,
                               topologies[t], u->leaf, u->subleaf, r,
                               o->r[r], u->r[r]);
                g_assert_not_reached();
            }
        }
        g_array_free(ours, true);
        g_array_free(theirs, true);
    }
}

/* ------------------------------------------------------ KVM, simulated */

/* The entries of a simulator "query cpuid"-style reply */
static GArray *sim_cpuid(KvmSimClient *ctl, const char *request)
{
    g_autofree char *reply = kvmsim_request(ctl, "%s", request);
    QDict *d = qobject_to(QDict, qobject_from_json(reply, &error_abort));
    GArray *a = g_array_new(false, true, sizeof(Leaf));
    QListEntry *e;

    g_assert_true(qdict_get_bool(d, "ok"));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(d, "entries"), e) {
        QDict *x = qobject_to(QDict, qlist_entry_obj(e));
        Leaf l = {
            .leaf = qdict_get_int(x, "function"),
            /* KVM_CPUID_FLAG_SIGNIFCANT_INDEX */
            .subleaf = qdict_get_int(x, "flags") & 1 ?
                       qdict_get_int(x, "index") : 0,
            .r = { qdict_get_int(x, "eax"), qdict_get_int(x, "ebx"),
                   qdict_get_int(x, "ecx"), qdict_get_int(x, "edx") },
        };
        g_array_append_val(a, l);
    }
    qobject_unref(d);
    return a;
}

static uint32_t reg_of(GArray *a, uint32_t leaf, uint32_t subleaf, int r)
{
    const Leaf *l = find_leaf(a, leaf, subleaf);

    return l ? l->r[r] : 0;
}

/*
 * The bits of a register the (simulated) host lets QEMU set: those of
 * KVM_GET_SUPPORTED_CPUID, and those QEMU 7.2 always allows
 * (kvm_arch_get_supported_cpuid(): mtrr, pat, mce, mca, hypervisor,
 * arat, topoext, and the AMD aliases of CPUID 1 EDX)
 */
static uint32_t host_bits(GArray *supported, uint32_t leaf, uint32_t subleaf,
                          int r)
{
    uint32_t bits = reg_of(supported, leaf, subleaf, r);
    size_t i;

    if (leaf == 1 && r == EDX) {
        bits |= 1u << 7 | 1u << 12 | 1u << 14 | 1u << 16;
    }
    if (leaf == 1 && r == ECX) {
        bits |= 1u << 31;
    }
    if (leaf == 6 && r == EAX) {
        bits |= 1u << 2;
    }
    if (leaf == 0x80000001 && r == ECX) {
        bits |= 1u << 22;
    }
    if (leaf == 0x80000001 && r == EDX) {
        for (i = 0; i < ARRAY_SIZE(amd_alias_bits); i++) {
            bits |= reg_of(supported, 1, 0, EDX) &
                    (1u << amd_alias_bits[i]);
        }
    }
    return bits;
}

static bool prop_on(QDict *props, const char *name)
{
    QObject *v = qdict_get(props, name);

    g_assert_nonnull(v);
    return qbool_get_bool(qobject_to(QBool, v));
}

/*
 * The feature registers QEMU handed KVM: every bit is a feature on in
 * @props that the host supports (or one QEMU derives from the topology),
 * and every such feature is there
 */
static void check_kvm_features(const char *model, GArray *handed,
                               GArray *supported, QDict *props,
                               bool multithread)
{
    size_t i, j;

    for (i = 0; i < ARRAY_SIZE(features); i++) {
        const Feature *f = &features[i];
        uint32_t want = 0, got, host;
        bool seen = false;

        for (j = 0; j < i; j++) {
            seen |= features[j].leaf == f->leaf &&
                    features[j].subleaf == f->subleaf &&
                    features[j].reg == f->reg;
        }
        if (seen) {
            continue;           /* register done */
        }
        host = host_bits(supported, f->leaf, f->subleaf, f->reg);
        for (j = i; j < ARRAY_SIZE(features); j++) {
            const Feature *g = &features[j];

            if (g->leaf == f->leaf && g->subleaf == f->subleaf &&
                g->reg == f->reg && prop_on(props, g->name)) {
                want |= 1u << g->bit;
            }
        }
        if (f->leaf == 0x80000001 && f->reg == EDX) {
            for (j = 0; j < ARRAY_SIZE(features); j++) {
                size_t k;

                for (k = 0; k < ARRAY_SIZE(amd_alias_bits); k++) {
                    if (features[j].leaf == 1 && features[j].reg == EDX &&
                        features[j].bit == amd_alias_bits[k] &&
                        prop_on(props, features[j].name)) {
                        want |= 1u << features[j].bit;
                    }
                }
            }
        }
        want &= host;
        /* HT and CmpLegacy: more than one thread per package */
        if (multithread && f->leaf == 1 && f->reg == EDX) {
            want |= 1u << 28;
        }
        if (multithread && f->leaf == 0x80000001 && f->reg == ECX) {
            want |= 1u << 1;
        }
        got = reg_of(handed, f->leaf, f->subleaf, f->reg);
        if (got != want) {
            g_test_message("%s: CPUID 0x%x.%u register %d handed to KVM"
                           " is 0x%08x, the features give 0x%08x (host"
                           " 0x%08x)", model, f->leaf, f->subleaf, f->reg,
                           got, want, host);
            g_assert_not_reached();
        }
    }
}

/*
 * The expansion under KVM differs from upstream's under TCG only in the
 * accelerators' defaults
 */
static void check_kvm_expansion(const char *model, QDict *kvm, QDict *tcg)
{
    const QDictEntry *e;
    size_t i;

    for (e = qdict_first(tcg); e; e = qdict_next(tcg, e)) {
        const char *k = qdict_entry_key(e);
        QObject *o = qdict_get(kvm, k);
        g_autofree char *name = g_strdup(k);

        if (!o || qobject_is_equal(o, qdict_entry_value(e))) {
            continue;
        }
        if (!strcmp(k, "xlevel") || !strcmp(k, "min-xlevel")) {
            /* an SEV guest has the SEV leaf 0x8000001f */
            g_assert_cmpint(qdict_get_int(kvm, k), ==,
                            MAX(qdict_get_int(tcg, k), 0x8000001f));
            continue;
        }
        /* the defaults by either name: kvm_asyncpf is kvm-asyncpf */
        g_strdelimit(name, "_", '-');
        for (i = 0; i < ARRAY_SIZE(accel_defaults); i++) {
            if (!strcmp(name, accel_defaults[i].name)) {
                break;
            }
        }
        if (i == ARRAY_SIZE(accel_defaults)) {
            g_test_message("%s: %s differs under KVM", model, k);
            g_assert_not_reached();
        }
        g_assert_cmpint(qbool_get_bool(qobject_to(QBool, o)), ==,
                        accel_defaults[i].kvm);
    }
}

/*
 * The other leaves QEMU handed KVM are those upstream's guest reads under
 * TCG, but for what the accelerator, the SEV-SNP guest and the host's
 * features change: the hypervisor leaves, XSAVE (0xd), SVM (0x8000000a,
 * svm is off under KVM), the monitor leaf 5 (monitor is off), SEV
 * (0x8000001f, and the extended level it raises to 0x8000001f), the
 * linear address width of 0x80000008 (57 bits with la57).
 */
static void check_kvm_leaves(const char *model, GArray *handed,
                             GArray *theirs)
{
    guint i;
    int r;

    for (i = 0; i < handed->len; i++) {
        const Leaf *k = &g_array_index(handed, Leaf, i);
        const Leaf *u = find_leaf(theirs, k->leaf, k->subleaf);

        if ((k->leaf >= 0x40000000 && k->leaf < 0x80000000) ||
            k->leaf == 0xd || k->leaf == 5 || k->leaf == 0x8000000a ||
            k->leaf == 0x8000001f) {
            continue;
        }
        g_assert_nonnull(u);
        for (r = 0; r < 4; r++) {
            uint32_t want = u->r[r];

            if (feature_register(k->leaf, k->subleaf, r)) {
                continue;
            }
            if (k->leaf == 0x80000000 && r == EAX) {
                want = MAX(want, 0x8000001f);
            }
            if (k->leaf == 0x80000008 && r == EAX) {
                bool la57 = reg_of(handed, 7, 0, ECX) & (1u << 16);

                want = (want & ~0xff00) | (la57 ? 57 : 48) << 8;
            }
            if (k->r[r] != want) {
                g_test_message("%s: CPUID 0x%x.%u register %d handed to"
                               " KVM is 0x%08x, upstream's guest reads"
                               " 0x%08x", model, k->leaf, k->subleaf, r,
                               k->r[r], want);
                g_assert_not_reached();
            }
        }
    }
    /* and no leaf upstream's guest reads is missing */
    for (i = 0; i < theirs->len; i++) {
        const Leaf *u = &g_array_index(theirs, Leaf, i);
        const Leaf *k = find_leaf(handed, u->leaf, u->subleaf);
        bool zero = !u->r[0] && !u->r[1] && !u->r[2] && !u->r[3];

        if (!in_range(theirs, u) || k || zero || u->leaf == 0xd ||
            u->leaf == 5 || u->leaf == 0x8000000a || u->leaf == 0xb ||
            u->leaf == 4 || u->leaf == 7 || u->leaf == 0x8000001d) {
            /*
             * Leaves with subleaves are as many as QEMU enumerates for
             * KVM; the ones it hands are compared above
             */
            continue;
        }
        g_test_message("%s: CPUID 0x%x.%u is not handed to KVM", model,
                       u->leaf, u->subleaf);
        g_assert_not_reached();
    }
}

static void test_kvm(const void *data)
{
    const char *model = data;
    const char *smp = topologies[1];
    const char *up = upstream();
    g_autofree char *fw = NULL;
    g_autofree char *args = NULL;
    g_autofree char *v = NULL;
    GArray *handed, *supported, *theirs;
    QDict *p_kvm, *p_tcg;
    QTestState *qts;
    KvmSimVM vm;

    if (!up) {
        return;
    }
    fw = kvmsim_ovmf_image("OVMF-2022.11.fd", false);
    if (!fw) {
        g_test_skip("firmware image not fetched (scripts/qsnp test fetches"
                    " it into $QSNP_FIRMWARE_DIR)");
        return;
    }
    args = g_strdup_printf("-accel kvm -machine q35,confidential-guest-"
                           "support=snp0 -object sev-snp-guest,id=snp0"
                           " -cpu %s,vendor=AuthenticAMD -smp %s -m 512"
                           " -bios %s", model, smp, fw);
    if (!kvmsim_vm_start(&vm, args)) {
        return;
    }
    v = kvmsim_request(vm.ctl, "query violations");
    g_assert_cmpstr(v, ==, "{\"ok\":true,\"violations\":[]}");
    handed = sim_cpuid(vm.ctl, "query cpuid 0");
    supported = sim_cpuid(vm.ctl, "query supported-cpuid");
    p_kvm = expansion(vm.qts, model, true);
    kvmsim_vm_stop(&vm);

    qts = start(up, "-machine none -accel tcg");
    p_tcg = expansion(qts, model, false);
    qtest_quit(qts);
    theirs = guest_cpuid(up, "pc-q35-7.2", model, smp);

    /* the SEV-SNP CPUID page holds 64 entries */
    g_test_message("%s: %u CPUID entries", model, handed->len);
    g_assert_cmpuint(handed->len, <=, 64);
    check_kvm_expansion(model, p_kvm, p_tcg);
    check_kvm_features(model, handed, supported, p_kvm, true);
    check_kvm_leaves(model, handed, theirs);

    g_array_free(handed, true);
    g_array_free(supported, true);
    g_array_free(theirs, true);
    qobject_unref(p_kvm);
    qobject_unref(p_tcg);
}

/* Whether @binary starts with -accel kvm under the simulator */
static bool starts_under_sim(const char *binary)
{
    static const char qmp[] = "{\"execute\":\"qmp_capabilities\"}\n"
                              "{\"execute\":\"quit\"}\n";
    const char *argv[] = {
        binary, "-machine", "none", "-accel", "kvm", "-nodefaults",
        "-display", "none", "-qmp", "stdio", NULL
    };
    g_auto(GStrv) envp = g_environ_setenv(g_get_environ(), "LD_PRELOAD",
                                          g_getenv("KVMSIM_LIB"), true);
    GPid pid;
    int in, status;

    g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv, envp,
                                           G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_STDOUT_TO_DEV_NULL |
                                           G_SPAWN_STDERR_TO_DEV_NULL,
                                           NULL, NULL, &pid, &in, NULL, NULL,
                                           NULL));
    /* QEMU reads the commands, or has exited (EPIPE, ignored) */
    signal(SIGPIPE, SIG_IGN);
    if (write(in, qmp, strlen(qmp)) < 0) {
        /* it failed to start */
    }
    close(in);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_spawn_close_pid(pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* What @binary (ours when NULL) hands KVM for @model, under the simulator */
static GArray *handed_cpuid(const char *binary, const char *model,
                            const char *smp)
{
    g_autofree char *ours = g_strdup(g_getenv("QTEST_QEMU_BINARY"));
    g_autofree char *args = g_strdup_printf(
        "-machine pc-q35-7.2 -accel kvm -cpu %s,vendor=AuthenticAMD"
        " -smp %s -m 512", model, smp);
    GArray *a;
    KvmSimVM vm;

    if (binary) {
        g_setenv("QTEST_QEMU_BINARY", binary, true);
    }
    g_assert_true(kvmsim_vm_start(&vm, args));
    g_setenv("QTEST_QEMU_BINARY", ours, true);
    a = sim_cpuid(vm.ctl, "query cpuid 0");
    kvmsim_vm_stop(&vm);
    return a;
}

/*
 * Both binaries under the simulator: the same CPUID entries for KVM, but
 * for the all-zero last subleaf (63) of leaf 0xd that QEMU 7.2 adds
 */
static void test_kvm_upstream(const void *data)
{
    const char *model = data;
    const char *up = upstream();
    const char *lib = g_getenv("KVMSIM_LIB");
    size_t t;

    if (!up) {
        return;
    }
    if (!lib || !g_file_test(lib, G_FILE_TEST_EXISTS)) {
        g_test_skip("KVMSIM_LIB does not name the kvm-sim library");
        return;
    }
    if (!starts_under_sim(up)) {
        g_test_skip("upstream QEMU does not start under this simulator"
                    " (it needs KVM_CAP_X86_ROBUST_SINGLESTEP and"
                    " KVM_CAP_MCE)");
        return;
    }
    for (t = 0; t < 2; t++) {
        GArray *ours = handed_cpuid(NULL, model, topologies[t]);
        GArray *theirs = handed_cpuid(up, model, topologies[t]);
        guint i, n = 0;

        for (i = 0; i < ours->len; i++) {
            const Leaf *o = &g_array_index(ours, Leaf, i);
            const Leaf *u = find_leaf(theirs, o->leaf, o->subleaf);

            if (!u && o->leaf == 0xd && o->subleaf == 63 &&
                !o->r[0] && !o->r[1] && !o->r[2] && !o->r[3]) {
                continue;
            }
            if (!u || memcmp(u->r, o->r, sizeof(o->r))) {
                g_test_message("%s -smp %s: CPUID 0x%x.%u handed to KVM"
                               " differs from upstream's", model,
                               topologies[t], o->leaf, o->subleaf);
                g_assert_not_reached();
            }
            n++;
        }
        g_assert_cmpuint(n, ==, theirs->len);
        g_array_free(ours, true);
        g_array_free(theirs, true);
    }
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/epyc-models/definitions", test_definitions);
    for (i = 0; i < ARRAY_SIZE(models); i++) {
        g_autofree char *e = g_strdup_printf("/epyc-models/%s/expansion",
                                             models[i]);
        g_autofree char *c = g_strdup_printf("/epyc-models/%s/cpuid-tcg",
                                             models[i]);
        g_autofree char *k = g_strdup_printf("/epyc-models/%s/kvm",
                                             models[i]);

        qtest_add_data_func(e, models[i], test_expansion);
        qtest_add_data_func(c, models[i], test_cpuid_tcg);
        g_autofree char *u = g_strdup_printf("/epyc-models/%s/kvm-upstream",
                                             models[i]);

        qtest_add_data_func(k, models[i], test_kvm);
        qtest_add_data_func(u, models[i], test_kvm_upstream);
    }
    return g_test_run();
}
