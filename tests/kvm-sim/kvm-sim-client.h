/*
 * kvm-sim control socket client for tests (header only)
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * kvmsim_connect() connects to the socket named by $KVMSIM_CTL (or PATH);
 * kvmsim_request() sends one request line and returns the JSON reply
 * line (without the newline), or NULL if the connection failed.
 */

#ifndef KVM_SIM_CLIENT_H
#define KVM_SIM_CLIENT_H

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct KvmSimClient {
    int fd;
    FILE *in;
} KvmSimClient;

static inline KvmSimClient *kvmsim_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    KvmSimClient *c;
    int fd;

    if (!path || strlen(path) >= sizeof(sa.sun_path)) {
        return NULL;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return NULL;
    }
    c = g_new0(KvmSimClient, 1);
    c->fd = fd;
    c->in = fdopen(dup(fd), "r");
    return c;
}

static inline char *kvmsim_request(KvmSimClient *c, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static inline char *kvmsim_request(KvmSimClient *c, const char *fmt, ...)
{
    g_autofree char *req = NULL;
    g_autofree char *line = NULL;
    char buf[65536];
    va_list ap;

    va_start(ap, fmt);
    req = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strconcat(req, "\n", NULL);
    if (write(c->fd, line, strlen(line)) != (ssize_t)strlen(line)) {
        return NULL;
    }
    if (!fgets(buf, sizeof(buf), c->in)) {
        return NULL;
    }
    return g_strdup(g_strchomp(buf));
}

static inline void kvmsim_close(KvmSimClient *c)
{
    if (c) {
        fclose(c->in);
        close(c->fd);
        g_free(c);
    }
}

/*
 * The Debian OVMF image @image ("OVMF-2022.11.fd", "OVMF-2025.02.fd")
 * that scripts/qsnp-fetch-ovmf put in $QSNP_FIRMWARE_DIR; else, if
 * @installed, the installed /usr/share/ovmf/OVMF.fd; else NULL.
 */
static inline char *kvmsim_ovmf_image(const char *image, bool installed)
{
    const char *dir = getenv("QSNP_FIRMWARE_DIR");
    char *path = dir ? g_build_filename(dir, image, NULL) : NULL;

    if (path && access(path, R_OK) == 0) {
        return path;
    }
    g_free(path);
    if (installed && access("/usr/share/ovmf/OVMF.fd", R_OK) == 0) {
        return g_strdup("/usr/share/ovmf/OVMF.fd");
    }
    return NULL;
}

#ifdef LIBQTEST_H
/*
 * A QEMU started by a qtest with the simulator preloaded: only the QEMU
 * child gets it.  $KVMSIM_LIB, set by meson, names the library.
 */
typedef struct KvmSimVM {
    QTestState *qts;
    KvmSimClient *ctl;
    char *dir;
    char *sock;
} KvmSimVM;

/* Start QEMU with ARGS; false, with the test skipped, without the library */
static inline bool kvmsim_vm_start(KvmSimVM *vm, const char *args)
{
    const char *lib = getenv("KVMSIM_LIB");

    if (!lib || !g_file_test(lib, G_FILE_TEST_EXISTS)) {
        g_test_skip("KVMSIM_LIB does not name the kvm-sim library");
        return false;
    }
    vm->dir = g_dir_make_tmp("kvm-sim-qtest-XXXXXX", NULL);
    g_assert_nonnull(vm->dir);
    vm->sock = g_build_filename(vm->dir, "ctl", NULL);
    g_setenv("LD_PRELOAD", lib, true);
    g_setenv("KVMSIM_CTL", vm->sock, true);
    vm->qts = qtest_init(args);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("KVMSIM_CTL");
    vm->ctl = kvmsim_connect(vm->sock);
    g_assert_nonnull(vm->ctl);
    return true;
}

static inline void kvmsim_vm_stop(KvmSimVM *vm)
{
    kvmsim_close(vm->ctl);
    qtest_quit(vm->qts);
    unlink(vm->sock);
    rmdir(vm->dir);
    g_free(vm->sock);
    g_free(vm->dir);
}
#endif

#endif
