/*
 * Print the C-bit position as the host's own CPUID instruction gives it:
 * leaf 0x8000001F (subleaf 0) EBX bits 5:0, whatever the host's highest
 * extended leaf (Intel CPUs then answer with their highest basic leaf).
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Upstream QEMU checks its cbitpos property against this raw value, which
 * a preloaded simulator cannot change: tests/upstream-diff gives it to
 * upstream QEMU as its cbitpos.
 */

#include <cpuid.h>
#include <stdio.h>

int main(void)
{
    unsigned int eax, ebx, ecx, edx;

    __cpuid_count(0x8000001f, 0, eax, ebx, ecx, edx);
    printf("%u\n", ebx & 0x3f);
    return 0;
}
