#
# Run QEMU binaries under the KVM simulator and compare what they do.
#
# Copyright (c) 2026 qemu-snp maintainers
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
"""QEMU under kvm-sim: launch, QMP, the simulator's log and queries.

Used by snp-upstream-diff.py (the differential suite) and by
tests/bench/snp-upstream-bench.py.  Python 3 standard library only.

A SimQemu is one QEMU process with libkvmsim.so preloaded, a QMP monitor
on its stdin/stdout (no socket to wait for), the simulator's control
socket and its JSON-lines log in a private directory.
"""

import base64
import fnmatch
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TIMEOUT = 120           # seconds for any one reply
PAGE = 4096


class QemuGone(Exception):
    """QEMU closed its QMP monitor (it exited)."""


class SimQemu:
    """One QEMU under the simulator."""

    def __init__(self, qemu, args, simlib, workdir, name="qemu", log=True,
                 env=None):
        self.qemu = qemu
        self.args = list(args)
        self.simlib = simlib
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=workdir)
        self.ctl_path = os.path.join(self.dir, "ctl")
        self.log_path = os.path.join(self.dir, "log") if log else None
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.env = env or {}
        self.proc = None
        self.buf = b""
        self.events = []
        self.ctl = None
        self.status = None
        self.rusage = None
        self.t_exec_ns = None
        self.greeted = False

    # ------------------------------------------------------------ process
    def start(self):
        """Start QEMU; True once its QMP monitor answered, False if it
        exited first (a refused configuration)."""
        env = dict(os.environ)
        env.update(self.env)
        env["LD_PRELOAD"] = self.simlib
        env["KVMSIM_CTL"] = self.ctl_path
        if self.log_path:
            env["KVMSIM_LOG"] = self.log_path
        else:
            env.pop("KVMSIM_LOG", None)
        with open(self.stderr_path, "w") as err:
            self.t_exec_ns = time.monotonic_ns()
            self.proc = subprocess.Popen(
                [self.qemu] + self.args + ["-qmp", "stdio"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                env=env, close_fds=True)
        try:
            msg = self._read_msg()
            if "QMP" not in msg:
                raise RuntimeError("no QMP greeting: %r" % msg)
            self.greeted = True
            self.qmp("qmp_capabilities")
        except QemuGone:
            self.wait()
            return False
        return True

    def _read_msg(self, timeout=TIMEOUT):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("QEMU did not answer in %d s" % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise QemuGone()
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def qmp(self, cmd, **arguments):
        """Run a QMP command: {"return": ...} or {"error": ...}; events
        that arrive first are kept in self.events."""
        req = {"execute": cmd}
        if arguments:
            req["arguments"] = arguments
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise QemuGone()
        while True:
            msg = self._read_msg()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def take_events(self):
        """The events received so far (names and data, no timestamps)."""
        out = [(e["event"], e.get("data", {})) for e in self.events]
        self.events = []
        return out

    def wait(self, timeout=TIMEOUT):
        """Reap QEMU: its exit status and resource usage."""
        if self.status is not None:
            return self.status
        deadline = time.monotonic() + timeout
        while True:
            pid, status, rusage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(self.proc.pid, signal.SIGKILL)
                pid, status, rusage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.01)
        self.status = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.status
        self.rusage = rusage
        if self.ctl:
            self.ctl.close()
            self.ctl = None
        return self.status

    def quit(self):
        """Ask QEMU to quit (if it still runs) and reap it."""
        if self.status is None:
            try:
                self.qmp("quit")
            except (QemuGone, TimeoutError):
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        return self.wait()

    def kill(self):
        # not Popen.kill(): it may reap QEMU, and wait() wants its rusage
        if self.proc and self.status is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.wait()

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ simulator
    def sim(self, request, timeout=TIMEOUT):
        """One control socket request; the JSON reply, or None when the
        simulator is gone (QEMU exited)."""
        if self.status is not None:
            return None
        try:
            if not self.ctl:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.ctl_path)
                self.ctl = s.makefile("rw")
                s.close()
            self.ctl.write(request + "\n")
            self.ctl.flush()
            line = self.ctl.readline()
        except OSError:
            return None
        if not line:
            return None
        return json.loads(line)

    def sim_ok(self, request, timeout=TIMEOUT):
        r = self.sim(request, timeout)
        if r is None or not r.get("ok"):
            raise RuntimeError("kvm-sim: %s: %r" % (request, r))
        return r

    def log(self):
        """The simulator's log entries."""
        out = []
        if not self.log_path or not os.path.exists(self.log_path):
            return out
        with open(self.log_path) as f:
            for line in f:
                out.append(json.loads(line))
        return out


# ---------------------------------------------------------------- command line
def snp_args(fw, vcpus=1, mem_mib=1024, cpu="EPYC", attach="bios",
             policy=0x30000, obj_extra=None, cbitpos=None, paused=True,
             ram_backend=None, ram_reserve=True):
    """The command line of an SNP guest, as a user or libvirt gives it.

    attach "bios": -bios; "pflash": libvirt's form, the firmware as a
    read-only raw pflash0.  RAM_BACKEND (default: with pflash): guest RAM
    as libvirt gives it, a memory-backend-ram named by the machine; without
    RAM_RESERVE, with reserve=off (no swap space reserved: guests larger
    than the host under the simulator, which never touches their RAM).
    """
    if ram_backend is None:
        ram_backend = attach == "pflash"
    obj = {"qom-type": "sev-snp-guest", "id": "lsec0", "policy": policy}
    if cbitpos is not None:
        obj["cbitpos"] = cbitpos
    obj["reduced-phys-bits"] = 1
    obj.update(obj_extra or {})
    machine = "q35,confidential-guest-support=lsec0"
    args = ["-accel", "kvm", "-cpu", cpu, "-smp", str(vcpus),
            "-m", "%dM" % mem_mib, "-nodefaults", "-display", "none",
            "-no-shutdown"]
    if paused:
        args.append("-S")
    if attach == "bios":
        args += ["-bios", fw]
    else:
        args += ["-blockdev", json.dumps({
                     "driver": "file", "filename": fw,
                     "node-name": "libvirt-pflash0-storage",
                     "auto-read-only": True, "discard": "unmap"}),
                 "-blockdev", json.dumps({
                     "node-name": "libvirt-pflash0-format",
                     "read-only": True, "driver": "raw",
                     "file": "libvirt-pflash0-storage"})]
        machine += ",pflash0=libvirt-pflash0-format"
    if ram_backend or not ram_reserve:
        backend = {"qom-type": "memory-backend-ram", "id": "pc.ram",
                   "size": mem_mib << 20}
        if not ram_reserve:
            backend["reserve"] = False
        args += ["-object", json.dumps(backend)]
        machine += ",memory-backend=pc.ram"
    args += ["-machine", machine, "-object",
             json.dumps(obj, separators=(",", ":"))]
    return args


def id_block(digest_hex, policy):
    """An ID block (SNP firmware ABI): LD, FAMILY_ID, IMAGE_ID, VERSION 1,
    GUEST_SVN, POLICY; base64."""
    ld = bytes.fromhex(digest_hex)
    blk = ld + b"\x01" * 16 + b"\x02" * 16 + (1).to_bytes(4, "little") + \
        (0).to_bytes(4, "little") + policy.to_bytes(8, "little")
    assert len(blk) == 96
    return base64.b64encode(blk).decode()


def b64(data):
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------- traces
CPUID_REGS = ("xcr0_in", "xss_in", "eax", "ebx", "ecx", "edx")


def normalise_cpuid(fn, idx, regs, mask_cbitpos):
    """With MASK_CBITPOS, leaf 0x8000001F EBX bits 5:0 (the C-bit
    position) are left out of the comparison: for binaries given
    different C-bit positions."""
    regs = list(regs)
    if fn == 0x8000001F and mask_cbitpos:
        regs[3] &= ~0x3f
    return regs


def launch_trace(log, mask_cbitpos=False):
    """What the simulator saw of a launch, normalised for comparison."""
    t = {"vm-type": None, "init2": None, "hypercall-exit-mask": None,
         "start": None, "updates": [], "cpuid": None, "vmsa": [],
         "finish": None, "memslots": None, "private": None,
         "violations": [], "unknown-ioctls": []}
    gmem = {}           # fd -> creation index (at the time it was used)
    gmem_order = 0
    for e in log:
        call = e.get("call")
        if "violation" in e:
            t["violations"].append(
                {k: e[k] for k in ("rule", "call", "errno", "fw_error")})
        elif call == "KVM_CREATE_VM":
            t["vm-type"] = e["type"]
        elif call == "KVM_CREATE_GUEST_MEMFD":
            gmem[e["result"]] = "gmem%d" % gmem_order
            gmem_order += 1
        elif call == "KVM_SEV_INIT2":
            t["init2"] = {k: e[k] for k in
                          ("vmsa_features", "ghcb_version", "result")}
        elif call == "KVM_ENABLE_CAP" and e.get("cap") == "EXIT_HYPERCALL":
            t["hypercall-exit-mask"] = e["mask"]
        elif call == "KVM_SEV_SNP_LAUNCH_START":
            t["start"] = {k: e[k] for k in ("policy", "gosvw")}
        elif call == "KVM_SEV_SNP_LAUNCH_UPDATE":
            t["updates"].append({
                "gpa": "0x%x" % (e["gfn"] * PAGE), "len": "0x%x" % e["len"],
                "type": e["type"], "pages_done": e["pages_done"],
                "result": e["result"], "fw_error": e["fw_error"],
                # the CPUID page is compared entry by entry
                "contents": "cpuid-page" if e["type"] == 6 else
                            e["contents"][:16]})
        elif "cpuid_page" in e:
            t["cpuid"] = {
                "0x%08x.%d" % (x[0], x[1]): normalise_cpuid(x[0], x[1], x[2:],
                                                     mask_cbitpos)
                for x in e["entries"]}
            t["cpuid-count"] = e["count"]
        elif "vmsa" in e:
            t["vmsa"].append({"vcpu_id": e["vcpu_id"],
                              "words": {w[0]: w[1] for w in e["words"]},
                              "sha384": e["sha384"]})
        elif call == "KVM_SEV_SNP_LAUNCH_FINISH":
            t["finish"] = {k: e[k] for k in
                           ("vcpus", "id_block_en", "auth_key_en",
                            "vcek_disabled", "host_data", "result")}
        elif "finish_result" in e:
            # the digest at SNP_LAUNCH_FINISH, also when it failed
            t["digest"] = e["digest"]
        elif e.get("memory") == "at_finish":
            t["memslots"] = [
                {"gpa": "0x%x" % s[1], "size": "0x%x" % s[2],
                 "flags": s[3], "guest_memfd": gmem.get(s[4], "-"),
                 "offset": "0x%x" % s[5] if s[4] >= 0 else "-"}
                for s in e["memslots"]]
            t["private"] = [["0x%x" % a, "0x%x" % b] for a, b in e["private"]]
        elif "unknown_ioctl" in e:
            t["unknown-ioctls"].append(e["unknown_ioctl"] + " on " + e["on"])
    return t


def outcome(t, status):
    """How the launch ended, in words comparable between binaries."""
    if t["finish"] is not None:
        return "launched"
    for v in t["violations"]:
        if v["rule"] != "R-30":
            return "refused by the simulator: %s %s fw_error 0x%x" % (
                v["rule"], v["call"], v["fw_error"])
    if t["start"] is None:
        return "refused by QEMU before SNP_LAUNCH_START (exit %s)" % status
    return "QEMU stopped before SNP_LAUNCH_FINISH (exit %s)" % status


def compare_traces(a, b):
    """Differences between two launch traces: [(key, a_value, b_value)]."""
    diffs = []

    def cmp(key, x, y):
        if x != y:
            diffs.append((key, x, y))

    cmp("launch.outcome", a["outcome"], b["outcome"])
    if diffs:
        return diffs        # the rest would only follow from it
    cmp("launch.vm-type", a["vm-type"], b["vm-type"])
    for k in ("vmsa_features", "ghcb_version", "result"):
        cmp("launch.init2." + k, (a["init2"] or {}).get(k),
            (b["init2"] or {}).get(k))
    cmp("launch.hypercall-exit-mask", a["hypercall-exit-mask"],
        b["hypercall-exit-mask"])
    for k in ("policy", "gosvw"):
        cmp("launch.start." + k, (a["start"] or {}).get(k),
            (b["start"] or {}).get(k))
    ua, ub = a["updates"], b["updates"]
    if ua != ub:
        i = next((i for i in range(min(len(ua), len(ub)))
                  if ua[i] != ub[i]), min(len(ua), len(ub)))
        diffs.append(("launch.updates",
                      "%d updates; #%d %s" % (len(ua), i,
                                              ua[i] if i < len(ua) else "-"),
                      "%d updates; #%d %s" % (len(ub), i,
                                              ub[i] if i < len(ub) else "-")))
    ca, cb = a["cpuid"] or {}, b["cpuid"] or {}
    cmp("launch.cpuid.count", a.get("cpuid-count"), b.get("cpuid-count"))
    for leaf in sorted(set(ca) | set(cb)):
        if leaf not in ca or leaf not in cb:
            diffs.append(("launch.cpuid.%s" % leaf,
                          ca.get(leaf, "absent"), cb.get(leaf, "absent")))
            continue
        for r, x, y in zip(CPUID_REGS, ca[leaf], cb[leaf]):
            if x != y:
                diffs.append(("launch.cpuid.%s.%s" % (leaf, r),
                              "0x%x" % x, "0x%x" % y))
    va, vb = a["vmsa"], b["vmsa"]
    cmp("launch.vmsa.count", len(va), len(vb))
    seen = set()
    for n, (x, y) in enumerate(zip(va, vb)):
        for off in sorted(set(x["words"]) | set(y["words"])):
            wx, wy = x["words"].get(off, 0), y["words"].get(off, 0)
            key = "launch.vmsa.0x%03x" % off
            if wx != wy and key not in seen:
                seen.add(key)
                diffs.append((key, "vCPU %d 0x%x" % (n, wx),
                              "vCPU %d 0x%x" % (n, wy)))
    for k in ("vcpus", "id_block_en", "auth_key_en", "vcek_disabled",
              "host_data", "result"):
        cmp("launch.finish." + k, (a["finish"] or {}).get(k),
            (b["finish"] or {}).get(k))
    # memory slots by start address
    ma = {s["gpa"]: s for s in a["memslots"] or []}
    mb = {s["gpa"]: s for s in b["memslots"] or []}
    for gpa in sorted(set(ma) | set(mb), key=lambda x: int(x, 16)):
        cmp("launch.memslots." + gpa, ma.get(gpa, "absent"),
            mb.get(gpa, "absent"))
    cmp("launch.private-at-finish", a["private"], b["private"])
    cmp("launch.violations", a["violations"], b["violations"])
    for k in sorted(set(a["qmp"]) | set(b["qmp"])):
        cmp("launch.qmp." + k, a["qmp"].get(k), b["qmp"].get(k))
    return diffs


# ---------------------------------------------------------------- the table
def expected_differences(rst_path, title):
    """The keys of the table of differences in the docs: the first cell of
    each row of the first list-table after the section TITLE holds one or
    more ``key`` (a '*' matches any text, [01] one of the characters)."""
    with open(rst_path) as f:
        text = f.read()
    at = text.find("\n" + title + "\n")
    if at < 0:
        raise RuntimeError("%s: no section %r" % (rst_path, title))
    body = text[at:]
    table = body.find(".. list-table::")
    if table < 0:
        raise RuntimeError("%s: no list-table in %r" % (rst_path, title))
    keys = []
    header = True
    for line in body[table:].splitlines()[1:]:
        if not line.strip() or line.startswith("   :"):
            continue
        if not line.startswith("   "):
            break                       # the table ended
        if not line.startswith("   * - "):
            continue
        if header:
            header = False              # the header row
            continue
        found = re.findall(r"``([^`]+)``", line)
        if not found:
            raise RuntimeError("%s: a row of the differences table does not "
                               "start with a ``key``: %s" % (rst_path, line))
        keys += found
    return keys


def match_key(key, patterns):
    """The table key a difference key matches, or None."""
    for p in patterns:
        if fnmatch.fnmatchcase(key, p):
            return p
    return None
