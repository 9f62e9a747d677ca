package io.ringserve.worker.reference;

import io.ringserve.model.config.ModelConfig;

/**
 * The storage of a paged KV cache on the CPU: per layer, one float32 pool of N blocks of B positions.
 * Which blocks a sequence holds is the engine's business (its block allocator); a {@link #view} of a block
 * table is the {@link SequenceKv} the forward pass reads and writes. Position p of a table lives in block
 * {@code table[p / B]} at row {@code p % B} — the layout the CUDA backend uses as well.
 *
 * <p>A shard stores only the layers of its {@link LayerRange}; layers are still addressed by their absolute
 * index.
 *
 * <p>Not thread-safe: owned by the engine thread. Legend: N = blocks, B = block size, Hkv·d = KV width.
 */
public final class PagedKvCache {
    private final int blockSize;
    private final int blocks;
    private final int firstLayer;
    private final float[][] keys;   // [layer - firstLayer] (N·B, Hkv·d)
    private final float[][] values; // [layer - firstLayer] (N·B, Hkv·d)

    public PagedKvCache(ModelConfig config, int blockSize, int blocks) {
        this(config, LayerRange.all(config.numHiddenLayers()), blockSize, blocks);
    }

    public PagedKvCache(ModelConfig config, LayerRange layers, int blockSize, int blocks) {
        if (blockSize < 1 || blocks < 1) {
            throw new IllegalArgumentException("KV cache needs block size >= 1 and blocks >= 1, got " + blockSize + " and " + blocks);
        }
        long floats = (long) blocks * blockSize * config.kvDim();
        if (floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("KV cache of " + blocks + " blocks exceeds one array per layer; lower the KV memory budget");
        }
        this.blockSize = blockSize;
        this.blocks = blocks;
        this.firstLayer = layers.start();
        this.keys = new float[layers.count()][(int) floats];
        this.values = new float[layers.count()][(int) floats];
    }

    /** Bytes one block takes: 2 (K, V) × layers × Hkv·d × 4 bytes per position. */
    public static long bytesPerBlock(ModelConfig config, int blockSize) {
        return bytesPerBlock(config, LayerRange.all(config.numHiddenLayers()), blockSize);
    }

    /** Bytes one block takes in a shard: only the layers it holds. */
    public static long bytesPerBlock(ModelConfig config, LayerRange layers, int blockSize) {
        return 2L * layers.count() * config.kvDim() * Float.BYTES * blockSize;
    }

    /** Most blocks one float array per layer can hold. */
    public static int maxBlocks(ModelConfig config, int blockSize) {
        return (int) Math.min(Integer.MAX_VALUE, (Integer.MAX_VALUE - 8L) / ((long) blockSize * config.kvDim()));
    }

    public int blockSize() {
        return blockSize;
    }

    public int blocks() {
        return blocks;
    }

    /** The K/V of the sequence whose blocks are {@code table} (block ids in position order). */
    public SequenceKv view(int[] table) {
        return new View(table);
    }

    private final class View implements SequenceKv {
        private final int[] table;

        View(int[] table) {
            this.table = table;
        }

        @Override
        public int slot(int position) {
            int block = position / blockSize;
            if (block >= table.length) {
                throw new IllegalStateException("position " + position + " has no KV block (" + table.length + " blocks held)");
            }
            return table[block] * blockSize + position % blockSize;
        }

        @Override
        public float[] keys(int layer) {
            return keys[layer - firstLayer];
        }

        @Override
        public float[] values(int layer) {
            return values[layer - firstLayer];
        }
    }
}
