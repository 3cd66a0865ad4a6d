#!/usr/bin/env python3
#
# Tests of scripts/snp-launch: the CPU it measures and launches with
# (--cpu host, --cpu-signature), a dry run without warnings, QEMU's error
# printed once.  Run by "scripts/qsnp test":
#
#   tests/snp-launch-test.py QEMU FIRMWARE_DIR
#
# Copyright the qemu-snp authors
# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of scripts/snp-launch."""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "snp-launch")
QEMU = FIRMWARE = None


def load_script():
    """scripts/snp-launch as a module (it has no .py name)."""
    loader = importlib.machinery.SourceFileLoader("snp_launch", SCRIPT)
    spec = importlib.util.spec_from_loader("snp_launch", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def run(*args):
    """A dry run of scripts/snp-launch: (exit status, stdout, stderr)."""
    proc = subprocess.run([SCRIPT, "--qemu", QEMU, "--firmware", FIRMWARE,
                           "--dry-run"] + list(args),
                          capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def digest(out):
    lines = [l for l in out.splitlines() if l.startswith("launch digest:")]
    assert len(lines) == 1, out
    return lines[0].split()[-1]


class DryRun(unittest.TestCase):
    def test_no_warnings(self):
        """A model TCG lacks features of: no warning, a digest."""
        rc, out, err = run("--cpu", "EPYC-Genoa", "--vcpus", "4")
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        self.assertEqual(len(digest(out)), 96)

    def test_signature(self):
        """--cpu-signature gives the model the signature, and the digest."""
        rc, genoa, err = run("--cpu", "EPYC-Genoa")
        self.assertEqual(rc, 0, err)
        rc, same, err = run("--cpu", "host", "--cpu-signature", "25:17:0")
        self.assertEqual(rc, 0, err)
        self.assertIn("EPYC-Genoa,family=25,model=17,stepping=0", same)
        self.assertIn("CPUID 1 EAX 0x00a10f10", same)
        self.assertEqual(digest(same), digest(genoa))
        rc, hexa, err = run("--cpu", "EPYC-Milan",
                            "--cpu-signature", "0x19:0x11:0")
        self.assertEqual(rc, 0, err)
        self.assertEqual(digest(hexa), digest(genoa))
        rc, turin, err = run("--cpu", "host", "--cpu-signature", "26:2:1")
        self.assertEqual(rc, 0, err)
        self.assertIn("EPYC-Genoa,family=26,model=2,stepping=1", turin)
        self.assertIn("CPUID 1 EAX 0x00b00f21", turin)
        self.assertNotEqual(digest(turin), digest(genoa))

    def test_bad_signature(self):
        for sig in ("25:17", "25:x:1", "25:17:16", "300:1:1"):
            rc, out, err = run("--cpu", "host", "--cpu-signature", sig)
            self.assertEqual(rc, 2, sig)
            self.assertIn("--cpu-signature", err)
            self.assertEqual(out, "")
        rc, out, err = run("--cpu", "host", "--cpu-signature", "23:49:0")
        self.assertNotEqual(rc, 0)
        self.assertIn("family 23", err)

    def test_host_without_snp(self):
        """--cpu host on a host without SEV-SNP needs --cpu-signature."""
        module = load_script()
        if module.host_has_snp():
            self.skipTest("this host has SEV-SNP")
        rc, out, err = run("--cpu", "host")
        self.assertNotEqual(rc, 0)
        self.assertIn("--cpu-signature", err)
        self.assertEqual(out, "")

    def test_qemu_error_once(self):
        """QEMU's error is printed once, followed by ours."""
        rc, out, err = run("--cpu", "EPYC-Turin")
        self.assertNotEqual(rc, 0)
        self.assertEqual(err.splitlines(), [
            "qemu-system-x86_64: unable to find CPU model 'EPYC-Turin'",
            "snp-launch: QEMU failed (exit status 1)"])

    def test_launch_error_alone(self):
        """A launch failure after the vCPUs exist: no warning buries it."""
        with tempfile.NamedTemporaryFile(suffix=".fd") as fw:
            fw.write(bytes(2 << 20))
            fw.flush()
            proc = subprocess.run([SCRIPT, "--qemu", QEMU, "--firmware",
                                   fw.name, "--cpu", "EPYC-Genoa",
                                   "--dry-run"], capture_output=True,
                                  text=True, check=False)
        lines = proc.stderr.splitlines()
        self.assertNotEqual(proc.returncode, 0)
        self.assertEqual(len(lines), 2, proc.stderr)
        self.assertIn("has no SEV-ES reset block", lines[0])
        self.assertEqual(lines[1], "snp-launch: QEMU failed (exit status 1)")


class SnpHost(unittest.TestCase):
    """On an SEV-SNP host (host_has_snp and /proc/cpuinfo replaced)."""

    class Exec(Exception):
        """os.execvp does not return"""

    def launch(self, *args, signature=(25, 17, 1)):
        module = load_script()
        argv = ["snp-launch", "--qemu", "qemu", "--firmware", "fw"]
        with mock.patch.object(module, "host_has_snp", return_value=True), \
             mock.patch.object(module, "host_signature",
                               return_value=signature), \
             mock.patch.object(module.os, "execvp",
                               side_effect=self.Exec) as execvp, \
             mock.patch.object(sys, "argv", argv + list(args)), \
             mock.patch.object(module, "qmp_session") as qmp:
            qmp.return_value = [{"data": ""}, []]
            try:
                module.main()
            except self.Exec:
                pass
        return execvp, qmp

    def cpu_of(self, args):
        return args[args.index("-cpu") + 1]

    def test_host_launch(self):
        """The launch has -cpu host; the signature is printed."""
        with mock.patch("sys.stderr") as err:
            execvp, _ = self.launch("--cpu", "host")
        self.assertEqual(self.cpu_of(execvp.call_args[0][1]), "host")
        printed = "".join(c[0][0] for c in err.write.call_args_list)
        self.assertIn("25:17:1 (CPUID 1 EAX 0x00a10f11), from this host",
                      printed)

    def test_host_dry_run(self):
        """The dry run measures the model that takes the host's signature."""
        with mock.patch("sys.stdout"):
            execvp, qmp = self.launch("--cpu", "host", "--dry-run",
                                      signature=(25, 1, 1))
        execvp.assert_not_called()
        self.assertEqual(self.cpu_of(qmp.call_args[0][0]),
                         "EPYC-Milan,family=25,model=1,stepping=1,check=off")

    def test_host_signature_mismatch(self):
        with self.assertRaises(SystemExit) as e:
            self.launch("--cpu", "host", "--cpu-signature", "26:2:1")
        self.assertIn("not --cpu-signature", str(e.exception))

    def test_model_launch(self):
        """A named model with --cpu-signature launches with it."""
        with mock.patch("sys.stderr"):
            execvp, _ = self.launch("--cpu", "EPYC-Genoa",
                                    "--cpu-signature", "26:2:1")
        self.assertEqual(self.cpu_of(execvp.call_args[0][1]),
                         "EPYC-Genoa,family=26,model=2,stepping=1")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: snp-launch-test.py QEMU FIRMWARE_DIR")
    QEMU = os.path.abspath(sys.argv[1])
    FIRMWARE = os.path.join(sys.argv[2], "OVMF-2022.11.fd")
    unittest.main(argv=sys.argv[:1], verbosity=2)
