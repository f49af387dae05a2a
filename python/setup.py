"""Build hook: bundles the C sources of libshmkit into the package (shmkit/_csrc) and records the
checkout it was installed from (shmkit/_source.py), so an installed shmkit finds the checkout's
build/libshmkit.so, or compiles the bundled sources into a cache directory on first use."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CSRC = os.path.join(REPO, "csrc")
FILES = ["shmkit.c", "ops.c", "ops_sync.c", "ops_log.c", "ops_heap.c", "ops_chan.c", "os_linux.c", "os_darwin.c", "shmkit.h", "os.h", "shmkit_layout.h", "ops_common.h", "exports.map"]


class BuildPy(build_py):
    def run(self):
        super().run()
        pkg = os.path.join(self.build_lib, "shmkit")
        if os.path.isdir(CSRC):
            dst = os.path.join(pkg, "_csrc")
            os.makedirs(dst, exist_ok=True)
            for f in FILES:
                if os.path.exists(os.path.join(CSRC, f)):
                    shutil.copyfile(os.path.join(CSRC, f), os.path.join(dst, f))
            with open(os.path.join(pkg, "_source.py"), "w") as out:
                out.write("# Written by setup.py at install time: the shmkit checkout this package came from.\n")
                out.write(f"SOURCE_DIR = {REPO!r}\n")


setup(cmdclass={"build_py": BuildPy})
