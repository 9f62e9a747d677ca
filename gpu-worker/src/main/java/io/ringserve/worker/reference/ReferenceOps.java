package io.ringserve.worker.reference;

import java.util.stream.IntStream;

/**
 * The operations of the forward pass in float32, one static method each, named after the step they
 * implement. These are the oracle every CUDA kernel is tested against, so they stay plain: the only
 * speed-ups are splitting independent output rows across cores and the SIMD dot product in {@link Dot}.
 *
 * <p>Legend: T = tokens in this call, D = hidden size, d = head dim, r = rotary dims.
 */
public final class ReferenceOps {
    /** Below this many multiply-adds a matmul runs on the calling thread (fork/join costs more). */
    private static final long PARALLEL_THRESHOLD = 1L << 16;

    private ReferenceOps() {
    }

    /**
     * {@code out = x · Wᵀ}.
     *
     * @param out (T, W.rows)
     * @param x   (T, W.cols)
     */
    public static void matmul(float[] out, float[] x, Matrix w, int tokens) {
        int rows = w.rows();
        int cols = w.cols();
        if ((long) rows * cols * tokens < PARALLEL_THRESHOLD) {
            matmulRows(out, x, w, tokens, 0, rows);
            return;
        }
        // Blocks of rows: each weight row is read once from memory and reused for every token.
        int block = Math.max(16, rows / (Runtime.getRuntime().availableProcessors() * 8));
        int blocks = (rows + block - 1) / block;
        IntStream.range(0, blocks).parallel().forEach(b -> matmulRows(out, x, w, tokens, b * block, Math.min(rows, (b + 1) * block)));
    }

    private static void matmulRows(float[] out, float[] x, Matrix w, int tokens, int from, int to) {
        int rows = w.rows();
        int cols = w.cols();
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                out[t * rows + r] = Dot.dot(w, r, x, t * cols);
            }
        }
    }

    /**
     * RMSNorm over rows of width n: {@code y = w ⊙ x / sqrt(mean(x²) + eps)}.
     *
     * @param out (rows, n), may alias x
     * @param x   (rows, n)
     * @param w   (n)
     */
    public static void rmsnorm(float[] out, float[] x, float[] w, int rows, int n, double eps) {
        for (int t = 0; t < rows; t++) {
            int o = t * n;
            double ss = 0;
            for (int i = 0; i < n; i++) {
                ss += (double) x[o + i] * x[o + i];
            }
            float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
            for (int i = 0; i < n; i++) {
                out[o + i] = w[i] * (x[o + i] * inv);
            }
        }
    }

    /** {@code x += y} elementwise (the residual add). */
    public static void add(float[] x, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            x[i] += y[i];
        }
    }

    /**
     * SwiGLU's activation: {@code h[i] = silu(gate[i]) · up[i]}, silu(g) = g·σ(g).
     *
     * @param h    (n)
     * @param gate (n)
     * @param up   (n)
     */
    public static void siluMul(float[] h, float[] gate, float[] up, int n) {
        for (int i = 0; i < n; i++) {
            float g = gate[i];
            h[i] = (float) (g / (1.0 + Math.exp(-g))) * up[i];
        }
    }

    /**
     * Partial NeoX RoPE in place on one head: pairs (j, j + r/2) for j &lt; r/2 rotate by the position's
     * angle; dims r..d pass through.
     *
     * @param x   one head's vector at {@code x[off .. off+d)}
     * @param cos (r/2) cos(p·θ_j)·attention factor
     * @param sin (r/2) sin(p·θ_j)·attention factor
     */
    public static void rope(float[] x, int off, float[] cos, float[] sin, int rotaryDim) {
        int half = rotaryDim / 2;
        for (int j = 0; j < half; j++) {
            float a = x[off + j];
            float b = x[off + j + half];
            x[off + j] = a * cos[j] - b * sin[j];
            x[off + j + half] = b * cos[j] + a * sin[j];
        }
    }

    /** Softmax in place over {@code x[off .. off+n)}, max-subtracted, accumulated in double. */
    public static void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) {
            x[off + i] *= inv;
        }
    }
}
