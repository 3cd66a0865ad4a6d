/*
 * AMD SEV-SNP guest support: the sev-snp-guest object
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef I386_SEV_SNP_H
#define I386_SEV_SNP_H

#ifndef CONFIG_USER_ONLY
#include CONFIG_DEVICES /* CONFIG_SEV */
#endif

#include <linux/kvm.h>

#include "exec/confidential-guest-support.h"
#include "hw/boards.h"
#include "hw/i386/ovmf-info.h"
#include "qom/object.h"
#include "sysemu/runstate.h"
#include "snp-launch.h"

#define TYPE_SEV_SNP_GUEST "sev-snp-guest"
OBJECT_DECLARE_SIMPLE_TYPE(SevSnpGuestState, SEV_SNP_GUEST)

/*
 * Guest policy, as laid out in the SEV-SNP firmware ABI specification
 * (revision 1.55, "Guest Policy").  Bits 63:25 are reserved and must be
 * zero; bit 17 is reserved and must be one.
 */
#define SEV_SNP_POLICY_ABI_MINOR_MASK       0xffULL
#define SEV_SNP_POLICY_ABI_MAJOR_SHIFT      8
#define SEV_SNP_POLICY_ABI_MAJOR_MASK       (0xffULL << 8)
#define SEV_SNP_POLICY_SMT                  (1ULL << 16)
#define SEV_SNP_POLICY_RSVD_MBO             (1ULL << 17)
#define SEV_SNP_POLICY_MIGRATE_MA           (1ULL << 18)
#define SEV_SNP_POLICY_DEBUG                (1ULL << 19)
#define SEV_SNP_POLICY_SINGLE_SOCKET        (1ULL << 20)
#define SEV_SNP_POLICY_CXL_ALLOW            (1ULL << 21)
#define SEV_SNP_POLICY_MEM_AES_256_XTS      (1ULL << 22)
#define SEV_SNP_POLICY_RAPL_DIS             (1ULL << 23)
#define SEV_SNP_POLICY_CIPHERTEXT_HIDING    (1ULL << 24)
/* The bits the 1.55 specification defines; the others are reserved. */
#define SEV_SNP_POLICY_DEFINED_MASK         MAKE_64BIT_MASK(0, 25)
/* SMT allowed, reserved bit 17 set: the policy upstream QEMU defaults to */
#define SEV_SNP_POLICY_DEFAULT  (SEV_SNP_POLICY_SMT | SEV_SNP_POLICY_RSVD_MBO)

/* Sizes of the blobs, fixed by the firmware ABI (and so by KVM's ABI) */
#define SEV_SNP_GOSVW_SIZE \
    sizeof(((struct kvm_sev_snp_launch_start *)NULL)->gosvw)
#define SEV_SNP_ID_BLOCK_SIZE       KVM_SEV_SNP_ID_BLOCK_SIZE
#define SEV_SNP_ID_AUTH_SIZE        KVM_SEV_SNP_ID_AUTH_SIZE
#define SEV_SNP_HOST_DATA_SIZE      KVM_SEV_SNP_FINISH_DATA_SIZE

/* The C-bit position and the reduced physical address bits accepted */
#define SEV_SNP_CBITPOS_MIN             32
#define SEV_SNP_CBITPOS_MAX             63
#define SEV_SNP_REDUCED_PHYS_BITS_MIN   1
#define SEV_SNP_REDUCED_PHYS_BITS_MAX   63

/*
 * The reduced physical address bits the guest's CPUID reports (0x8000001F
 * EBX[11:6]) unless reduced-phys-bits says otherwise: one bit, the C-bit,
 * which the guest's page tables use as the encryption bit.  It is also
 * what query-sev-capabilities reports for the host (sev.c), the value
 * libvirt shows and passes.  Neither the host CPU's own CPUID value nor
 * KVM's is the guest's: the CPU's is the reduction of the host's physical
 * addresses, which with nested paging does not apply to guest physical
 * addresses, and KVM (Linux 6.12, __do_cpuid_func()) reports 0 there and
 * the unreduced MAXPHYADDR in 0x80000008.
 */
#define SEV_SNP_REDUCED_PHYS_BITS_DEFAULT 1

/*
 * What QEMU gives KVM_SEV_INIT2: GHCB protocol version 2 and no optional
 * VMSA feature (Linux 6.12 supports only DEBUG_SWAP, bit 5).  The VMSAs
 * measured at launch carry the VM's features with SNP_ACTIVE.
 */
#define SEV_SNP_GHCB_VERSION            2
#define SEV_SNP_VMSA_FEATURES           0

#define SEV_SNP_DEFAULT_DEVICE          "/dev/sev"

/* Where the launch of an SEV-SNP guest is (query-sev reports it) */
typedef enum SevSnpLaunchState {
    SEV_SNP_LAUNCH_NONE,
    SEV_SNP_LAUNCH_STARTED,     /* SNP_LAUNCH_START done */
    SEV_SNP_LAUNCH_UPDATED,     /* every SNP_LAUNCH_UPDATE done */
    SEV_SNP_LAUNCH_FINISHED,    /* SNP_LAUNCH_FINISH done: digest final */
} SevSnpLaunchState;

/**
 * SevSnpGuestState:
 *
 * An SEV-SNP confidential guest, created with
 *
 *   -object sev-snp-guest,id=snp0,cbitpos=51,reduced-phys-bits=1
 *   -machine ...,confidential-guest-support=snp0
 *
 * The configuration fields are set through the QOM properties, which
 * validate them; they do not change once the object is complete.  The
 * base64 properties are kept as given (for qom-get) and decoded.
 */
struct SevSnpGuestState {
    ConfidentialGuestSupport parent_obj;

    /* Configuration */
    char *sev_device;           /* sev-device */
    uint64_t policy;            /* policy */
    uint32_t cbitpos;           /* cbitpos; 0: the host CPU's, at launch */
    uint32_t reduced_phys_bits; /* reduced-phys-bits */
    uint64_t vmsa_features;     /* KVM_SEV_INIT2's, without SNP_ACTIVE */
    bool kernel_hashes;         /* kernel-hashes */
    bool author_key_enabled;    /* author-key-enabled */
    bool vcek_disabled;         /* vcek-disabled */
    char *gosvw_b64;            /* guest-visible-workarounds, or NULL */
    uint8_t gosvw[SEV_SNP_GOSVW_SIZE];
    char *id_block_b64;         /* id-block, or NULL */
    uint8_t *id_block;          /* SEV_SNP_ID_BLOCK_SIZE bytes, or NULL */
    char *id_auth_b64;          /* id-auth, or NULL */
    uint8_t *id_auth;           /* SEV_SNP_ID_AUTH_SIZE bytes, or NULL */
    char *host_data_b64;        /* host-data, or NULL */
    uint8_t host_data[SEV_SNP_HOST_DATA_SIZE];

    bool dry_run;               /* dry-run */

    /* Runtime state */
    Error *migration_blocker;
    SevSnpLaunchState state;
    int sev_fd;
    uint32_t host_cbitpos;      /* the host's C-bit position, or 0 */
    uint8_t api_major;          /* the firmware's ABI (SNP_PLATFORM_STATUS) */
    uint8_t api_minor;
    uint32_t build_id;
    uint8_t *fw;                /* the firmware as loaded, for the launch */
    uint64_t fw_size;
    OvmfApResetVector ap_reset; /* where the APs start */
    bool ap_reset_valid;
    bool hashes_written;        /* the kernel hashes table is in place */
    SnpMeasure measure;         /* launch digest and log */
    Notifier machine_done;
    VMChangeStateEntry *vmstate;
};

#ifdef CONFIG_SEV

/**
 * sev_snp_guest: the SEV-SNP guest this VM runs, or NULL
 *
 * Set by sev_snp_kvm_init() once the guest's configuration has been
 * checked against the machine and the accelerator.
 */
SevSnpGuestState *sev_snp_guest(void);

static inline bool sev_snp_enabled(void)
{
    return sev_snp_guest() != NULL;
}

/**
 * sev_snp_kvm_init: set up the SEV-SNP guest chosen with
 * -machine confidential-guest-support, if it is one
 * @ms: the machine
 * @errp: error object
 *
 * Called from kvm_arch_init().  Checks what only the machine and the
 * accelerator tell (in-kernel irqchip, CPU topology against the policy),
 * blocks migration and starts the launch.
 *
 * Returns: 0 when @ms has no SEV-SNP guest or it is set up, -1 with @errp
 * set otherwise.
 */
int sev_snp_kvm_init(MachineState *ms, Error **errp);

/*
 * Hooks for the firmware loaders and the SEV code (sev.c), called only
 * when sev_snp_enabled():
 *
 * sev_snp_add_firmware: the firmware image at @ptr (@len bytes, mapped to
 * end at 4 GiB) is launch-updated into private memory; its AP reset
 * vector is read from its information block.  Returns 0, or -1 with
 * @errp set.
 */
int sev_snp_add_firmware(uint8_t *ptr, uint64_t len, Error **errp);

/* Where the APs start, or NULL before the firmware is known */
const OvmfApResetVector *sev_snp_ap_reset_vector(void);

/* Whether kernel-hashes=on */
bool sev_snp_kernel_hashes_enabled(void);

/* The kernel hashes table was written to guest memory at @gpa */
bool sev_snp_kernel_hashes_written(uint64_t gpa, uint64_t len, Error **errp);

/* The C-bit position and reduced physical address bits in effect */
uint32_t sev_snp_cbitpos(void);
uint32_t sev_snp_reduced_phys_bits(void);

/*
 * Whether KVM protects the register state of the guest's vCPUs: once
 * SNP_LAUNCH_FINISH has encrypted their VMSAs, KVM refuses to get or set
 * their registers (Linux 6.12, the guest_state_protected checks of x86.c).
 */
bool sev_snp_vcpu_state_protected(void);

#else

static inline bool sev_snp_enabled(void)
{
    return false;
}

static inline int sev_snp_kvm_init(MachineState *ms, Error **errp)
{
    return 0;
}

static inline bool sev_snp_vcpu_state_protected(void)
{
    return false;
}

#endif /* CONFIG_SEV */

#endif /* I386_SEV_SNP_H */
