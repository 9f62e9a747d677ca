package io.ringserve.worker.cuda;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.KernelProfile.Op;
import io.ringserve.worker.cuda.ops.AttentionDecode;
import io.ringserve.worker.cuda.ops.AttentionPrefill;
import io.ringserve.worker.cuda.ops.Embedding;
import io.ringserve.worker.cuda.ops.GatherRows;
import io.ringserve.worker.cuda.ops.Gemv;
import io.ringserve.worker.cuda.ops.Matmul;
import io.ringserve.worker.cuda.ops.MoeExperts;
import io.ringserve.worker.cuda.ops.QkNormRopeCache;
import io.ringserve.worker.cuda.ops.RmsNorm;
import io.ringserve.worker.cuda.ops.RouterTopK;
import io.ringserve.worker.cuda.ops.Sample;
import io.ringserve.worker.cuda.ops.SiluMul;
import io.ringserve.worker.engine.Logprobs;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.engine.StepRunner;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.RotaryEmbedding;
import io.ringserve.worker.reference.Router;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;
import jcuda.CudaException;
import jcuda.driver.CUevent;
import jcuda.driver.CUstream;

/**
 * The forward pass on one NVIDIA GPU as a {@link StepRunner}: the same steps as
 * {@link io.ringserve.worker.reference.ReferenceForward}, in the same order, each a kernel of
 * {@code src/main/cuda} through its wrapper in {@link io.ringserve.worker.cuda.ops}. The residual stream is fp32;
 * each GEMM reads bf16 activations (the bf16 reference rounds them there too) and bf16 weights and accumulates in
 * fp32; K/V live in a bf16 paged cache whose block ids are the engine's.
 *
 * <p>Per step the host copies in the token ids, positions, KV slots and block tables, launches the kernels on the
 * compute stream, and copies back only the sampled ids (and logprobs), except for rows whose sampling needs the
 * host: repetition/presence/frequency penalties or top-n logprobs take the logits row and the sequence's own
 * {@link io.ringserve.worker.engine.Sampler}, exactly as the CPU backend. Greedy rows equal the CPU backend's
 * choice on equal logits; seeded random rows draw on the GPU (Philox keyed by the seed, counter = the sequence's
 * output index, so a replay continues the same draws on this backend).
 *
 * <p>A decode-only step (every entry one token) replays the CUDA graph of its batch-size bucket ({@link DecodeGraphs}:
 * the batch padded to 1, 2, 4, 8, … rows, one host-to-device copy of the packed inputs, one {@code cuGraphLaunch});
 * prefill and mixed steps run eagerly, kernel by kernel. Both paths record the same kernels
 * ({@link #forward}), so a replay equals the eager step bit for bit. With dual streams the shared expert of each
 * MoE layer runs on a second stream, concurrently with the router and the routed experts, joined by an event
 * before the combine (eagerly and inside the graphs). {@code -Dringserve.cuda.graphs=false} and
 * {@code -Dringserve.cuda.dual-stream=false} switch either off (debugging, measurements). {@link #profile} times
 * each op of the following (eager) steps with CUDA events ({@link KernelProfile}).
 *
 * <p>As a {@link ShardRunner} it runs the layers of a pipeline stage ({@link CudaWeights#range()}): the first shard
 * embeds and hands its residual stream on, a later one takes the previous shard's residual stream into {@code x}
 * (one host-to-device copy before the step, also before a graph replay), and only the last one applies the final
 * norm and the lm_head and samples. A shard that is not last copies its residual stream back instead of the sampled
 * ids. The KV cache holds the shard's layers only.
 *
 * <p>Called from the engine thread only (it makes the device's context current on each call). Legend: T = tokens
 * of the step, N = sequences, D = hidden, H/Hkv = heads, d = head dim, V = vocab, K = experts per token, I =
 * intermediate, MB = block table width, S = KV cache rows (blocks · block size).
 */
public final class CudaRunner implements StepRunner, ShardRunner {
    private static final Logger LOG = Logger.getLogger(CudaRunner.class.getName());
    /**
     * Decode attention splits each sequence's context into this many ranges (flash-decoding) while a step has at
     * most {@link #SPLIT_MAX_SEQS} sequences: at batch 1 a single pass is only Hkv blocks (4 for Ring-mini-2.0, each
     * streaming its KV head's whole context through one SM). The threshold is a power of two, so a step and its
     * graph bucket (a power of two ≥ N, or the cap) always take the same path and replay equals eager.
     */
    static final int DECODE_SPLITS = 32;
    static final int SPLIT_MAX_SEQS = 32;
    /**
     * Least keys per split (one tile of attention.cuh): a short context uses fewer splits rather than ranges of a few
     * keys, and a context of up to 32·32 keys is spread over as many blocks as it has tiles.
     */
    static final int MIN_KEYS_PER_SPLIT = 32;
    /**
     * Device memory left free beyond the weights, the KV cache and the step buffers {@link #reserveSteps} announced
     * (the driver's own allocations, fragmentation, and steps' buffers when nothing was announced).
     */
    static final long HEADROOM = 512L << 20;

    private final CudaDevice device;
    private final CudaWeights weights;
    private final ModelConfig config;
    private final LayerRange range; // the layers held: all of them, or a pipeline stage's
    private final int contextLength;
    private final CUstream stream;
    private final RouterTopK.Rules routing;

    private final Embedding embedding;
    private final RmsNorm rmsNorm;
    private final Matmul matmul;
    private final Gemv gemv; // the fused gate_up + SiLU·mul of small steps (Matmul runs the plain GEMVs)
    private final QkNormRopeCache qkNormRopeCache;
    private final AttentionPrefill attentionPrefill;
    private final AttentionDecode attentionDecode;
    private final SiluMul siluMul;
    private final RouterTopK router;
    private final MoeExperts experts;
    private final GatherRows gatherRows;
    private final Sample sample;

    private final DeviceBuffer cosTable; // (P, r/2) fp32
    private final DeviceBuffer sinTable; // (P, r/2) fp32

    private int blockSize;
    private int blocks;
    private int maxBlocks;        // MB: block table width for the longest context
    private int reservedTokens;   // reserveSteps: the largest step's tokens, 0 when not announced
    private int reservedSeqs;     // reserveSteps: its sequences
    private DeviceBuffer[] keys;   // [layer - range.start] (S, Hkv·d) bf16
    private DeviceBuffer[] values; // [layer - range.start] (S, Hkv·d) bf16

    private Activations act;      // the eager steps' buffers, grown as steps need
    private DecodeGraphs graphs;  // null: graphs off (or allocateKv not called yet)
    private boolean useGraphs;    // false after a failed capture
    private final boolean dualStream;
    private final CUstream sharedStream; // the shared expert's stream when dualStream, else null
    private final CUevent[] forks;       // [layer - range.start] recorded on the compute stream before the shared expert; null without dual streams
    private final CUevent[] joins;       // [layer - range.start] recorded on sharedStream after the shared expert
    private KernelProfile profile; // null: not profiling (see profile())
    private Activations lastAct;  // buffers of the last step (its logits: lastLogits())
    private int lastN;            // N of the last step
    private int lastBucket;       // graph bucket of the last step, 0: eager
    private boolean closed;
    private volatile boolean failed;
    private volatile String failure;

    /**
     * Graphs and dual streams as the system properties {@code ringserve.cuda.graphs} and
     * {@code ringserve.cuda.dual-stream} say (both on unless set to {@code false}).
     *
     * @param weights the model on {@code device}; the runner does not own it
     */
    public CudaRunner(CudaDevice device, CudaWeights weights) {
        this(device, weights, !"false".equals(System.getProperty("ringserve.cuda.graphs")),
                !"false".equals(System.getProperty("ringserve.cuda.dual-stream")));
    }

    /**
     * @param weights    the model on {@code device}; the runner does not own it
     * @param graphs     replay decode-only steps as CUDA graphs (false: every step eager)
     * @param dualStream run the shared expert on a second stream, concurrent with the routed experts
     */
    public CudaRunner(CudaDevice device, CudaWeights weights, boolean graphs, boolean dualStream) {
        this.device = device;
        this.weights = weights;
        this.config = weights.config();
        this.range = weights.range();
        this.stream = device.stream();
        this.useGraphs = graphs;
        device.makeCurrent();
        this.embedding = new Embedding(device);
        this.rmsNorm = new RmsNorm(device);
        this.matmul = new Matmul(device);
        this.gemv = new Gemv(device);
        this.qkNormRopeCache = new QkNormRopeCache(device);
        this.attentionPrefill = new AttentionPrefill(device);
        this.attentionDecode = new AttentionDecode(device);
        this.siluMul = new SiluMul(device);
        this.router = new RouterTopK(device);
        this.experts = new MoeExperts(device);
        this.gatherRows = new GatherRows(device);
        this.sample = new Sample(device);
        this.routing = routingRules(config);

        RotaryEmbedding rotary = new RotaryEmbedding(config);
        this.contextLength = config.contextLength();
        float[][] tables = QkNormRopeCache.ropeTables(rotary, contextLength);
        this.cosTable = device.alloc(4L * tables[0].length);
        this.sinTable = device.alloc(4L * tables[1].length);
        cosTable.copyFromHost(tables[0]);
        sinTable.copyFromHost(tables[1]);

        this.dualStream = dualStream && config.numExperts() > 0 && config.numSharedExperts() > 0;
        if (this.dualStream) {
            int layers = range.count();
            this.sharedStream = device.newStream();
            this.forks = new CUevent[layers];
            this.joins = new CUevent[layers];
            for (int l = 0; l < layers; l++) {
                forks[l] = device.newEvent();
                joins[l] = device.newEvent();
            }
        } else {
            this.sharedStream = null;
            this.forks = null;
            this.joins = null;
        }
    }

    /**
     * Profiles the steps from now on into {@code p} ({@link KernelProfile}: a CUDA event before each op and at the
     * end of the step, the elapsed times added per op after the step), or stops profiling ({@code null}). While
     * profiling, every step runs eagerly (no graph is replayed or captured) and the shared expert runs on the
     * compute stream (results are bit-identical either way), so each op's time is its own. Not profiled: the
     * {@link #logits} command. The runner does not own {@code p}.
     */
    public void profile(KernelProfile p) {
        this.profile = p;
    }

    /** Whether decode-only steps replay CUDA graphs (false when switched off, or after a capture failed). */
    public boolean graphs() {
        return useGraphs;
    }

    /** Whether the shared expert runs on its own stream (false also for a model without shared experts). */
    public boolean dualStream() {
        return dualStream;
    }

    static RouterTopK.Rules routingRules(ModelConfig c) {
        if (c.numExperts() == 0) {
            return null;
        }
        Router reference = Router.of(c);
        if (c instanceof BailingMoeV2Config v2) {
            return new RouterTopK.Rules(RouterTopK.Scoring.SIGMOID_GROUP_LIMITED, c.numExperts(), c.numExpertsPerTok(), v2.nGroup(), v2.topkGroup(),
                    reference.bf16Logits(), c.normTopkProb(), (float) v2.routedScalingFactor());
        }
        return new RouterTopK.Rules(RouterTopK.Scoring.SOFTMAX, c.numExperts(), c.numExpertsPerTok(), 1, 1, reference.bf16Logits(),
                c.normTopkProb(), 1f);
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public LayerRange layers() {
        return range;
    }

    @Override
    public long kvBytesPerBlock(int blockSize) {
        return 2L * range.count() * blockSize * config.kvDim() * 2; // K and V of the held layers, bf16
    }

    @Override
    public int maxKvBlocks(int blockSize) {
        // the kernels index cache rows with int
        return (int) Math.min(Integer.MAX_VALUE, (Integer.MAX_VALUE - 1L) / blockSize);
    }

    @Override
    public void reserveSteps(int maxBatchTokens, int maxSequences) {
        if (maxBatchTokens < 1 || maxSequences < 1) {
            throw new IllegalArgumentException("steps of " + maxBatchTokens + " tokens over " + maxSequences + " sequences");
        }
        this.reservedTokens = maxBatchTokens;
        this.reservedSeqs = maxSequences;
    }

    /**
     * Device bytes of the step buffers {@link #reserveSteps} announced: the eager buffers for its largest step (they
     * grow to max-batch-tokens × max-running) and, with graphs, the graphs' own buffers for max-running decode rows.
     * Measured by building them on a driverless device (sizes only, no memory), so the count is the constructor's.
     */
    long reservedStepBytes(int maxBlocks) {
        if (reservedTokens == 0) {
            return 0;
        }
        long bytes = Activations.bytes(config, reservedTokens, reservedSeqs, maxBlocks, range.isLast());
        if (useGraphs) {
            bytes += Activations.bytes(config, reservedSeqs, reservedSeqs, maxBlocks, range.isLast());
        }
        return bytes;
    }

    /**
     * Allocates the KV cache of the held layers (and the decode graphs' holder). Called again with the same shape it
     * keeps what it has (a pipeline stage's new session); with another shape it frees the cache, the graphs and the
     * step buffers first.
     */
    @Override
    public void allocateKv(int blockSize, int blocks) {
        if (keys != null) {
            if (this.blockSize == blockSize && this.blocks == blocks) {
                return;
            }
            freeKv();
        }
        device.makeCurrent();
        long need = kvBytesPerBlock(blockSize) * blocks;
        int tableWidth = (contextLength + blockSize - 1) / blockSize;
        long steps = reservedStepBytes(tableWidth);
        long free = device.freeMemory();
        if (need + steps + HEADROOM > free) {
            throw new IllegalArgumentException(String.format(
                    "kv-cache-bytes asks for %d KV blocks (%.2f GiB) but %s has %.2f GiB free after the weights (%.2f GiB), %.2f GiB of step"
                            + " buffers (max-batch-tokens %d, max-running %d) and %d MiB of headroom; lower kv-cache-bytes or max-batch-tokens",
                    blocks, need / (double) (1L << 30), device.name(), free / (double) (1L << 30), weights.bytes() / (double) (1L << 30),
                    steps / (double) (1L << 30), reservedTokens, reservedSeqs, HEADROOM >> 20));
        }
        this.blockSize = blockSize;
        this.blocks = blocks;
        this.maxBlocks = tableWidth;
        int layers = range.count();
        keys = new DeviceBuffer[layers];
        values = new DeviceBuffer[layers];
        long perLayer = 2L * blocks * blockSize * config.kvDim();
        for (int l = 0; l < layers; l++) {
            keys[l] = device.alloc(perLayer);
            values[l] = device.alloc(perLayer);
        }
        if (useGraphs) {
            graphs = new DecodeGraphs(device, stream, maxBlocks, cap -> new Activations(device, config, cap, cap, maxBlocks, range.isLast()),
                    (a, in, rows) -> forward(a, in, rows, rows, true, null));
        }
    }

    /** Frees the KV cache, the graphs (they hold its addresses) and the step buffers (sized for its table width). */
    private void freeKv() {
        device.makeCurrent();
        device.synchronize(); // nothing queued may still use what is freed below
        if (graphs != null) {
            graphs.close();
            graphs = null;
        }
        lastAct = null;
        if (act != null) {
            act.close();
            act = null;
        }
        for (int l = 0; l < keys.length; l++) {
            keys[l].close();
            values[l].close();
        }
        keys = null;
        values = null;
    }

    /**
     * Captures the decode graph of every batch-size bucket up to {@code maxBatch} sequences now (1, 2, 4, … and
     * {@code maxBatch} itself; the engine's max-running), so that no decode step pays for a capture; without this
     * call each bucket is captured on its first use. The graphs' buffers are sized for {@code maxBatch} once. When a
     * capture fails (a {@link CudaException}), graphs are switched off and the runner goes on eagerly.
     *
     * @return the number of graphs held, 0 when graphs are off
     */
    public int captureGraphs(int maxBatch) {
        if (keys == null) {
            throw new IllegalStateException("allocateKv was not called");
        }
        if (graphs == null) {
            return 0;
        }
        if (profile != null) {
            throw new IllegalStateException("no graph is captured while profiling (the shared expert runs on the compute stream then)");
        }
        device.makeCurrent();
        try {
            return graphs.captureAll(maxBatch);
        } catch (CudaException e) {
            // a capture or allocation failure leaves the context usable: go on eagerly
            disableGraphs();
            throw e;
        }
    }

    /** Captures the decode graphs for the engine's max-running; a failed capture leaves the runner eager. */
    @Override
    public void warmUp(int maxSequences) {
        try {
            int n = captureGraphs(maxSequences);
            LOG.info("captured " + n + " decode graphs for up to " + maxSequences + " sequences");
        } catch (CudaException e) {
            LOG.log(Level.WARNING, "capturing the decode graphs failed; decode steps run eagerly", e);
        }
    }

    /** How many decode graphs are instantiated now. */
    int graphCount() {
        return graphs == null ? 0 : graphs.count();
    }

    /** The graph bucket the last step replayed, 0 when it ran eagerly. */
    int lastBucket() {
        return lastBucket;
    }

    /** The logits of the last {@link #step}'s rows, (N, V) fp32 row-major (tests compare graph and eager steps). */
    float[] lastLogits() {
        if (lastAct == null) {
            throw new IllegalStateException("no step has run");
        }
        if (!range.isLast()) {
            throw new IllegalStateException("layers " + range + " compute no logits");
        }
        device.makeCurrent();
        float[] logits = new float[Math.multiplyExact(lastN, config.vocabSize())];
        lastAct.logits.copyToHost(logits);
        return logits;
    }

    /** Device bytes of the KV cache. */
    public long kvBytes() {
        return keys == null ? 0 : kvBytesPerBlock(blockSize) * blocks;
    }

    @Override
    public Sampled[] step(List<StepEntry> batch) {
        if (!range.isAll()) {
            throw new IllegalStateException("layers " + range + " are a pipeline shard: run them with run(batch, hidden)");
        }
        return ((Samples) guarded(batch, null)).sampled();
    }

    /**
     * One micro-batch through the held layers: on the first shard from the entries' token ids, else from
     * {@code hidden}; the residual stream back to the host unless this is the last shard, which samples.
     *
     * @param hidden (T, D) fp32 residual stream entering {@code layers().start()}; null on the first shard
     */
    @Override
    public Output run(List<StepEntry> batch, float[] hidden) {
        int t = ShardRunner.tokens(batch);
        if (range.isFirst() != (hidden == null)) {
            throw new IllegalArgumentException(range.isFirst() ? "the first shard embeds token ids; it takes no hidden states"
                    : "layers " + range + " need the hidden states of the previous shard");
        }
        if (hidden != null && hidden.length != (long) t * config.hiddenSize()) {
            throw new IllegalArgumentException("layers " + range + " need (" + t + ", " + config.hiddenSize() + ") hidden states, got " + hidden.length
                    + " values");
        }
        return guarded(batch, hidden);
    }

    private Output guarded(List<StepEntry> batch, float[] hidden) {
        if (keys == null) {
            throw new IllegalStateException("allocateKv was not called");
        }
        if (failed) {
            throw new IllegalStateException("the GPU is in an error state after an earlier failure: " + failure);
        }
        device.makeCurrent();
        try {
            return run(batch, hidden, tokenCount(batch));
        } catch (CudaException e) {
            // a failed launch or copy can leave the context unusable; the health check reports it
            failed = true;
            failure = e.getMessage();
            throw e;
        }
    }

    private Output run(List<StepEntry> batch, float[] hidden, int t) {
        ModelConfig c = config;
        int n = batch.size();
        StepInputs in = StepInputs.of(batch, c.vocabSize(), blockSize, maxBlocks);
        KernelProfile prof = profile;
        int bucket = t == n && graphs != null && prof == null ? graphs.bucket(n) : 0;
        DecodeGraphs.Graph graph = bucket > 0 ? graphOrEager(bucket) : null;
        if (graph == null) {
            bucket = 0;
        }
        Activations a;
        if (graph != null) {
            a = replay(in, hidden, graph);
        } else {
            a = activations(t, n);
            Inputs v = a.bind(in.layout(maxBlocks));
            a.inputWords.copyFromHostAsync(in.pack(v.layout()), stream);
            if (hidden != null) {
                a.x.copyFromHostAsync(hidden, stream); // the previous shard's residual stream
            }
            if (prof != null) {
                prof.beginStep(t, n, java.util.Arrays.stream(in.contextLens()).asLongStream().sum());
            }
            forward(a, v, t, n, t == n, null);
            if (prof != null) {
                prof.endStep(stream); // waits for the step's last kernel
            }
        }
        lastAct = a;
        lastN = n;
        lastBucket = bucket;
        if (!range.isLast()) {
            float[] x = new float[Math.multiplyExact(t, c.hiddenSize())]; // (T, D)
            a.x.copyToHost(x);
            return new Hidden(x);
        }
        // one copy back: sampled ids [0, n) and logprobs [Ncap, Ncap + n) of a.sampled
        int[] back = new int[a.seqs + n];
        a.sampled.copyToHost(back);

        Sampled[] out = new Sampled[n];
        float[] row = null;
        for (int i = 0; i < n; i++) {
            Sampling s = batch.get(i).sampling();
            if (s == null) {
                continue;
            }
            if (in.onHost()[i]) {
                if (row == null) {
                    row = new float[c.vocabSize()];
                }
                a.logits.slice(4L * i * c.vocabSize(), 4L * c.vocabSize()).copyToHost(row);
                out[i] = Logprobs.sample(s, row);
            } else {
                out[i] = new Sampled(back[i], s.topLogprobs() >= 0 ? Float.intBitsToFloat(back[a.seqs + i]) : Float.NaN, null);
            }
        }
        return new Samples(out);
    }

    /**
     * The graph of {@code bucket}, captured now if it is new; null when capturing failed, after which graphs are off
     * and every step runs eagerly (a failed capture or allocation leaves the context usable, unlike a failed launch).
     */
    private DecodeGraphs.Graph graphOrEager(int bucket) {
        try {
            return graphs.graph(bucket);
        } catch (CudaException e) {
            LOG.log(Level.WARNING, "capturing the decode graph of bucket " + bucket + " failed; decode steps run eagerly from now on", e);
            disableGraphs();
            return null;
        }
    }

    private void disableGraphs() {
        DecodeGraphs g = graphs;
        graphs = null;
        useGraphs = false;
        if (g != null) {
            g.close();
        }
    }

    /**
     * A decode-only step as one replay of its bucket's graph: the inputs padded to the bucket's rows, packed,
     * copied into the graph's fixed input buffer (and a later shard's residual stream into its {@code x}, padding rows
     * zero), then {@code cuGraphLaunch} on the compute stream.
     *
     * @param hidden (N, D) fp32, or null on the first shard
     * @return the graph's buffers, holding the step's logits and sampled ids (or residual stream) once the stream has run
     */
    private Activations replay(StepInputs in, float[] hidden, DecodeGraphs.Graph g) {
        Activations a = graphs.activations();
        StepInputs padded = StepInputs.padded(in, g.bucket());
        a.inputWords.copyFromHostAsync(padded.pack(g.layout()), stream);
        if (hidden != null) {
            // (B, D): a padding row's zeros stay zeros through the norms; it writes no K/V and is never read back
            a.x.copyFromHostAsync(java.util.Arrays.copyOf(hidden, Math.multiplyExact(g.bucket(), config.hiddenSize())), stream);
        }
        device.launch(g.exec(), stream);
        return a;
    }

    /**
     * Runs a whole sequence from position 0 in one prefill into the blocks of {@code blockTable} and returns the
     * logits of every position (the CLI's {@code logits} command and the golden tests); outside the engine's use
     * of those blocks. Always eager.
     *
     * @param routes when not null, filled per layer with the MoE routing decisions (T, K), null for dense layers
     * @return (T, V) fp32 logits, row-major
     */
    public float[] logits(int[] tokens, int[] blockTable, int[][][] routes) {
        if (!range.isAll()) {
            throw new IllegalStateException("layers " + range + " are a pipeline shard; the logits of a prompt need every layer");
        }
        if (keys == null) {
            throw new IllegalStateException("allocateKv was not called");
        }
        device.makeCurrent();
        ModelConfig c = config;
        int t = tokens.length;
        List<StepEntry> one = List.of(new StepEntry(0, tokens, 0, blockTable, null));
        Activations a = activations(t, t);
        StepInputs in = StepInputs.of(one, c.vocabSize(), blockSize, maxBlocks).everyRow();
        Inputs v = a.bind(in.layout(maxBlocks));
        a.inputWords.copyFromHostAsync(in.pack(v.layout()), stream);
        layers(a, v, t, 1, false, routes);
        head(a, v, t, t);
        float[] logits = new float[Math.multiplyExact(t, c.vocabSize())];
        a.logits.copyToHost(logits);
        return logits;
    }

    private static int tokenCount(List<StepEntry> batch) {
        int t = 0;
        for (StepEntry e : batch) {
            if (e.tokens().length == 0) {
                throw new IllegalArgumentException("a step entry has no tokens");
            }
            t += e.tokens().length;
        }
        return t;
    }

    /**
     * One step on the device, all on the compute stream (and the shared-expert stream, joined back): layers, head,
     * sampling into {@code a.sampled}. What the eager path runs and what a decode graph captures.
     */
    private void forward(Activations a, Inputs in, int t, int n, boolean decodeOnly, int[][][] routes) {
        layers(a, in, t, n, decodeOnly, routes);
        if (!range.isLast()) {
            return; // the residual stream in a.x goes to the next shard
        }
        head(a, in, n, t);
        mark(Op.SAMPLE);
        sample.sample(stream, a.logits, a.logits, in.temperature, in.topK, in.topP, in.minP, in.seeds, in.steps, a.sampledIds, a.sampledLogprobs,
                a.samplePartials, n, config.vocabSize());
    }

    /**
     * Embedding (first shard; a later one finds the previous shard's residual stream in {@code a.x}) and every held
     * decoder layer over the step's T rows: the residual stream ends in {@code a.x}.
     */
    private void layers(Activations a, Inputs in, int t, int n, boolean decodeOnly, int[][][] routes) {
        ModelConfig c = config;
        int d = c.hiddenSize();
        int kvRows = blocks * blockSize;
        if (range.isFirst()) {
            mark(Op.EMBEDDING);
            embedding.launch(stream, a.x, weights.embedding(), in.ids, t, d, c.vocabSize());
        }
        boolean normed = false; // a.h already holds this layer's input norm (the previous MoE layer's combine wrote it)
        for (int l = range.start(); l < range.end(); l++) {
            CudaWeights.Layer w = weights.layer(l);
            int i = l - range.start(); // the layer's KV cache and events
            // attention block
            if (!normed) {
                mark(Op.INPUT_RMSNORM);
                rmsNorm.launch(stream, a.h, a.x, null, w.inputNorm(), t, d, (float) c.rmsNormEps());
            }
            normed = false;
            mark(Op.QKV_PROJ);
            matmul.launch(stream, a.qkv, a.h, w.qkv(), t, c.qkvDim(), d, false);
            mark(Op.QK_NORM_ROPE_CACHE);
            qkNormRopeCache.launch(stream, a.qkv, in.positions, in.slots, cosTable, sinTable, w.qNorm(), w.kNorm(), a.q, keys[i], values[i],
                    t, c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rotaryDim(), contextLength, kvRows, (float) c.rmsNormEps());
            if (decodeOnly) {
                mark(Op.ATTENTION_DECODE);
                if (n <= SPLIT_MAX_SEQS) { // few sequences: N·Hkv blocks would leave most SMs idle, so split each context
                    attentionDecode.launchSplit(stream, a.q, keys[i], values[i], in.blockTables, in.contextLens, a.attnBf16, true, a.attnSplits,
                            a.attnCounters, n, c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), blockSize, maxBlocks, kvRows, DECODE_SPLITS,
                            MIN_KEYS_PER_SPLIT);
                } else {
                    attentionDecode.launch(stream, a.q, keys[i], values[i], in.blockTables, in.contextLens, a.attnBf16, true, n, c.numAttentionHeads(),
                            c.numKeyValueHeads(), c.headDim(), blockSize, maxBlocks, kvRows);
                }
            } else {
                mark(Op.ATTENTION_PREFILL);
                attentionPrefill.launch(stream, a.q, keys[i], values[i], in.blockTables, in.rowSeq, in.positions, a.attnBf16, true, t, n,
                        c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), blockSize, maxBlocks, kvRows);
            }
            mark(Op.O_PROJ);
            matmul.launch(stream, a.x, a.attnBf16, w.dense(), t, d, c.queryDim(), true); // x += o_proj(attn)
            // feed-forward block
            mark(Op.POST_RMSNORM);
            rmsNorm.launch(stream, a.h, a.x, null, w.postNorm(), t, d, (float) c.rmsNormEps());
            switch (w.ffn()) {
                case CudaWeights.Swiglu mlp -> swiglu(stream, a.gateUp, a.mlpAct, a.h, mlp, t, a.x, true, DENSE_OPS); // x += mlp(h)
                case CudaWeights.Moe moe -> {
                    // the combine also writes the next layer's input norm into a.h (one launch fewer)
                    CudaWeights.Layer next = l + 1 < range.end() ? weights.layer(l + 1) : null;
                    moe(a, moe, t, i, next == null ? null : next.inputNorm());
                    normed = next != null;
                    if (routes != null) {
                        int k = c.numExpertsPerTok();
                        int[] ids = new int[t * k];
                        a.topkIds.copyToHost(ids);
                        routes[l] = new int[t][];
                        for (int r = 0; r < t; r++) {
                            routes[l][r] = java.util.Arrays.copyOfRange(ids, r * k, (r + 1) * k);
                        }
                    }
                }
            }
        }
    }

    /** Final norm and lm_head on the {@code rows} rows named by {@code in.lastRows}: logits (rows, V) in {@code a.logits}. */
    private void head(Activations a, Inputs in, int rows, int t) {
        ModelConfig c = config;
        int d = c.hiddenSize();
        mark(Op.GATHER_ROWS);
        gatherRows.launch(stream, a.xLast, a.x, in.lastRows, rows, t, d);
        mark(Op.FINAL_RMSNORM);
        rmsNorm.launch(stream, a.hLast, a.xLast, null, weights.norm(), rows, d, (float) c.rmsNormEps());
        mark(Op.LM_HEAD);
        matmul.launch(stream, a.logits, a.hLast, weights.lmHead(), rows, c.vocabSize(), d, false);
    }

    /**
     * Dense SwiGLU (or the shared expert) on stream {@code s}: {@code out (+)= down(silu(gate(h)) · up(h))}; where the
     * gate_up projection runs on the GEMV kernel ({@link Gemv#serves}) it applies SiLU·mul itself (no silu launch, bit
     * for bit the same act).
     *
     * @param gateUp (T, 2·I) fp32 scratch (steps the GEMV kernel does not serve)
     * @param act    (T, I) bf16 scratch
     * @param h      (T, D) bf16 input
     * @param ops    the profile's names of its three launches ({@link #DENSE_OPS}, {@link #SHARED_OPS})
     */
    private void swiglu(CUstream s, DeviceBuffer gateUp, DeviceBuffer act, DeviceBuffer h, CudaWeights.Swiglu mlp, int t, DeviceBuffer out,
                        boolean accumulate, Op[] ops) {
        int d = config.hiddenSize();
        mark(ops[0]);
        if (Gemv.serves(t, 2L * 2 * mlp.inter() * d)) {
            gemv.launchSwigluStreamed(s, act, h, mlp.gateUp(), t, mlp.inter(), d); // gate_up and SiLU·mul in one launch per 8 tokens
        } else {
            matmul.launch(s, gateUp, h, mlp.gateUp(), t, 2 * mlp.inter(), d, false);
            mark(ops[1]);
            siluMul.launch(s, act, gateUp, t, mlp.inter());
        }
        mark(ops[2]);
        matmul.launch(s, out, act, mlp.down(), t, d, mlp.inter(), accumulate);
    }

    private static final Op[] DENSE_OPS = {Op.DENSE_GATE_UP, Op.DENSE_SILU, Op.DENSE_DOWN};
    private static final Op[] SHARED_OPS = {Op.SHARED_GATE_UP, Op.SHARED_SILU, Op.SHARED_DOWN};

    /**
     * Op {@code op} is launched next on the compute stream: when profiling, a timing event goes there first. (A
     * profiled step runs every op on the compute stream, the shared expert included.)
     */
    private void mark(Op op) {
        if (profile != null) {
            profile.mark(op, stream);
        }
    }

    /**
     * Router, the K selected experts, the shared expert, and the weighted combine into the residual stream. With
     * dual streams the shared expert forks onto {@link #sharedStream} after the post-attention norm (it reads
     * only {@code a.h} and writes only its own buffers) and joins before the combine, which reads its output.
     * While profiling, the shared expert runs on the compute stream after the routed experts. With
     * {@code nextInputNorm} (every MoE layer but the last) the combine also writes the next layer's input norm of the
     * residual stream into {@code a.h} — after the join, so the shared expert has finished reading this layer's h.
     */
    private void moe(Activations a, CudaWeights.Moe moe, int t, int layer, DeviceBuffer nextInputNorm) { // layer: index among the held ones
        ModelConfig c = config;
        int d = c.hiddenSize();
        int k = c.numExpertsPerTok();
        int inter = c.moeIntermediateSize();
        CudaWeights.Swiglu sharedMlp = moe.shared();
        boolean dual = dualStream && sharedMlp != null && profile == null;
        if (dual) {
            // fork: sharedStream waits for everything queued on the compute stream so far (a.h is written)
            device.record(forks[layer], stream);
            device.await(sharedStream, forks[layer]);
            swiglu(sharedStream, a.sharedGateUp, a.sharedAct, a.h, sharedMlp, t, a.sharedOut, false, SHARED_OPS);
            device.record(joins[layer], sharedStream);
        }
        mark(Op.ROUTER_LOGITS);
        matmul.launch(stream, a.routerLogits, a.h, moe.gate(), t, c.numExperts(), d, false);
        mark(Op.ROUTER);
        // the ids, their weights and the experts' group plan in one launch (the router's last block plans)
        router.launchWithPlan(stream, a.routerLogits, moe.expertBias(), a.topkIds, a.topkWeights, a.moePlan, a.routerDone, t, routing);
        boolean tensorCores = MoeExperts.tensorCores(t, k, c.numExperts());
        mark(Op.MOE_GATE_UP_SILU);
        experts.gateUpSilu(stream, a.h, moe.gateUp(), a.moePlan, a.expertAct, t, k, d, inter, c.numExperts(), tensorCores);
        mark(Op.MOE_DOWN);
        experts.down(stream, a.expertAct, moe.down(), a.moePlan, a.expertOut, t, k, d, inter, c.numExperts(), tensorCores);
        if (sharedMlp != null && !dual) {
            swiglu(stream, a.sharedGateUp, a.sharedAct, a.h, sharedMlp, t, a.sharedOut, false, SHARED_OPS);
        }
        if (dual) {
            // join: the compute stream waits for the shared expert
            device.await(stream, joins[layer]);
        }
        mark(Op.MOE_COMBINE);
        if (nextInputNorm != null) { // x += shared + Σ_k w·y, then h = the next layer's input norm of x
            experts.combineNorm(stream, a.expertOut, a.topkWeights, a.topkIds, sharedMlp != null ? a.sharedOut : null, a.x, a.x, a.h, nextInputNorm,
                    t, k, d, c.numExperts(), (float) c.rmsNormEps());
        } else {
            experts.combine(stream, a.expertOut, a.topkWeights, a.topkIds, sharedMlp != null ? a.sharedOut : null, a.x, a.x, t, k, d,
                    c.numExperts()); // x += shared + Σ_k w·y
        }
    }

    private Activations activations(int tokens, int seqs) {
        if (act == null || act.tokens < tokens || act.seqs < seqs) {
            int tCap = act == null ? tokens : Math.max(tokens, act.tokens);
            int nCap = act == null ? seqs : Math.max(seqs, act.seqs);
            if (act != null) {
                act.close();
            }
            act = new Activations(device, config, tCap, nCap, maxBlocks, range.isLast());
        }
        return act;
    }

    @Override
    public boolean selfTest() {
        return !failed;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        device.makeCurrent();
        try {
            device.synchronize(); // nothing queued may still use what is freed below
        } catch (CudaException e) {
            // a failed context: free what can be freed
        }
        if (graphs != null) {
            graphs.close();
            graphs = null;
        }
        lastAct = null;
        if (forks != null) {
            for (int l = 0; l < forks.length; l++) {
                device.destroy(forks[l]);
                device.destroy(joins[l]);
            }
            device.releaseStream(sharedStream);
        }
        if (act != null) {
            act.close();
            act = null;
        }
        if (keys != null) {
            for (int l = 0; l < keys.length; l++) {
                keys[l].close();
                values[l].close();
            }
            keys = null;
            values = null;
        }
        cosTable.close();
        sinTable.close();
    }

    /**
     * The host side of one step's inputs, laid out as the kernels read them. Lengths: T rows ({@code ids},
     * {@code positions}, {@code slots}, {@code rowSeq}), N sequences ({@code contextLens}, {@code blockTables}
     * (N, MB)), R output rows ({@code lastRows} and the sampling parameters; R = N in a step).
     */
    record StepInputs(int[] ids, int[] positions, int[] slots, int[] rowSeq, int[] lastRows, int[] blockTables, int[] contextLens,
                      float[] temperature, int[] topK, float[] topP, float[] minP, long[] seeds, long[] steps, boolean[] onHost) {

        static StepInputs of(List<StepEntry> batch, int vocab, int blockSize, int maxBlocks) {
            int n = batch.size();
            int t = 0;
            for (StepEntry e : batch) {
                t += e.tokens().length;
            }
            int[] ids = new int[t];          // (T)
            int[] positions = new int[t];    // (T)
            int[] slots = new int[t];        // (T)
            int[] rowSeq = new int[t];       // (T)
            int[] lastRows = new int[n];     // (N)
            int[] tables = new int[n * maxBlocks]; // (N, MB)
            int[] contextLens = new int[n];  // (N)
            float[] temperature = new float[n]; // (N)
            int[] topK = new int[n];         // (N)
            float[] topP = new float[n];     // (N)
            float[] minP = new float[n];     // (N)
            long[] seeds = new long[n];      // (N)
            long[] steps = new long[n];      // (N)
            boolean[] onHost = new boolean[n]; // (N)
            int r = 0;
            for (int i = 0; i < n; i++) {
                StepEntry e = batch.get(i);
                int[] table = e.blockTable();
                int end = e.start() + e.tokens().length;
                if (table.length * blockSize < end) {
                    throw new IllegalArgumentException("sequence " + e.sequenceId() + " has " + table.length + " KV blocks for " + end + " positions");
                }
                if (table.length > maxBlocks) {
                    throw new IllegalArgumentException("sequence " + e.sequenceId() + " holds " + table.length + " KV blocks, more than the "
                            + maxBlocks + " of the longest context");
                }
                System.arraycopy(table, 0, tables, i * maxBlocks, table.length);
                for (int j = 0; j < e.tokens().length; j++, r++) {
                    int id = e.tokens()[j];
                    if (id < 0 || id >= vocab) {
                        throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + vocab + ")");
                    }
                    int p = e.start() + j;
                    ids[r] = id;
                    positions[r] = p;
                    slots[r] = table[p / blockSize] * blockSize + p % blockSize;
                    rowSeq[r] = i;
                }
                lastRows[i] = r - 1;
                contextLens[i] = end;
                topP[i] = 1f;
                Sampling s = e.sampling();
                if (s != null) {
                    SamplingParams p = s.sampler().params();
                    onHost[i] = p.hasPenalties() || s.topLogprobs() > 0;
                    temperature[i] = (float) p.temperature();
                    topK[i] = p.topK();
                    topP[i] = (float) p.topP();
                    minP[i] = (float) p.minP();
                    seeds[i] = p.seed();
                    steps[i] = s.historyLength() - s.promptLength(); // output index of the token drawn now
                }
            }
            return new StepInputs(ids, positions, slots, rowSeq, lastRows, tables, contextLens, temperature, topK, topP, minP, seeds, steps, onHost);
        }

        /** T = rows, N = sequences, R = output rows. */
        int tokens() {
            return ids.length;
        }

        int seqs() {
            return contextLens.length;
        }

        int rows() {
            return lastRows.length;
        }

        /** This step's layout in the packed input words, for block tables {@code maxBlocks} wide. */
        InputLayout layout(int maxBlocks) {
            return new InputLayout(tokens(), seqs(), rows(), maxBlocks);
        }

        /** The same inputs with one output row per token row (R = T, greedy), for the logits of every position. */
        StepInputs everyRow() {
            int t = tokens();
            int[] rows = new int[t];
            float[] topP = new float[t];
            for (int i = 0; i < t; i++) {
                rows[i] = i;
                topP[i] = 1f;
            }
            return new StepInputs(ids, positions, slots, rowSeq, rows, blockTables, contextLens, new float[t], new int[t], topP, new float[t],
                    new long[t], new long[t], new boolean[t]);
        }

        /**
         * A decode-only step (T = N = R, one token per sequence) padded to {@code rows} sequences for the graph of
         * that bucket. A padding row reads token 0 at position 0, writes no K/V (slot -1), attends to nothing
         * (context length 0: its attention output is 0), samples greedily and names its own row as its last row; its
         * block table row is all block 0 and never read. The first N rows are the step's own, unchanged.
         */
        static StepInputs padded(StepInputs in, int rows) {
            int n = in.seqs();
            if (in.tokens() != n || in.rows() != n) {
                throw new IllegalArgumentException("only a decode-only step (one token per sequence) is padded: " + in.tokens() + " tokens, "
                        + n + " sequences, " + in.rows() + " output rows");
            }
            if (rows < n) {
                throw new IllegalArgumentException("cannot pad " + n + " sequences to " + rows);
            }
            if (rows == n) {
                return in;
            }
            int maxBlocks = in.blockTables.length / n;
            int[] ids = java.util.Arrays.copyOf(in.ids, rows);                 // (B) padding: token 0
            int[] positions = java.util.Arrays.copyOf(in.positions, rows);     // (B) padding: position 0
            int[] slots = java.util.Arrays.copyOf(in.slots, rows);             // (B) padding: -1, no K/V write
            int[] rowSeq = java.util.Arrays.copyOf(in.rowSeq, rows);           // (B) padding: its own row
            int[] lastRows = java.util.Arrays.copyOf(in.lastRows, rows);       // (B) padding: its own row
            int[] tables = java.util.Arrays.copyOf(in.blockTables, rows * maxBlocks); // (B, MB) padding: zeros, never read
            int[] contextLens = java.util.Arrays.copyOf(in.contextLens, rows); // (B) padding: 0, attention output 0
            float[] temperature = java.util.Arrays.copyOf(in.temperature, rows); // (B) padding: 0, greedy
            int[] topK = java.util.Arrays.copyOf(in.topK, rows);               // (B) padding: 0
            float[] topP = java.util.Arrays.copyOf(in.topP, rows);             // (B) padding: 1
            float[] minP = java.util.Arrays.copyOf(in.minP, rows);             // (B) padding: 0
            long[] seeds = java.util.Arrays.copyOf(in.seeds, rows);            // (B) padding: 0
            long[] steps = java.util.Arrays.copyOf(in.steps, rows);            // (B) padding: 0
            boolean[] onHost = java.util.Arrays.copyOf(in.onHost, rows);       // (B) padding: false
            for (int i = n; i < rows; i++) {
                slots[i] = -1;
                rowSeq[i] = i;
                lastRows[i] = i;
                topP[i] = 1f;
            }
            return new StepInputs(ids, positions, slots, rowSeq, lastRows, tables, contextLens, temperature, topK, topP, minP, seeds, steps, onHost);
        }

        /**
         * Every input in one int32 word array laid out as {@code l} says (floats as their bits, uint64 as
         * little-endian word pairs): one host-to-device copy per step. Words between regions are 0.
         */
        int[] pack(InputLayout l) {
            if (l.tokens() != tokens() || l.seqs() != seqs() || l.rows() != rows() || blockTables.length != l.seqs() * l.maxBlocks()) {
                throw new IllegalArgumentException("inputs of " + tokens() + " tokens, " + seqs() + " sequences, " + rows() + " rows, "
                        + blockTables.length + " block table entries do not fit " + l);
            }
            int r = rows();
            if (temperature.length != r || topK.length != r || topP.length != r || minP.length != r || seeds.length != r || steps.length != r) {
                throw new IllegalArgumentException("sampling parameters for " + temperature.length + " rows, expected " + r);
            }
            int[] w = new int[l.words()];
            for (int i = 0; i < r; i++) {
                w[l.seeds() + 2 * i] = (int) seeds[i];
                w[l.seeds() + 2 * i + 1] = (int) (seeds[i] >>> 32);
                w[l.steps() + 2 * i] = (int) steps[i];
                w[l.steps() + 2 * i + 1] = (int) (steps[i] >>> 32);
                w[l.temperature() + i] = Float.floatToRawIntBits(temperature[i]);
                w[l.topK() + i] = topK[i];
                w[l.topP() + i] = Float.floatToRawIntBits(topP[i]);
                w[l.minP() + i] = Float.floatToRawIntBits(minP[i]);
                w[l.lastRows() + i] = lastRows[i];
            }
            System.arraycopy(ids, 0, w, l.ids(), ids.length);
            System.arraycopy(positions, 0, w, l.positions(), positions.length);
            System.arraycopy(slots, 0, w, l.slots(), slots.length);
            System.arraycopy(rowSeq, 0, w, l.rowSeq(), rowSeq.length);
            System.arraycopy(contextLens, 0, w, l.contextLens(), contextLens.length);
            System.arraycopy(blockTables, 0, w, l.blockTables(), blockTables.length);
            return w;
        }
    }

    /**
     * Where each per-step input lives in one int32 word array (host) and one device buffer (its copy): word
     * offsets of regions in this order, each starting on a 16-byte boundary (uint64 seeds and steps need 8).
     * Legend: T = tokens, N = sequences, R = output rows, MB = block table width.
     */
    record InputLayout(int tokens, int seqs, int rows, int maxBlocks) {
        InputLayout {
            if (tokens < 1 || seqs < 1 || rows < 1 || maxBlocks < 1) {
                throw new IllegalArgumentException("input layout of " + tokens + " tokens, " + seqs + " sequences, " + rows + " rows, " + maxBlocks
                        + " blocks per table");
            }
        }

        private static int align(long words) {
            return Math.toIntExact((words + 3) & ~3L);
        }

        int seeds() {             // (R) uint64
            return 0;
        }

        int steps() {             // (R) uint64
            return align(seeds() + 2L * rows);
        }

        int temperature() {       // (R) fp32
            return align(steps() + 2L * rows);
        }

        int topK() {              // (R) int32
            return align(temperature() + (long) rows);
        }

        int topP() {              // (R) fp32
            return align(topK() + (long) rows);
        }

        int minP() {              // (R) fp32
            return align(topP() + (long) rows);
        }

        int lastRows() {          // (R) int32
            return align(minP() + (long) rows);
        }

        int ids() {               // (T) int32
            return align(lastRows() + (long) rows);
        }

        int positions() {         // (T) int32
            return align(ids() + (long) tokens);
        }

        int slots() {             // (T) int32
            return align(positions() + (long) tokens);
        }

        int rowSeq() {            // (T) int32
            return align(slots() + (long) tokens);
        }

        int contextLens() {       // (N) int32
            return align(rowSeq() + (long) tokens);
        }

        int blockTables() {       // (N, MB) int32
            return align(contextLens() + (long) seqs);
        }

        /** Total words. */
        int words() {
            return align(blockTables() + (long) seqs * maxBlocks);
        }
    }

    /** The device views of one step's packed inputs (slices of {@link Activations#inputWords}, laid out by {@link #layout}). */
    record Inputs(InputLayout layout,
                  DeviceBuffer ids, DeviceBuffer positions, DeviceBuffer slots, DeviceBuffer rowSeq, // (T) int32
                  DeviceBuffer contextLens,                                                          // (N) int32
                  DeviceBuffer blockTables,                                                          // (N, MB) int32
                  DeviceBuffer lastRows, DeviceBuffer topK,                                          // (R) int32
                  DeviceBuffer temperature, DeviceBuffer topP, DeviceBuffer minP,                    // (R) fp32
                  DeviceBuffer seeds, DeviceBuffer steps) {                                          // (R) uint64
    }

    /**
     * Device buffers of a step, sized for up to {@code tokens} rows and {@code seqs} sequences (and output rows).
     * A decode graph's buffers are one of these, never reallocated while the graph lives.
     */
    static final class Activations implements AutoCloseable {
        final int tokens;
        final int seqs;
        private final List<DeviceBuffer> all = new ArrayList<>();
        final DeviceBuffer inputWords; // (InputLayout(T, N, N, MB).words) int32: the packed per-step inputs, see bind()
        final DeviceBuffer x;          // (T, D) fp32 residual stream
        final DeviceBuffer h;          // (T, D) bf16 normed
        final DeviceBuffer routerLogits; // (T, E) fp32
        final DeviceBuffer qkv;        // (T, (H + 2·Hkv)·d) fp32
        final DeviceBuffer q;          // (T, H·d) fp32 after QK-norm and RoPE
        final DeviceBuffer attnBf16;   // (T, H·d) bf16 attention output (the o_proj input)
        final DeviceBuffer attnSplits; // split-K decode partials for min(N, 32) sequences: acc (N, H, Z, d), m, l (N, H, Z) fp32
        final DeviceBuffer attnCounters; // (min(N, 32), Hkv) uint32: the split-K merge counters, 0 between launches
        final DeviceBuffer gateUp;     // (T, 2·I) fp32, I the dense MLP's width
        final DeviceBuffer mlpAct;     // (T, I) bf16
        final DeviceBuffer sharedGateUp; // (T, 2·Is) fp32, Is the shared expert's width (its own: it may run on the second stream)
        final DeviceBuffer sharedAct;  // (T, Is) bf16
        final DeviceBuffer sharedOut;  // (T, D) fp32
        final DeviceBuffer topkIds;    // (T, K) int
        final DeviceBuffer topkWeights;// (T, K) fp32
        final DeviceBuffer moePlan;    // (3 + 3·E + T·K) int32: the routed slots grouped by expert (RouterTopK.launchWithPlan)
        final DeviceBuffer routerDone; // (1) uint32: the router's block counter, 0 between launches
        final DeviceBuffer expertAct;  // (T, K, Ie) fp32
        final DeviceBuffer expertOut;  // (T, K, D) fp32
        final DeviceBuffer xLast;      // (N, D) fp32; this and the next three: 4-byte placeholders on a shard that is not last
        final DeviceBuffer hLast;      // (N, D) bf16
        final DeviceBuffer logits;     // (N, V) fp32
        final DeviceBuffer samplePartials; // (N, C) sampling partials, C = ceil(V / 2048): key uint64, raw max fp32, raw Σ exp fp32 (Sample)
        final DeviceBuffer sampled;    // (2·N) words: sampled ids int32 [0, N), their logprobs fp32 [N, 2·N)
        final DeviceBuffer sampledIds; // (N) int32, a slice of sampled
        final DeviceBuffer sampledLogprobs; // (N) fp32, a slice of sampled

        /** @param head whether the step ends in the final norm, lm_head and sampling (the last shard): else their buffers are left out */
        Activations(CudaDevice device, ModelConfig c, int tokens, int seqs, int maxBlocks, boolean head) {
            this.tokens = tokens;
            this.seqs = seqs;
            long t = tokens;
            long n = seqs;
            int d = c.hiddenSize();
            int k = Math.max(1, c.numExpertsPerTok());
            int inter = Math.max(1, c.intermediateSize());
            int sharedInter = Math.max(1, c.numSharedExperts() > 0 ? c.sharedExpertIntermediateSize() : 0);
            inputWords = alloc(device, 4L * new InputLayout(tokens, seqs, seqs, maxBlocks).words());
            x = alloc(device, 4 * t * d);
            h = alloc(device, 2 * t * d);
            routerLogits = alloc(device, 4 * t * Math.max(1, c.numExperts()));
            qkv = alloc(device, 4 * t * c.qkvDim());
            q = alloc(device, 4 * t * c.queryDim());
            attnBf16 = alloc(device, 2 * t * c.queryDim());
            attnSplits = alloc(device, AttentionDecode.workspaceBytes(Math.min(seqs, SPLIT_MAX_SEQS), c.numAttentionHeads(), c.headDim(),
                    DECODE_SPLITS));
            attnCounters = alloc(device, AttentionDecode.countersBytes(Math.min(seqs, SPLIT_MAX_SEQS), c.numKeyValueHeads()));
            AttentionDecode.clearCounters(attnCounters);
            gateUp = alloc(device, 4 * t * 2 * inter);
            mlpAct = alloc(device, 2 * t * inter);
            sharedGateUp = alloc(device, 4 * t * 2 * sharedInter);
            sharedAct = alloc(device, 2 * t * sharedInter);
            sharedOut = alloc(device, 4 * t * d);
            topkIds = alloc(device, 4 * t * k);
            topkWeights = alloc(device, 4 * t * k);
            moePlan = alloc(device, 4 * MoeExperts.planWords(tokens, k, Math.max(1, c.numExperts())));
            routerDone = alloc(device, 4);
            routerDone.fill((byte) 0);
            expertAct = alloc(device, 4 * t * k * Math.max(1, c.moeIntermediateSize()));
            expertOut = alloc(device, 4 * t * k * d);
            long h = head ? 1 : 0; // a shard that is not last computes no logits: its head buffers are placeholders
            xLast = alloc(device, h * 4 * n * d);
            hLast = alloc(device, h * 2 * n * d);
            logits = alloc(device, h * 4 * n * c.vocabSize());
            samplePartials = alloc(device, h * Sample.workspaceBytes(seqs, c.vocabSize()));
            sampled = alloc(device, 8 * n);
            sampledIds = sampled.slice(0, 4 * n);
            sampledLogprobs = sampled.slice(4 * n, 4 * n);
        }

        private DeviceBuffer alloc(CudaDevice device, long bytes) {
            DeviceBuffer b = device.alloc(Math.max(4, bytes));
            all.add(b);
            return b;
        }

        /** Device bytes of the buffers for {@code tokens} rows over {@code seqs} sequences: what the constructor allocates. */
        static long bytes(ModelConfig c, int tokens, int seqs, int maxBlocks, boolean head) {
            CudaDevice sizes = CudaDevice.driverless((k, gx, gy, gz, bx, by, bz, shared, args) -> {
                throw new IllegalStateException("no kernel runs while buffers are sized");
            });
            try (Activations a = new Activations(sizes, c, tokens, seqs, maxBlocks, head)) {
                long total = 0;
                for (DeviceBuffer b : a.all) {
                    total += b.bytes();
                }
                return total;
            } finally {
                sizes.close();
            }
        }

        /** The device views of inputs laid out by {@code l} in {@link #inputWords} (fixed addresses per layout). */
        Inputs bind(InputLayout l) {
            if (l.tokens() > tokens || l.seqs() > seqs || l.rows() > seqs || 4L * l.words() > inputWords.bytes()) {
                throw new IllegalArgumentException(l + " does not fit buffers for " + tokens + " tokens and " + seqs + " sequences");
            }
            long t = l.tokens();
            long n = l.seqs();
            long r = l.rows();
            return new Inputs(l,
                    words(l.ids(), t), words(l.positions(), t), words(l.slots(), t), words(l.rowSeq(), t),
                    words(l.contextLens(), n), words(l.blockTables(), n * l.maxBlocks()),
                    words(l.lastRows(), r), words(l.topK(), r),
                    words(l.temperature(), r), words(l.topP(), r), words(l.minP(), r),
                    words(l.seeds(), 2 * r), words(l.steps(), 2 * r));
        }

        private DeviceBuffer words(int offset, long count) {
            return inputWords.slice(4L * offset, 4L * count);
        }

        @Override
        public void close() {
            for (DeviceBuffer b : all) {
                b.close();
            }
            all.clear();
        }
    }
}
