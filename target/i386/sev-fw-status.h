/*
 * AMD SEV firmware status codes
 *
 * Copyright the qemu-snp authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * The status codes the SEV firmware returns (SEV and SEV-SNP alike,
 * enum sev_ret_code of linux/psp-sev.h), in one table: each code's name
 * and what it means, for messages.
 */

#ifndef I386_SEV_FW_STATUS_H
#define I386_SEV_FW_STATUS_H

/*
 * The name of firmware status @code: its SEV_RET_* name of linux/psp-sev.h
 * without the prefix (e.g. "POLICY_FAILURE"), or "unknown status code".
 */
const char *sev_fw_status_name(int code);

/*
 * What firmware status @code means (e.g. "Policy is not allowed"; "" for
 * SUCCESS), or "unknown error" for a code the firmware does not define.
 */
const char *sev_fw_status_description(int code);

#endif
