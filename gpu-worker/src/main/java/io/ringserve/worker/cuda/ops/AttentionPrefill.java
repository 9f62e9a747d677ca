package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code attention_prefill.cu}: causal attention for the new tokens of one step (whole prompts, prompt chunks,
 * several sequences concatenated) over the paged KV cache, which already holds their K/V. Token t attends keys
 * 0..positions[t] of sequence rowSeq[t]. One block per (KV head, token), fp32 online softmax over key tiles;
 * the correctness baseline (K/V re-read per token from L2). Mirrors ReferenceForward.attention().
 *
 * <p>Legend: T = token rows, N = sequences, H = query heads, Hkv = KV heads, d = head dim, B = KV block size,
 * MB = block table width, S = rows of one layer's KV cache.
 */
public final class AttentionPrefill {
    private static final int THREADS = 128;
    private final Kernel kernel;

    public AttentionPrefill(CudaDevice device) {
        this.kernel = device.module("attention_prefill").kernel("attention_prefill");
    }

    /**
     * @param q           (T, H·d) fp32 queries after norm and RoPE
     * @param kCache      (S, Hkv·d) bf16
     * @param vCache      (S, Hkv·d) bf16
     * @param blockTables (N, MB) int32
     * @param rowSeq      (T) int32 block-table row of each token, in [0, N)
     * @param positions   (T) int32 position of each token (< MB·B); negative: padding row, output 0
     * @param out         (T, H·d) heads in head order: fp32, or bf16 (rounded; the o_proj input) when {@code bf16Out}
     */
    public void launch(CUstream s, DeviceBuffer q, DeviceBuffer kCache, DeviceBuffer vCache, DeviceBuffer blockTables, DeviceBuffer rowSeq,
                       DeviceBuffer positions, DeviceBuffer out, boolean bf16Out, int tokens, int seqs, int heads, int kvHeads, int headDim, int blockSize,
                       int maxBlocks, int cacheRows) {
        String op = "attention_prefill";
        AttentionDecode.check(op, q, kCache, vCache, blockTables, positions, tokens, heads, kvHeads, headDim, blockSize, maxBlocks, cacheRows);
        Shapes.positive(op, "seqs", seqs);
        Shapes.require(op, "blockTables", blockTables, 4L * seqs * maxBlocks);
        Shapes.require(op, "rowSeq", rowSeq, 4L * tokens);
        Shapes.require(op, "out", out, (bf16Out ? 2L : 4L) * tokens * heads * headDim);
        kernel.launch(s, kvHeads, tokens, 1, THREADS, 1, 1, 0, new Object[] {q, kCache, vCache, blockTables, rowSeq, positions, bf16Out ? null : out, bf16Out ? out : null,
                tokens, heads, kvHeads, headDim, blockSize, maxBlocks, AttentionDecode.scale(headDim)});
    }
}
