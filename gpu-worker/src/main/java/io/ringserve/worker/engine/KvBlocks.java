package io.ringserve.worker.engine;

import java.util.Arrays;

/**
 * The KV block allocator: a pool of fixed-size block ids, a free list, and a block table per sequence
 * (vLLM's PagedAttention layout). Position p of a sequence lives in block {@code table[p / B]} at row
 * {@code p % B} of whatever storage the {@link StepRunner} keeps. Only ids live here, no K/V.
 *
 * <p>Not thread-safe: owned by the engine thread. Legend: N = blocks, B = block size.
 */
public final class KvBlocks {
    private final int blockSize;
    private final int[] freeList; // stack of free block ids
    private int freeCount;

    public KvBlocks(int blockSize, int blocks) {
        if (blockSize < 1 || blocks < 1) {
            throw new IllegalArgumentException("KV cache needs block size >= 1 and blocks >= 1, got " + blockSize + " and " + blocks);
        }
        this.blockSize = blockSize;
        this.freeList = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            freeList[i] = blocks - 1 - i; // block 0 is handed out first
        }
        this.freeCount = blocks;
    }

    public int blockSize() {
        return blockSize;
    }

    public int totalBlocks() {
        return freeList.length;
    }

    public int freeBlocks() {
        return freeCount;
    }

    /** Blocks needed to hold {@code positions} positions. */
    public int blocksFor(int positions) {
        return (positions + blockSize - 1) / blockSize;
    }

    /** A new, empty block table. */
    public Table newTable() {
        return new Table();
    }

    /** One sequence's block table. */
    public final class Table {
        private int[] table = new int[4];
        private int count;

        public int blockCount() {
            return count;
        }

        /** Positions the blocks held so far can store. */
        public int capacity() {
            return count * blockSize;
        }

        /**
         * Grows the table to hold {@code positions} positions.
         *
         * @return false (and nothing allocated) when the pool has too few free blocks
         */
        public boolean ensureCapacity(int positions) {
            int needed = blocksFor(positions) - count;
            if (needed <= 0) {
                return true;
            }
            if (needed > freeCount) {
                return false;
            }
            if (count + needed > table.length) {
                table = Arrays.copyOf(table, Math.max(table.length * 2, count + needed));
            }
            for (int i = 0; i < needed; i++) {
                table[count++] = freeList[--freeCount];
            }
            return true;
        }

        /** Returns every block to the pool; the table is empty afterwards. */
        public void release() {
            for (int i = count - 1; i >= 0; i--) {
                freeList[freeCount++] = table[i];
            }
            count = 0;
        }

        /** Copy of the block ids in position order. */
        public int[] ids() {
            return Arrays.copyOf(table, count);
        }
    }
}
