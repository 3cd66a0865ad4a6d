/*
 * kvm-sim: memory slots, guest_memfd and memory attributes
 *
 * Copyright (c) 2026 qemu-snp maintainers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>
#include "kvm-sim.h"

#define KS_ALIGNED(x) (((x) & (KS_PAGE_SIZE - 1)) == 0)

/* svm_vm_init(): only SNP VMs have private memory */
bool ks_vm_has_private_mem(KsVm *vm)
{
    return vm->type == KVM_X86_SNP_VM;
}

/* svm_vm_init(): SEV-ES and SNP VM types have protected state */
bool ks_vm_has_protected_state(KsVm *vm)
{
    return vm->type == KVM_X86_SEV_ES_VM || vm->type == KVM_X86_SNP_VM;
}

static bool ks_ranges_overlap(uint64_t a, uint64_t asz, uint64_t b,
                              uint64_t bsz)
{
    return a < b + bsz && b < a + asz;
}

/*
 * kvm_main.c: check_memory_region_flags(), __kvm_set_memory_region()
 * kvm_gmem_bind()
 */
long ks_set_memory_region(KsVm *vm,
                          const struct kvm_userspace_memory_region2 *m,
                          bool v2)
{
    const char *call = v2 ? "KVM_SET_USER_MEMORY_REGION2" :
                            "KVM_SET_USER_MEMORY_REGION";
    uint32_t valid = KVM_MEM_LOG_DIRTY_PAGES;
    uint16_t id = m->slot & 0xffff, as = m->slot >> 16;
    KsSlot *s;
    GHashTableIter it;
    gpointer k, val;

    if (!v2 && (m->flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))) {
        return ks_violation("R-25", call, EINVAL, 0,
                            "flags 0x%x need KVM_SET_USER_MEMORY_REGION2",
                            m->flags);
    }
    if (ks_vm_has_private_mem(vm)) {
        valid |= KVM_MEM_GUEST_MEMFD;
    }
    if (m->flags & KVM_MEM_GUEST_MEMFD) {
        valid &= ~KVM_MEM_LOG_DIRTY_PAGES;
    }
    if (!ks_vm_has_protected_state(vm) && !(m->flags & KVM_MEM_GUEST_MEMFD)) {
        valid |= KVM_MEM_READONLY;
    }
    if (m->flags & ~valid) {
        return ks_violation("R-25", call, EINVAL, 0,
                            "slot %u flags 0x%x, valid for this VM 0x%x",
                            id, m->flags, valid);
    }
    if (!KS_ALIGNED(m->memory_size) || !KS_ALIGNED(m->guest_phys_addr) ||
        !KS_ALIGNED(m->userspace_addr)) {
        return ks_violation("R-26", call, EINVAL, 0,
                            "slot %u size/gpa/uaddr not page aligned", id);
    }
    if ((m->flags & KVM_MEM_GUEST_MEMFD) &&
        (!KS_ALIGNED(m->guest_memfd_offset) ||
         m->guest_memfd_offset + m->memory_size < m->guest_memfd_offset)) {
        return ks_violation("R-26", call, EINVAL, 0,
                            "slot %u guest_memfd_offset 0x%llx invalid", id,
                            (unsigned long long)m->guest_memfd_offset);
    }
    if (as >= 1 || id >= KS_USER_MEM_SLOTS) {
        return ks_violation("R-26", call, EINVAL, 0,
                            "slot %u address space %u out of range", id, as);
    }
    if (m->guest_phys_addr + m->memory_size < m->guest_phys_addr) {
        return ks_violation("R-26", call, EINVAL, 0, "gpa range overflows");
    }

    if (m->memory_size / KS_PAGE_SIZE > KS_MEM_MAX_NR_PAGES) {
        return ks_violation("R-26", call, EINVAL, 0,
                            "slot %u size 0x%llx above KVM_MEM_MAX_NR_PAGES",
                            id, (unsigned long long)m->memory_size);
    }

    s = g_hash_table_lookup(vm->slots, GUINT_TO_POINTER(id));
    if (m->memory_size == 0) {
        /* deletion: of a slot that exists */
        if (!s) {
            return ks_violation("R-26", call, EINVAL, 0,
                                "slot %u: deleting a slot that does not "
                                "exist", id);
        }
        g_hash_table_remove(vm->slots, GUINT_TO_POINTER(id));
        return 0;
    }
    if (s) {
        /* "Private memslots are immutable, they can only be deleted." */
        if (m->flags & KVM_MEM_GUEST_MEMFD) {
            return ks_violation("R-26", call, EINVAL, 0,
                                "slot %u exists: a KVM_MEM_GUEST_MEMFD slot "
                                "cannot be changed, not even to the same "
                                "values, only deleted", id);
        }
        if (m->userspace_addr != s->uaddr || m->memory_size != s->size ||
            ((m->flags ^ s->flags) &
             (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD))) {
            return ks_violation("R-26", call, EINVAL, 0,
                                "slot %u exists: only its gpa and "
                                "KVM_MEM_LOG_DIRTY_PAGES may change (size, "
                                "userspace_addr, KVM_MEM_READONLY and "
                                "KVM_MEM_GUEST_MEMFD may not)", id);
        }
        if (m->guest_phys_addr != s->gpa) {
            /* KVM_MR_MOVE: the new range may not overlap another slot */
            g_hash_table_iter_init(&it, vm->slots);
            while (g_hash_table_iter_next(&it, &k, &val)) {
                KsSlot *o = val;
                if (o != s && ks_ranges_overlap(o->gpa, o->size,
                                                m->guest_phys_addr,
                                                m->memory_size)) {
                    return ks_violation("R-26", call, EEXIST, 0,
                                        "slot %u moved onto slot %u", id,
                                        GPOINTER_TO_UINT(k));
                }
            }
            s->gpa = m->guest_phys_addr;
        }
        /* KVM_MR_FLAGS_ONLY, or nothing to change */
        s->flags = m->flags;
        return 0;
    }
    g_hash_table_iter_init(&it, vm->slots);
    while (g_hash_table_iter_next(&it, &k, &val)) {
        KsSlot *o = val;
        if (ks_ranges_overlap(o->gpa, o->size, m->guest_phys_addr,
                              m->memory_size)) {
            return ks_violation("R-26", call, EEXIST, 0,
                                "slot %u overlaps slot %u", id,
                                GPOINTER_TO_UINT(k));
        }
    }
    if (m->flags & KVM_MEM_GUEST_MEMFD) {
        /* guest_memfd.c: kvm_gmem_bind() */
        KsFd *f = ks_fd_lookup(m->guest_memfd);
        KsGmem *g;

        if (!f) {
            return ks_violation("R-27", call, EBADF, 0,
                                "guest_memfd %u is not open", m->guest_memfd);
        }
        if (f->kind != KS_FD_GMEM || ((KsGmem *)f->obj)->vm != vm) {
            return ks_violation("R-27", call, EINVAL, 0,
                                "fd %u is not a guest_memfd of this VM",
                                m->guest_memfd);
        }
        g = f->obj;
        if (m->guest_memfd_offset + m->memory_size > g->size) {
            return ks_violation("R-27", call, EINVAL, 0,
                                "offset 0x%llx + size 0x%llx > guest_memfd "
                                "size 0x%" G_GINT64_MODIFIER "x",
                                (unsigned long long)m->guest_memfd_offset,
                                (unsigned long long)m->memory_size, g->size);
        }
        g_hash_table_iter_init(&it, vm->slots);
        while (g_hash_table_iter_next(&it, &k, &val)) {
            KsSlot *o = val;
            if ((o->flags & KVM_MEM_GUEST_MEMFD) &&
                o->gmem_fd == (int)m->guest_memfd &&
                ks_ranges_overlap(o->gmem_offset, o->size,
                                  m->guest_memfd_offset, m->memory_size)) {
                return ks_violation("R-27", call, EINVAL, 0,
                                    "guest_memfd range already bound to "
                                    "slot %u", GPOINTER_TO_UINT(k));
            }
        }
    }
    s = g_new0(KsSlot, 1);
    s->used = true;
    s->flags = m->flags;
    s->gpa = m->guest_phys_addr;
    s->size = m->memory_size;
    s->uaddr = m->userspace_addr;
    s->gmem_fd = (m->flags & KVM_MEM_GUEST_MEMFD) ? (int)m->guest_memfd : -1;
    s->gmem_offset = m->guest_memfd_offset;
    g_hash_table_replace(vm->slots, GUINT_TO_POINTER(id), s);
    return 0;
}

/* ------------------------------------------------------------ dirty log */

/*
 * The slot KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG name, or NULL after
 * recording the violation in *r.  KVM keeps a dirty bitmap only for
 * slots created or changed with KVM_MEM_LOG_DIRTY_PAGES, which a
 * guest_memfd slot can never have.
 */
static KsSlot *ks_dirty_log_slot(KsVm *vm, uint32_t slot, const char *call,
                                 long *r)
{
    uint16_t id = slot & 0xffff, as = slot >> 16;
    KsSlot *s;

    if (as >= 1 || id >= KS_USER_MEM_SLOTS) {
        *r = ks_violation("R-40", call, EINVAL, 0,
                          "slot %u address space %u out of range", id, as);
        return NULL;
    }
    s = g_hash_table_lookup(vm->slots, GUINT_TO_POINTER(id));
    if (!s || !(s->flags & KVM_MEM_LOG_DIRTY_PAGES)) {
        *r = ks_violation("R-40", call, ENOENT, 0,
                          "slot %u %s", id, !s ? "does not exist" :
                          "has no dirty bitmap (no KVM_MEM_LOG_DIRTY_PAGES)");
        return NULL;
    }
    return s;
}

/* kvm_main.c: kvm_get_dirty_log_protect() */
long ks_get_dirty_log(KsVm *vm, struct kvm_dirty_log *d)
{
    long r = 0;
    KsSlot *s = ks_dirty_log_slot(vm, d->slot, "KVM_GET_DIRTY_LOG", &r);

    if (!s) {
        return r;
    }
    /* nothing runs, so nothing is dirty (see README) */
    memset(d->dirty_bitmap, 0, ((s->size / KS_PAGE_SIZE + 63) / 64) * 8);
    return 0;
}

/* kvm_main.c: kvm_clear_dirty_log_protect() */
long ks_clear_dirty_log(KsVm *vm, struct kvm_clear_dirty_log *c)
{
    const char *call = "KVM_CLEAR_DIRTY_LOG";
    uint64_t npages;
    long r = 0;
    KsSlot *s;

    if (c->first_page & 63) {
        return ks_violation("R-40", call, EINVAL, 0,
                            "first_page %llu not a multiple of 64",
                            (unsigned long long)c->first_page);
    }
    s = ks_dirty_log_slot(vm, c->slot, call, &r);
    if (!s) {
        return r;
    }
    npages = s->size / KS_PAGE_SIZE;
    if (c->first_page > npages || c->num_pages > npages - c->first_page ||
        (c->num_pages < npages - c->first_page && (c->num_pages & 63))) {
        return ks_violation("R-40", call, EINVAL, 0,
                            "pages %llu+%u outside the slot's %llu, or not "
                            "a multiple of 64 short of its end",
                            (unsigned long long)c->first_page, c->num_pages,
                            (unsigned long long)npages);
    }
    return 0;
}

/* kvm_main.c: kvm_vm_ioctl_enable_cap_generic() */
long ks_enable_manual_dirty_log(KsVm *vm, const struct kvm_enable_cap *cap)
{
    uint64_t allowed = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;

    if (cap->args[0] & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) {
        allowed |= KVM_DIRTY_LOG_INITIALLY_SET;
    }
    if (cap->flags || (cap->args[0] & ~allowed)) {
        return ks_violation("R-40", "KVM_ENABLE_CAP", EINVAL, 0,
                            "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 flags 0x%x "
                            "args[0] 0x%llx, valid 0x%llx", cap->flags,
                            (unsigned long long)cap->args[0],
                            (unsigned long long)allowed);
    }
    vm->dirty_log_manual = cap->args[0];
    return 0;
}

KsSlot *ks_slot_for_gfn(KsVm *vm, uint64_t gfn)
{
    GHashTableIter it;
    gpointer k, val;
    uint64_t gpa = gfn * KS_PAGE_SIZE;

    g_hash_table_iter_init(&it, vm->slots);
    while (g_hash_table_iter_next(&it, &k, &val)) {
        KsSlot *s = val;
        if (gpa >= s->gpa && gpa - s->gpa < s->size) {
            return s;
        }
    }
    return NULL;
}

/* guest_memfd.c: kvm_gmem_create() */
long ks_create_gmem(KsVm *vm, const struct kvm_create_guest_memfd *a)
{
    KsGmem *g;
    int fd;

    if (a->flags) {
        return ks_violation("R-23", "KVM_CREATE_GUEST_MEMFD", EINVAL, 0,
                            "flags 0x%llx not supported",
                            (unsigned long long)a->flags);
    }
    if ((int64_t)a->size <= 0 || !KS_ALIGNED(a->size)) {
        return ks_violation("R-23", "KVM_CREATE_GUEST_MEMFD", EINVAL, 0,
                            "size 0x%llx not positive and page aligned",
                            (unsigned long long)a->size);
    }
    g = g_new0(KsGmem, 1);
    g->vm = vm;
    g->size = a->size;
    g->prepared = g_hash_table_new(g_int64_hash, g_int64_equal);
    fd = ks_fd_new(KS_FD_GMEM, g, "kvm-sim-guest-memfd", a->size);
    if (fd < 0) {
        g_free(g);
        return fd;
    }
    g->fd = fd;
    ks_log_json("{\"call\":\"KVM_CREATE_GUEST_MEMFD\",\"size\":%llu,"
                "\"result\":%d}", (unsigned long long)a->size, fd);
    return fd;
}

/* ---------------------------------------------------- private ranges */

typedef struct KsRange {
    uint64_t start, end;
} KsRange;

static void ks_ranges_set(GArray *a, uint64_t start, uint64_t end, bool set)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(KsRange));
    guint i;

    for (i = 0; i < a->len; i++) {
        KsRange r = g_array_index(a, KsRange, i);
        if (r.end <= start || r.start >= end) {
            g_array_append_val(out, r);
            continue;
        }
        if (r.start < start) {
            KsRange l = { r.start, start };
            g_array_append_val(out, l);
        }
        if (r.end > end) {
            KsRange h = { end, r.end };
            g_array_append_val(out, h);
        }
    }
    if (set) {
        KsRange n = { start, end };
        g_array_append_val(out, n);
    }
    /* sort and merge */
    for (i = 1; i < out->len; i++) {
        guint j = i;
        while (j > 0 && g_array_index(out, KsRange, j - 1).start >
               g_array_index(out, KsRange, j).start) {
            KsRange t = g_array_index(out, KsRange, j);
            g_array_index(out, KsRange, j) = g_array_index(out, KsRange, j - 1);
            g_array_index(out, KsRange, j - 1) = t;
            j--;
        }
    }
    g_array_set_size(a, 0);
    for (i = 0; i < out->len; i++) {
        KsRange r = g_array_index(out, KsRange, i);
        if (a->len && g_array_index(a, KsRange, a->len - 1).end >= r.start) {
            KsRange *p = &g_array_index(a, KsRange, a->len - 1);
            p->end = MAX(p->end, r.end);
        } else {
            g_array_append_val(a, r);
        }
    }
    g_array_free(out, TRUE);
}

bool ks_range_private(KsVm *vm, uint64_t start, uint64_t end)
{
    guint i;

    for (i = 0; i < vm->private_ranges->len; i++) {
        KsRange r = g_array_index(vm->private_ranges, KsRange, i);
        if (r.start <= start && r.end >= end) {
            return true;
        }
    }
    return false;
}

/* kvm_main.c: kvm_vm_ioctl_set_mem_attributes() */
long ks_set_memory_attributes(KsVm *vm, const struct kvm_memory_attributes *a)
{
    const char *call = "KVM_SET_MEMORY_ATTRIBUTES";
    uint64_t supported = ks_vm_has_private_mem(vm) ?
                         KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;

    if (a->flags) {
        return ks_violation("R-24", call, EINVAL, 0, "flags 0x%llx not 0",
                            (unsigned long long)a->flags);
    }
    if (a->attributes & ~supported) {
        return ks_violation("R-24", call, EINVAL, 0,
                            "attributes 0x%llx, supported 0x%llx",
                            (unsigned long long)a->attributes,
                            (unsigned long long)supported);
    }
    if (a->size == 0 || a->address + a->size < a->address) {
        return ks_violation("R-24", call, EINVAL, 0,
                            "size 0x%llx empty or range overflows",
                            (unsigned long long)a->size);
    }
    if (!KS_ALIGNED(a->address) || !KS_ALIGNED(a->size)) {
        return ks_violation("R-24", call, EINVAL, 0,
                            "address 0x%llx size 0x%llx not page aligned",
                            (unsigned long long)a->address,
                            (unsigned long long)a->size);
    }
    ks_ranges_set(vm->private_ranges, a->address, a->address + a->size,
                  a->attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE);
    ks_log_json("{\"call\":\"%s\",\"address\":%llu,\"size\":%llu,"
                "\"attributes\":%llu,\"result\":0}", call,
                (unsigned long long)a->address, (unsigned long long)a->size,
                (unsigned long long)a->attributes);
    return 0;
}

GString *ks_attrs_json(KsVm *vm, uint64_t gpa, uint64_t size)
{
    GString *p = g_string_new("["), *sh = g_string_new("[");
    uint64_t cur = gpa, end = gpa + size;
    guint i;

    for (i = 0; i < vm->private_ranges->len && cur < end; i++) {
        KsRange r = g_array_index(vm->private_ranges, KsRange, i);
        uint64_t s = MAX(r.start, cur), e = MIN(r.end, end);
        if (e <= s) {
            continue;
        }
        if (s > cur) {
            g_string_append_printf(sh, "%s[%" G_GUINT64_FORMAT ",%"
                                   G_GUINT64_FORMAT "]",
                                   sh->len > 1 ? "," : "", cur, s - cur);
        }
        g_string_append_printf(p, "%s[%" G_GUINT64_FORMAT ",%"
                               G_GUINT64_FORMAT "]",
                               p->len > 1 ? "," : "", s, e - s);
        cur = e;
    }
    if (cur < end) {
        g_string_append_printf(sh, "%s[%" G_GUINT64_FORMAT ",%"
                               G_GUINT64_FORMAT "]",
                               sh->len > 1 ? "," : "", cur, end - cur);
    }
    g_string_append(p, "],\"shared\":");
    g_string_append(p, sh->str);
    g_string_append_c(p, ']');
    g_string_free(sh, TRUE);
    return p;
}

typedef struct KsSlotRef {
    unsigned id;
    KsSlot *s;
} KsSlotRef;

static gint ks_slot_cmp(gconstpointer a, gconstpointer b)
{
    const KsSlotRef *x = a, *y = b;

    return x->s->gpa < y->s->gpa ? -1 : x->s->gpa > y->s->gpa;
}

/*
 * The memory slots in GPA order: [[slot, gpa, size, flags, guest_memfd,
 * guest_memfd_offset],...] (guest_memfd -1 for slots without one).
 */
GString *ks_memslots_json(KsVm *vm)
{
    GArray *refs = g_array_new(FALSE, FALSE, sizeof(KsSlotRef));
    GString *s = g_string_new("[");
    GHashTableIter it;
    gpointer k, val;
    guint i;

    g_hash_table_iter_init(&it, vm->slots);
    while (g_hash_table_iter_next(&it, &k, &val)) {
        KsSlotRef r = { GPOINTER_TO_UINT(k), val };

        g_array_append_val(refs, r);
    }
    g_array_sort(refs, ks_slot_cmp);
    for (i = 0; i < refs->len; i++) {
        KsSlotRef *r = &g_array_index(refs, KsSlotRef, i);

        g_string_append_printf(s, "%s[%u,%" G_GUINT64_FORMAT ",%"
                               G_GUINT64_FORMAT ",%u,%d,%" G_GUINT64_FORMAT
                               "]", i ? "," : "", r->id, r->s->gpa,
                               r->s->size, r->s->flags, r->s->gmem_fd,
                               r->s->gmem_offset);
    }
    g_string_append_c(s, ']');
    g_array_free(refs, TRUE);
    return s;
}

/* Log the memory slots and the private ranges: {"memory":WHEN,...} */
void ks_log_memory(KsVm *vm, const char *when)
{
    g_autoptr(GString) slots = ks_memslots_json(vm);
    g_autoptr(GString) attrs = ks_attrs_json(vm, 0, 1ULL << 52);

    ks_log_json("{\"memory\":\"%s\",\"memslots\":%s,\"private\":%s}", when,
                slots->str, attrs->str);
}
