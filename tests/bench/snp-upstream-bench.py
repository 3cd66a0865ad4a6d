#!/usr/bin/env python3
#
# Side-by-side benchmark of our QEMU and upstream QEMU 10.0.2 under kvm-sim.
#
# Copyright (c) 2026 qemu-snp maintainers
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
"""Benchmark our QEMU against upstream QEMU 10.0.2 under the KVM simulator.

  snp-upstream-bench.py [--rounds N] [--quick] [--only launch|convert]

Prints figures and asserts nothing (run it with scripts/qsnp bench, which
builds, fetches upstream QEMU and the firmware, and passes the paths).

yardstick exec to the QMP greeting of a q35 guest without SEV-SNP: how
          fast each starts at all.
launch    exec to SNP_LAUNCH_FINISH: from just before the exec to the
          moment the simulator received SNP_LAUNCH_FINISH (both
          CLOCK_MONOTONIC), for 1, 8 and 64 vCPUs with 1, 16 and 64 GiB;
          and the peak RSS of the process (the simulator included, the
          same for both).
convert   a 16 GiB guest converts all the RAM both convert (1 MiB to
          2 GiB and 4 GiB to 18 GiB) to shared and back, in 4 KiB and in
          2 MiB steps: each range is one batch the simulator delivers back
          to back (exit ... COUNT STRIDE), timed from the delivery of its
          first exit to QEMU's return to KVM_RUN after its last, so that
          QEMU's handling is timed, not the control socket.

In every round both binaries run every measurement, in alternating order.
Each line gives ours and upstream (medians over the rounds) and the ratio
ours/upstream: its median and [min-max] over the rounds.
"""

import argparse
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "upstream-diff"))
import snpdiff as sd  # noqa: E402

G = 1 << 30
M = 1 << 20


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        sys.exit("snp-upstream-bench: %s is not set (see --help)" % name)
    return v


class Bench:
    def __init__(self, a):
        self.ours = a.ours or env("QSNP_QEMU")
        self.upstream = a.upstream or env("QSNP_UPSTREAM_QEMU")
        self.simlib = a.kvmsim or env("KVMSIM_LIB")
        self.fw = a.firmware or os.path.join(env("QSNP_FIRMWARE_DIR"),
                                             "OVMF-2022.11.fd")
        cbit = int(a.host_cbitpos if a.host_cbitpos is not None else
                   os.popen(env("QSNP_HOST_CBITPOS")).read())
        # as in the differential suite: both get the host's C-bit position
        self.bins = [("ours", self.ours, cbit if 32 <= cbit <= 63 else None),
                     ("upstream", self.upstream, cbit)]
        self.tmp = a.tmp
        self.results = {}       # name -> {binary: [value per round]}

    def start(self, qemu, cbitpos, vcpus, mem_mib, name):
        # reserve=off: 64 GiB guests on smaller hosts (RAM is never touched)
        args = sd.snp_args(self.fw, vcpus=vcpus, mem_mib=mem_mib,
                           cbitpos=cbitpos, paused=False, ram_reserve=False)
        q = sd.SimQemu(qemu, args, self.simlib, self.tmp, name=name,
                       log=False)
        if not q.start():
            raise RuntimeError("%s did not start: %s" % (name, q.stderr()))
        fin = q.sim_ok("wait-launch-finish 600000")
        if fin["result"]:
            raise RuntimeError("%s: SNP_LAUNCH_FINISH failed" % name)
        return q, fin["t_ns"]

    def record(self, name, who, value):
        self.results.setdefault(name, {}).setdefault(who, []).append(value)

    def launch(self, rnd, vcpus, mem_gib):
        for who, qemu, cbit in self.order(rnd):
            q, t_fin = self.start(qemu, cbit, vcpus, mem_gib * 1024, who)
            self.record("exec to LAUNCH_FINISH, %2d vCPUs %2d GiB (ms)" %
                        (vcpus, mem_gib), who, (t_fin - q.t_exec_ns) / 1e6)
            q.quit()
            self.record("peak RSS, %2d vCPUs %2d GiB (MiB)" %
                        (vcpus, mem_gib), who, q.rusage.ru_maxrss / 1024)
            q.cleanup()

    def yardstick(self, rnd):
        """Exec to QMP, q35 without SEV-SNP: how the two start at all."""
        for who, qemu, _ in self.order(rnd):
            q = sd.SimQemu(qemu, ["-accel", "kvm", "-machine", "q35", "-cpu",
                                  "EPYC", "-m", "1G", "-nodefaults",
                                  "-display", "none", "-S", "-bios", self.fw],
                           self.simlib, self.tmp, name=who, log=False)
            if not q.start():
                raise RuntimeError("%s did not start: %s" % (who, q.stderr()))
            self.record("yardstick: exec to QMP, q35 without SNP (ms)", who,
                        (time.monotonic_ns() - q.t_exec_ns) / 1e6)
            q.quit()
            self.record("yardstick: peak RSS, q35 without SNP (MiB)", who,
                        q.rusage.ru_maxrss / 1024)
            q.cleanup()

    def convert(self, rnd, ranges):
        for who, qemu, cbit in self.order(rnd):
            q, _ = self.start(qemu, cbit, 1, 16 * 1024, who)
            try:
                for step, attr2m in ((4096, 0), (2 * M, 1)):
                    for to, attrs in (("shared", 0), ("private", 0x10)):
                        ns = exits = 0
                        for gpa, size in ranges:
                            n = size // step
                            q.sim_ok("exit 0 hypercall-map-gpa %#x %d %#x %d %#x"
                                     % (gpa, step // 4096, attrs | attr2m, n,
                                        step))
                            q.sim_ok("wait-exit-consumed 0 3600000", 3600)
                            st = q.sim_ok("query exit-stats 0")
                            if st["hypercall_nonzero"]:
                                raise RuntimeError("%s refused conversions"
                                                   % who)
                            ns += st["last_consumed_ns"] - st["batch_first_ns"]
                            exits += n
                        name = "to %-7s in %s steps (us per conversion)" % (
                            to, "4 KiB" if step == 4096 else "2 MiB")
                        self.record(name, who, ns / exits / 1e3)
            finally:
                q.quit()
                self.record("peak RSS, conversions of 16 GiB (MiB)", who,
                            q.rusage.ru_maxrss / 1024)
                q.cleanup()

    def order(self, rnd):
        return self.bins if rnd % 2 == 0 else self.bins[::-1]

    def report(self):
        print("%-52s %10s %10s   %s" % ("", "ours", "upstream",
                                        "ours/upstream [min-max]"))
        for name, r in self.results.items():
            o, u = r["ours"], r["upstream"]
            ratios = [x / y for x, y in zip(o, u)]
            print("%-52s %10.2f %10.2f   %.2f [%.2f-%.2f]" % (
                name, statistics.median(o), statistics.median(u),
                statistics.median(ratios), min(ratios), max(ratios)))
        sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Environment, if the options are not given: QSNP_QEMU, "
               "QSNP_UPSTREAM_QEMU, KVMSIM_LIB, QSNP_FIRMWARE_DIR, "
               "QSNP_HOST_CBITPOS (the host-cbitpos helper).")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true",
                   help="1 round; conversions of 1 GiB only")
    p.add_argument("--only", choices=["launch", "convert"])
    p.add_argument("--ours")
    p.add_argument("--upstream")
    p.add_argument("--kvmsim")
    p.add_argument("--firmware")
    p.add_argument("--host-cbitpos", type=int)
    p.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"))
    a = p.parse_args()
    b = Bench(a)
    rounds = 1 if a.quick else a.rounds
    ranges = [(1 * M, 2 * G - 1 * M), (4 * G, 14 * G)]
    if a.quick:
        ranges = [(4 * G, 1 * G)]
    print("# %s (ours) and %s (upstream), %d round(s), firmware %s" %
          (b.ours, b.upstream, rounds, b.fw))
    for rnd in range(rounds):
        if a.only != "convert":
            b.yardstick(rnd)
            for vcpus in (1, 8, 64):
                for mem in (1, 16, 64):
                    b.launch(rnd, vcpus, mem)
        if a.only != "launch":
            b.convert(rnd, ranges)
        print("# round %d done" % (rnd + 1))
        sys.stdout.flush()
    b.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
