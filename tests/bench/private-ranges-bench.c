/*
 * Benchmark of the private/shared range bookkeeping
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * A 64 GiB guest converts all its memory from private to shared in 4 KiB
 * steps, and back in 2 MiB steps; a fragmenting guest shares every other
 * 4 KiB page.  Printed: conversions per second and bookkeeping bytes per GiB
 * of guest RAM, next to the cost of the system calls a conversion issues
 * (fallocate punch-hole on a memfd for the private side, madvise on an
 * anonymous mapping for the shared side), measured here too.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/units.h"
#include "qemu/memfd.h"
#include "../../accel/kvm/private-ranges.h"

#define PG PRIVATE_RANGES_PAGE_SIZE

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(const char *what, uint64_t ops, double secs,
                   size_t max_bytes, uint64_t guest)
{
    printf("%-44s %10" PRIu64 " ops %9.3f s %12.0f ops/s %9.1f ns/op",
           what, ops, secs, ops / secs, secs * 1e9 / ops);
    if (guest) {
        printf("  %8.1f bytes/GiB", (double)max_bytes / (guest / GiB));
    }
    printf("\n");
}

static void bench_convert(uint64_t guest, uint64_t step, bool to_private,
                          uint64_t stride, PrivateRanges *pr, const char *what)
{
    size_t max_bytes = 0;
    uint64_t ops = 0, a;
    double t0 = now();

    for (a = 0; a < guest; a += stride) {
        private_ranges_set(pr, a, step, to_private, NULL, NULL, &error_abort);
        ops++;
        if ((ops & 0xfff) == 0) {
            max_bytes = MAX(max_bytes, private_ranges_mem_bytes(pr));
        }
    }
    max_bytes = MAX(max_bytes, private_ranges_mem_bytes(pr));
    report(what, ops, now() - t0, max_bytes, guest);
}

static void bench_punch_hole(uint64_t step, int rounds)
{
    const uint64_t size = 64 * MiB;
    int fd = qemu_memfd_create("bench", size, false, 0, 0, &error_abort);
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    double secs = 0;
    uint64_t ops = 0, a;
    char what[64];
    int r;

    g_assert(p != MAP_FAILED);
    for (r = 0; r < rounds; r++) {
        double t0;

        memset(p, 1, size);             /* populate: punch real pages */
        t0 = now();
        for (a = 0; a < size; a += step) {
            if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          a, step)) {
                perror("fallocate");
                exit(1);
            }
            ops++;
        }
        secs += now() - t0;
    }
    snprintf(what, sizeof(what), "syscall fallocate punch-hole memfd %" PRIu64
             "K", step / KiB);
    report(what, ops, secs, 0, 0);
    munmap(p, size);
    close(fd);
}

static void bench_madvise(uint64_t step, int rounds)
{
    const uint64_t size = 64 * MiB;
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    double secs = 0;
    uint64_t ops = 0, a;
    char what[64];
    int r;

    g_assert(p != MAP_FAILED);
    for (r = 0; r < rounds; r++) {
        double t0;

        memset(p, 1, size);
        t0 = now();
        for (a = 0; a < size; a += step) {
            if (madvise(p + a, step, MADV_DONTNEED)) {
                perror("madvise");
                exit(1);
            }
            ops++;
        }
        secs += now() - t0;
    }
    snprintf(what, sizeof(what), "syscall madvise DONTNEED anon %" PRIu64 "K",
             step / KiB);
    report(what, ops, secs, 0, 0);
    munmap(p, size);
}

int main(int argc, char **argv)
{
    const uint64_t guest = 64 * GiB;
    const uint64_t frag = 4 * GiB;
    PrivateRanges *pr = private_ranges_new();

    printf("bookkeeping for a %" PRIu64 " GiB guest, all private at start\n",
           guest / GiB);
    private_ranges_add_ram(pr, 0, guest, true, NULL, NULL, &error_abort);
    bench_convert(guest, PG, false, PG, pr, "to shared, 4K steps");
    bench_convert(guest, PG, true, PG, pr, "to private, 4K steps");
    bench_convert(guest, 2 * MiB, false, 2 * MiB, pr, "to shared, 2M steps");
    bench_convert(guest, 2 * MiB, true, 2 * MiB, pr, "to private, 2M steps");
    private_ranges_free(pr);

    /* worst case: every other page shared; grows per range, so per GiB */
    pr = private_ranges_new();
    private_ranges_add_ram(pr, 0, frag, true, NULL, NULL, &error_abort);
    bench_convert(frag, PG, false, 2 * PG, pr,
                  "fragmenting: every other 4K to shared");
    printf("%-44s %10zu ranges\n", "  ranges kept", private_ranges_count(pr));
    bench_convert(frag, 2 * MiB, true, 2 * MiB, pr,
                  "defragmenting: 2M steps to private");
    private_ranges_free(pr);

    printf("system calls per conversion, for comparison\n");
    bench_punch_hole(PG, 4);
    bench_punch_hole(2 * MiB, 16);
    bench_madvise(PG, 4);
    bench_madvise(2 * MiB, 16);
    return 0;
}
