/*
 * KVM private guest memory (guest_memfd) for confidential guests
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * See docs/devel/qsnp-private-memory.rst.
 */
#ifndef QEMU_KVM_PRIVATE_MEM_H
#define QEMU_KVM_PRIVATE_MEM_H

#include "exec/memory.h"

/*
 * The VM type of the kvm accelerator's test-only "x-private-memory-test"
 * property: an SNP VM that is never SEV-initialised, so that qtests drive
 * the private memory path of SNP guests under the simulator of
 * tests/kvm-sim (KVM_X86_SW_PROTECTED_VM, KVM's development type, is
 * missing from production kernels and from the simulator, which mirrors
 * them).  QEMU refuses the property unless it runs under the qtest protocol.
 */
#ifdef KVM_X86_SNP_VM
#define KVM_PRIVATE_MEM_TEST_VM_TYPE KVM_X86_SNP_VM
#else
#define KVM_PRIVATE_MEM_TEST_VM_TYPE 0
#endif

/*
 * Pick the KVM VM type: the one the confidential guest support object
 * asks for (ConfidentialGuestSupport::kvm_type), else @type, the machine's
 * choice; with @test_type non-zero (the kvm accelerator's test-only
 * "x-private-memory-test" property) that type.  Checks KVM_CAP_VM_TYPES.
 * Returns the type, or -1 with @errp set.
 */
int kvm_private_mem_vm_type(KVMState *s, MachineState *ms, int type,
                            int test_type, Error **errp);

/*
 * Called once the VM of type @type exists.  For a VM type with private
 * memory, checks the capabilities it needs and enables the
 * KVM_HC_MAP_GPA_RANGE hypercall exit; private memory is used from then on.
 */
bool kvm_private_mem_init(KVMState *s, MachineState *ms, int type,
                          bool test_only, Error **errp);

/* Whether guest RAM of this VM is backed by guest_memfd */
bool kvm_private_mem_enabled(void);

/*
 * Declare @mr, a RAM region, as firmware that is launch-updated into
 * private memory, so that it gets a guest_memfd although it is no
 * memory backend.
 */
void kvm_private_mem_add_firmware(MemoryRegion *mr);

/*
 * The guest_memfd backing [@offset, @offset + @size) of @mr's RAM block
 * when a memory slot maps it, or -1 for a slot without private memory.
 */
int kvm_private_mem_slot_fd(MemoryRegion *mr, uint64_t offset,
                            uint64_t size);

/* A memory slot with a guest_memfd was added at @gpa */
void kvm_private_mem_slot_added(uint64_t gpa, uint64_t size);
/* The slot at @gpa, at @offset of @mr's guest_memfd, was removed */
void kvm_private_mem_slot_removed(MemoryRegion *mr, uint64_t gpa,
                                  uint64_t size, uint64_t offset);

/*
 * KVM_EXIT_MEMORY_FAULT: convert [@gpa, @gpa + @size) to what the access
 * wanted, as its @flags say (run->memory_fault.flags).  Returns 0, or -1
 * (reported) if the range cannot be converted or @flags has a bit this
 * QEMU does not know.
 */
int kvm_private_mem_handle_fault(uint64_t gpa, uint64_t size, uint64_t flags);

/*
 * KVM_EXIT_HYPERCALL for KVM_HC_MAP_GPA_RANGE: returns the value for
 * run->hypercall.ret (0 or -KVM_EINVAL).
 */
uint64_t kvm_private_mem_map_gpa_range(uint64_t gpa, uint64_t npages,
                                       uint64_t attrs);

#endif
