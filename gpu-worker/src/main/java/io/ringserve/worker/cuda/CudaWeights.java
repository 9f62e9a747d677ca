package io.ringserve.worker.cuda;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.cuda.ops.FillRandom;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.Matrix;
import io.ringserve.worker.reference.ModelWeights;
import io.ringserve.worker.weights.Bf16;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import io.ringserve.worker.weights.WeightsException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * A model's weights in device memory, laid out for the kernels: every matrix bf16 row-major as the checkpoint
 * stores it ({@code [out, in]}), the norm weights bf16, V2's expert bias fp32, and the SwiGLU weights packed
 * as {@code moe_experts.cu} reads them: {@code gate_up [E, 2·I, D]} (per expert its gate rows, then its up
 * rows) and {@code down [E, D, I]}; a dense MLP or the shared expert is the same with E = 1.
 *
 * <p>Two sources: a safetensors checkpoint (copied through pinned staging buffers, {@link WeightUploader}) or
 * seeded random values written by a kernel on the device ({@link #dummy}, no disk), the way full-size speed is
 * measured without the real checkpoint. Dummy values are seeded per tensor name, so a shard's tensors equal the
 * whole model's.
 *
 * <p>A pipeline stage holds only its {@link LayerRange}: those layers, the embeddings when it is the first shard, the
 * final norm and the lm_head when it is the last (the embedding matrix as the lm_head when the checkpoint ties them).
 * Legend: V = vocab, D = hidden, d = head dim, H = heads, E = experts.
 */
public final class CudaWeights implements AutoCloseable {
    /** Standard deviation the dummy weights aim at (the models' initializer_range). */
    static final float DUMMY_STD = 0.02f;

    /** One decoder layer. */
    public record Layer(
            DeviceBuffer inputNorm,  // (D) bf16
            DeviceBuffer qkv,        // (H·d + 2·Hkv·d, D) bf16, head slots Q | K | V
            DeviceBuffer qNorm,      // (d) bf16, null without QK-norm (v1)
            DeviceBuffer kNorm,      // (d) bf16, null without QK-norm (v1)
            DeviceBuffer dense,      // (D, H·d) bf16, attention output projection
            DeviceBuffer postNorm,   // (D) bf16
            Ffn ffn) {
    }

    /** The feed-forward block of a layer. */
    public sealed interface Ffn permits Swiglu, Moe {
    }

    /** A SwiGLU MLP packed as one expert: the dense MLP of the first layers, or the shared expert. */
    public record Swiglu(
            DeviceBuffer gateUp,     // (1, 2·I, D) bf16
            DeviceBuffer down,       // (1, D, I) bf16
            int inter) implements Ffn {
    }

    /** A sparse MoE block. */
    public record Moe(
            DeviceBuffer gate,       // (E, D) bf16 router weight
            DeviceBuffer expertBias, // (E) fp32, null for a router without one (v1)
            DeviceBuffer gateUp,     // (E, 2·Ie, D) bf16
            DeviceBuffer down,       // (E, D, Ie) bf16
            Swiglu shared) implements Ffn { // null when num_shared_experts is 0
    }

    private final CudaDevice device;
    private final ModelConfig config;
    private final LayerRange range;
    private final List<DeviceBuffer> owned = new ArrayList<>();
    private final DeviceBuffer embedding; // (V, D) bf16; null unless the first shard (or the last, tied)
    private final List<Layer> layers;     // the held layers, layers().get(l - range.start()) is layer l
    private final DeviceBuffer norm;      // (D) bf16; null unless the last shard
    private final DeviceBuffer lmHead;    // (V, D) bf16; the embedding when tied; null unless the last shard
    private long bytes;

    private CudaWeights(CudaDevice device, ModelConfig config, LayerRange range, Source source) {
        if (range.total() != config.numHiddenLayers()) {
            throw new IllegalArgumentException("layers " + range + " of a model with " + config.numHiddenLayers() + " layers");
        }
        this.device = device;
        this.config = config;
        this.range = range;
        boolean done = false;
        try {
            int d = config.hiddenSize();
            boolean tied = config.tieWordEmbeddings() && !source.has("lm_head.weight");
            embedding = range.isFirst() || (range.isLast() && tied) ? source.matrix(this, "model.word_embeddings.weight", config.vocabSize(), d) : null;
            List<Layer> list = new ArrayList<>(range.count());
            for (int i = range.start(); i < range.end(); i++) {
                list.add(layer(source, i));
            }
            layers = List.copyOf(list);
            norm = range.isLast() ? source.norm(this, "model.norm.weight", d) : null;
            lmHead = !range.isLast() ? null : tied ? embedding : source.lmHead(this, config.vocabSize(), d);
            source.finish();
            done = true;
        } finally {
            if (!done) {
                close();
            }
        }
    }

    private Layer layer(Source s, int i) {
        ModelConfig c = config;
        int d = c.hiddenSize();
        String p = "model.layers." + i + ".";
        Ffn ffn;
        if (c.isMoeLayer(i)) {
            boolean bias = c instanceof BailingMoeV2Config v2 && v2.moeRouterEnableExpertBias();
            ffn = new Moe(
                    s.matrix(this, p + "mlp.gate.weight", c.numExperts(), d),
                    bias ? s.expertBias(this, p + "mlp.gate.expert_bias", c.numExperts()) : null,
                    s.gateUp(this, p + "mlp.experts.", c.numExperts(), c.moeIntermediateSize(), d),
                    s.down(this, p + "mlp.experts.", c.numExperts(), c.moeIntermediateSize(), d),
                    c.numSharedExperts() > 0 ? swiglu(s, p + "mlp.shared_experts.", c.sharedExpertIntermediateSize()) : null);
        } else {
            ffn = swiglu(s, p + "mlp.", c.intermediateSize());
        }
        return new Layer(
                s.norm(this, p + "input_layernorm.weight", d),
                s.matrix(this, p + "attention.query_key_value.weight", c.qkvDim(), d),
                c.useQkNorm() ? s.norm(this, p + "attention.query_layernorm.weight", c.headDim()) : null,
                c.useQkNorm() ? s.norm(this, p + "attention.key_layernorm.weight", c.headDim()) : null,
                s.matrix(this, p + "attention.dense.weight", d, c.queryDim()),
                s.norm(this, p + "post_attention_layernorm.weight", d),
                ffn);
    }

    private Swiglu swiglu(Source s, String prefix, int inter) {
        int d = config.hiddenSize();
        return new Swiglu(s.gateUp(this, prefix, -1, inter, d), s.down(this, prefix, -1, inter, d), inter);
    }

    /** Loads the checkpoint's tensors into device memory; {@code progress} is told the bytes copied so far. */
    public static CudaWeights load(CudaDevice device, ModelConfig config, SafetensorsCheckpoint checkpoint, LongConsumer progress) {
        return load(device, config, checkpoint, LayerRange.all(config.numHiddenLayers()), progress);
    }

    /** Loads the tensors a shard holding {@code range} needs into device memory. */
    public static CudaWeights load(CudaDevice device, ModelConfig config, SafetensorsCheckpoint checkpoint, LayerRange range, LongConsumer progress) {
        requireFits(device, config, range);
        return new CudaWeights(device, config, range, new CheckpointSource(device, checkpoint, progress));
    }

    /** Seeded random weights written on the device (no checkpoint): for benchmarks at full size. */
    public static CudaWeights dummy(CudaDevice device, ModelConfig config, long seed) {
        return dummy(device, config, LayerRange.all(config.numHiddenLayers()), seed);
    }

    /** The dummy weights of a shard holding {@code range}: the same values as those tensors of the whole model's. */
    public static CudaWeights dummy(CudaDevice device, ModelConfig config, LayerRange range, long seed) {
        requireFits(device, config, range);
        return new CudaWeights(device, config, range, new DummySource(device, seed));
    }

    /**
     * Device bytes the weights of a shard holding {@code range} take: what loading it allocates, counted by building it
     * on a device without memory. For every layer it is {@link #deviceBytes(ModelConfig)}.
     */
    public static long deviceBytes(ModelConfig config, LayerRange range) {
        if (range.isAll()) {
            return deviceBytes(config);
        }
        CudaDevice sizes = CudaDevice.driverless((k, gx, gy, gz, bx, by, bz, shared, args) -> { }); // the dummy fills launch nothing
        try (CudaWeights w = new CudaWeights(sizes, config, range, new DummySource(sizes, 0))) {
            return w.bytes();
        } finally {
            sizes.close();
        }
    }

    /**
     * Device bytes the weights of {@code config} take: every parameter ({@link ModelConfig#parameterCount()}) in
     * bf16, except V2's expert bias, which is held in fp32 (two more bytes per expert and MoE layer).
     */
    public static long deviceBytes(ModelConfig config) {
        boolean fp32Bias = config instanceof BailingMoeV2Config v2 && v2.moeRouterEnableExpertBias();
        long moeLayers = config.numHiddenLayers() - config.firstKDenseReplace();
        return 2 * config.parameterCount() + (fp32Bias ? 2L * config.numExperts() * moeLayers : 0);
    }

    private static void requireFits(CudaDevice device, ModelConfig config, LayerRange range) {
        long need = deviceBytes(config, range);
        long free = device.freeMemory();
        if (need > free) {
            throw new IllegalStateException(String.format("the model's weights%s need %.2f GiB of GPU memory but %s has %.2f GiB free",
                    range.isAll() ? "" : " of layers " + range, need / (double) (1L << 30), device.name(), free / (double) (1L << 30)));
        }
    }

    public ModelConfig config() {
        return config;
    }

    /** The layers held (every layer unless loaded for a pipeline shard). */
    public LayerRange range() {
        return range;
    }

    public DeviceBuffer embedding() {
        return embedding;
    }

    /** The held layers in order: element {@code l - range().start()} is decoder layer {@code l}. */
    public List<Layer> layers() {
        return layers;
    }

    /** Decoder layer {@code l}, which this shard must hold. */
    public Layer layer(int l) {
        if (!range.contains(l)) {
            throw new IllegalArgumentException("layer " + l + " is not held here (layers " + range + ")");
        }
        return layers.get(l - range.start());
    }

    public DeviceBuffer norm() {
        return norm;
    }

    public DeviceBuffer lmHead() {
        return lmHead;
    }

    /** Device bytes held. */
    public long bytes() {
        return bytes;
    }

    DeviceBuffer alloc(long size) {
        DeviceBuffer b = device.alloc(size);
        owned.add(b);
        bytes += size;
        return b;
    }

    @Override
    public void close() {
        for (DeviceBuffer b : owned) {
            b.close();
        }
        owned.clear();
    }

    /** The dummy fill's seed of tensor {@code name}: the run's seed and the name mixed (SplitMix64's finalizer). */
    static long tensorSeed(long seed, String name) {
        long z = seed * 0x9E3779B97F4A7C15L + name.hashCode();
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Where the values come from. */
    private sealed interface Source permits CheckpointSource, DummySource {
        boolean has(String name);

        DeviceBuffer matrix(CudaWeights w, String name, int rows, int cols);

        DeviceBuffer norm(CudaWeights w, String name, int n);

        DeviceBuffer expertBias(CudaWeights w, String name, int experts);

        /** experts < 0: one MLP under {@code prefix} (gate_proj/up_proj), else experts {@code prefix + e + "."}. */
        DeviceBuffer gateUp(CudaWeights w, String prefix, int experts, int inter, int hidden);

        DeviceBuffer down(CudaWeights w, String prefix, int experts, int inter, int hidden);

        DeviceBuffer lmHead(CudaWeights w, int vocab, int hidden);

        void finish();
    }

    private static final class CheckpointSource implements Source {
        private final SafetensorsCheckpoint ckpt;
        private final WeightUploader uploader;

        CheckpointSource(CudaDevice device, SafetensorsCheckpoint ckpt, LongConsumer progress) {
            this.ckpt = ckpt;
            this.uploader = new WeightUploader(device, progress);
        }

        @Override
        public boolean has(String name) {
            return ckpt.contains(name);
        }

        @Override
        public DeviceBuffer matrix(CudaWeights w, String name, int rows, int cols) {
            MemorySegment src = ckpt.bf16(name, rows, cols);
            DeviceBuffer b = w.alloc(src.byteSize());
            uploader.upload(src, b, 0);
            return b;
        }

        @Override
        public DeviceBuffer norm(CudaWeights w, String name, int n) {
            MemorySegment src = ckpt.bf16(name, n);
            DeviceBuffer b = w.alloc(src.byteSize());
            uploader.upload(src, b, 0);
            return b;
        }

        @Override
        public DeviceBuffer expertBias(CudaWeights w, String name, int experts) {
            DeviceBuffer b = w.alloc(4L * experts);
            if (ckpt.contains(name)) {
                b.copyFromHost(ckpt.readFloat(name, experts));
            } else {
                // the reference treats a missing bias as zeros unless the config says the router has one
                throw new WeightsException("tensor '" + name + "' not found, but config.json moe_router_enable_expert_bias is true");
            }
            return b;
        }

        @Override
        public DeviceBuffer gateUp(CudaWeights w, String prefix, int experts, int inter, int hidden) {
            int n = Math.max(1, experts);
            long part = 2L * inter * hidden; // bytes of one (I, D) bf16 matrix
            DeviceBuffer b = w.alloc(2 * part * n);
            for (int e = 0; e < n; e++) {
                String p = experts < 0 ? prefix : prefix + e + ".";
                uploader.upload(ckpt.bf16(p + "gate_proj.weight", inter, hidden), b, 2 * part * e);
                uploader.upload(ckpt.bf16(p + "up_proj.weight", inter, hidden), b, 2 * part * e + part);
            }
            return b;
        }

        @Override
        public DeviceBuffer down(CudaWeights w, String prefix, int experts, int inter, int hidden) {
            int n = Math.max(1, experts);
            long part = 2L * inter * hidden;
            DeviceBuffer b = w.alloc(part * n);
            for (int e = 0; e < n; e++) {
                String p = experts < 0 ? prefix : prefix + e + ".";
                uploader.upload(ckpt.bf16(p + "down_proj.weight", hidden, inter), b, part * e);
            }
            return b;
        }

        @Override
        public DeviceBuffer lmHead(CudaWeights w, int vocab, int hidden) {
            if (!(w.config instanceof BailingMoeConfig v1 && v1.normHead())) {
                return matrix(w, "lm_head.weight", vocab, hidden);
            }
            // v1 norm_head: columns L2-normalised over the vocab axis in fp32 at load, as the reference does
            Matrix.F32 normalized = ModelWeights.normalizeColumns(new Matrix.Bf16(ckpt.bf16("lm_head.weight", vocab, hidden), vocab, hidden));
            float[] row = new float[hidden];
            short[] all = new short[vocab * hidden];
            for (int r = 0; r < vocab; r++) {
                normalized.row(r, row, 0);
                for (int c = 0; c < hidden; c++) {
                    all[r * hidden + c] = Bf16.fromFloat(row[c]);
                }
            }
            DeviceBuffer b = w.alloc(2L * vocab * hidden);
            b.copyFromHost(all);
            return b;
        }

        @Override
        public void finish() {
            uploader.close();
        }
    }

    private static final class DummySource implements Source {
        private final CudaDevice device;
        private final FillRandom fill;
        private final long seed;

        DummySource(CudaDevice device, long seed) {
            this.device = device;
            this.fill = new FillRandom(device);
            this.seed = seed;
        }

        @Override
        public boolean has(String name) {
            return false;
        }

        /** Uniform values seeded by the tensor's name, so every shard draws the values the whole model has there. */
        private DeviceBuffer random(CudaWeights w, String name, long elements) {
            DeviceBuffer b = w.alloc(2 * elements);
            // uniform in [-s, s] has standard deviation s / sqrt(3)
            fill.bf16(device.stream(), b, elements, tensorSeed(seed, name), (float) (DUMMY_STD * Math.sqrt(3)));
            return b;
        }

        @Override
        public DeviceBuffer matrix(CudaWeights w, String name, int rows, int cols) {
            return random(w, name, (long) rows * cols);
        }

        @Override
        public DeviceBuffer norm(CudaWeights w, String name, int n) {
            short[] ones = new short[n];
            java.util.Arrays.fill(ones, Bf16.fromFloat(1f));
            DeviceBuffer b = w.alloc(2L * n);
            b.copyFromHost(ones);
            return b;
        }

        @Override
        public DeviceBuffer expertBias(CudaWeights w, String name, int experts) {
            DeviceBuffer b = w.alloc(4L * experts);
            b.fill((byte) 0);
            return b;
        }

        @Override
        public DeviceBuffer gateUp(CudaWeights w, String prefix, int experts, int inter, int hidden) {
            return random(w, prefix + "gate_up", 2L * Math.max(1, experts) * inter * hidden);
        }

        @Override
        public DeviceBuffer down(CudaWeights w, String prefix, int experts, int inter, int hidden) {
            return random(w, prefix + "down", (long) Math.max(1, experts) * inter * hidden);
        }

        @Override
        public DeviceBuffer lmHead(CudaWeights w, int vocab, int hidden) {
            return random(w, "lm_head.weight", (long) vocab * hidden);
        }

        @Override
        public void finish() {
            device.synchronize();
        }
    }
}
