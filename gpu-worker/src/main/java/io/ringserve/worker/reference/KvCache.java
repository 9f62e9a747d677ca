package io.ringserve.worker.reference;

import io.ringserve.model.config.ModelConfig;
import java.util.Arrays;

/**
 * One sequence's key/value cache: per layer, K after QK-norm (V2) and RoPE, and V as projected, float32,
 * contiguous by position. Grows by doubling up to the model's context length.
 *
 * <p>Legend: P = positions held, Hkv = KV heads, d = head dim.
 */
public final class KvCache implements SequenceKv {
    private final int layers;
    private final int firstLayer;
    private final int kvDim;
    private final int maxPositions;
    private float[][] keys;   // [layer - firstLayer] (capacity, Hkv·d)
    private float[][] values; // [layer - firstLayer] (capacity, Hkv·d)
    private int capacity;
    private int length;

    public KvCache(ModelConfig config, int maxPositions) {
        this(config, LayerRange.all(config.numHiddenLayers()), maxPositions);
    }

    /** A cache of the layers one shard holds (addressed by absolute layer index). */
    public KvCache(ModelConfig config, LayerRange range, int maxPositions) {
        this.layers = range.count();
        this.firstLayer = range.start();
        this.kvDim = config.kvDim();
        this.maxPositions = maxPositions;
        this.capacity = Math.min(64, maxPositions);
        this.keys = new float[layers][capacity * kvDim];
        this.values = new float[layers][capacity * kvDim];
    }

    /** Positions already in the cache; the next token goes to this position. */
    public int length() {
        return length;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /** Makes room for {@code extra} more positions, or explains why the context is full. */
    void reserve(int extra) {
        int needed = length + extra;
        if (needed > maxPositions) {
            throw new IllegalArgumentException("context length exceeded: " + length + " cached + " + extra + " new tokens > " + maxPositions);
        }
        if (needed <= capacity) {
            return;
        }
        int grown = Math.min(maxPositions, Math.max(needed, capacity * 2));
        for (int l = 0; l < layers; l++) {
            keys[l] = Arrays.copyOf(keys[l], grown * kvDim);
            values[l] = Arrays.copyOf(values[l], grown * kvDim);
        }
        capacity = grown;
    }

    @Override
    public int slot(int position) {
        return position;
    }

    @Override
    public float[] keys(int layer) {
        return keys[layer - firstLayer];
    }

    @Override
    public float[] values(int layer) {
        return values[layer - firstLayer];
    }

    /** Called once all layers have written the new positions. */
    void advance(int tokens) {
        length += tokens;
    }

    /** Drops everything after {@code newLength} positions (e.g. to re-run a suffix). */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("cannot truncate a cache of " + length + " positions to " + newLength);
        }
        length = newLength;
    }
}
