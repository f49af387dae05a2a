"""The seeded fuzzer from Python (python/tests/fuzz_child.py): objects of every kind made with the
Python API, 1-3 words of their segments corrupted (or the segment cut short), then opened and
operated on in a child process. Pass: no crash, no hang, no exception other than ShmError.
SHMKIT_SEED picks another seed; SHMKIT_FUZZ_CASES the number of cases (default 1500, in batches
of 250 per child); a failure names the seed and case so `python3 fuzz_child.py SEED CASE 1`
reproduces it."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "fuzz_child.py")
FIXED_SEED = 20261201  # make test uses a fixed seed (a CI run must not fail by chance); it has passed


def fuzz_segments() -> set:
    """The fuzz cases' segments now in /dev/shm (fuzz_child.py run_case names them)."""
    return {n for n in os.listdir("/dev/shm") if n.startswith("shmkit-test-pyfz-")}


def run_batch(seed: int, start: int, count: int, watchdog: float):
    """(completed case count, failures): a crash or hang ends the batch at the case it happened in."""
    p = subprocess.Popen([sys.executable, CHILD, str(seed), str(start), str(count)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=watchdog)
        hung = False
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        hung = True
    lines = out.splitlines()
    cases = {int(ln.split(" ", 2)[1]): ln.split(" ", 2)[2] for ln in lines if ln.startswith("C ")}
    last = next((ln for ln in reversed(lines) if ln.startswith("O ")), None)
    fails = []
    for ln in lines:
        if ln.startswith("F "):
            i = int(ln.split(" ", 2)[1])
            fails.append(f"seed {seed} case {i} {cases.get(i, '')}: {ln.split(' ', 2)[2]}")
    if any(ln.startswith("END ") for ln in lines) and p.returncode == 0:
        return count, fails
    i = int(last.split(" ", 2)[1]) if last else start
    # The child died in case i: its `finally` did not run, so remove the case's segment here
    # (fuzz_child.py run_case names it; a crash left one per run in /dev/shm until 2026-12-02).
    try:
        os.unlink(f"/dev/shm/shmkit-test-pyfz-{p.pid}-{i}")
    except FileNotFoundError:
        pass
    what = "HANG" if hung else f"CRASH (signal {-p.returncode})" if p.returncode < 0 else f"EXIT {p.returncode}"
    fails.append(f"{what} seed {seed} case {i} {cases.get(i, '')} in {last}; stderr: {err.strip()[-1500:]}")
    return i + 1 - start, fails


class FuzzTest(unittest.TestCase):
    def test_corrupt_objects_of_every_kind_give_ShmError_within_their_timeouts(self):
        seed = int(os.environ.get("SHMKIT_SEED", FIXED_SEED))
        total = int(os.environ.get("SHMKIT_FUZZ_CASES", 1500))
        batch = 250
        done, failures = 0, []
        while done < total:
            n = min(batch, total - done)
            k, f = run_batch(seed, done, n, watchdog=60 + 0.5 * n)
            failures += f
            done += max(k, 1)  # a crash at case i goes on from i + 1
        print(f"python fuzz: seed {seed} (rerun with SHMKIT_SEED={seed}), {total} cases, {len(failures)} failures")
        self.assertEqual(failures, [], "\n".join(failures[:20]))

    def test_the_driver_reports_a_crash_with_its_case(self):
        # The harness itself: a child that dies of a signal mid-case is reported as a CRASH naming
        # the case (fuzz_child.py's SHMKIT_FUZZ_SELFTEST_CRASH makes case 3 kill itself).
        env_before = os.environ.get("SHMKIT_FUZZ_SELFTEST_CRASH")
        os.environ["SHMKIT_FUZZ_SELFTEST_CRASH"] = "3"
        before = fuzz_segments()
        try:
            k, fails = run_batch(FIXED_SEED, 0, 10, watchdog=60)
        finally:
            if env_before is None:
                del os.environ["SHMKIT_FUZZ_SELFTEST_CRASH"]
            else:
                os.environ["SHMKIT_FUZZ_SELFTEST_CRASH"] = env_before
        self.assertEqual(k, 4)
        left = sorted(fuzz_segments() - before)
        self.assertEqual(left, [], "the crashed case's segment was left behind")
        self.assertEqual(len(fails), 1, fails)
        self.assertIn("CRASH (signal 9) seed", fails[0])
        self.assertIn("case 3", fails[0])


if __name__ == "__main__":
    unittest.main()
