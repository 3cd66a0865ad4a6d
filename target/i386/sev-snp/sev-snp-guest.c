/*
 * AMD SEV-SNP guest support: the sev-snp-guest object
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"

#include <linux/psp-sev.h>

#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/base64.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "qom/object_interfaces.h"
#include "migration/blocker.h"
#include "exec/address-spaces.h"
#include "hw/core/cpu.h"
#include "hw/i386/pc.h"
#include "sysemu/cpus.h"
#include "sysemu/hw_accel.h"
#include "sysemu/kvm.h"
#include "sysemu/runstate.h"
#include "sysemu/sysemu.h"
#include "accel/kvm/kvm-private-mem.h"
#include "cpu.h"
#include "kvm/kvm_i386.h"
#include "sev.h"
#include "sev-snp.h"
#include "snp-vmsa.h"
#include "target/i386/trace.h"

static SevSnpGuestState *snp_guest;

/* The field at @offset in a SevSnpGuestState, for table-driven properties */
#define SNP_FIELD(snp, offset, type) ((type *)((char *)(snp) + (offset)))

static int snp_dry_runs;
static void snp_activate_dry_run(void);

SevSnpGuestState *sev_snp_guest(void)
{
    if (!snp_guest && snp_dry_runs) {
        snp_activate_dry_run();
    }
    return snp_guest;
}

/* The object's id, for messages; the type name before it has one. */
static const char *snp_name(const SevSnpGuestState *snp)
{
    const Object *obj = OBJECT(snp);

    return obj->parent ? object_get_canonical_path_component(obj)
                       : TYPE_SEV_SNP_GUEST;
}

/* Once KVM runs the guest, its configuration is fixed. */
static bool snp_check_mutable(Object *obj, const char *name, Error **errp)
{
    if (snp_guest && OBJECT(snp_guest) == obj) {
        error_setg(errp, "sev-snp-guest '%s': property '%s' cannot change"
                   " once the guest is launched", snp_name(snp_guest), name);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- policy */

static bool snp_check_policy(uint64_t policy, Error **errp)
{
    uint64_t reserved = policy & ~SEV_SNP_POLICY_DEFINED_MASK;

    if (reserved) {
        error_setg(errp, "sev-snp-guest: property 'policy' value 0x%" PRIx64
                   " sets reserved bits 0x%" PRIx64 "; bits 63:25 of the"
                   " SEV-SNP guest policy must be zero", policy, reserved);
        return false;
    }
    if (!(policy & SEV_SNP_POLICY_RSVD_MBO)) {
        error_setg(errp, "sev-snp-guest: property 'policy' value 0x%" PRIx64
                   " clears bit 17, which the SEV-SNP firmware requires to"
                   " be set (0x%llx)", policy, SEV_SNP_POLICY_RSVD_MBO);
        return false;
    }
    if (policy & SEV_SNP_POLICY_MIGRATE_MA) {
        error_setg(errp, "sev-snp-guest: property 'policy' value 0x%" PRIx64
                   " sets bit 18 (MIGRATE_MA, 0x%llx): QEMU cannot provide a"
                   " migration agent, clear it", policy,
                   SEV_SNP_POLICY_MIGRATE_MA);
        return false;
    }
    return true;
}

/*
 * Why Linux KVM refuses @policy, or NULL.  The firmware ABI allows
 * policies that Linux (up to 6.12 at least) refuses with EINVAL at
 * KVM_SEV_SNP_LAUNCH_START.  QEMU does not refuse them itself, as a newer
 * kernel may accept them; when LAUNCH_START fails with EINVAL this names
 * the bit that is the likely cause.
 */
static const char *snp_policy_kvm_hint(uint64_t policy)
{
    if (!(policy & SEV_SNP_POLICY_SMT)) {
        return "KVM requires policy bit 16 (SMT allowed) to be set";
    }
    if (policy & SEV_SNP_POLICY_SINGLE_SOCKET) {
        return "KVM cannot enforce policy bit 20 (SINGLE_SOCKET)";
    }
    if (policy & (SEV_SNP_POLICY_DEFINED_MASK &
                  ~MAKE_64BIT_MASK(0, 21))) {
        return "KVM may not know policy bits 24:21 (ABI 1.55 additions)";
    }
    return NULL;
}

/*
 * Bits 15:0 of the policy give the lowest firmware ABI version the guest
 * accepts; the firmware refuses LAUNCH_START below it.  Say so before the
 * launch, in terms of the policy.
 */
static bool snp_check_abi(const SevSnpGuestState *snp, uint8_t fw_major,
                          uint8_t fw_minor, Error **errp)
{
    unsigned major = (snp->policy & SEV_SNP_POLICY_ABI_MAJOR_MASK) >>
                     SEV_SNP_POLICY_ABI_MAJOR_SHIFT;
    unsigned minor = snp->policy & SEV_SNP_POLICY_ABI_MINOR_MASK;

    if (fw_major < major || (fw_major == major && fw_minor < minor)) {
        error_setg(errp, "sev-snp-guest '%s': policy 0x%" PRIx64 " asks for"
                   " SEV-SNP firmware ABI %u.%u or later (policy bits 15:0),"
                   " the firmware implements ABI %u.%u",
                   snp_name(snp), snp->policy, major,
                   minor, fw_major, fw_minor);
        return false;
    }
    return true;
}

static void snp_get_policy(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(obj);

    visit_type_uint64(v, name, &snp->policy, errp);
}

static void snp_set_policy(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(obj);
    uint64_t value;

    if (!snp_check_mutable(obj, name, errp) ||
        !visit_type_uint64(v, name, &value, errp) ||
        !snp_check_policy(value, errp)) {
        return;
    }
    if (value & SEV_SNP_POLICY_DEBUG) {
        warn_report("sev-snp-guest: property 'policy' value 0x%" PRIx64
                    " sets bit 19 (DEBUG): the host may decrypt this guest's"
                    " memory with the firmware's debug commands",
                    value);
    }
    snp->policy = value;
}

/* ------------------------------------------------------ cbit, phys bits */

static bool snp_set_uint32_in_range(Object *obj, Visitor *v,
                                    const char *name, uint32_t *field,
                                    uint32_t min, uint32_t max,
                                    const char *what, Error **errp)
{
    uint32_t value;

    if (!snp_check_mutable(obj, name, errp) ||
        !visit_type_uint32(v, name, &value, errp)) {
        return false;
    }
    if (value < min || value > max) {
        error_setg(errp, "sev-snp-guest: property '%s' value %" PRIu32
                   " is out of range: %s must be between %" PRIu32
                   " and %" PRIu32, name, value, what, min, max);
        return false;
    }
    *field = value;
    return true;
}

static void snp_get_uint32(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    visit_type_uint32(v, name, SNP_FIELD(obj, (uintptr_t)opaque, uint32_t),
                      errp);
}

static void snp_set_cbitpos(Object *obj, Visitor *v, const char *name,
                            void *opaque, Error **errp)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(obj);

    snp_set_uint32_in_range(obj, v, name, &snp->cbitpos, SEV_SNP_CBITPOS_MIN,
                            SEV_SNP_CBITPOS_MAX,
                            "the C-bit position (a physical address bit)",
                            errp);
}

static void snp_set_reduced_phys_bits(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(obj);

    snp_set_uint32_in_range(obj, v, name, &snp->reduced_phys_bits,
                            SEV_SNP_REDUCED_PHYS_BITS_MIN,
                            SEV_SNP_REDUCED_PHYS_BITS_MAX,
                            "the number of physical address bits lost to"
                            " memory encryption", errp);
}

/* ------------------------------------------------------- base64 blobs */

/*
 * Decode @value, the base64 value of property @name, which must decode
 * to exactly @size bytes.  Returns the bytes, or NULL with @errp set.
 */
static uint8_t *snp_decode_b64(const char *name, const char *value,
                               size_t size, Error **errp)
{
    g_autofree uint8_t *data = NULL;
    Error *local_err = NULL;
    size_t len;

    data = qbase64_decode(value, -1, &len, &local_err);
    if (!data) {
        error_setg(errp, "sev-snp-guest: property '%s' is not valid base64"
                   " (%s)", name, error_get_pretty(local_err));
        error_free(local_err);
        return NULL;
    }
    if (len != size) {
        error_setg(errp, "sev-snp-guest: property '%s' decodes to %zu bytes,"
                   " it must decode to exactly %zu bytes", name, len, size);
        return NULL;
    }
    return g_steal_pointer(&data);
}

/*
 * The base64 properties.  Each has a fixed decoded size and, in the
 * object, the string as given and the decoded bytes: either in an array
 * (guest-visible-workarounds, host-data: all zeroes when unset) or in an
 * allocated buffer (id-block, id-auth: NULL when unset).
 */
typedef struct SnpBlobProp {
    const char *name;
    const char *description;
    size_t size;
    size_t b64_offset;      /* of the char * in SevSnpGuestState */
    size_t array_offset;    /* of the uint8_t array, or 0 */
    size_t buf_offset;      /* of the uint8_t * buffer, or 0 */
} SnpBlobProp;

static const SnpBlobProp snp_blob_props[] = {
    {
        .name = "guest-visible-workarounds",
        .description = "guest OS visible workarounds for LAUNCH_START"
                       " (base64, 16 bytes)",
        .size = SEV_SNP_GOSVW_SIZE,
        .b64_offset = offsetof(SevSnpGuestState, gosvw_b64),
        .array_offset = offsetof(SevSnpGuestState, gosvw),
    }, {
        .name = "id-block",
        .description = "ID block for LAUNCH_FINISH (base64, 96 bytes)",
        .size = SEV_SNP_ID_BLOCK_SIZE,
        .b64_offset = offsetof(SevSnpGuestState, id_block_b64),
        .buf_offset = offsetof(SevSnpGuestState, id_block),
    }, {
        .name = "id-auth",
        .description = "ID authentication information structure for"
                       " LAUNCH_FINISH (base64, 4096 bytes)",
        .size = SEV_SNP_ID_AUTH_SIZE,
        .b64_offset = offsetof(SevSnpGuestState, id_auth_b64),
        .buf_offset = offsetof(SevSnpGuestState, id_auth),
    }, {
        .name = "host-data",
        .description = "host data for LAUNCH_FINISH, in the attestation"
                       " report (base64, 32 bytes)",
        .size = SEV_SNP_HOST_DATA_SIZE,
        .b64_offset = offsetof(SevSnpGuestState, host_data_b64),
        .array_offset = offsetof(SevSnpGuestState, host_data),
    },
};

static void snp_get_blob(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    const SnpBlobProp *prop = opaque;
    char *value = *SNP_FIELD(obj, prop->b64_offset, char *);
    g_autofree char *copy = g_strdup(value ? value : "");

    visit_type_str(v, name, &copy, errp);
}

static void snp_set_blob(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    const SnpBlobProp *prop = opaque;
    g_autofree char *value = NULL;
    g_autofree uint8_t *data = NULL;
    char **b64 = SNP_FIELD(obj, prop->b64_offset, char *);

    if (!snp_check_mutable(obj, name, errp) ||
        !visit_type_str(v, name, &value, errp)) {
        return;
    }
    data = snp_decode_b64(name, value, prop->size, errp);
    if (!data) {
        return;
    }
    if (prop->array_offset) {
        memcpy(SNP_FIELD(obj, prop->array_offset, uint8_t), data, prop->size);
    } else {
        uint8_t **buf = SNP_FIELD(obj, prop->buf_offset, uint8_t *);

        g_free(*buf);
        *buf = g_steal_pointer(&data);
    }
    g_free(*b64);
    *b64 = g_steal_pointer(&value);
}

/* ------------------------------------------------- strings and flags */

static char *snp_get_sev_device(Object *obj, Error **errp)
{
    return g_strdup(SEV_SNP_GUEST(obj)->sev_device);
}

static void snp_set_sev_device(Object *obj, const char *value, Error **errp)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(obj);

    if (!snp_check_mutable(obj, "sev-device", errp)) {
        return;
    }
    if (!*value) {
        error_setg(errp, "sev-snp-guest: property 'sev-device' is empty;"
                   " it names the SEV device node (default "
                   SEV_SNP_DEFAULT_DEVICE ")");
        return;
    }
    g_free(snp->sev_device);
    snp->sev_device = g_strdup(value);
}

#define SNP_BOOL_PROP(field, name)                                      \
    static bool snp_get_##field(Object *obj, Error **errp)              \
    {                                                                   \
        return SEV_SNP_GUEST(obj)->field;                               \
    }                                                                   \
    static void snp_set_##field(Object *obj, bool value, Error **errp)  \
    {                                                                   \
        if (snp_check_mutable(obj, name, errp)) {                       \
            SEV_SNP_GUEST(obj)->field = value;                          \
        }                                                               \
    }

SNP_BOOL_PROP(kernel_hashes, "kernel-hashes")
SNP_BOOL_PROP(author_key_enabled, "author-key-enabled")
SNP_BOOL_PROP(vcek_disabled, "vcek-disabled")
SNP_BOOL_PROP(dry_run, "dry-run")

/* -------------------------------------------------------- the object */

/* The rules between properties, checked once all of them are set. */
static void snp_complete(UserCreatable *uc, Error **errp)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(uc);

    if (snp->id_auth && !snp->id_block) {
        error_setg(errp, "sev-snp-guest: property 'id-auth' is set but"
                   " 'id-block' is not: the ID authentication information"
                   " signs an ID block, give both");
        return;
    }
    if (snp->id_block && !snp->id_auth) {
        error_setg(errp, "sev-snp-guest: property 'id-block' is set but"
                   " 'id-auth' is not: the firmware checks the ID block"
                   " against the signature in 'id-auth', give both");
        return;
    }
    if (snp->author_key_enabled && !snp->id_auth) {
        error_setg(errp, "sev-snp-guest: property 'author-key-enabled' is"
                   " on but 'id-auth' is not set: the author key is part of"
                   " the ID authentication information");
        return;
    }
    if (snp->dry_run) {
        /* No accelerator initialises it: it is ready as it is */
        snp->parent_obj.ready = true;
        snp_dry_runs++;
    }
}

/* The object of a launched guest stays as long as the guest. */
static bool snp_can_be_deleted(UserCreatable *uc)
{
    return OBJECT(uc) != OBJECT(snp_guest);
}

/* KVM_SEV_SNP_LAUNCH_START: policy, guest OS visible workarounds */
static void snp_launch_start_params(const SevSnpGuestState *snp,
                                    struct kvm_sev_snp_launch_start *params)
{
    memset(params, 0, sizeof(*params));
    params->policy = snp->policy;
    memcpy(params->gosvw, snp->gosvw, sizeof(params->gosvw));
}

/*
 * KVM_SEV_SNP_LAUNCH_FINISH: ID block and authentication information,
 * author key and VCEK flags, host data.  The addresses point into @snp.
 */
static void snp_launch_finish_params(const SevSnpGuestState *snp,
                                     struct kvm_sev_snp_launch_finish *params)
{
    memset(params, 0, sizeof(*params));
    if (snp->id_block) {
        params->id_block_en = 1;
        params->id_block_uaddr = (uintptr_t)snp->id_block;
        params->id_auth_uaddr = (uintptr_t)snp->id_auth;
        params->auth_key_en = snp->author_key_enabled;
    }
    params->vcek_disabled = snp->vcek_disabled;
    memcpy(params->host_data, snp->host_data, sizeof(params->host_data));
}

/* ------------------------------------------------------- the launch */

/*
 * The launch runs in three steps:
 *   kvm_arch_init():   KVM_SEV_INIT2, SNP_LAUNCH_START (snp_launch_init)
 *   machine init done: SNP_LAUNCH_UPDATE of each step of the plan
 *   first VM start:    the VMSAs, SNP_LAUNCH_FINISH (snp_launch_finish)
 * With dry-run=on (any accelerator but kvm) no command is issued: the
 * same code measures what it would hand the firmware, all of it when the
 * machine is complete, and the guest never runs.
 */

/*
 * Say in @errp that the KVM_MEMORY_ENCRYPT_OP @name (of @what, if set)
 * failed with @ret, the ioctl's own result (a negative errno), and the
 * firmware status @fw_error it returned.
 */
static void snp_command_error(const SevSnpGuestState *snp, const char *name,
                              const char *what, int ret, int fw_error,
                              Error **errp)
{
    error_setg(errp, "sev-snp-guest '%s': %s%s%s failed: %s (firmware"
               " status 0x%x %s: %s)", snp_name(snp), name,
               what ? " of " : "", what ? what : "", strerror(-ret),
               fw_error, snp_fw_error_name(fw_error),
               sev_fw_error_to_str(fw_error));
}

/*
 * Issue the KVM_MEMORY_ENCRYPT_OP @cmd.  Returns the ioctl's result: 0,
 * or a negative errno with @errp saying which command failed and why.
 */
static int snp_command(SevSnpGuestState *snp, int cmd, const char *name,
                       void *data, const char *what, Error **errp)
{
    int fw_error = 0;
    int ret = sev_ioctl(snp->sev_fd, cmd, data, &fw_error);

    if (ret < 0) {
        snp_command_error(snp, name, what, ret, fw_error, errp);
    }
    return ret;
}

/*
 * KVM_SEV_INIT2: the GHCB protocol version and the VMSA features.  The
 * VMSAs the launch measures carry the same features (snp_measure_vmsas),
 * with and without KVM.
 */
static void snp_init2_params(SevSnpGuestState *snp,
                             struct kvm_sev_init *init)
{
    memset(init, 0, sizeof(*init));
    init->ghcb_version = SEV_SNP_GHCB_VERSION;
    init->vmsa_features = snp->vmsa_features;
}

static int snp_launch_init(SevSnpGuestState *snp, Error **errp)
{
    ERRP_GUARD();
    struct kvm_sev_init init;
    struct sev_user_data_snp_status status = { 0 };
    int fw_error = 0;
    struct kvm_sev_snp_launch_start start;
    const char *hint;
    uint32_t host_reduced;
    int ret;

    sev_host_mem_encrypt(&snp->host_cbitpos, &host_reduced);
    if (snp->cbitpos && snp->host_cbitpos &&
        snp->cbitpos != snp->host_cbitpos) {
        error_setg(errp, "sev-snp-guest '%s': property 'cbitpos' is %u, but"
                   " this host's C-bit is bit %u: give %u or leave it out",
                   snp_name(snp), snp->cbitpos, snp->host_cbitpos,
                   snp->host_cbitpos);
        return -1;
    }
    trace_sev_snp_host_mem_encrypt(snp->host_cbitpos, host_reduced,
                                   snp->reduced_phys_bits);

    snp->sev_fd = qemu_open_old(snp->sev_device, O_RDWR);
    if (snp->sev_fd < 0) {
        error_setg_errno(errp, errno, "sev-snp-guest '%s': cannot open"
                         " 'sev-device' %s", snp_name(snp), snp->sev_device);
        return -1;
    }
    ret = sev_platform_ioctl(snp->sev_fd, SNP_PLATFORM_STATUS, &status,
                             &fw_error);
    if (ret < 0) {
        /* the ioctl's errno, taken before anything else can change it */
        int err = errno;

        error_setg(errp, "sev-snp-guest '%s': SNP_PLATFORM_STATUS on %s"
                   " failed: %s (firmware status 0x%x %s): is SEV-SNP"
                   " enabled in the host's firmware and kernel?",
                   snp_name(snp), snp->sev_device, strerror(err), fw_error,
                   snp_fw_error_name(fw_error));
        return -1;
    }
    snp->api_major = status.api_major;
    snp->api_minor = status.api_minor;
    snp->build_id = status.build_id;
    if (!snp_check_abi(snp, status.api_major, status.api_minor, errp)) {
        return -1;
    }
    snp_init2_params(snp, &init);
    if (snp_command(snp, KVM_SEV_INIT2, "KVM_SEV_INIT2", &init, NULL,
                    errp) < 0) {
        return -1;
    }
    snp_launch_start_params(snp, &start);
    ret = snp_command(snp, KVM_SEV_SNP_LAUNCH_START, "SNP_LAUNCH_START",
                      &start, NULL, errp);
    if (ret < 0) {
        hint = ret == -EINVAL ? snp_policy_kvm_hint(snp->policy) : NULL;
        if (hint) {
            error_append_hint(errp, "%s\n", hint);
        }
        return -1;
    }
    trace_sev_snp_launch_start(snp->policy);
    snp->state = SEV_SNP_LAUNCH_STARTED;
    return 0;
}

/* The host address of guest RAM [@gpa, @gpa + @len), or NULL */
static uint8_t *snp_guest_ram(uint64_t gpa, uint64_t len)
{
    MemoryRegionSection sec = memory_region_find(get_system_memory(), gpa,
                                                 len);
    uint8_t *p = NULL;

    if (!sec.mr) {
        return NULL;
    }
    if (memory_region_is_ram(sec.mr) && !memory_region_is_ram_device(sec.mr)
        && int128_get64(sec.size) == len) {
        p = (uint8_t *)memory_region_get_ram_ptr(sec.mr) +
            sec.offset_within_region;
    }
    memory_region_unref(sec.mr);
    return p;
}

/*
 * SNP_LAUNCH_UPDATE of [@gpa, @gpa + @len) from @hva, as KVM proceeds:
 * each call may do part of the range, and returns the rest.  A call that
 * fails with EAGAIN (KVM asks to be called again, amd-memory-encryption.rst)
 * or EINTR (a signal came first) has done nothing and is repeated, up to
 * SNP_LAUNCH_UPDATE_RETRIES times in a row, a millisecond apart.
 */
#define SNP_LAUNCH_UPDATE_RETRIES 100

static bool snp_update_pages(SevSnpGuestState *snp, const SnpLaunchStep *s,
                             uint8_t *hva, Error **errp)
{
    ERRP_GUARD();
    struct kvm_sev_snp_launch_update u = {
        .gfn_start = s->gpa / SNP_PAGE_SIZE,
        .uaddr = (uintptr_t)hva,
        .len = s->len,
        .type = s->page_type,
    };
    int retries = 0;

    while (u.len) {
        uint64_t left = u.len, gpa = u.gfn_start * SNP_PAGE_SIZE;
        int fw_error = 0;
        int ret = sev_ioctl(snp->sev_fd, KVM_SEV_SNP_LAUNCH_UPDATE, &u,
                            &fw_error);

        if (ret == -EAGAIN || ret == -EINTR) {
            trace_sev_snp_launch_update_retry(s->what, gpa, ret, retries);
            if (retries++ < SNP_LAUNCH_UPDATE_RETRIES) {
                g_usleep(1000);
                continue;
            }
            snp_command_error(snp, "SNP_LAUNCH_UPDATE", s->what, ret,
                              fw_error, errp);
            error_append_hint(errp, "KVM asked for SNP_LAUNCH_UPDATE at GPA"
                              " 0x%" PRIx64 " to be repeated; it failed %d"
                              " times in a row.\n", gpa, retries);
            return false;
        }
        if (ret < 0) {
            snp_command_error(snp, "SNP_LAUNCH_UPDATE", s->what, ret,
                              fw_error, errp);
            return false;
        }
        if (u.len >= left) {
            error_setg(errp, "sev-snp-guest '%s': SNP_LAUNCH_UPDATE of %s"
                       " made no progress at GPA 0x%" PRIx64, snp_name(snp),
                       s->what, gpa);
            return false;
        }
        retries = 0;
    }
    return true;
}

/* The CPUID page: built, handed over, its rejected entries reported */
static bool snp_update_cpuid(SevSnpGuestState *snp, const SnpLaunchStep *s,
                             uint8_t *hva, bool dry_run, Error **errp)
{
    g_autofree SnpCpuidPage *page = g_new0(SnpCpuidPage, 1);
    g_autofree char *rejected = NULL;
    g_autofree char *problem = NULL;
    const struct kvm_cpuid_entry2 *entries;
    Error *err = NULL;
    int nr;

    entries = kvm_first_vcpu_cpuid(&nr);
    if (!snp_cpuid_page_build(page, entries, nr, errp)) {
        return false;
    }
    problem = snp_cpuid_page_xsave_problem(page);
    if (problem) {
        warn_report("sev-snp-guest '%s': %s", snp_name(snp), problem);
    }
    memcpy(hva, page, sizeof(*page));
    if (dry_run || snp_update_pages(snp, s, hva, &err)) {
        return true;
    }
    rejected = snp_cpuid_page_rejected(page, (SnpCpuidPage *)hva);
    if (rejected) {
        error_append_hint(&err, "The firmware rejected these CPUID"
                          " entries:\n%s\nUse a CPU model (-cpu) without"
                          " the features this host cannot give an SEV-SNP"
                          " guest.\n", rejected);
    }
    error_propagate(errp, err);
    return false;
}

static bool snp_launch_update(SevSnpGuestState *snp, bool dry_run,
                              Error **errp)
{
    g_autoptr(GArray) steps = g_array_new(false, true, sizeof(SnpLaunchStep));
    guint i;

    if (!snp->fw) {
        error_setg(errp, "sev-snp-guest '%s': no firmware was loaded: give"
                   " an OVMF image with SEV-SNP support, with -bios or as"
                   " a read-only pflash0", snp_name(snp));
        return false;
    }
    if (!snp_launch_plan(pc_system_ovmf_info(), snp->fw_size,
                         snp->hashes_written, steps, errp)) {
        error_prepend(errp, "sev-snp-guest '%s': ", snp_name(snp));
        return false;
    }
    for (i = 0; i < steps->len; i++) {
        const SnpLaunchStep *s = &g_array_index(steps, SnpLaunchStep, i);
        uint8_t *hva = s->source == SNP_SOURCE_FIRMWARE ? snp->fw :
                       snp_guest_ram(s->gpa, s->len);

        if (!hva) {
            error_setg(errp, "sev-snp-guest '%s': the firmware's %s area at"
                       " 0x%" PRIx64 "-0x%" PRIx64 " is not in guest RAM"
                       " (-m too small?)", snp_name(snp), s->what, s->gpa,
                       s->gpa + s->len - 1);
            return false;
        }
        trace_sev_snp_launch_update(s->what, s->gpa, s->len, s->page_type);
        if (!snp_measure_range(&snp->measure, s->what, s->gpa, hva, s->len,
                               s->page_type, errp)) {
            return false;
        }
        if (s->source == SNP_SOURCE_CPUID) {
            if (!snp_update_cpuid(snp, s, hva, dry_run, errp)) {
                return false;
            }
        } else if (!dry_run && !snp_update_pages(snp, s, hva, errp)) {
            return false;
        }
    }
    snp->state = SEV_SNP_LAUNCH_UPDATED;
    return true;
}

/* The VMSAs, as KVM measures them at SNP_LAUNCH_FINISH, in vCPU order */
static bool snp_measure_vmsas(SevSnpGuestState *snp, Error **errp)
{
    g_autofree uint8_t *page = g_malloc(SNP_PAGE_SIZE);
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        g_autofree char *what = g_strdup_printf("vmsa-%d", cpu->cpu_index);

        /* The APs start where the firmware's SEV-ES reset block says */
        sev_es_set_reset_vector(cpu);
        snp_vmsa_build(X86_CPU(cpu), snp->vmsa_features |
                       SNP_SEV_FEATURE_SNP_ACTIVE, page);
        if (!snp_measure_range(&snp->measure, what, SNP_VMSA_GPA, page,
                               SNP_PAGE_SIZE, SNP_PAGE_TYPE_VMSA, errp)) {
            return false;
        }
    }
    return true;
}

/* The VMSAs measured, then (unless @dry_run) SNP_LAUNCH_FINISH */
static bool snp_launch_finish(SevSnpGuestState *snp, bool dry_run,
                              Error **errp)
{
    struct kvm_sev_snp_launch_finish finish;

    if (!snp_measure_vmsas(snp, errp)) {
        return false;
    }
    if (!dry_run) {
        /* sev_es_set_reset_vector() changed the APs: hand KVM the state */
        cpu_synchronize_all_post_init();
        snp_launch_finish_params(snp, &finish);
        if (snp_command(snp, KVM_SEV_SNP_LAUNCH_FINISH, "SNP_LAUNCH_FINISH",
                        &finish, NULL, errp) < 0) {
            return false;
        }
    }
    snp->state = SEV_SNP_LAUNCH_FINISHED;
    if (trace_event_get_state_backends(TRACE_SEV_SNP_LAUNCH_FINISH)) {
        g_autofree char *hex = snp_digest_to_hex(snp->measure.digest);

        trace_sev_snp_launch_finish(snp->measure.pages, hex);
    }
    return true;
}

static void snp_machine_done(Notifier *n, void *unused)
{
    SevSnpGuestState *snp = container_of(n, SevSnpGuestState, machine_done);
    Error *err = NULL;

    if (!snp_launch_update(snp, snp->dry_run, &err) ||
        (snp->dry_run && !snp_launch_finish(snp, true, &err))) {
        error_report_err(err);
        exit(1);
    }
}

static void snp_vm_state_change(void *opaque, bool running, RunState state)
{
    SevSnpGuestState *snp = opaque;
    Error *err = NULL;

    if (!running) {
        return;
    }
    if (snp->dry_run) {
        error_report("sev-snp-guest '%s': dry-run=on measures the launch"
                     " only; the guest does not run", snp_name(snp));
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_ERROR);
        return;
    }
    if (snp->state == SEV_SNP_LAUNCH_UPDATED &&
        !snp_launch_finish(snp, false, &err)) {
        error_report_err(err);
        exit(1);
    }
}

/* Start the launch of @snp, the machine's confidential guest */
static int snp_activate(SevSnpGuestState *snp, Error **errp)
{
    snp_guest = snp;
    if (!snp->dry_run && snp_launch_init(snp, errp) < 0) {
        snp_guest = NULL;
        return -1;
    }
    snp_measure_init(&snp->measure);
    snp->machine_done.notify = snp_machine_done;
    qemu_add_machine_init_done_notifier(&snp->machine_done);
    snp->vmstate = qemu_add_vm_change_state_handler(snp_vm_state_change, snp);
    return 0;
}

/*
 * With dry-run=on no accelerator sets the guest up: it is started when
 * the machine first asks whether it has an SEV-SNP guest (as its CPUs are
 * created), once -machine confidential-guest-support named it.
 */

static void snp_activate_dry_run(void)
{
    MachineState *ms = current_machine;
    SevSnpGuestState *snp;

    if (!ms || !ms->cgs || kvm_enabled()) {
        return;
    }
    snp = (SevSnpGuestState *)object_dynamic_cast(OBJECT(ms->cgs),
                                                  TYPE_SEV_SNP_GUEST);
    if (snp && snp->dry_run) {
        snp_activate(snp, &error_abort);
        trace_sev_snp_dry_run(snp_name(snp), snp->policy);
    }
}

const OvmfApResetVector *sev_snp_ap_reset_vector(void)
{
    return snp_guest && snp_guest->ap_reset_valid ? &snp_guest->ap_reset :
           NULL;
}

int sev_snp_add_firmware(uint8_t *ptr, uint64_t len, Error **errp)
{
    SevSnpGuestState *snp = snp_guest;
    ram_addr_t offset;
    MemoryRegion *mr = memory_region_from_host(ptr, &offset);
    Error *err = NULL;

    if (snp->fw) {
        error_setg(errp, "sev-snp-guest '%s': a second firmware image; an"
                   " SEV-SNP guest has one", snp_name(snp));
        return -1;
    }
    if (!ovmf_info_ap_reset_vector(pc_system_ovmf_info(), &snp->ap_reset,
                                   &err)) {
        error_setg(errp, "sev-snp-guest '%s': the firmware cannot start an"
                   " SEV-SNP guest's APs: %s; use an OVMF build with"
                   " SEV-ES/SEV-SNP support", snp_name(snp),
                   error_get_pretty(err));
        error_free(err);
        return -1;
    }
    snp->ap_reset_valid = true;
    snp->fw = ptr;
    snp->fw_size = len;
    if (mr) {
        kvm_private_mem_add_firmware(mr);
    }
    return 0;
}

bool sev_snp_kernel_hashes_enabled(void)
{
    return snp_guest && snp_guest->kernel_hashes;
}

bool sev_snp_kernel_hashes_written(uint64_t gpa, uint64_t len, Error **errp)
{
    const OvmfSevSection *sec;
    size_t nr, i;

    if (!ovmf_info_get_sev_sections(pc_system_ovmf_info(), &sec, &nr,
                                    errp)) {
        return false;
    }
    for (i = 0; i < nr; i++) {
        if (sec[i].type == OVMF_SECTION_TYPE_SNP_KERNEL_HASHES &&
            gpa >= sec[i].base && gpa + len <= sec[i].base + sec[i].size) {
            snp_guest->hashes_written = true;
            return true;
        }
    }
    error_setg(errp, "sev-snp-guest '%s': kernel-hashes=on, but the"
               " firmware has no SEV-SNP kernel hashes area around its hash"
               " table at 0x%" PRIx64 ": use an OVMF build for measured"
               " direct boot (OvmfPkg/AmdSev)", snp_name(snp_guest), gpa);
    return false;
}

uint32_t sev_snp_cbitpos(void)
{
    return snp_guest->cbitpos ? snp_guest->cbitpos : snp_guest->host_cbitpos;
}

uint32_t sev_snp_reduced_phys_bits(void)
{
    return snp_guest->reduced_phys_bits;
}

bool sev_snp_vcpu_state_protected(void)
{
    return snp_guest && !snp_guest->dry_run &&
           snp_guest->state == SEV_SNP_LAUNCH_FINISHED;
}

int sev_snp_kvm_init(MachineState *ms, Error **errp)
{
    SevSnpGuestState *snp;
    const char *name;

    snp = (SevSnpGuestState *)object_dynamic_cast(OBJECT(ms->cgs),
                                                  TYPE_SEV_SNP_GUEST);
    if (!snp) {
        return 0;
    }
    name = snp_name(snp);

    if (snp->dry_run) {
        error_setg(errp, "sev-snp-guest '%s': property 'dry-run' is on, which"
                   " measures the launch without running the guest: use it"
                   " with -accel tcg, or turn it off to launch with KVM",
                   name);
        return -1;
    }
    if (!sev_check_kernel_irqchip("SEV-SNP", errp)) {
        return -1;
    }
    if (!(snp->policy & SEV_SNP_POLICY_SMT) && ms->smp.threads > 1) {
        error_setg(errp, "sev-snp-guest '%s': policy 0x%" PRIx64 " clears"
                   " bit 16 (SMT allowed) but -smp asks for %u threads per"
                   " core: use threads=1 or set bit 16", name, snp->policy,
                   ms->smp.threads);
        return -1;
    }

    error_setg(&snp->migration_blocker, "sev-snp-guest '%s': an SEV-SNP"
               " guest cannot be migrated (its memory and state are"
               " encrypted with keys of this host's firmware, and QEMU"
               " provides no migration agent)", name);
    if (migrate_add_blocker(snp->migration_blocker, errp) < 0) {
        goto err;
    }
    trace_sev_snp_kvm_init(name, snp->policy);

    if (snp_activate(snp, errp) < 0) {
        migrate_del_blocker(snp->migration_blocker);
        goto err;
    }
    snp->parent_obj.ready = true;
    return 0;

err:
    error_free(snp->migration_blocker);
    snp->migration_blocker = NULL;
    return -1;
}

static void snp_instance_init(Object *obj)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(obj);

    snp->sev_device = g_strdup(SEV_SNP_DEFAULT_DEVICE);
    snp->policy = SEV_SNP_POLICY_DEFAULT;
    snp->reduced_phys_bits = SEV_SNP_REDUCED_PHYS_BITS_DEFAULT;
    snp->vmsa_features = SEV_SNP_VMSA_FEATURES;
    snp->sev_fd = -1;
    /* KVM creates the VM with this type (kvm_init(), before kvm_arch_init) */
    snp->parent_obj.kvm_type = KVM_X86_SNP_VM;
}

static void snp_instance_finalize(Object *obj)
{
    SevSnpGuestState *snp = SEV_SNP_GUEST(obj);

    if (snp_guest == snp) {
        snp_guest = NULL;
    }
    if (snp->migration_blocker) {
        migrate_del_blocker(snp->migration_blocker);
        error_free(snp->migration_blocker);
    }
    if (snp->vmstate) {
        qemu_del_vm_change_state_handler(snp->vmstate);
    }
    if (snp->machine_done.notify) {
        qemu_remove_machine_init_done_notifier(&snp->machine_done);
    }
    if (snp->sev_fd >= 0) {
        close(snp->sev_fd);
    }
    snp_measure_clear(&snp->measure);
    g_free(snp->sev_device);
    g_free(snp->gosvw_b64);
    g_free(snp->id_block_b64);
    g_free(snp->id_block);
    g_free(snp->id_auth_b64);
    g_free(snp->id_auth);
    g_free(snp->host_data_b64);
}

static void snp_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);
    size_t i;

    ucc->complete = snp_complete;
    ucc->can_be_deleted = snp_can_be_deleted;

    object_class_property_add_str(oc, "sev-device", snp_get_sev_device,
                                  snp_set_sev_device);
    object_class_property_set_description(oc, "sev-device",
            "SEV device to use (default " SEV_SNP_DEFAULT_DEVICE ")");

    object_class_property_add(oc, "policy", "uint64", snp_get_policy,
                              snp_set_policy, NULL, NULL);
    object_class_property_set_description(oc, "policy",
            "SEV-SNP guest policy (default 0x30000)");

    object_class_property_add(oc, "cbitpos", "uint32", snp_get_uint32,
                              snp_set_cbitpos, NULL,
                              (void *)offsetof(SevSnpGuestState, cbitpos));
    object_class_property_set_description(oc, "cbitpos",
            "C-bit location in page table entries (32-63; default: the"
            " host CPU's, CPUID 0x8000001F EBX[5:0])");

    object_class_property_add(oc, "reduced-phys-bits", "uint32",
                              snp_get_uint32, snp_set_reduced_phys_bits, NULL,
                              (void *)offsetof(SevSnpGuestState,
                                               reduced_phys_bits));
    object_class_property_set_description(oc, "reduced-phys-bits",
            "number of physical address bits lost to memory encryption"
            " (1-63; default 1, as query-sev-capabilities reports)");

    for (i = 0; i < ARRAY_SIZE(snp_blob_props); i++) {
        const SnpBlobProp *prop = &snp_blob_props[i];

        object_class_property_add(oc, prop->name, "str", snp_get_blob,
                                  snp_set_blob, NULL, (void *)prop);
        object_class_property_set_description(oc, prop->name,
                                              prop->description);
    }

    object_class_property_add_bool(oc, "author-key-enabled",
                                   snp_get_author_key_enabled,
                                   snp_set_author_key_enabled);
    object_class_property_set_description(oc, "author-key-enabled",
            "id-auth holds an author key signing the ID key");
    object_class_property_add_bool(oc, "vcek-disabled",
                                   snp_get_vcek_disabled,
                                   snp_set_vcek_disabled);
    object_class_property_set_description(oc, "vcek-disabled",
            "the guest must not use the VCEK to sign attestation reports");
    object_class_property_add_bool(oc, "kernel-hashes",
                                   snp_get_kernel_hashes,
                                   snp_set_kernel_hashes);
    object_class_property_set_description(oc, "kernel-hashes",
            "add kernel hashes to guest firmware for measured Linux boot");
    object_class_property_add_bool(oc, "dry-run", snp_get_dry_run,
                                   snp_set_dry_run);
    object_class_property_set_description(oc, "dry-run",
            "measure the launch without SEV-SNP (any accelerator but kvm);"
            " the guest does not run");
}

static const TypeInfo sev_snp_guest_info = {
    .parent = TYPE_CONFIDENTIAL_GUEST_SUPPORT,
    .name = TYPE_SEV_SNP_GUEST,
    .instance_size = sizeof(SevSnpGuestState),
    .instance_init = snp_instance_init,
    .instance_finalize = snp_instance_finalize,
    .class_init = snp_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    }
};

static void sev_snp_register_types(void)
{
    type_register_static(&sev_snp_guest_info);
}

type_init(sev_snp_register_types);
