/*
 * Bookkeeping of private and shared guest memory ranges
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "private-ranges.h"

/* A half-open interval [start, end) */
typedef struct Interval {
    uint64_t start;
    uint64_t end;
} Interval;

/* Sorted, disjoint, non-adjacent intervals */
typedef struct IntervalSet {
    Interval *v;
    size_t n;
    size_t cap;
} IntervalSet;

struct PrivateRanges {
    IntervalSet ram;        /* registered guest RAM */
    IntervalSet seen;       /* RAM registered at some time */
    IntervalSet priv;       /* private addresses */
};

/* Index of the first interval whose end is above @addr (n if none) */
static size_t iset_first_above(const IntervalSet *s, uint64_t addr)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->v[mid].end > addr) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

static void iset_resize(IntervalSet *s, size_t n)
{
    size_t cap = s->cap;

    if (n > cap) {
        cap = MAX(cap * 2, 16);
        cap = MAX(cap, n);
    } else if (cap > 16 && n < cap / 4) {
        /* Give memory back once merges have emptied most of the array */
        cap = MAX(n * 2, 16);
    }
    if (cap != s->cap) {
        s->v = g_renew(Interval, s->v, cap);
        s->cap = cap;
    }
}

/* Replace intervals [i, j) by the @k intervals of @with */
static void iset_splice(IntervalSet *s, size_t i, size_t j,
                        const Interval *with, size_t k)
{
    size_t tail = s->n - j;
    size_t n = s->n - (j - i) + k;

    if (n > s->n) {
        iset_resize(s, n);
    }
    memmove(&s->v[i + k], &s->v[j], tail * sizeof(Interval));
    memcpy(&s->v[i], with, k * sizeof(Interval));
    s->n = n;
    if (n < s->cap / 4) {
        iset_resize(s, n);
    }
}

/* Add [start, end), merging with overlapping and adjacent intervals */
static void iset_add(IntervalSet *s, uint64_t start, uint64_t end)
{
    /* first interval that overlaps or touches start */
    size_t i = start ? iset_first_above(s, start - 1) : 0;
    size_t j = i;
    Interval merged = { start, end };

    while (j < s->n && s->v[j].start <= end) {
        merged.start = MIN(merged.start, s->v[j].start);
        merged.end = MAX(merged.end, s->v[j].end);
        j++;
    }
    iset_splice(s, i, j, &merged, 1);
}

/* Remove [start, end) */
static void iset_remove(IntervalSet *s, uint64_t start, uint64_t end)
{
    size_t i = iset_first_above(s, start);
    size_t j = i;
    Interval keep[2];
    size_t k = 0;

    while (j < s->n && s->v[j].start < end) {
        if (s->v[j].start < start) {
            keep[k++] = (Interval) { s->v[j].start, start };
        }
        if (s->v[j].end > end) {
            keep[k++] = (Interval) { end, s->v[j].end };
        }
        j++;
    }
    if (i != j) {
        iset_splice(s, i, j, keep, k);
    }
}

/* Whether [start, end) lies wholly inside one interval of the set */
static bool iset_covers(const IntervalSet *s, uint64_t start, uint64_t end)
{
    size_t i = iset_first_above(s, start);

    return i < s->n && s->v[i].start <= start && s->v[i].end >= end;
}

PrivateRanges *private_ranges_new(void)
{
    return g_new0(PrivateRanges, 1);
}

void private_ranges_free(PrivateRanges *pr)
{
    if (pr) {
        g_free(pr->ram.v);
        g_free(pr->seen.v);
        g_free(pr->priv.v);
        g_free(pr);
    }
}

static bool check_shape(uint64_t start, uint64_t size, Error **errp)
{
    if (!size) {
        error_setg(errp, "empty range at 0x%" PRIx64, start);
        return false;
    }
    if (!QEMU_IS_ALIGNED(start, PRIVATE_RANGES_PAGE_SIZE) ||
        !QEMU_IS_ALIGNED(size, PRIVATE_RANGES_PAGE_SIZE)) {
        error_setg(errp, "range 0x%" PRIx64 "+0x%" PRIx64
                   " is not aligned to 0x%llx", start, size,
                   PRIVATE_RANGES_PAGE_SIZE);
        return false;
    }
    if (start + size < start) {
        error_setg(errp, "range 0x%" PRIx64 "+0x%" PRIx64
                   " wraps around the address space", start, size);
        return false;
    }
    return true;
}

bool private_ranges_add_ram(PrivateRanges *pr, uint64_t start, uint64_t size,
                            bool private_if_new, PrivateRangesChangedFn *fn,
                            void *opaque, Error **errp)
{
    uint64_t end = start + size, pos = start;
    size_t i;

    if (!check_shape(start, size, errp)) {
        return false;
    }
    i = iset_first_above(&pr->ram, start);
    if (i < pr->ram.n && pr->ram.v[i].start < start + size) {
        error_setg(errp, "RAM range 0x%" PRIx64 "+0x%" PRIx64
                   " overlaps RAM already registered at 0x%" PRIx64,
                   start, size, pr->ram.v[i].start);
        return false;
    }
    iset_add(&pr->ram, start, end);
    if (private_if_new) {
        /* the gaps of the seen set become private */
        for (i = iset_first_above(&pr->seen, start);
             i < pr->seen.n && pr->seen.v[i].start < end; i++) {
            if (pr->seen.v[i].start > pos) {
                private_ranges_set(pr, pos, pr->seen.v[i].start - pos, true,
                                   fn, opaque, &error_abort);
            }
            pos = pr->seen.v[i].end;
        }
        if (pos < end) {
            private_ranges_set(pr, pos, end - pos, true, fn, opaque,
                               &error_abort);
        }
    }
    iset_add(&pr->seen, start, end);
    return true;
}

void private_ranges_del_ram(PrivateRanges *pr, uint64_t start, uint64_t size)
{
    if (size && start + size > start) {
        iset_remove(&pr->ram, start, start + size);
    }
}

bool private_ranges_check(PrivateRanges *pr, uint64_t start, uint64_t size,
                          Error **errp)
{
    if (!check_shape(start, size, errp)) {
        return false;
    }
    if (!iset_covers(&pr->ram, start, start + size)) {
        error_setg(errp, "range 0x%" PRIx64 "+0x%" PRIx64
                   " is not wholly inside guest RAM", start, size);
        return false;
    }
    return true;
}

bool private_ranges_set(PrivateRanges *pr, uint64_t start, uint64_t size,
                        bool to_private, PrivateRangesChangedFn *fn,
                        void *opaque, Error **errp)
{
    uint64_t end = start + size;

    if (!private_ranges_check(pr, start, size, errp)) {
        return false;
    }
    if (fn) {
        /* Report what changes: the gaps (to private) or the overlaps */
        size_t i = iset_first_above(&pr->priv, start);
        uint64_t pos = start;

        for (; i < pr->priv.n && pr->priv.v[i].start < end; i++) {
            uint64_t s = MAX(pr->priv.v[i].start, start);
            uint64_t e = MIN(pr->priv.v[i].end, end);

            if (to_private && s > pos) {
                fn(pos, s - pos, true, opaque);
            } else if (!to_private) {
                fn(s, e - s, false, opaque);
            }
            pos = e;
        }
        if (to_private && pos < end) {
            fn(pos, end - pos, true, opaque);
        }
    }
    if (to_private) {
        iset_add(&pr->priv, start, end);
    } else {
        iset_remove(&pr->priv, start, end);
    }
    return true;
}

bool private_ranges_is_private(PrivateRanges *pr, uint64_t addr)
{
    size_t i = iset_first_above(&pr->priv, addr);

    return i < pr->priv.n && pr->priv.v[i].start <= addr;
}

size_t private_ranges_count(PrivateRanges *pr)
{
    return pr->priv.n;
}

size_t private_ranges_ram_count(PrivateRanges *pr)
{
    return pr->ram.n;
}

uint64_t private_ranges_private_bytes(PrivateRanges *pr)
{
    uint64_t total = 0;
    size_t i;

    for (i = 0; i < pr->priv.n; i++) {
        total += pr->priv.v[i].end - pr->priv.v[i].start;
    }
    return total;
}

size_t private_ranges_mem_bytes(PrivateRanges *pr)
{
    return sizeof(*pr) +
        (pr->ram.cap + pr->seen.cap + pr->priv.cap) * sizeof(Interval);
}

void private_ranges_foreach(PrivateRanges *pr, PrivateRangesIterFn *fn,
                            void *opaque)
{
    size_t i;

    for (i = 0; i < pr->priv.n; i++) {
        if (!fn(pr->priv.v[i].start, pr->priv.v[i].end - pr->priv.v[i].start,
                opaque)) {
            break;
        }
    }
}
