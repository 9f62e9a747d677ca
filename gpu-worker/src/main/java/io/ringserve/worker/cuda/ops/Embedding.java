package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code embedding.cu}: the rows of the bf16 embedding table for T token ids, widened into the fp32 residual
 * stream. Mirrors ReferenceForward's embedding step (exact). Legend: T = tokens, V = vocab, D = hidden.
 */
public final class Embedding {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public Embedding(CudaDevice device) {
        this.kernel = device.module("embedding").kernel("embedding");
    }

    /**
     * @param out   (T, D) fp32
     * @param table (V, D) bf16, model.word_embeddings.weight
     * @param ids   (T) int token ids in [0, V) (an id outside writes a NaN row)
     */
    public void launch(CUstream s, DeviceBuffer out, DeviceBuffer table, DeviceBuffer ids, int tokens, int dim, int vocab) {
        Shapes.positive("embedding", "tokens", tokens);
        Shapes.positive("embedding", "dim", dim);
        Shapes.positive("embedding", "vocab", vocab);
        Shapes.require("embedding", "out", out, 4L * tokens * dim);
        Shapes.require("embedding", "table", table, 2L * vocab * dim);
        Shapes.require("embedding", "ids", ids, 4L * tokens);
        kernel.launch(s, tokens, THREADS, 0, out, table, ids, tokens, dim, vocab);
    }
}
