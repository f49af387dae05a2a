"""Return codes of csrc/ops.c shared with the Python side (csrc/shmkit.h SHMKIT_EBADHDR)."""

SHMKIT_EBADHDR = 1000
EBADHDR_NEG = -SHMKIT_EBADHDR
