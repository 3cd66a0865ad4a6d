/*
 * Bookkeeping of private and shared guest memory ranges
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * A confidential guest's RAM is, page by page, either private (backed by a
 * guest_memfd, inaccessible to QEMU) or shared (backed by QEMU's ordinary
 * mapping).  This module records which is which, with no dependency on KVM,
 * so that it can be tested on its own.
 *
 * The state is kept per range, not per page: a sorted array of disjoint
 * private intervals, adjacent intervals merged.  Memory use grows with the
 * number of distinct ranges (16 bytes each), whatever the size of the guest.
 * Requests are validated (alignment, wrap-around, bounds) before anything is
 * changed, so a request from the guest can fail but never corrupts the state.
 */
#ifndef QEMU_PRIVATE_RANGES_H
#define QEMU_PRIVATE_RANGES_H

/* Granule of conversions: the guest's smallest page */
#define PRIVATE_RANGES_PAGE_SIZE 4096ULL

typedef struct PrivateRanges PrivateRanges;

/* Called for each maximal sub-range whose state a conversion changes */
typedef void PrivateRangesChangedFn(uint64_t start, uint64_t size,
                                    bool to_private, void *opaque);

PrivateRanges *private_ranges_new(void);
void private_ranges_free(PrivateRanges *pr);

/*
 * Register [start, start + size) as guest RAM that conversions may target.
 * RAM ranges must be page aligned and must not overlap registered RAM.
 *
 * The private/shared state of an address outlives the RAM registration,
 * as KVM's memory attributes outlive memory slots: RAM that is removed
 * and added again (a memory slot re-created by a change of the memory
 * map) keeps its state.  Only addresses never registered before take the
 * initial state, private when @private_if_new; @fn is called for them.
 */
bool private_ranges_add_ram(PrivateRanges *pr, uint64_t start, uint64_t size,
                            bool private_if_new, PrivateRangesChangedFn *fn,
                            void *opaque, Error **errp);
/* Unregister the RAM range [start, start + size); its state is kept */
void private_ranges_del_ram(PrivateRanges *pr, uint64_t start, uint64_t size);

/*
 * Check that [start, start + size) may be converted: non-empty, page
 * aligned, not wrapping around, and wholly inside registered RAM.
 */
bool private_ranges_check(PrivateRanges *pr, uint64_t start, uint64_t size,
                          Error **errp);

/*
 * Make [start, start + size) private (to_private) or shared.  The range is
 * checked first (private_ranges_check); on failure nothing changes.  @fn,
 * when not NULL, is called for every sub-range whose state changed, in
 * ascending order.  Returns false with @errp set on a refused request.
 */
bool private_ranges_set(PrivateRanges *pr, uint64_t start, uint64_t size,
                        bool to_private, PrivateRangesChangedFn *fn,
                        void *opaque, Error **errp);

/* Whether the page containing @addr is private (false outside RAM) */
bool private_ranges_is_private(PrivateRanges *pr, uint64_t addr);

/* Number of private intervals kept */
size_t private_ranges_count(PrivateRanges *pr);
/* Number of RAM ranges registered */
size_t private_ranges_ram_count(PrivateRanges *pr);
/* Total private bytes */
uint64_t private_ranges_private_bytes(PrivateRanges *pr);
/* Heap bytes the bookkeeping uses */
size_t private_ranges_mem_bytes(PrivateRanges *pr);

/*
 * Call @fn(start, size, opaque) for each private interval, in ascending
 * order; stops when @fn returns false.
 */
typedef bool PrivateRangesIterFn(uint64_t start, uint64_t size, void *opaque);
void private_ranges_foreach(PrivateRanges *pr, PrivateRangesIterFn *fn,
                            void *opaque);

#endif
