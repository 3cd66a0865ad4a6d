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
#include <stdio.h>
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

#endif
