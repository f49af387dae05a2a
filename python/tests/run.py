"""Runs the Python suite (unittest, so no third-party runner is needed; pytest also collects
these files) and ends with one line "python: N passed, N failed, N skipped" that
scripts/test_all.sh adds to the total. Usage: python3 python/tests/run.py [-v] [pattern]"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]


def main() -> int:
    verbose = "-v" in sys.argv
    rest = [a for a in sys.argv[1:] if a != "-v"]
    suite = unittest.defaultTestLoader.discover(HERE, pattern=rest[0] if rest else "test_*.py", top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=2 if verbose else 1, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"python: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


sys.exit(main())
