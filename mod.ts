/**
 * shmkit: cross-process shared memory for Deno, Bun and Node. Segments, file mappings, lock-free
 * rings, block pools, zero-copy channels, locks and numeric arrays, shared by name or by a
 * JSON handle between processes of any of the three runtimes (and Python).
 *
 * @example
 * ```ts
 * import { SharedMemory } from "./mod.ts";
 * using seg = SharedMemory.create(null, 4096);
 * seg.bytes().set(new TextEncoder().encode("hello"));
 * const handle = JSON.stringify(seg.handle()); // send to any process, then SharedMemory.attach()
 * seg.unlink();
 * ```
 *
 * @module
 */
export { ShmError, type ShmErrorCode, type ShmErrorOptions } from "./src/errors.ts";
export { attach, type Handle } from "./src/handle.ts";
export type { WaitOptions } from "./src/wait.ts";
export {
  type CreateOptions,
  type OpenOptions,
  SharedMemory,
  type SharedMemoryHandle,
  type ViewConstructor,
} from "./src/segment.ts";
export {
  type ArrayData,
  type ArrayDataOf,
  type DType,
  SharedArray,
  type SharedArrayCreateOptions,
  type SharedArrayHandle,
  type SharedArrayOpenOptions,
  type SharedArrayShapeOptions,
  type SharedArrayWrapOptions,
} from "./src/shared_array.ts";
export {
  type MadviseAdvice,
  MappedFile,
  type MappedFileAccess,
  type MappedFileHandle,
  type MappedFileOptions,
  type SeekWhence,
} from "./src/mapped_file.ts";
export {
  type Block,
  Mempool,
  type MempoolCreateOptions,
  type MempoolHandle,
  type MempoolOptions,
} from "./src/mempool.ts";
export { type LockGuard, Mutex, type MutexHandle, type MutexOptions } from "./src/mutex.ts";
export { Semaphore, type SemaphoreHandle, type SemaphoreOptions } from "./src/semaphore.ts";
export { Condition, type ConditionHandle, type ConditionOptions } from "./src/condition.ts";
export {
  Ring,
  type RingCreateOptions,
  type RingHandle,
  type RingInitOptions,
  type RingMode,
  type RingOptions,
} from "./src/ring.ts";
export {
  type BatchReceiver,
  Channel,
  type ChannelHandle,
  type ChannelMode,
  type ChannelOpenOptions,
  type ChannelOptions,
  type DetachMode,
  type Loan,
  type Message,
  type RecvBatchOptions,
} from "./src/channel.ts";
export { decodeText } from "./src/text.ts";
export {
  type AllocOptions,
  type HeapName,
  type HeapStats,
  type Placeable,
  SharedHeap,
  type SharedHeapHandle,
  type SharedHeapOptions,
} from "./src/heap.ts";
export {
  type ArrayOf,
  type FieldInfo,
  type FieldSpec,
  type FieldValue,
  type IntegerField,
  type IntValue,
  type ScalarType,
  type ScalarValue,
  type Schema,
  struct,
  type StructAtomics,
  StructType,
  type StructValue,
} from "./src/struct.ts";
export {
  LogClaim,
  type LogMode,
  type LogReadBatchOptions,
  LogRecord,
  type LogWriteOptions,
  MessageLog,
  type MessageLogCreateOptions,
  type MessageLogHandle,
  type MessageLogInitOptions,
  type MessageLogOptions,
} from "./src/log.ts";
