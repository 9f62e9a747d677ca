package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.Dot;
import io.ringserve.worker.reference.ReferenceOps;
import io.ringserve.worker.weights.Bf16;
import java.util.Arrays;

/**
 * A random bf16 paged KV cache for the attention tests, laid out as reference.PagedKvCache (position p of a
 * sequence at row table[p / B]·B + p % B) with shuffled block ids, and the reference attention of one query
 * head: ReferenceForward.attention()'s loop (softmax(q·kᵀ·scale)·v over positions 0..keys−1).
 */
final class PagedKv {
    final int blockSize;
    final int kvHeads;
    final int headDim;
    final int maxBlocks;
    final int rows;          // S = blocks · B
    final short[] keys;      // (S, Hkv·d) bf16
    final short[] values;    // (S, Hkv·d) bf16
    final float[] keysF;     // the same, widened
    final float[] valuesF;
    final int[] tables;      // (N, MB), unused entries -1

    PagedKv(long seed, int blockSize, int kvHeads, int headDim, int[] lengths) {
        this.blockSize = blockSize;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        int most = 1;
        int needed = 0;
        for (int len : lengths) {
            most = Math.max(most, len);
            needed += (len + blockSize - 1) / blockSize;
        }
        this.maxBlocks = (most + blockSize - 1) / blockSize;
        int blocks = needed + 3;
        this.rows = blocks * blockSize;
        int[] ids = QkNormRopeCacheTest.shuffledSlots(seed, blocks, blocks);
        tables = new int[lengths.length * maxBlocks];
        Arrays.fill(tables, -1);
        int next = 0;
        for (int s = 0; s < lengths.length; s++) {
            for (int b = 0; b < (lengths[s] + blockSize - 1) / blockSize; b++) {
                tables[s * maxBlocks + b] = ids[next++];
            }
        }
        keys = GpuTestSupport.randomBf16(seed + 1, rows * kvHeads * headDim, 2f);
        values = GpuTestSupport.randomBf16(seed + 2, rows * kvHeads * headDim, 1f);
        keysF = Bf16.toFloat(keys);
        valuesF = Bf16.toFloat(values);
    }

    int slot(int seq, int p) {
        return tables[seq * maxBlocks + p / blockSize] * blockSize + p % blockSize;
    }

    /** out[outOff .. +d) = attention of q[qOff .. +d) (query head h → KV head h / group) over keys 0..keys−1 of seq. */
    void attend(int seq, float[] q, int qOff, int kvHead, int keys, float scale, float[] out, int outOff) {
        int kvDim = kvHeads * headDim;
        float[] scores = new float[keys];
        for (int p = 0; p < keys; p++) {
            scores[p] = Dot.dot(q, qOff, keysF, slot(seq, p) * kvDim + kvHead * headDim, headDim) * scale;
        }
        ReferenceOps.softmax(scores, 0, keys);
        Arrays.fill(out, outOff, outOff + headDim, 0f);
        for (int p = 0; p < keys; p++) {
            int vOff = slot(seq, p) * kvDim + kvHead * headDim;
            for (int i = 0; i < headDim; i++) {
                out[outOff + i] += scores[p] * valuesF[vOff + i];
            }
        }
    }
}
