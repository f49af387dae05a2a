/**
 * The one neutral symbol table of `libshmkit`. Each backend (deno.ts, bun.ts, node.ts) translates
 * it mechanically into its runtime's FFI declaration. Every entry names its C prototype
 * (csrc/shmkit.h): sizes and offsets are `double`, strings and out-parameters are byte buffers.
 *
 * @module
 */

/** A parameter or result type, spelled once for all runtimes. */
export type NativeType = "i32" | "u32" | "f64" | "buffer" | "void";

/** One C function: its parameter types, its result type and its prototype for koffi. */
export interface SymbolDef {
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
  /** The C prototype, used verbatim by the koffi backend. */
  readonly c: string;
}

/** Every exported function of libshmkit. */
export const SYMBOLS = {
  shmkit_abi_version: { parameters: [], result: "i32", c: "int32_t shmkit_abi_version(void)" },
  shmkit_nop: { parameters: [], result: "i32", c: "int32_t shmkit_nop(void)" },
  shmkit_page_size: { parameters: [], result: "i32", c: "int32_t shmkit_page_size(void)" },
  shmkit_name_max: { parameters: [], result: "i32", c: "int32_t shmkit_name_max(void)" },
  shmkit_strerror: {
    parameters: ["i32", "buffer", "u32"], // int32_t err, uint8_t *buf, uint32_t len
    result: "i32",
    c: "int32_t shmkit_strerror(int32_t err, _Out_ uint8_t *buf, uint32_t len)",
  },
  shmkit_errno_name: {
    parameters: ["i32", "buffer", "u32"], // int32_t err, uint8_t *buf, uint32_t len
    result: "i32",
    c: "int32_t shmkit_errno_name(int32_t err, _Out_ uint8_t *buf, uint32_t len)",
  },
  shmkit_errno_value: {
    parameters: ["buffer"], // const uint8_t *name
    result: "i32",
    c: "int32_t shmkit_errno_value(const uint8_t *name)",
  },
  shmkit_shm_create: {
    parameters: ["buffer", "f64", "u32"], // const uint8_t *name, double size, uint32_t mode
    result: "i32",
    c: "int32_t shmkit_shm_create(const uint8_t *name, double size, uint32_t mode)",
  },
  shmkit_shm_open: {
    parameters: ["buffer", "u32"], // const uint8_t *name, uint32_t flags
    result: "i32",
    c: "int32_t shmkit_shm_open(const uint8_t *name, uint32_t flags)",
  },
  shmkit_shm_unlink: {
    parameters: ["buffer"], // const uint8_t *name
    result: "i32",
    c: "int32_t shmkit_shm_unlink(const uint8_t *name)",
  },
  shmkit_memfd_create: {
    parameters: ["buffer", "f64"], // const uint8_t *name, double size
    result: "i32",
    c: "int32_t shmkit_memfd_create(const uint8_t *name, double size)",
  },
  shmkit_open_proc_fd: {
    parameters: ["i32", "i32", "u32"], // int32_t pid, int32_t fd, uint32_t flags
    result: "i32",
    c: "int32_t shmkit_open_proc_fd(int32_t pid, int32_t fd, uint32_t flags)",
  },
  shmkit_open: {
    parameters: ["buffer", "u32", "u32"], // const uint8_t *path, uint32_t flags, uint32_t mode
    result: "i32",
    c: "int32_t shmkit_open(const uint8_t *path, uint32_t flags, uint32_t mode)",
  },
  shmkit_unlink: {
    parameters: ["buffer"], // const uint8_t *path
    result: "i32",
    c: "int32_t shmkit_unlink(const uint8_t *path)",
  },
  shmkit_close: { parameters: ["i32"], result: "i32", c: "int32_t shmkit_close(int32_t fd)" },
  shmkit_ftruncate: {
    parameters: ["i32", "f64"], // int32_t fd, double size
    result: "i32",
    c: "int32_t shmkit_ftruncate(int32_t fd, double size)",
  },
  shmkit_fallocate: {
    parameters: ["i32", "f64", "f64"], // int32_t fd, double offset, double length
    result: "i32",
    c: "int32_t shmkit_fallocate(int32_t fd, double offset, double length)",
  },
  shmkit_fstat: {
    parameters: ["i32", "buffer"], // int32_t fd, double *out (8 doubles)
    result: "i32",
    c: "int32_t shmkit_fstat(int32_t fd, _Out_ double *out)",
  },
  shmkit_stat: {
    parameters: ["buffer", "buffer"], // const uint8_t *path, double *out (8 doubles)
    result: "i32",
    c: "int32_t shmkit_stat(const uint8_t *path, _Out_ double *out)",
  },
  shmkit_fchmod: {
    parameters: ["i32", "u32"], // int32_t fd, uint32_t mode
    result: "i32",
    c: "int32_t shmkit_fchmod(int32_t fd, uint32_t mode)",
  },
  shmkit_mmap: {
    parameters: ["i32", "f64", "f64", "u32"], // int32_t fd, double length, double offset, uint32_t flags
    result: "i32",
    c: "int32_t shmkit_mmap(int32_t fd, double length, double offset, uint32_t flags)",
  },
  shmkit_map_addr: { parameters: ["i32"], result: "f64", c: "double shmkit_map_addr(int32_t id)" },
  shmkit_map_length: { parameters: ["i32"], result: "f64", c: "double shmkit_map_length(int32_t id)" },
  shmkit_munmap: {
    parameters: ["i32", "u32"], // int32_t id, uint32_t mode
    result: "i32",
    c: "int32_t shmkit_munmap(int32_t id, uint32_t mode)",
  },
  shmkit_mremap: {
    parameters: ["i32", "f64"], // int32_t id, double new_length
    result: "i32",
    c: "int32_t shmkit_mremap(int32_t id, double new_length)",
  },
  shmkit_msync: {
    parameters: ["i32", "f64", "f64", "u32"], // int32_t id, double offset, double length, uint32_t sync
    result: "i32",
    c: "int32_t shmkit_msync(int32_t id, double offset, double length, uint32_t sync)",
  },
  shmkit_madvise: {
    parameters: ["i32", "f64", "f64", "i32"], // int32_t id, double offset, double length, int32_t advice
    result: "i32",
    c: "int32_t shmkit_madvise(int32_t id, double offset, double length, int32_t advice)",
  },
  shmkit_copy: {
    // int32_t dst_id, double dst_off, int32_t src_id, double src_off, double n
    parameters: ["i32", "f64", "i32", "f64", "f64"],
    result: "i32",
    c: "int32_t shmkit_copy(int32_t dst_id, double dst_off, int32_t src_id, double src_off, double n)",
  },
  shmkit_futex_wait: {
    // int32_t id, double offset, uint32_t expected, double timeout_ms
    parameters: ["i32", "f64", "u32", "f64"],
    result: "i32",
    c: "int32_t shmkit_futex_wait(int32_t id, double offset, uint32_t expected, double timeout_ms)",
  },
  shmkit_futex_wake: {
    parameters: ["i32", "f64", "i32"], // int32_t id, double offset, int32_t count
    result: "i32",
    c: "int32_t shmkit_futex_wake(int32_t id, double offset, int32_t count)",
  },
  shmkit_waiter_add: {
    parameters: ["i32", "f64", "u32"], // int32_t id, double offset, uint32_t expected
    result: "i32",
    c: "int32_t shmkit_waiter_add(int32_t id, double offset, uint32_t expected)",
  },
  shmkit_waiter_cancel: {
    parameters: ["i32"], // int32_t token
    result: "i32",
    c: "int32_t shmkit_waiter_cancel(int32_t token)",
  },
  shmkit_waiter_next: {
    parameters: ["buffer", "i32", "f64"], // int32_t *out, int32_t max, double timeout_ms
    result: "i32",
    c: "int32_t shmkit_waiter_next(_Out_ int32_t *out, int32_t max, double timeout_ms)",
  },
  shmkit_waiter_interrupt: { parameters: [], result: "i32", c: "int32_t shmkit_waiter_interrupt(void)" },
  shmkit_waiter_pending: { parameters: [], result: "i32", c: "int32_t shmkit_waiter_pending(void)" },
  shmkit_atomic_load_u32: {
    parameters: ["i32", "f64", "i32"], // int32_t id, double offset, int32_t order
    result: "f64",
    c: "double shmkit_atomic_load_u32(int32_t id, double offset, int32_t order)",
  },
  shmkit_atomic_store_u32: {
    parameters: ["i32", "f64", "u32", "i32"], // int32_t id, double offset, uint32_t value, int32_t order
    result: "i32",
    c: "int32_t shmkit_atomic_store_u32(int32_t id, double offset, uint32_t value, int32_t order)",
  },
  shmkit_atomic_exchange_u32: {
    parameters: ["i32", "f64", "u32", "i32"], // int32_t id, double offset, uint32_t value, int32_t order
    result: "f64",
    c: "double shmkit_atomic_exchange_u32(int32_t id, double offset, uint32_t value, int32_t order)",
  },
  shmkit_atomic_cas_u32: {
    // int32_t id, double offset, uint32_t expected, uint32_t desired, int32_t order
    parameters: ["i32", "f64", "u32", "u32", "i32"],
    result: "f64",
    c: "double shmkit_atomic_cas_u32(int32_t id, double offset, uint32_t expected, uint32_t desired, int32_t order)",
  },
  shmkit_atomic_fetch_add_u32: {
    parameters: ["i32", "f64", "u32", "i32"], // int32_t id, double offset, uint32_t delta, int32_t order
    result: "f64",
    c: "double shmkit_atomic_fetch_add_u32(int32_t id, double offset, uint32_t delta, int32_t order)",
  },
  shmkit_atomic_load_u64: {
    parameters: ["i32", "f64", "i32", "buffer"], // int32_t id, double offset, int32_t order, uint64_t *io
    result: "i32",
    c: "int32_t shmkit_atomic_load_u64(int32_t id, double offset, int32_t order, _Inout_ uint64_t *io)",
  },
  shmkit_atomic_store_u64: {
    parameters: ["i32", "f64", "i32", "buffer"], // int32_t id, double offset, int32_t order, uint64_t *io
    result: "i32",
    c: "int32_t shmkit_atomic_store_u64(int32_t id, double offset, int32_t order, _Inout_ uint64_t *io)",
  },
  shmkit_atomic_exchange_u64: {
    parameters: ["i32", "f64", "i32", "buffer"], // int32_t id, double offset, int32_t order, uint64_t *io
    result: "i32",
    c: "int32_t shmkit_atomic_exchange_u64(int32_t id, double offset, int32_t order, _Inout_ uint64_t *io)",
  },
  shmkit_atomic_cas_u64: {
    parameters: ["i32", "f64", "i32", "buffer"], // int32_t id, double offset, int32_t order, uint64_t *io
    result: "i32",
    c: "int32_t shmkit_atomic_cas_u64(int32_t id, double offset, int32_t order, _Inout_ uint64_t *io)",
  },
  shmkit_atomic_fetch_add_u64: {
    parameters: ["i32", "f64", "i32", "buffer"], // int32_t id, double offset, int32_t order, uint64_t *io
    result: "i32",
    c: "int32_t shmkit_atomic_fetch_add_u64(int32_t id, double offset, int32_t order, _Inout_ uint64_t *io)",
  },
  shmkit_getpid: { parameters: [], result: "i32", c: "int32_t shmkit_getpid(void)" },
  shmkit_geteuid: { parameters: [], result: "i32", c: "int32_t shmkit_geteuid(void)" },
  shmkit_signal_count: { parameters: [], result: "f64", c: "double shmkit_signal_count(void)" },
  shmkit_proc_start_time: {
    parameters: ["i32"], // int32_t pid
    result: "f64",
    c: "double shmkit_proc_start_time(int32_t pid)",
  },
  shmkit_proc_alive: {
    parameters: ["i32", "f64"], // int32_t pid, double start_time
    result: "i32",
    c: "int32_t shmkit_proc_alive(int32_t pid, double start_time)",
  },
  shmkit_shm_holders: {
    parameters: ["buffer", "buffer", "i32"], // const uint8_t *name, int32_t *out, int32_t max
    result: "i32",
    c: "int32_t shmkit_shm_holders(const uint8_t *name, _Out_ int32_t *out, int32_t max)",
  },
  shmkit_shm_list: {
    parameters: ["buffer", "u32"], // uint8_t *out, uint32_t len
    result: "i32",
    c: "int32_t shmkit_shm_list(_Out_ uint8_t *out, uint32_t len)",
  },
  shmkit_layout_offset: {
    parameters: ["buffer"], // const uint8_t *name
    result: "i32",
    c: "int32_t shmkit_layout_offset(const uint8_t *name)",
  },
  shmkit_now_ns: { parameters: [], result: "f64", c: "double shmkit_now_ns(void)" },
  shmkit_pin_cpu: { parameters: ["i32"], result: "i32", c: "int32_t shmkit_pin_cpu(int32_t cpu)" },
  shmkit_rusage: {
    parameters: ["buffer"], // double *out (4 doubles)
    result: "i32",
    c: "int32_t shmkit_rusage(_Out_ double *out)",
  },
} as const satisfies Record<string, SymbolDef>;

/** The names of every symbol. */
export type SymbolName = keyof typeof SYMBOLS;

type JsOf<T extends NativeType> = T extends "buffer" ? ArrayBufferView
  : T extends "void" ? void
  : number;
type JsParams<P extends readonly NativeType[]> = {
  -readonly [K in keyof P]: P[K] extends NativeType ? JsOf<P[K]> : never;
};

/** The synchronous functions every backend exposes: numbers in, a number out. */
export type NativeSymbols = {
  readonly [K in SymbolName]: (
    ...args: JsParams<typeof SYMBOLS[K]["parameters"]>
  ) => JsOf<typeof SYMBOLS[K]["result"]>;
};
