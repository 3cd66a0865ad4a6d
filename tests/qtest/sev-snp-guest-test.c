/*
 * QTest for the sev-snp-guest object: its properties, their validation,
 * the JSON form libvirt uses, object-add, the checks made when KVM
 * starts (in-kernel irqchip, SMT, migration blocker), the firmware rules
 * and a failure injected at each launch command.
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"

#include <sys/wait.h>

#include "libqtest.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qjson.h"
#include "qapi/qmp/qnum.h"
#include "qemu/cutils.h"
#include "../kvm-sim/kvm-sim-client.h"

#define OBJ_PATH "/objects/snp0"

/* ------------------------------------------------------------ helpers */

/*
 * Expand @tmpl: each "@N" becomes the base64 encoding of N bytes (a
 * pattern that depends on N), so that the tests can name blob sizes.
 */
static char *expand(const char *tmpl)
{
    GString *out = g_string_new(NULL);
    const char *p = tmpl;

    while (*p) {
        if (*p == '@' && g_ascii_isdigit(p[1])) {
            const char *end;
            unsigned long n, i;
            g_autofree guchar *buf = NULL;
            g_autofree char *b64 = NULL;

            g_assert(qemu_strtoul(p + 1, &end, 10, &n) == 0);
            buf = g_malloc(n ? n : 1);
            for (i = 0; i < n; i++) {
                buf[i] = (guchar)(i * 7 + n);
            }
            b64 = g_base64_encode(buf, n);
            g_string_append(out, b64);
            p = end;
        } else {
            g_string_append_c(out, *p++);
        }
    }
    return g_string_free(out, false);
}

/*
 * The simulator of the KVM and SEV ABI (tests/kvm-sim), when it is built,
 * or NULL.
 */
static char *kvmsim_library(void)
{
    const char *env = g_getenv("KVMSIM_LIB");   /* set by meson */
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *dir = NULL;
    char *lib;

    if (env) {
        return g_strdup(env);
    }
    if (!qemu) {
        return NULL;
    }
    dir = g_path_get_dirname(qemu);
    lib = g_build_filename(dir, "tests", "kvm-sim", "libkvmsim.so", NULL);
    if (access(lib, R_OK) == 0) {
        return lib;
    }
    g_free(lib);
    return NULL;
}

/*
 * Run QEMU with @args and a QMP monitor on stdin that asks it to quit.
 * Returns the exit status (-1 if it did not exit normally) and its
 * standard error in @err.  @preload, if set, is put in LD_PRELOAD.
 */
static int run_qemu(const char *args, const char *preload, char **err)
{
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *cmd = NULL;
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) envp = g_get_environ();
    g_autoptr(GError) gerr = NULL;
    static const char qmp[] = "{\"execute\":\"qmp_capabilities\"}\n"
                              "{\"execute\":\"quit\"}\n";
    GString *out = g_string_new(NULL);
    GPid pid;
    int in_fd, err_fd, status;
    char buf[4096];
    ssize_t n;

    g_assert(qemu);
    cmd = g_strdup_printf("%s -display none -nodefaults -qmp stdio %s",
                          qemu, args);
    g_assert(g_shell_parse_argv(cmd, NULL, &argv, &gerr));
    if (preload) {
        envp = g_environ_setenv(envp, "LD_PRELOAD", preload, true);
    }
    g_assert(g_spawn_async_with_pipes(NULL, argv, envp,
                                      G_SPAWN_DO_NOT_REAP_CHILD |
                                      G_SPAWN_STDOUT_TO_DEV_NULL,
                                      NULL, NULL, &pid, &in_fd, NULL,
                                      &err_fd, &gerr));
    /* QEMU may have exited already: SIGPIPE is ignored (see main) */
    n = write(in_fd, qmp, strlen(qmp));
    (void)n;
    close(in_fd);
    while ((n = read(err_fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            g_assert(errno == EINTR);
            continue;
        }
        g_string_append_len(out, buf, n);
    }
    close(err_fd);
    g_assert(waitpid(pid, &status, 0) == pid);
    g_spawn_close_pid(pid);
    *err = g_string_free(out, false);
    if (g_test_verbose()) {
        g_test_message("%s", cmd);
        g_test_message("exit status %d, stderr: %s", status, *err);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) {
        g_error("expected \"%s\" in: %s", needle, haystack);
    }
}

/* ------------------------------------------------------ the properties */

typedef enum { T_UINT, T_STR, T_BOOL } PropType;

typedef struct PropValue {
    const char *name;
    PropType type;
    uint64_t num;       /* T_UINT, T_BOOL */
    const char *str;    /* T_STR, expanded with expand() */
} PropValue;

static void check_props(QTestState *qts, const char *path,
                        const PropValue *props, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const PropValue *p = &props[i];
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments':"
                               " { 'path': %s, 'property': %s } }",
                               path, p->name);
        QNum *ret;

        g_assert(qdict_haskey(rsp, "return"));
        switch (p->type) {
        case T_UINT:
            ret = qobject_to(QNum, qdict_get(rsp, "return"));
            g_assert_cmpuint(qnum_get_uint(ret), ==, p->num);
            break;
        case T_BOOL:
            g_assert_cmpint(qdict_get_bool(rsp, "return"), ==, p->num);
            break;
        case T_STR: {
            g_autofree char *want = expand(p->str);

            g_assert_cmpstr(qdict_get_str(rsp, "return"), ==, want);
            break;
        }
        }
        qobject_unref(rsp);
    }
}

static const PropValue snp_defaults[] = {
    { "sev-device", T_STR, .str = "/dev/sev" },
    { "policy", T_UINT, 0x30000 },
    { "cbitpos", T_UINT, 0 },
    { "reduced-phys-bits", T_UINT, 1 },
    { "guest-visible-workarounds", T_STR, .str = "" },
    { "id-block", T_STR, .str = "" },
    { "id-auth", T_STR, .str = "" },
    { "host-data", T_STR, .str = "" },
    { "author-key-enabled", T_BOOL, false },
    { "vcek-disabled", T_BOOL, false },
    { "kernel-hashes", T_BOOL, false },
};

/* Every property set; expand()ed by the JSON and key=value forms */
static const PropValue snp_full[] = {
    { "sev-device", T_STR, .str = "/dev/null" },
    { "policy", T_UINT, 0x1130001 },
    { "cbitpos", T_UINT, 51 },
    { "reduced-phys-bits", T_UINT, 5 },
    { "guest-visible-workarounds", T_STR, .str = "@16" },
    { "id-block", T_STR, .str = "@96" },
    { "id-auth", T_STR, .str = "@4096" },
    { "host-data", T_STR, .str = "@32" },
    { "author-key-enabled", T_BOOL, true },
    { "vcek-disabled", T_BOOL, true },
    { "kernel-hashes", T_BOOL, true },
};

/* The members of @props as JSON ("name": value, ...) */
static char *props_json(const PropValue *props, size_t n)
{
    GString *s = g_string_new(NULL);
    size_t i;

    for (i = 0; i < n; i++) {
        const PropValue *p = &props[i];

        g_string_append_printf(s, ",\"%s\":", p->name);
        switch (p->type) {
        case T_UINT:
            g_string_append_printf(s, "%" PRIu64, p->num);
            break;
        case T_BOOL:
            g_string_append(s, p->num ? "true" : "false");
            break;
        case T_STR: {
            g_autofree char *v = expand(p->str);

            g_string_append_printf(s, "\"%s\"", v);
            break;
        }
        }
    }
    return g_string_free(s, false);
}

static void test_defaults(void)
{
    QTestState *qts = qtest_init("-machine none"
                                 " -object sev-snp-guest,id=snp0");

    check_props(qts, OBJ_PATH, snp_defaults, ARRAY_SIZE(snp_defaults));
    qtest_quit(qts);
}

/* libvirt's form: -object '{"qom-type":"sev-snp-guest",...}' */
static void test_json(void)
{
    g_autofree char *members = props_json(snp_full, ARRAY_SIZE(snp_full));
    g_autofree char *args = g_strdup_printf(
        "-machine none -object '{\"qom-type\":\"sev-snp-guest\","
        "\"id\":\"snp0\"%s}'", members);
    QTestState *qts = qtest_init(args);

    check_props(qts, OBJ_PATH, snp_full, ARRAY_SIZE(snp_full));
    qtest_quit(qts);
}

/* The shape libvirt 10.5+ passes, as read from its test data */
static void test_json_libvirt(void)
{
    g_autofree char *args = expand(
        "-machine none -object '{\"qom-type\":\"sev-snp-guest\","
        "\"id\":\"lsec0\",\"cbitpos\":47,\"reduced-phys-bits\":1,"
        "\"policy\":196608,\"guest-visible-workarounds\":\"@16\","
        "\"id-block\":\"@96\",\"id-auth\":\"@4096\","
        "\"host-data\":\"@32\",\"author-key-enabled\":true,"
        "\"vcek-disabled\":true}'");
    static const PropValue want[] = {
        { "cbitpos", T_UINT, 47 },
        { "reduced-phys-bits", T_UINT, 1 },
        { "policy", T_UINT, 196608 },
        { "guest-visible-workarounds", T_STR, .str = "@16" },
        { "id-block", T_STR, .str = "@96" },
        { "id-auth", T_STR, .str = "@4096" },
        { "host-data", T_STR, .str = "@32" },
        { "author-key-enabled", T_BOOL, true },
        { "vcek-disabled", T_BOOL, true },
        { "kernel-hashes", T_BOOL, false },
        { "sev-device", T_STR, .str = "/dev/sev" },
    };
    QTestState *qts = qtest_init(args);

    check_props(qts, "/objects/lsec0", want, ARRAY_SIZE(want));
    qtest_quit(qts);
}

static void test_keyval(void)
{
    g_autofree char *args = expand(
        "-machine none -object sev-snp-guest,id=snp0,sev-device=/dev/null,"
        "policy=0x1130001,cbitpos=51,reduced-phys-bits=5,"
        "guest-visible-workarounds=@16,id-block=@96,id-auth=@4096,"
        "host-data=@32,author-key-enabled=on,vcek-disabled=on,"
        "kernel-hashes=on");
    QTestState *qts = qtest_init(args);

    check_props(qts, OBJ_PATH, snp_full, ARRAY_SIZE(snp_full));
    qtest_quit(qts);
}

/* ------------------------------------------------ the invalid values */

typedef struct InvalidCase {
    const char *members;    /* JSON members, expand()ed */
    const char *error;      /* a part of the error message */
} InvalidCase;

static const InvalidCase invalid_cases[] = {
    { "\"policy\":65536", "property 'policy' value 0x10000 clears bit 17" },
    { "\"policy\":0", "property 'policy' value 0x0 clears bit 17" },
    { "\"policy\":33751040", "property 'policy' value 0x2030000 sets"
      " reserved bits 0x2000000; bits 63:25 of the SEV-SNP guest policy"
      " must be zero" },
    { "\"policy\":18446744073709551615", "sets reserved bits"
      " 0xfffffffffe000000" },
    { "\"policy\":458752", "property 'policy' value 0x70000 sets bit 18"
      " (MIGRATE_MA, 0x40000): QEMU cannot provide a migration agent" },
    { "\"policy\":\"0x30000\"", "Parameter 'policy' expects uint64" },
    { "\"cbitpos\":31", "property 'cbitpos' value 31 is out of range: the"
      " C-bit position (a physical address bit) must be between 32 and 63" },
    { "\"cbitpos\":64", "property 'cbitpos' value 64 is out of range" },
    { "\"reduced-phys-bits\":0", "property 'reduced-phys-bits' value 0 is"
      " out of range: the number of physical address bits lost to memory"
      " encryption must be between 1 and 63" },
    { "\"reduced-phys-bits\":64", "property 'reduced-phys-bits' value 64 is"
      " out of range" },
    { "\"guest-visible-workarounds\":\"@15\"", "property"
      " 'guest-visible-workarounds' decodes to 15 bytes, it must decode to"
      " exactly 16 bytes" },
    { "\"guest-visible-workarounds\":\"@17\"", "decodes to 17 bytes" },
    { "\"guest-visible-workarounds\":\"\"", "property"
      " 'guest-visible-workarounds' decodes to 0 bytes" },
    { "\"id-block\":\"@95\",\"id-auth\":\"@4096\"", "property 'id-block'"
      " decodes to 95 bytes, it must decode to exactly 96 bytes" },
    { "\"id-block\":\"@96\",\"id-auth\":\"@4095\"", "property 'id-auth'"
      " decodes to 4095 bytes, it must decode to exactly 4096 bytes" },
    { "\"host-data\":\"@31\"", "property 'host-data' decodes to 31 bytes,"
      " it must decode to exactly 32 bytes" },
    { "\"host-data\":\"@33\"", "property 'host-data' decodes to 33 bytes" },
    { "\"host-data\":\"not*base64\"", "property 'host-data' is not valid"
      " base64" },
    { "\"id-auth\":\"@4096\"", "property 'id-auth' is set but 'id-block'"
      " is not" },
    { "\"id-block\":\"@96\"", "property 'id-block' is set but 'id-auth' is"
      " not" },
    { "\"author-key-enabled\":true", "property 'author-key-enabled' is on"
      " but 'id-auth' is not set" },
    { "\"author-key-enabled\":true,\"id-block\":\"@96\"",
      "property 'id-block' is set but 'id-auth' is not" },
    { "\"sev-device\":\"\"", "property 'sev-device' is empty" },
    { "\"bogus\":1", "Parameter 'bogus' is unexpected" },
};

/* On the command line (JSON form): QEMU exits with status 1 and says why */
static void test_invalid_cmdline(void)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
        g_autofree char *members = expand(invalid_cases[i].members);
        g_autofree char *args = g_strdup_printf(
            "-machine none -accel qtest -object '{\"qom-type\":"
            "\"sev-snp-guest\",\"id\":\"snp0\",%s}'", members);
        g_autofree char *err = NULL;

        g_assert_cmpint(run_qemu(args, NULL, &err), ==, 1);
        assert_contains(err, invalid_cases[i].error);
    }
}

/* A few in the key=value form: hexadecimal policy, blobs */
static void test_invalid_keyval(void)
{
    static const InvalidCase cases[] = {
        { "policy=0x10000", "property 'policy' value 0x10000 clears bit 17" },
        { "policy=0x1030000", "" }, /* bit 24: valid, see below */
        { "policy=0x2030000", "sets reserved bits 0x2000000" },
        { "host-data=@16", "property 'host-data' decodes to 16 bytes" },
        { "cbitpos=0", "property 'cbitpos' value 0 is out of range" },
        { "author-key-enabled=on", "'author-key-enabled' is on but"
          " 'id-auth' is not set" },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *opts = expand(cases[i].members);
        g_autofree char *args = g_strdup_printf(
            "-machine none -accel qtest -object sev-snp-guest,id=snp0,%s",
            opts);
        g_autofree char *err = NULL;
        int status = run_qemu(args, NULL, &err);

        if (!*cases[i].error) {
            g_assert_cmpint(status, ==, 0);
            g_assert_cmpstr(err, ==, "");
        } else {
            g_assert_cmpint(status, ==, 1);
            assert_contains(err, cases[i].error);
        }
    }
}

/* The debug policy bit is accepted, with a warning */
static void test_debug_warning(void)
{
    g_autofree char *err = NULL;

    g_assert_cmpint(run_qemu("-machine none -accel qtest"
                             " -object sev-snp-guest,id=snp0,policy=0xb0000",
                             NULL, &err), ==, 0);
    assert_contains(err, "warning: sev-snp-guest: property 'policy' value"
                    " 0xb0000 sets bit 19 (DEBUG)");
}

/* ------------------------------------------------------------- QMP */

/* object-add of an sev-snp-guest "snp0" with @members (",..." or "") */
static QDict *object_add(QTestState *qts, const char *members)
{
    g_autofree char *json = g_strdup_printf(
        "{\"qom-type\":\"sev-snp-guest\",\"id\":\"snp0\"%s}", members);
    QObject *args = qobject_from_json(json, &error_abort);

    return qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': %p }",
                     args);
}

static void test_object_add(void)
{
    QTestState *qts = qtest_init("-machine none");
    g_autofree char *members = props_json(snp_full, ARRAY_SIZE(snp_full));
    QDict *rsp;
    size_t i;

    /* Every invalid case is refused, and leaves no object behind */
    for (i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
        g_autofree char *m = expand(invalid_cases[i].members);
        g_autofree char *bad = g_strdup_printf(",%s", m);
        QDict *error;

        rsp = object_add(qts, bad);
        error = qdict_get_qdict(rsp, "error");
        g_assert(error);
        assert_contains(qdict_get_str(error, "desc"),
                        invalid_cases[i].error);
        qobject_unref(rsp);
    }

    rsp = object_add(qts, members);
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    check_props(qts, OBJ_PATH, snp_full, ARRAY_SIZE(snp_full));

    /* qom-set goes through the same checks */
    rsp = qtest_qmp(qts, "{ 'execute': 'qom-set', 'arguments':"
                    " { 'path': %s, 'property': 'policy', 'value': 1 } }",
                    OBJ_PATH);
    assert_contains(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"),
                    "property 'policy' value 0x1 clears bit 17");
    qobject_unref(rsp);
    check_props(qts, OBJ_PATH, snp_full, ARRAY_SIZE(snp_full));

    rsp = qtest_qmp(qts, "{ 'execute': 'object-del',"
                    " 'arguments': { 'id': 'snp0' } }");
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    qtest_quit(qts);
}

/* The sev-guest object is unchanged */
static void test_sev_guest(void)
{
    static const PropValue want[] = {
        { "sev-device", T_STR, .str = "/dev/sev" },
        { "policy", T_UINT, 1 },
        { "handle", T_UINT, 0 },
        { "cbitpos", T_UINT, 47 },
        { "reduced-phys-bits", T_UINT, 1 },
        { "kernel-hashes", T_BOOL, false },
    };
    QTestState *qts = qtest_init("-machine none -object sev-guest,id=sev0,"
                                 "cbitpos=47,reduced-phys-bits=1");
    g_autofree char *err = NULL;

    check_props(qts, "/objects/sev0", want, ARRAY_SIZE(want));
    qtest_quit(qts);

    /* Its schema still requires reduced-phys-bits */
    g_assert_cmpint(run_qemu("-machine none -accel qtest -object"
                             " '{\"qom-type\":\"sev-guest\",\"id\":\"sev0\"}'",
                             NULL, &err), ==, 1);
    assert_contains(err, "Parameter 'reduced-phys-bits' is missing");
}

/* Without KVM, the guest is refused (not run, and no abort) */
static void test_tcg_refused(void)
{
    g_autofree char *err = NULL;

    g_assert_cmpint(run_qemu("-machine none,confidential-guest-support=snp0"
                             " -accel tcg -object sev-snp-guest,id=snp0",
                             NULL, &err), ==, 1);
    assert_contains(err, "confidential-guest-support=snp0 (sev-snp-guest) is"
                    " not supported by the tcg accelerator");
}

/* ------------------------------------------- when KVM starts the guest */

/*
 * Run an SNP guest with KVM: the simulator when it is built, else the
 * host's /dev/kvm.  Returns false (the test skipped) without either.
 */
static bool run_kvm(const char *machine_opts, const char *extra,
                    int *status, char **err)
{
    g_autofree char *sim = kvmsim_library();
    g_autofree char *args = NULL;

    if (!sim && access("/dev/kvm", R_OK | W_OK)) {
        g_test_skip("neither the KVM simulator (tests/kvm-sim) nor"
                    " /dev/kvm is available");
        return false;
    }
    args = g_strdup_printf("-machine q35,confidential-guest-support=snp0%s"
                           " -accel kvm %s", machine_opts, extra);
    *status = run_qemu(args, sim, err);
    return true;
}

static void test_kernel_irqchip_off(void)
{
    g_autofree char *err = NULL;
    int status;

    if (!run_kvm(",kernel-irqchip=off", "-object sev-snp-guest,id=snp0",
                 &status, &err)) {
        return;
    }
    g_assert_cmpint(status, ==, 1);
    assert_contains(err, "SEV-SNP guests require in-kernel irqchip support");
    assert_contains(err, "Use kernel-irqchip=split or kernel-irqchip=on");
}

static void test_kernel_irqchip_split(void)
{
    g_autofree char *err = NULL;
    int status;

    if (!run_kvm(",kernel-irqchip=split", "-object sev-snp-guest,id=snp0",
                 &status, &err)) {
        return;
    }
    g_assert(!strstr(err, "irqchip"));
}

static void test_smt(void)
{
    g_autofree char *err = NULL;
    int status;

    if (!run_kvm("", "-smp 2,threads=2"
                 " -object sev-snp-guest,id=snp0,policy=0x20000",
                 &status, &err)) {
        return;
    }
    g_assert_cmpint(status, ==, 1);
    assert_contains(err, "sev-snp-guest 'snp0': policy 0x20000 clears bit 16"
                    " (SMT allowed) but -smp asks for 2 threads per core");
}

static void test_only_migratable(void)
{
    g_autofree char *err = NULL;
    int status;

    if (!run_kvm("", "-only-migratable -object sev-snp-guest,id=snp0",
                 &status, &err)) {
        return;
    }
    g_assert_cmpint(status, ==, 1);
    assert_contains(err, "sev-snp-guest 'snp0': an SEV-SNP guest cannot be"
                    " migrated");
}

/* ---------------------------------------------- firmware and launch */

/* The Debian OVMF image for the launch, or NULL (the test skipped) */
static char *ovmf_image(void)
{
    char *path = kvmsim_ovmf_image("OVMF-2022.11.fd", true);

    if (!path) {
        g_test_skip("no OVMF image");
    }
    return path;
}

/*
 * Launch with @fw_args and @env set; QEMU must fail saying @expect...,
 * and not @absent
 */
static void run_refused(const char *fw_args, const char *env,
                        const char *expect1, const char *expect2,
                        const char *absent)
{
    g_autofree char *err = NULL;
    g_autofree char *extra = g_strdup_printf("-object sev-snp-guest,id=snp0"
                                             " -m 512 %s", fw_args);
    g_auto(GStrv) kv = env ? g_strsplit(env, "=", 2) : NULL;
    int status;
    bool ran;

    if (kv) {
        g_setenv(kv[0], kv[1], true);
    }
    ran = run_kvm("", extra, &status, &err);
    if (kv) {
        g_unsetenv(kv[0]);
    }
    if (!ran) {
        return;
    }
    g_assert_cmpint(status, ==, 1);
    assert_contains(err, expect1);
    if (expect2) {
        assert_contains(err, expect2);
    }
    if (absent && strstr(err, absent)) {
        g_error("unexpected \"%s\" in: %s", absent, err);
    }
}

/*
 * A launch QEMU refuses: @args (each %1$s is the OVMF image) with
 * the environment variable @env (for the simulator) set.
 */
typedef struct RefusalCase {
    const char *path;
    const char *args;
    const char *env;
    const char *expect1, *expect2;
    const char *absent;
} RefusalCase;

#define BIOS "-bios %1$s"
#define FW_ERROR "firmware status 0x16 INVALID_PARAM"
/* A policy Linux 6.12 refuses at SNP_LAUNCH_START with EINVAL: bit 20 */
#define SINGLE_SOCKET "-object sev-snp-guest,id=ss0,policy=0x130000" \
                      " -machine confidential-guest-support=ss0 "

static const RefusalCase refusal_cases[] = {
    /* a firmware error at each command stops QEMU, naming both */
    { "fail/platform-status", BIOS, "KVMSIM_FAIL=SNP_PLATFORM_STATUS:0x16",
      "SNP_PLATFORM_STATUS on /dev/sev failed", FW_ERROR },
    { "fail/init2", BIOS, "KVMSIM_FAIL=KVM_SEV_INIT2:0x16",
      "KVM_SEV_INIT2 failed", FW_ERROR },
    { "fail/launch-start", BIOS, "KVMSIM_FAIL=KVM_SEV_SNP_LAUNCH_START:0x16",
      "SNP_LAUNCH_START failed", FW_ERROR },
    { "fail/launch-update", BIOS,
      "KVMSIM_FAIL=KVM_SEV_SNP_LAUNCH_UPDATE:0x16",
      "SNP_LAUNCH_UPDATE of firmware failed", FW_ERROR },
    /* the message says the errno the ioctl returned, and no other */
    { "fail/platform-status-errno", BIOS,
      "KVMSIM_FAIL=SNP_PLATFORM_STATUS:0x16:19",
      "SNP_PLATFORM_STATUS on /dev/sev failed: No such device (" FW_ERROR },
    { "fail/launch-update-errno", BIOS,
      "KVMSIM_FAIL=KVM_SEV_SNP_LAUNCH_UPDATE:0x16:12",
      "SNP_LAUNCH_UPDATE of firmware failed: Cannot allocate memory ("
      FW_ERROR },
    /* KVM asks for SNP_LAUNCH_UPDATE again: up to 100 times in a row */
    { "fail/launch-update-eagain", BIOS,
      "KVMSIM_FAIL=KVM_SEV_SNP_LAUNCH_UPDATE:0:11:101",
      "SNP_LAUNCH_UPDATE of firmware failed: Resource temporarily"
      " unavailable", "it failed 101 times in a row" },
    /* the policy hint comes with the EINVAL SNP_LAUNCH_START returned */
    { "launch-start-hint", SINGLE_SOCKET BIOS, NULL,
      "SNP_LAUNCH_START failed: Invalid argument",
      "KVM cannot enforce policy bit 20 (SINGLE_SOCKET)" },
    { "fail/launch-start-errno", SINGLE_SOCKET BIOS,
      "KVMSIM_FAIL=KVM_SEV_SNP_LAUNCH_START:0x16:16",
      "SNP_LAUNCH_START failed: Device or resource busy (" FW_ERROR, NULL,
      "policy bit 20" },
    { "fail/launch-update-vmsa", BIOS,
      "KVMSIM_FAIL=KVM_SEV_SNP_LAUNCH_UPDATE_VMSA:0x16",
      "SNP_LAUNCH_FINISH failed", FW_ERROR },
    { "fail/launch-finish", BIOS,
      "KVMSIM_FAIL=KVM_SEV_SNP_LAUNCH_FINISH:0x16",
      "SNP_LAUNCH_FINISH failed", FW_ERROR },
    /* CPUID entries the firmware refuses are reported one by one */
    { "cpuid-rejected", BIOS, "KVMSIM_CPUID_REJECT=1:2:80000000",
      "SNP_LAUNCH_UPDATE of CPUID failed",
      "CPUID leaf 0x1 subleaf 0x0: QEMU gave" },
    /* the simulated firmware implements ABI 1.55 */
    { "abi-too-old", "-object sev-snp-guest,id=abi0,policy=0x30138"
      " -machine confidential-guest-support=abi0 " BIOS, NULL,
      "policy 0x30138 asks for SEV-SNP firmware ABI 1.56 or later",
      "the firmware implements ABI 1.55" },
    { "pflash1", "-blockdev driver=file,filename=%1$s,node-name=fw0,"
      "read-only=on -blockdev driver=file,filename=%1$s,node-name=vars0,"
      "read-only=on -machine pflash0=fw0 -machine pflash1=vars0", NULL,
      "pflash1 (a UEFI variable store) cannot be used by an SEV-SNP guest",
      "no pflash1" },
    /* SeaBIOS has no SEV-ES reset block: the APs could not start */
    { "no-reset-block", "", NULL,
      "the firmware cannot start an SEV-SNP guest's APs",
      "use an OVMF build with SEV-ES/SEV-SNP support" },
};

static void test_refused(const void *opaque)
{
    const RefusalCase *rc = opaque;
    g_autofree char *fw = ovmf_image();
    g_autofree char *args = NULL;

    if (!fw) {
        return;
    }
    args = g_strdup_printf(rc->args, fw);
    run_refused(args, rc->env, rc->expect1, rc->expect2, rc->absent);
}

static void test_pflash_writable(void)
{
    g_autofree char *fw = ovmf_image();
    g_autofree char *tmp = NULL;
    g_autofree char *args = NULL;
    g_autofree gchar *data = NULL;
    gsize len;
    int fd;

    if (!fw) {
        return;
    }
    /* a writable copy: the image itself may be read-only */
    g_assert_true(g_file_get_contents(fw, &data, &len, NULL));
    fd = g_file_open_tmp("snp-pflash-XXXXXX", &tmp, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_assert_true(g_file_set_contents(tmp, data, len, NULL));
    args = g_strdup_printf("-blockdev driver=file,filename=%s,node-name=fw0"
                           " -machine pflash0=fw0", tmp);
    run_refused(args, NULL, "pflash0 must be read-only for an SEV-SNP guest",
                "read-only=on", NULL);
    unlink(tmp);
}

/*
 * kernel-hashes=on with a kernel and Debian's OVMF, which has no kernel
 * hashes area: refused when the firmware is loaded (the kernel, here
 * the firmware file itself, is never read), naming the firmware file,
 * for -bios and pflash0 alike, and for SEV-ES guests too.
 */
static void test_kernel_hashes_refused(void)
{
    g_autofree char *fw = ovmf_image();
    static const struct {
        const char *object;     /* %u: the host's C-bit position */
        const char *firmware;   /* %1$s: the image */
        const char *lacks;
    } cases[] = {
        { "-object sev-snp-guest,id=kh0,kernel-hashes=on", "-bios %1$s",
          "its SEV metadata has no SNP_KERNEL_HASHES section" },
        { "-object sev-snp-guest,id=kh0,kernel-hashes=on",
          "-blockdev driver=file,filename=%1$s,node-name=fw0,read-only=on"
          " -machine pflash0=fw0",
          "its SEV metadata has no SNP_KERNEL_HASHES section" },
        { "-object sev-guest,id=kh0,policy=0x5,cbitpos=%u,"
          "reduced-phys-bits=1,kernel-hashes=on", "-bios %1$s",
          "its SEV hash table area is empty (base 0x0, size 0x0" },
    };
    size_t i;

    if (!fw) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *obj = g_strdup_printf(cases[i].object,
                                               kvmsim_host_cbitpos());
        g_autofree char *fw_args = g_strdup_printf(cases[i].firmware, fw);
        g_autofree char *extra = g_strdup_printf(
            "%s -machine confidential-guest-support=kh0 -m 512 %s -kernel %s",
            obj, fw_args, fw);
        g_autofree char *expect = g_strdup_printf(
            "kernel-hashes=on, but the firmware %s has no kernel hashes"
            " area: %s", fw, cases[i].lacks);
        g_autofree char *err = NULL;
        g_auto(GStrv) lines = NULL;
        int status;

        if (!run_kvm("", extra, &status, &err)) {
            return;
        }
        g_assert_cmpint(status, ==, 1);
        assert_contains(err, expect);
        assert_contains(err, "edk2's AmdSev OVMF build"
                        " (OvmfPkg/AmdSev/AmdSevX64.dsc) has one");
        /* refused first: before the kernel was read, nothing else said */
        lines = g_strsplit(g_strstrip(err), "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 1);
    }
}

/*
 * The dry run with KVM: refused before KVM is opened, so the simulator
 * sees no call at all (its log is written from the first one on)
 */
static void test_dry_run_kvm(void)
{
    g_autofree char *sim = kvmsim_library();
    g_autofree char *log = NULL;
    g_autofree char *err = NULL;
    g_autofree gchar *calls = NULL;
    int fd;

    if (!sim) {
        g_test_skip("the KVM simulator (tests/kvm-sim) is not built");
        return;
    }
    fd = g_file_open_tmp("snp-dry-run-XXXXXX.log", &log, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_setenv("KVMSIM_LOG", log, true);
    g_assert_cmpint(run_qemu("-machine q35,confidential-guest-support=dry0"
                             " -accel kvm -object sev-snp-guest,id=dry0,"
                             "dry-run=on", sim, &err), ==, 1);
    g_unsetenv("KVMSIM_LOG");
    assert_contains(err, "sev-snp-guest 'dry0': property 'dry-run' is on");
    assert_contains(err, "use it with -accel tcg");
    /* the accelerator was not even started */
    g_assert_null(strstr(err, "failed to initialize kvm"));
    g_assert_true(g_file_get_contents(log, &calls, NULL, NULL));
    g_assert_cmpstr(calls, ==, "");
    unlink(log);
}

/* The dry run: measured, then refused to run */
static void test_dry_run_tcg(void)
{
    g_autofree char *fw = ovmf_image();
    g_autofree char *err = NULL;
    g_autofree char *args = NULL;

    if (!fw) {
        return;
    }
    args = g_strdup_printf("-machine q35,confidential-guest-support=snp0"
                           " -accel tcg -object sev-snp-guest,id=snp0,"
                           "dry-run=on -m 512 -bios %s", fw);
    g_assert_cmpint(run_qemu(args, NULL, &err), ==, 0);
    assert_contains(err, "dry-run=on measures the launch only; the guest"
                    " does not run");
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);

    qtest_add_func("/sev-snp-guest/defaults", test_defaults);
    qtest_add_func("/sev-snp-guest/json", test_json);
    qtest_add_func("/sev-snp-guest/json-libvirt", test_json_libvirt);
    qtest_add_func("/sev-snp-guest/keyval", test_keyval);
    qtest_add_func("/sev-snp-guest/invalid/cmdline", test_invalid_cmdline);
    qtest_add_func("/sev-snp-guest/invalid/keyval", test_invalid_keyval);
    qtest_add_func("/sev-snp-guest/debug-warning", test_debug_warning);
    qtest_add_func("/sev-snp-guest/object-add", test_object_add);
    qtest_add_func("/sev-snp-guest/sev-guest-unchanged", test_sev_guest);
    qtest_add_func("/sev-snp-guest/tcg-refused", test_tcg_refused);
    qtest_add_func("/sev-snp-guest/kvm/kernel-irqchip-off",
                   test_kernel_irqchip_off);
    qtest_add_func("/sev-snp-guest/kvm/kernel-irqchip-split",
                   test_kernel_irqchip_split);
    qtest_add_func("/sev-snp-guest/kvm/smt", test_smt);
    qtest_add_func("/sev-snp-guest/kvm/only-migratable",
                   test_only_migratable);
    for (i = 0; i < ARRAY_SIZE(refusal_cases); i++) {
        g_autofree char *path = g_strdup_printf("/sev-snp-guest/kvm/%s",
                                                refusal_cases[i].path);

        qtest_add_data_func(path, &refusal_cases[i], test_refused);
    }
    qtest_add_func("/sev-snp-guest/kvm/pflash0-writable",
                   test_pflash_writable);
    qtest_add_func("/sev-snp-guest/kernel-hashes-refused",
                   test_kernel_hashes_refused);
    qtest_add_func("/sev-snp-guest/kvm/dry-run", test_dry_run_kvm);
    qtest_add_func("/sev-snp-guest/dry-run", test_dry_run_tcg);

    return g_test_run();
}
