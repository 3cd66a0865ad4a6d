/*
 * QTest: every QMP command against a running SEV-SNP guest under kvm-sim
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * QEMU runs an SEV-SNP guest (Debian's OVMF) under the simulator of the
 * KVM ABI (tests/kvm-sim).  The test sends every command of the binary's
 * own query-qmp-schema without arguments, then a list of commands with
 * arguments that reach guest memory, vCPU state, dirty logging, memory
 * hotplug, snapshots and migration.  After each, QEMU must either keep
 * running (it answers query-status) or have ended cleanly: with a message
 * on stderr and exit status 0, never by a signal (an abort included).  The
 * simulator must have seen no call the kernel refuses, in particular no
 * register access to the vCPUs, whose state the launch protected (rule
 * When a command ends QEMU, the next one runs in a new QEMU.
 *
 * QEMU is driven over a second QMP monitor of its own: libqtest's client
 * aborts the test when QEMU closes the connection, and a command ending
 * QEMU must be seen as an outcome, not as a broken test.
 */

#include "qemu/osdep.h"

#include <sys/socket.h>
#include <sys/un.h>

#include "libqtest.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qjson.h"
#include "qapi/qmp/qlist.h"
#include "qapi/qmp/qstring.h"
#include "../kvm-sim/kvm-sim-client.h"

/*
 * Not sent: "quit" ends QEMU by design, with nothing to check but that it
 * quits, which every qtest_quit() checks.
 */
static const char *const not_sent[] = { "quit" };

/*
 * Commands that end QEMU cleanly when sent without arguments to a running
 * SEV-SNP guest: a reset of a guest whose launch cannot be done again
 * becomes a shutdown ("cpus are not resettable, terminating").
 */
static const char *const ending[] = { "system_reset" };

typedef struct Sweep {
    KvmSimVM vm;
    char *fw;
    char *dir;
    int qmp;                /* our QMP connection, -1 once QEMU ended */
    GString *in;            /* what was read and not yet parsed */
    GQueue *events;         /* events read, not yet asked for */
    int boot;               /* QEMU processes started */
    char *err_path;         /* stderr of the current QEMU */
    char *log_path;         /* the simulator's JSON log of it */
    unsigned sent, errors, ended;
    GString *ended_by;
} Sweep;

/* ------------------------------------------------------------ QMP */

static void unref_dict(gpointer d)
{
    qobject_unref((QDict *)d);
}

/* The next line QEMU sent, or NULL when it closed the connection */
static char *qmp_line(Sweep *s)
{
    char buf[65536];

    for (;;) {
        char *nl = memchr(s->in->str, '\n', s->in->len);
        ssize_t n;

        if (nl) {
            char *line = g_strndup(s->in->str, nl - s->in->str);

            g_string_erase(s->in, 0, nl - s->in->str + 1);
            return line;
        }
        n = recv(s->qmp, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return NULL;
        }
        g_string_append_len(s->in, buf, n);
    }
}

/* The next message QEMU sent, or NULL when it closed the connection */
static QDict *qmp_message(Sweep *s)
{
    g_autofree char *line = qmp_line(s);
    QDict *d;

    if (!line) {
        close(s->qmp);
        s->qmp = -1;
        return NULL;
    }
    d = qobject_to(QDict, qobject_from_json(line, &error_abort));
    g_assert_nonnull(d);
    return d;
}

/*
 * Send @json; the response, or NULL when QEMU ended first.  Events that
 * come meanwhile are kept for qmp_event().
 */
static QDict *qmp_exchange(Sweep *s, const char *json)
{
    g_autofree char *msg = g_strconcat(json, "\n", NULL);

    if (s->qmp < 0 || send(s->qmp, msg, strlen(msg), MSG_NOSIGNAL) < 0) {
        return NULL;
    }
    for (;;) {
        QDict *d = qmp_message(s);

        if (!d || !qdict_haskey(d, "event")) {
            return d;
        }
        g_queue_push_tail(s->events, d);
    }
}

/* The next event named @name (kept or still to come), or NULL */
static QDict *qmp_event(Sweep *s, const char *name)
{
    for (;;) {
        QDict *d = g_queue_pop_head(s->events);

        if (!d && s->qmp >= 0) {
            d = qmp_message(s);
        }
        if (!d) {
            return NULL;
        }
        if (qdict_haskey(d, "event") &&
            !strcmp(qdict_get_str(d, "event"), name)) {
            return d;
        }
        qobject_unref(d);
    }
}

static QDict *qmp(Sweep *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static QDict *qmp(Sweep *s, const char *fmt, ...)
{
    g_autofree char *json = NULL;
    va_list ap;

    va_start(ap, fmt);
    json = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return qmp_exchange(s, json);
}

/* The run state, or NULL when QEMU ended */
static char *run_state(Sweep *s)
{
    QDict *r = qmp(s, "{\"execute\":\"query-status\"}");
    char *st;

    if (!r) {
        return NULL;
    }
    st = g_strdup(qdict_get_str(qdict_get_qdict(r, "return"), "status"));
    qobject_unref(r);
    return st;
}

/* ------------------------------------------------------ QEMU and sim */

static void boot(Sweep *s)
{
    g_autofree char *sock = NULL;
    g_autofree char *args = NULL;
    g_autofree char *greeting = NULL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    QDict *r;

    s->boot++;
    g_free(s->err_path);
    g_free(s->log_path);
    s->err_path = g_strdup_printf("%s/stderr-%d", s->dir, s->boot);
    s->log_path = g_strdup_printf("%s/sim-%d.log", s->dir, s->boot);
    sock = g_strdup_printf("%s/qmp-%d", s->dir, s->boot);
    args = g_strdup_printf("-accel kvm -machine q35,confidential-guest-"
                           "support=snp0 -object sev-snp-guest,id=snp0"
                           " -cpu EPYC -smp 2 -m 512,slots=2,maxmem=2G"
                           " -bios %s"
                           " -qmp unix:%s,server=on,wait=off 2>%s",
                           s->fw, sock, s->err_path);
    g_setenv("KVMSIM_LOG", s->log_path, true);
    g_assert_true(kvmsim_vm_start(&s->vm, args));
    g_unsetenv("KVMSIM_LOG");

    g_assert_cmpuint(strlen(sock), <, sizeof(sa.sun_path));
    strcpy(sa.sun_path, sock);
    s->qmp = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(s->qmp, >=, 0);
    g_assert_cmpint(connect(s->qmp, (struct sockaddr *)&sa, sizeof(sa)),
                    ==, 0);
    g_string_truncate(s->in, 0);
    while (!g_queue_is_empty(s->events)) {
        unref_dict(g_queue_pop_head(s->events));
    }
    greeting = qmp_line(s);
    g_assert_nonnull(strstr(greeting, "\"QMP\""));
    r = qmp(s, "{\"execute\":\"qmp_capabilities\"}");
    g_assert_true(qdict_haskey(r, "return"));
    qobject_unref(r);
    unlink(sock);
}

/* The simulator's violations as a string ("[]" when none) */
static char *sim_violations(Sweep *s)
{
    g_autofree char *r = kvmsim_request(s->vm.ctl, "query violations");
    const char *v;

    g_assert_nonnull(r);
    v = strstr(r, "\"violations\":");
    g_assert_nonnull(v);
    v += strlen("\"violations\":");
    return g_strndup(v, strlen(v) - 1);
}

/* The violations in the simulator's log of a QEMU that ended */
static char *logged_violations(Sweep *s)
{
    g_autofree char *log = NULL;
    g_auto(GStrv) lines = NULL;
    GString *v = g_string_new("[");
    int i;

    if (g_file_get_contents(s->log_path, &log, NULL, NULL)) {
        lines = g_strsplit(log, "\n", -1);
        for (i = 0; lines[i]; i++) {
            if (strstr(lines[i], "\"violation\"")) {
                g_string_append_printf(v, "%s%s", v->len > 1 ? "," : "",
                                       lines[i]);
            }
        }
    }
    g_string_append_c(v, ']');
    return g_string_free(v, false);
}

/*
 * QEMU ended (or we end it): it must have exited with status 0, not by a
 * signal (qtest_quit() aborts the test otherwise), and, when it ended by
 * itself, said why on stderr.
 */
static void end_qemu(Sweep *s, const char *cause)
{
    bool by_itself = s->qmp < 0;
    g_autofree char *err = NULL;
    g_autofree char *viol = NULL;

    if (by_itself) {
        viol = logged_violations(s);
    } else {
        viol = sim_violations(s);
        close(s->qmp);
        s->qmp = -1;
    }
    /* the simulator dies with QEMU: close our end first */
    kvmsim_vm_stop(&s->vm);
    g_assert_true(g_file_get_contents(s->err_path, &err, NULL, NULL));
    if (by_itself) {
        g_strchomp(err);
        g_test_message("%s ended QEMU: exit status 0, stderr \"%s\"", cause,
                       strrchr(err, '\n') ? strrchr(err, '\n') + 1 : err);
        g_assert_cmpstr(err, !=, "");
    }
    if (strcmp(viol, "[]")) {
        g_error("after %s the simulator saw calls the kernel refuses: %s",
                cause, viol);
    }
    unlink(s->err_path);
    unlink(s->log_path);
}

/*
 * After @cause: QEMU answers and the simulator saw nothing the kernel
 * refuses, or QEMU ended cleanly, and a new one is started.  Returns
 * false in that case.  A paused guest is continued.
 */
static bool check_after(Sweep *s, const char *cause)
{
    g_autofree char *st = run_state(s);
    g_autofree char *viol = NULL;

    if (!st) {
        s->ended++;
        g_string_append_printf(s->ended_by, "%s%s", s->ended_by->len ? " " :
                               "", cause);
        end_qemu(s, cause);
        boot(s);
        return false;
    }
    viol = sim_violations(s);
    if (strcmp(viol, "[]")) {
        g_error("after %s the simulator saw calls the kernel refuses: %s",
                cause, viol);
    }
    if (!strcmp(st, "paused")) {
        QDict *r = qmp(s, "{\"execute\":\"cont\"}");

        g_assert_nonnull(r);
        qobject_unref(r);
        g_free(st);
        st = run_state(s);
    }
    g_assert_cmpstr(st, ==, "running");
    return true;
}

static bool in_list(const char *name, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!strcmp(name, list[i])) {
            return true;
        }
    }
    return false;
}

static bool sweep_init(Sweep *s)
{
    const char *lib = g_getenv("KVMSIM_LIB");

    memset(s, 0, sizeof(*s));
    s->qmp = -1;
    if (!lib || !g_file_test(lib, G_FILE_TEST_EXISTS)) {
        g_test_skip("KVMSIM_LIB does not name the kvm-sim library");
        return false;
    }
    s->fw = kvmsim_ovmf_image("OVMF-2022.11.fd", true);
    if (!s->fw) {
        g_test_skip("no OVMF image");
        return false;
    }
    s->dir = g_dir_make_tmp("snp-qmp-sweep-XXXXXX", NULL);
    g_assert_nonnull(s->dir);
    s->in = g_string_new(NULL);
    s->events = g_queue_new();
    s->ended_by = g_string_new(NULL);
    boot(s);
    return true;
}

static void sweep_finish(Sweep *s)
{
    end_qemu(s, "the end of the test");
    g_test_message("%u commands sent, %u answered with an error, %u ended"
                   " QEMU (%s), %d QEMU processes", s->sent, s->errors,
                   s->ended, s->ended_by->str, s->boot);
    rmdir(s->dir);
    g_free(s->dir);
    g_free(s->fw);
    g_free(s->err_path);
    g_free(s->log_path);
    g_string_free(s->in, true);
    g_queue_free_full(s->events, unref_dict);
    g_string_free(s->ended_by, true);
}

/* Send @json (for @cause); the response, or NULL if QEMU ended */
static QDict *send_command(Sweep *s, const char *cause, const char *json)
{
    QDict *r = qmp_exchange(s, json);

    s->sent++;
    if (r && qdict_haskey(r, "error")) {
        s->errors++;
    }
    if (g_test_verbose()) {
        g_autoptr(GString) out = r ? qobject_to_json(QOBJECT(r)) : NULL;

        g_test_message("%s: %.200s", cause, out ? out->str : "(no answer)");
    }
    return r;
}

/* ---------------------------------------------- without arguments */

static void test_no_arguments(void)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *want = NULL;
    QListEntry *e;
    QDict *r;
    Sweep s;
    guint i;

    if (!sweep_init(&s)) {
        return;
    }
    r = qmp(&s, "{\"execute\":\"query-qmp-schema\"}");
    g_assert_nonnull(r);
    QLIST_FOREACH_ENTRY(qdict_get_qlist(r, "return"), e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(d, "meta-type"), "command")) {
            g_ptr_array_add(names, g_strdup(qdict_get_str(d, "name")));
        }
    }
    qobject_unref(r);
    g_assert_cmpuint(names->len, >, 100);

    for (i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *json = NULL;

        if (in_list(name, not_sent, ARRAY_SIZE(not_sent))) {
            continue;
        }
        json = g_strdup_printf("{\"execute\":\"%s\"}", name);
        qobject_unref(send_command(&s, name, json));
        check_after(&s, name);
    }
    g_test_message("without arguments: %u of %u commands sent (not sent:"
                   " quit)", s.sent, names->len);
    /* the commands that ended QEMU are those that must */
    want = g_strjoinv(" ", (char **)ending);
    g_assert_cmpstr(s.ended_by->str, ==, want);
    sweep_finish(&s);
}

/* ------------------------------------------------- with arguments */

typedef struct Curated {
    const char *json;       /* %1$s: the test's directory */
    const char *expect;     /* in the response, or NULL */
    bool ends;              /* ends QEMU by design */
} Curated;

#define HMP(cmd) "{\"execute\":\"human-monitor-command\",\"arguments\":" \
                 "{\"command-line\":\"" cmd "\"}}"
#define PROTECTED "the register state is protected by the guest's memory" \
                  " encryption"

static const Curated curated[] = {
    /* guest memory, by physical and by virtual address */
    { "{\"execute\":\"pmemsave\",\"arguments\":{\"val\":0,\"size\":4096,"
      "\"filename\":\"%1$s/pmemsave\"}}", "\"return\"" },
    { "{\"execute\":\"memsave\",\"arguments\":{\"val\":0,\"size\":4096,"
      "\"filename\":\"%1$s/memsave\"}}", "\"return\"" },
    { "{\"execute\":\"memsave\",\"arguments\":{\"val\":4294963200,"
      "\"size\":4096,\"cpu-index\":1,\"filename\":\"%1$s/memsave\"}}",
      "\"return\"" },
    { "{\"execute\":\"dump-guest-memory\",\"arguments\":{\"paging\":false,"
      "\"protocol\":\"file:%1$s/dump\"}}", "\"return\"" },
    { "{\"execute\":\"dump-guest-memory\",\"arguments\":{\"paging\":true,"
      "\"protocol\":\"file:%1$s/dump\"}}", "\"return\"" },
    { "{\"execute\":\"dump-guest-memory\",\"arguments\":{\"paging\":false,"
      "\"format\":\"kdump-zlib\",\"protocol\":\"file:%1$s/dump\"}}", NULL },
    /* vCPU state, through HMP */
    { HMP("info registers"), PROTECTED },
    { HMP("info registers -a"), PROTECTED },
    { HMP("x /4x 0"), "0000000000000000:" },
    { HMP("x /4i $pc"), NULL },
    { HMP("xp /4x 0xfffffff0"), "00000000fffffff0:" },
    { HMP("gpa2hva 0"), "Host virtual address for 0x0 (pc.ram)" },
    { HMP("gpa2hpa 0"), NULL },
    { HMP("gva2gpa 0"), NULL },
    { HMP("print $pc"), NULL },
    { HMP("info tlb"), NULL },
    { HMP("info mem"), NULL },
    { HMP("info lapic"), NULL },
    { HMP("info cpus"), "CPU #1" },
    { HMP("info sev"), NULL },
    { HMP("nmi"), NULL },
    { HMP("savevm snap0"), "Error" },
    /* the object, once launched */
    { "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/objects/snp0\","
      "\"property\":\"policy\"}}", "196608" },
    { "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/objects/snp0\","
      "\"property\":\"policy\",\"value\":196608}}",
      "property 'policy' cannot change once the guest is launched" },
    { "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/objects/snp0\","
      "\"property\":\"reduced-phys-bits\",\"value\":5}}",
      "cannot change once the guest is launched" },
    { "{\"execute\":\"object-del\",\"arguments\":{\"id\":\"snp0\"}}",
      "\"error\"" },
    /* memory hotplug: private memory for the new DIMM */
    { "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":"
      "\"memory-backend-ram\",\"id\":\"mem1\",\"size\":134217728}}",
      "\"return\"" },
    { "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"pc-dimm\","
      "\"id\":\"dimm1\",\"memdev\":\"mem1\"}}", "\"return\"" },
    { "{\"execute\":\"query-memory-devices\"}", "dimm1" },
    { "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"dimm1\"}}",
      NULL },
    /* snapshots and migration are blocked */
    { "{\"execute\":\"migrate\",\"arguments\":{\"uri\":"
      "\"exec:cat >/dev/null\"}}", "migrating it is not supported" },
    { "{\"execute\":\"migrate\",\"arguments\":{\"uri\":"
      "\"file:%1$s/migration\"}}", "\"error\"" },
    { "{\"execute\":\"stop\"}", "\"return\"" },
    { "{\"execute\":\"cont\"}", "\"return\"" },
    { "{\"execute\":\"system_powerdown\"}", "\"return\"" },
    { "{\"execute\":\"inject-nmi\"}", "\"return\"" },
    /* ends QEMU: the reset becomes a shutdown */
    { "{\"execute\":\"system_reset\"}", "\"return\"", true },
    { "{\"execute\":\"query-status\"}", "\"running\"" },
};

/* The files the commands above write in the test's directory */
static const char *const written[] = {
    "pmemsave", "memsave", "dump", "migration",
};

static const char *const dirty_rate_modes[] = {
    "page-sampling", "dirty-ring", "dirty-bitmap",
};

/*
 * calc-dirty-rate in @mode; once accepted, query-dirty-rate until the
 * measurement is done (it takes its calc-time, 1 s): its thread may not
 * have started when the command returns.
 */
static void dirty_rate(Sweep *s, const char *mode)
{
    g_autofree char *cause = g_strdup_printf("calc-dirty-rate %s", mode);
    g_autofree char *json = g_strdup_printf(
        "{\"execute\":\"calc-dirty-rate\",\"arguments\":{\"calc-time\":1,"
        "\"mode\":\"%s\"}}", mode);
    QDict *r = send_command(s, cause, json);
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    bool accepted = r && qdict_haskey(r, "return");

    qobject_unref(r);
    while (accepted) {
        g_autofree char *status = NULL;

        r = qmp(s, "{\"execute\":\"query-dirty-rate\"}");
        if (!r) {
            break;
        }
        status = g_strdup(qdict_get_str(qdict_get_qdict(r, "return"),
                                        "status"));
        qobject_unref(r);
        if (!strcmp(status, "measured")) {
            break;
        }
        /* "unstarted" until the thread runs, then "measuring" */
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000);    /* the measurement takes its calc-time */
    }
    check_after(s, cause);
}

/* snapshot-save is a job: it must conclude, with an error */
static void snapshot_save(Sweep *s)
{
    QDict *r = send_command(s, "snapshot-save",
                            "{\"execute\":\"snapshot-save\",\"arguments\":"
                            "{\"job-id\":\"snap0\",\"tag\":\"snap0\","
                            "\"vmstate\":\"none\",\"devices\":[]}}");
    QDict *ev;

    if (r && qdict_haskey(r, "return")) {
        qobject_unref(r);
        for (;;) {
            const char *st;

            ev = qmp_event(s, "JOB_STATUS_CHANGE");
            if (!ev) {
                break;
            }
            st = qdict_get_str(qdict_get_qdict(ev, "data"), "status");
            if (!strcmp(st, "concluded")) {
                qobject_unref(ev);
                g_autoptr(GString) jobs = NULL;

                r = qmp(s, "{\"execute\":\"query-jobs\"}");
                g_assert_nonnull(r);
                jobs = qobject_to_json(QOBJECT(r));
                g_assert_nonnull(strstr(jobs->str, "not supported"));
                qobject_unref(r);
                qobject_unref(qmp(s, "{\"execute\":\"job-dismiss\","
                                  "\"arguments\":{\"id\":\"snap0\"}}"));
                break;
            }
            qobject_unref(ev);
        }
    } else {
        qobject_unref(r);
    }
    check_after(s, "snapshot-save");
}

static void test_with_arguments(void)
{
    Sweep s;
    size_t i;

    if (!sweep_init(&s)) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(dirty_rate_modes); i++) {
        dirty_rate(&s, dirty_rate_modes[i]);
    }
    snapshot_save(&s);
    for (i = 0; i < ARRAY_SIZE(curated); i++) {
        const Curated *c = &curated[i];
        g_autofree char *json = g_strdup_printf(c->json, s.dir);
        QDict *r = send_command(&s, json, json);
        g_autoptr(GString) out = r ? qobject_to_json(QOBJECT(r)) : NULL;

        if (c->expect) {
            g_assert_nonnull(out);
            if (!strstr(out->str, c->expect)) {
                g_error("%s: expected \"%s\" in %s", json, c->expect,
                        out->str);
            }
        }
        qobject_unref(r);
        if (!check_after(&s, json) != c->ends) {
            g_error("%s %s QEMU", json, c->ends ? "did not end" : "ended");
        }
    }
    for (i = 0; i < ARRAY_SIZE(written); i++) {
        g_autofree char *path = g_build_filename(s.dir, written[i], NULL);

        unlink(path);
    }
    sweep_finish(&s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/sev-snp-qmp-sweep/no-arguments", test_no_arguments);
    qtest_add_func("/sev-snp-qmp-sweep/with-arguments", test_with_arguments);
    return g_test_run();
}
