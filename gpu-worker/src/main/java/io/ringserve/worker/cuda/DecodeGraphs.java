package io.ringserve.worker.cuda;

import io.ringserve.worker.cuda.CudaRunner.Activations;
import io.ringserve.worker.cuda.CudaRunner.InputLayout;
import io.ringserve.worker.cuda.CudaRunner.Inputs;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.function.IntFunction;
import jcuda.driver.CUstream;

/**
 * The CUDA graphs of decode-only steps, one per batch-size bucket: a step of N sequences (one token each) is
 * padded to {@link #bucket}(N) rows (1, 2, 4, 8, …, capped at the limit) and replays that bucket's graph. A graph
 * is the runner's whole step (embedding, every layer, head, sampling) captured once on the compute stream
 * ({@link CudaDevice#capture}),
 * reading its inputs from, and writing its outputs to, one fixed set of {@link Activations}: the step's per-step
 * inputs are copied into those buffers before each replay, so no pointer changes after capture.
 *
 * <p>Every graph shares one {@link Activations} sized for the largest bucket so far ({@link #activations()}); when
 * a bigger bucket comes, the graphs are destroyed, the buffers reallocated and each bucket captured again on its
 * next use ({@link #captureAll} sizes them once for the engine's max-running). Only the runner's thread uses this.
 */
final class DecodeGraphs implements AutoCloseable {
    /** Largest bucket captured without {@link #captureAll} (bigger decode batches run eagerly). */
    static final int DEFAULT_LIMIT = 256;
    /** Largest bucket at all: the MoE kernels take at most 65535 (token, expert) pairs per launch, K <= 8. */
    static final int MAX_LIMIT = 8191;
    /** Smallest buffer capacity allocated on first use, so that a growing batch does not reallocate at 1, 2, 4, 8. */
    static final int MIN_CAPACITY = 16;

    /** One instantiated graph: bucket B, the layout of its inputs in the buffers' input words, the executable. */
    record Graph(int bucket, InputLayout layout, CudaGraph exec) {
    }

    /** Records one decode step of {@code rows} rows (T = N = R) on the compute stream into {@code a} with inputs {@code in}. */
    interface Recorder {
        void record(Activations a, Inputs in, int rows);
    }

    private final CudaDevice device;
    private final CUstream stream;
    private final int maxBlocks;
    private final IntFunction<Activations> allocate; // capacity -> buffers for that many tokens and sequences
    private final Recorder recorder;
    private final TreeMap<Integer, Graph> graphs = new TreeMap<>();
    private int limit = DEFAULT_LIMIT;
    private Activations act;

    DecodeGraphs(CudaDevice device, CUstream stream, int maxBlocks, IntFunction<Activations> allocate, Recorder recorder) {
        this.device = device;
        this.stream = stream;
        this.maxBlocks = maxBlocks;
        this.allocate = allocate;
        this.recorder = recorder;
    }

    /**
     * The bucket of a decode batch of {@code n} sequences: the smallest power of two >= n, but at most
     * {@code limit} (so a max-running of 48 gives buckets 1, 2, 4, 8, 16, 32, 48); 0 when {@code n > limit}
     * (the step runs eagerly).
     */
    static int bucket(int n, int limit) {
        if (n < 1) {
            throw new IllegalArgumentException("a decode batch has at least one sequence, got " + n);
        }
        if (n > limit) {
            return 0;
        }
        int pow2 = n == 1 ? 1 : Integer.highestOneBit(n - 1) << 1;
        return Math.min(pow2, limit);
    }

    /** Every bucket up to {@code limit}, smallest first: 1, 2, 4, … below limit, then limit. */
    static List<Integer> buckets(int limit) {
        List<Integer> out = new ArrayList<>();
        for (int b = 1; b < limit; b <<= 1) {
            out.add(b);
        }
        out.add(limit);
        return out;
    }

    /** The capacity to allocate for {@code bucket} when the buffers hold {@code current} (0: none yet). */
    static int grow(int bucket, int current, int limit) {
        if (current >= bucket) {
            return current;
        }
        int want = current == 0 ? Math.max(bucket, MIN_CAPACITY) : Math.max(bucket, 2 * current);
        return Math.max(bucket, Math.min(want, limit));
    }

    /** This runner's bucket for {@code n} sequences, 0: run eagerly. */
    int bucket(int n) {
        return bucket(n, limit);
    }

    /** The graph of {@code bucket}, captured now when it does not exist yet. */
    Graph graph(int bucket) {
        Graph g = graphs.get(bucket);
        if (g == null) {
            reserve(grow(bucket, act == null ? 0 : act.seqs, limit));
            InputLayout layout = new InputLayout(bucket, bucket, bucket, maxBlocks);
            Activations a = act;
            Inputs in = a.bind(layout);
            g = new Graph(bucket, layout, device.capture(stream, () -> recorder.record(a, in, bucket)));
            graphs.put(bucket, g);
        }
        return g;
    }

    /** The buffers every graph reads and writes (valid after {@link #graph}). */
    Activations activations() {
        return act;
    }

    /** Graphs instantiated now. */
    int count() {
        return graphs.size();
    }

    /**
     * Makes {@code maxBatch} the largest bucket, sizes the buffers for it once and captures every bucket.
     *
     * @return the number of graphs held
     */
    int captureAll(int maxBatch) {
        if (maxBatch < 1 || maxBatch > MAX_LIMIT) {
            throw new IllegalArgumentException("graphs serve 1 to " + MAX_LIMIT + " sequences, asked for " + maxBatch);
        }
        limit = maxBatch;
        reserve(maxBatch);
        for (int b : buckets(maxBatch)) {
            graph(b);
        }
        return graphs.size();
    }

    /** Buffers for at least {@code capacity} rows; reallocating them first destroys every graph (their pointers die). */
    private void reserve(int capacity) {
        if (act != null && act.seqs >= capacity) {
            return;
        }
        destroyGraphs();
        if (act != null) {
            act.close();
            act = null;
        }
        act = allocate.apply(capacity);
    }

    private void destroyGraphs() {
        if (graphs.isEmpty()) {
            return;
        }
        device.synchronize(); // no replay may still run on what goes away
        for (Graph g : graphs.values()) {
            device.destroy(g.exec());
        }
        graphs.clear();
    }

    @Override
    public void close() {
        try {
            destroyGraphs();
        } finally {
            if (act != null) {
                act.close();
                act = null;
            }
        }
    }
}
