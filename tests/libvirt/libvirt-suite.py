#!/usr/bin/python3
#
# The libvirt suite: libvirt's QEMU driver (Debian's libvirt from
# bookworm-backports, scripts/pins) drives the patched QEMU, run under the
# KVM simulator, through virsh and python3-libvirt.
#
# Copyright the qemu-snp authors
# SPDX-License-Identifier: GPL-2.0-or-later
"""The libvirt suite: libvirt drives the patched QEMU under tests/kvm-sim.

  libvirt-suite.py --build DIR [--keep] [CASE...]

DIR is the QEMU build directory (qemu-system-x86_64 and
tests/kvm-sim/libkvmsim.so).  With CASE names, only the cases whose name
contains one of them run.  scripts/qsnp test runs it; it installs the
libvirt packages of scripts/pins first (as root, or through sudo).

The daemon is libvirt's own session instance (libvirtd, qemu:///session),
with every directory it uses in a private tree: configuration, state,
capabilities cache, logs, the firmware descriptor.  Nothing under /etc,
/var or /run is read for configuration or written.  Root's libvirtd is
always the system instance, whose directories are compiled in: run as root
(as CI does), the suite enters a user namespace in which root is an
unprivileged user (unshare --map-user), so that libvirtd runs as the
session instance a non-root user gets, while files root owns stay
readable.

Each domain's <emulator> is a wrapper that runs the patched QEMU with the
simulator preloaded and a control socket per domain, which scripts the
guest's exits (termination requests) and answers for the KVM side (the
digest it computed, the rules QEMU broke, what LAUNCH_START and
LAUNCH_FINISH were given).
"""

import argparse
import base64
import glob
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WORK = os.environ.get("QSNP_WORK", os.path.join(REPO, ".work"))
# The domain XML of the documentation (a stateless read-only pflash
# loader); every case starts from it
DOMAIN_XML = os.path.join(REPO, "docs/system/i386/sev-snp-libvirt-domain.xml")
# The firmware descriptor we ship for Debian's OVMF.fd
DESCRIPTOR = os.path.join(REPO,
                          "pc-bios/descriptors/70-debian-ovmf-sev-snp.json")
OVMF = "/usr/share/ovmf/OVMF.fd"
# Debian's qemu-system-x86_64 path, which the documentation's XML names
DOC_EMULATOR = "/usr/bin/qemu-system-x86_64"
# Packages the QEMU driver and virsh need; python3-libvirt for events
PACKAGES = ("libvirt-daemon", "libvirt-daemon-driver-qemu",
            "libvirt-clients")
PY_PACKAGE = "python3-libvirt"
# How long one virsh command or one awaited event may take
TIMEOUT = 120

# GHCB MSR protocol termination request, reason set @s, code @c
def term_msr(s, c):
    return 0x100 | (s << 12) | (c << 16)


def log(msg):
    sys.stderr.write("libvirt-suite: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    log("error: " + msg)
    sys.exit(1)


def pins():
    """LIBVIRT_VERSION and LIBVIRT_SUITE from scripts/pins."""
    out = subprocess.run(
        ["bash", "-c", '. "$1"; echo "$LIBVIRT_VERSION"; '
         'echo "$LIBVIRT_SUITE"', "-", os.path.join(REPO, "scripts/pins")],
        capture_output=True, text=True, check=True).stdout.split("\n")
    return out[0], out[1]


def installed_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status} ${Version}",
                        pkg], capture_output=True, text=True)
    if r.returncode or not r.stdout.startswith("install ok installed"):
        return None
    return r.stdout.split()[-1]


def install():
    """Install the pinned libvirt; return the seconds it took (0: present)."""
    ver, suite = pins()
    want = ["%s=%s" % (p, ver) for p in PACKAGES
            if installed_version(p) != ver]
    if installed_version(PY_PACKAGE) is None:
        want.append(PY_PACKAGE)
    if not want:
        return 0.0
    t0 = time.monotonic()
    log("installing %s (%s)" % (" ".join(want), suite))
    r = subprocess.run([os.path.join(REPO, "scripts/qsnp-apt"), "--deb",
                        suite, "install"] + want,
                       stdout=subprocess.DEVNULL)
    if r.returncode:
        now = subprocess.run(
            [os.path.join(REPO, "scripts/qsnp-apt"), "--deb", suite,
             "apt-cache", "madison", "libvirt-daemon"],
            capture_output=True, text=True).stdout.split("\n")[0]
        die("installing libvirt %s from %s failed (the archive has: %s);"
            " move LIBVIRT_VERSION in scripts/pins" % (ver, suite,
                                                       now.strip() or "?"))
    return time.monotonic() - t0


# libvirt refuses <domain type='kvm'> when /dev/kvm is missing, although
# QEMU never opens it under the simulator.  On a host without it (and as
# root), the suite runs in a mount namespace whose /dev (a tmpfs with the
# host's nodes bound in) has /dev/null bound at /dev/kvm and a devpts of
# its own; the host's /dev is not changed.
STANDIN_DEV = r"""
set -e
d=$(mktemp -d)
mount -t tmpfs -o mode=755 qsnp-dev "$d"
for e in /dev/* /dev/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    n=${e#/dev/}
    case $n in pts|ptmx) continue ;; esac
    if [ -L "$e" ]; then cp -P "$e" "$d/$n"
    elif [ -d "$e" ]; then mkdir "$d/$n"; mount --rbind "$e" "$d/$n"
    else touch "$d/$n"; mount --bind "$e" "$d/$n"; fi
done
touch "$d/kvm"
mount --bind /dev/null "$d/kvm"
# ptys (libvirt's <serial type='pty'>) from an instance of devpts of its own
mkdir "$d/pts"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 qsnp-pts "$d/pts"
ln -s pts/ptmx "$d/ptmx"
mount --move "$d" /dev
exec "$@"
"""


def enter_mount_namespace_with_dev_kvm(argv):
    log("this host has no /dev/kvm: /dev/null stands in for it, in a"
        " mount namespace of the suite")
    env = dict(os.environ, QSNP_LIBVIRT_DEVKVM="stand-in")
    cmd = ["unshare", "-m", "--propagation", "private", "bash", "-c",
           STANDIN_DEV, "qsnp-dev-kvm", sys.executable] + argv
    os.execvpe(cmd[0], cmd, env)


def enter_user_namespace(argv):
    """Run again as an unprivileged user of a new user namespace."""
    try:
        import pwd
        pw = pwd.getpwnam("libvirt-qemu")
        uid, gid = pw.pw_uid, pw.pw_gid
    except KeyError:
        uid, gid = 64055, 64055
    env = dict(os.environ, QSNP_LIBVIRT_USERNS="%d:%d" % (uid, gid))
    cmd = ["unshare", "--user", "--map-user=%d" % uid,
           "--map-group=%d" % gid, sys.executable] + argv
    os.execvpe(cmd[0], cmd, env)


# ------------------------------------------------------------ the simulator

class Sim:
    """The control socket of the simulator in one domain's QEMU."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = b""

    def request(self, line, ok=True):
        self.sock.sendall(line.encode() + b"\n")
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("simulator closed the socket on %r"
                                     % line)
            self.buf += data
        reply, self.buf = self.buf.split(b"\n", 1)
        r = json.loads(reply)
        if ok and not r.get("ok"):
            raise AssertionError("simulator: %r: %s" % (line, r))
        return r

    def close(self):
        self.sock.close()


# ------------------------------------------------------------ the daemon

class Libvirt:
    """A private libvirtd session instance and the tree it lives in."""

    def __init__(self, build, root):
        self.build = build
        self.root = root
        self.qemu = os.path.join(build, "qemu-system-x86_64")
        self.kvmsim = os.path.join(build, "tests/kvm-sim/libkvmsim.so")
        for f in (self.qemu, self.kvmsim):
            if not os.path.exists(f):
                die("%s is missing (scripts/qsnp build)" % f)
        d = {k: os.path.join(root, k) for k in
             ("home", "config", "cache", "run", "sim", "log", "bin", "data")}
        for p in d.values():
            os.makedirs(p, mode=0o700, exist_ok=True)
        self.dirs = d
        self.env = dict(os.environ, HOME=d["home"],
                        XDG_CONFIG_HOME=d["config"],
                        XDG_CACHE_HOME=d["cache"],
                        XDG_RUNTIME_DIR=d["run"],
                        LIBVIRT_DEFAULT_URI="qemu:///session",
                        LC_ALL="C")
        for k in ("LD_PRELOAD", "KVMSIM_CTL", "KVMSIM_LOG"):
            self.env.pop(k, None)
        self.errors_log = os.path.join(d["log"], "libvirtd-errors.log")
        self.daemon_log = os.path.join(d["log"], "libvirtd.log")
        self.wrapper = os.path.join(d["bin"], "qemu-system-x86_64-kvmsim")
        self.write_config()
        self.pid = None

    def write_config(self):
        d = self.dirs
        os.makedirs(os.path.join(d["config"], "libvirt"), exist_ok=True)
        outputs = "4:file:%s 3:file:%s" % (self.errors_log, self.daemon_log)
        if os.environ.get("QSNP_LIBVIRT_DEBUG"):
            outputs += " 1:file:%s" % os.path.join(d["log"], "debug.log")
        with open(os.path.join(d["config"], "libvirt/libvirtd.conf"),
                  "w") as f:
            f.write('log_outputs = "%s"\n' % outputs)
            if os.environ.get("QSNP_LIBVIRT_DEBUG"):
                f.write('log_filters = "1:qemu 1:libvirt 3:util 3:rpc"\n')
        with open(os.path.join(d["config"], "libvirt/qemu.conf"), "w") as f:
            # QEMU's stderr goes straight to the domain's log file: no
            # virtlogd to start
            f.write('stdio_handler = "file"\n')
        fw = os.path.join(d["config"], "qemu/firmware")
        os.makedirs(fw, exist_ok=True)
        shutil.copy(DESCRIPTOR, fw)
        with open(self.wrapper, "w") as f:
            f.write("""#!/bin/sh
# <emulator> of the qemu-snp libvirt suite: the patched QEMU under kvm-sim,
# with a control socket and a log per domain (named by -name guest=NAME)
name=
prev=
for a in "$@"; do
    if [ "$prev" = -name ]; then
        name=${a#guest=}
        name=${name%%%%,*}
    fi
    prev=$a
done
if [ -n "$name" ]; then
    KVMSIM_CTL=%(sim)s/$name.sock
    KVMSIM_LOG=%(sim)s/$name.log
    export KVMSIM_CTL KVMSIM_LOG
fi
LD_PRELOAD=%(lib)s
export LD_PRELOAD
exec %(qemu)s "$@"
""" % {"sim": d["sim"], "lib": self.kvmsim, "qemu": self.qemu})
        os.chmod(self.wrapper, 0o755)

    def start(self):
        pidfile = os.path.join(self.dirs["run"], "libvirtd.pid")
        # --daemon returns once the daemon listens on its socket
        # /usr/sbin may not be in a CI job's PATH
        daemon = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
        r = subprocess.run([daemon, "--daemon", "--pid-file", pidfile],
                           env=self.env)
        if r.returncode:
            die("libvirtd did not start (%s)" % self.daemon_log)
        with open(pidfile) as f:
            self.pid = int(f.read())

    def stop(self):
        if self.pid:
            # the daemon is not our child: wait for its exit on a pidfd
            try:
                fd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                fd = None
            if fd is not None:
                os.kill(self.pid, signal.SIGTERM)
                select.select([fd], [], [], TIMEOUT)
                os.close(fd)
            self.pid = None

    def virsh(self, *args, ok=True):
        r = subprocess.run(["virsh", "-q"] + list(args), env=self.env,
                           capture_output=True, text=True, timeout=TIMEOUT)
        if ok and r.returncode:
            raise AssertionError("virsh %s failed: %s" %
                                 (" ".join(args), r.stderr.strip()))
        return r

    def errors(self):
        try:
            with open(self.errors_log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def domain_log(self, name):
        p = os.path.join(self.dirs["cache"], "libvirt/qemu/log",
                         name + ".log")
        with open(p, errors="replace") as f:
            return f.read()

    def sim_log(self, name):
        p = os.path.join(self.dirs["sim"], name + ".log")
        out = []
        with open(p) as f:
            for line in f:
                out.append(json.loads(line))
        return out

    def sim(self, name):
        return Sim(os.path.join(self.dirs["sim"], name + ".sock"))


# ------------------------------------------------------------ events

class Events:
    """libvirt events, delivered by python3-libvirt's default event loop."""

    def __init__(self, lv):
        import libvirt
        import libvirt_qemu
        self.libvirt = libvirt
        self.libvirt_qemu = libvirt_qemu
        libvirt.virEventRegisterDefaultImpl()
        t = threading.Thread(target=self._loop, daemon=True)
        t.start()
        os.environ.update({k: lv.env[k] for k in
                           ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                            "XDG_RUNTIME_DIR")})
        self.conn = libvirt.open("qemu:///session")
        self.cond = threading.Condition()
        self.seen = []
        self.conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle,
            None)
        libvirt_qemu.qemuMonitorEventRegister(
            self.conn, None, "SEV_TERMINATION_REQUEST", self._qemu, None, 0)

    @staticmethod
    def _loop():
        import libvirt
        while True:
            libvirt.virEventRunDefaultImpl()

    def _lifecycle(self, conn, dom, event, detail, opaque):
        with self.cond:
            self.seen.append((dom.name(), "lifecycle", (event, detail)))
            self.cond.notify_all()

    def _qemu(self, conn, dom, event, seconds, micros, details, opaque):
        with self.cond:
            self.seen.append((dom.name(), event,
                              json.loads(details) if details else None))
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.seen)

    def wait(self, name, kind, what=None, since=0):
        """The first event of domain @name and @kind (after @since)."""
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while True:
                for ev in self.seen[since:]:
                    if ev[0] == name and ev[1] == kind and \
                       (what is None or ev[2] == what):
                        return ev[2]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s %s event of %s within %d s;"
                                         " seen: %s" % (kind, what, name,
                                                        TIMEOUT, self.seen))
                self.cond.wait(left)


# ------------------------------------------------------------ domain XML

def error_records(text):
    """The messages of level error in libvirt log text (a message's
    continuation lines belong to it; libvirt heads each file with
    messages of level info)."""
    recs = []
    for line in text.splitlines():
        m = re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d{4}: "
                     r"\d+: (\w+) : ", line)
        if m:
            recs.append([m.group(1), line])
        elif recs:
            recs[-1][1] += "\n" + line
    return [r[1] for r in recs if r[0] == "error"]


def b64(data):
    return base64.b64encode(data).decode()


def domain_xml(name, emulator, vcpus=None, loader=None, efi=False,
               lsec=None, lsec_attrs=None, on_crash=None, kernel=None,
               policy=None, dirty_ring=False):
    """The documentation's domain XML with the case's changes."""
    tree = ET.parse(DOMAIN_XML)
    dom = tree.getroot()
    dom.find("name").text = name
    emu = dom.find("devices/emulator")
    assert emu.text == DOC_EMULATOR, emu.text
    emu.text = emulator
    if vcpus:
        dom.find("vcpu").text = str(vcpus)
    os_el = dom.find("os")
    ld = os_el.find("loader")
    if efi:
        os_el.remove(ld)
        os_el.set("firmware", "efi")
    elif loader == "rom":
        ld.attrib.clear()
        ld.set("type", "rom")
    if kernel:
        ET.SubElement(os_el, "kernel").text = kernel
    if on_crash:
        dom.find("on_crash").text = on_crash
    if dirty_ring:
        kvm = ET.SubElement(dom.find("features"), "kvm")
        ET.SubElement(kvm, "dirty-ring", state="on", size="4096")
    sec = dom.find("launchSecurity")
    if policy is not None:
        sec.find("policy").text = "0x%08x" % policy
    for k, v in (lsec_attrs or {}).items():
        sec.set(k, v)
    for k, v in (lsec or {}).items():
        ET.SubElement(sec, k).text = v
    return ET.tostring(dom, encoding="unicode")


def id_block(digest, policy):
    """An SNP ID block (firmware ABI: LD, FAMILY_ID, IMAGE_ID, VERSION,
    GUEST_SVN, POLICY) for launch digest @digest (48 bytes)."""
    return digest + bytes(16) + b"qsnp-libvirt\0\0\0\0" + \
        struct.pack("<IIQ", 1, 0, policy)


def id_auth(author_key):
    """An ID authentication structure: ID_KEY_ALGO and AUTH_KEY_ALGO 1
    (ECDSA P-384 with SHA-384); the signatures and keys are left zero:
    the simulator does not check them (the firmware does)."""
    return struct.pack("<II", 1, 1 if author_key else 0) + bytes(4088)


# ------------------------------------------------------------ the cases

class Failed(Exception):
    pass


# An SEV-SNP guest cannot be reset: QEMU turns system_reset into a shutdown
# ("cpus are not resettable, terminating"), which with -no-shutdown stops
# the guest, and libvirt kills QEMU on the SHUTDOWN and STOP events while
# the API that sent system_reset (virsh reset, or the restart of on_crash)
# still talks to the monitor: that API's next monitor command fails, and
# libvirt logs it (qemuDomainReset(), qemuProcessFakeReboot() and
# qemuProcessShutdownOrReboot() in libvirt 11.3).  Nothing else may be
# logged.
RESET_RACE = (r": error : qemuMonitorIORead:\d+ : Unable to read from "
              r"monitor: Connection reset by peer$",
              r": error : qemuMonitorIOWrite:\d+ : Unable to write to "
              r"monitor: Broken pipe$",
              r": error : qemuMonitorSend:\d+ : internal error: End of file "
              r"from qemu monitor \(vm='[^']*'\)$")


def check(cond, what):
    if not cond:
        raise Failed(what)


class Suite:
    def __init__(self, lv, ev, build):
        self.lv = lv
        self.ev = ev
        self.build = build
        self.dry = {}

    # -------------------------------------------------- helpers

    def dry_run(self, vcpus, policy=0x30000, kernel=None):
        """The launch digest of scripts/snp-launch (hex), and its output."""
        key = (vcpus, policy, kernel)
        if key not in self.dry:
            args = [os.path.join(REPO, "scripts/snp-launch"), "--dry-run",
                    "--qemu", self.lv.qemu, "--firmware", OVMF,
                    "--vcpus", str(vcpus), "--cpu", self.cpu_model(),
                    "--policy", hex(policy)]
            if kernel:
                args += ["--kernel", kernel]
            r = subprocess.run(args, capture_output=True, text=True,
                               timeout=TIMEOUT)
            m = re.search(r"^launch digest: ([0-9a-f]{96})$", r.stdout, re.M)
            self.dry[key] = (m.group(1) if m else None,
                             r.stdout + r.stderr)
        return self.dry[key]

    @staticmethod
    def cpu_model():
        dom = ET.parse(DOMAIN_XML).getroot()
        return dom.find("cpu/model").text

    def define_start(self, name, xml):
        path = os.path.join(self.lv.dirs["data"], name + ".xml")
        with open(path, "w") as f:
            f.write(xml)
        sim_log = os.path.join(self.lv.dirs["sim"], name + ".log")
        if os.path.exists(sim_log):
            os.unlink(sim_log)
        self.lv.virsh("define", path)
        return self.lv.virsh("start", name, ok=False)

    def cleanup(self, name):
        self.lv.virsh("destroy", name, ok=False)
        self.lv.virsh("undefine", name, "--nvram", ok=False)
        r = self.lv.virsh("dominfo", name, ok=False)
        check(r.returncode != 0, "%s is still defined after undefine" % name)

    def state(self, name):
        return self.lv.virsh("domstate", "--reason", name).stdout.strip()

    def launchsecinfo(self, name):
        out = self.lv.virsh("domlaunchsecinfo", name).stdout
        info = {}
        for line in out.splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
        return info

    def check_sim_clean(self, name):
        sim = self.lv.sim(name)
        try:
            v = sim.request("query violations")
            check(v["violations"] == [], "the simulator saw broken rules: %s"
                  % v["violations"])
            st = sim.request("query state")
            check(st["sev_state"] == "finished" and st["vm_type"] == 4,
                  "simulator state %s" % st)
            return sim.request("query digest")["digest"], st
        finally:
            sim.close()

    def launch(self, name, xml, vcpus, policy=0x30000):
        """Define and start; check the digest everywhere; the sim log."""
        r = self.define_start(name, xml)
        check(r.returncode == 0, "virsh start failed: %s" % r.stderr.strip())
        check(self.state(name) == "running (booted)",
              "state %r" % self.state(name))
        sim_digest, st = self.check_sim_clean(name)
        check(st["vcpus"] == vcpus, "simulator has %d vCPUs" % st["vcpus"])
        info = self.launchsecinfo(name)
        digest = base64.b64decode(info["sev-measurement"]).hex()
        dry, out = self.dry_run(vcpus, policy)
        check(dry is not None, "snp-launch failed: %s" % out)
        check(digest == dry, "domlaunchsecinfo %s != snp-launch %s"
              % (digest, dry))
        check(digest == sim_digest, "domlaunchsecinfo %s != simulator %s"
              % (digest, sim_digest))
        check(int(info["sev-snp-policy"]) == policy,
              "sev-snp-policy %s" % info.get("sev-snp-policy"))
        return digest

    def lifecycle(self, name, xml, vcpus=1, policy=0x30000):
        try:
            digest = self.launch(name, xml, vcpus, policy)
            self.lv.virsh("destroy", name)
            check(self.state(name) == "shut off (destroyed)",
                  "after destroy: %r" % self.state(name))
            self.lv.virsh("undefine", name)
            return digest
        finally:
            self.cleanup(name)

    def no_new_errors(self, before, what, allowed=()):
        """libvirtd logged no error since @before, but those matching
        one of the regular expressions @allowed."""
        new = [r for r in error_records(self.lv.errors()[len(before):])
               if not any(re.search(a, r.split("\n")[0]) for a in allowed)]
        check(not new, "libvirtd logged errors during %s:\n%s"
              % (what, "\n".join(new)))

    # -------------------------------------------------- cases

    def t_domcapabilities(self):
        out = self.lv.virsh("domcapabilities", "--emulatorbin",
                            self.lv.wrapper, "--arch", "x86_64", "--machine",
                            "q35", "--virttype", "kvm").stdout
        caps = ET.fromstring(out)
        ls = caps.find("features/launchSecurity")
        check(ls is not None and ls.get("supported") == "yes",
              "launchSecurity not supported: %s" % out)
        types = [v.text for v in ls.findall("enum[@name='sectype']/value")]
        check("sev-snp" in types, "sectype values %s" % types)
        sev = caps.find("features/sev")
        check(sev is not None and sev.get("supported") == "yes",
              "<sev> not supported")
        loaders = [v.text for v in caps.findall("os/loader/value")]
        check(OVMF in loaders, "loader values %s lack %s (the descriptor)"
              % (loaders, OVMF))

    def t_pflash_stateless(self):
        x = domain_xml("snp-pflash", self.lv.wrapper)
        self.lifecycle("snp-pflash", x)
        log = self.lv.domain_log("snp-pflash")
        check('"read-only":true' in log and "pflash0" in log,
              "no read-only pflash0 in the command line")

    def t_loader_rom(self):
        x = domain_xml("snp-rom", self.lv.wrapper, loader="rom")
        self.lifecycle("snp-rom", x)
        check("-bios %s" % OVMF in self.lv.domain_log("snp-rom"),
              "no -bios in the command line")

    def t_firmware_autoselect(self):
        name = "snp-efi"
        x = domain_xml(name, self.lv.wrapper, efi=True)
        try:
            self.launch(name, x, 1)
            live = ET.fromstring(self.lv.virsh("dumpxml", name).stdout)
            ld = live.find("os/loader")
            check(ld is not None and ld.text == OVMF and
                  ld.get("type") == "rom",
                  "autoselected loader %s" %
                  (ET.tostring(ld, encoding="unicode") if ld is not None
                   else None))
        finally:
            self.cleanup(name)

    def t_vcpus_8(self):
        self.lifecycle("snp-8", domain_xml("snp-8", self.lv.wrapper,
                                           vcpus=8), vcpus=8)

    def t_launch_security_fields(self):
        name = "snp-fields"
        policy = 0x30000
        digest, out = self.dry_run(1, policy)
        check(digest, out)
        gosvw = bytes(range(1, 17))
        host_data = bytes(range(0x40, 0x60))
        x = domain_xml(name, self.lv.wrapper, policy=policy,
                       lsec_attrs={"authorKey": "yes", "vcek": "no"},
                       lsec={"guestVisibleWorkarounds": b64(gosvw),
                             "idBlock": b64(id_block(bytes.fromhex(digest),
                                                     policy)),
                             "idAuth": b64(id_auth(True)),
                             "hostData": b64(host_data)})
        try:
            self.launch(name, x, 1, policy)
            log = self.lv.sim_log(name)
            start = [e for e in log if e.get("call") ==
                     "KVM_SEV_SNP_LAUNCH_START"]
            fin = [e for e in log if e.get("call") ==
                   "KVM_SEV_SNP_LAUNCH_FINISH"]
            check(len(start) == 1 and len(fin) == 1, "sim log %s" % log)
            s, f = start[0], fin[0]
            check(s["policy"] == policy, "LAUNCH_START policy %s" % s)
            check(s.get("gosvw") == gosvw.hex(), "LAUNCH_START gosvw %s" % s)
            check(f["id_block_en"] == 1 and f.get("auth_key_en") == 1 and
                  f.get("vcek_disabled") == 1 and
                  f.get("host_data") == host_data.hex(),
                  "LAUNCH_FINISH %s" % f)
        finally:
            self.cleanup(name)

    def t_id_block_wrong_digest(self):
        name = "snp-badid"
        x = domain_xml(name, self.lv.wrapper,
                       lsec={"idBlock": b64(id_block(bytes(48), 0x30000)),
                             "idAuth": b64(id_auth(False))})
        try:
            r = self.define_start(name, x)
            check(r.returncode != 0, "started with a wrong ID block")
            check("BAD_MEASUREMENT" in self.lv.domain_log(name),
                  "no BAD_MEASUREMENT in the domain log")
        finally:
            self.cleanup(name)

    def t_kernel_hashes_refused(self):
        name = "snp-hashes"
        kernel = os.path.join(self.lv.dirs["data"], "vmlinuz")
        with open(kernel, "wb") as f:
            f.write(b"not read: refused before the kernel is loaded\n")
        x = domain_xml(name, self.lv.wrapper, kernel=kernel,
                       lsec_attrs={"kernelHashes": "yes"})
        try:
            r = self.define_start(name, x)
            check(r.returncode != 0, "started with kernelHashes='yes'")
            msg = [ln for ln in self.lv.domain_log(name).splitlines()
                   if "kernel-hashes=on" in ln]
            check(msg, "no kernel-hashes message in the domain log")
            words = msg[0].split("qemu-system-x86_64: ", 1)[-1]
            for w in (OVMF, "SNP_KERNEL_HASHES", "AmdSev"):
                check(w in words, "%r not in %r" % (w, words))
            check(words in r.stderr, "virsh start does not say %r: %s"
                  % (words, r.stderr))
            _, out = self.dry_run(1, kernel=kernel)
            check(words in out, "snp-launch --kernel does not say %r: %s"
                  % (words, out))
        finally:
            self.cleanup(name)

    # termination requests: (name, vCPU 0 exit request, words in the log)
    TERMS = [
        ("cpuid", "sev-term 0x%x" % term_msr(1, 4), "CPUID"),
        ("general", "sev-term 0x%x" % term_msr(0, 0), "reason set 0 code 0"),
        ("unknown-code", "sev-term 0x%x" % term_msr(1, 0xff), "code 255"),
        ("ghcb-page", "sev-term 0x7f000", "0x7f000"),
        ("refused-msr", "sev-term 0x4000000014", "0x014"),
        ("no-value", "system-event 6 0", "no GHCB value"),
    ]

    def terminate(self, kind, on_crash):
        req, words = {t[0]: (t[1], t[2]) for t in self.TERMS}[kind]
        name = "snp-term-%s-%s" % (kind, on_crash)
        x = domain_xml(name, self.lv.wrapper, on_crash=on_crash)
        try:
            r = self.define_start(name, x)
            check(r.returncode == 0, "start: %s" % r.stderr)
            errors = self.lv.errors()
            mark = self.ev.mark()
            sim = self.lv.sim(name)
            try:
                sim.request("exit 0 " + req)
            finally:
                sim.close()
            L = self.ev.libvirt
            self.ev.wait(name, "lifecycle", (L.VIR_DOMAIN_EVENT_CRASHED,
                         L.VIR_DOMAIN_EVENT_CRASHED_PANICKED), mark)
            data = self.ev.wait(name, "SEV_TERMINATION_REQUEST", None, mark)
            check(words in data["description"],
                  "SEV_TERMINATION_REQUEST %s lacks %r" % (data, words))
            if on_crash == "destroy":
                self.ev.wait(name, "lifecycle", (L.VIR_DOMAIN_EVENT_STOPPED,
                             L.VIR_DOMAIN_EVENT_STOPPED_CRASHED), mark)
                want = "shut off (crashed)"
            elif on_crash == "coredump-destroy":
                self.ev.wait(name, "lifecycle", (L.VIR_DOMAIN_EVENT_STOPPED,
                             L.VIR_DOMAIN_EVENT_STOPPED_CRASHED), mark)
                # named by libvirt's short name: 20 characters at most
                dumps = glob.glob(os.path.join(
                    self.lv.dirs["config"], "libvirt/qemu/dump/*-%s*"
                    % name[:20]))
                check(len(dumps) == 1, "dumps: %s" % dumps)
                want = "shut off (crashed)"
            elif on_crash == "restart":
                self.ev.wait(name, "lifecycle", (L.VIR_DOMAIN_EVENT_STOPPED,
                             L.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN), mark)
                want = "shut off (shutdown)"
            else:
                want = "crashed (panicked)"
            check(self.state(name) == want, "state %r, expected %r" %
                  (self.state(name), want))
            log = self.lv.domain_log(name)
            line = [ln for ln in log.splitlines()
                    if "SEV guest requested termination" in ln]
            check(line and words in line[-1] and
                  data["description"] in line[-1],
                  "the domain log lacks the reason: %s" % log[-2000:])
            self.no_new_errors(errors, "the termination",
                               RESET_RACE if on_crash == "restart" else ())
        finally:
            self.cleanup(name)

    def t_reset(self):
        name = "snp-reset"
        x = domain_xml(name, self.lv.wrapper)
        try:
            r = self.define_start(name, x)
            check(r.returncode == 0, "start: %s" % r.stderr)
            mark = self.ev.mark()
            errors = self.lv.errors()
            self.lv.virsh("reset", name)
            L = self.ev.libvirt
            self.ev.wait(name, "lifecycle", (L.VIR_DOMAIN_EVENT_STOPPED,
                         L.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN), mark)
            check(self.state(name) == "shut off (shutdown)",
                  "state %r" % self.state(name))
            check("cpus are not resettable, terminating" in
                  self.lv.domain_log(name), "no reset message in the log")
            self.no_new_errors(errors, "the reset", RESET_RACE)
        finally:
            self.cleanup(name)

    def dirtyrate(self, mode):
        name = "snp-dirty-%s" % mode
        # libvirt refuses dirty-ring mode unless the domain has the ring
        x = domain_xml(name, self.lv.wrapper,
                       dirty_ring=mode == "dirty-ring")
        try:
            r = self.define_start(name, x)
            check(r.returncode == 0, "start: %s" % r.stderr)
            r = self.lv.virsh("domdirtyrate-calc", name, "--seconds", "1",
                              "--mode", mode, ok=False)
            if r.returncode == 0:
                # QEMU sends no event when the measurement ends: ask
                deadline = time.monotonic() + TIMEOUT
                while True:
                    st = self.lv.virsh("domstats", "--dirtyrate",
                                       name).stdout
                    m = re.search(r"dirtyrate\.calc_status=(\d+)", st)
                    if m and m.group(1) != "1":     # 1: measuring
                        break
                    check(time.monotonic() < deadline, "still measuring")
                    time.sleep(0.1)
                check("dirtyrate.calc_status=2" in st,
                      "measurement did not complete: %s" % st)
                result = "measured"
            else:
                result = "refused: " + r.stderr.strip()
            check(self.state(name) == "running (booted)",
                  "after domdirtyrate-calc --mode %s (%s): %r"
                  % (mode, result, self.state(name)))
            self.check_sim_clean(name)
            return result
        finally:
            self.cleanup(name)

    def cases(self):
        c = [("domcapabilities lists sev-snp", self.t_domcapabilities),
             ("stateless read-only pflash loader, 1 vCPU",
              self.t_pflash_stateless),
             ("<loader type='rom'>", self.t_loader_rom),
             ("<os firmware='efi'> selects the shipped descriptor",
              self.t_firmware_autoselect),
             ("8 vCPUs", self.t_vcpus_8),
             ("every <launchSecurity type='sev-snp'> field",
              self.t_launch_security_fields),
             ("an ID block with another digest is refused",
              self.t_id_block_wrong_digest),
             ("kernelHashes refused with the firmware named",
              self.t_kernel_hashes_refused)]
        for kind, _, _ in self.TERMS:
            c.append(("termination request %s, on_crash preserve" % kind,
                      lambda k=kind: self.terminate(k, "preserve")))
        for act in ("destroy", "coredump-destroy", "restart"):
            c.append(("termination request cpuid, on_crash %s" % act,
                      lambda a=act: self.terminate("cpuid", a)))
        c.append(("virsh reset", self.t_reset))
        for mode in ("page-sampling", "dirty-bitmap", "dirty-ring"):
            c.append(("domdirtyrate-calc --mode %s" % mode,
                      lambda m=mode: self.dirtyrate(m)))
        return c


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", required=True)
    p.add_argument("--keep", action="store_true",
                   help="keep the private tree (its path is printed)")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("only", nargs="*")
    a = p.parse_args()
    a.build = os.path.abspath(a.build)

    if not os.environ.get("QSNP_LIBVIRT_USERNS"):
        t = 0.0 if a.no_install else install()
        os.environ["QSNP_LIBVIRT_INSTALL_S"] = "%.1f" % t
        me = [os.path.abspath(__file__)] + sys.argv[1:]
        if not os.path.exists("/dev/kvm") and \
           not os.environ.get("QSNP_LIBVIRT_DEVKVM"):
            if os.geteuid() != 0:
                die("this host has no /dev/kvm, which libvirt requires for"
                    " <domain type='kvm'> (QEMU does not open it under the"
                    " simulator); as root the suite stands one in")
            enter_mount_namespace_with_dev_kvm(me)
        if os.geteuid() == 0:
            enter_user_namespace(me)

    t0 = time.monotonic()
    root = tempfile.mkdtemp(prefix="qsnp-lv-")
    lv = Libvirt(a.build, root)
    logs = os.path.join(WORK, "libvirt-suite")
    results = []
    try:
        lv.start()
        ev = Events(lv)
        suite = Suite(lv, ev, a.build)
        ver = lv.virsh("version").stdout
        log("libvirt: %s" % " ".join(ver.split()))
        startup_errors = lv.errors()
        for name, fn in suite.cases():
            if a.only and not any(o in name for o in a.only):
                continue
            t1 = time.monotonic()
            try:
                extra = fn()
                results.append((name, True, extra))
                print("ok - %s%s (%.1f s)" % (name, " (%s)" % extra
                                              if extra else "",
                                              time.monotonic() - t1))
            except (Failed, AssertionError) as e:
                results.append((name, False, str(e)))
                print("not ok - %s: %s" % (name, e))
            except Exception:
                results.append((name, False, traceback.format_exc()))
                print("not ok - %s:\n%s" % (name, traceback.format_exc()))
            sys.stdout.flush()
        startup_errors = error_records(startup_errors)
        if startup_errors:
            print("note: libvirtd logged errors while starting:\n%s"
                  % "\n".join(startup_errors))
    finally:
        lv.stop()
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(lv.dirs["log"], logs)
        domain_logs = os.path.join(lv.dirs["cache"], "libvirt/qemu/log")
        if os.path.isdir(domain_logs):
            shutil.copytree(domain_logs, os.path.join(logs, "domains"))
        if a.keep:
            log("private tree kept: %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    bad = [r for r in results if not r[1]]
    print("libvirt suite: %d passed, %d failed in %.0f s (libvirt install"
          " %s s); logs in %s" % (len(results) - len(bad), len(bad),
                                  time.monotonic() - t0,
                                  os.environ.get("QSNP_LIBVIRT_INSTALL_S",
                                                 "?"), logs))
    return 1 if bad or not results else 0


if __name__ == "__main__":
    sys.exit(main())
