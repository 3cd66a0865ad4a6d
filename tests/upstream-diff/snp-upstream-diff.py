#!/usr/bin/env python3
#
# Differential suite: our QEMU and upstream QEMU 10.0.2 under kvm-sim.
#
# Copyright (c) 2026 qemu-snp maintainers
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
"""Launch SEV-SNP guests with both QEMUs under the simulator and compare.

  snp-upstream-diff.py launch|guest [--list] [--only NAME...] [-v]

"launch": every case of the matrix (see MATRIX below) is launched by both
binaries; the launch digests must be equal, and the normalised traces
(VM type, KVM_SEV_INIT2, SNP_LAUNCH_START, every SNP_LAUNCH_UPDATE, the
CPUID page entry by entry, each vCPU's VMSA as the simulator builds it,
SNP_LAUNCH_FINISH, memory slots and private ranges at finish, QMP's view)
are compared.

"guest": the same scripted guest exits are given to both (page state
changes, hostile MAP_GPA_RANGE requests, memory faults, termination
requests, reset) and the hypercall results, attribute changes, VM state
and QMP events are compared.

Every difference must be listed in the table "Differences from upstream
QEMU 10.0.2" of docs/system/i386/amd-memory-encryption-snp.rst (by key);
an unlisted difference fails its case, and when the whole part ran, so
does a listed key that no case showed.  Output is TAP.

Environment: QSNP_QEMU (ours), QSNP_UPSTREAM_QEMU (scripts/qsnp upstream
prints it; without it the suite is skipped), KVMSIM_LIB, QSNP_FIRMWARE_DIR
(the Debian OVMF images of scripts/qsnp-fetch-ovmf), QSNP_HOST_CBITPOS
(the host-cbitpos helper), QSNP_DIFF_DOC (the rst file).

With QSNP_DIFF_BASELINE set to an earlier build of ours (scripts/qsnp
baseline, then scripts/qsnp compare), that build takes upstream's place
with our command lines, and no difference at all is allowed: a
refactoring must not change what the simulator sees.
"""

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snpdiff as sd  # noqa: E402

DOC_TITLE = "Differences from upstream QEMU 10.0.2"

# ---------------------------------------------------------------- matrix
#
# Every value of every dimension is covered, and every pair of values of
# any two dimensions appears in at least one case (an all-pairs design,
# built greedily and deterministically below), instead of the full
# cartesian product (2*4*2*3*3*3*2*3 = 2592 launches per binary).  Adding
# a value (e.g. a CPU model) is one more list element.
DIMENSIONS = [
    ("firmware", ["OVMF-2022.11.fd", "OVMF-2025.02.fd"]),
    ("vcpus", [1, 4, 8, 64]),
    ("attach", ["bios", "pflash"]),
    ("policy", [0x30000, 0xb0000, 0x30100]),
    ("host", ["none", "host-data", "host-data+vcek-disabled"]),
    ("id-block", ["none", "right", "wrong"]),
    ("memory", [1024, 16384]),
    # CPU models both binaries have.
    ("cpu", ["EPYC", "EPYC-Rome", "EPYC-Milan", "EPYC-v4", "EPYC-Rome-v4",
             "EPYC-Milan-v2", "EPYC-Genoa"]),
]

# Policies Linux 6.12 refuses (snp_launch_start()): each on the base case.
REFUSED_POLICIES = [
    ("policy-smt-clear", 0x20000),
    ("policy-single-socket", 0x130000),
    ("policy-migrate-ma", 0x70000),
]

BASE = {"firmware": "OVMF-2022.11.fd", "vcpus": 4, "attach": "bios",
        "policy": 0x30000, "host": "none", "id-block": "none",
        "memory": 1024, "cpu": "EPYC"}


def all_pairs(dims):
    """A small set of cases covering every pair of values of every two
    dimensions (greedy, deterministic)."""
    n = len(dims)
    uncovered = set()
    for i in range(n):
        for j in range(i + 1, n):
            for a in range(len(dims[i][1])):
                for b in range(len(dims[j][1])):
                    uncovered.add((i, a, j, b))
    cases = []
    while uncovered:
        i, a, j, b = min(uncovered)
        pick = {i: a, j: b}
        for k in range(n):
            if k in pick:
                continue

            def gain(v):
                return sum(((min(k, m), v if k < m else pick[m],
                             max(k, m), pick[m] if k < m else v)
                            in uncovered) for m in pick)
            pick[k] = max(range(len(dims[k][1])), key=lambda v: (gain(v), -v))
        for x in range(n):
            for y in range(x + 1, n):
                uncovered.discard((x, pick[x], y, pick[y]))
        cases.append({dims[k][0]: dims[k][1][pick[k]] for k in range(n)})
    return cases


def case_name(c):
    return "%s/%dvcpu/%s/pol%#x/%s/id-%s/%dM/%s" % (
        c["firmware"][5:12], c["vcpus"], c["attach"], c["policy"], c["host"],
        c["id-block"], c["memory"], c["cpu"])


def launch_cases():
    cases = [dict(c, name=case_name(c)) for c in all_pairs(DIMENSIONS)]
    for name, pol in REFUSED_POLICIES:
        cases.append(dict(BASE, policy=pol, name=name, refused=name))
    return cases


# ---------------------------------------------------------------- context
class Ctx:
    def __init__(self, verbose):
        env = os.environ
        self.ours = env["QSNP_QEMU"]
        # Baseline mode: the other binary is an earlier build of ours (a
        # refactoring must not change what the simulator sees): it takes
        # the same command lines, and no difference is expected.
        self.baseline = bool(env.get("QSNP_DIFF_BASELINE"))
        self.upstream = env.get("QSNP_DIFF_BASELINE") or \
            env.get("QSNP_UPSTREAM_QEMU")
        self.other = "baseline" if self.baseline else "upstream"
        self.simlib = env["KVMSIM_LIB"]
        self.fwdir = env.get("QSNP_FIRMWARE_DIR", "")
        self.doc = env["QSNP_DIFF_DOC"]
        self.tmp = tempfile.mkdtemp(prefix="snp-upstream-diff-")
        self.verbose = verbose
        self.host_cbitpos = int(subprocess.check_output(
            [env["QSNP_HOST_CBITPOS"]], text=True))
        self.table = [] if self.baseline else \
            sd.expected_differences(self.doc, DOC_TITLE)
        self.seen = {}          # table key -> cases it was seen in
        self.n = 0
        self.failed = 0

    def binaries(self):
        """(name, path, cbitpos) of both.  Both check cbitpos against the
        host's CPUID instruction, which the simulator cannot change:
        upstream is given the host's value; ours accepts only 32 to 63
        and takes the host's when it is not given."""
        h = self.host_cbitpos
        ours = h if 32 <= h <= 63 else None
        return [("ours", self.ours, ours),
                ("upstream", self.upstream, ours if self.baseline else h)]

    def tap(self, ok, name, notes=()):
        self.n += 1
        if not ok:
            self.failed += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        for line in notes:
            print("# " + line)
        sys.stdout.flush()

    def judge(self, name, diffs, errors, notes):
        """Report a case: its errors, its unlisted differences."""
        for key, x, y in diffs:
            p = sd.match_key(key, self.table)
            if p is None:
                errors.append("unlisted difference %s: ours %s, %s %s"
                              % (key, x, self.other, y))
            else:
                self.seen.setdefault(p, []).append(name)
                if self.verbose:
                    notes.append("listed difference %s: ours %s, upstream %s"
                                 % (key, x, y))
        self.tap(not errors, name, errors + notes)

    def stale(self, prefix):
        """Listed keys of this part that no case showed."""
        left = [k for k in self.table if k.startswith(prefix) and
                k not in self.seen]
        self.tap(not left, "%s: every listed difference was seen" % prefix,
                 ["listed, not seen: %s" % k for k in left])


def firmware(ctx, name):
    path = os.path.join(ctx.fwdir, name)
    if not os.path.exists(path):
        raise RuntimeError("%s missing (QSNP_FIRMWARE_DIR, "
                           "scripts/qsnp-fetch-ovmf)" % path)
    return path


# ---------------------------------------------------------------- launch
def case_args(ctx, c, cbitpos, idblock_digest=None, attach=None):
    extra = {}
    if c["host"] != "none":
        extra["host-data"] = sd.b64(bytes(range(1, 33)))
    if c["host"] == "host-data+vcek-disabled":
        extra["vcek-disabled"] = True
    if c["id-block"] != "none" and idblock_digest:
        digest = idblock_digest
        if c["id-block"] == "wrong":
            digest = ("%02x" % (int(digest[:2], 16) ^ 0xff)) + digest[2:]
        extra["id-block"] = sd.id_block(digest, c["policy"])
        extra["id-auth"] = sd.b64(bytes(4096))
    return sd.snp_args(firmware(ctx, c["firmware"]), vcpus=c["vcpus"],
                       mem_mib=c["memory"], cpu=c["cpu"],
                       attach=attach or c["attach"],
                       ram_backend=c["attach"] == "pflash",
                       policy=c["policy"], obj_extra=extra, cbitpos=cbitpos)


def launch(ctx, who, qemu, args):
    """Launch once; the normalised trace."""
    q = sd.SimQemu(qemu, args, ctx.simlib, ctx.tmp, name=who)
    qmp = {}
    try:
        if q.start():
            try:
                q.qmp("cont")
                fin = q.sim("wait-launch-finish 30000")
            except sd.QemuGone:
                fin = None      # the launch failed and QEMU exited
            if fin and fin.get("result") == 0:
                st = q.qmp("query-status").get("return", {})
                qmp["status"] = st.get("status")
                sev = q.qmp("query-sev")
                for k, v in sorted(sev.get("return", {}).items()):
                    qmp["query-sev." + k] = v
                if "error" in sev:
                    qmp["query-sev"] = sev["error"]["class"]
                m = q.qmp("query-sev-launch-measure")
                qmp["launch-measure"] = m["return"]["data"] if "return" in m \
                    else "error: " + m["error"]["desc"]
        status = q.quit()
        # Each binary takes the C-bit position from the host's own CPUID
        # instruction, which the simulator cannot change and which the two
        # read differently on a CPU without leaf 0x8000001F (ours: 0,
        # upstream: what the instruction answers): leaf 0x8000001F EBX[5:0]
        # is left out of the comparison.
        t = sd.launch_trace(q.log(), mask_cbitpos=True)
        t["outcome"] = sd.outcome(t, status)
        t["stderr"] = q.stderr().strip().splitlines()[-3:]
        if "launch-measure" in qmp and not qmp["launch-measure"].startswith(
                "error") and "digest" in t:
            same = base64.b64decode(qmp["launch-measure"]).hex() == \
                t["digest"]
            qmp["launch-measure"] = "the launch digest" if same else \
                "not the launch digest: " + qmp["launch-measure"]
        t["qmp"] = qmp
        return t
    finally:
        q.cleanup()


def expected_outcome(c):
    if c.get("refused"):
        return None         # both must refuse; how is compared
    if c["id-block"] == "wrong":
        return "refused by the simulator: R-22 KVM_SEV_SNP_LAUNCH_FINISH " \
               "fw_error 0xb"
    return "launched"


def run_launch_case(ctx, c):
    errors, notes = [], []
    digest = None
    diffs = []
    # Upstream 10.0.2 refuses a pflash0 without KVM_CAP_READONLY_MEM, which
    # SNP VMs lack: it is compared with -bios (and libvirt's RAM backend)
    # after that refusal is compared.
    up_attach = "bios" if c["attach"] == "pflash" and not ctx.baseline \
        else None
    if up_attach:
        probe = launch(ctx, "upstream-pflash", ctx.upstream,
                       case_args(ctx, dict(c, **{"id-block": "none"}),
                                 ctx.binaries()[1][2]))
        if probe["outcome"] != "launched":
            diffs.append(("launch.outcome.pflash", "launched",
                          probe["outcome"]))
    if c["id-block"] != "none":
        # The ID block carries the digest of the same launch without it,
        # as upstream's launch gives it.
        pre = launch(ctx, "upstream-pre", ctx.upstream,
                     case_args(ctx, dict(c, **{"id-block": "none"}),
                               ctx.binaries()[1][2], attach=up_attach))
        digest = pre.get("digest")
        if not digest:
            ctx.tap(False, c["name"], ["upstream did not launch without the "
                                       "ID block: " + pre["outcome"]] +
                    pre["stderr"])
            return
    traces = {}
    for who, qemu, cbitpos in ctx.binaries():
        traces[who] = launch(ctx, who, qemu,
                             case_args(ctx, c, cbitpos, digest,
                                       up_attach if who == "upstream"
                                       else None))
    ours, up = traces["ours"], traces["upstream"]
    want = expected_outcome(c)
    if want and ours["outcome"] != want:
        errors.append("ours: %s, expected %s" % (ours["outcome"], want))
        errors += ["ours: " + x for x in ours["stderr"]]
    if want == "launched" and ours["violations"]:
        errors.append("ours: simulator rule violations %s" %
                      ours["violations"])
    if c.get("refused"):
        for who, t in traces.items():
            if t["outcome"] == "launched":
                errors.append("%s launched a guest whose policy Linux "
                              "refuses" % who)
    if ours.get("digest") and up.get("digest") and \
            ours["digest"] != up["digest"]:
        errors.append("launch digests differ: ours %s, upstream %s" %
                      (ours["digest"], up["digest"]))
    if digest and c["id-block"] == "right" and ours.get("digest") != digest:
        errors.append("ours: digest %s, the ID block carries %s" %
                      (ours.get("digest"), digest))
    if ours.get("digest"):
        notes.append("digest %s" % ours["digest"][:32])
    for who, t in traces.items():
        for u in t["unknown-ioctls"]:
            notes.append("%s: unsupported ioctl %s" % (who, u))
    diffs += sd.compare_traces(ours, up)
    # the outcome is qualified by what was expected of the case
    tag = c.get("refused") or ("id-block-wrong" if c["id-block"] == "wrong"
                               else "launched")
    diffs = [("launch.outcome." + tag, x, y) if k == "launch.outcome"
             else (k, x, y) for k, x, y in diffs]
    if up["outcome"] != ours["outcome"]:
        notes += ["upstream: " + x for x in up["stderr"]]
    ctx.judge("launch " + c["name"], diffs, errors, notes)


# ---------------------------------------------------------------- guest
RAM_MIB = 1024
G = 1 << 30


def hc(gpa, npages, attrs):
    return "hypercall-map-gpa %#x %d %#x" % (gpa, npages, attrs)


def term(reason_set, code):
    return "sev-term %#x" % (0x100 | reason_set << 12 | code << 16)


# (name, exit request or QMP command, range whose attributes change)
# Conversions run one after the other in one guest; every other scenario
# (it may stop the guest) in a guest of its own.
CONVERSIONS = [
    ("to-shared-4k", hc(0x100000, 1, 0)),
    ("to-private-4k", hc(0x100000, 1, 0x10)),
    ("to-shared-2m", hc(0x200000, 512, 0x1)),
    ("to-private-2m", hc(0x200000, 512, 0x11)),
    ("to-shared-4k-range", hc(0x1000000, 1024, 0)),
    ("to-private-4k-range", hc(0x1000000, 1024, 0x10)),
    ("to-shared-again", hc(0x100000, 1, 0)),
    ("to-shared-below-1m", hc(0xe0000, 1, 0)),
    ("to-private-below-1m", hc(0xe0000, 1, 0x10)),
    ("fault-shared-on-private", "memory-fault 0x300000 4096 0"),
    ("fault-private-on-shared", "memory-fault 0x300000 4096 1"),
    ("fault-private-on-private", "memory-fault 0x300000 4096 1"),
    ("to-shared-last-ram-page", hc(RAM_MIB * (1 << 20) - 0x1000, 1, 0)),
]

SINGLE = [
    ("map-outside-ram", hc(4 * G, 1, 0)),
    ("map-outside-ram-private", hc(4 * G, 1, 0x10)),
    ("map-mmio-hole", hc(0xfed00000, 1, 0)),
    ("map-across-ram-end", hc(RAM_MIB * (1 << 20) - 0x1000, 2, 0)),
    ("map-overflowing", hc(0xfffffffffffff000, 2, 0)),
    ("map-huge", hc(0, 1 << 40, 0)),
    ("map-reserved-attr-bit", hc(0x100000, 1, 0x30)),
    ("map-page-size-1g", hc(0x100000, 1, 0x2)),
    ("map-reserved-page-size", hc(0x100000, 1, 0x3)),
    ("map-zero-pages", hc(0x100000, 0, 0)),
    ("fault-outside-ram", "memory-fault %#x 4096 1" % (4 * G)),
    ("fault-mmio-hole", "memory-fault 0xfed00000 4096 0"),
] + [
    ("term-gen-%d" % c, term(0, c)) for c in range(3)
] + [
    ("term-linux-%d" % c, term(1, c)) for c in range(10)
] + [
    ("term-gen-unknown", term(0, 0x7f)),
    ("term-unknown-set", term(5, 3)),
    ("guest-reset", "reset"),
    ("triple-fault", "shutdown"),
    ("guest-shutdown", "system-event 1 0"),
    ("qmp-system-reset", "qmp:system_reset"),
]


def private_set(q):
    r = q.sim("query attrs 0 %#x" % (1 << 52))
    return [tuple(x) for x in r["private"]] if r else None


def subtract(x, y):
    """The ranges of X (lists of [gpa, size]) that Y does not cover."""
    out = []
    for a, n in x or []:
        pieces = [(a, a + n)]
        for b, m in y or []:
            nxt = []
            for s, e in pieces:
                if e <= b or s >= b + m:
                    nxt.append((s, e))
                    continue
                if s < b:
                    nxt.append((s, b))
                if e > b + m:
                    nxt.append((b + m, e))
            pieces = nxt
        out += ["%#x+%#x" % (s, e - s) for s, e in pieces]
    return out


def delta(before, after):
    """What a step changed: the ranges that became shared, and private."""
    return {"to-shared": subtract(before, after),
            "to-private": subtract(after, before)}


def guest_run(ctx, who, qemu, cbitpos, steps):
    """Launch the base guest, run STEPS, the observations per step."""
    args = sd.snp_args(firmware(ctx, BASE["firmware"]), vcpus=1,
                       mem_mib=RAM_MIB, cpu=BASE["cpu"], cbitpos=cbitpos)
    q = sd.SimQemu(qemu, args, ctx.simlib, ctx.tmp, name=who)
    out = {}
    try:
        if not q.start():
            raise RuntimeError("%s did not start: %s" % (who, q.stderr()))
        q.qmp("cont")
        fin = q.sim("wait-launch-finish 30000")
        if not fin or fin["result"]:
            raise RuntimeError("%s did not launch: %s" % (who, q.stderr()))
        q.qmp("query-status")
        q.take_events()
        for name, what in steps:
            o = {}
            before = private_set(q)
            if what.startswith("qmp:"):
                r = q.qmp(what[4:])
                o["qmp"] = "error" if "error" in r else "ok"
                w = q.sim("wait-exit-consumed 0 1000")
            else:
                ok = q.sim("exit 0 " + what)
                o["queued"] = bool(ok and ok.get("ok"))
                w = q.sim("wait-exit-consumed 0 10000")
            # resumed: QEMU re-entered KVM_RUN to run the guest on
            o["resumed"] = w.get("resumed", w.get("error")) if w else \
                "QEMU exited"
            if what.startswith("hypercall"):
                r = q.sim("query hypercall-ret 0")
                ret = r.get("ret") if r and r.get("ok") else None
                o["ret"] = ret - (1 << 64) if ret and ret >= 1 << 63 else ret
            o["attributes"] = delta(before, private_set(q))
            try:
                st = q.qmp("query-status").get("return", {})
                o["status"] = st.get("status")
            except sd.QemuGone:
                o["status"] = "QEMU exited (%s)" % q.wait()
            s = q.sim("query state")
            o["sev-state"] = s["sev_state"] if s else None
            o["exits-pending"] = s["exits_pending"] if s else None
            o["events"] = [[e, d] for e, d in q.take_events()]
            out[name] = o
        q.quit()
        viol = [e for e in q.log() if "violation" in e]
        out["violations"] = [v["rule"] + " " + v["call"] for v in viol]
        return out
    finally:
        q.cleanup()


def run_guest(ctx, name, steps):
    errors, notes = [], []
    obs = {}
    for who, qemu, cbitpos in ctx.binaries():
        try:
            obs[who] = guest_run(ctx, who, qemu, cbitpos, steps)
        except Exception as e:      # noqa: BLE001 (reported as a failure)
            ctx.tap(False, "guest " + name, ["%s: %s" % (who, e)])
            return
    diffs = []
    for step, _ in steps:
        a, b = obs["ours"][step], obs["upstream"][step]
        if a.get("status") != "running" or b.get("status") != "running":
            # whether the vCPU re-entered KVM_RUN before the main loop
            # stopped the VM is a race
            a.pop("resumed", None)
            b.pop("resumed", None)
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                diffs.append(("guest.%s.%s" % (step, k), a.get(k), b.get(k)))
    if obs["ours"]["violations"]:
        errors.append("ours: simulator rule violations: %s" %
                      obs["ours"]["violations"])
    if obs["ours"]["violations"] != obs["upstream"]["violations"]:
        diffs.append(("guest.%s.violations" % name,
                      obs["ours"]["violations"],
                      obs["upstream"]["violations"]))
    ctx.judge("guest " + name, diffs, errors, notes)


def guest_scenarios():
    return [("conversions", CONVERSIONS)] + [(n, [(n, w)]) for n, w in SINGLE]


# ---------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["launch", "guest"])
    p.add_argument("--list", action="store_true", help="list the cases")
    p.add_argument("--only", nargs="*", help="run the cases named")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print the listed differences seen")
    a = p.parse_args()

    if a.part == "launch":
        items = [(c["name"], c) for c in launch_cases()]
    else:
        items = guest_scenarios()
    if a.list:
        for n, _ in items:
            print(n)
        return 0
    if not os.environ.get("QSNP_UPSTREAM_QEMU") and \
            not os.environ.get("QSNP_DIFF_BASELINE"):
        print("1..0 # SKIP QSNP_UPSTREAM_QEMU is not set "
              "(scripts/qsnp test fetches it with scripts/qsnp upstream)")
        return 0
    ctx = Ctx(a.verbose)
    if a.only:
        items = [i for i in items if i[0] in a.only]
    print("1..%d" % (len(items) + (0 if a.only else 1)))
    for n, x in items:
        try:
            if a.part == "launch":
                run_launch_case(ctx, x)
            else:
                run_guest(ctx, n, x)
        except Exception:           # noqa: BLE001 (reported as a failure)
            ctx.tap(False, "%s %s" % (a.part, n),
                    traceback.format_exc().splitlines())
    if not a.only and not ctx.baseline:
        ctx.stale(a.part + ".")
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 1 if ctx.failed else 0


if __name__ == "__main__":
    sys.exit(main())
