/*
 * kvm-sim: control socket (scripted exits, failures, queries)
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One text line per request, one JSON line per reply; see README.md.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "kvm-sim.h"

#define KS_WAIT_TIMEOUT_S 60

static bool ks_num(const char *s, uint64_t *v)
{
    char *end;

    if (!s || !*s) {
        return false;
    }
    errno = 0;
    *v = g_ascii_strtoull(s, &end, 0);
    return !errno && !*end;
}

static char *ks_err(const char *msg)
{
    return g_strdup_printf("{\"ok\":false,\"error\":\"%s\"}", msg);
}

static char *ks_cmd_exit(char **a, int n)
{
    uint64_t idx, x[19] = { 0 };
    KsExit e = { 0 };
    KsVcpu *v;
    int i;

    if (n < 3 || !ks_num(a[1], &idx)) {
        return ks_err("usage: exit VCPU KIND ARGS...");
    }
    for (i = 3; i < n && i - 3 < 19; i++) {
        if (!ks_num(a[i], &x[i - 3])) {
            return ks_err("bad number");
        }
    }
    if (!strcmp(a[2], "hypercall-map-gpa") && n >= 6 && n <= 8) {
        /* optional COUNT [STRIDE]: a batch delivered back to back */
        e.kind = KS_EXIT_HYPERCALL;
        memcpy(e.a, x, 3 * sizeof(x[0]));
        e.repeat = n >= 7 ? x[3] : 1;
        e.stride = n == 8 ? x[4] : 0;
    } else if (!strcmp(a[2], "memory-fault") && n >= 6 && n <= 9) {
        /* optional FLAGS [COUNT [STRIDE]] */
        e.kind = KS_EXIT_MEMORY_FAULT;
        memcpy(e.a, x, 4 * sizeof(x[0]));
        e.repeat = n >= 8 ? x[4] : 1;
        e.stride = n == 9 ? x[5] : 0;
    } else if (!strcmp(a[2], "sev-term") && n == 4) {
        e.kind = KS_EXIT_SYSTEM_EVENT;
        e.a[0] = KVM_SYSTEM_EVENT_SEV_TERM;
        e.a[1] = x[0];
        e.n = 1;
    } else if (!strcmp(a[2], "shutdown") && n == 3) {
        e.kind = KS_EXIT_SHUTDOWN;
    } else if (!strcmp(a[2], "internal-error") && n == 4) {
        e.kind = KS_EXIT_INTERNAL_ERROR;
        e.a[0] = x[0];
    } else if (!strcmp(a[2], "reset") && n == 3) {
        e.kind = KS_EXIT_SYSTEM_EVENT;
        e.a[0] = KVM_SYSTEM_EVENT_RESET;
    } else if (!strcmp(a[2], "system-event") && n >= 5 &&
               x[1] <= 16 && (uint64_t)n == 5 + x[1]) {
        e.kind = KS_EXIT_SYSTEM_EVENT;
        e.a[0] = x[0];
        e.n = x[1];
        memcpy(&e.a[1], &x[2], x[1] * sizeof(x[0]));
    } else {
        return ks_err("unknown exit kind or wrong argument count");
    }
    if ((e.kind == KS_EXIT_HYPERCALL || e.kind == KS_EXIT_MEMORY_FAULT) &&
        !e.repeat) {
        return ks_err("COUNT must be at least 1");
    }
    v = ks_vcpu_by_index(idx);
    if (!v) {
        return ks_err("no such vCPU");
    }
    /* x86.c: KVM exits to userspace only for enabled hypercalls */
    if (e.kind == KS_EXIT_HYPERCALL &&
        !(ks_vm->hypercall_exit_mask & (1ULL << KVM_HC_MAP_GPA_RANGE))) {
        return ks_err("KVM_CAP_EXIT_HYPERCALL is not enabled for "
                      "KVM_HC_MAP_GPA_RANGE: KVM would not exit");
    }
    ks_queue_exit(v, &e);
    return g_strdup("{\"ok\":true}");
}

/* @ts: @ms milliseconds from now, for pthread_cond_timedwait() */
static void ks_deadline(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static char *ks_cmd_wait(char **a, int n)
{
    uint64_t idx, ms = KS_WAIT_TIMEOUT_S * 1000;
    KsVcpu *v;
    struct timespec ts;
    bool reentered;

    if ((n != 2 && n != 3) || !ks_num(a[1], &idx) ||
        (n == 3 && !ks_num(a[2], &ms))) {
        return ks_err("usage: wait-exit-consumed VCPU [TIMEOUT_MS]");
    }
    v = ks_vcpu_by_index(idx);
    if (!v) {
        return ks_err("no such vCPU");
    }
    ks_deadline(&ts, ms);
    /*
     * Consumed: every queued exit was delivered, and QEMU either
     * re-entered KVM_RUN after the last one to run the guest on (a
     * re-entry with immediate_exit set, which returns at once, is
     * followed by another unless the VM stops) or stopped the VM after
     * it (seen as KVM_GET_CLOCK, which QEMU issues when the VM stops).
     */
    while (!(v->delivered == v->queued &&
             ((v->consumed == v->delivered && v->resumed) ||
              ks_vm->stop_seq > v->stop_seq_at_delivery))) {
        if (pthread_cond_timedwait(&ks_cond, &ks_lock, &ts) == ETIMEDOUT) {
            return ks_err("timeout");
        }
    }
    reentered = v->consumed == v->delivered;
    return g_strdup_printf("{\"ok\":true,\"reentered\":%s,\"resumed\":%s}",
                           reentered ? "true" : "false",
                           reentered && v->resumed ? "true" : "false");
}

/*
 * Reply once SNP_LAUNCH_FINISH has been issued, whatever its result:
 * {"ok":true,"result":-ERRNO or 0,"fw_error":F,"t_ns":CLOCK_MONOTONIC}.
 */
static char *ks_cmd_wait_finish(char **a, int n)
{
    uint64_t ms = KS_WAIT_TIMEOUT_S * 1000;
    struct timespec ts;

    if ((n != 1 && n != 2) || (n == 2 && !ks_num(a[1], &ms))) {
        return ks_err("usage: wait-launch-finish [TIMEOUT_MS]");
    }
    ks_deadline(&ts, ms);
    while (!ks_vm || !ks_vm->finish_issued) {
        if (pthread_cond_timedwait(&ks_cond, &ks_lock, &ts) == ETIMEDOUT) {
            return ks_err("timeout");
        }
    }
    return g_strdup_printf("{\"ok\":true,\"result\":%ld,\"fw_error\":%u,"
                           "\"t_ns\":%" G_GUINT64_FORMAT "}",
                           ks_vm->finish_result, ks_vm->finish_fw_error,
                           ks_vm->finish_ns);
}

/* CPUID entries as a JSON array of objects */
static char *ks_cpuid_reply(const struct kvm_cpuid_entry2 *e, int n)
{
    g_autoptr(GString) s = g_string_new("{\"ok\":true,\"entries\":[");
    int i;

    for (i = 0; i < n; i++) {
        g_string_append_printf(s, "%s{\"function\":%u,\"index\":%u,"
                               "\"flags\":%u,\"eax\":%u,\"ebx\":%u,"
                               "\"ecx\":%u,\"edx\":%u}", i ? "," : "",
                               e[i].function, e[i].index, e[i].flags,
                               e[i].eax, e[i].ebx, e[i].ecx, e[i].edx);
    }
    g_string_append(s, "]}");
    return g_string_free(g_steal_pointer(&s), false);
}

static char *ks_handle(char *line)
{
    g_auto(GStrv) a = g_strsplit_set(g_strstrip(line), " \t", -1);
    int n = g_strv_length(a);
    uint64_t x, y;

    if (n == 0 || !*a[0]) {
        return ks_err("empty request");
    }
    if (!strcmp(a[0], "exit")) {
        return ks_cmd_exit(a, n);
    }
    if (!strcmp(a[0], "wait-exit-consumed")) {
        return ks_cmd_wait(a, n);
    }
    if (!strcmp(a[0], "wait-launch-finish")) {
        return ks_cmd_wait_finish(a, n);
    }
    if (!strcmp(a[0], "fail")) {
        uint64_t err = 0, count = 1;
        if (n < 3 || n > 5 || !ks_num(a[2], &x) ||
            (n >= 4 && !ks_num(a[3], &err)) ||
            (n == 5 && (!ks_num(a[4], &count) || !count ||
                        count > G_MAXUINT))) {
            return ks_err("usage: fail CMDNAME FW_ERROR [ERRNO [COUNT]]");
        }
        ks_inject_failure(a[1], x, err, count);
        return g_strdup("{\"ok\":true}");
    }
    if (!strcmp(a[0], "query") && n >= 2) {
        if (!strcmp(a[1], "violations")) {
            g_autoptr(GString) s = ks_violations_json();
            return g_strdup_printf("{\"ok\":true,\"violations\":%s}", s->str);
        }
        if (!strcmp(a[1], "supported-cpuid") && n == 2) {
            int nent;
            const struct kvm_cpuid_entry2 *e = ks_supported_cpuid(&nent);
            return ks_cpuid_reply(e, nent);
        }
        if (!ks_vm) {
            return ks_err("no VM");
        }
        if (!strcmp(a[1], "digest")) {
            char hex[KS_SHA384_LEN * 2 + 1];
            ks_hex(ks_vm->digest, KS_SHA384_LEN, hex);
            return g_strdup_printf("{\"ok\":true,\"digest\":\"%s\","
                                   "\"pages\":%" G_GUINT64_FORMAT "}", hex,
                                   ks_vm->n_measured);
        }
        if (!strcmp(a[1], "attrs") && n == 4 && ks_num(a[2], &x) &&
            ks_num(a[3], &y)) {
            g_autoptr(GString) s = ks_attrs_json(ks_vm, x, y);
            return g_strdup_printf("{\"ok\":true,\"private\":%s}", s->str);
        }
        if (!strcmp(a[1], "cpuid") && n == 3 && ks_num(a[2], &x)) {
            KsVcpu *v = ks_vcpu_by_index(x);
            if (!v || !v->cpuid) {
                return ks_err("no KVM_SET_CPUID2 on that vCPU");
            }
            return ks_cpuid_reply(v->cpuid, v->ncpuid);
        }
        if (!strcmp(a[1], "memslots") && n == 2) {
            g_autoptr(GString) s = ks_memslots_json(ks_vm);
            return g_strdup_printf("{\"ok\":true,\"memslots\":%s}", s->str);
        }
        if (!strcmp(a[1], "exit-stats") && n == 3 && ks_num(a[2], &x)) {
            KsVcpu *v = ks_vcpu_by_index(x);
            if (!v) {
                return ks_err("no such vCPU");
            }
            return g_strdup_printf("{\"ok\":true,\"queued\":%" G_GUINT64_FORMAT
                                   ",\"delivered\":%" G_GUINT64_FORMAT
                                   ",\"consumed\":%" G_GUINT64_FORMAT
                                   ",\"hypercall_rets\":%" G_GUINT64_FORMAT
                                   ",\"hypercall_nonzero\":%" G_GUINT64_FORMAT
                                   ",\"batch_first_ns\":%" G_GUINT64_FORMAT
                                   ",\"last_consumed_ns\":%" G_GUINT64_FORMAT
                                   "}", v->queued, v->delivered, v->consumed,
                                   v->hypercall_rets, v->hypercall_nonzero,
                                   v->batch_first_ns, v->last_consumed_ns);
        }
        if (!strcmp(a[1], "cpuid-page") && n == 2) {
            g_autoptr(GString) s = ks_cpuid_page_json(ks_vm);
            return g_strdup(s->str);
        }
        if (!strcmp(a[1], "cpuid-guest")) {
            uint64_t xcr0 = 1, xss = 0;
            g_autoptr(GString) s = NULL;

            if (n < 4 || n > 6 || !ks_num(a[2], &x) || !ks_num(a[3], &y) ||
                (n >= 5 && !ks_num(a[4], &xcr0)) ||
                (n == 6 && !ks_num(a[5], &xss))) {
                return ks_err("usage: query cpuid-guest LEAF SUBLEAF "
                              "[XCR0 [XSS]]");
            }
            s = ks_cpuid_guest_json(ks_vm, x, y, xcr0, xss);
            return g_strdup(s->str);
        }
        if (!strcmp(a[1], "hypercall-ret") && n == 3 && ks_num(a[2], &x)) {
            KsVcpu *v = ks_vcpu_by_index(x);
            if (!v || !v->have_hypercall_ret) {
                return ks_err("no hypercall completed on that vCPU");
            }
            return g_strdup_printf("{\"ok\":true,\"ret\":%" G_GUINT64_FORMAT
                                   "}", v->hypercall_ret);
        }
        if (!strcmp(a[1], "state")) {
            uint64_t pending = 0;
            guint i;
            for (i = 0; i < ks_vm->vcpus->len; i++) {
                KsVcpu *v = g_ptr_array_index(ks_vm->vcpus, i);
                pending += v->exits->length;
            }
            return g_strdup_printf("{\"ok\":true,\"vm_type\":%lu,"
                                   "\"sev_state\":\"%s\",\"es\":%s,"
                                   "\"vmsa_features\":%" G_GUINT64_FORMAT
                                   ",\"vcpus\":%u,\"exits_pending\":%"
                                   G_GUINT64_FORMAT ",\"hypercall_exit_mask\":"
                                   "%" G_GUINT64_FORMAT "}",
                                   ks_vm->type, ks_sev_state_name(ks_vm),
                                   ks_vm->es_active ? "true" : "false",
                                   ks_vm->vmsa_features, ks_vm->vcpus->len,
                                   pending, ks_vm->hypercall_exit_mask);
        }
    }
    return ks_err("unknown request");
}

static void *ks_ctl_conn(void *opaque)
{
    int fd = GPOINTER_TO_INT(opaque);
    FILE *in = fdopen(fd, "r");
    char *line = NULL;
    size_t cap = 0;

    while (in && getline(&line, &cap, in) > 0) {
        g_autofree char *reply = NULL;
        g_autofree char *nl = NULL;

        pthread_mutex_lock(&ks_lock);
        reply = ks_handle(line);
        pthread_mutex_unlock(&ks_lock);
        nl = g_strconcat(reply, "\n", NULL);
        if (write(fd, nl, strlen(nl)) < 0) {
            break;
        }
    }
    free(line);
    if (in) {
        fclose(in);
    }
    return NULL;
}

static void *ks_ctl_thread(void *opaque)
{
    int lfd = GPOINTER_TO_INT(opaque);

    for (;;) {
        pthread_t t;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        pthread_create(&t, NULL, ks_ctl_conn, GINT_TO_POINTER(fd));
        pthread_detach(t);
    }
}

void ks_ctl_start(void)
{
    const char *path = getenv("KVMSIM_CTL");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    sigset_t all, old;
    pthread_t t;
    int fd;

    if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
        return;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 8) < 0) {
        fprintf(stderr, "kvm-sim: cannot listen on %s: %s\n", path,
                strerror(errno));
        close(fd);
        return;
    }
    /* the control threads take no signals meant for QEMU's threads */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_create(&t, NULL, ks_ctl_thread, GINT_TO_POINTER(fd));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_detach(t);
}
