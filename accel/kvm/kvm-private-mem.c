/*
 * KVM private guest memory (guest_memfd) for confidential guests
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * See docs/devel/qsnp-private-memory.rst for what gets private memory,
 * how conversions work and what QEMU can read of private memory.
 */

#include "qemu/osdep.h"
#include <linux/kvm.h>
#include <linux/kvm_para.h>
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qom/object.h"
#include "exec/confidential-guest-support.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "exec/ramblock.h"
#include "exec/ram_addr.h"
#include "exec/ramlist.h"
#include "hw/boards.h"
#include "migration/blocker.h"
#include "sysemu/kvm.h"
#include "sysemu/kvm_int.h"
#include "sysemu/qtest.h"
#include "sysemu/sysemu.h"
#include "kvm-private-mem.h"
#include "private-ranges.h"
#include "trace.h"

/* A RAM block with a guest_memfd, keyed by its host address */
typedef struct GmemBlock {
    int fd;
    uint64_t size;
    PrivateRanges *bound;       /* offsets bound to a memory slot */
} GmemBlock;

typedef struct KVMPrivateMem {
    bool enabled;
    bool test_only;
    PrivateRanges *ranges;      /* GPA state, RAM = slots with guest_memfd */
    GHashTable *blocks;         /* host pointer -> GmemBlock */
    GHashTable *firmware;       /* RAMBlock set */
    RAMBlockNotifier notifier;
    Notifier init_done;
    Error *migration_blocker;
    uint64_t conversions;
    uint64_t refused;
} KVMPrivateMem;

static KVMPrivateMem kpm;

#ifdef KVM_X86_SNP_VM
/* VM types with private memory, and the Linux release that brought them */
static const struct {
    int type;
    const char *name;
    const char *linux_version;
    bool private_mem;
} vm_types[] = {
    { KVM_X86_DEFAULT_VM, "KVM_X86_DEFAULT_VM", NULL, false },
    { KVM_X86_SW_PROTECTED_VM, "KVM_X86_SW_PROTECTED_VM", "6.8", true },
    { KVM_X86_SEV_VM, "KVM_X86_SEV_VM", "6.10", false },
    { KVM_X86_SEV_ES_VM, "KVM_X86_SEV_ES_VM", "6.10", false },
    { KVM_X86_SNP_VM, "KVM_X86_SNP_VM", "6.11", true },
};
#endif

static int vm_type_index(int type)
{
#ifdef KVM_X86_SNP_VM
    int i;

    for (i = 0; i < ARRAY_SIZE(vm_types); i++) {
        if (vm_types[i].type == type) {
            return i;
        }
    }
#endif
    return -1;
}

static bool vm_type_has_private_mem(int type)
{
#ifdef KVM_X86_SNP_VM
    int i = vm_type_index(type);

    return i >= 0 && vm_types[i].private_mem;
#else
    return false;
#endif
}

int kvm_private_mem_vm_type(KVMState *s, MachineState *ms, int type,
                            int test_type, Error **errp)
{
    ConfidentialGuestSupport *cgs = ms->cgs;
    int want = 0, i;

    if (cgs && cgs->kvm_type) {
        want = cgs->kvm_type;
    } else if (test_type) {
        want = test_type;
    }
    if (!want) {
        return type;
    }
    if (type) {
        error_setg(errp, "the machine's KVM VM type %d conflicts with "
                   "VM type %d of the confidential guest support", type,
                   want);
        return -1;
    }
    i = vm_type_index(want);
    if (i < 0) {
        error_setg(errp, "unknown KVM VM type %d", want);
        return -1;
    }
#ifdef KVM_X86_SNP_VM
    int64_t supported = kvm_check_extension(s, KVM_CAP_VM_TYPES);

    if (supported <= 0) {
        error_setg(errp, "KVM VM type %s needs KVM_CAP_VM_TYPES, which this "
                   "host's KVM lacks (it needs Linux %s or later)",
                   vm_types[i].name, vm_types[i].linux_version);
        return -1;
    }
    if (!(supported & (1ULL << want))) {
        error_setg(errp, "KVM does not support VM type %s "
                   "(KVM_CAP_VM_TYPES is 0x%" PRIx64 "; it needs Linux %s "
                   "or later, with the feature enabled in KVM)",
                   vm_types[i].name, supported, vm_types[i].linux_version);
        return -1;
    }
#endif
    return want;
}

static bool kpm_private_ranges_prop_iter(uint64_t start, uint64_t size,
                                         void *opaque)
{
    GString *s = opaque;

    g_string_append_printf(s, "%s0x%" PRIx64 "+0x%" PRIx64,
                           s->len ? " " : "", start, size);
    return true;
}

/* The private ranges as "GPA+SIZE ...", for tests and debugging */
static char *kpm_get_private_ranges(Object *obj, Error **errp)
{
    GString *s = g_string_new("");

    if (kpm.ranges) {
        private_ranges_foreach(kpm.ranges, kpm_private_ranges_prop_iter, s);
    }
    return g_string_free(s, false);
}

static void kpm_get_counter(Object *obj, Visitor *v, const char *name,
                            void *opaque, Error **errp)
{
    uint64_t value = *(uint64_t *)opaque;

    visit_type_uint64(v, name, &value, errp);
}

static void kpm_ram_block_removed(RAMBlockNotifier *n, void *host,
                                  size_t size, size_t max_size)
{
    GmemBlock *b = g_hash_table_lookup(kpm.blocks, host);

    if (b) {
        close(b->fd);
        private_ranges_free(b->bound);
        g_hash_table_remove(kpm.blocks, host);
    }
}

static void kpm_machine_init_done(Notifier *n, void *data)
{
    Error *local_err = NULL;

    if (kpm.test_only && !qtest_driver()) {
        error_report("kvm: x-private-memory-test is for QEMU's qtests only "
                     "(it needs -qtest); use a confidential guest object");
        exit(1);
    }
    error_setg(&kpm.migration_blocker, "guest memory of this VM is private "
               "(guest_memfd): migrating it is not supported");
    if (migrate_add_blocker(kpm.migration_blocker, &local_err) < 0) {
        error_report_err(local_err);
        exit(1);
    }
}

bool kvm_private_mem_init(KVMState *s, MachineState *ms, int type,
                          bool test_only, Error **errp)
{
    int hc;

    if (!vm_type_has_private_mem(type)) {
        return true;
    }
    if (kvm_vm_check_extension(s, KVM_CAP_GUEST_MEMFD) <= 0) {
        error_setg(errp, "KVM lacks KVM_CAP_GUEST_MEMFD (Linux 6.8 or later)");
        return false;
    }
    if (kvm_vm_check_extension(s, KVM_CAP_USER_MEMORY2) <= 0) {
        error_setg(errp, "KVM lacks KVM_CAP_USER_MEMORY2 (Linux 6.8 or later)");
        return false;
    }
    if (!(kvm_vm_check_extension(s, KVM_CAP_MEMORY_ATTRIBUTES) &
          KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        error_setg(errp, "KVM lacks KVM_MEMORY_ATTRIBUTE_PRIVATE in "
                   "KVM_CAP_MEMORY_ATTRIBUTES (Linux 6.8 or later)");
        return false;
    }
    hc = kvm_vm_check_extension(s, KVM_CAP_EXIT_HYPERCALL);
    if (!(hc & (1 << KVM_HC_MAP_GPA_RANGE))) {
        error_setg(errp, "KVM cannot forward KVM_HC_MAP_GPA_RANGE "
                   "(KVM_CAP_EXIT_HYPERCALL, Linux 5.15 or later)");
        return false;
    }
    if (kvm_vm_enable_cap(s, KVM_CAP_EXIT_HYPERCALL, 0,
                          1 << KVM_HC_MAP_GPA_RANGE) < 0) {
        error_setg(errp, "KVM_ENABLE_CAP KVM_CAP_EXIT_HYPERCALL failed");
        return false;
    }

    kpm.enabled = true;
    kpm.test_only = test_only;
    kpm.ranges = private_ranges_new();
    kpm.blocks = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    kpm.firmware = g_hash_table_new(NULL, NULL);
    kpm.notifier.ram_block_removed = kpm_ram_block_removed;
    ram_block_notifier_add(&kpm.notifier);
    kpm.init_done.notify = kpm_machine_init_done;
    qemu_add_machine_init_done_notifier(&kpm.init_done);

    object_property_add_str(OBJECT(ms), "x-private-ranges",
                            kpm_get_private_ranges, NULL);
    object_property_add(OBJECT(ms), "x-private-conversions", "uint64",
                        kpm_get_counter, NULL, NULL, &kpm.conversions);
    object_property_add(OBJECT(ms), "x-private-refused", "uint64",
                        kpm_get_counter, NULL, NULL, &kpm.refused);
    return true;
}

bool kvm_private_mem_enabled(void)
{
    return kpm.enabled;
}

void kvm_private_mem_add_firmware(MemoryRegion *mr)
{
    if (kpm.enabled && mr->ram_block) {
        g_hash_table_add(kpm.firmware, mr->ram_block);
    }
}

/* Whether @mr can be private guest RAM; exits naming what cannot */
static bool kpm_wants_guest_memfd(MemoryRegion *mr)
{
    RAMBlock *rb = mr->ram_block;
    Object *owner = memory_region_owner(mr);

    if (!rb || memory_region_is_ram_device(mr)) {
        return false;
    }
    if (g_hash_table_contains(kpm.firmware, rb)) {
        return true;
    }
    if (!owner || !object_dynamic_cast(owner, TYPE_MEMORY_BACKEND)) {
        /* device RAM and ROM (option ROMs, video RAM): shared only */
        return false;
    }
    if (object_dynamic_cast(owner, "memory-backend-epc")) {
        error_report("memory backend '%s' (memory-backend-epc) cannot be "
                     "guest RAM of a VM with private memory: SGX EPC is no "
                     "ordinary memory", object_get_canonical_path_component(
                         owner));
        exit(1);
    }
    if (ramblock_is_pmem(rb)) {
        error_report("memory backend '%s' (pmem=on) cannot be guest RAM of "
                     "a VM with private memory: the guest's data lives in "
                     "guest_memfd, never in the persistent file",
                     object_get_canonical_path_component(owner));
        exit(1);
    }
    if (mr->readonly) {
        error_report("memory backend '%s' is read-only and cannot be guest "
                     "RAM of a VM with private memory, whose guest converts "
                     "pages to shared and writes them",
                     object_get_canonical_path_component(owner));
        exit(1);
    }
    return true;
}

int kvm_private_mem_slot_fd(MemoryRegion *mr, uint64_t offset, uint64_t size)
{
    RAMBlock *rb = mr->ram_block;
    GmemBlock *b;

    if (!kpm.enabled || !kpm_wants_guest_memfd(mr)) {
        return -1;
    }
    b = g_hash_table_lookup(kpm.blocks, rb->host);
    if (!b) {
        struct kvm_create_guest_memfd gmem = {
            .size = rb->max_length,
        };
        int fd = kvm_vm_ioctl(kvm_state, KVM_CREATE_GUEST_MEMFD, &gmem);

        if (fd < 0) {
            error_report("KVM_CREATE_GUEST_MEMFD of 0x%" PRIx64 " bytes for "
                         "'%s' failed: %s", (uint64_t)rb->max_length,
                         rb->idstr, strerror(-fd));
            exit(1);
        }
        b = g_new0(GmemBlock, 1);
        b->fd = fd;
        b->size = rb->max_length;
        b->bound = private_ranges_new();
        g_hash_table_insert(kpm.blocks, rb->host, b);
    }
    /*
     * A guest_memfd range binds to one slot only; a second mapping of the
     * same RAM (an alias such as the BIOS below 1 MiB) stays shared.
     */
    if (offset + size > b->size ||
        !private_ranges_add_ram(b->bound, offset, size, false, NULL, NULL,
                                NULL)) {
        return -1;
    }
    return b->fd;
}

static void kpm_slot_set_private(uint64_t gpa, uint64_t size, bool to_private,
                                 void *opaque)
{
    struct kvm_memory_attributes attr = {
        .address = gpa,
        .size = size,
        .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    };
    int ret = kvm_vm_ioctl(kvm_state, KVM_SET_MEMORY_ATTRIBUTES, &attr);

    trace_kvm_private_mem_initial(gpa, size, ret);
    if (ret < 0) {
        error_report("KVM_SET_MEMORY_ATTRIBUTES private at 0x%" PRIx64
                     "+0x%" PRIx64 " failed: %s", gpa, size, strerror(-ret));
        exit(1);
    }
}

void kvm_private_mem_slot_added(uint64_t gpa, uint64_t size)
{
    Error *local_err = NULL;

    /* guest RAM starts private; re-created slots keep their state */
    if (!private_ranges_add_ram(kpm.ranges, gpa, size, true,
                                kpm_slot_set_private, NULL, &local_err)) {
        error_report_err(local_err);
        exit(1);
    }
}

void kvm_private_mem_slot_removed(MemoryRegion *mr, uint64_t gpa,
                                  uint64_t size, uint64_t offset)
{
    GmemBlock *b = mr->ram_block ?
        g_hash_table_lookup(kpm.blocks, mr->ram_block->host) : NULL;

    private_ranges_del_ram(kpm.ranges, gpa, size);
    if (b) {
        private_ranges_del_ram(b->bound, offset, size);
    }
}

/* Discard the side no longer used of a range whose state changed */
static void kpm_discard(uint64_t gpa, uint64_t size, bool to_private,
                        void *opaque)
{
    while (size) {
        MemoryRegionSection sec = memory_region_find(get_system_memory(),
                                                     gpa, size);
        uint64_t len = int128_get64(sec.size);
        uint64_t off = sec.offset_within_region;
        RAMBlock *rb = sec.mr ? sec.mr->ram_block : NULL;
        int ret = 0;

        if (!sec.mr || !len) {
            break;
        }
        if (rb && to_private) {
            /* the shared copy is stale now; not when devices pin it */
            if (!ram_block_discard_is_disabled() &&
                QEMU_IS_ALIGNED(off | len, qemu_ram_pagesize(rb))) {
                ret = ram_block_discard_range(rb, off, len);
            }
        } else if (rb) {
            GmemBlock *b = g_hash_table_lookup(kpm.blocks, rb->host);

            if (b && off + len <= b->size) {
                ret = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE |
                                FALLOC_FL_KEEP_SIZE, off, len) ? -errno : 0;
            }
        }
        trace_kvm_private_mem_discard(gpa, len, to_private, ret);
        if (ret < 0) {
            warn_report("discarding the %s copy of 0x%" PRIx64 "+0x%" PRIx64
                        " failed: %s", to_private ? "shared" : "private",
                        gpa, len, strerror(-ret));
        }
        memory_region_unref(sec.mr);
        gpa += len;
        size -= len;
    }
}

/* Convert a range; called with the BQL held */
static int kpm_convert(uint64_t gpa, uint64_t size, bool to_private,
                       Error **errp)
{
    struct kvm_memory_attributes attr = {
        .address = gpa,
        .size = size,
        .attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
    };
    int ret;

    if (!private_ranges_check(kpm.ranges, gpa, size, errp)) {
        kpm.refused++;
        return -EINVAL;
    }
    /* one ioctl for the whole contiguous range */
    ret = kvm_vm_ioctl(kvm_state, KVM_SET_MEMORY_ATTRIBUTES, &attr);
    trace_kvm_private_mem_convert(gpa, size, to_private, ret);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "KVM_SET_MEMORY_ATTRIBUTES at 0x%"
                         PRIx64 "+0x%" PRIx64 " failed", gpa, size);
        kpm.refused++;
        return ret;
    }
    private_ranges_set(kpm.ranges, gpa, size, to_private, kpm_discard, NULL,
                       &error_abort);
    kpm.conversions++;
    return 0;
}

/*
 * The flags of KVM_EXIT_MEMORY_FAULT that QEMU knows: Linux 6.12 defines
 * only KVM_MEMORY_EXIT_FLAG_PRIVATE (api.rst, KVM_EXIT_MEMORY_FAULT).  A
 * flag a later kernel adds may change what the fault asks for, so a fault
 * with another bit is not converted.
 */
#define KPM_FAULT_FLAGS_KNOWN KVM_MEMORY_EXIT_FLAG_PRIVATE

int kvm_private_mem_handle_fault(uint64_t gpa, uint64_t size, uint64_t flags)
{
    Error *local_err = NULL;
    uint64_t start = QEMU_ALIGN_DOWN(gpa, PRIVATE_RANGES_PAGE_SIZE);
    bool private = flags & KVM_MEMORY_EXIT_FLAG_PRIVATE;
    int ret;

    qemu_mutex_lock_iothread();
    if (!kpm.enabled) {
        error_setg(&local_err, "memory fault without private memory");
        ret = -EINVAL;
    } else if (flags & ~(uint64_t)KPM_FAULT_FLAGS_KNOWN) {
        error_setg(&local_err, "at 0x%" PRIx64 "+0x%" PRIx64 ": unknown"
                   " flags 0x%" PRIx64 " (this QEMU knows only"
                   " KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x%llx); not converted",
                   gpa, size, flags & ~(uint64_t)KPM_FAULT_FLAGS_KNOWN,
                   KVM_MEMORY_EXIT_FLAG_PRIVATE);
        kpm.refused++;
        ret = -EINVAL;
    } else if (gpa + size < gpa) {
        error_setg(&local_err, "range 0x%" PRIx64 "+0x%" PRIx64 " wraps",
                   gpa, size);
        kpm.refused++;
        ret = -EINVAL;
    } else {
        uint64_t end = ROUND_UP(gpa + size, PRIVATE_RANGES_PAGE_SIZE);

        /* end wraps to 0 at the top: then the range is refused */
        ret = kpm_convert(start, end - start, private, &local_err);
    }
    qemu_mutex_unlock_iothread();
    if (ret < 0) {
        error_reportf_err(local_err, "KVM_EXIT_MEMORY_FAULT %s access: ",
                          private ? "private" : "shared");
        return -1;
    }
    return 0;
}

uint64_t kvm_private_mem_map_gpa_range(uint64_t gpa, uint64_t npages,
                                       uint64_t attrs)
{
    Error *local_err = NULL;
    int ret = -EINVAL;

    qemu_mutex_lock_iothread();
    if (!kpm.enabled) {
        error_setg(&local_err, "no private memory in this VM");
#ifdef KVM_MAP_GPA_RANGE_ENCRYPTED
    } else if (attrs & ~(uint64_t)(KVM_MAP_GPA_RANGE_ENCRYPTED | 0xf)) {
        error_setg(&local_err, "reserved attribute bits 0x%" PRIx64, attrs);
        kpm.refused++;
    } else if ((attrs & 0xf) > KVM_MAP_GPA_RANGE_PAGE_SZ_1G) {
        error_setg(&local_err, "unknown page size %" PRIu64, attrs & 0xf);
        kpm.refused++;
    } else if (!npages || npages > UINT64_MAX / PRIVATE_RANGES_PAGE_SIZE) {
        error_setg(&local_err, "bad page count 0x%" PRIx64, npages);
        kpm.refused++;
    } else {
        ret = kpm_convert(gpa, npages * PRIVATE_RANGES_PAGE_SIZE,
                          attrs & KVM_MAP_GPA_RANGE_ENCRYPTED, &local_err);
#endif
    }
    qemu_mutex_unlock_iothread();
    if (ret < 0) {
        /* the guest is told; a guest can repeat this, so only trace it */
        trace_kvm_private_mem_refused(gpa, npages, attrs,
                                      error_get_pretty(local_err));
        error_free(local_err);
        return (uint64_t)-KVM_EINVAL;
    }
    return 0;
}
