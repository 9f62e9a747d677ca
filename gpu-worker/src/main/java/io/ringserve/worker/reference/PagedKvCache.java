package io.ringserve.worker.reference;

import io.ringserve.model.config.ModelConfig;
import java.util.Arrays;

/**
 * A paged KV cache: one pool of fixed-size blocks shared by all sequences, a free list, and a block table
 * per sequence (vLLM's PagedAttention layout). Position p of a sequence lives in block
 * {@code table[p / B]} at row {@code p % B}. Float32 on the CPU; the CUDA backend uses the same tables.
 *
 * <p>Not thread-safe: owned by the engine thread. Legend: N = blocks, B = block size, Hkv·d = KV width.
 */
public final class PagedKvCache {
    private final int blockSize;
    private final int kvDim;
    private final float[][] keys;   // [layer] (N·B, Hkv·d)
    private final float[][] values; // [layer] (N·B, Hkv·d)
    private final int[] freeList;   // stack of free block ids
    private int freeCount;

    public PagedKvCache(ModelConfig config, int blockSize, int blocks) {
        if (blockSize < 1 || blocks < 1) {
            throw new IllegalArgumentException("KV cache needs block size >= 1 and blocks >= 1, got " + blockSize + " and " + blocks);
        }
        long floats = (long) blocks * blockSize * config.kvDim();
        if (floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("KV cache of " + blocks + " blocks exceeds one array per layer; lower the KV memory budget");
        }
        this.blockSize = blockSize;
        this.kvDim = config.kvDim();
        this.keys = new float[config.numHiddenLayers()][(int) floats];
        this.values = new float[config.numHiddenLayers()][(int) floats];
        this.freeList = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            freeList[i] = blocks - 1 - i; // block 0 is handed out first
        }
        this.freeCount = blocks;
    }

    /** Blocks that fit a memory budget: 2 (K, V) × layers × Hkv·d × 4 bytes per position. */
    public static int blocksForBudget(ModelConfig config, int blockSize, long budgetBytes) {
        long perBlock = 2L * config.numHiddenLayers() * config.kvDim() * Float.BYTES * blockSize;
        long maxByArray = (Integer.MAX_VALUE - 8L) / ((long) blockSize * config.kvDim());
        return (int) Math.min(maxByArray, budgetBytes / perBlock);
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

    /** A new, empty sequence view. */
    public Sequence newSequence() {
        return new Sequence();
    }

    /** One sequence's block table; also its {@link SequenceKv} view for the forward pass. */
    public final class Sequence implements SequenceKv {
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

        /** Returns every block to the pool; the sequence is empty afterwards. */
        public void release() {
            for (int i = count - 1; i >= 0; i--) {
                freeList[freeCount++] = table[i];
            }
            count = 0;
        }

        /** Copy of the block ids in position order. */
        public int[] blockTable() {
            return Arrays.copyOf(table, count);
        }

        @Override
        public int slot(int position) {
            int block = position / blockSize;
            if (block >= count) {
                throw new IllegalStateException("position " + position + " has no KV block (" + count + " blocks held)");
            }
            return table[block] * blockSize + position % blockSize;
        }

        @Override
        public float[] keys(int layer) {
            return keys[layer];
        }

        @Override
        public float[] values(int layer) {
            return values[layer];
        }
    }

    int kvDim() {
        return kvDim;
    }
}
