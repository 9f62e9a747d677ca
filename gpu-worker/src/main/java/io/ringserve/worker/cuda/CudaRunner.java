package io.ringserve.worker.cuda;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.ops.AttentionDecode;
import io.ringserve.worker.cuda.ops.AttentionPrefill;
import io.ringserve.worker.cuda.ops.Convert;
import io.ringserve.worker.cuda.ops.Embedding;
import io.ringserve.worker.cuda.ops.GatherRows;
import io.ringserve.worker.cuda.ops.Matmul;
import io.ringserve.worker.cuda.ops.MoeExperts;
import io.ringserve.worker.cuda.ops.QkNormRopeCache;
import io.ringserve.worker.cuda.ops.RmsNorm;
import io.ringserve.worker.cuda.ops.RouterTopK;
import io.ringserve.worker.cuda.ops.Sample;
import io.ringserve.worker.cuda.ops.SiluMul;
import io.ringserve.worker.engine.Logprobs;
import io.ringserve.worker.engine.StepRunner;
import io.ringserve.worker.reference.RotaryEmbedding;
import io.ringserve.worker.reference.Router;
import java.util.ArrayList;
import java.util.List;
import jcuda.CudaException;
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
 * <p>Called from the engine thread only (it makes the device's context current on each call). Legend: T = tokens
 * of the step, N = sequences, D = hidden, H/Hkv = heads, d = head dim, V = vocab, K = experts per token, I =
 * intermediate, MB = block table width, S = KV cache rows (blocks · block size).
 */
public final class CudaRunner implements StepRunner {
    /** Device memory left free beyond the weights, the KV cache and the activations (driver, graphs, fragmentation). */
    static final long HEADROOM = 512L << 20;

    private final CudaDevice device;
    private final CudaWeights weights;
    private final ModelConfig config;
    private final int contextLength;
    private final CUstream stream;
    private final RouterTopK.Rules routing;

    private final Embedding embedding;
    private final RmsNorm rmsNorm;
    private final Matmul matmul;
    private final QkNormRopeCache qkNormRopeCache;
    private final AttentionPrefill attentionPrefill;
    private final AttentionDecode attentionDecode;
    private final Convert convert;
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
    private DeviceBuffer[] keys;   // [layer] (S, Hkv·d) bf16
    private DeviceBuffer[] values; // [layer] (S, Hkv·d) bf16

    private Activations act;
    private volatile boolean failed;
    private volatile String failure;

    /**
     * @param weights the model on {@code device}; the runner does not own it
     */
    public CudaRunner(CudaDevice device, CudaWeights weights) {
        this.device = device;
        this.weights = weights;
        this.config = weights.config();
        this.stream = device.stream();
        device.makeCurrent();
        this.embedding = new Embedding(device);
        this.rmsNorm = new RmsNorm(device);
        this.matmul = new Matmul(device);
        this.qkNormRopeCache = new QkNormRopeCache(device);
        this.attentionPrefill = new AttentionPrefill(device);
        this.attentionDecode = new AttentionDecode(device);
        this.convert = new Convert(device);
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
    public int contextLength() {
        return contextLength;
    }

    @Override
    public long kvBytesPerBlock(int blockSize) {
        return 2L * config.numHiddenLayers() * blockSize * config.kvDim() * 2; // K and V, bf16
    }

    @Override
    public int maxKvBlocks(int blockSize) {
        // the kernels index cache rows with int
        return (int) Math.min(Integer.MAX_VALUE, (Integer.MAX_VALUE - 1L) / blockSize);
    }

    @Override
    public void allocateKv(int blockSize, int blocks) {
        if (keys != null) {
            throw new IllegalStateException("KV storage is already allocated");
        }
        device.makeCurrent();
        long need = kvBytesPerBlock(blockSize) * blocks;
        long free = device.freeMemory();
        if (need + HEADROOM > free) {
            throw new IllegalArgumentException(String.format(
                    "kv-cache-bytes asks for %d KV blocks (%.2f GiB) but %s has %.2f GiB free after the weights (%.2f GiB) and %d MiB of headroom;"
                            + " lower kv-cache-bytes", blocks, need / (double) (1L << 30), device.name(), free / (double) (1L << 30),
                    weights.bytes() / (double) (1L << 30), HEADROOM >> 20));
        }
        this.blockSize = blockSize;
        this.blocks = blocks;
        this.maxBlocks = (contextLength + blockSize - 1) / blockSize;
        int layers = config.numHiddenLayers();
        keys = new DeviceBuffer[layers];
        values = new DeviceBuffer[layers];
        long perLayer = 2L * blocks * blockSize * config.kvDim();
        for (int l = 0; l < layers; l++) {
            keys[l] = device.alloc(perLayer);
            values[l] = device.alloc(perLayer);
        }
    }

    /** Device bytes of the KV cache. */
    public long kvBytes() {
        return keys == null ? 0 : kvBytesPerBlock(blockSize) * blocks;
    }

    @Override
    public Sampled[] step(List<StepEntry> batch) {
        if (keys == null) {
            throw new IllegalStateException("allocateKv was not called");
        }
        if (failed) {
            throw new IllegalStateException("the GPU is in an error state after an earlier failure: " + failure);
        }
        device.makeCurrent();
        try {
            return run(batch);
        } catch (CudaException e) {
            // a failed launch or copy can leave the context unusable; the health check reports it
            failed = true;
            failure = e.getMessage();
            throw e;
        }
    }

    private Sampled[] run(List<StepEntry> batch) {
        ModelConfig c = config;
        int n = batch.size();
        int t = tokenCount(batch);
        Activations a = activations(t, n);
        StepInputs in = StepInputs.of(batch, c.vocabSize(), blockSize, maxBlocks);
        in.upload(a);
        layers(a, t, n, t == n, null);
        head(a, n, t);
        sample.sample(stream, a.logits, a.logits, a.temperature, a.topK, a.topP, a.minP, a.seeds, a.steps, a.sampledIds, a.sampledLogprobs,
                n, c.vocabSize());
        int[] ids = new int[n];
        float[] logprobs = new float[n];
        a.sampledIds.copyToHost(ids);
        a.sampledLogprobs.copyToHost(logprobs);

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
                out[i] = new Sampled(ids[i], s.topLogprobs() >= 0 ? logprobs[i] : Float.NaN, null);
            }
        }
        return out;
    }

    /**
     * Runs a whole sequence from position 0 in one prefill into the blocks of {@code blockTable} and returns the
     * logits of every position (the CLI's {@code logits} command and the golden tests); outside the engine's use
     * of those blocks.
     *
     * @param routes when not null, filled per layer with the MoE routing decisions (T, K), null for dense layers
     * @return (T, V) fp32 logits, row-major
     */
    public float[] logits(int[] tokens, int[] blockTable, int[][][] routes) {
        if (keys == null) {
            throw new IllegalStateException("allocateKv was not called");
        }
        device.makeCurrent();
        ModelConfig c = config;
        int t = tokens.length;
        List<StepEntry> one = List.of(new StepEntry(0, tokens, 0, blockTable, null));
        Activations a = activations(t, t);
        StepInputs in = StepInputs.of(one, c.vocabSize(), blockSize, maxBlocks);
        in.upload(a);
        int[] rows = new int[t];
        for (int i = 0; i < t; i++) {
            rows[i] = i;
        }
        a.lastRows.copyFromHost(rows);
        layers(a, t, 1, false, routes);
        head(a, t, t);
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

    /** Embedding and every decoder layer over the step's T rows: the residual stream ends in {@code a.x}. */
    private void layers(Activations a, int t, int n, boolean decodeOnly, int[][][] routes) {
        ModelConfig c = config;
        int d = c.hiddenSize();
        int kvRows = blocks * blockSize;
        embedding.launch(stream, a.x, weights.embedding(), a.ids, t, d, c.vocabSize());
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            CudaWeights.Layer w = weights.layers().get(l);
            // attention block
            rmsNorm.launch(stream, a.h, a.x, null, w.inputNorm(), t, d, (float) c.rmsNormEps());
            matmul.launch(stream, a.qkv, a.h, w.qkv(), t, c.qkvDim(), d, false);
            qkNormRopeCache.launch(stream, a.qkv, a.positions, a.slots, cosTable, sinTable, w.qNorm(), w.kNorm(), a.q, keys[l], values[l],
                    t, c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rotaryDim(), contextLength, kvRows, (float) c.rmsNormEps());
            if (decodeOnly) {
                attentionDecode.launch(stream, a.q, keys[l], values[l], a.blockTables, a.contextLens, a.attn, n, c.numAttentionHeads(),
                        c.numKeyValueHeads(), c.headDim(), blockSize, maxBlocks, kvRows);
            } else {
                attentionPrefill.launch(stream, a.q, keys[l], values[l], a.blockTables, a.rowSeq, a.positions, a.attn, t, n,
                        c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), blockSize, maxBlocks, kvRows);
            }
            convert.toBf16(stream, a.attnBf16, a.attn, (long) t * c.queryDim());
            matmul.launch(stream, a.x, a.attnBf16, w.dense(), t, d, c.queryDim(), true); // x += o_proj(attn)
            // feed-forward block
            rmsNorm.launch(stream, a.h, a.x, null, w.postNorm(), t, d, (float) c.rmsNormEps());
            switch (w.ffn()) {
                case CudaWeights.Swiglu mlp -> swiglu(a, mlp, t, a.x, true); // x += mlp(h)
                case CudaWeights.Moe moe -> {
                    moe(a, moe, t);
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

    /** Final norm and lm_head on the {@code rows} rows named by {@code a.lastRows}: logits (rows, V) in {@code a.logits}. */
    private void head(Activations a, int rows, int t) {
        ModelConfig c = config;
        int d = c.hiddenSize();
        gatherRows.launch(stream, a.xLast, a.x, a.lastRows, rows, t, d);
        rmsNorm.launch(stream, a.hLast, a.xLast, null, weights.norm(), rows, d, (float) c.rmsNormEps());
        matmul.launch(stream, a.logits, a.hLast, weights.lmHead(), rows, c.vocabSize(), d, false);
    }

    /** Dense SwiGLU (or the shared expert): {@code out (+)= down(silu(gate(h)) · up(h))}. */
    private void swiglu(Activations a, CudaWeights.Swiglu mlp, int t, DeviceBuffer out, boolean accumulate) {
        int d = config.hiddenSize();
        matmul.launch(stream, a.gateUp, a.h, mlp.gateUp(), t, 2 * mlp.inter(), d, false);
        siluMul.launch(stream, a.mlpAct, a.gateUp, t, mlp.inter());
        matmul.launch(stream, out, a.mlpAct, mlp.down(), t, d, mlp.inter(), accumulate);
    }

    /** Router, the K selected experts, the shared expert, and the weighted combine into the residual stream. */
    private void moe(Activations a, CudaWeights.Moe moe, int t) {
        ModelConfig c = config;
        int d = c.hiddenSize();
        int k = c.numExpertsPerTok();
        int inter = c.moeIntermediateSize();
        convert.toF32(stream, a.hF32, a.h, (long) t * d);
        router.launch(stream, a.hF32, moe.gate(), moe.expertBias(), a.topkIds, a.topkWeights, t, d, routing);
        experts.gateUpSilu(stream, a.hF32, moe.gateUp(), a.topkIds, a.expertAct, t, k, d, inter, c.numExperts());
        experts.down(stream, a.expertAct, moe.down(), a.topkIds, a.expertOut, t, k, d, inter, c.numExperts());
        DeviceBuffer shared = null;
        if (moe.shared() != null) {
            swiglu(a, moe.shared(), t, a.sharedOut, false);
            shared = a.sharedOut;
        }
        experts.combine(stream, a.expertOut, a.topkWeights, shared, a.x, a.x, t, k, d); // x += shared + Σ_k w·y
    }

    private Activations activations(int tokens, int seqs) {
        if (act == null || act.tokens < tokens || act.seqs < seqs) {
            int tCap = act == null ? tokens : Math.max(tokens, act.tokens);
            int nCap = act == null ? seqs : Math.max(seqs, act.seqs);
            if (act != null) {
                act.close();
            }
            act = new Activations(device, config, tCap, nCap, maxBlocks);
        }
        return act;
    }

    @Override
    public boolean selfTest() {
        return !failed;
    }

    @Override
    public void close() {
        device.makeCurrent();
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

    /** The host side of one step's inputs, laid out as the kernels read them. */
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
            float[] temperature = new float[n];
            int[] topK = new int[n];
            float[] topP = new float[n];
            float[] minP = new float[n];
            long[] seeds = new long[n];
            long[] steps = new long[n];
            boolean[] onHost = new boolean[n];
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

        void upload(Activations a) {
            CUstream s = a.stream;
            a.ids.copyFromHostAsync(ids, s);
            a.positions.copyFromHostAsync(positions, s);
            a.slots.copyFromHostAsync(slots, s);
            a.rowSeq.copyFromHostAsync(rowSeq, s);
            a.lastRows.copyFromHostAsync(lastRows, s);
            a.blockTables.copyFromHostAsync(blockTables, s);
            a.contextLens.copyFromHostAsync(contextLens, s);
            a.temperature.copyFromHostAsync(temperature, s);
            a.topK.copyFromHostAsync(topK, s);
            a.topP.copyFromHostAsync(topP, s);
            a.minP.copyFromHostAsync(minP, s);
            a.seeds.copyFromHostAsync(words(seeds), s);
            a.steps.copyFromHostAsync(words(steps), s);
        }

        /** uint64 values as the little-endian int pairs the device reads. */
        static int[] words(long[] v) {
            int[] w = new int[2 * v.length];
            for (int i = 0; i < v.length; i++) {
                w[2 * i] = (int) v[i];
                w[2 * i + 1] = (int) (v[i] >>> 32);
            }
            return w;
        }
    }

    /** Device buffers of a step, sized for up to {@code tokens} rows and {@code seqs} sequences. */
    static final class Activations implements AutoCloseable {
        final int tokens;
        final int seqs;
        final CUstream stream;
        private final List<DeviceBuffer> all = new ArrayList<>();
        final DeviceBuffer ids, positions, slots, rowSeq;    // (T) int
        final DeviceBuffer lastRows, contextLens;             // (N) int
        final DeviceBuffer blockTables;                       // (N, MB) int
        final DeviceBuffer x;          // (T, D) fp32 residual stream
        final DeviceBuffer h;          // (T, D) bf16 normed
        final DeviceBuffer hF32;       // (T, D) fp32 normed (router and expert input)
        final DeviceBuffer qkv;        // (T, (H + 2·Hkv)·d) fp32
        final DeviceBuffer q;          // (T, H·d) fp32 after QK-norm and RoPE
        final DeviceBuffer attn;       // (T, H·d) fp32
        final DeviceBuffer attnBf16;   // (T, H·d) bf16
        final DeviceBuffer gateUp;     // (T, 2·I) fp32, I the largest SwiGLU width
        final DeviceBuffer mlpAct;     // (T, I) bf16
        final DeviceBuffer sharedOut;  // (T, D) fp32
        final DeviceBuffer topkIds;    // (T, K) int
        final DeviceBuffer topkWeights;// (T, K) fp32
        final DeviceBuffer expertAct;  // (T, K, Ie) fp32
        final DeviceBuffer expertOut;  // (T, K, D) fp32
        final DeviceBuffer xLast;      // (N, D) fp32
        final DeviceBuffer hLast;      // (N, D) bf16
        final DeviceBuffer logits;     // (N, V) fp32
        final DeviceBuffer temperature, topP, minP; // (N) fp32
        final DeviceBuffer topK;       // (N) int
        final DeviceBuffer seeds, steps; // (N) uint64
        final DeviceBuffer sampledIds; // (N) int
        final DeviceBuffer sampledLogprobs; // (N) fp32

        Activations(CudaDevice device, ModelConfig c, int tokens, int seqs, int maxBlocks) {
            this.tokens = tokens;
            this.seqs = seqs;
            this.stream = device.stream();
            long t = tokens;
            long n = seqs;
            int d = c.hiddenSize();
            int k = Math.max(1, c.numExpertsPerTok());
            int inter = Math.max(c.intermediateSize(), c.numSharedExperts() > 0 ? c.sharedExpertIntermediateSize() : 0);
            ids = alloc(device, 4 * t);
            positions = alloc(device, 4 * t);
            slots = alloc(device, 4 * t);
            rowSeq = alloc(device, 4 * t);
            lastRows = alloc(device, 4 * n);
            contextLens = alloc(device, 4 * n);
            blockTables = alloc(device, 4 * n * maxBlocks);
            x = alloc(device, 4 * t * d);
            h = alloc(device, 2 * t * d);
            hF32 = alloc(device, 4 * t * d);
            qkv = alloc(device, 4 * t * c.qkvDim());
            q = alloc(device, 4 * t * c.queryDim());
            attn = alloc(device, 4 * t * c.queryDim());
            attnBf16 = alloc(device, 2 * t * c.queryDim());
            gateUp = alloc(device, 4 * t * 2 * inter);
            mlpAct = alloc(device, 2 * t * inter);
            sharedOut = alloc(device, 4 * t * d);
            topkIds = alloc(device, 4 * t * k);
            topkWeights = alloc(device, 4 * t * k);
            expertAct = alloc(device, 4 * t * k * Math.max(1, c.moeIntermediateSize()));
            expertOut = alloc(device, 4 * t * k * d);
            xLast = alloc(device, 4 * n * d);
            hLast = alloc(device, 2 * n * d);
            logits = alloc(device, 4 * n * c.vocabSize());
            temperature = alloc(device, 4 * n);
            topP = alloc(device, 4 * n);
            minP = alloc(device, 4 * n);
            topK = alloc(device, 4 * n);
            seeds = alloc(device, 8 * n);
            steps = alloc(device, 8 * n);
            sampledIds = alloc(device, 4 * n);
            sampledLogprobs = alloc(device, 4 * n);
        }

        private DeviceBuffer alloc(CudaDevice device, long bytes) {
            DeviceBuffer b = device.alloc(Math.max(4, bytes));
            all.add(b);
            return b;
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
