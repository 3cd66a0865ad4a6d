/*
 * Checks of the OVMF information block parser on arbitrary input, shared
 * by the libFuzzer target and the unit test's deterministic replay.
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef TESTS_OVMF_INFO_FUZZ_H
#define TESTS_OVMF_INFO_FUZZ_H

/* Parse @data as an image, use every accessor, check the invariants */
void ovmf_info_fuzz_one(const uint8_t *data, size_t size);

#ifdef OVMF_INFO_LIBFUZZER
/* The libFuzzer entry point */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif

#endif
