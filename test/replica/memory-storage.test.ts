// Goal: show that MemoryStorage, the in-memory twin of LevelStorage, honours the same RaftStorage contract, so tests
// of the driver that use it exercise the semantics production has.
// Method: the shared compliance suite (storage-compliance.ts), with reopen = a new MemoryStorage over the same
// MemoryDisk (every write is durable in the twin, so a reopen loses nothing).
import { MemoryDisk, MemoryStorage } from '../../src/replica/memory-storage.ts';
import type { RaftStorage } from '../../src/replica/storage.ts';
import { runStorageCompliance } from './storage-compliance.ts';

runStorageCompliance('MemoryStorage', async () => {
  const disk = new MemoryDisk();
  let current: RaftStorage = new MemoryStorage(disk);
  return {
    storage: current,
    reopen: async () => {
      await current.close();
      current = new MemoryStorage(disk);
      return current;
    },
    cleanup: async () => {
      await current.close();
    },
  };
});
