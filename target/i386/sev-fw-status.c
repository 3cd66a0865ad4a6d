/*
 * AMD SEV firmware status codes
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include <linux/psp-sev.h>

#include "sev-fw-status.h"

typedef struct SevFwStatus {
    const char *name;
    const char *description;
} SevFwStatus;

/* Indexed by the code; the codes the firmware does not define are holes */
#define SEV_FW_STATUS(code, text) [SEV_RET_##code] = { #code, text }
static const SevFwStatus sev_fw_status[] = {
    SEV_FW_STATUS(SUCCESS, ""),
    SEV_FW_STATUS(INVALID_PLATFORM_STATE, "Platform state is invalid"),
    SEV_FW_STATUS(INVALID_GUEST_STATE, "Guest state is invalid"),
    SEV_FW_STATUS(INVALID_CONFIG, "Platform configuration is invalid"),
    SEV_FW_STATUS(INVALID_LEN, "Buffer too small"),
    SEV_FW_STATUS(ALREADY_OWNED, "Platform is already owned"),
    SEV_FW_STATUS(INVALID_CERTIFICATE, "Certificate is invalid"),
    SEV_FW_STATUS(POLICY_FAILURE, "Policy is not allowed"),
    SEV_FW_STATUS(INACTIVE, "Guest is not active"),
    SEV_FW_STATUS(INVALID_ADDRESS, "Invalid address"),
    SEV_FW_STATUS(BAD_SIGNATURE, "Bad signature"),
    SEV_FW_STATUS(BAD_MEASUREMENT, "Bad measurement"),
    SEV_FW_STATUS(ASID_OWNED, "ASID is already owned"),
    SEV_FW_STATUS(INVALID_ASID, "Invalid ASID"),
    SEV_FW_STATUS(WBINVD_REQUIRED, "WBINVD is required"),
    SEV_FW_STATUS(DFFLUSH_REQUIRED, "DF_FLUSH is required"),
    SEV_FW_STATUS(INVALID_GUEST, "Guest handle is invalid"),
    SEV_FW_STATUS(INVALID_COMMAND, "Invalid command"),
    SEV_FW_STATUS(ACTIVE, "Guest is active"),
    SEV_FW_STATUS(HWSEV_RET_PLATFORM, "Hardware error"),
    SEV_FW_STATUS(HWSEV_RET_UNSAFE, "Hardware unsafe"),
    SEV_FW_STATUS(UNSUPPORTED, "Feature not supported"),
    SEV_FW_STATUS(INVALID_PARAM, "Invalid parameter"),
    SEV_FW_STATUS(RESOURCE_LIMIT, "Required firmware resource depleted"),
    SEV_FW_STATUS(SECURE_DATA_INVALID,
                  "Part-specific integrity check failure"),
    SEV_FW_STATUS(INVALID_PAGE_SIZE, "Invalid page size"),
    SEV_FW_STATUS(INVALID_PAGE_STATE, "Invalid page state"),
    SEV_FW_STATUS(INVALID_MDATA_ENTRY, "Invalid metadata entry"),
    SEV_FW_STATUS(INVALID_PAGE_OWNER, "Invalid page ownership"),
    SEV_FW_STATUS(AEAD_OFLOW, "AEAD algorithm would overflow"),
    SEV_FW_STATUS(EXIT_RING_BUFFER, "Ring buffer mode exited"),
    SEV_FW_STATUS(RMP_INIT_REQUIRED, "RMP initialization required"),
    SEV_FW_STATUS(BAD_SVN, "Firmware SVN too low"),
    SEV_FW_STATUS(BAD_VERSION, "Bad firmware version"),
    SEV_FW_STATUS(SHUTDOWN_REQUIRED, "Firmware shutdown required"),
    SEV_FW_STATUS(UPDATE_FAILED, "Firmware update failed"),
    SEV_FW_STATUS(RESTORE_REQUIRED, "Restore required"),
    SEV_FW_STATUS(RMP_INITIALIZATION_FAILED, "RMP initialization failed"),
    SEV_FW_STATUS(INVALID_KEY, "Invalid key"),
};
#undef SEV_FW_STATUS

static const SevFwStatus *sev_fw_status_find(int code)
{
    if (code < 0 || code >= ARRAY_SIZE(sev_fw_status) ||
        !sev_fw_status[code].name) {
        return NULL;
    }
    return &sev_fw_status[code];
}

const char *sev_fw_status_name(int code)
{
    const SevFwStatus *s = sev_fw_status_find(code);

    return s ? s->name : "unknown status code";
}

const char *sev_fw_status_description(int code)
{
    const SevFwStatus *s = sev_fw_status_find(code);

    return s ? s->description : "unknown error";
}
