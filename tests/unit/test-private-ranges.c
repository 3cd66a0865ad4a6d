/*
 * Unit tests of the private/shared range bookkeeping
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/units.h"
#include "../../accel/kvm/private-ranges.h"

#define PG PRIVATE_RANGES_PAGE_SIZE

typedef struct Change {
    uint64_t start;
    uint64_t size;
    bool to_private;
} Change;

static void record_change(uint64_t start, uint64_t size, bool to_private,
                          void *opaque)
{
    GArray *changes = opaque;
    Change c = { start, size, to_private };

    g_array_append_val(changes, c);
}

/* 2 GiB low RAM and 1 GiB above 4 GiB, as a PC with a PCI hole has */
static PrivateRanges *pc_like(bool private)
{
    PrivateRanges *pr = private_ranges_new();

    private_ranges_add_ram(pr, 0, 2 * GiB, private, NULL, NULL, &error_abort);
    private_ranges_add_ram(pr, 4 * GiB, 1 * GiB, private, NULL, NULL,
                           &error_abort);
    return pr;
}

static void test_initial_state(void)
{
    PrivateRanges *pr = pc_like(true);

    g_assert_cmpuint(private_ranges_count(pr), ==, 2);
    g_assert_cmpuint(private_ranges_ram_count(pr), ==, 2);
    g_assert_cmpuint(private_ranges_private_bytes(pr), ==, 3 * GiB);
    g_assert_true(private_ranges_is_private(pr, 0));
    g_assert_true(private_ranges_is_private(pr, 2 * GiB - 1));
    g_assert_false(private_ranges_is_private(pr, 2 * GiB));
    g_assert_true(private_ranges_is_private(pr, 4 * GiB));
    g_assert_false(private_ranges_is_private(pr, 5 * GiB));
    private_ranges_free(pr);

    pr = pc_like(false);
    g_assert_cmpuint(private_ranges_count(pr), ==, 0);
    g_assert_false(private_ranges_is_private(pr, 0));
    private_ranges_free(pr);
}

static void test_split_merge_4k(void)
{
    PrivateRanges *pr = pc_like(true);
    g_autoptr(GArray) ch = g_array_new(false, false, sizeof(Change));
    Change *c;

    /* a shared page in the middle splits the low interval */
    private_ranges_set(pr, 1 * MiB, PG, false, record_change, ch,
                       &error_abort);
    g_assert_cmpuint(private_ranges_count(pr), ==, 3);
    g_assert_false(private_ranges_is_private(pr, 1 * MiB));
    g_assert_true(private_ranges_is_private(pr, 1 * MiB - PG));
    g_assert_true(private_ranges_is_private(pr, 1 * MiB + PG));
    g_assert_cmpuint(ch->len, ==, 1);
    c = &g_array_index(ch, Change, 0);
    g_assert_cmpuint(c->start, ==, 1 * MiB);
    g_assert_cmpuint(c->size, ==, PG);
    g_assert_false(c->to_private);

    /* the next page joins the same shared hole: no new interval */
    private_ranges_set(pr, 1 * MiB + PG, PG, false, NULL, NULL, &error_abort);
    g_assert_cmpuint(private_ranges_count(pr), ==, 3);

    /* converting it again changes nothing and reports nothing */
    g_array_set_size(ch, 0);
    private_ranges_set(pr, 1 * MiB, 2 * PG, false, record_change, ch,
                       &error_abort);
    g_assert_cmpuint(ch->len, ==, 0);

    /* back to private over a wider range: only the hole is reported */
    private_ranges_set(pr, 0, 2 * MiB, true, record_change, ch, &error_abort);
    g_assert_cmpuint(ch->len, ==, 1);
    c = &g_array_index(ch, Change, 0);
    g_assert_cmpuint(c->start, ==, 1 * MiB);
    g_assert_cmpuint(c->size, ==, 2 * PG);
    g_assert_true(c->to_private);
    g_assert_cmpuint(private_ranges_count(pr), ==, 2);
    g_assert_cmpuint(private_ranges_private_bytes(pr), ==, 3 * GiB);
    private_ranges_free(pr);
}

static void test_2m(void)
{
    PrivateRanges *pr = pc_like(true);
    g_autoptr(GArray) ch = g_array_new(false, false, sizeof(Change));
    Change *c;

    /* three 2 MiB pieces shared, the middle one private again */
    private_ranges_set(pr, 4 * GiB, 6 * MiB, false, NULL, NULL, &error_abort);
    private_ranges_set(pr, 4 * GiB + 2 * MiB, 2 * MiB, true, record_change,
                       ch, &error_abort);
    g_assert_cmpuint(ch->len, ==, 1);
    c = &g_array_index(ch, Change, 0);
    g_assert_cmpuint(c->start, ==, 4 * GiB + 2 * MiB);
    g_assert_cmpuint(c->size, ==, 2 * MiB);
    g_assert_cmpuint(private_ranges_count(pr), ==, 3);
    g_assert_false(private_ranges_is_private(pr, 4 * GiB));
    g_assert_true(private_ranges_is_private(pr, 4 * GiB + 2 * MiB));
    g_assert_false(private_ranges_is_private(pr, 4 * GiB + 4 * MiB));
    g_assert_true(private_ranges_is_private(pr, 4 * GiB + 6 * MiB));

    /* a 4 KiB page inside a shared 2 MiB piece, then a wide shared range */
    private_ranges_set(pr, 4 * GiB + PG, PG, true, NULL, NULL, &error_abort);
    g_assert_cmpuint(private_ranges_count(pr), ==, 4);
    g_array_set_size(ch, 0);
    private_ranges_set(pr, 4 * GiB, 8 * MiB, false, record_change, ch,
                       &error_abort);
    /* the private page, the private 2 MiB, the first 2 MiB of the rest */
    g_assert_cmpuint(ch->len, ==, 3);
    g_assert_cmpuint(g_array_index(ch, Change, 0).start, ==, 4 * GiB + PG);
    g_assert_cmpuint(g_array_index(ch, Change, 1).size, ==, 2 * MiB);
    g_assert_cmpuint(g_array_index(ch, Change, 2).start, ==,
                     4 * GiB + 6 * MiB);
    g_assert_cmpuint(private_ranges_count(pr), ==, 2);
    g_assert_cmpuint(private_ranges_private_bytes(pr), ==,
                     3 * GiB - 8 * MiB);
    private_ranges_free(pr);
}

static void assert_refused(PrivateRanges *pr, uint64_t start, uint64_t size)
{
    Error *err = NULL;
    uint64_t before = private_ranges_private_bytes(pr);
    size_t count = private_ranges_count(pr);

    g_assert_false(private_ranges_check(pr, start, size, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(private_ranges_set(pr, start, size, false, NULL, NULL,
                                      &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(private_ranges_set(pr, start, size, true, NULL, NULL,
                                      &err));
    g_assert_nonnull(err);
    error_free(err);
    g_assert_cmpuint(private_ranges_private_bytes(pr), ==, before);
    g_assert_cmpuint(private_ranges_count(pr), ==, count);
}

static void test_hostile(void)
{
    PrivateRanges *pr = pc_like(true);
    Error *err = NULL;

    private_ranges_set(pr, 0, 1 * GiB, false, NULL, NULL, &error_abort);
    assert_refused(pr, 0, 0);                       /* empty */
    assert_refused(pr, 1, PG);                      /* misaligned start */
    assert_refused(pr, 0, PG + 1);                  /* misaligned size */
    assert_refused(pr, 0x800, 0x800);               /* sub-page */
    assert_refused(pr, UINT64_MAX - PG + 1, 2 * PG);    /* wraps */
    assert_refused(pr, UINT64_MAX - PG + 1, PG);    /* ends at 2^64 */
    assert_refused(pr, PG, UINT64_MAX - PG + 1);    /* wraps, huge */
    assert_refused(pr, 0, 1ULL << 63);              /* huge */
    assert_refused(pr, 2 * GiB, PG);                /* in the PCI hole */
    assert_refused(pr, 2 * GiB - PG, 2 * PG);       /* runs into the hole */
    assert_refused(pr, 0, 5 * GiB);                 /* spans the hole */
    assert_refused(pr, 5 * GiB, PG);                /* above RAM */
    assert_refused(pr, 4 * GiB - PG, 2 * PG);       /* starts in the hole */

    /* the last page of RAM is fine */
    g_assert_true(private_ranges_set(pr, 5 * GiB - PG, PG, false, NULL, NULL,
                                     &error_abort));

    /* RAM registration is checked as well */
    g_assert_false(private_ranges_add_ram(pr, 1 * GiB, PG, true, NULL, NULL,
                                          &err));
    error_free(err);
    err = NULL;
    g_assert_false(private_ranges_add_ram(pr, 3 * GiB, 0, true, NULL, NULL,
                                          &err));
    error_free(err);
    private_ranges_free(pr);
}

static void test_del_ram(void)
{
    PrivateRanges *pr = pc_like(true);
    g_autoptr(GArray) ch = g_array_new(false, false, sizeof(Change));

    private_ranges_set(pr, 4 * GiB, 2 * MiB, false, NULL, NULL, &error_abort);
    private_ranges_del_ram(pr, 4 * GiB, 1 * GiB);
    g_assert_cmpuint(private_ranges_ram_count(pr), ==, 1);
    g_assert_false(private_ranges_check(pr, 4 * GiB, PG, NULL));
    g_assert_false(private_ranges_set(pr, 4 * GiB + 4 * MiB, PG, false,
                                      NULL, NULL, NULL));

    /* added again (a memory slot re-created): the state is kept */
    private_ranges_add_ram(pr, 4 * GiB, 1 * GiB, true, record_change, ch,
                           &error_abort);
    g_assert_cmpuint(ch->len, ==, 0);
    g_assert_false(private_ranges_is_private(pr, 4 * GiB));
    g_assert_true(private_ranges_is_private(pr, 4 * GiB + 2 * MiB));

    /* new RAM adjacent to old: only the new part starts private */
    private_ranges_add_ram(pr, 2 * GiB, 1 * GiB, true, record_change, ch,
                           &error_abort);
    g_assert_cmpuint(ch->len, ==, 1);
    g_assert_cmpuint(g_array_index(ch, Change, 0).start, ==, 2 * GiB);
    g_assert_cmpuint(g_array_index(ch, Change, 0).size, ==, 1 * GiB);
    g_assert_cmpuint(private_ranges_ram_count(pr), ==, 2);
    g_assert_true(private_ranges_check(pr, 1 * GiB, 2 * GiB, NULL));

    /* a part removed: conversions there are refused */
    private_ranges_del_ram(pr, 2 * GiB, 1 * GiB);
    g_assert_false(private_ranges_check(pr, 1 * GiB, 2 * GiB, NULL));
    g_assert_true(private_ranges_check(pr, 1 * GiB, 1 * GiB, NULL));

    /* overlapping new and seen RAM: only the unseen gap is reported */
    g_array_set_size(ch, 0);
    private_ranges_add_ram(pr, 2 * GiB, 2 * GiB, true, record_change, ch,
                           &error_abort);
    g_assert_cmpuint(ch->len, ==, 1);
    g_assert_cmpuint(g_array_index(ch, Change, 0).start, ==, 3 * GiB);
    g_assert_cmpuint(g_array_index(ch, Change, 0).size, ==, 1 * GiB);
    private_ranges_free(pr);
}

/* A whole guest converted page by page keeps one interval, not one a page */
static void test_bounded_sequential(void)
{
    const uint64_t ram = 256 * MiB;
    PrivateRanges *pr = private_ranges_new();
    size_t base_bytes;
    uint64_t a;

    private_ranges_add_ram(pr, 0, ram, true, NULL, NULL, &error_abort);
    base_bytes = private_ranges_mem_bytes(pr);
    for (a = 0; a < ram; a += PG) {
        private_ranges_set(pr, a, PG, false, NULL, NULL, &error_abort);
        g_assert_cmpuint(private_ranges_count(pr), <=, 1);
        g_assert_cmpuint(private_ranges_mem_bytes(pr), ==, base_bytes);
    }
    g_assert_cmpuint(private_ranges_count(pr), ==, 0);
    for (a = 0; a < ram; a += 2 * MiB) {
        private_ranges_set(pr, a, 2 * MiB, true, NULL, NULL, &error_abort);
        g_assert_cmpuint(private_ranges_count(pr), ==, 1);
        g_assert_cmpuint(private_ranges_mem_bytes(pr), ==, base_bytes);
    }
    g_assert_cmpuint(private_ranges_private_bytes(pr), ==, ram);
    private_ranges_free(pr);
}

/* The worst case grows with the number of ranges, and shrinks back */
static void test_bounded_checkerboard(void)
{
    const uint64_t ram = 64 * MiB;
    const uint64_t pages = ram / PG;
    PrivateRanges *pr = private_ranges_new();
    size_t base_bytes;
    uint64_t a;

    private_ranges_add_ram(pr, 0, ram, true, NULL, NULL, &error_abort);
    base_bytes = private_ranges_mem_bytes(pr);
    for (a = 0; a < ram; a += 2 * PG) {
        private_ranges_set(pr, a, PG, false, NULL, NULL, &error_abort);
    }
    g_assert_cmpuint(private_ranges_count(pr), ==, pages / 2);
    /* 16 bytes a range, at most twice that for the array's growth */
    g_assert_cmpuint(private_ranges_mem_bytes(pr), <=,
                     base_bytes + 2 * 16 * (pages / 2));
    private_ranges_set(pr, 0, ram, true, NULL, NULL, &error_abort);
    g_assert_cmpuint(private_ranges_count(pr), ==, 1);
    g_assert_cmpuint(private_ranges_mem_bytes(pr), ==, base_bytes);
    private_ranges_free(pr);
}

static bool count_runs(uint64_t start, uint64_t size, void *opaque)
{
    (*(size_t *)opaque)++;
    return true;
}

/* Random conversions against a page-by-page reference model */
static void test_random_model(void)
{
    enum { PAGES = 512 };
    const uint64_t base = 1 * GiB;
    bool model[PAGES];
    PrivateRanges *pr = private_ranges_new();
    GRand *rand = g_rand_new_with_seed(0x5e7);
    int iter, p;

    private_ranges_add_ram(pr, base, PAGES * PG, true, NULL, NULL,
                           &error_abort);
    for (p = 0; p < PAGES; p++) {
        model[p] = true;
    }
    for (iter = 0; iter < 20000; iter++) {
        int first = g_rand_int_range(rand, 0, PAGES);
        int n = g_rand_int_range(rand, 1, MIN(PAGES - first, 64) + 1);
        bool to_private = g_rand_boolean(rand);
        size_t runs = 0, walked = 0;

        private_ranges_set(pr, base + first * PG, n * PG, to_private,
                           NULL, NULL, &error_abort);
        for (p = first; p < first + n; p++) {
            model[p] = to_private;
        }
        for (p = 0; p < PAGES; p++) {
            g_assert_cmpint(private_ranges_is_private(pr, base + p * PG), ==,
                            model[p]);
            if (model[p] && (p == 0 || !model[p - 1])) {
                runs++;
            }
        }
        g_assert_cmpuint(private_ranges_count(pr), ==, runs);
        private_ranges_foreach(pr, count_runs, &walked);
        g_assert_cmpuint(walked, ==, runs);
    }
    g_rand_free(rand);
    private_ranges_free(pr);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/private-ranges/initial", test_initial_state);
    g_test_add_func("/private-ranges/split-merge-4k", test_split_merge_4k);
    g_test_add_func("/private-ranges/2m", test_2m);
    g_test_add_func("/private-ranges/hostile", test_hostile);
    g_test_add_func("/private-ranges/del-ram", test_del_ram);
    g_test_add_func("/private-ranges/bounded/sequential",
                    test_bounded_sequential);
    g_test_add_func("/private-ranges/bounded/checkerboard",
                    test_bounded_checkerboard);
    g_test_add_func("/private-ranges/random-model", test_random_model);
    return g_test_run();
}
